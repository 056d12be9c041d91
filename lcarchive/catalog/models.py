"""Pydantic models of the lcarchive catalog.

The catalog is one JSON document at the root of an archive (``catalog.json``).
Its static part (missions, target catalogs, instruments, products, photometric
sources, processing methods and quality-flag tables) is shipped as data in the
repository's ``catalog/`` folder; its dynamic part (observations and datasets)
is derived from the observation groups in the store, so that
``lcarchive catalog build`` can always rebuild it from the store alone.

The JSON Schema of ``Catalog`` is generated into ``catalog/schema/`` by
``tools/export_schema.py`` and checked to be current by the test suite.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CATALOG_FORMAT_VERSION",
    "Alias",
    "Analysis",
    "Catalog",
    "ColumnMap",
    "DataSet",
    "DataSetDefinition",
    "DesignationForm",
    "DetectionRule",
    "FluxErrRule",
    "GenericColumns",
    "IdRange",
    "InputFile",
    "Instrument",
    "Mission",
    "MissionCatalog",
    "Observation",
    "PhotometricSource",
    "ProcessingMethod",
    "ProcessingTool",
    "Product",
    "QualityFlag",
    "QualityFlagTable",
    "Release",
    "SegmentRange",
    "SegmentSpan",
    "TimeSystem",
    "VersionRule",
    "schema_json",
]

CATALOG_FORMAT_VERSION = "1"
"""Version of the catalog document and of the store layout (``docs/format.md``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class TimeSystem(_Model):
    """The time stamps a mission's light curves are given in.

    TESS uses BTJD = BJD_TDB - 2457000 and Kepler/K2 use BKJD = BJD_TDB - 2454833
    (FITS keywords ``BJDREFI``/``BJDREFF``, ``TIMESYS``, ``TIMEUNIT``; TESS Science
    Data Products Description Document, Kepler Archive Manual section 2.3.2).
    """

    format_name: str = Field(description="Short name of the time stamps, e.g. 'BTJD' or 'BKJD'.")
    unit: str = Field(description="Unit of the time stamps, e.g. 'd' (days).")
    reference_epoch: float = Field(
        description="Julian date subtracted from BJD to form the time stamps, in days (BJDREFI + BJDREFF)."
    )
    scale: str = Field(description="Time scale, e.g. 'tdb' (Barycentric Dynamical Time).")
    reference_position: str = Field(
        default="barycenter",
        description="Where the time stamps are referred to: 'barycenter' (solar-system barycentre).",
    )
    description: str = ""


class IdRange(_Model):
    """An inclusive range of target IDs a mission issued."""

    min: int
    max: int
    description: str = ""


class DesignationForm(_Model):
    """One written form of a designation (a catalog whose IDs are text: solar-system bodies)."""

    pattern: str = Field(description="Regular expression (Python re, full match, case-sensitive) of the form, with named groups.")
    canonical: str = Field(
        description="How an ID of this form is stored: a str.format template of the pattern's named groups "
        "('({number})', '{number}{kind}', '{year} {half}{order}')."
    )
    description: str = ""


class MissionCatalog(_Model):
    """A catalog whose IDs name targets: the missions' input catalogs (TIC, KIC, EPIC), and the catalogs
    some light curves are named by instead (Gaia DR2 and DR3 source IDs; solar-system designations)."""

    name: str = Field(description="Name: 'TIC', 'KIC', 'EPIC', 'Gaia DR2', 'Gaia DR3', 'MPC'.")
    description: str = ""
    id_kind: Literal["integer", "designation"] = Field(
        default="integer",
        description="'integer': IDs are integers in id_ranges; 'designation': IDs are text of one of designation_forms.",
    )
    prefixes: list[str] = Field(
        default_factory=list,
        description="Other prefixes a user may write before an ID of this catalog, besides its name "
        "(case and spaces ignored: 'Gaia DR3 5707485527450614656', 'DR3 5707485527450614656').",
    )
    designation_forms: list[DesignationForm] = Field(
        default_factory=list, description="For id_kind 'designation': the forms an ID may take."
    )
    id_keyword: str = Field(description="Primary-header keyword carrying the ID (TICID, KEPLERID).")
    min_id: int = Field(default=1, description="Smallest valid ID (of all ranges).")
    max_id: int = Field(description="Largest valid ID (of all ranges).")
    id_ranges: list[IdRange] = Field(
        default_factory=list, description="The ranges of IDs the mission issued; empty: min_id..max_id."
    )
    reference: str = ""

    def ranges(self) -> list[IdRange]:
        """The valid ID ranges (``id_ranges``, else one range min_id..max_id)."""
        return self.id_ranges or [IdRange(min=self.min_id, max=self.max_id)]

    def valid(self, target: int) -> bool:
        """True if ``target`` is in one of the catalog's ID ranges."""
        return any(r.min <= target <= r.max for r in self.ranges())

    def describe_ranges(self) -> str:
        """The ranges as text: ``1..13161029, 100000001..199999999``."""
        return ", ".join(f"{r.min}..{r.max}" for r in self.ranges())


class SegmentSpan(_Model):
    """Sectors, quarters or campaigns a mission observed (inclusive ``min``..``max``)."""

    min: int
    max: int
    name: str | None = Field(
        default=None, description="Written in observation IDs instead of the number (K2's engineering test: 'et')."
    )
    time: list[float] | None = Field(
        default=None,
        description="[start, stop] in the mission's time (d): files that carry no segment keyword but whose time "
        "stamps fall in this span belong to it (K2's engineering test).",
    )
    description: str = ""


class Mission(_Model):
    """A space mission whose light curves the archive holds."""

    name: str = Field(description="Mission name as written in lcarchive IDs: 'tess', 'kepler', 'k2'.")
    title: str = Field(description="Human-readable mission name.")
    description: str = ""
    telescope: str = Field(description="Value of the FITS TELESCOP keyword.")
    segment_kind: Literal["sector", "quarter", "campaign"] = Field(
        description="How the mission divides its observations in time."
    )
    segment_keyword: str = Field(description="FITS keyword giving the segment (SECTOR, QUARTER, CAMPAIGN).")
    target_catalog: str = Field(description="Name of the MissionCatalog of its target IDs.")
    time_system: TimeSystem
    instrument: str = Field(description="Name of the top-level Instrument.")
    segments: list[SegmentSpan] = Field(
        default_factory=list, description="The sectors/quarters/campaigns the mission has; empty: any number >= 0."
    )

    def segment_valid(self, segment: int) -> bool:
        """True if ``segment`` is one of the mission's sectors/quarters/campaigns."""
        return not self.segments or any(s.min <= segment <= s.max for s in self.segments)

    def describe_segments(self) -> str:
        """The mission's segments as text: ``0..19, 91..92, ...``."""
        return ", ".join(str(s.min) if s.min == s.max else f"{s.min}..{s.max}" for s in self.segments) or ">= 0"

    def segment_name(self, segment: int) -> str | None:
        """The name a segment is written with in observation IDs, if it has one."""
        return next((s.name for s in self.segments if s.name and s.min <= segment <= s.max), None)


class Instrument(_Model):
    """A node of a mission's focal plane: TESS -> camera -> CCD; Kepler -> module -> output."""

    name: str = Field(description="Path-like name, e.g. 'tess/camera1/ccd2' or 'kepler/module18/output3'.")
    kind: str = Field(description="'photometer', 'camera', 'ccd', 'module' or 'output'.")
    number: int | None = Field(default=None, description="Camera/CCD/module/output number.")
    description: str = ""
    children: list[Instrument] = Field(default_factory=list)


class PhotometricSource(_Model):
    """How a flux was measured on the pixels: an aperture, a PSF fit, ..."""

    name: str
    method: Literal["aperture", "psf", "difference-imaging", "other"]
    description: str = ""


class ProcessingMethod(_Model):
    """How a measured flux was processed: simple aperture photometry, PDC, KSP, ..."""

    name: str = Field(description="Short name, e.g. 'SAP', 'PDC', 'KSP', 'BKG'.")
    description: str = ""
    reference: str = ""


class SegmentRange(_Model):
    """An inclusive range of sectors/quarters/campaigns; ``max`` None is open-ended."""

    min: int | None = None
    max: int | None = None


class QualityFlag(_Model):
    """One bit of a pipeline's quality bitmask."""

    bit: int = Field(ge=0, le=31, description="Zero-based bit position; value == 2**bit.")
    value: int = Field(description="Integer value of the bit.")
    name: str
    description: str = ""
    default: bool = Field(description="Part of lightkurve's 'default' quality mask.")
    hard: bool = Field(description="Part of lightkurve's 'hard' quality mask.")
    hardest: bool = Field(description="Part of lightkurve's 'hardest' quality mask.")
    segments: SegmentRange | None = Field(
        default=None, description="Sectors/quarters/campaigns in which the bit has this meaning; None: all."
    )
    level: Literal["spacecraft", "target"] = Field(
        default="target",
        description="'spacecraft': the bit records a state of the spacecraft (attitude tweak, safe mode, coarse or "
        "Earth point, momentum dump, thruster firing), the same for every target of the cadence; 'target': set per "
        "target (or per camera/CCD) by the pipeline. The frame table's spacecraft_quality keeps the spacecraft bits.",
    )


class QualityFlagTable(_Model):
    """The quality bitmask of one pipeline."""

    name: str
    description: str = ""
    column: str = Field(description="Source column holding the bits (QUALITY, SAP_QUALITY).")
    references: list[str] = Field(default_factory=list)
    flags: list[QualityFlag]


class DetectionRule(_Model):
    """A condition on FITS header keywords that recognises a product.

    All given conditions must hold. Keyword values are compared as
    case-insensitive, stripped strings for ``equals``/``contains``.
    """

    hdu: int = Field(default=0, description="HDU whose header is tested.")
    keyword: str | None = Field(default=None, description="Header keyword tested (or give ``column``).")
    column: str | None = Field(
        default=None, description="A table column that must exist in this HDU (case-insensitive), instead of a keyword."
    )
    equals: str | None = None
    contains: str | None = None
    present: bool | None = Field(default=None, description="True: the keyword must exist; False: it must not.")
    min: float | None = Field(default=None, description="Numeric keyword value must be >= min.")
    max: float | None = Field(default=None, description="Numeric keyword value must be <= max.")


class DataSetDefinition(_Model):
    """A flux column of a product and its place in the processing lineage.

    The variable it becomes is ``flux`` for the product's default flux column and
    the column's lower-case name otherwise (``<table>_<column>`` in a product's
    other tables); its error is the variable whose source column is
    ``<column>_ERR`` (or ``flux_err`` for the default flux).
    """

    column: str = Field(description="Source column, e.g. 'PDCSAP_FLUX'.")
    variable: str | None = Field(
        default=None,
        description="The variable itself, instead of the one located by its source column: for products whose "
        "column names vary per file (a table's flux column is named by its table map); ``column`` then only "
        "names the role.",
    )
    hdu: str | None = Field(
        default=None,
        description="Table (EXTNAME, shell-style pattern such as 'CIRC_APER*') holding the column; None: the "
        "light-curve table. The dataset is made once for every matching table.",
    )
    photometric_source: str = Field(
        description="Photometric source (aperture) name; '{hdu}' is replaced by the lower-case table name."
    )
    processing_method: str
    derived_from: list[str] = Field(
        default_factory=list, description="Source columns of the same file this flux was derived from."
    )


class FluxErrRule(_Model):
    """Error columns to use instead of ``ColumnMap.flux_err`` in some sectors/quarters/campaigns."""

    segments: SegmentRange
    columns: list[str] = Field(description="Candidate error columns; the first present in the file is used.")


class ColumnMap(_Model):
    """Which source columns give the archive's core variables."""

    time: str = "TIME"
    time_offset: float = Field(
        default=0.0,
        description="Days subtracted from the time column to give the mission's time (CDIPS TMID_BJD is the full "
        "BJD: 2457000). When non-zero the column is also kept as it is.",
    )
    time_fill: float | None = Field(
        default=None,
        description="A value of the time column that marks a row with no time stamp (K2MovingBodies: TIME = 0 on the "
        "cadences after the body left the campaign's pixels). Such rows are kept as they are (the column stored as "
        "given); the mission time of those rows is NaN, their cadence numbers follow the row before, and a note says "
        "how many (ingest_notes 'time_fill').",
    )
    cadenceno: str | None = Field(
        default="CADENCENO",
        description="Cadence-number column. None, or a column that is not strictly increasing (TGLC v2 files hold 0 "
        "on every row), makes lcarchive number the cadences round(TIME / TIMEDEL) (see docs/format.md); the "
        "column itself is then kept as a variable.",
    )
    flux: str
    flux_err: list[str] = Field(
        default_factory=list,
        description="Candidate error columns; the first present in the file is used. None present: NaN.",
    )
    flux_err_rules: list[FluxErrRule] = Field(
        default_factory=list,
        description="Segment-dependent error columns (QLP: DET_FLUX_ERR from sector 56 on); the first matching rule wins.",
    )
    flux_err_scale: list[str] | None = Field(
        default=None,
        description="[numerator, denominator] columns: flux_err = error column * numerator / denominator (eleanor: the "
        "FLUX_ERR of RAW_FLUX scaled to CORR_FLUX, as lightkurve does).",
    )
    quality: str | None = Field(
        default=None,
        description="Quality bitmask column; None: the product has none (quality 0), or, for 'skyportal' and "
        "'table' products, the series or the table map names it.",
    )
    renames: dict[str, str] = Field(
        default_factory=dict,
        description="Variable names of source columns whose lower-case name would clash with a core variable "
        "(eleanor's FLUX_ERR is the error of RAW_FLUX: raw_flux_err).",
    )

    def flux_err_columns(self, segment: int) -> list[str]:
        """Return the candidate error columns for a sector/quarter/campaign."""
        for rule in self.flux_err_rules:
            lo, hi = rule.segments.min, rule.segments.max
            if (lo is None or segment >= lo) and (hi is None or segment <= hi):
                return rule.columns
        return self.flux_err


class GenericColumns(_Model):
    """Candidate column names a generic product's files are read with, first present wins
    (case-insensitive); ``{flux}`` stands for the flux column found."""

    time: list[str]
    flux: list[str]
    flux_err: list[str] = Field(default_factory=list)
    quality: list[str] = Field(default_factory=list)
    cadenceno: list[str] = Field(default_factory=list)


class VersionRule(_Model):
    """How to tell which version of a product a file is (HLSP releases: v01/v02, K2SC v1/v2).

    Give one of ``keyword`` (its value is the version), ``file_name`` (a regular expression
    with a ``version`` group, searched in the file's name) or ``column`` (a column whose
    presence means ``version``).
    """

    keyword: str | None = None
    file_name: str | None = None
    column: str | None = None
    version: str | None = Field(default=None, description="The version the rule gives (else what it reads, as 'v<...>').")


class Product(_Model):
    """A light-curve product stream: its detection rules and column conventions."""

    name: str = Field(description="Product ID used in observation IDs, e.g. 'spoc-2min'.")
    title: str
    description: str = ""
    mission: str
    pipeline: str = Field(description="Pipeline that wrote it, e.g. 'SPOC', 'QLP', 'Kepler SOC'.")
    hlsp: bool = False
    detect: list[DetectionRule]
    priority: int = Field(
        default=0,
        description="When the detection rules of several products hold for one file, the highest priority wins; a "
        "tie is an error (the definitions overlap).",
    )
    default_rank: int = Field(
        default=100,
        description="Which product a target's light curve is read from when it has several of one mission and none "
        "is asked for: the lowest rank. The missions' own pipelines come first (Kepler and K2 SOC, TESS SPOC 2-min, "
        "then 20-s), as lightkurve's searches default to the official Kepler, K2 and SPOC products; then TESS-SPOC, "
        "QLP, the other HLSPs, and generic files last.",
    )
    cadence_seconds: float | None = Field(default=None, description="Nominal cadence, s.")
    format: Literal["fits", "hdf5", "skyportal", "table"] = Field(
        default="fits",
        description="File format. For 'hdf5', detection rules test root attributes (keyword) and object paths "
        "(column), and the column map names dataset paths, with {attribute} placeholders filled from the file's "
        "group attributes (QLP: Aperture_{bestap:03d}/RawMagnitude). For 'skyportal' (SkyPortal photometric "
        "series, HDF5 or JSON), detection rules test the series metadata (keyword: 'filter'...) and target_keywords "
        "name metadata keys. 'table' products are CSV/Parquet tables read with a table map given at ingest "
        "(lcarchive.formats.tables.TableMap), which picks the product by its mission.",
    )
    attribute_defaults: dict[str, str | int] = Field(
        default_factory=dict, description="hdf5: values of placeholder attributes a file may lack."
    )
    segment_keyword: str | None = Field(default=None, description="Keyword/attribute of the segment if not the mission's.")
    segment_file_name: str | None = Field(
        default=None,
        description="Regular expression of the file name whose group 'segment' gives the sector/quarter/campaign when "
        "the headers give none (K2MovingBodies: '_c(?P<segment>[0-9]+)_v').",
    )
    lightcurve_hdu: int | str = Field(default=1, description="HDU (index or EXTNAME) of the light-curve table.")
    target_keyword: str | None = Field(
        default=None, description="Keyword of the target ID if not the mission catalog's (eleanor: TIC_ID)."
    )
    other_targets: dict[str, str] = Field(
        default_factory=dict,
        description="Catalogs that name a file's target when it gives no ID of its mission's catalog (TGLC's Gaia stars "
        "with no TIC match: TICID = ''; CDIPS: TICID = 'nan'): catalog name -> primary-header keyword, tried in order.",
    )
    columns: ColumnMap
    quality_flags: str | None = Field(description="Name of the QualityFlagTable; None for products without quality flags.")
    datasets: list[DataSetDefinition]
    target_keywords: dict[str, str] = Field(
        default_factory=dict,
        description="Per-target variables taken from header keywords: variable name -> keyword.",
    )
    reference: str = ""
    generic_columns: GenericColumns | None = Field(
        default=None,
        description="Set for a mission's generic product (files of no known product, read generically): the "
        "candidate columns. Detection rules never pick it.",
    )
    version_rules: list[VersionRule] = Field(
        default_factory=list,
        description="How to tell a file's product version (first rule that holds); a later version of a light curve "
        "outranks an earlier one before DATA_REL, DATE and PROCVER are compared.",
    )
    standard_columns: list[str] = Field(
        default_factory=list,
        description="Every column of the product's light-curve table as its pipeline writes it (mission products; "
        "shell-style patterns, matched case-insensitively: an HDF5 product's dataset paths, 'Aperture_*/RawMagnitude'). "
        "A file with more columns, or whose HISTORY records a processing tool, is a light curve derived from the "
        "product by that tool (see catalog/tools.json).",
    )


class ProcessingTool(_Model):
    """A tool that derives light curves from a mission product (PyKE's kepcotrend, kepflatten...).

    A file of a mission product whose light-curve table holds columns the product does not
    define (``Product.standard_columns``), or whose HISTORY records the tool, is a derived
    light curve: it is stored in its own observation ``<mission>-<product>-<tool>-<segment>``,
    with datasets whose processing method names the tool.
    """

    name: str = Field(description="Short name, lower case: 'kepcotrend'; the observation label.")
    title: str
    package: str = Field(default="", description="The software it belongs to, e.g. 'PyKE'.")
    history: str | None = Field(default=None, description="Name the tool writes in HISTORY cards ('KEPFLATTEN -- ...').")
    columns: list[str] = Field(default_factory=list, description="Columns it adds (shell-style patterns: 'CDPP_*').")
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Defaults of the parameters its datasets name ('{datacol}' in derived_from)."
    )
    datasets: list[DataSetDefinition] = Field(default_factory=list)
    description: str = ""
    reference: str = ""


