"""Derive catalog entries (observations, datasets) from observation groups.

Everything here is read from the group's metadata and small per-target arrays, so
``lcarchive catalog build`` can rebuild the catalog from the store alone.
"""

from __future__ import annotations

import fnmatch
import json

import numpy as np
import xarray as xr

from lcarchive.catalog.models import Catalog, DataSet, DataSetDefinition, InputFile, Observation, Release

__all__ = ["finish_catalog", "observation_entry"]


def _str_values(var: xr.DataArray) -> list[str]:
    return [str(v) for v in var.values.astype(object)]


def _derived_definitions(attrs: dict, catalog: Catalog) -> list[DataSetDefinition]:
    """Datasets of a derived observation beyond its product's: each processing tool's (its
    parameters filled in, ``{datacol}`` -> ``PDCSAP_FLUX``), and every added flux column no known
    tool explains (processing method ``unknown``)."""
    tools = {t.name: t for t in catalog.processing_tools}
    parameters = attrs.get("processing_parameters", {}) or {}
    out: list[DataSetDefinition] = []
    covered: set[str] = set()
    for name in attrs.get("processing_tools", []) or []:
        tool = tools.get(name)
        if tool is None:
            continue
        values = {**tool.parameters, **parameters.get(name, {})}
        covered.update(c.upper() for c in tool.columns)
        for d in tool.datasets:
            out.append(d.model_copy(update={"derived_from": [f.format(**values) for f in d.derived_from]}))
    for column in attrs.get("added_columns", []) or []:
        upper = str(column).upper()
        if upper in covered or any(fnmatch.fnmatch(upper, c) for c in covered) or "FLUX" not in upper or upper.endswith("_ERR"):
            continue
        out.append(DataSetDefinition(column=str(column), photometric_source="unknown", processing_method="unknown"))
    return out


