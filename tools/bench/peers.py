"""The formats lcarchive is compared with ("peers"), behind one small interface.

Every peer stores the same FITS light curves in its own format and reads them back:

    peer.load(files)                          # store these FITS files (timed by the caller)
    peer.read_target(target, observation)     # one target's time/flux/flux_err/quality arrays
    peer.scan(observation)                    # every target of the observation; bytes read
    peer.stored_bytes()                       # bytes the peer stores
    peer.close()

Peers
-----
``FitsPeer``
    The MAST cloud layout: one FITS file per target and observation at
    ``<base_url>/<observation>/<file name>`` (``s3://...`` or a local directory). Reads as
    lightkurve / astroquery read from the cloud: ``fsspec.open(url, "rb")`` then
    ``astropy.io.fits.open``.
``HDF5Peer``
    SkyPortal's photometric-series format (``skyportal/models/photometric_series.py``,
    ``doc/photometric_series.md``): one HDF5 file per target and series written with pandas
    ``HDFStore.put(key, df, format="table", index=None, track_times=False)``, a single key
    (``phot_series``), columns ``mjd``, ``flux``, ``fluxerr`` (+ ``quality``), and the series'
    metadata dict pickled in ``store.get_storer(key).attrs.metadata``; files at
    ``<root>/<series_name>/series_<series_obj_id>_inst_<instrument_id>[_<channel>][_<origin>].h5``.
``PostgresPeer``
    MIT lightcurvedb's ``ArrayOrbitLightcurve`` model (``lightcurvedb/models/lightcurve.py``):
    one PostgreSQL row per light curve holding in-row arrays ``cadences bigint[]``,
    ``barycentric_julian_dates float8[]``, ``data float8[]``, ``errors float8[]``,
    ``x_centroids float8[]``, ``y_centroids float8[]``, ``quality_flags int4[]``, keyed by
    ``tic_id bigint`` + ``camera``/``ccd`` smallint + (here) the observation ID instead of
    lightcurvedb's orbit/aperture/type IDs. A real PostgreSQL server (Debian's package) is
    started on 127.0.0.1 for the peer and stopped by ``close()``.

Helpers: ``observation_id(header, table_header)`` gives lcarchive's observation IDs from FITS
headers; ``read_fits_lightcurve`` reads the default columns of one light-curve file.
"""

from __future__ import annotations

import glob
import io
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

# ---------------------------------------------------------------------------------------------
# FITS headers -> observation ID and default columns
# ---------------------------------------------------------------------------------------------

#: TIMEDEL bounds (days) of TESS SPOC target cadences, as in catalog/products/*.json
_TESS_20S = (10 / 86400, 30 / 86400)
_TESS_2MIN = (100 / 86400, 140 / 86400)
#: Kepler short cadence is 58.85 s, long cadence 29.4 min
_KEPLER_SC_MAX = 0.005


def _get(key: str, *headers: fits.Header | None) -> Any:
    for h in headers:
        if h is not None and key in h:
            value = h[key]
            if not isinstance(value, fits.card.Undefined):
                return value
    return None