class InputFile(_Model):
    """A source file ingested into an observation."""

    name: str = Field(description="File name (base name of the URL or path ingested).")
    sha256: str
    size: int | None = Field(
        description="Bytes; None when the light curve came in several files (the group's source_size holds their sum)."
    )
    target: int
    data_release: int | None = Field(default=None, description="FITS DATA_REL.")
    pipeline_version: str | None = Field(default=None, description="FITS PROCVER.")
    integrity: str | None = Field(
        default=None,
        description="The file's DATASUM/CHECKSUM cards checked on its raw bytes: 'sound', 'no-checksums', "
        "'stale-cards' (a tool rewrote it keeping the old cards), 'damaged' (possibly damaged); None when not "
        "recorded (catalogs and groups written before lcarchive checked them).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Values kept as the file gives them although they contradict its mission or are out of range.",
    )


class Release(_Model):
    """A pipeline release found among an observation's targets."""

    data_release: int | None = None
    pipeline_version: str | None = None
    n_targets: int


class Observation(_Model):
    """One mission x product x sector/quarter/campaign: one Zarr group."""

    id: str = Field(description="e.g. 'tess-spoc-2min-s0001', 'kepler-lc-q02', 'k2-lc-c05'.")
    mission: str
    product: str
    segment_kind: Literal["sector", "quarter", "campaign"]
    segment: int
    cadenceno_min: int
    cadenceno_max: int
    n_cadences: int
    time_min: float | None = Field(description="Earliest finite time stamp, in the mission's time system (d).")
    time_max: float | None
    time_format: str = Field(description="'BTJD' or 'BKJD'.")
    n_targets: int
    group: str = Field(description="Path of the Zarr group relative to the archive root.")
    instruments: list[str] = Field(default_factory=list)
    releases: list[Release] = Field(default_factory=list)
    superseded_release: bool = Field(
        default=False,
        description="True for a group holding light curves replaced by a newer release in `current`.",
    )
    current: str | None = Field(default=None, description="For a superseded-release group: the current observation.")
    superseded_by_release: list[str] = Field(
        default_factory=list, description="For a current group: IDs of groups holding older releases."
    )
    derived_from: str | None = Field(
        default=None,
        description="For light curves derived by a processing tool: the observation of the mission "
        "product they were derived from (e.g. 'kepler-lc-q03' for 'kepler-lc-kepcotrend-q03').",
    )
    processing: list[str] = Field(
        default_factory=list, description="Processing tools (catalog processing_tools) that made its light curves."
    )


