"""Respiratory rate and Ti/Te per window from face thermograms, and as Study variables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.breathing.evaluate import true_rate_from_labels, window_mean
from irtrepro.breathing.signal import phase_from_signal, signal_baseline

__all__ = ["WINDOW_S", "session_rates", "study_variables"]

WINDOW_S = 12.0
NAN_REASON = ("NaN outside the face-camera clips (30 s per protocol phase at 8 fps, see "
              "docs/breathing.md), in windows with < 80 % valid frames, and where the nostril "
              "region left the frame")


def session_rates(da: xr.DataArray, labels: np.ndarray | None, *, model=None,
                  window_s: float = WINDOW_S) -> pd.DataFrame:
    """Per-window camera RF, true RF (from labels) and Ti/Te of one session.

    Returns one row per window: ``time`` (s), ``rf_irt`` (min-1, signal baseline periodogram),
    ``rf_peaks``, ``rf_true`` (mean true rate of the frames in the window, from the labels),
    ``ie_ratio`` (INH frames / EXH frames predicted by ``model``, or by the signal level when
    no model is given), ``reason``.
    """
    frames_df, rates = signal_baseline(da, window_s=window_s)
    t = frames_df["time"].to_numpy()
    if model is not None:
        from irtrepro.breathing.data import session_images
        from irtrepro.breathing.train import predict_proba

        imgs = session_images(da, None)
        pred = np.full(len(t), "", dtype=object)
        p = predict_proba(model, imgs.images)
        pred[imgs.meta["frame"].to_numpy()] = np.where(p > 0.5, "EXH", "INH")
    else:
        pred = phase_from_signal(frames_df["filtered"].to_numpy(), method="level")
    pred = np.asarray(pred).astype(str)
    half = window_s / 2
    c = rates["time"].to_numpy()
    n_inh = window_mean(t, (pred == "INH").astype(float), c, half)
    n_exh = window_mean(t, (pred == "EXH").astype(float), c, half)
    with np.errstate(divide="ignore", invalid="ignore"):
        ie = np.where(n_exh > 0, n_inh / n_exh, np.nan)
    out = rates.rename(columns={"rf": "rf_irt"})[["time", "segment", "rf_irt", "rf_peaks",
                                                  "reason"]].copy()
    out["ie_ratio"] = np.where(np.isfinite(out["rf_irt"]), ie, np.nan)
    if labels is not None:
        rf_true = true_rate_from_labels(t, labels)
        out["rf_true"] = window_mean(t, rf_true, c, half)
    else:
        out["rf_true"] = np.nan
    return out


def study_variables(per_session: dict[tuple[str, str], pd.DataFrame], *,
                    t_max: float | None = None) -> xr.Dataset:
    """``rf_irt`` and ``ie_ratio`` on (subject, session, time) at 1 Hz; NaN outside the clips."""
    subjects = sorted({s for s, _ in per_session})
    sessions = sorted({j for _, j in per_session})
    t_end = t_max if t_max is not None else max(
        (float(df["time"].max()) for df in per_session.values() if len(df)), default=0.0)
    grid = np.arange(0, int(np.ceil(t_end)) + 1, dtype=float)
    rf = np.full((len(subjects), len(sessions), len(grid)), np.nan)
    ie = np.full_like(rf, np.nan)
    for (s, j), df in per_session.items():
        if not len(df):
            continue
        i, k = subjects.index(s), sessions.index(j)
        # each grid second takes the window whose centre is nearest, within 0.5 s
        idx = np.clip(np.searchsorted(grid, df["time"].to_numpy()), 0, len(grid) - 1)
        close = np.abs(grid[idx] - df["time"].to_numpy()) <= 0.5
        rf[i, k, idx[close]] = df["rf_irt"].to_numpy()[close]
        ie[i, k, idx[close]] = df["ie_ratio"].to_numpy()[close]
    ds = xr.Dataset(
        {"rf_irt": (("subject", "session", "time"), rf,
                    {"units": "min-1", "long_name": "respiratory rate from face thermography",
                     "method": f"nostril-ROI signal, band-pass 0.1-1.5 Hz, periodogram over "
                               f"{WINDOW_S:g} s windows", "comment": NAN_REASON}),
         "ie_ratio": (("subject", "session", "time"), ie,
                      {"units": "1", "long_name": "inspiration/expiration time ratio (Ti/Te) "
                       "from face thermography", "method": "INH/EXH frame counts predicted "
                       f"by the breathing classifier over {WINDOW_S:g} s windows",
                       "comment": NAN_REASON})},
        coords={"subject": subjects, "session": sessions,
                "time": ("time", grid, {"units": "s", "long_name": "time since exercise start"})})
    return ds