def observation_entry(
    ds: xr.Dataset, obs_id: str, group: str, catalog: Catalog, with_inputs: bool = False
) -> tuple[Observation, list[DataSet]]:
    """Return the catalog entries of one observation group.

    Parameters
    ----------
    ds : xarray.Dataset
        The group, opened lazily.
    obs_id : str
        Its observation ID.
    group : str
        Its path relative to the archive root.
    catalog : Catalog
        Catalog holding the product definitions.
    with_inputs : bool
        List every target's input files in each dataset (``DataSet.inputs``: store format v1's
        catalog). Format v2 keeps that provenance in the group's per-target arrays only
        (``source_file``, ``source_sha256``, ``data_release``, ``pipeline_version``).

    Returns
    -------
    (Observation, list of DataSet)
    """
    attrs = ds.attrs
    cadenceno = ds["cadenceno"].values
    targets = ds["target"].values.astype(np.int64)
    data_rel = ds["data_release"].values.astype(np.int64)
    procver = _str_values(ds["pipeline_version"])
    releases: dict[tuple[int | None, str | None], int] = {}
    inputs = []
    for i, t in enumerate(targets):
        rel = None if data_rel[i] < 0 else int(data_rel[i])
        ver = procver[i] or None
        releases[(rel, ver)] = releases.get((rel, ver), 0) + 1
        if not with_inputs:
            continue
        if i == 0:
            files, shas = _str_values(ds["source_file"]), _str_values(ds["source_sha256"])
            sizes = ds["source_size"].values.astype(np.int64)
            states = _str_values(ds["integrity"]) if "integrity" in ds else [""] * targets.size
            warned = _str_values(ds["input_warnings"]) if "input_warnings" in ds else [""] * targets.size
        names, digests = files[i].split("\n"), shas[i].split("\n")  # several segments: one line each
        file_states, file_warnings = states[i].split("\n"), warned[i].split("\n")
        for k, (name, digest) in enumerate(zip(names, digests, strict=True)):
            size = int(sizes[i]) if len(names) == 1 else None
            state = file_states[k] if k < len(file_states) else ""
            lines = file_warnings[k] if k < len(file_warnings) else ""
            inputs.append(
                InputFile(
                    name=name,
                    sha256=digest,
                    size=size,
                    target=int(t),
                    data_release=rel,
                    pipeline_version=ver,
                    integrity=state or None,
                    warnings=json.loads(lines) if lines else [],
                )
            )
    observation = Observation(
        id=obs_id,
        mission=attrs["mission"],
        product=attrs["product"],
        segment_kind=attrs["segment_kind"],
        segment=int(attrs["segment"]),
        cadenceno_min=int(cadenceno.min()) if cadenceno.size else 0,
        cadenceno_max=int(cadenceno.max()) if cadenceno.size else 0,
        n_cadences=int(cadenceno.size),
        time_min=attrs.get("time_min"),
        time_max=attrs.get("time_max"),
        time_format=attrs["time_format"],
        n_targets=int(targets.size),
        group=group,
        instruments=list(attrs.get("instruments", [])),
        releases=[
            Release(data_release=r, pipeline_version=v, n_targets=n)
            for (r, v), n in sorted(releases.items(), key=lambda kv: (kv[0][0] or -1, kv[0][1] or ""))
        ],
        superseded_release="superseded_release" in attrs,
        current=attrs.get("current_observation"),
        derived_from=attrs.get("derived_from_observation"),
        processing=list(attrs.get("processing_tools", [])),
    )
    product = catalog.product(attrs["product"])
    series = {name: v.attrs for name, v in ds.data_vars.items() if v.dims == ("target", "cadence")}
    main = str(series.get("time", {}).get("source_hdu", ""))

    def located(column: str, hdu: str) -> str | None:
        return next(
            (
                n
                for n, a in series.items()
                if str(a.get("source_column", "")).upper() == column.upper()  # type: ignore[return-value]  # xarray's names are Hashable; ours are str
                and str(a.get("source_hdu", "")) == hdu
            ),
            None,
        )

    datasets = []
    for definition in [*product.datasets, *_derived_definitions(attrs, catalog)]:
        if definition.hdu is None:
            tables = [main]
        else:
            tables = sorted(
                {
                    str(a.get("source_hdu", ""))
                    for a in series.values()  # the light-curve table has its own definitions
                    if fnmatch.fnmatch(str(a.get("source_hdu", "")).upper(), definition.hdu.upper())
                }
                - {main}
            )
        for hdu in tables:
            if definition.variable is not None:  # named by the variable: its source column varies per file
                variable = definition.variable if definition.variable in series else None
            else:
                variable = located(definition.column, hdu)
            if variable is None:
                continue
            error = "flux_err" if variable == "flux" else located(f"{definition.column}_ERR", hdu)
            column = definition.column
            if definition.variable is not None:
                column = str(series[variable].get("source_column", "")) or definition.column
            datasets.append(
                DataSet(
                    id=f"{obs_id}/{variable}",
                    observation=obs_id,
                    variable=variable,
                    error_variable=error,
                    source_column=column if hdu == main else f"{hdu}.{column}",
                    photometric_source=definition.photometric_source.format(hdu=hdu.lower()),
                    processing_method=definition.processing_method,
                    units=series[variable].get("units") or None,
                    derived_from=[f"{obs_id}/{v}" for v in (located(c, hdu) for c in definition.derived_from) if v],
                    pipeline_versions=sorted({v for v in procver if v}),
                    data_releases=sorted({int(r) for r in data_rel if r >= 0}),
                    inputs=inputs,
                )
            )
    return observation, datasets


def finish_catalog(catalog: Catalog) -> Catalog:
    """Sort a catalog's entries and link observation groups to the groups of their older releases
    (``Observation.superseded_by_release``)."""
    catalog.observations.sort(key=lambda o: o.id)
    catalog.datasets.sort(key=lambda d: d.id)
    by_id = {o.id: o for o in catalog.observations}
    for obs in catalog.observations:
        obs.superseded_by_release = []
    for obs in catalog.observations:
        if obs.superseded_release and obs.current in by_id:
            by_id[obs.current].superseded_by_release.append(obs.id)
    return catalog