def observation_id(header: fits.Header, table_header: fits.Header | None = None) -> str:
    """lcarchive's observation ID of a light-curve file, from its headers.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The primary header (HDU 0).
    table_header : astropy.io.fits.Header, optional
        The light-curve table's header (HDU 1), which holds ``TIMEDEL``. Needed to tell TESS
        SPOC 2-min (``tess-spoc-2min-s0001``), 20-s (``tess-spoc-20s-s0027``) and TESS-SPOC FFI
        (``tess-spoc-s0024``) light curves apart; without it a TESS NASA/Ames file is taken as
        2-min.

    Returns
    -------
    str
        ``tess-spoc-2min-sNNNN``, ``tess-spoc-20s-sNNNN``, ``tess-spoc-sNNNN``, ``tess-qlp-sNNNN``,
        ``kepler-lc-qNN``, ``kepler-sc-qNN``, ``k2-lc-cNN``, ``k2-sc-cNN``.
    """
    telescope = str(_get("TELESCOP", header) or "").strip().upper()
    origin = str(_get("ORIGIN", header) or "").strip().upper()
    timedel = _get("TIMEDEL", table_header, header)
    if telescope == "TESS":
        sector = _get("SECTOR", header)
        if sector is None:
            raise ValueError("TESS file without SECTOR")
        if "QLP" in origin:
            product = "tess-qlp"
        elif timedel is None or _TESS_2MIN[0] <= timedel <= _TESS_2MIN[1]:
            product = "tess-spoc-2min"
        elif _TESS_20S[0] <= timedel <= _TESS_20S[1]:
            product = "tess-spoc-20s"
        else:
            product = "tess-spoc"  # TESS-SPOC FFI light curves (10/30/200-min... FFI cadences)
        return f"{product}-s{int(sector):04d}"
    if telescope == "KEPLER":
        obsmode = str(_get("OBSMODE", header) or "").strip().lower()
        if obsmode:
            short = obsmode.startswith("short")
        else:
            short = timedel is not None and timedel < _KEPLER_SC_MAX
        cadence = "sc" if short else "lc"
        mission = str(_get("MISSION", header) or "").strip().upper()
        campaign = _get("CAMPAIGN", header)
        if mission == "K2" or campaign is not None:
            return f"k2-{cadence}-c{int(campaign):02d}"
        quarter = _get("QUARTER", header)
        if quarter is None:
            raise ValueError("Kepler file without QUARTER")
        return f"kepler-{cadence}-q{int(quarter):02d}"
    raise ValueError(f"not a TESS/Kepler/K2 light curve: TELESCOP={telescope!r}")


def default_columns(names: Iterable[str], header: fits.Header) -> dict[str, str]:
    """Source columns of time, flux, flux_err, quality, cadenceno and the x/y centroids.

    PDCSAP_FLUX / PDCSAP_FLUX_ERR (SAP_FLUX / KSPSAP_FLUX_ERR or DET_FLUX_ERR for QLP), QUALITY
    or SAP_QUALITY, MOM_CENTR1/2 (SAP_X/SAP_Y for QLP) -- lightkurve's defaults.
    """
    names = {n.upper(): n for n in names}
    qlp = "QLP" in str(_get("ORIGIN", header) or "").upper()
    if qlp:
        flux = "SAP_FLUX"
        err = next((c for c in ("KSPSAP_FLUX_ERR", "DET_FLUX_ERR") if c in names), None)
        x, y = "SAP_X", "SAP_Y"
    else:
        flux, err = "PDCSAP_FLUX", "PDCSAP_FLUX_ERR"
        x, y = "MOM_CENTR1", "MOM_CENTR2"
    quality = "QUALITY" if "QUALITY" in names else "SAP_QUALITY"
    wanted = {
        "time": "TIME",
        "flux": flux,
        "flux_err": err,
        "quality": quality,
        "cadenceno": "CADENCENO",
        "x_centroid": x,
        "y_centroid": y,
    }
    return {k: names[v] for k, v in wanted.items() if v is not None and v in names}


def _native(a: np.ndarray) -> np.ndarray:
    """A native-endian copy of a FITS column."""
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder("="), copy=True)


@dataclass
class LightCurve:
    """The default columns of one light-curve file, plus what the peers store as metadata."""

    observation: str
    target: int
    arrays: dict[str, np.ndarray]  # time, flux, flux_err, quality, cadenceno, x_centroid, y_centroid
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = ""


