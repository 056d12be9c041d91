"""The ``lcarchive`` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lcarchive.errors import LcarchiveError, closest

if TYPE_CHECKING:  # the commands import what they need when they run: `lcarchive --help` imports none of it
    from lcarchive.archive import Archive
    from lcarchive.catalog.models import Catalog

__all__ = ["app", "main"]

app = typer.Typer(
    help="lcarchive: a Zarr archive of TESS, Kepler and K2 light curves, one group per observation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: real metavars (TEXT, INTEGER), paragraphs re-wrapped to the terminal
)
catalog_app = typer.Typer(
    help="Show, rebuild or describe the archive's JSON catalog.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(catalog_app, name="catalog")


def _show_version(value: bool) -> None:
    if value:
        from lcarchive import __version__

        out.print(f"lcarchive {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _top(
    version: Annotated[
        bool, typer.Option("--version", help="Print lcarchive's version and exit.", is_eager=True, callback=_show_version)
    ] = False,
) -> None:
    """lcarchive: a Zarr archive of TESS, Kepler and K2 light curves, one group per observation.

    Start with `lcarchive ingest ARCHIVE FILES...`, then `lcarchive ls ARCHIVE` and
    `lcarchive search ARCHIVE --target 'TIC 261136679'`; `lcarchive COMMAND --help` explains each."""


# output piped to another program is never cut (rich would fit it to 80 columns): tables take the
# width their cells need
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, soft_wrap=True)

ArchiveArg = Annotated[str, typer.Argument(help="Archive root: a local directory or an fsspec URL (s3://bucket/prefix).")]
StorageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        "-o",
        help="fsspec option KEY=VALUE for the archive's store (repeatable), e.g. -o endpoint_url=http://host:9000. "
        "Endpoint and credentials otherwise come from the standard AWS variables (AWS_ENDPOINT_URL, "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE...).",
    ),
]


AnonOpt = Annotated[bool, typer.Option("--anon", help="Read a public bucket without credentials (unsigned requests).")]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="Read the archive at this version: a tag (e.g. a data release), a branch or a snapshot ID from `lcarchive history`.",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Read the archive as it was at this date or time (ISO 8601, UTC unless it says otherwise), e.g. 2026-11-30T12:00.",
    ),
]


TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        help="Target ID (repeatable): 261136679, 'TIC 261136679', 'KIC 11442793', 'Gaia DR3 5707485527450614656', '3I/ATLAS'.",
    ),
]
TargetsFileOpt = Annotated[Path | None, typer.Option("--targets-file", help="File of IDs: one per line, or a CSV/Parquet table.")]
TargetsColumnOpt = Annotated[str | None, typer.Option("--targets-column", help="Column of --targets-file holding the IDs.")]
ObservationOpt = Annotated[
    list[str] | None, typer.Option("--observation", help="Observation ID, e.g. tess-spoc-2min-s0001 (repeatable).")
]
MissionOpt = Annotated[list[str] | None, typer.Option("--mission", help="tess, kepler or k2 (repeatable).")]
ProductOpt = Annotated[list[str] | None, typer.Option("--product", help="Product, e.g. spoc-2min, qlp, kepler-lc (repeatable).")]
SegmentOpt = Annotated[
    list[int] | None, typer.Option("--sector", "--quarter", "--campaign", help="Sector, quarter or campaign (repeatable).")
]
ConeOpt = Annotated[
    tuple[float, float, float] | None, typer.Option("--cone", help="RA DEC RADIUS, degrees (ICRS).", show_default=False)
]
PositionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--positions",
        help="CSV/Parquet table of positions (columns ra, dec and radius, degrees; or give --radius): a cone search around each.",
        show_default=False,
    ),
]
RadiusOpt = Annotated[
    float | None, typer.Option("--radius", help="Radius of the --positions cones, degrees.", show_default=False)
]
BoxOpt = Annotated[
    tuple[float, float, float, float] | None,
    typer.Option(
        "--box",
        help="RA_MIN RA_MAX DEC_MIN DEC_MAX, degrees (RA wraps through 0 when RA_MIN > RA_MAX).",
        show_default=False,
    ),
]
CameraOpt = Annotated[list[int] | None, typer.Option("--camera", help="TESS camera (repeatable).")]
CcdOpt = Annotated[list[int] | None, typer.Option("--ccd", help="TESS CCD (repeatable).")]
MagnitudeOpt = Annotated[
    tuple[float, float] | None, typer.Option("--magnitude", help="LOW HIGH: TESSMAG or KEPMAG range, mag.", show_default=False)
]
TimeOpt = Annotated[
    tuple[str, str] | None,
    typer.Option(
        "--time",
        help="START STOP: numbers in each observation's time format (BTJD, BKJD) or ISO dates (UTC).",
        show_default=False,
    ),
]
SupersededOpt = Annotated[bool, typer.Option("--include-superseded", help="Also take groups of older releases.")]


def _every_name(store: Archive, targets: list[str]) -> list[str]:
    """Each target's names in the catalogs missions name their targets by, through the alias table."""
    from lcarchive.aliases import split_name
    from lcarchive.catalog.content import static_catalog

    by_mission = {m.target_catalog for m in static_catalog().missions}
    names: list[str] = []
    for text in targets:
        try:
            every = store.names(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--target") from None
        names.extend(n for n in every if split_name(n)[0] in by_mission)
    return list(dict.fromkeys(names))


def _selection(
    target: list[str] | None,
    targets_file: Path | None,
    targets_column: str | None,
    observation: list[str] | None,
    mission: list[str] | None,
    product: list[str] | None,
    segment: list[int] | None,
    cone: tuple[float, float, float] | None,
    positions: Path | None,
    radius: float | None,
    box: tuple[float, float, float, float] | None,
    camera: list[int] | None,
    ccd: list[int] | None,
    magnitude: tuple[float, float] | None,
    time_range: tuple[str, str] | None,
    include_superseded: bool,
    columns: list[str] | None = None,
):
    """The :class:`lcarchive.Selection` of the selection options (``download``, ``search``)."""
    from lcarchive.search import Selection, read_positions_file, read_targets_file

    targets: list[str | int] = list(target or [])
    if targets_file is not None:
        targets.extend(read_targets_file(targets_file, targets_column))
    if cone is not None and positions is not None:
        raise typer.BadParameter("give --cone or --positions, not both", param_hint="--cone/--positions")
    if radius is not None and positions is None:
        raise typer.BadParameter("--radius goes with --positions (a --cone has its own radius)", param_hint="--radius")
    return Selection(
        targets=targets if (target or targets_file is not None) else None,
        observations=observation or None,
        missions=mission or None,
        products=product or None,
        segments=segment or None,
        cone=read_positions_file(positions, radius) if positions is not None else cone,
        box=box,
        cameras=camera or None,
        ccds=ccd or None,
        magnitude=magnitude,
        time=time_range,
        columns=columns,
        include_superseded=include_superseded,
    )


def _as_of(text: str | None):
    """A ``--as-of`` value as an aware datetime (UTC unless it names its zone)."""
    import datetime as dt

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is no ISO 8601 date or time (e.g. 2026-11-30 or 2026-11-30T12:00)", param_hint="--as-of"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _open(
    archive: str, storage_option: list[str] | None, anon: bool = False, version: str | None = None, as_of: str | None = None
) -> Archive:
    if version is not None and as_of is not None:
        raise typer.BadParameter("give --version or --as-of, not both", param_hint="--version/--as-of")
    from lcarchive.archive import open_archive

    return open_archive(archive, _storage_options(storage_option, anon), version=version, as_of=_as_of(as_of))


