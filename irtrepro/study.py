"""The Study dataset: schema, validation, provenance, save and open (netCDF or zarr).

A Study is a plain :class:`xarray.Dataset` (see DESIGN.md, "Data contracts"): dims ``subject``,
``session``, ``time`` (s since exercise start, regular grid) and, for thermal metrics, ``side``.
Study-specific behaviour lives in the ``ds.irt`` accessor, not a subclass; ``import irtrepro``
registers it.

Examples
--------
>>> import irtrepro as irt
>>> ds = irt.example_study()
>>> dict(ds.sizes)
{'subject': 6, 'session': 2, 'time': 360, 'side': 3}
>>> ds.irt.phase_means(["hr"]).hr.sel(subject="S01").round(1).values.tolist()
[[119.2, 146.7, 98.0], [118.4, 146.4, 97.3]]
>>> path = irt.save_study(ds, "study.nc")           # doctest: +SKIP
>>> ds = irt.open_study("study.nc")                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def merge_variables(study: xr.Dataset, extra: xr.Dataset) -> xr.Dataset:
    """Add variables to the Study, aligned on its subject/session/time grid.

    ``extra`` is reindexed on the Study's coordinates (what it has beyond them is dropped,
    what it lacks is NaN). Clock provenance rows in ``extra.attrs["clock"]`` (a JSON list,
    one row per subject, session and stream) are appended to the Study's.
    """
    aligned = extra.reindex({d: study[d] for d in REQUIRED_DIMS if d in extra.dims})
    out = study.merge(aligned, compat="override", join="left")
    if "clock" in extra.attrs:
        rows = json.loads(study.attrs.get("clock", "[]")) + json.loads(extra.attrs["clock"])
        out.attrs["clock"] = json.dumps(rows)
    return out


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


def example_study(n_subjects: int = 6, *, seed: int = 0) -> xr.Dataset:
    """A tiny in-memory Study for examples and tests (not the synthetic study generator).

    Two sessions (``ses-1``, ``ses-2``) of 360 s on a 1 s grid: ``warmup`` (0-119 s),
    ``steady`` (120-299 s), ``recovery`` (300-359 s). ``hr`` (min-1) rises with speed;
    ``tnv`` (degC, sides left/right/both) falls after exercise onset. Subjects differ by a
    stable offset, sessions by noise, so test-retest ICCs are high.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (``S01``, ``S02``, ...).
    seed : int
        Seed of the noise (the same seed gives the same Study).

    Returns
    -------
    xarray.Dataset
        A valid Study (:func:`validate_study` passes).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(360.0)
    phase = np.where(t < 120, "warmup", np.where(t < 300, "steady", "recovery"))
    speed = np.where(phase == "warmup", 8.0, np.where(phase == "steady", 12.0, 5.0))
    subjects = [f"S{i + 1:02d}" for i in range(n_subjects)]
    sessions = ["ses-1", "ses-2"]
    ns, nj = n_subjects, len(sessions)
    hr_sub = rng.normal(0, 8, (ns, 1, 1))
    hr = (60 + 7 * speed[None, None, :] + hr_sub
          + rng.normal(0, 1.5, (ns, nj, 1)) + rng.normal(0, 2, (ns, nj, t.size)))
    drop = -1.2 * (1 - np.exp(-t / 60.0))
    tnv_sub = rng.normal(0, 0.8, (ns, 1, 1, 1))
    lr = 32.0 + tnv_sub + drop[None, None, :, None] + rng.normal(0, 0.2, (ns, nj, 1, 2)) \
        + rng.normal(0, 0.05, (ns, nj, t.size, 2))
    tnv = np.concatenate([lr, lr.mean(axis=3, keepdims=True)], axis=3)
    ds = xr.Dataset(
        {
            "speed": (("subject", "session", "time"), np.broadcast_to(speed, (ns, nj, t.size))
                      .copy(), {"units": "km h-1", "long_name": "treadmill speed (protocol)"}),
            "phase": (("subject", "session", "time"), np.broadcast_to(phase, (ns, nj, t.size))
                      .copy(), {"units": "1", "long_name": "protocol phase"}),
            "hr": (("subject", "session", "time"), hr,
                   {"units": "min-1", "long_name": "heart rate"}),
            "tnv": (("subject", "session", "time", "side"), tnv,
                    {"units": "degC", "long_name": "non-vessel skin temperature"}),
            "viat": ("subject", 14 + rng.normal(0, 1.5, ns),
                     {"units": "km h-1",
                      "long_name": "speed at the individual anaerobic threshold"}),
        },
        coords={"subject": subjects, "session": sessions, "time": t, "side": list(SIDES)},
    )
    ds["time"].attrs = {"units": "s", "long_name": "time since exercise start"}
    ds.attrs = {"title": "irtrepro example study", "seed": str(seed)}
    return validate_study(ds)