def read_fits_lightcurve(source: str | Path | bytes | Any, name: str = "") -> LightCurve:
    """Read one light-curve FITS file (a path, its bytes, or an open binary file)."""
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(source, memmap=False) as hdul:
            h0 = hdul[0].header
            table = hdul["LIGHTCURVE"]
            h1 = table.header
            cols = default_columns(table.columns.names, h0)
            arrays = {k: _native(table.data[c]) for k, c in cols.items()}
            id_key = "TICID" if "TICID" in h0 else "KEPLERID"
            telescope = str(h0.get("TELESCOP", "")).strip().upper()
            meta = {
                "telescope": telescope,
                "mission": "k2" if str(h0.get("MISSION", "")).strip().upper() == "K2" else telescope.lower(),
                "origin": str(h0.get("ORIGIN", "")).strip(),
                "ra": _get("RA_OBJ", h0, h1),
                "dec": _get("DEC_OBJ", h0, h1),
                "camera": _get("CAMERA", h0),
                "ccd": _get("CCD", h0),
                "module": _get("MODULE", h0),
                "output": _get("OUTPUT", h0),
                "bjdref": float(_get("BJDREFI", h1) or 0) + float(_get("BJDREFF", h1) or 0.0),
                "timedel": _get("TIMEDEL", h1),
                "int_time": _get("INT_TIME", h1),
                "num_frm": _get("NUM_FRM", h1),
                "time_unit": str(table.columns[cols["time"]].unit or ""),
                "columns": cols,
            }
            return LightCurve(
                observation_id(h0, h1), int(h0[id_key]), arrays, meta, name or Path(getattr(source, "name", "") or "").name
            )


def _header_pair(fs: fsspec.AbstractFileSystem, path: str) -> tuple[fits.Header, fits.Header]:
    with fs.open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(f, memmap=False, lazy_load_hdus=True) as hdul:
            return hdul[0].header.copy(), hdul[1].header.copy()


def _arrays_nbytes(arrays: dict[str, np.ndarray], keys: Iterable[str] = ("time", "flux", "flux_err", "quality")) -> int:
    return sum(arrays[k].nbytes for k in keys)


