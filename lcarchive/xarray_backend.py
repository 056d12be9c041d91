"""The xarray backend ``engine="lcarchive"``: an archive's groups and light curves as datasets.

::

    xr.open_dataset("s3://bucket/archive", engine="lcarchive", group="tess-spoc-2min-s0001")
    xr.open_dataset("s3://bucket/archive", engine="lcarchive", target=261136679)

``group`` opens one observation group (dimensions target, cadence; lazy); ``target`` reads one
star across every current observation holding it (:meth:`lcarchive.Archive.light_curve`).
``version`` (a tag, branch or snapshot ID) or ``as_of`` (a datetime) read an earlier version;
``storage_options`` gives credentials and endpoint. Registered as an ``xarray.backends`` entry
point by the package's metadata.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

__all__ = ["LcarchiveBackendEntrypoint"]


class LcarchiveBackendEntrypoint(BackendEntrypoint):
    """Open an lcarchive archive's observation group (``group=``) or a target's light curve
    (``target=``) with ``xarray.open_dataset(url, engine="lcarchive", ...)``."""

    description = "Open light curves of an lcarchive archive (a group by observation ID, or one target)"
    url = "https://lcarchive.readthedocs.io/en/latest/format/"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "target",
        "version",
        "as_of",
        "storage_options",
        "variables",
        "include_superseded",
        "product",
        "missions",
        "mask_and_scale",
        "decode_times",
        "decode_timedelta",
        "use_cftime",
        "concat_characters",
        "decode_coords",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        target: int | str | None = None,
        version: str | None = None,
        as_of: _dt.datetime | None = None,
        storage_options: dict | None = None,
        variables: Iterable[str] | None = None,
        include_superseded: bool = False,
        product: str | None = None,
        missions: str | None = None,
        mask_and_scale: bool | None = None,
        decode_times: bool | None = None,
        decode_timedelta: bool | None = None,
        use_cftime: bool | None = None,
        concat_characters: bool | None = None,
        decode_coords: bool | str | None = None,
    ) -> xr.Dataset:
        """Open a group or a target's light curve.

        xarray's decoding keywords (``mask_and_scale``, ``decode_times``, ``decode_timedelta``,
        ``use_cftime``, ``concat_characters``, ``decode_coords``) are accepted and change
        nothing: the variables are returned as stored, which is what decoding would give. No
        variable has a scale or offset; the fills are NaN for floats and the documented
        integer fills (``quality``: -2147483648 marks a cadence the target's file lacks), kept
        as values because they are data; ``time`` is in days of the mission's time system
        (BTJD, BKJD: barycentric TDB), which CF's calendars cannot express, so it stays a
        number (``ds.lc.time`` gives an astropy ``Time``); text is text already.

        Parameters
        ----------
        filename_or_obj : str or path-like
            The archive's root URL.
        group : str, optional
            Observation ID (``tess-spoc-2min-s0001``); with ``target``, that observation only;
            ``<observation>/frames`` opens its frame table (:meth:`lcarchive.Archive.frames`).
        target : int or str, optional
            TIC/KIC/EPIC ID (``261136679``, ``"TIC 261136679"``); a star with light curves of
            several products opens its mission's default one (see
            :meth:`lcarchive.Archive.light_curve`).
        version, as_of
            The archive's version to read (default the latest).
        storage_options : dict, optional
            Credentials and endpoint.
        variables : iterable of str, optional
            With ``target``: the variables to read.
        include_superseded : bool
            With ``target``: also the groups of older releases.
        product : str, optional
            With ``target``: only this product's observations.
        missions : {"all"}, optional
            With ``target`` (naming its catalog, ``"KIC 8462852"``): the star's light curves of
            every mission through the archive's aliases, times in BJD_TDB
            (:meth:`lcarchive.Archive.light_curve`).

        Raises
        ------
        ValueError
            If neither ``group`` nor ``target`` is given.
        lcarchive.ObservationNotFoundError, lcarchive.TargetNotFoundError
        """
        from lcarchive.archive import open_archive

        if group is None and target is None:
            raise ValueError("engine='lcarchive' opens a group (group='tess-spoc-2min-s0001') or a target (target=TIC ID)")
        archive = open_archive(os.fspath(filename_or_obj), storage_options, version=version, as_of=as_of)
        if target is not None:
            ds = archive.light_curve(
                target,
                observation=group,
                variables=variables,
                include_superseded=include_superseded,
                product=product,
                quality_bitmask=None,
                missions=missions,
            )
        elif str(group).endswith("/frames"):  # an observation's frame table
            ds = archive.frames(str(group).removesuffix("/frames"))
        else:
            ds = archive.open_observation(group)  # type: ignore[arg-type]
        if drop_variables is not None:
            ds = ds.drop_vars([drop_variables] if isinstance(drop_variables, str) else list(drop_variables), errors="ignore")
        return ds

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike,
        *,
        drop_variables: str | Iterable[str] | None = None,
        target: int | str | None = None,
        version: str | None = None,
        as_of: _dt.datetime | None = None,
        storage_options: dict | None = None,
        **kwargs: Any,
    ) -> xr.DataTree:
        """The archive as a tree: a node per observation group (``/tess-spoc-2min-s0001``:
        dimensions target, cadence; lazy), or with ``target`` a node per product of the star
        (``/spoc-2min``, ``/qlp``: its light curve of that product, stitched over observations).

        Raises
        ------
        lcarchive.TargetNotFoundError
            If ``target`` is in no observation.
        """
        from lcarchive.archive import open_archive

        archive = open_archive(os.fspath(filename_or_obj), storage_options, version=version, as_of=as_of)
        if target is not None:
            nodes = archive.light_curve(target, quality_bitmask=None, products="all")
        else:
            nodes = {o.id: archive.open_observation(o.id) for o in archive.observations}
        if drop_variables is not None:
            names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
            nodes = {k: v.drop_vars(names, errors="ignore") for k, v in nodes.items()}
        return xr.DataTree.from_dict({f"/{name}": ds for name, ds in nodes.items()})

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        return False  # an archive root looks like any folder or prefix: ask for engine="lcarchive"