@xr.register_dataset_accessor("irt")
class StudyAccessor:
    """Study helpers under ``ds.irt`` (registered by ``import irtrepro``).

    What a physiologist does first with a Study: :meth:`phase_means`, :meth:`summary` over
    named windows, :meth:`icc` of those summaries, :meth:`plot_session`; plus
    :meth:`phase`, :meth:`subjects` and :meth:`validate`.

    Examples
    --------
    >>> import irtrepro as irt
    >>> ds = irt.example_study()
    >>> s = ds.irt.summary({"onset": (0, 60), "steady": "steady"}, variables=["hr"])
    >>> s.hr.dims
    ('subject', 'session', 'window')
    >>> s.window.values.tolist()
    ['onset', 'steady']
    """

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

    def _sided(self, side: str | None) -> xr.Dataset:
        if side is None:
            return self._ds
        from irtrepro.summaries import one_side

        if "side" in self._ds.dims:
            sides = self._ds["side"].values.tolist()
            allowed = sorted(set(sides) | ({"both"} if {"left", "right"} <= set(sides) else set()))
            check_option("side", side, allowed)
        return one_side(self._ds, side)

    def phase_means(self, variables: Sequence[str] | None = None, *,
                    side: str | None = None) -> xr.Dataset:
        """Mean of each variable per protocol phase and session.

        Parameters
        ----------
        variables : sequence of str, optional
            Variables on ``time`` (default: every numeric one but ``phase``).
        side : {"left", "right", "both"} or None
            Keep one side of the thermal variables; ``None`` keeps the ``side`` dim.

        Returns
        -------
        xarray.Dataset
            Dims ``(subject, session, phase[, side])``, units of the variables (NaN-skipping
            means; NaN where a session has no finite value in a phase), phases in protocol
            order (first appearance in time).

        Examples
        --------
        >>> import irtrepro as irt
        >>> pm = irt.example_study().irt.phase_means(["hr", "tnv"], side="both")
        >>> pm.tnv.dims, pm.phase.values.tolist()
        (('subject', 'session', 'phase'), ['warmup', 'steady', 'recovery'])
        """
        from irtrepro.summaries import phase_means, phase_order, time_variables

        ds = self._sided(side)
        names = time_variables(ds, variables)
        out = phase_means(ds[names], ds["phase"]).sel(phase=phase_order(ds["phase"]))
        return out.transpose("subject", "session", "phase", ..., missing_dims="ignore")

    def summary(self, windows: Mapping[str, str | tuple[float, float]] | Sequence[str]
                | None = None, variables: Sequence[str] | None = None, *,
                side: str | None = None) -> xr.Dataset:
        """Per-session means over named time windows, on a ``window`` dimension.

        Parameters
        ----------
        windows : mapping, sequence of str or None
            Name -> phase label (mean over the phase) or ``(start, stop)`` in s (mean over
            ``start <= time < stop``); a list of phase labels; ``None``: ``onset`` (0-60 s)
            then every phase in protocol order.
        variables : sequence of str, optional
            Variables on ``time`` (default: every numeric one but ``phase``).
        side : {"left", "right", "both"} or None
            Keep one side of the thermal variables; ``None`` keeps the ``side`` dim.

        Returns
        -------
        xarray.Dataset
            Dims ``(subject, session, window[, side])``; see
            :func:`irtrepro.summaries.window_summary`.

        Examples
        --------
        >>> import irtrepro as irt
        >>> s = irt.example_study().irt.summary(["warmup", "recovery"], ["tnv"], side="both")
        >>> s.tnv.sel(subject="S01").round(2).values.tolist()
        [[31.07, 30.55], [30.86, 30.34]]
        >>> s.window_definition.values.tolist()
        ['phase warmup', 'phase recovery']
        """
        from irtrepro.summaries import window_summary

        return window_summary(self._sided(side), windows, variables)

    def icc(self, windows: Mapping[str, str | tuple[float, float]] | Sequence[str]
            | None = None, variables: Sequence[str] | None = None, *,
            side: str | None = "both", **kwargs: Any):
        """Intraclass correlations of window summaries across sessions.

        Calls :func:`irtrepro.stats.icc` on :meth:`summary` (or on the Dataset itself when
        it has no ``time`` dim, e.g. ``ds.irt.phase_means().irt.icc()``).

        Parameters
        ----------
        windows, variables
            As :meth:`summary`.
        side : {"left", "right", "both"} or None
            Side of the thermal variables (default ``"both"``); ``None`` makes each side its
            own metric.
        **kwargs
            Passed to :func:`irtrepro.stats.icc` (``ci``, ``missing``, ``errors``).

        Returns
        -------
        pandas.DataFrame
            One row per variable, window and ICC form: ``metric`` (``"hr/onset"``),
            ``variable``, ``window``, ``units``, ``form``, ``icc``, ``ci_low``, ``ci_high``,
            ... (see :func:`irtrepro.stats.icc`).

        Examples
        --------
        >>> import irtrepro as irt
        >>> t = irt.example_study().irt.icc(["steady"], ["hr", "tnv"])
        >>> t[t.form == "ICC(A,1)"][["variable", "window", "icc"]].round(3)
          variable  window    icc
        1       hr  steady  0.939
        7      tnv  steady  0.979
        """
        from irtrepro.stats import icc

        if "time" in self._ds.dims:
            data = self.summary(windows, variables, side=side)
        else:
            data = self._sided(side)
            if variables is not None:
                data = data[[variables] if isinstance(variables, str) else list(variables)]
        return icc(data, **kwargs)

    def plot_session(self, subject: str, session: str, variables: Sequence[str] | None = None,
                     *, side: str = "both"):
        """Time series of one session, one panel per variable, phases shaded.

        Parameters
        ----------
        subject, session : str
            Ids of the session to show.
        variables : sequence of str, optional
            Variables on ``time`` (default: the skin and cardiopulmonary signals present).
        side : str
            Side shown for thermal variables.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from irtrepro.plots.session import session_figure

        return session_figure(self._ds, subject, session, variables, side=side)