def _batched(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# ---------------------------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------------------------


class Peer(ABC):
    """A storage format for light curves, measured against lcarchive."""

    name: str

    @abstractmethod
    def load(self, files: list[Path]) -> None:
        """Store the given FITS light curves in this peer's format (timed by the caller)."""

    @abstractmethod
    def read_target(self, target: int, observation: str) -> dict[str, np.ndarray]:
        """Cold-ish point read: at least time, flux, flux_err, quality of one light curve."""

    @abstractmethod
    def scan(self, observation: str) -> int:
        """Read time/flux/flux_err/quality of every target of an observation; return their nbytes."""

    @abstractmethod
    def stored_bytes(self) -> int:
        """Bytes this peer stores."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release what the peer holds (connections, servers)."""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fs(url: str, storage_options: dict | None) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, path.rstrip("/")


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs.unstrip_protocol(path) if not isinstance(fs, fsspec.implementations.local.LocalFileSystem) else path


# ---------------------------------------------------------------------------------------------
# a. FITS files, MAST cloud layout
# ---------------------------------------------------------------------------------------------


class FitsPeer(Peer):
    """One FITS file per target per observation at ``<base_url>/<observation>/<file name>``.

    Parameters
    ----------
    base_url : str
        ``s3://bucket/prefix`` or a local directory.
    storage_options : dict, optional
        fsspec options, e.g. ``{"client_kwargs": {"endpoint_url": ...}}`` (or set
        ``AWS_ENDPOINT_URL``).
    batch : int
        Files fetched concurrently (one ``fs.cat`` call) by ``scan``, and so held in memory at
        once.
    """

    name = "fits"

    def __init__(self, base_url: str | Path, storage_options: dict | None = None, batch: int = 32) -> None:
        self.base_url = str(base_url).rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = _fs(self.base_url, self.storage_options)
        self.batch = batch
        #: (observation, target) -> URL. Built at load time and not timed: MAST users know the
        #: URL from the file name (or from a MAST query).
        self.urls: dict[tuple[str, int], str] = {}

    def load(self, files: list[Path]) -> None:
        files = [Path(f) for f in files]
        local = fsspec.filesystem("file")
        targets = []
        for f in files:
            h0, h1 = _header_pair(local, str(f))
            targets.append((observation_id(h0, h1), int(h0["TICID"] if "TICID" in h0 else h0["KEPLERID"])))
        self.fs.mkdirs(self.root, exist_ok=True)
        for obs in {o for o, _ in targets}:
            self.fs.mkdirs(f"{self.root}/{obs}", exist_ok=True)
        remote = [f"{self.root}/{obs}/{f.name}" for f, (obs, _) in zip(files, targets, strict=True)]
        # one call: s3fs uploads the files concurrently; locally it copies them one by one
        self.fs.put([str(f) for f in files], remote)
        for (obs, target), path in zip(targets, remote, strict=True):
            self.urls[(obs, target)] = _url(self.fs, path)
        self.fs.invalidate_cache()

    def read_target(self, target: int, observation: str) -> dict[str, np.ndarray]:
        url = self.urls[(observation, target)]
        # as lightkurve / astroquery read a cloud file: an fsspec file object handed to astropy
        with fsspec.open(url, "rb", **self.storage_options) as f:
            lc = read_fits_lightcurve(f, name=url)
        return lc.arrays

    def _paths(self, observation: str) -> list[str]:
        return [u for (obs, _), u in sorted(self.urls.items()) if obs == observation]

    def scan(self, observation: str) -> int:
        total = 0
        paths = [fsspec.core.url_to_fs(u, **self.storage_options)[1] for u in self._paths(observation)]
        for chunk in _batched(paths, self.batch):
            blobs = self.fs.cat(chunk)  # concurrent GETs on s3fs
            for p in chunk:
                total += _arrays_nbytes(read_fits_lightcurve(blobs.pop(p), name=p).arrays)
        return total

    def stored_bytes(self) -> int:
        self.fs.invalidate_cache()
        return int(self.fs.du(self.root, total=True))


# ---------------------------------------------------------------------------------------------
# b. HDF5, SkyPortal photometric series
# ---------------------------------------------------------------------------------------------

#: SkyPortal bandpass names (sncosmo) of the missions
_FILTERS = {"tess": "tess", "kepler": "kepler", "k2": "kepler"}
#: instrument IDs of a SkyPortal instance holding these data (arbitrary but fixed)
_INSTRUMENT_IDS = {"tess": 1, "kepler": 2, "k2": 2}
_MJD_REF = 2400000.5
HDF5_KEY = "phot_series"


def skyportal_series(lc: LightCurve) -> tuple[Any, dict[str, Any], str]:
    """The (DataFrame, metadata, relative file path) SkyPortal stores for one light curve."""
    import pandas as pd

    meta = lc.meta
    offset = meta["bjdref"] - _MJD_REF  # BTJD + 56999.5, BKJD + 54832.5
    df = pd.DataFrame(
        {
            "mjd": lc.arrays["time"].astype(np.float64) + offset,
            "flux": lc.arrays["flux"],
            "fluxerr": lc.arrays["flux_err"],
            "quality": lc.arrays["quality"],
        }
    )
    if meta["camera"] is not None:
        channel = f"{meta['camera']}_{meta['ccd']}"
    elif meta["module"] is not None:
        channel = f"{meta['module']}_{meta['output']}"
    else:
        channel = ""
    if meta["int_time"] and meta["num_frm"]:
        exp_time = float(meta["int_time"]) * float(meta["num_frm"])  # seconds of integration per cadence
    else:
        exp_time = float(meta["timedel"] or 0.0) * 86400.0
    origin = "QLP" if "QLP" in meta["origin"].upper() else ("SPOC" if meta["mission"] == "tess" else "Kepler_SOC")
    catalog = "TIC" if meta["mission"] == "tess" else ("EPIC" if meta["mission"] == "k2" else "KIC")
    metadata = {
        # REQUIRED_ATTRIBUTES
        "series_name": lc.observation,  # "e.g., a TESS sector"
        "series_obj_id": str(lc.target),  # "e.g., ... a TESS TICID"
        "obj_id": f"{catalog}{lc.target}",
        "instrument_id": _INSTRUMENT_IDS[meta["mission"]],
        "owner_id": 1,
        "group_ids": [1],
        "stream_ids": [],
        # INFERABLE_ATTRIBUTES
        "ra": float(meta["ra"]) if meta["ra"] is not None else float("nan"),
        "dec": float(meta["dec"]) if meta["dec"] is not None else float("nan"),
        "exp_time": exp_time,
        "filter": _FILTERS[meta["mission"]],
        # OPTIONAL_ATTRIBUTES
        "channel": channel,
        "origin": origin,
        "time_stamp_alignment": "middle",
        "altdata": {
            "time_system": "BJD_TDB - 2400000.5 (mjd column: source TIME + BJDREF - 2400000.5)",
            "bjdref": meta["bjdref"],
            "source_file": lc.name,
        },
    }
    # skyportal PhotometricSeries.make_full_name: <series_name>/series_<obj>_inst_<id>[_channel][_origin].h5
    suffix = (f"_{channel}" if channel else "") + f"_{origin}"
    rel = f"{lc.observation}/series_{lc.target}_inst_{metadata['instrument_id']}{suffix}.h5"
    return df, metadata, rel


def skyportal_hdf5_bytes(df: Any, metadata: dict[str, Any]) -> bytes:
    """SkyPortal's ``PhotometricSeries.get_data_bytes``: the HDF5 file image, made in memory."""
    import pandas as pd

    with pd.HDFStore("series.h5", mode="w", driver="H5FD_CORE", driver_core_backing_store=0) as store:
        store.put(HDF5_KEY, df, format="table", index=None, track_times=False)
        store.get_storer(HDF5_KEY).attrs.metadata = metadata
        return store._handle.get_file_image()


def read_skyportal_hdf5(source: str | bytes) -> tuple[Any, dict[str, Any]]:
    """(DataFrame, metadata) of a SkyPortal HDF5 file: a local path, or the file's bytes.

    Bytes are opened in memory with the HDF5 core driver, as ``skyportal/utils/hdf5_files.py``
    does with the bytes of an upload.
    """
    import pandas as pd

    if isinstance(source, bytes | bytearray | memoryview):
        kwargs = {"driver": "H5FD_CORE", "driver_core_backing_store": 0, "driver_core_image": bytes(source)}
        path = "data.h5"  # ignored by the core driver
    else:
        kwargs, path = {}, str(source)
    with pd.HDFStore(path, mode="r", **kwargs) as store:
        keys = store.keys()
        if len(keys) != 1:
            raise ValueError(f"expected 1 table in HDF5 file, got {len(keys)}")
        df = store[keys[0]]
        attrs = store.get_storer(keys[0]).attrs
        metadata = attrs.metadata if "metadata" in attrs and isinstance(attrs.metadata, dict) else {}
    return df, metadata


def _series_arrays(df: Any, metadata: dict[str, Any]) -> dict[str, np.ndarray]:
    mjd = df["mjd"].to_numpy()
    bjdref = metadata.get("altdata", {}).get("bjdref")
    out = {
        "mjd": mjd,
        "flux": df["flux"].to_numpy(),
        "flux_err": df["fluxerr"].to_numpy(),
        "quality": df["quality"].to_numpy(),
    }
    # 'time' in the mission's own system (BTJD/BKJD), like the other peers; equal to the
    # source TIME to within float64 rounding of the MJD offset (~1e-11 d)
    out["time"] = mjd - (bjdref - _MJD_REF) if bjdref is not None else mjd
    return out


class HDF5Peer(Peer):
    """SkyPortal photometric series: one HDF5 file (pandas HDFStore table) per target and series.

    Parameters
    ----------
    base_url : str
        Root folder of the series files, ``s3://bucket/prefix`` or a local directory.
    storage_options : dict, optional
        fsspec options for ``s3://``.
    batch : int
        Files written/fetched per concurrent ``fs.pipe``/``fs.cat`` call.

    Reading: a local file is opened by path (``pd.HDFStore(path, mode="r")``, HDF5 reads what it
    needs). From S3 the whole object is downloaded (``fs.cat_file``: one GET, preceded by a
    HEAD with s3fs's default ``max_concurrency``) and opened in memory with the HDF5 core
    driver, as SkyPortal itself handles HDF5 bytes; pandas/PyTables cannot read through a
    Python file object, and a temporary file would only add a disk write.
    """

    name = "hdf5"

    def __init__(self, base_url: str | Path, storage_options: dict | None = None, batch: int = 32) -> None:
        self.base_url = str(base_url).rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = _fs(self.base_url, self.storage_options)
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        self.batch = batch
        #: (observation, target) -> path in self.fs; built at load time, not timed (SkyPortal
        #: keeps each series' filename in its database)
        self.paths: dict[tuple[str, int], str] = {}

    def load(self, files: list[Path]) -> None:
        self.fs.mkdirs(self.root, exist_ok=True)
        made: set[str] = set()
        for chunk in _batched([Path(f) for f in files], self.batch):
            blobs: dict[str, bytes] = {}
            for f in chunk:
                lc = read_fits_lightcurve(f)
                df, metadata, rel = skyportal_series(lc)
                path = f"{self.root}/{rel}"
                parent = path.rsplit("/", 1)[0]
                if parent not in made:
                    self.fs.mkdirs(parent, exist_ok=True)
                    made.add(parent)
                blobs[path] = skyportal_hdf5_bytes(df, metadata)
                self.paths[(lc.observation, lc.target)] = path
            self.fs.pipe(blobs)  # concurrent PUTs on s3fs
        self.fs.invalidate_cache()

    def _read(self, path: str, blob: bytes | None = None) -> dict[str, np.ndarray]:
        if blob is None:
            blob = None if self.local else self.fs.cat_file(path)
        df, metadata = read_skyportal_hdf5(path if blob is None else blob)
        return _series_arrays(df, metadata)

    def read_target(self, target: int, observation: str) -> dict[str, np.ndarray]:
        return self._read(self.paths[(observation, target)])

    def scan(self, observation: str) -> int:
        paths = [p for (obs, _), p in sorted(self.paths.items()) if obs == observation]
        total = 0
        for chunk in _batched(paths, self.batch):
            blobs = {} if self.local else self.fs.cat(chunk)
            for p in chunk:
                total += _arrays_nbytes(self._read(p, blobs.pop(p, None)))
        return total

    def stored_bytes(self) -> int:
        self.fs.invalidate_cache()
        return int(self.fs.du(self.root, total=True))


# ---------------------------------------------------------------------------------------------
# c. PostgreSQL, lightcurvedb's array-per-row model
# ---------------------------------------------------------------------------------------------

PG_USER = "lcbench"


def ensure_postgres_installed() -> Path:
    """Directory of PostgreSQL's server programs (initdb, postgres); apt-get install if missing.

    Looks for ``/usr/lib/postgresql/<version>/bin/initdb`` (newest version first), then for
    ``initdb`` on PATH. Only when neither exists (a fresh CI machine) does it run
    ``apt-get update`` and ``apt-get install -y postgresql`` (needs root).
    """

    def find() -> Path | None:
        found = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
        )
        if found:
            return Path(found[-1]).parent
        which = shutil.which("initdb")
        return Path(which).resolve().parent if which else None

    bindir = find()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL is not installed and installing it needs root (apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], check=True, env=env, stdout=subprocess.DEVNULL
    )
    bindir = find()
    if bindir is None:
        raise RuntimeError("apt-get install postgresql did not provide initdb")
    return bindir


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1: initdb in a temp dir, postgres, stop."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.bindir = ensure_postgres_installed()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lcbench-pg-"))
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        as_root = os.geteuid() == 0
        self.user = PG_USER if as_root else pwd.getpwuid(os.geteuid()).pw_name
        run_as: dict[str, Any] = {}
        if as_root:  # postgres refuses to run as root
            pw = _ensure_user(PG_USER)
            for p in (self.dir, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir,
            **run_as,
        )
        args = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-k",
            str(self.sock),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]
        for k, v in (settings or {}).items():
            args += ["-c", f"{k}={v}"]
        self.log = open(self.dir / "postgres.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir, **run_as)
        self.conninfo = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        self._wait()

    def _wait(self, timeout: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.dir / 'postgres.log').read_text()[-2000:]}")
            try:
                psycopg.connect(self.conninfo, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# PostgreSQL OIDs
_OID = {"int2": 21, "int4": 23, "int8": 20, "text": 25, "float8": 701}
_ARRAY_OID = {"int4": 1007, "int8": 1016, "float8": 1022}
_BE = {"int4": ">i4", "int8": ">i8", "float8": ">f8"}


def _pg_array(values: np.ndarray, elem: str) -> bytes:
    """PostgreSQL binary wire format of a one-dimensional array without NULLs."""
    values = np.asarray(values)
    if values.size == 0:
        return struct.pack(">iii", 0, 0, _OID[elem])
    body = np.empty(values.size, dtype=[("len", ">i4"), ("v", _BE[elem])])
    body["len"] = np.dtype(_BE[elem]).itemsize
    body["v"] = values
    return struct.pack(">iiiii", 1, 0, _OID[elem], values.size, 1) + body.tobytes()


def _numpy_array_loader(elem: str) -> type:
    """A psycopg binary loader of a one-dimensional array type straight into numpy."""
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    be = np.dtype(_BE[elem])
    native = be.newbyteorder("=")

    class NumpyArrayLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> np.ndarray:
            buf = memoryview(data)
            ndim, has_null, _ = struct.unpack_from(">iii", buf, 0)
            if ndim == 0:
                return np.empty(0, native)
            if ndim != 1 or has_null:
                raise ValueError("only one-dimensional arrays without NULLs are stored here")
            (n,) = struct.unpack_from(">i", buf, 12)
            rec = np.frombuffer(buf, dtype=[("len", ">i4"), ("v", be)], count=n, offset=20)
            return rec["v"].astype(native)

    return NumpyArrayLoader


class PostgresPeer(Peer):
    """lightcurvedb's storage model on a PostgreSQL server started for the benchmark.

    Table ``array_orbit_lightcurves`` (lightcurvedb's name) with one row per target and
    observation::

        tic_id bigint, camera smallint, ccd smallint, observation text,
        cadences bigint[], barycentric_julian_dates float8[], data float8[], errors float8[],
        x_centroids float8[], y_centroids float8[], quality_flags int4[],
        PRIMARY KEY (tic_id, observation)

    and an index on ``observation`` (lightcurvedb indexes each of its key columns). The column
    types are lightcurvedb's (SQLAlchemy ``BigInteger``/``Float``/``DOUBLE_PRECISION``/
    ``Integer`` arrays; ``Float`` is float8 in PostgreSQL). Its key is (tic_id, camera, ccd,
    orbit_id, aperture_id, lightcurve_type_id); here the observation ID takes the place of
    orbit/aperture/type. Arrays are TOASTed with PostgreSQL's default compression (pglz).

    Loading uses binary ``COPY`` with the arrays encoded by numpy; reading uses a binary
    cursor whose array loader decodes straight into numpy, over one persistent TCP connection
    to 127.0.0.1 (the best case for this model, not the ORM path lightcurvedb itself takes).
    """

    name = "postgres"
    table = "array_orbit_lightcurves"

    def __init__(self, settings: dict[str, str] | None = None, batch: int = 64) -> None:
        import psycopg

        self.server = PostgresServer(settings)
        self.batch = batch
        self.conn = psycopg.connect(self.server.conninfo, autocommit=True)
        for elem, oid in _ARRAY_OID.items():
            self.conn.adapters.register_loader(oid, _numpy_array_loader(elem))
        with self.conn.cursor() as cur:
            cur.execute(
                f"""CREATE TABLE {self.table} (
                    tic_id bigint NOT NULL,
                    camera smallint,
                    ccd smallint,
                    observation text NOT NULL,
                    cadences bigint[],
                    barycentric_julian_dates double precision[],
                    data double precision[],
                    errors double precision[],
                    x_centroids double precision[],
                    y_centroids double precision[],
                    quality_flags integer[],
                    PRIMARY KEY (tic_id, observation)
                )"""
            )
            cur.execute(f"CREATE INDEX ON {self.table} (observation)")

    def load(self, files: list[Path]) -> None:
        header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
        for chunk in _batched([Path(f) for f in files], self.batch):
            rows = [header]
            for f in chunk:
                lc = read_fits_lightcurve(f)
                a, m = lc.arrays, lc.meta
                n = a["time"].size
                nan = np.full(n, np.nan)
                small = [m["camera"], m["ccd"]] if m["camera"] is not None else [m["module"], m["output"]]
                fields = [
                    struct.pack(">q", lc.target),
                    *(struct.pack(">h", int(v)) if v is not None else None for v in small),
                    lc.observation.encode(),
                    _pg_array(a["cadenceno"], "int8"),
                    _pg_array(a["time"], "float8"),
                    _pg_array(a["flux"], "float8"),
                    _pg_array(a["flux_err"], "float8"),
                    _pg_array(a.get("x_centroid", nan), "float8"),
                    _pg_array(a.get("y_centroid", nan), "float8"),
                    _pg_array(a["quality"], "int4"),
                ]
                parts = [struct.pack(">h", len(fields))]
                for fld in fields:
                    parts += [struct.pack(">i", -1)] if fld is None else [struct.pack(">i", len(fld)), fld]
                rows.append(b"".join(parts))
            rows.append(struct.pack(">h", -1))
            with self.conn.transaction(), self.conn.cursor() as cur:
                with cur.copy(
                    f"COPY {self.table} (tic_id, camera, ccd, observation, cadences, barycentric_julian_dates, "
                    "data, errors, x_centroids, y_centroids, quality_flags) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.write(b"".join(rows))
        with self.conn.cursor() as cur:
            cur.execute(f"ANALYZE {self.table}")

    _SELECT = "SELECT cadences, barycentric_julian_dates, data, errors, quality_flags FROM {table}"

    @staticmethod
    def _arrays(row: tuple) -> dict[str, np.ndarray]:
        cadences, bjd, data, errors, quality = row
        return {"time": bjd, "flux": data, "flux_err": errors, "quality": quality, "cadenceno": cadences}

    def read_target(self, target: int, observation: str) -> dict[str, np.ndarray]:
        with self.conn.cursor(binary=True) as cur:
            cur.execute(self._SELECT.format(table=self.table) + " WHERE tic_id = %s AND observation = %s", (target, observation))
            row = cur.fetchone()
        if row is None:
            raise KeyError((target, observation))
        return self._arrays(row)

    def scan(self, observation: str) -> int:
        total = 0
        with self.conn.transaction(), self.conn.cursor(name="scan", binary=True) as cur:
            cur.itersize = self.batch  # rows per round trip of the server-side cursor
            cur.execute(
                f"SELECT barycentric_julian_dates, data, errors, quality_flags FROM {self.table} WHERE observation = %s",
                (observation,),
            )
            for row in cur:
                total += sum(a.nbytes for a in row)
        return total

    def stored_bytes(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_total_relation_size(%s)", (self.table,))
            return int(cur.fetchone()[0])

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.server.stop()