class DataSet(_Model):
    """A flux variable of an observation: photometric source x processing method."""

    id: str = Field(description="'<observation>/<variable>'.")
    observation: str
    variable: str
    error_variable: str | None = None
    source_column: str
    photometric_source: str
    processing_method: str
    units: str | None = None
    derived_from: list[str] = Field(default_factory=list, description="IDs of the datasets it was derived from.")
    pipeline_versions: list[str] = Field(default_factory=list, description="Distinct PROCVER values.")
    data_releases: list[int] = Field(default_factory=list, description="Distinct DATA_REL values.")
    inputs: list[InputFile] = Field(default_factory=list)


class Analysis(_Model):
    """An archive-wide analysis: one method run on every selected light curve, its results stored
    in the catalog repository (``analyses/<id>``) with its lineage."""

    id: str = Field(description="'<method>-<12 hex digits>': the method and a hash of its inputs and parameters.")
    method: str = Field(description="'bls' (astropy BoxLeastSquares) or 'lombscargle' (astropy LombScargle).")
    parameters: dict[str, float | int | str | list[float]] = Field(
        default_factory=dict, description="The method's parameters (periods in d)."
    )
    quality_bitmask: str = Field(description="Quality mask applied before the method (lightkurve's names).")
    normalized: bool = Field(default=True, description="Flux divided by each light curve's median first.")
    inputs: list[str] = Field(default_factory=list, description="IDs of the input datasets ('<observation>/flux').")
    input_snapshots: dict[str, str] = Field(
        default_factory=dict, description="Each input observation family's pinned snapshot: what was read."
    )
    archive_version: str | None = Field(default=None, description="The archive version (catalog snapshot) read.")
    software: dict[str, str] = Field(default_factory=dict, description="Versions of lcarchive, astropy, numpy.")
    created: str = Field(description="When it was computed, ISO 8601 UTC.")
    n_light_curves: int
    variables: list[str] = Field(default_factory=list, description="Result variables (per light curve).")
    group: str = Field(description="Its group in the catalog repository.")


