"""Subject- and session-level summaries of Study time series (phase means, ΔTNV, gradients).

Plain functions on xarray objects with a ``time`` dim (s since exercise start) and a ``phase``
label per time, so they serve the truth of the synthetic study and measured Studies alike.
The same summaries are reachable on a Study as ``ds.irt.phase_means()`` and
``ds.irt.summary(windows=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.errors import StudyError

#: ΔTNV windows (s since exercise start): onset baseline and end of the warm-up, where the
#: onset drop has developed (>95 % of a 150 s response) before protocols diverge at 600 s.
ONSET_WINDOW = (0.0, 60.0)
DROP_WINDOW = (480.0, 600.0)


def window_mean(da: xr.DataArray, start: float, stop: float) -> xr.DataArray:
    """Mean of ``da`` over ``start <= time < stop`` (s), NaN-skipping."""
    t = da["time"]
    return da.where((t >= start) & (t < stop)).mean("time", skipna=True)


def delta_tnv(tnv: xr.DataArray, *,
              onset: tuple[float, float] = ONSET_WINDOW,
              drop: tuple[float, float] = DROP_WINDOW) -> xr.DataArray:
    """ΔTNV (degC): mean TNV in the ``drop`` window minus mean TNV in the ``onset`` window.

    Negative values are a fall of non-vessel skin temperature after exercise onset. The windows
    are fixed times of the warm-up, identical in every protocol of the reference study.
    """
    out = window_mean(tnv, *drop) - window_mean(tnv, *onset)
    out.attrs = {"units": "degC", "long_name": "change of TNV from exercise onset",
                 "onset_window_s": list(onset), "drop_window_s": list(drop)}
    return out


def phase_means(ds: xr.Dataset | xr.DataArray, phase: xr.DataArray | None = None) -> xr.Dataset:
    """Mean of every variable per phase: dims ``(..., phase)`` instead of ``time``."""
    if phase is None:
        if "phase" not in getattr(ds, "data_vars", {}):
            raise StudyError("phase_means: no 'phase' variable; pass phase= or include it, "
                             "e.g. phase_means(study[['hr', 'phase']])")
        phase = ds["phase"]
    if isinstance(ds, xr.Dataset):
        ds = ds[[v for v in ds.data_vars if "time" in ds[v].dims and v != "phase"
                 and np.issubdtype(ds[v].dtype, np.number)]]
    names = [p for p in np.unique(phase.values) if p]
    parts = [ds.where(phase == p).mean("time", skipna=True).expand_dims(phase=[p]) for p in names]
    out = xr.concat(parts, dim="phase")
    if isinstance(out, xr.Dataset):
        for v in out.data_vars:
            out[v].attrs = dict(ds[v].attrs)
    return out


def core_skin_gradient(tcore: xr.DataArray, tsk: xr.DataArray, phase: xr.DataArray,
                       phases=("steady", "intervals")) -> xr.DataArray:
    """Mean TCORE - Tsk gradient (degC) over the given phases."""
    m = phase.isin(list(phases))
    out = (tcore - tsk).where(m).mean("time", skipna=True)
    out.attrs = {"units": "degC", "long_name": "core-to-skin temperature gradient",
                 "phases": list(phases)}
    return out


#: Skin-temperature metrics of the Study (those present are used).
THERMAL_METRICS = ("tsk_mean", "tnv", "tp", "tv", "tp_entropy", "tnv_entropy")
#: Cardiopulmonary and core signals.
CARDIO_SIGNALS = ("hr", "vo2", "vco2", "ve", "rf", "tcore")


def present(study: xr.Dataset, names) -> list[str]:
    """The names that are Study variables with at least one finite value."""
    return [n for n in names if n in study and bool(study[n].notnull().any())]


def one_side(study: xr.Dataset, side: str = "both") -> xr.Dataset:
    """The Study with thermal variables reduced to one ``side`` (others unchanged)."""
    if "side" in study.dims:
        sides = study["side"].values.tolist()
        if side not in sides and side == "both" and {"left", "right"} <= set(sides):
            both = study.sel(side="left") * 0.5 + study.sel(side="right") * 0.5
            return study.drop_dims("side").merge(both[[v for v in study.data_vars
                                                       if "side" in study[v].dims]])
        return study.sel(side=side).drop_vars("side")
    return study


def summary_table(study: xr.Dataset, variables, *, side: str = "both",
                  onset: tuple[float, float] = ONSET_WINDOW) -> pd.DataFrame:
    """Long table of per-session summaries: one row per subject, session and window.

    Windows are every protocol phase (phase means) plus ``onset`` (the first minute of
    exercise, before the skin responds; identical in every protocol).
    """
    ds = one_side(study, side)[list(variables) + ["phase"]]
    pm = phase_means(ds[list(variables)], ds["phase"]).to_dataframe().reset_index()
    pm = pm.rename(columns={"phase": "window"})
    on = xr.Dataset({v: window_mean(ds[v], *onset) for v in variables}).to_dataframe()
    on = on.reset_index().assign(window="onset")
    keep = ["subject", "session", "window", *variables]
    return pd.concat([on[keep], pm[keep]], ignore_index=True)


#: Default windows of :func:`window_summary`: the onset minute, then every phase.
DEFAULT_WINDOWS = {"onset": ONSET_WINDOW}


def time_variables(study: xr.Dataset, variables: Sequence[str] | None = None) -> list[str]:
    """Numeric Study variables on ``time`` (``phase`` excluded), or check the ones given.

    Raises
    ------
    StudyError
        A name that is not a variable on ``time``, naming the ones that are.
    """
    names = [v for v in study.data_vars if "time" in study[v].dims and v != "phase"
             and np.issubdtype(study[v].dtype, np.number)]
    if variables is None:
        return names
    variables = [variables] if isinstance(variables, str) else list(variables)
    bad = [v for v in variables if v not in names]
    if bad:
        raise StudyError(f"variables {bad} are not numeric Study variables on 'time'; "
                         f"expected some of {names}")
    return variables


def phase_order(phase: xr.DataArray) -> list[str]:
    """Phase labels in order of first appearance over time (empty labels dropped)."""
    vals = np.asarray(phase.transpose(..., "time").values).astype(str)
    vals = vals.reshape(-1, phase.sizes["time"])
    first = {}
    for p in np.unique(vals):
        if p:
            hit = vals == p
            first[str(p)] = int(hit.argmax(axis=1)[hit.any(axis=1)].min())
    return sorted(first, key=lambda p: (first[p], p))


def window_summary(study: xr.Dataset,
                   windows: Mapping[str, str | tuple[float, float]] | Sequence[str] | None = None,
                   variables: Sequence[str] | None = None) -> xr.Dataset:
    """Per-session means over named time windows, on a ``window`` dimension.

    Parameters
    ----------
    study : xarray.Dataset
        A Study (dims ``subject``, ``session``, ``time`` [, ``side``]) with a ``phase``
        variable when any window is a phase.
    windows : mapping, sequence of str or None
        Name -> definition: a phase label (``"warmup"``: the mean over that phase) or a
        ``(start, stop)`` pair of times in s (the mean over ``start <= time < stop``). A
        sequence of phase labels names each window after its phase. ``None``: ``onset``
        (0-60 s, :data:`ONSET_WINDOW`) followed by every phase in protocol order.
    variables : sequence of str, optional
        Variables on ``time`` to summarise (default: every numeric one but ``phase``).

    Returns
    -------
    xarray.Dataset
        Each variable with ``time`` replaced by ``window`` (units and long_name kept; NaN
        where a session has no finite value in the window). The non-index coordinate
        ``window_definition`` says what each window is, e.g. ``"phase warmup"`` or
        ``"0-60 s"``.

    Raises
    ------
    StudyError
        No ``time`` dim, an unknown phase label, an empty or reversed time window.
    """
    if "time" not in study.dims:
        raise StudyError(f"the Dataset has no 'time' dimension (dims {list(study.dims)}); "
                         "window summaries are computed from the Study's time series")
    names = time_variables(study, variables)
    phases = phase_order(study["phase"]) if "phase" in study else []
    if windows is None:
        windows = {**DEFAULT_WINDOWS, **{p: p for p in phases}}
    elif not isinstance(windows, Mapping):
        windows = {str(w): str(w) for w in ([windows] if isinstance(windows, str) else windows)}
    if not windows:
        raise StudyError("windows is empty; give phase labels or (start, stop) times in s")
    data = study[names]
    parts, definitions = [], []
    for name, spec in windows.items():
        if isinstance(spec, str):
            if spec not in phases:
                raise StudyError(f"window {name!r}: phase {spec!r} is not in the Study; "
                                 f"phases are {phases}")
            part = data.where(study["phase"] == spec).mean("time", skipna=True)
            definitions.append(f"phase {spec}")
        else:
            try:
                start, stop = (float(x) for x in spec)
            except (TypeError, ValueError):
                raise StudyError(f"window {name!r}: {spec!r}; expected a phase label or a "
                                 "(start, stop) pair in s") from None
            if not start < stop:
                raise StudyError(f"window {name!r}: start {start:g} s is not before stop "
                                 f"{stop:g} s")
            part = xr.Dataset({v: window_mean(data[v], start, stop) for v in names})
            definitions.append(f"{start:g}-{stop:g} s")
        parts.append(part.expand_dims(window=[str(name)]))
    out = xr.concat(parts, dim="window")
    out = out.transpose("subject", "session", "window", ..., missing_dims="ignore")
    for v in names:
        out[v].attrs = dict(study[v].attrs)
    out = out.assign_coords(window_definition=("window", definitions))
    out["window"].attrs = {"long_name": "summary window"}
    return out
