"""The Study dataset: schema, validation, provenance, save and open (netCDF or zarr).

A Study is a plain :class:`xarray.Dataset` (see DESIGN.md, "Data contracts"): dims ``subject``,
``session``, ``time`` (s since exercise start, regular grid) and, for thermal metrics, ``side``.
Study-specific behaviour lives in the ``ds.irt`` accessor, not a subclass.

Examples
--------
>>> import irtrepro.study as st
>>> ds = st.open_study("data/study.nc")            # doctest: +SKIP
>>> ds.irt.phase("warmup").hr.mean("time")          # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import xarray as xr

from irtrepro._atomic import atomic_path
from irtrepro.errors import StudyError, check_option

#: Expected units of known Study variables (CF-style unit strings).
UNITS = {
    "speed": "km h-1", "hr": "min-1", "vo2": "mL min-1", "vco2": "mL min-1", "ve": "L min-1",
    "rf": "min-1", "vt": "L", "rer": "1", "tcore": "degC", "tsk_mean": "degC", "tnv": "degC",
    "tp": "degC", "tv": "degC", "tp_entropy": "bit", "tnv_entropy": "bit", "rf_irt": "min-1",
    "cadence": "min-1", "viat": "km h-1", "body_mass": "kg", "age": "year",
}
SIDES = ("left", "right", "both")
REQUIRED_DIMS = ("subject", "session", "time")


def validate_study(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the Study contract; return it unchanged or raise.

    Checks: dims ``subject``, ``session``, ``time`` present with unique ids; ``time`` strictly
    increasing on a regular grid; ``side`` (where present) within left/right/both; every data
    variable has ``units`` and ``long_name``; known variables carry their expected units; no
    infinite values (missing data must be NaN).

    Raises
    ------
    StudyError
        Naming the variable or coordinate at fault and what was expected.
    """
    for d in REQUIRED_DIMS:
        if d not in ds.dims:
            raise StudyError(f"Study has no dimension {d!r}; dims are {list(ds.dims)}")
    for d in ("subject", "session"):
        vals = ds[d].values
        if len(set(vals.tolist())) != len(vals):
            raise StudyError(f"coordinate {d!r} has duplicate ids: {vals.tolist()}")
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size > 1:
        step = np.diff(t)
        if not np.all(step > 0):
            i = int(np.argmax(step <= 0))
            raise StudyError(f"coordinate 'time' is not strictly increasing at index {i + 1} "
                             f"({t[i]} -> {t[i + 1]} s)")
        if not np.allclose(step, step[0], rtol=0, atol=1e-9 * max(1.0, abs(step[0]))):
            raise StudyError(f"coordinate 'time' is not a regular grid (steps {step.min()} to "
                             f"{step.max()} s)")
    if "side" in ds.dims:
        bad = sorted(set(ds["side"].values.tolist()) - set(SIDES))
        if bad:
            raise StudyError(f"coordinate 'side' has {bad}; expected values in {list(SIDES)}")
    for name, var in ds.data_vars.items():
        for key in ("units", "long_name"):
            if key not in var.attrs:
                raise StudyError(f"variable {name!r} has no {key!r} attribute")
        if name in UNITS and var.attrs["units"] != UNITS[name]:
            raise StudyError(f"variable {name!r} has units {var.attrs['units']!r}; "
                             f"expected {UNITS[name]!r}")
        if np.issubdtype(var.dtype, np.floating) and np.isinf(var.values).any():
            raise StudyError(f"variable {name!r} has infinite values; missing data must be NaN")
    return ds


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The git commit of the source tree (``"unknown"`` outside a git checkout)."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=5)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=5).stdout
        return commit + ("-dirty" if dirty.strip() and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(manifest_sha256: str | None = None, seeds: dict | None = None,
               **extra) -> dict[str, str]:
    """Provenance attributes: package version, git commit, manifest sha256, seeds, time."""
    import irtrepro

    attrs = {
        "irtrepro_version": irtrepro.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "xarray_version": xr.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "manifest_sha256": manifest_sha256 or "",
        "seeds": json.dumps(seeds or {}, sort_keys=True),
        "Conventions": "CF-1.10",
    }
    attrs.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    return attrs


def _encoding(ds: xr.Dataset) -> dict:
    enc = {"time": {"dtype": "float64"}}
    for name, var in ds.data_vars.items():
        if np.issubdtype(var.dtype, np.floating):
            enc[name] = {"dtype": "float64", "_FillValue": np.nan}
    return enc


def save_study(ds: xr.Dataset, path: str | os.PathLike, *, validate: bool = True) -> Path:
    """Write a Study to netCDF (``.nc``, engine h5netcdf) or zarr (``.zarr``), atomically.

    The time coordinate is stored as float64 seconds with ``units: s`` (no calendar decoding);
    floats as float64 with NaN fill. The file appears under its final name only when complete.
    """
    path = Path(path)
    fmt = path.suffix.lower()
    check_option("study file suffix", fmt, (".nc", ".zarr"))
    if validate:
        validate_study(ds)
    out = ds.copy()
    # object (str) arrays must be unicode for both backends
    for name in list(out.variables):
        if out[name].dtype == object:
            out[name] = out[name].astype(str)
    with atomic_path(path, is_dir=fmt == ".zarr") as tmp:
        if fmt == ".nc":
            out.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(out))
        else:
            # zarr format 2: its string dtypes are specified (v3 has none yet for unicode)
            out.to_zarr(tmp, mode="w", encoding=_encoding(out), consolidated=True, zarr_format=2)
    return path


def open_study(path: str | os.PathLike, *, validate: bool = True) -> xr.Dataset:
    """Open a Study written by :func:`save_study` (loaded into memory)."""
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: no such Study file; build one with `irtrepro build`")
    if path.suffix.lower() == ".zarr":
        ds = xr.open_zarr(path, decode_times=False).load()
    else:
        with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as f:
            ds = f.load()
    return validate_study(ds) if validate else ds


@xr.register_dataset_accessor("irt")
class StudyAccessor:
    """Study helpers under ``ds.irt``: phase selection, subject tables."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def phase(self, name: str) -> xr.Dataset:
        """The Study with every time outside phase ``name`` set to NaN (time kept)."""
        phases = np.unique(self._ds["phase"].values)
        check_option("phase", name, [p for p in phases.tolist() if p])
        return self._ds.where(self._ds["phase"] == name)

    def subjects(self):
        """Per-subject variables as a pandas DataFrame indexed by subject."""
        names = [v for v in self._ds.data_vars if self._ds[v].dims == ("subject",)]
        return self._ds[names].to_dataframe()

    def validate(self) -> xr.Dataset:
        """Same as :func:`validate_study`."""
        return validate_study(self._ds)