class Alias(_Model):
    """Two names of one star in two catalogs: (catalog, ID) <-> (catalog, ID).

    Each name is ``"<catalog> <ID>"`` with the catalog as ``catalog/missions.json`` (TIC, KIC, EPIC)
    or ``catalog/aliases.json`` (Gaia DR2, Gaia DR3) spell it; the pair is stored with ``a`` < ``b``.
    Stored in the archive's catalog repository (array ``aliases``, ``docs/format.md``).
    """

    a: str = Field(description="one name, '<catalog> <ID>' (e.g. 'KIC 8462852')")
    b: str = Field(description="the other name, '<catalog> <ID>' (e.g. 'TIC 185336364')")
    source: Literal["header", "crossmatch", "operator"] = Field(
        description="where the pair comes from: an identifier a file's header names (header), the positional "
        "cross-match of the archive's targets (crossmatch), or an operator (lcarchive alias)"
    )
    evidence: str = Field(default="", description="what says so: the header keyword and observation, or the match")
    separation_arcsec: float | None = Field(
        default=None, description="crossmatch: the separation of the two positions at the common epoch, arcsec"
    )


class Catalog(_Model):
    """The catalog of an archive (``catalog.json`` at its root)."""

    format_version: str = CATALOG_FORMAT_VERSION
    missions: list[Mission] = Field(default_factory=list)
    mission_catalogs: list[MissionCatalog] = Field(default_factory=list)
    instruments: list[Instrument] = Field(default_factory=list)
    photometric_sources: list[PhotometricSource] = Field(default_factory=list)
    processing_methods: list[ProcessingMethod] = Field(default_factory=list)
    quality_flags: list[QualityFlagTable] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    processing_tools: list[ProcessingTool] = Field(default_factory=list)
    observations: list[Observation] = Field(default_factory=list)
    datasets: list[DataSet] = Field(default_factory=list)
    analyses: list[Analysis] = Field(default_factory=list)
    aliases: list[Alias] = Field(default_factory=list)

    def observation(self, id: str) -> Observation:
        """Return the observation with this ID.

        Raises
        ------
        lcarchive.errors.ObservationNotFoundError
            If the catalog has no such observation.
        """
        from lcarchive.errors import ObservationNotFoundError

        for obs in self.observations:
            if obs.id == id:
                return obs
        raise ObservationNotFoundError(id, [o.id for o in self.observations])

    def product(self, name: str) -> Product:
        """Return the product definition with this name (KeyError if absent)."""
        for p in self.products:
            if p.name == name:
                return p
        raise KeyError(name)

    def mission(self, name: str) -> Mission:
        """Return the mission with this name (KeyError if absent)."""
        for m in self.missions:
            if m.name == name:
                return m
        raise KeyError(name)


def schema_json() -> str:
    """Return the JSON Schema of ``Catalog`` as written to ``catalog/schema/catalog.schema.json``."""
    import json

    return json.dumps(Catalog.model_json_schema(), indent=2, sort_keys=True) + "\n"
