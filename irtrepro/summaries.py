"""Subject- and session-level summaries of Study time series (phase means, ΔTNV, gradients).

Plain functions on xarray objects with a ``time`` dim (s since exercise start) and a ``phase``
label per time, so they serve the truth of the synthetic study and measured Studies alike.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: ΔTNV windows (s since exercise start): onset baseline and end of the warm-up, where the
#: onset drop has developed (>95 % of a 150 s response) before protocols diverge at 600 s.
ONSET_WINDOW = (0.0, 60.0)
DROP_WINDOW = (480.0, 600.0)


def window_mean(da: xr.DataArray, start: float, stop: float) -> xr.DataArray:
    """Mean of ``da`` over ``start <= time < stop`` (s), NaN-skipping."""
    t = da["time"]
    return da.where((t >= start) & (t < stop)).mean("time", skipna=True)


def delta_tnv(tnv: xr.DataArray, phase: xr.DataArray | None = None, *,
              onset: tuple[float, float] = ONSET_WINDOW,
              drop: tuple[float, float] = DROP_WINDOW) -> xr.DataArray:
    """ΔTNV (degC): mean TNV in the ``drop`` window minus mean TNV in the ``onset`` window.

    Negative values are a fall of non-vessel skin temperature after exercise onset. ``phase``
    is accepted for symmetry with other summaries and unused: the windows are fixed times of
    the warm-up, identical in every protocol of the reference study.
    """
    out = window_mean(tnv, *drop) - window_mean(tnv, *onset)
    out.attrs = {"units": "degC", "long_name": "change of TNV from exercise onset",
                 "onset_window_s": list(onset), "drop_window_s": list(drop)}
    return out


def phase_means(ds: xr.Dataset | xr.DataArray, phase: xr.DataArray | None = None) -> xr.Dataset:
    """Mean of every variable per phase: dims ``(..., phase)`` instead of ``time``."""
    if phase is None:
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
