"""Subject- and session-level summaries of Study time series (phase means, ΔTNV, gradients).

Plain functions on xarray objects with a ``time`` dim (s since exercise start) and a ``phase``
label per time, so they serve the truth of the synthetic study and measured Studies alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

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
            from irtrepro.errors import StudyError

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