def _writable(archive: str, storage_option: list[str] | None) -> Archive:
    """The archive at ``archive`` for a command that changes it (or creates it)."""
    from lcarchive.archive import Archive

    return Archive(archive, _storage_options(storage_option))


def _storage_options(items: list[str] | None, anon: bool = False) -> dict:
    options: dict = {"anon": True} if anon else {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--storage-option")
        key, value = item.split("=", 1)
        if value in ("true", "false", "null") or value.isdigit() or value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise typer.BadParameter(f"{item!r}: the value is not valid JSON", param_hint="--storage-option") from None
        if key == "endpoint_url":  # s3fs takes the endpoint inside client_kwargs
            options.setdefault("client_kwargs", {})["endpoint_url"] = value
        else:
            options[key] = value
    return options


@app.command()
def ingest(
    archive: ArchiveArg,
    inputs: Annotated[list[str], typer.Argument(help="Light-curve files, directories (searched recursively), globs or URLs.")],
    table_map: Annotated[
        str | None,
        typer.Option(
            "--table-map",
            help="How CSV/Parquet inputs give light curves: a JSON file, or inline JSON, e.g. "
            '\'{"mission": "tess", "target": "tic", "segment": 14, "time": "btjd", "flux": "flux"}\'. '
            "Keys: mission, label, target or target_id, segment or segment_column, time, time_format "
            "(btjd/bkjd, bjd, mjd), cadenceno, flux, flux_err, quality, units.",
            show_default=False,
        ),
    ] = None,
    storage_option: StorageOpt = None,
    input_option: Annotated[
        list[str] | None,
        typer.Option("--input-option", "-i", help="fsspec option KEY=VALUE for reading the inputs' URLs (repeatable)."),
    ] = None,
    anon: Annotated[
        bool,
        typer.Option("--anon", help="Read the inputs' URLs without credentials (a public bucket such as MAST's s3://stpubdata)."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Parse, encode and write on a Dask LocalCluster of this many worker processes.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Parse, encode and write on an existing Dask cluster (scheduler address).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Ingest light-curve files into ARCHIVE (created if absent).

    The product (TESS SPOC 2-min/20-s, TESS-SPOC, QLP, TGLC, eleanor, Kepler/K2 long and short
    cadence, the HLSPs, SkyPortal photometric series in HDF5 or JSON) is detected from each file;
    CSV/Parquet tables are read with --table-map. Files of one observation go into one group;
    ingesting a file again changes nothing; a different release of a stored light curve is kept
    beside it. Bad files are listed with the reason and the command exits 1; the good ones are
    ingested.
    """
    from lcarchive.formats.tables import load_table_map

    named = (
        "--table-map (inline JSON)"
        if table_map is not None and table_map.lstrip().startswith("{")
        else f"--table-map {table_map}"
    )
    mapping = None if table_map is None else load_table_map(table_map, named)
    absent = [i for i in inputs if "://" not in i and not any(c in i for c in "*?[") and not os.path.exists(i)]
    if absent:  # a mistyped path: nothing is written, and the exit code is not "some files skipped"
        err.print(f"lcarchive: no such file or folder: {', '.join(absent)}", highlight=False, markup=False)
        raise typer.Exit(2)
    store = _writable(archive, storage_option)
    store.check_root()
    if not store.exists:
        err.print(f"creating a new archive at {_absolute(store.url)}", highlight=False, markup=False)
    input_options = _storage_options(input_option, anon)
    empty: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    from lcarchive.ingest import expand_inputs

    files = expand_inputs(inputs, input_options, empty=empty, ignored=ignored)
    started = time.perf_counter()
    committed: list[tuple[str, int]] = []  # (archive version, light curves stored) per batch committed
    try:
        report = _ingest_with_progress(
            store, files, input_options, mapping, workers, scheduler, lambda version, stored: committed.append((version, stored))
        )
    except KeyboardInterrupt:
        # (an interrupt between a commit and its report undercounts by that one batch: "at least")
        if committed:
            said = (
                f"lcarchive: interrupted. At least {len(committed)} batch(es) of this ingest were committed "
                f"({sum(n for _, n in committed)} light curve(s) stored, the last as archive version {committed[-1][0]}); "
                "nothing half-written is visible; running the same command again completes the rest."
            )
        else:
            said = (
                "lcarchive: interrupted before its first batch was committed (or while it was); nothing half-written "
                "is visible; running the same command again completes the rest."
            )
        err.print(said, highlight=False, markup=False)
        raise SystemExit(_failed(130)) from None
    seconds = time.perf_counter() - started
    report.skipped[:0] = empty
    report.ignored[:0] = ignored
    out.print(
        f"ingested {len(report.added)} light curve(s) into {len(report.observations)} group(s); "
        f"{len(report.unchanged)} already stored; {len(report.superseded)} kept as other version(s); "
        f"{len(report.skipped)} skipped ({len(files)} file(s) in {seconds:.1f} s"
        + (f", {len(files) / seconds:.1f} files/s)" if len(files) >= 10 and seconds >= 1 else ")")
    )
    if report.ignored:
        kinds = sorted({what for _, what in report.ignored})
        out.print(
            f"  {len(report.ignored)} file(s) of the folders given are no light curves by their names, not read: "
            f"{'; '.join(kinds)}",
            highlight=False,
            markup=False,
        )
    counts = report.integrity_counts()
    if counts:
        out.print(
            "  integrity (DATASUM/CHECKSUM on the raw bytes): "
            + ", ".join(f"{counts[s]} {s}" for s in ("sound", "no-checksums", "stale-cards", "damaged") if s in counts),
            highlight=False,
            markup=False,
        )
    for source, _obs, target, group in report.superseded:
        flag = " (possibly damaged: its checksum cards fail)" if report.integrity.get(source) == "damaged" else ""
        out.print(f"  other version kept in {group}: target {target} from {source}{flag}", highlight=False, markup=False)
    for source, obs, target in report.added:
        if report.integrity.get(source) == "damaged":
            out.print(
                f"  stored possibly damaged (its checksum cards fail, no sound copy stored): target {target} "
                f"in {obs} from {source}",
                highlight=False,
                markup=False,
            )
    for source, warning in report.warnings:
        out.print(f"  warning: {source}: {warning}", highlight=False, markup=False)
    if report.skipped:
        err.print(f"[bold red]skipped {len(report.skipped)} file(s):[/]")
        for source, reason in report.skipped:
            err.print(f"  {source}: {reason}", highlight=False, markup=False)
        raise typer.Exit(1)


def _ingest_with_progress(
    store: Archive,
    files: list[str],
    input_options: dict | None,
    mapping: Any,
    workers: int | None,
    scheduler: str | None,
    committed: Any,
) -> Any:
    """``store.ingest`` with a progress bar on a terminal (a file per step)."""
    with (
        _cluster(workers, scheduler) as client,
        Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=err,
            disable=not err.is_terminal,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("", total=len(files))

        def step(name: str) -> None:
            progress.update(task, advance=1, description=name.rsplit("/", 1)[-1])

        return store.ingest(
            files, input_storage_options=input_options, progress=step, table_map=mapping, client=client, committed=committed
        )


@app.command("download")
def download_command(
    archive: Annotated[
        str | None,
        typer.Argument(
            help="Archive root (local directory or s3://bucket/prefix); with --verify, the download folder.",
            show_default=False,
        ),
    ] = None,
    dest: Annotated[
        str | None, typer.Argument(help="Local folder to write into (created if absent); not with --verify.", show_default=False)
    ] = None,
    target: TargetOpt = None,
    targets_file: TargetsFileOpt = None,
    targets_column: TargetsColumnOpt = None,
    observation: ObservationOpt = None,
    mission: MissionOpt = None,
    product: ProductOpt = None,
    segment: SegmentOpt = None,
    cone: ConeOpt = None,
    positions: PositionsOpt = None,
    radius: RadiusOpt = None,
    box: BoxOpt = None,
    camera: CameraOpt = None,
    ccd: CcdOpt = None,
    magnitude: MagnitudeOpt = None,
    time_range: TimeOpt = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Comma-separated light-curve variables besides time, flux, flux_err, quality, and analysis results "
            "(bls_period, bls...: analyses/<method> tables); 'all' for every one.",
        ),
    ] = None,
    include_superseded: SupersededOpt = False,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="The output format (listed by: lcarchive download --help).")
    ] = "zarr",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Requests in flight at once.")] = 16,
    verify_only: Annotated[
        bool, typer.Option("--verify", help="Re-check a finished download folder against its manifest.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Download on a Dask LocalCluster of this many worker processes.", show_default=False),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Download on an existing Dask cluster whose workers see DEST (scheduler address).",
            show_default=False,
        ),
    ] = None,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
    version: VersionOpt = None,
    as_of: AsOfOpt = None,
    missions: Annotated[
        str | None,
        typer.Option(
            "--missions",
            help="'all': each --target's light curves of every mission, through the archive's aliases "
            "(lcarchive alias): --target 'KIC 8462852' --missions all also downloads TIC 185336364's.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download chosen light curves from ARCHIVE into the local folder DEST.

    Only the chunks of the selected targets and variables are read, many requests at a time.
    Outputs are written under temporary names and recorded with sizes and SHA-256 in
    DEST/_lcarchive_manifest.jsonl: running the same command again skips what is complete.
    Requested targets or observations that are not found are listed and the exit code is 1;
    the rest is downloaded. `lcarchive download --verify DEST` re-hashes a finished download.
    """
    from lcarchive.downloads import download

    if verify_only:
        folder = dest or archive
        if folder is None or (dest is not None and archive is not None):
            raise typer.BadParameter("give the download folder alone: lcarchive download --verify DEST", param_hint="--verify")
        _verify(folder)
        return
    if archive is None or dest is None:
        raise typer.BadParameter("ARCHIVE and DEST are required", param_hint="ARCHIVE DEST")
    if missions is not None:
        if missions != "all":
            raise typer.BadParameter(f"{missions!r}: 'all' is the one value", param_hint="--missions")
        if not target:
            raise typer.BadParameter(
                "--missions all goes with --target (the stars whose every name is read)", param_hint="--missions"
            )
        if mission:
            raise typer.BadParameter("--missions all reads every mission: give no --mission", param_hint="--missions")
        target = _every_name(_open(archive, storage_option, anon, version, as_of), target)
    selection = _selection(
        target,
        targets_file,
        targets_column,
        observation,
        mission,
        product,
        segment,
        cone,
        positions,
        radius,
        box,
        camera,
        ccd,
        magnitude,
        time_range,
        include_superseded,
        [c.strip() for c in columns.split(",") if c.strip()] if columns else None,
    )
    store = _open(archive, storage_option, anon, version, as_of)
    with (
        _cluster(workers, scheduler) as client,
        Progress(
            TextColumn("[bold]download"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("", total=None, rate="")
        started = time.perf_counter()

        def step(done: int, total: int) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=done, total=total, rate=f"{done / elapsed:.1f} light curves/s")

        report = download(store, dest, selection, format=fmt, jobs=jobs, progress=step, client=client)
    mb = report.bytes_written / 1e6
    rate = report.bytes_read / 1e6 / report.seconds if report.seconds else 0.0
    out.print(
        f"{report.n_targets} light curve(s) selected: {len(report.written)} output(s) written ({mb:.1f} MB), "
        f"{len(report.skipped)} already complete; {report.requests} request(s), {report.bytes_read / 1e6:.1f} MB read "
        f"({rate:.1f} MB/s) in {report.seconds:.1f} s -> {report.dest}"
    )
    if report.empty:
        out.print(f"  {len(report.empty)} light curve(s) have no cadence in the time range: nothing written for them")
    if report.unwritable:
        err.print(f"[bold red]not written:[/] {len(report.unwritable)} light curve(s) this format cannot hold, e.g.")
        for obs_id, target_id, reason in report.unwritable[:5]:
            err.print(f"  {obs_id} target {target_id}: {reason}", highlight=False, markup=False)
    if report.missing_observations:
        err.print(f"[bold red]not in the archive:[/] observation(s) {_guessed(report.missing_observations, store)}")
    if report.missing_targets:
        shown = ", ".join(str(t) for t in report.missing_targets[:50])
        more = f" and {len(report.missing_targets) - 50} more" if len(report.missing_targets) > 50 else ""
        err.print(f"[bold red]not found in the selected observations:[/] target(s) {shown}{more}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("search")
def search_command(
    archive: ArchiveArg,
    target: TargetOpt = None,
    targets_file: TargetsFileOpt = None,
    targets_column: TargetsColumnOpt = None,
    observation: ObservationOpt = None,
    mission: MissionOpt = None,
    product: ProductOpt = None,
    segment: SegmentOpt = None,
    cone: ConeOpt = None,
    positions: PositionsOpt = None,
    radius: RadiusOpt = None,
    box: BoxOpt = None,
    camera: CameraOpt = None,
    ccd: CcdOpt = None,
    magnitude: MagnitudeOpt = None,
    time_range: TimeOpt = None,
    include_superseded: SupersededOpt = False,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", help="Column to sort by, '-' first for descending (repeatable); default target, observation."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many lines.", show_default=False)] = None,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many lines of the sorted result first.")] = 0,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="Filter on the columns and stored analyses' results, e.g. 'bls_period between 6 and 7 and bls_snr > 10'.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per (target, observation).")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Search many --positions on a Dask LocalCluster of this many worker processes.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Search many --positions on an existing Dask cluster (scheduler address).",
            show_default=False,
        ),
    ] = None,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
    version: VersionOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Find light curves in ARCHIVE by position, target or catalog values: one line per (target,
    observation) with its position, magnitude, number of cadences, coverage and location.

    Takes the selection options of `lcarchive download` (the same selection drives both). A cone
    or box reads only the HEALPix pixels of the sky index it touches. Requested targets or
    observations that are not found are listed on stderr and the exit code is 1.
    """
    from lcarchive.search import search

    selection = _selection(
        target,
        targets_file,
        targets_column,
        observation,
        mission,
        product,
        segment,
        cone,
        positions,
        radius,
        box,
        camera,
        ccd,
        magnitude,
        time_range,
        include_superseded,
    )
    store = _open(archive, storage_option, anon, version, as_of)
    with _cluster(workers, scheduler) as client:
        found = search(store.handle, selection, order_by=order_by or None, limit=limit, offset=offset, where=where, client=client)
    missing_targets, missing_obs = found.attrs["missing_targets"], found.attrs["missing_observations"]
    if as_json:
        records = json.loads(found.to_json(orient="records", double_precision=15))
        print(json.dumps(records, indent=1))
    else:
        table = Table(box=None, pad_edge=False)
        shown = [
            c
            for c in (
                "position",
                "target",
                "observation",
                "ra",
                "dec",
                "magnitude",
                "n_cadences",
                "coverage",
                "separation",
                *(c for c in found.columns if c.startswith(("bls_", "lombscargle_"))),
                "url",
            )
            if c in found
        ]
        for name in shown:
            table.add_column(name, justify="right" if name not in ("observation", "url") else "left")
        for row in found[shown].itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        out.print(table)
        out.print(f"{len(found)} light curve(s) of {found['target'].nunique()} target(s)", highlight=False)
    if missing_obs:
        err.print(f"[bold red]not in the archive:[/] observation(s) {_guessed(missing_obs, store)}")
    if missing_targets:
        shown_ids = ", ".join(str(t) for t in missing_targets[:50])
        more = f" and {len(missing_targets) - 50} more" if len(missing_targets) > 50 else ""
        err.print(f"[bold red]not found in the selected observations:[/] target(s) {shown_ids}{more}")
    if missing_obs or missing_targets:
        raise typer.Exit(1)


@app.command("verify")
def verify_command(
    archive: ArchiveArg,
    observation: ObservationOpt = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Check on a Dask LocalCluster of this many worker processes.", show_default=False),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Check on an existing Dask cluster (its scheduler's address, tcp://host:8786).",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Groups checked at once without a cluster.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the damaged objects as a JSON array.")] = False,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
    version: VersionOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Check every object of ARCHIVE's repositories (snapshots, manifests, transaction logs,
    repository info and refs against their SHA-256 digest records, or decoded) and read and decode
    every stored chunk of its groups (or of the observations given) and catalog: each damaged
    object is printed by repository, key and kind ("unreadable:" when the store did not answer,
    which is no damage), and the exit code is 1; a clean archive exits 0. `lcarchive rollback`
    returns a damaged family or catalog to its newest undamaged version.
    """
    from lcarchive.integrity import verify_archive

    store = _open(archive, storage_option, anon, version, as_of)
    with (
        _cluster(workers, scheduler) as client,
        Progress(
            TextColumn("[bold]verify"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("", total=None)
        report = verify_archive(
            store,
            observation or None,
            client=client,
            jobs=jobs,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if as_json:
        print(
            json.dumps(
                [
                    {"where": d.where, "key": d.key, "kind": d.kind, "reason": d.reason, "network": d.network}
                    for d in report.damaged
                ],
                indent=1,
            )
        )
    else:
        for damage in report.damaged:
            out.print(f"{'unreadable' if damage.network else 'damaged'}: {damage}", highlight=False, markup=False)
    rate = report.bytes / 1e6 / report.seconds if report.seconds else 0.0
    err.print(
        f"{report.repositories} repositories, {report.objects} metadata object(s), "
        f"{len(report.observations)} group(s), {report.chunks} chunk(s), {report.bytes / 1e6:.1f} MB decoded in "
        f"{report.seconds:.1f} s ({rate:.0f} MB/s): "
        + ("no damaged object" if report.ok else f"{len(report.damaged)} damaged object(s)"),
        highlight=False,
    )
    if not report.ok:
        raise typer.Exit(1)


@app.command("rollback")
def rollback_command(
    archive: ArchiveArg,
    family: Annotated[
        str | None, typer.Argument(help="The observation family to roll back (e.g. tess-spoc-2min-s0001).", show_default=False)
    ] = None,
    catalog: Annotated[
        bool, typer.Option("--catalog", help="Roll the catalog repository back (the archive's versions) instead.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be kept and lost.")] = False,
    storage_option: StorageOpt = None,
) -> None:
    """Bring a damaged FAMILY's repository (or, with --catalog, the catalog's) back to its newest
    undamaged version, and say what is lost: the commits above it and, for a family, the light
    curves the archive showed that it lacks (re-ingest their files). A family is pinned at the
    kept snapshot in one new version; the catalog's branch is reset to the kept version. The
    damaged objects passed over are moved to lcarchive-damaged/ in the repository.
    """
    from lcarchive.repair import rollback_catalog, rollback_family

    if (family is None) == (not catalog):
        raise typer.BadParameter("give a FAMILY or --catalog (one of them)", param_hint="FAMILY")
    store = _writable(archive, storage_option)
    report = rollback_catalog(store, dry_run) if catalog else rollback_family(store, family, dry_run)  # type: ignore[arg-type]  # not None without --catalog: checked above
    for damage in report.damage:
        out.print(f"damaged: {damage}", highlight=False, markup=False)
    if report.kept == report.head:
        out.print(f"{report.repository}: its newest version {report.head} is undamaged: nothing to roll back", highlight=False)
        return
    verb = "would roll back" if dry_run else "rolled back"
    out.print(f"{verb} {report.repository} from {report.head} to {report.kept}", highlight=False)
    for commit in report.lost_commits:
        out.print(
            f"lost commit {commit['snapshot']} ({commit['time']:%Y-%m-%d %H:%M:%S}): {commit['message']}",
            highlight=False,
            markup=False,
        )
    for target, observation in report.lost_light_curves:
        out.print(f"lost light curve: target {target} of {observation}", highlight=False)
    if catalog and report.lost_commits:
        out.print("the families keep their snapshots: lcarchive catalog build pins their newest ones", highlight=False)
    if report.lost_light_curves:
        out.print(f"{len(report.lost_light_curves)} light curve(s) lost: re-ingest their files", highlight=False)


@app.command("compute")
def compute_command(
    archive: ArchiveArg,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            metavar="bls|lombscargle",
            help="bls (astropy BoxLeastSquares: transits) or lombscargle (astropy LombScargle: rotation, pulsation).",
        ),
    ],
    target: TargetOpt = None,
    targets_file: TargetsFileOpt = None,
    targets_column: TargetsColumnOpt = None,
    observation: ObservationOpt = None,
    mission: MissionOpt = None,
    product: ProductOpt = None,
    segment: SegmentOpt = None,
    cone: ConeOpt = None,
    box: BoxOpt = None,
    camera: CameraOpt = None,
    ccd: CcdOpt = None,
    magnitude: MagnitudeOpt = None,
    per: Annotated[
        str,
        typer.Option(
            "--per",
            metavar="target|observation",
            help="One periodogram per star (its observations of one product stitched) or per light curve.",
        ),
    ] = "target",
    period_min: Annotated[float, typer.Option("--period-min", metavar="DAYS", help="Shortest period searched, d.")] = 0.5,
    period_max: Annotated[float, typer.Option("--period-max", metavar="DAYS", help="Longest period searched, d.")] = 15.0,
    duration: Annotated[
        list[float] | None,
        typer.Option(
            "--duration",
            metavar="DAYS",
            help="BLS transit duration, d (repeatable; default 0.04 0.06 0.08 0.12 0.16 0.24).",
            show_default=False,
        ),
    ] = None,
    frequency_factor: Annotated[
        float,
        typer.Option(
            "--frequency-factor",
            help="BLS grid: frequency step = this x shortest duration / baseline^2 (astropy autoperiod's rule; larger is "
            "coarser).",
        ),
    ] = 1.0,
    max_periods: Annotated[
        int,
        typer.Option("--max-periods", metavar="N", help="Most periods in the grid (a wider step past it, said before the run)."),
    ] = 100_000,
    flatten: Annotated[
        bool | None,
        typer.Option(
            "--flatten/--no-flatten",
            help="Detrend each observation with lightkurve's flatten first (default: yes for bls, no for lombscargle).",
            show_default=False,
        ),
    ] = None,
    flatten_window: Annotated[
        float | None,
        typer.Option(
            "--flatten-window",
            metavar="DAYS",
            help="Flatten window, d (default 3 x the longest duration: 0.72 d).",
            show_default=False,
        ),
    ] = None,
    quality_bitmask: Annotated[
        str,
        typer.Option("--quality-bitmask", metavar="default|hard|hardest", help="Quality mask first (lightkurve's)."),
    ] = "default",
    keep_periodogram: Annotated[
        bool, typer.Option("--periodogram", help="Also store each periodogram's power on the grid.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            help="Run on a Dask LocalCluster of this many worker processes.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Run on an existing Dask cluster (scheduler address).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per periodogram.")] = False,
    storage_option: StorageOpt = None,
) -> None:
    """Search every selected star of ARCHIVE for periodic signals and store the results in the
    archive with their lineage.

    Per star (default): its light curves of one product, each with the default quality mask,
    divided by its median and (BLS) flattened, stitched in time order; one periodogram on a period
    grid evenly spaced in frequency from 1/period-max to 1/period-min, its step set for the longest
    baseline (printed before the run, stored with the results). Per periodogram: the best period
    (d) and its power; for BLS also the depth, duration (d), t0 (mission time) and SNR. The
    results are one new archive version; the same computation on the same inputs again writes
    nothing. `Archive.analysis("bls")` reads them back, `lcarchive search --where "bls_period
    between 6 and 7"` filters by them.
    """
    from lcarchive.compute import Parameters, compute

    if quality_bitmask not in ("default", "hard", "hardest"):
        raise typer.BadParameter(f"{quality_bitmask!r}: default, hard or hardest", param_hint="--quality-bitmask")
    params = Parameters(
        method=method,
        period_min=period_min,
        period_max=period_max,
        durations=tuple(duration) if duration else Parameters.durations,
        frequency_factor=frequency_factor,
        quality_bitmask=quality_bitmask,
        keep_periodogram=keep_periodogram,
        per=per,
        flatten=flatten,
        flatten_window=flatten_window,
        max_periods=max_periods,
    )
    params.check()
    selection = _selection(
        target,
        targets_file,
        targets_column,
        observation,
        mission,
        product,
        segment,
        cone,
        None,
        None,
        box,
        camera,
        ccd,
        magnitude,
        None,
        False,
    )
    store = _open(archive, storage_option)

    def planned(n_periodograms, n_light_curves, grid):
        what = "each star's observations of one product stitched" if per == "target" else "one per light curve"
        window = params.window
        err.print(
            f"{method}: {n_periodograms} periodogram(s) of {n_light_curves} light curve(s), {what}; "
            + (f"flattened with a {window:g} d window; " if window is not None else "not flattened; ")
            + f"period grid: {grid.describe()}",
            highlight=False,
            markup=False,
        )

    with (
        _cluster(workers, scheduler) as client,
        Progress(
            TextColumn(f"[bold]{method}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("periodograms"),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("", total=None)
        report = compute(
            store,
            selection,
            params,
            client=client,
            planned=planned,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    frame = report.results
    values = ["period", "power", *(["depth", "duration", "t0", "snr"] if method == "bls" else []), "n_cadences"]
    if as_json:
        print(
            json.dumps(
                json.loads(frame[["target", "observations", *values]].to_json(orient="records", double_precision=15)), indent=1
            )
        )
    else:
        table = Table(box=None, pad_edge=False)
        for name in ("target", "observations", *values):
            table.add_column(
                name,
                justify="left" if name == "observations" else "right",
                overflow="fold" if name == "observations" else "ellipsis",
            )
        for row in frame[["target", "observations", *values]].itertuples(index=False):
            table.add_row(_cell(row[0]), " ".join(row[1]), *(_cell(v) for v in row[2:]))
        out.print(table)
    rate = len(frame) / report.seconds if report.seconds else 0.0
    what = "already stored, nothing written" if report.unchanged else f"stored as version {report.version}"
    err.print(
        f"{report.analysis.id}: {len(frame)} periodogram(s) in {report.seconds:.1f} s ({rate:.2f}/s), {what}"
        + (f"; {len(report.skipped)} light curve(s) skipped (too few good cadences)" if report.skipped else ""),
        highlight=False,
    )


def _cluster(workers: int | None, scheduler: str | None):
    """A Dask client for ``--workers N`` (a LocalCluster) or ``--scheduler ADDRESS``, or a context
    giving None."""
    import contextlib

    if workers is not None and scheduler is not None:
        raise typer.BadParameter("give --workers or --scheduler, not both", param_hint="--workers/--scheduler")
    if workers is None and scheduler is None:
        return contextlib.nullcontext(None)
    if workers is not None and workers < 1:
        raise typer.BadParameter(f"{workers}: at least 1", param_hint="--workers")

    @contextlib.contextmanager
    def client():
        import logging

        from dask.distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)
        if scheduler is not None:
            try:
                with Client(scheduler, timeout="10s") as c:
                    yield c
            except OSError as exc:
                from lcarchive.clients import first_line

                raise LcarchiveError(f"Dask scheduler {scheduler}: unreachable ({first_line(str(exc))})") from None
            return
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as c,
        ):
            yield c

    return client()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)


@app.command("export")
def export_command(
    archive: ArchiveArg,
    dest: Annotated[str, typer.Argument(help="Local folder to write into (created if absent).")],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="Target ID (repeatable): 261136679, 'TIC 261136679', 'Gaia DR3 5707485527450614656', '(11251)'.",
        ),
    ] = None,
    observation: Annotated[list[str] | None, typer.Option("--observation", help="Observation ID (repeatable).")] = None,
    include_superseded: Annotated[bool, typer.Option("--include-superseded", help="Also the groups of older releases.")] = False,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="fits (each light curve in its source format), or any download format.")
    ] = "fits",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Requests in flight at once.")] = 16,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
    version: VersionOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Write light curves of ARCHIVE back as files: by default each as its source file (FITS
    rebuilt byte for byte; QLP's HDF5 with every dataset and attribute).

    The same as `lcarchive download ARCHIVE DEST --format fits`; see `lcarchive download --help`
    for every selection option.
    """
    download_command(
        archive,
        dest,
        target=target,
        targets_file=None,
        targets_column=None,
        observation=observation,
        mission=None,
        product=None,
        segment=None,
        cone=None,
        positions=None,
        radius=None,
        box=None,
        camera=None,
        ccd=None,
        magnitude=None,
        time_range=None,
        columns=None,
        include_superseded=include_superseded,
        fmt=fmt,
        jobs=jobs,
        verify_only=False,
        storage_option=storage_option,
        anon=anon,
        version=version,
        as_of=as_of,
    )


def _verify(folder: str) -> None:
    from lcarchive.downloads import verify

    report = verify(folder)
    if report.ok:
        out.print(
            f"verified {report.checked} file(s) in {report.dest}: all match the manifest, none of what it promises is missing"
        )
    else:
        damaged = len(report.problems) - len(report.missing)
        parts = [f"{len(report.missing)} missing" if report.missing else "", f"{damaged} damaged" if damaged else ""]
        err.print(
            f"lcarchive: {report.dest}: {' and '.join(p for p in parts if p)} of the {report.promised} output(s) the "
            f"manifest promises ({report.checked} file(s) re-hashed)"
            + ("; run the same download again to complete it" if report.missing else ""),
            highlight=False,
            markup=False,
        )
    for path, problem in report.problems[:50]:
        err.print(f"  {path}: {problem}", highlight=False, markup=False)
    if len(report.problems) > 50:
        err.print(f"  ... and {len(report.problems) - 50} more", highlight=False, markup=False)
    if report.unrecorded:
        out.print(f"  {len(report.unrecorded)} file(s) not recorded by the manifest (left alone), e.g. {report.unrecorded[0]}")
    if not report.ok:
        raise typer.Exit(1)


TargetText = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="Only observations holding this target: 261136679, 'TIC 261136679', "
        "'KIC 11442793', 'EPIC 211436265', 'Gaia DR3 5707485527450614656', '3I/ATLAS', '(11251)' "
        "(a catalog named keeps that catalog's targets only).",
    ),
]


def _target_lines(store: Archive, text: str):
    """The target index lines of a target given as text, its catalog respected (any catalog:
    'Gaia DR3 5707485527450614656', '3I/ATLAS'; :func:`lcarchive.stars.target_of`)."""
    from lcarchive.stars import of_catalog, target_of

    try:
        number, catalog = target_of(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from None
    index = store.target_index([number])
    return number, of_catalog(index[index["target"] == number], catalog)


@app.command("ls")
def ls(
    archive: ArchiveArg,
    target: TargetText = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per observation.")] = False,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
    version: VersionOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """List the observations of ARCHIVE, with where their groups are.

    With --target, only those holding the target, each with the target's own rows (cadences
    its file has), coverage (the fraction of the sector/quarter/campaign they span) and the
    integrity of its input file (sound, no-checksums, stale-cards, damaged: its DATASUM and
    CHECKSUM cards checked on its raw bytes).
    `xarray.open_dataset(ARCHIVE, engine="lcarchive", group=ID)` opens a group.
    """
    store = _open(archive, storage_option, anon, version, as_of)
    observations = store.observations
    held = None
    if target is not None:
        number, lines = _target_lines(store, target)
        held = {
            str(o): (int(n), float(c), str(i))
            for o, n, c, i in zip(lines["observation"], lines["n_cadences"], lines["coverage"], lines["integrity"], strict=True)
        }
        observations = [o for o in observations if o.id in held]
    rows = []
    for o in observations:
        row = {
            "id": o.id,
            "url": _absolute(store.url),
            "group": store.group_path(o.id),
            "mission": o.mission,
            "product": o.product,
            "segment_kind": o.segment_kind,
            "segment": o.segment,
            "n_targets": o.n_targets,
            "n_cadences": o.n_cadences,
            "cadenceno_min": o.cadenceno_min,
            "cadenceno_max": o.cadenceno_max,
            "time_min": o.time_min,
            "time_max": o.time_max,
            "time_format": o.time_format,
            "superseded_release": o.superseded_release,
            "current": o.current,
            "derived_from": o.derived_from,
        }
        if held is not None:
            n, c, state = held[o.id]
            row.update(
                {
                    "target": number,
                    "target_n_cadences": None if n < 0 else n,
                    "target_coverage": None if c != c else round(c, 6),
                    "target_integrity": state.replace("\n", ", ") or None,
                }
            )
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
    elif rows or target is None:
        _print_observations(rows, observations, held is not None)
    if target is not None and not rows:
        err.print(f"target {target} is in no observation of {store.url}")
        raise typer.Exit(1)


def _guessed(missing: list[str], store: Archive) -> str:
    """Observation IDs an archive lacks, each with the closest IDs it has."""
    known = [o.id for o in store.observations]
    said = []
    for name in missing:
        close = closest(name, known, cutoff=0.8)[:2]
        said.append(f"{name} (did you mean {' or '.join(close)}?)" if close else name)
    return ", ".join(said)


def _absolute(url: str) -> str:
    """An archive's URL that opens from any directory: a local path made absolute."""
    if "://" in url and not url.startswith("file://"):
        return url
    return os.path.abspath(url.removeprefix("file://"))


def _print_observations(rows: list[dict], observations: list, of_target: bool = False) -> None:
    columns: tuple[str, ...] = ("id", "targets", "cadences", "time range", "group")
    if of_target:  # one more
        columns = ("id", "rows", "coverage", "integrity", "time range", "group")
    table = Table(*columns, box=None)
    for r, o in zip(rows, observations, strict=True):
        span = f"{o.time_min:.3f}..{o.time_max:.3f} {o.time_format}" if o.time_min is not None else "-"
        name = (
            r["id"]
            + (" (other version)" if o.superseded_release else "")
            + (f" (derived from {o.derived_from})" if o.derived_from else "")
        )
        if of_target:
            n, c = r["target_n_cadences"], r["target_coverage"]
            table.add_row(
                name,
                "-" if n is None else str(n),
                "-" if c is None else f"{c:.1%}",
                r["target_integrity"] or "-",
                span,
                r["group"],
            )
        else:
            table.add_row(name, str(o.n_targets), str(o.n_cadences), span, r["group"])
    out.print(table)


def _summary(catalog: Catalog, index) -> dict:
    current = [o for o in catalog.observations if not o.superseded_release]
    targets = set(index["target"].tolist())
    return {
        "format_version": catalog.format_version,
        "missions": [m.name for m in catalog.missions],
        "products": [p.name for p in catalog.products],
        "n_observations": len(catalog.observations),
        "n_current_observations": len(current),
        "n_release_groups": len(catalog.observations) - len(current),
        "n_datasets": len(catalog.datasets),
        "n_targets": len(targets),
        "n_light_curves": sum(o.n_targets for o in catalog.observations),
        "observations": [
            {"id": o.id, "n_targets": o.n_targets, "n_cadences": o.n_cadences, "instruments": o.instruments}
            for o in catalog.observations
        ],
    }


@catalog_app.command("show")
def catalog_show(
    archive: ArchiveArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole catalog as JSON.")] = False,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
    version: VersionOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Print a summary of the catalog of ARCHIVE (or the whole catalog with --json)."""
    store = _open(archive, storage_option, anon, version, as_of)
    if as_json:
        sys.stdout.write(store.catalog.model_dump_json(indent=1) + "\n")
        return
    from lcarchive.layout import FORMAT_VERSION as STORE_FORMAT

    s = _summary(store.catalog, store.target_index())
    out.print(f"[bold]{store.url}[/] (store format {STORE_FORMAT}, catalog schema {s['format_version']})")
    out.print(
        f"{s['n_targets']} target(s), {s['n_light_curves']} light curve(s) in {s['n_current_observations']} "
        f"observation(s) (+{s['n_release_groups']} older-release group(s)), {s['n_datasets']} dataset(s)"
    )
    table = Table("observation", "mission", "product", "targets", "cadences", "instruments", box=None)
    for o in store.observations:
        shown = ", ".join(o.instruments[:3]) + (f", +{len(o.instruments) - 3} more" if len(o.instruments) > 3 else "")
        table.add_row(o.id, o.mission, o.product, str(o.n_targets), str(o.n_cadences), shown)
    out.print(table)


@catalog_app.command("build")
def catalog_build(archive: ArchiveArg, storage_option: StorageOpt = None) -> None:
    """Rebuild the catalog entries and the target index of ARCHIVE from the observation groups in
    its store (one new version; a repair, e.g. after an ingest was killed between commits)."""
    store = _writable(archive, storage_option)
    catalog = store.build_catalog()
    out.print(f"catalog rebuilt from {len(catalog.observations)} group(s): {store.url}")


@app.command("history")
def history_command(
    archive: ArchiveArg,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Show the latest N versions only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, newest first.")] = False,
    storage_option: StorageOpt = None,
    anon: AnonOpt = False,
) -> None:
    """List the versions of ARCHIVE, newest first: every ingest batch, catalog build and
    migration is one, with its time (UTC), its message (naming its inputs) and its tags.
    `--version ID` or `--as-of DATE` on ls, catalog show, download and export read one."""
    store = _open(archive, storage_option, anon)
    versions = store.history(limit)
    if as_json:
        rows = [
            {**v, "time": v["time"].isoformat(), "metadata": {k: x for k, x in v["metadata"].items() if not k.startswith("__")}}
            for v in versions
        ]
        sys.stdout.write(json.dumps(rows, indent=1, default=str) + "\n")
        return
    table = Table("version", "time (UTC)", "tags", "message", box=None)
    for v in versions:
        table.add_row(v["snapshot"], v["time"].strftime("%Y-%m-%d %H:%M:%S"), ", ".join(v["tags"]), v["message"])
    out.print(table)


@app.command("alias")
def alias_command(
    archive: ArchiveArg,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Two names of one star, '<catalog> <ID>' ('KIC 8462852' 'TIC 185336364'): recorded as one star. "
            "One name: list that star's names. None: list every pair.",
            show_default=False,
        ),
    ] = None,
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove the pair of the two names (kept removed: no rule adds it again).")
    ] = False,
    note: Annotated[str, typer.Option("--note", help="Why the two are one star (kept with the pair).")] = "",
    storage_option: StorageOpt = None,
    version: VersionOpt = None,
) -> None:
    """Cross-identify stars in ARCHIVE: list the alias table, add a pair of names of one star,
    or remove one. Ingest adds pairs itself, from identifiers the files carry (TGLC's Gaia DR3 ID)
    and from the positional cross-match of the archive's targets (catalog/aliases.json gives the
    radius); `light_curve(..., missions="all")` and `download --missions all` read through them."""
    given = list(names or [])
    if len(given) > 2:
        raise typer.BadParameter("give at most two names", param_hint="NAMES")
    if remove and len(given) != 2:
        raise typer.BadParameter("--remove needs the two names of the pair", param_hint="--remove")
    if len(given) == 2:
        if version is not None:
            raise typer.BadParameter("a pair is added to the latest version: give no --version", param_hint="--version")
        store = _writable(archive, storage_option)
        try:
            if remove:
                snapshot = store.remove_alias(given[0], given[1])
                said = "removed" if snapshot else "no such pair: nothing removed"
            else:
                snapshot = store.add_alias(given[0], given[1], note=note)
                said = "recorded" if snapshot else "already recorded: nothing changed"
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="NAMES") from None
        out.print(f"{given[0]} = {given[1]}: {said}" + (f" (version {snapshot})" if snapshot else ""), highlight=False)
        return
    store = _open(archive, storage_option, False, version, None)
    try:
        table = store.aliases(given[0] if given else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAMES") from None
    if given:
        sys.stdout.write(" = ".join(store.names(given[0])) + "\n")
    for row in table.itertuples(index=False):
        sep = (
            ""
            if row.separation_arcsec is None or row.separation_arcsec != row.separation_arcsec
            else f", {row.separation_arcsec:.3f} arcsec"
        )
        sys.stdout.write(f"{row.a}\t{row.b}\t{row.source}\t{row.evidence}{sep}\n")  # tab-separated, as written
    if table.empty:
        sys.stdout.write("no aliases" + (f" of {given[0]}" if given else "") + "\n")


@app.command("tag")
def tag_command(
    archive: ArchiveArg,
    name: Annotated[str, typer.Argument(help="The tag, e.g. dr1: `--version dr1` reads the archive as it is now.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Tag this version (a snapshot ID) instead of the latest.")
    ] = None,
    storage_option: StorageOpt = None,
) -> None:
    """Name a version of ARCHIVE (the latest by default), e.g. a data release. A tagged version
    stays readable whatever is ingested later, and `lcarchive gc` keeps it."""
    store = _writable(archive, storage_option)
    snapshot = store.tag(name, version)
    out.print(f"tagged {snapshot} of {store.url} as {name}")


@app.command("gc")
def gc_command(
    archive: ArchiveArg,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            help="Expire versions older than this many days. Without it, gc only shows the versions and deletes nothing.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the versions --older-than would expire; delete nothing.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help="Seconds to wait for running writers (ingest, compute, tag) before giving up.",
        ),
    ] = 0.0,
    storage_option: StorageOpt = None,
) -> None:
    """Expire the versions of ARCHIVE older than --older-than days (tagged versions and the
    latest are kept) and delete the objects no kept version reaches (replaced chunks, shards
    rewritten by appends). Older versions can no longer be read afterwards.

    Safe beside writers: gc refuses while an ingest, compute, tag or catalog build runs (or
    waits --wait seconds for them), writers wait while gc runs, and nothing younger than one
    day (LCARCHIVE_GC_SAFETY_SECONDS) is expired or deleted, --older-than 0 included."""
    import datetime as dt

    store = _writable(archive, storage_option)
    if older_than is None or dry_run:
        versions = store.history()
        now = dt.datetime.now(dt.UTC)
        ages = [(now - v["time"]).total_seconds() / 86400 for v in versions]
        out.print(
            f"{store.url}: {len(versions)} version(s), {min(ages, default=0):.1f} to {max(ages, default=0):.1f} days "
            f"old; {sum(1 for v in versions if v['tags'])} tagged (always kept)",
            highlight=False,
        )
        if older_than is None:
            out.print(
                "nothing deleted: --older-than DAYS expires the untagged versions older than DAYS days "
                "(--dry-run first shows which)",
                highlight=False,
            )
            return
        bound, expiring = store.expiring_versions(dt.timedelta(days=older_than))
        out.print(
            f"--older-than {older_than:g} would expire {len(expiring)} version(s) "
            f"(older than {bound:%Y-%m-%d %H:%M:%S} UTC) and delete the objects only they reach; nothing deleted",
            highlight=False,
        )
        for v in expiring[:20]:
            out.print(f"  {v['snapshot']}  {v['time']:%Y-%m-%d %H:%M:%S}  {v['message'][:80]}", highlight=False, markup=False)
        return
    stats = store.collect_garbage(dt.timedelta(days=older_than), wait=wait)
    out.print(
        f"{stats['versions_expired']} version(s) and {stats['snapshots_expired']} group snapshot(s) expired; "
        f"{stats['objects_deleted']} object(s), {stats['bytes_deleted'] / 1e6:.1f} MB deleted from {store.url} "
        f"(everything since {stats['kept_after']:%Y-%m-%d %H:%M:%S} UTC kept)"
    )


@app.command("migrate")
def migrate_command(
    old: Annotated[str, typer.Argument(help="An archive of store format v1 (catalog.json and plain Zarr groups).")],
    new: Annotated[str, typer.Argument(help="Where to write the format v2 archive (a new local folder or prefix).")],
    storage_option: StorageOpt = None,
) -> None:
    """Convert an archive of store format v1 into a new archive of format v2, group by group
    (every variable, attribute and light curve kept; OLD is left as it is). Running it again
    after an interruption completes it."""
    from lcarchive.migrate import migrate

    options = _storage_options(storage_option)
    report = migrate(old, new, options, options)
    out.print(
        f"migrated {report.groups} group(s), {report.light_curves} light curve(s) from {old} to {new}"
        + (f" ({report.already} already there)" if report.already else "")
    )


@catalog_app.command("schema")
def catalog_schema() -> None:
    """Print the JSON Schema of the catalog document."""
    from lcarchive.catalog.models import schema_json

    sys.stdout.write(schema_json())


_INTERRUPTED = (
    "lcarchive: interrupted. What was committed before it stays (each ingest batch is one commit; "
    "nothing half-written is visible); running the same command again completes the rest."
)


def _failed(code: int) -> int:
    """End the process after a failure, now.

    A failed read can leave requests in flight on zarr's event loop and in icechunk's runtime;
    finalising them at interpreter exit prints a warning per pending task after the one-line
    error (and has crashed the interpreter). Nothing needs finalising: every write is committed
    or invisible (docs/format.md), so the process ends without it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_METAVARS = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH", "datetime": "DATE"}
_USAGE = {"download": "[OPTIONS] ARCHIVE DEST | --verify DEST"}
"""Usage lines that click cannot derive (arguments that are required but for one option)."""
_EXAMPLES = {
    "ingest": [
        "lcarchive ingest ./archive ../shared/data/lightcurves/spoc-2min 'more/*.fits'",
        "lcarchive ingest s3://bucket/archive s3://stpubdata/tess/public/tid/s0001/... --anon",
    ],
    "download": [
        "lcarchive download ./archive ./tois -t 'TIC 261136679' --format parquet",
        "lcarchive download s3://bucket/archive ./s14 --product spoc-2min --sector 14",
        "lcarchive download --verify ./tois",
        "lcarchive download ./archive ./boyajian -t 'KIC 8462852' --missions all",
    ],
    "search": ["lcarchive search ./archive --cone 84.29 -80.47 0.5", "lcarchive search ./archive -t 'TIC 261136679' --json"],
    "verify": ["lcarchive verify ./archive --observation tess-spoc-2min-s0001"],
    "rollback": ["lcarchive rollback ./archive tess-spoc-2min-s0001 --dry-run"],
    "compute": [
        "lcarchive compute ./archive --method bls --target 'TIC 39903405'",
        "lcarchive compute ./archive --method lombscargle --sector 1 --per observation --workers 2",
    ],
    "export": ["lcarchive export ./archive ./fits -t 'TIC 261136679'"],
    "ls": ["lcarchive ls ./archive", "lcarchive ls ./archive --target 'TIC 261136679' --json"],
    "show": ["lcarchive catalog show ./archive --json"],
    "build": ["lcarchive catalog build ./archive"],
    "history": ["lcarchive history ./archive --limit 5"],
    "tag": ["lcarchive tag ./archive dr1", "lcarchive ls ./archive --version dr1"],
    "alias": [
        "lcarchive alias ./archive 'KIC 8462852' 'TIC 185336364'",
        "lcarchive alias ./archive 'KIC 8462852'",
        "lcarchive alias ./archive 'KIC 8462852' 'TIC 185336364' --remove",
    ],
    "gc": ["lcarchive gc ./archive", "lcarchive gc ./archive --older-than 30 --dry-run"],
    "migrate": ["lcarchive migrate ./old-archive ./archive"],
    "schema": ["lcarchive catalog schema > catalog.schema.json"],
}
"""One or two examples per command, shown at the end of its --help."""


def _plain_metavars(command: Any) -> Any:
    """Give every option and argument a metavar a person reads (TEXT, N, PATH; ARCHIVE for an
    argument) where typer would print Python types (``<list[str]>``, ``<bool>``)."""
    import re

    for param in getattr(command, "params", []):
        if param.metavar is not None or getattr(param, "is_flag", False) or param.name == "help":
            continue
        if param.param_type_name == "argument":
            param.metavar = param.name.upper()
            param.display_type = lambda ctx: ""  # the name says it: no "<str>" beside it
            shown = param.metavar + ("..." if param.nargs == -1 else "")
            param.get_usage_pieces = lambda ctx, shown=shown, required=param.required: (  # ARCHIVE, not {ARCHIVE}
                [shown if required else f"[{shown}]"]
            )
            continue
        label = re.sub(r"^list\[(.*)\]$", r"\1", param.display_type(None).strip("<>"))
        parts = [_METAVARS.get(p, p.upper()) for p in label.split(",")]
        param.metavar = " ".join(parts) if "|" not in label else "[" + label + "]"
    if (usage := _USAGE.get(command.name or "")) is not None:
        command.collect_usage_pieces = lambda ctx, usage=usage: [usage]
    examples = _EXAMPLES.get(command.name or "")
    if examples and command.help and "Examples:" not in command.help:
        command.help += "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples)  # \b: kept as written
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)
    return command


def _format_help(command: Any, args: list[str]) -> None:
    """``download --format``'s help from the output-format registry, when the download command
    runs: the registry imports the download machinery, which other commands (and ``--help``)
    start faster without."""
    if args[:1] == ["download"]:
        from lcarchive.downloads.formats import format_choices

        for param in command.commands["download"].params:
            if param.name == "fmt":
                param.help = f"{format_choices()}."


def main(args: list[str] | None = None) -> int:
    """Run the CLI; errors from lcarchive become one-line messages and exit code 2."""
    try:
        command = _plain_metavars(typer.main.get_command(app))
        _format_help(command, sys.argv[1:] if args is None else args)
        rc = command.main(args=args, prog_name="lcarchive", standalone_mode=False)
    except LcarchiveError as exc:
        err.print(f"lcarchive: {exc}", highlight=False, markup=False)
        return _failed(2)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        rc = 130
    except Exception as exc:
        # usage errors (click's ClickException, which typer may bundle under another module)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return _failed(exc.exit_code)  # type: ignore[attr-defined]  # click's exceptions: hasattr/getattr checked above; (a usage error ended by interpreter finalisation crashed once: SIGSEGV)
        if os.environ.get("LCARCHIVE_DEBUG"):
            raise
        err.print(f"lcarchive: {_one_line(exc)}", highlight=False, markup=False)
        return _failed(2)
    if rc == 130:  # Ctrl-C: typer turns KeyboardInterrupt into this exit code, silently
        err.print(_INTERRUPTED, highlight=False, markup=False)
        return _failed(130)
    return rc if isinstance(rc, int) else 0


def _one_line(exc: BaseException) -> str:
    """A failure no command turned into an lcarchive error, as one line (LCARCHIVE_DEBUG=1: the traceback)."""
    from lcarchive.clients import classify, first_line

    if isinstance(exc, OSError) and exc.filename is not None and classify(exc) in ("failed", "access denied", "not found"):
        return f"{exc.filename}: {exc.strerror or first_line(str(exc))}"
    kind = classify(exc)
    if kind is not None:
        return f"the store failed ({kind}): {first_line(str(exc) or type(exc).__name__)}"
    return (
        f"unexpected error {type(exc).__name__}: {first_line(str(exc))} "
        "(a bug: please report it; LCARCHIVE_DEBUG=1 shows the traceback)"
    )


if __name__ == "__main__":
    sys.exit(main())
