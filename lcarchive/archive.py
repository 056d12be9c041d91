"""The archive, as its users see it: a root URL holding an archive's icechunk repositories
(store format v2), or a read-only folder of plain Zarr groups (format v1, and downloads).

:class:`Archive` is a facade: it documents the user's API and delegates. Reading goes through
its :class:`lcarchive.handle.ReadHandle` (the lookups and the group readers, what Dask tasks are
given), stars are assembled by :mod:`lcarchive.stars`, searches by :mod:`lcarchive.search`;
writing goes to :mod:`lcarchive.ingest` and the store's repositories.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from lcarchive import stars
from lcarchive.catalog.models import Catalog, Observation
from lcarchive.errors import ArchiveNotFoundError, LcarchiveError
from lcarchive.handle import ReadHandle, store_errors
from lcarchive.ingest import IngestReport, ingest_files, reindex_families
from lcarchive.store import ArchiveStore

if TYPE_CHECKING:
    from lcarchive.formats.tables import TableMap

__all__ = ["Archive", "open_archive"]


class Archive:
    """A light-curve archive at a root URL (a local directory, ``s3://bucket/prefix``, ``gs://``, ``az://``).

    Use :func:`open_archive` to make one.

    Parameters
    ----------
    url : str
        Root of the archive.
    storage_options : dict, optional
        Credentials and endpoint (fsspec-style: ``key``, ``secret``, ``anon``, ``endpoint_url``);
        the standard AWS variables otherwise.
    version : str, optional
        Read the archive at this version: a tag (``dr1``), a branch or a snapshot ID from
        ``history()``. Default: the latest.
    as_of : datetime.datetime, optional
        Read the archive as it was at this time (UTC if naive).
    """

    def __init__(
        self, url: str, storage_options: dict | None = None, version: str | None = None, as_of: _dt.datetime | None = None
    ) -> None:
        self.handle = ReadHandle(str(url), storage_options or {}, version, as_of)
        """The :class:`lcarchive.handle.ReadHandle` this archive reads through (picklable: what a
        Dask task is given, after :meth:`~lcarchive.handle.ReadHandle.resolved`)."""

    def __repr__(self) -> str:
        return f"<lcarchive.Archive {self.url!r}{f' at {self.version}' if self.version else ''}>"

    @property
    def url(self) -> str:
        """Root URL of the archive."""
        return self.handle.url

    @property
    def storage_options(self) -> dict:
        """The storage options the archive is read with (lcarchive's S3 retry defaults added)."""
        return self.handle.storage_options

    @property
    def version(self) -> str | None:
        """The version asked for (a tag, branch or snapshot ID), None for the latest."""
        return self.handle.version

    @property
    def as_of(self) -> _dt.datetime | None:
        """The time whose version is read, if one was asked for."""
        return self.handle.as_of

    @property
    def exists(self) -> bool:
        """True if there is an archive at the URL.

        Raises
        ------
        lcarchive.StoreError
            If the store cannot be asked (unreachable, access denied).
        """
        return self.handle.exists

    @property
    def read_only(self) -> bool:
        """True for a folder of plain Zarr groups (store format v1, or a download): readable, not
        writable (``lcarchive migrate`` converts a v1 archive)."""
        return self.handle.read_only

    @store_errors
    def check_root(self) -> None:
        """Make sure the archive's root can take writes: a local folder is made; an object
        store's bucket must exist (lcarchive never creates buckets).

        Raises
        ------
        lcarchive.StoreError
            No such bucket, access denied, unreachable store.
        """
        self.handle.repositories.check_root()

    def refresh(self) -> None:
        """Forget what was read: the next read sees the archive's latest version (of an archive
        opened at the latest)."""
        self.handle.refresh()

    # -- catalog -----------------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        """The archive's catalog: missions, instruments, products, and the entries of its
        observations and datasets (assembled from one read of the catalog repository).

        Raises
        ------
        ArchiveNotFoundError
            If there is no archive at the URL.
        """
        return self.handle.catalog

    @property
    def observations(self) -> list[Observation]:
        """Observations in the catalog, sorted by ID."""
        return self.handle.observations

    def group_path(self, observation: str) -> str:
        """Where an observation's group is, relative to the root: ``observations/<family>/<id>``
        (the group ``<id>`` of the family's icechunk repository; ``observations/<id>.zarr`` in a
        folder of plain Zarr groups).

        Raises
        ------
        lcarchive.identifiers.InvalidIdentifierError
            If ``observation`` is not a valid observation ID (``../evil``, ``/tmp/x``...).
        """
        return self.handle.group_path(observation)

    def group_ids(self) -> list[str]:
        """IDs of the observation groups of this version."""
        return self.handle.group_ids()

    @store_errors
    def build_catalog(self) -> Catalog:
        """Rebuild the catalog entries and the target index from the groups in the store: every
        family repository under ``observations/`` is pinned at its latest snapshot and re-indexed
        (a repair, one commit: e.g. after a crash between a family's commit and the catalog's, a
        damaged catalog bucket, or a catalog repository lost whole: it is made again).

        Returns
        -------
        Catalog

        Raises
        ------
        LcarchiveError
            For a read-only archive.
        """
        store = self.handle.repositories
        try:
            self._writable()
        except ArchiveNotFoundError:
            if not store.families_in_store():
                raise
            store.create()  # the catalog repository is gone, the families are not
        families = store.families_in_store()  # every bucket is written anew: nothing of the old catalog is read
        reindex_families(store, families, "catalog build: every family re-indexed", force=True)
        self.refresh()
        return self.catalog

    def target_index(self, targets: Iterable[int] | None = None) -> pd.DataFrame:
        """The target index: one line per (target, observation group).

        Parameters
        ----------
        targets : iterable of int, optional
            Only these targets' lines (reading only the index partitions that hold them).

        Returns
        -------
        pandas.DataFrame
            Columns ``target`` (int64 TIC/KIC/EPIC ID), ``observation``, ``row`` (the target's
            row in the group), ``ra``, ``dec`` (deg, from RA_OBJ/DEC_OBJ), ``mission``,
            ``product``, ``segment``, ``current`` (False for groups of older releases),
            ``n_cadences`` (rows of the source file), ``coverage``.
        """
        return self.handle.target_index(targets)

    def index_pixels(self, pixels: Iterable[int]) -> pd.DataFrame | None:
        """The target-index lines of the targets in some HEALPix pixels of the sky index
        (:mod:`lcarchive.layout.sky`), reading only those; None if this archive has no sky index
        (a plain Zarr folder, or an archive written before it existed: ``lcarchive catalog build``
        adds it). The columns of :meth:`target_index`."""
        return self.handle.index_pixels(pixels)

    def analyses(self) -> list:
        """The archive-wide analyses of this version (``lcarchive compute``), oldest first: their
        catalog entries (:class:`lcarchive.catalog.models.Analysis`, with lineage)."""
        return self.handle.analyses()

    def analysis(self, name: str) -> pd.DataFrame:
        """The results of one analysis: by its ID, or the newest of a method (``"bls"``).

        Returns
        -------
        pandas.DataFrame
            One line per light curve: ``target``, ``observation``, ``period`` (d), ``power``, and
            for BLS ``depth`` (relative flux), ``duration`` (d), ``t0`` (mission time, BTJD/BKJD),
            ``snr``; ``n_cadences`` used and ``n_observations``, the light curves stitched into
            its periodogram (a star's result is on each of its light curves). ``attrs["analysis"]``
            is the catalog entry, ``attrs["period_grid"]`` the periods searched (d),
            ``attrs["periodogram"]`` the power on them (n_light_curves, n_periods) when kept.

        Raises
        ------
        KeyError
            If there is no such analysis.
        """
        return self.handle.analysis(name)

    # -- reading -----------------------------------------------------------------------------------
    def group_store(self, observation: str) -> tuple[Any, str]:
        """The zarr store and path of an observation group at this version (a read-only icechunk
        session's store, or a plain Zarr folder's): ``zarr.open_group(store, path=path)``.

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation.
        """
        return self.handle.group_store(observation)

    def open_observation(self, observation: str, **kwargs: Any) -> xr.Dataset:
        """Open one observation group as a lazy ``xarray.Dataset``.

        Parameters
        ----------
        observation : str
            Observation ID, e.g. ``"tess-spoc-2min-s0001"``.
        **kwargs
            Passed to ``xarray.open_dataset`` (``chunks={}`` for dask arrays...).

        Returns
        -------
        xarray.Dataset
            Dimensions (target, cadence); see ``docs/format.md``.

        Raises
        ------
        ObservationNotFoundError
            If this version of the archive has no such observation.
        """
        return self.handle.open_observation(observation, **kwargs)

    def frames(self, observation: str) -> xr.Dataset:
        """The per-cadence frame table of an observation (``docs/format.md#frame-table``).

        One row per cadence number and instrument (TESS camera/CCD, Kepler module/output) of the
        light curves the group holds: the cadence's time before barycentric correction
        (``TIME - TIMECORR``) with its start and end (``TIMEDEL``, ``TIMEPIXR``), the quality bits
        set by every file and by any file, the spacecraft-level bits, the source frame name
        (CDIPS ``RSTFC``) and, in ``attrs["shared_headers"]`` (JSON), the header keywords equal in
        every file of the observation. Kept in step by every ingest.

        Parameters
        ----------
        observation : str
            Observation ID, e.g. ``"tess-spoc-2min-s0001"`` (a release group's too).

        Returns
        -------
        xarray.Dataset
            Dimensions ``cadenceno`` (its index) and ``instrument``; loaded.

        Raises
        ------
        ObservationNotFoundError
            If this version of the archive has no such observation.
        """
        return self.handle.frames(observation)

    def targets(self, observation: str) -> np.ndarray:
        """Return the target IDs of an observation, shape (n_targets,), int64."""
        return self.handle.targets(observation)

    def inputs(self, observation: str | None = None, integrity: str | None = None) -> pd.DataFrame:
        """The provenance of every stored light curve: its input file, SHA-256, data release,
        pipeline version and integrity evidence, read from the groups' per-target arrays.

        Parameters
        ----------
        observation : str, optional
            Only this group's; default every group's.
        integrity : str, optional
            Only the files of this integrity state (``sound``, ``no-checksums``, ``stale-cards``,
            ``damaged``; ``""`` for files stored before it was recorded).

        Returns
        -------
        pandas.DataFrame
            Columns ``observation``, ``target``, ``name`` (the input's file name; a light curve
            joined from several segments' files has one line per file), ``sha256``, ``size``
            (bytes; -1 for one of several files), ``data_release`` (DATA_REL, -1 if none),
            ``pipeline_version`` (PROCVER), ``integrity`` (the file's DATASUM/CHECKSUM cards
            checked on its raw bytes: :data:`lcarchive.formats.checksums.STATES`; "" for a file
            stored before lcarchive recorded it), ``integrity_hdus`` (per HDU: JSON list of
            ``{hdu, name, DATASUM, CHECKSUM}``, each ``ok``, ``fail`` or ``absent``) and
            ``warnings`` (values kept as the file gives them although they contradict its
            mission or are out of range: a list of one-line texts).
        """
        return self.handle.inputs(observation, integrity)

    @store_errors
    def light_curve(
        self,
        target: int | str,
        observation: str | None = None,
        variables: Iterable[str] | None = None,
        include_superseded: bool = False,
        product: str | None = None,
        quality_bitmask: str | int | None = "default",
        normalize: bool = False,
        observations: Iterable[str] | None = None,
        products: str | None = None,
        missions: str | None = None,
    ) -> Any:
        """Return the light curve of one target: one product's, stitched over its observations.

        The target index (one partition of it) says which groups hold the target and at which
        row; only those groups are read, concurrently, and in each only the target's chunks
        (see :mod:`lcarchive.store.reader`).

        A star with light curves of several products (SPOC 2-min and QLP, say) is read from its
        mission's default product, the lowest ``default_rank`` of ``catalog/products`` (the
        mission's own pipeline first, as lightkurve's searches default to the Kepler, K2 and
        SPOC products); ``attrs["other_products"]`` and ``attrs["note"]`` name the others.

        Parameters
        ----------
        target : int or str
            A target of any catalog: ``261136679``, ``"TIC 261136679"``, ``"KIC 11442793"``,
            ``"EPIC 211436265"``, ``"Gaia DR3 5707485527450614656"``, a solar-system designation
            (``"3I/ATLAS"``, ``"(11251)"``, ``"MPC 11251"``); a catalog named keeps that catalog's
            targets only, a bare number matches the ID (or designation key) in any catalog.
        observation : str, optional
            Observation ID. If None, every current observation holding the target is read
            and the light curves are joined along ``cadence`` in observation order.
        variables : iterable of str, optional
            Variables to read, e.g. ``["time", "flux", "flux_err", "quality"]``; default all.
            ``quality`` is always read (it marks the cadences the target has).
        include_superseded : bool
            Also read groups holding older releases (only when ``observation`` is None).
        product : str, optional
            Only this product's observations (``spoc-2min``, ``qlp``...); default the mission's
            default product among the target's. Products are never joined.
        quality_bitmask : {"default", "hard", "hardest", "none"} or int or None
            Keep only the cadences passing this quality mask of each observation's flag table
            (``ds.lc.good``; lightkurve's ``quality_bitmask``, whose default it shares: the
            flags lightkurve's ``DEFAULT_BITMASK`` names for TESS, Kepler and K2). ``"none"`` or
            None: every cadence of the source files, as stored.
        normalize : bool
            Divide ``flux`` and ``flux_err`` by each observation's median flux
            (``ds.lc.normalize``), so that stitched sectors share one level.
        observations : iterable of str, optional
            Only these observations (e.g. two sectors of the target's), stitched in observation
            order; ``observation`` reads a single one.
        products : {"all"}, optional
            ``"all"``: every product's light curve of the target, as a dict by product name.
        missions : {"all"}, optional
            ``"all"``: the star's light curves of every mission, found through the archive's
            alias table (:meth:`aliases`: ``"KIC 8462852"`` reads its Kepler quarters and the
            TESS sectors of TIC 185336364), each mission's default product (or ``product``),
            joined along ``cadence`` in one time system: ``time`` is BJD_TDB (each observation's
            own times plus its offset, BKJD = BJD_TDB - 2454833, BTJD = BJD_TDB - 2457000, named in
            ``attrs["time_offsets"]`` and per observation in ``time_offset_jd``). Each observation
            keeps its own quality flags (``quality_bitmask`` applies each mission's table) and is
            normalised by its own median (``normalize``); coordinates ``observation_mission``,
            ``observation_catalog`` and ``observation_target`` say whose it is;
            ``ds.lc.to_lightkurve()`` gives a ``LightCurveCollection`` that ``stitch()`` takes.
            The target must name its catalog.

        Returns
        -------
        xarray.Dataset (dict of str to xarray.Dataset with ``products="all"``)
            Variables on ``cadence`` (time in BTJD/BKJD, d; flux and flux_err in the
            product's units; quality bits...), only the cadences the target's source file
            has, sorted by cadence number within each observation; coordinates ``cadenceno``
            and ``cadence_observation`` on ``cadence``; per-target values (ra, dec, headers,
            aperture...) on an ``observation`` dimension, with coordinates ``product``,
            ``segment`` and ``quality_flags`` (each observation's flag table) that ``ds.lc``
            (:class:`lcarchive.accessor.LightCurveAccessor`) masks and normalises by.

        Raises
        ------
        TargetNotFoundError
            If the target is in none of the observations asked for.
        ObservationNotFoundError
            If this version has no such observation.
        DamagedObjectError
            If a stored chunk does not match its checksum (naming the object).
        UnknownVariableError
            If a name of ``variables`` is in none of the groups read.
        MixedProductsError
            If a bare number names stars of several missions' catalogs (KIC 123 and TIC 123):
            give the catalog prefix or ``product``.
        UnknownProductError
            If ``product`` is no product's name.
        ValueError
            If ``target`` is no target ID, or ``products`` is not ``"all"``.
        """
        return stars.light_curve(
            self.handle,
            target,
            observation,
            variables,
            include_superseded,
            product,
            quality_bitmask,
            normalize,
            observations,
            products,
            missions,
        )

    # -- aliases: one star's names in several catalogs -----------------------------------------------
    @store_errors
    def aliases(self, target: str | None = None) -> pd.DataFrame:
        """The alias table: pairs of names of one star in two catalogs.

        Filled by every ingest's catalog commit from the identifiers the files carry (TGLC's
        GAIADR3, eleanor's GAIA_ID) and from a positional cross-match of the archive's targets
        across catalogs (proper motion applied; radius and reason in ``catalog/aliases.json``),
        and by operators (:meth:`add_alias`, :meth:`remove_alias`, ``lcarchive alias``).

        Parameters
        ----------
        target : str, optional
            Only the pairs linking this star's names (``"KIC 8462852"``), directly or through others.

        Returns
        -------
        pandas.DataFrame
            Columns ``a``, ``b`` (``"<catalog> <ID>"``), ``source`` (``header``, ``crossmatch``,
            ``operator``), ``evidence``, ``separation_arcsec``.

        Raises
        ------
        ValueError
            If ``target`` names no catalog lcarchive knows.
        """
        from lcarchive.aliases import names_of

        table = self.handle.alias_table()
        frame = table.frame()
        if target is None:
            return frame
        names = set(names_of(table, target))
        return frame[frame["a"].isin(names) & frame["b"].isin(names)].reset_index(drop=True)

    def names(self, target: str) -> list[str]:
        """Every name of a star in the alias table, the one given first (``"KIC 8462852"`` ->
        ``["KIC 8462852", "TIC 185336364"]``)."""
        return stars.star_names(self.handle, target)

    @store_errors
    def add_alias(self, a: str, b: str, note: str = "") -> str | None:
        """Say that two names are one star, in one catalog commit (an operator's pair: kept
        whatever the cross-match finds, and undoing an earlier removal).

        Parameters
        ----------
        a, b : str
            ``"<catalog> <ID>"``: ``"KIC 8462852"``, ``"TIC 185336364"``, ``"Gaia DR3 2081900940499099136"``.
        note : str
            Why (kept as the pair's evidence).

        Returns
        -------
        str or None
            The new version (catalog snapshot), or None if the pair was there already.

        Raises
        ------
        ValueError
            If a name is of no catalog lcarchive knows, or both are the same.
        """
        from lcarchive.aliases import normal_name
        from lcarchive.catalog.models import Alias

        self._writable()
        alias = Alias(a=normal_name(a), b=normal_name(b), source="operator", evidence=note or "lcarchive alias")
        if alias.a == alias.b:
            raise ValueError(f"{a!r} and {b!r} are the same name")
        version = self.handle.repositories.change_aliases(lambda t: t.add(alias), f"alias {alias.a} = {alias.b}")
        self.handle.refresh()
        return version

    @store_errors
    def remove_alias(self, a: str, b: str) -> str | None:
        """Remove a pair, in one catalog commit; the removal is kept, so neither the headers nor
        the cross-match add the pair again (:meth:`add_alias` does). Return the new version, or
        None if there was no such pair.

        Raises
        ------
        ValueError
            If a name is of no catalog lcarchive knows.
        """
        from lcarchive.aliases import normal_name

        self._writable()
        a, b = sorted((normal_name(a), normal_name(b)))
        version = self.handle.repositories.change_aliases(lambda t: t.remove(a, b), f"alias removed: {a} = {b}")
        self.handle.refresh()
        return version

    @store_errors
    def light_curves(
        self,
        targets: Iterable[int | str],
        variables: Iterable[str] | None = None,
        include_superseded: bool = False,
        product: str | None = None,
        quality_bitmask: str | int | None = "default",
        normalize: bool = False,
        missing: str = "raise",
    ) -> dict[int, xr.Dataset]:
        """Return the light curves of many targets, read concurrently: what :meth:`light_curve`
        returns for each, in one pass.

        The index partitions of all the targets are read at once, then every (target,
        observation) row at once, up to ``read_jobs`` rows in flight (:mod:`lcarchive.config`).

        Parameters
        ----------
        targets : iterable of int or str
            Targets of any catalog, as for :meth:`light_curve` (repeats are read once); the result is
            keyed by each target's key (its ID, or a designation's key).
        variables, include_superseded, product, quality_bitmask, normalize
            As for :meth:`light_curve`.
        missing : {"raise", "skip"}
            A target in no observation asked for: raise (naming every such target), or leave it
            out of the result.

        Returns
        -------
        dict of int to xarray.Dataset
            Each target's light curve, in the order of ``targets``.

        Raises
        ------
        TargetNotFoundError
            With ``missing="raise"``, for the targets found nowhere.
        MixedProductsError, UnknownProductError, UnknownVariableError, DamagedObjectError
            As for :meth:`light_curve`.
        """
        return stars.light_curves(
            self.handle, targets, variables, include_superseded, product, quality_bitmask, normalize, missing
        )

    @store_errors
    def search(
        self,
        selection: Any = None,
        *,
        cone: Any = None,
        box: tuple[float, float, float, float] | None = None,
        targets: Iterable[int | str] | None = None,
        observation: str | Iterable[str] | None = None,
        mission: str | Iterable[str] | None = None,
        product: str | Iterable[str] | None = None,
        segment: int | Iterable[int] | None = None,
        camera: int | Iterable[int] | None = None,
        ccd: int | Iterable[int] | None = None,
        magnitude: tuple[float, float] | None = None,
        time: tuple[Any, Any] | None = None,
        include_superseded: bool = False,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        where: str | None = None,
        client: Any = None,
    ) -> pd.DataFrame:
        """Find light curves: by position, by target, by catalog values; one line per (target,
        observation).

        A cone or a box reads only the HEALPix pixels of the sky index it touches
        (:mod:`lcarchive.layout.sky`), then cuts exactly on RA_OBJ/DEC_OBJ with astropy; named
        targets read only their index partitions. Filters combine with AND; a filter given a
        sequence keeps any of its values.

        Parameters
        ----------
        selection : lcarchive.Selection, optional
            A selection (the one :func:`lcarchive.download` takes); the keywords below are then
            not given.
        cone : (float, float, float) or (array, array, float or array) or table, optional
            RA, Dec, radius (deg, ICRS). Arrays, or a table with ``ra``, ``dec``, ``radius``
            columns (pandas, astropy Table), search many positions in one call.
        box : (float, float, float, float), optional
            ``(ra_min, ra_max, dec_min, dec_max)``, deg; RA wraps through 0 when
            ``ra_min > ra_max``.
        targets : iterable of int or str, optional
            TIC/KIC/EPIC IDs (``"KIC 11442793"`` keeps that catalog's missions).
        observation, mission, product : str or iterable of str, optional
            e.g. ``"tess-spoc-2min-s0001"``, ``"tess"``, ``"spoc-2min"``.
        segment : int or iterable of int, optional
            Sector (TESS), quarter (Kepler), campaign (K2).
        camera, ccd : int or iterable of int, optional
            TESS camera and CCD (CAMERA, CCD keywords).
        magnitude : (float, float), optional
            TESSMAG or KEPMAG range, mag, inclusive.
        time : (float or str, float or str), optional
            Observations overlapping this range (BTJD/BKJD numbers, or ISO 8601 UTC).
        include_superseded : bool
            Also find the light curves of older data releases.
        order_by : str or list of str, optional
            Columns to sort by (a leading ``-`` sorts descending). Default ``target``,
            ``observation`` (for a cone: ``position``, ``separation`` first).
        limit, offset : int, optional
            Return ``limit`` lines from line ``offset`` of the sorted result.
        where : str, optional
            A filter on the columns, the stored analyses' results included (``bls_period``,
            ``bls_snr``, ``lombscargle_period``...: :meth:`analysis`): pandas ``query`` syntax
            and ``X between A and B``, e.g. ``"bls_period between 6 and 7 and bls_snr > 10"``.
        client : dask.distributed.Client, optional
            Search many positions on this cluster's workers, 2,000 positions a task, each at this
            handle's version (:meth:`read_version`); the same lines as without it.

        Returns
        -------
        pandas.DataFrame
            Columns ``target``, ``observation``, ``ra``, ``dec`` (deg), ``magnitude`` (mag),
            ``n_cadences``, ``coverage``, ``url`` (the group's location), ``mission``,
            ``product``, ``segment``, ``camera``, ``ccd``, ``current``, ``row``, ``integrity``
            (the input file's state: ``sound``, ``no-checksums``, ``stale-cards``, ``damaged``;
            ``where="integrity == 'damaged'"`` finds the possibly damaged ones); with a cone also
            ``position`` (index of the position in the cone's arrays or table) and
            ``separation`` (deg).

        Raises
        ------
        SelectionError
            For a cone, box or time range that cannot be read, or an unknown ``order_by``.
        """
        from lcarchive.search import Selection, search

        def many(value: Any) -> list | None:
            if value is None:
                return None
            return [value] if isinstance(value, str | int | np.integer) else list(value)

        filters = {
            "cone": cone,
            "box": box,
            "targets": many(targets),
            "observations": many(observation),
            "missions": many(mission),
            "products": many(product),
            "segments": many(segment),
            "cameras": many(camera),
            "ccds": many(ccd),
            "magnitude": magnitude,
            "time": time,
        }
        if selection is not None:
            if any(v is not None for v in filters.values()) or include_superseded:
                raise TypeError("search: give a selection or filters, not both")
        else:
            selection = Selection(**filters, include_superseded=include_superseded)
        return search(self.handle, selection, order_by=order_by, limit=limit, offset=offset, where=where, client=client)

    # -- versions ----------------------------------------------------------------------------------
    def read_version(self) -> str | None:
        """The version this handle reads: its catalog snapshot ID (the one ``version`` or ``as_of``
        named, else the newest when it was first read); None for a folder of plain Zarr groups,
        which has no versions. ``open_archive(url, version=...)`` reads the same version
        elsewhere, as the tasks of a Dask cluster do."""
        return self.handle.read_version()

    @store_errors
    def history(self, limit: int | None = None) -> list[dict]:
        """The archive's versions, newest first.

        Returns
        -------
        list of dict
            ``snapshot`` (the version's ID), ``time`` (UTC), ``message`` (what the commit did,
            naming its inputs), ``metadata`` (the inputs' names and SHA-256), ``tags``.
        """
        self._writable()
        return self.handle.repositories.history(limit)

    @store_errors
    def tag(self, name: str, version: str | None = None) -> str:
        """Name a version of the archive (default the latest), e.g. a data release: ``open_archive(url,
        version=name)`` reads it as it is now, whatever is ingested later; ``gc`` keeps it.

        Returns
        -------
        str
            The tagged version's snapshot ID.

        Raises
        ------
        LcarchiveError
            If the tag exists already, or the archive is read-only.
        """
        self._writable()
        return self.handle.repositories.tag(name, version)

    @store_errors
    def collect_garbage(self, older_than: _dt.datetime | _dt.timedelta, wait: float = 0.0) -> dict[str, Any]:
        """Expire versions older than a bound (tags and the latest version kept) and delete the
        objects nothing kept reaches any more (replaced chunks, rewritten shards).

        Safe beside writers: it refuses to run while an ingest, compute, tag or catalog build
        holds the archive (or waits ``wait`` seconds for them), writers wait while it runs, and
        it never expires a version nor deletes an object younger than
        ``lcarchive.config.settings().gc_safety_seconds`` (one day), whatever ``older_than``
        says. On local disk it refuses to run when a folder of the archive is a symbolic link
        that leads out of it.

        Parameters
        ----------
        older_than : datetime.datetime or datetime.timedelta
            The bound, or its age (``timedelta(days=30)``; ``timedelta(0)``: everything past the
            safety bound).
        wait : float
            Seconds to wait for the writers holding the archive before giving up.

        Returns
        -------
        dict
            ``versions_expired``, ``snapshots_expired``, ``bytes_deleted``, ``objects_deleted``,
            ``kept_after`` (the bound applied: UTC datetime).

        Raises
        ------
        ArchiveBusyError
            Writers still held the archive after ``wait`` seconds.
        StoreError
            A folder leads out of a local archive, or the store failed.
        """
        self._writable()
        if isinstance(older_than, _dt.timedelta):
            older_than = _dt.datetime.now(_dt.UTC) - older_than
        out = self.handle.repositories.collect_garbage(older_than, wait=wait)
        self.refresh()
        return out

    def expiring_versions(self, older_than: _dt.datetime | _dt.timedelta) -> tuple[_dt.datetime, list[dict]]:
        """What :meth:`collect_garbage` with this bound would expire, deleting nothing.

        Returns
        -------
        (datetime.datetime, list of dict)
            The bound it would apply (UTC), and the versions of :meth:`history` older than it
            that it would expire: never the latest, a tagged one, nor the repository's first.
        """
        if isinstance(older_than, _dt.timedelta):
            older_than = _dt.datetime.now(_dt.UTC) - older_than
        cutoff = ArchiveStore.gc_cutoff(older_than)
        versions = self.history()
        return cutoff, [v for v in versions[1:-1] if not v["tags"] and v["time"] < cutoff]

    # -- writing -----------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.handle.read_only:
            raise LcarchiveError(
                f"{self.url}: a read-only folder of plain Zarr groups (store format v1 or a "
                f"download); convert a v1 archive with: lcarchive migrate {self.url} NEW"
            )

    @store_errors
    def ingest(
        self,
        inputs: Iterable[str],
        input_storage_options: dict | None = None,
        progress: Callable[[str], None] | None = None,
        jobs: int | None = None,
        table_map: dict | str | TableMap | None = None,
        client: Any = None,
        committed: Callable[[str, int], None] | None = None,
    ) -> IngestReport:
        """Ingest light-curve files into the archive.

        Each batch of inputs is one version of the archive (one commit, its message naming the
        inputs): a process killed at any moment leaves the archive at its previous version, and
        running the same ingest again completes it. Several processes may ingest into one
        archive at once, into the same observation or others: a commit that meets another's is
        redone on the newer version, so no light curve is ever lost.

        Parameters
        ----------
        inputs : iterable of str
            Files, directories (searched recursively for FITS ``*.fits``/``*.fits.gz``, HDF5
            ``*.h5``/``*.hdf5`` and SkyPortal JSON ``*.json``), globs or URLs. CSV/Parquet
            tables (``*.csv``, ``*.csv.gz``, ``*.parquet``) are read when named, with ``table_map``.
        input_storage_options : dict, optional
            fsspec options for reading remote inputs.
        progress : callable, optional
            Called with each input's name as it is read.
        jobs : int, optional
            Processes parsing files ahead of the writer (default: the number of CPUs; 1: parse
            in this process). Used for batches of 64 files or more.
        table_map : dict, str or lcarchive.formats.tables.TableMap, optional
            How the CSV/Parquet inputs give light curves (``lcarchive.formats.tables.TableMap``): a dict,
            a JSON text, the path of a JSON file, or a TableMap, e.g. ``{"mission": "tess", "target":
            "tic", "segment": 14, "time": "btjd", "flux": "flux"}``. Without it, tables are
            skipped with that reason.
        client : dask.distributed.Client, optional
            Parse the files, and encode and write their chunks, on this Dask cluster's workers
            (``jobs`` is then unused; :mod:`lcarchive.store.cluster`); this process plans each
            batch and makes its commits. The archive written is the one a serial ingest writes,
            stored object for stored object.
        committed : callable, optional
            Called after each batch's commit as ``committed(version, n_stored)``: the archive
            version it made and the light curves it stored (added or kept as another version).
            What a caller interrupted (Ctrl-C) can say was committed.

        Returns
        -------
        IngestReport
            What was added, left unchanged, superseded, and skipped (with reasons); the
            versions made; every file's integrity state (``integrity``: its DATASUM/CHECKSUM
            cards checked on its raw bytes; a ``damaged`` file is stored but never ranked at or
            above a sound copy) and the values kept although they contradict the mission
            (``warnings``). Inputs larger than ``Settings.max_input_bytes``, or gzip streams
            inflating beyond ``Settings.max_decompressed_bytes``, are skipped by name.

        Raises
        ------
        lcarchive.errors.BadInputError
            If ``table_map`` is invalid (unknown keys, missing or contradictory ones, an unknown
            mission, time format or unit), before anything is read.
        LcarchiveError
            If the archive is read-only (plain Zarr groups) or opened at a version.

        Notes
        -----
        SkyPortal photometric series (pandas HDF5 or JSON, ``lcarchive.formats.skyportal``) become the
        observations ``<mission>-skyportal-<segment>`` (``tess-skyportal-s0001``); tables
        ``<mission>-table[-<label>]-<segment>`` (``tess-table-mypipe-s0014``).
        """
        from lcarchive.formats.tables import load_table_map

        if self.version is not None or self.as_of is not None:
            raise LcarchiveError(f"{self.url}: opened at version {self.version or self.as_of}; open the latest to ingest")
        mapping = None if table_map is None else load_table_map(table_map)
        try:
            self._writable()
        except ArchiveNotFoundError:
            pass  # a new archive
        self.refresh()
        try:
            return ingest_files(
                self.handle.repositories, inputs, input_storage_options, progress, jobs, mapping, client, committed
            )
        finally:
            self.handle.forget_kind()
            self.refresh()


def open_archive(
    url: str, storage_options: dict | None = None, version: str | None = None, as_of: _dt.datetime | None = None
) -> Archive:
    """Open the archive at ``url``.

    Nothing is read from the store yet: the catalog, the target index and each group are read
    when first needed, so that a point read right after opening costs only its own requests.

    Parameters
    ----------
    url : str
        Local directory, ``s3://bucket/prefix``, ``gs://``, ``az://``.
    storage_options : dict, optional
        Credentials and endpoint (e.g. ``{"anon": True}`` or ``{"endpoint_url": ...}``);
        endpoint and credentials otherwise come from the standard AWS variables.
    version : str, optional
        A tag, branch or snapshot ID (``Archive.history()``): read the archive as it was then.
    as_of : datetime.datetime, optional
        Read the archive as it was at this time (UTC if naive).

    Returns
    -------
    Archive
        Its ``catalog``, ``observations`` and ``target_index()`` raise
        ``ArchiveNotFoundError`` if there is no archive at ``url``.
    """
    return Archive(url, storage_options, version, as_of)
