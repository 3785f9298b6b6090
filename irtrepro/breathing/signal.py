"""Signal baseline: nostril-ROI mean temperature -> band-pass -> respiratory rate and phase.

Steps
-----
1. :func:`locate_nostrils` finds the face in every frame (pixels warmer than halfway between the
   background and the warm face) and places the nostril region at a fixed fraction of the face
   height below the face centroid (a geometric prior of frontal faces: the nostrils sit about a
   third of the half-height below the centre). Frames where the face is not found or the region
   leaves the frame are NaN, with the reason.
2. :func:`roi_signal` averages the region (integral images, vectorised over frames).
3. :func:`bandpass` is a zero-phase Butterworth band-pass (default 0.1-1.5 Hz, i.e. 6-90 min-1;
   the upper edge must be >= 1.2 Hz so running rates up to ~70 min-1 pass), per clip.
4. :func:`respiratory_rate` slides a window (default 12 s, step 1 s) and estimates the rate by
   the periodogram peak (Hann window, zero-padded, parabolic interpolation) and by counting
   peaks (median inter-peak interval); windows with too few valid frames are NaN with a reason.
5. :func:`phase_from_signal` labels frames INH/EXH from the sign of the signal slope (warming ->
   EXH), or from the sign of the band-passed level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.errors import OptionError, check_option

__all__ = ["locate_nostrils", "roi_signal", "bandpass", "respiratory_rate",
           "phase_from_signal", "signal_baseline"]

ROI_BELOW = 0.40   # nostril-region centre below the face centroid, fraction of face half-height
ROI_HALF_H = 0.15  # region half-height, fraction of face half-height
ROI_HALF_W = 0.30  # region half-width, fraction of face half-width


def row_nanpercentiles(a: np.ndarray, qs) -> list[np.ndarray]:
    """``np.nanpercentile(a, q, axis=1)`` for each q in ``qs`` (linear interpolation).

    One sort of the whole array instead of numpy's per-row loop, which it falls back on as
    soon as a NaN is present (``apply_along_axis``: ~0.15 s per 300 face frames, 30+ s of a
    report's breathing part). Rows without a finite value give NaN, without a warning.
    """
    a = np.asarray(a)
    if not np.isnan(a).any():
        return [np.percentile(a, q, axis=1) for q in qs]
    s = np.sort(a, axis=1)  # NaN sorts last
    cnt = (~np.isnan(a)).sum(1)
    rows = np.arange(a.shape[0])
    out = []
    for q in qs:
        pos = np.maximum(cnt - 1, 0) * (q / 100.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
        lo_v, hi_v = s[rows, lo], s[rows, hi]
        t = (pos - lo).astype(s.dtype)
        d = hi_v - lo_v
        # numpy's own lerp (bit-identical results): from the nearer end of the interval
        v = np.where(t >= 0.5, hi_v - d * (1 - t), lo_v + d * t)
        out.append(np.where(cnt > 0, v, np.nan))
    return out


def locate_nostrils(frames: np.ndarray) -> pd.DataFrame:
    """Locate the nostril region in every frame.

    Parameters
    ----------
    frames : ndarray, shape (n_frames, n_rows, n_cols)
        Temperatures (degC).

    Returns
    -------
    pandas.DataFrame
        One row per frame: ``y0``, ``y1``, ``x0``, ``x1`` (px, half-open box), ``cy``, ``cx``
        (px), ``valid`` (bool) and ``reason`` ("" when valid).
    """
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim != 3:
        raise OptionError(f"frames has shape {f.shape}; expected (frame, y, x)")
    n, ny, nx = f.shape
    lo, hi = row_nanpercentiles(f.reshape(n, -1), (10, 95))
    mask = f > ((lo + hi) / 2)[:, None, None]
    area = mask.sum((1, 2))
    yy = np.arange(ny)[None, :, None]
    xx = np.arange(nx)[None, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (mask * yy).sum((1, 2)) / area
        cx = (mask * xx).sum((1, 2)) / area
    rows = mask.any(2)
    cols = mask.any(1)
    h = rows.sum(1) / 2.0  # face half-height (px)
    w = cols.sum(1) / 2.0
    rcy = cy + ROI_BELOW * h
    y0 = np.floor(rcy - ROI_HALF_H * h)
    y1 = np.ceil(rcy + ROI_HALF_H * h) + 1
    x0 = np.floor(cx - ROI_HALF_W * w)
    x1 = np.ceil(cx + ROI_HALF_W * w) + 1
    reason = np.full(n, "", dtype=object)
    touches = rows[:, 0] | rows[:, -1] | cols[:, 0] | cols[:, -1]
    no_face = (area < 0.03 * ny * nx) | (hi - lo < 2.0)
    outside = (y0 < 0) | (x0 < 0) | (y1 > ny) | (x1 > nx)
    # a face cut by the frame edge biases the centroid and the height, hence the region
    reason[touches & ~no_face] = "face cut by the frame edge: nostril region unreliable"
    reason[outside & ~no_face] = "nostril region leaves the frame"
    reason[no_face] = "no face found (warm region < 3% of the frame or contrast < 2 degC)"
    valid = ~no_face & ~outside & ~touches
    reason[valid] = ""
    out = pd.DataFrame({"y0": np.nan_to_num(y0), "y1": np.nan_to_num(y1),
                        "x0": np.nan_to_num(x0), "x1": np.nan_to_num(x1)}).astype(int)
    out["cy"], out["cx"] = rcy, cx
    out["valid"], out["reason"] = valid, reason.astype(str)
    return out


def roi_signal(frames: np.ndarray, boxes: pd.DataFrame | None = None) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """Mean temperature (degC) of the nostril region per frame; NaN where not located.

    Returns
    -------
    signal : ndarray (n_frames,)
        degC, NaN where the region is invalid.
    reason : ndarray of str (n_frames,)
        Why a frame is NaN ("" otherwise).
    """
    f = np.asarray(frames, dtype=np.float64)
    boxes = locate_nostrils(f) if boxes is None else boxes
    n, ny, nx = f.shape
    ii = np.zeros((n, ny + 1, nx + 1))
    ii[:, 1:, 1:] = f.cumsum(1).cumsum(2)
    k = np.arange(n)
    y0 = np.clip(boxes["y0"].to_numpy(), 0, ny)
    y1 = np.clip(boxes["y1"].to_numpy(), 0, ny)
    x0 = np.clip(boxes["x0"].to_numpy(), 0, nx)
    x1 = np.clip(boxes["x1"].to_numpy(), 0, nx)
    s = ii[k, y1, x1] - ii[k, y0, x1] - ii[k, y1, x0] + ii[k, y0, x0]
    area = np.maximum((y1 - y0) * (x1 - x0), 1)
    sig = np.where(boxes["valid"].to_numpy(), s / area, np.nan)
    return sig, boxes["reason"].to_numpy().astype(str)


def bandpass(signal: np.ndarray, fs: float, *, low: float = 0.1, high: float = 1.5,
             order: int = 2, segments: np.ndarray | None = None) -> np.ndarray:
    """Zero-phase Butterworth band-pass, applied to each contiguous segment separately.

    Parameters
    ----------
    signal : ndarray (n,)
        Samples (NaN allowed: they are linearly bridged inside a segment and NaN again after).
    fs : float
        Sampling rate (Hz).
    low, high : float
        Band edges (Hz); ``high`` >= 1.2 Hz so breathing while running (up to ~70 min-1) passes.
    order : int
        Filter order (per direction).
    segments : ndarray of int (n,), optional
        Segment (clip) id per sample; the filter never crosses a segment boundary.

    Returns
    -------
    ndarray (n,)
        Filtered signal; NaN where the input was NaN or a segment is too short to filter.
    """
    from scipy.signal import butter, sosfiltfilt

    if high < 1.2:
        raise OptionError(f"high={high} Hz; the upper edge must be >= 1.2 Hz to pass breathing "
                          "while running (up to ~70 min-1)")
    if not 0 < low < high < fs / 2:
        raise OptionError(f"band {low}-{high} Hz must satisfy 0 < low < high < fs/2 = {fs / 2}")
    x = np.asarray(signal, dtype=float)
    seg = np.zeros(len(x), int) if segments is None else np.asarray(segments)
    sos = butter(order, [low, high], btype="band", fs=fs, output="sos")
    out = np.full_like(x, np.nan)
    for sid in np.unique(seg):
        idx = np.flatnonzero(seg == sid)
        v = x[idx]
        ok = np.isfinite(v)
        if ok.sum() < 3 * (2 * order + 1) * 3 or ok.mean() < 0.5:
            continue
        filled = np.interp(np.arange(len(v)), np.flatnonzero(ok), v[ok])
        y = sosfiltfilt(sos, filled - filled.mean(), padlen=int(min(len(v) - 1, 3 * fs)))
        y[~ok] = np.nan
        out[idx] = y
    return out


def _periodogram_rate(x: np.ndarray, fs: float, fmin: float, fmax: float) -> float:
    x = x - x.mean()
    nfft = max(2048, int(2 ** np.ceil(np.log2(len(x) * 8))))
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), nfft)) ** 2
    freq = np.fft.rfftfreq(nfft, 1 / fs)
    band = np.flatnonzero((freq >= fmin) & (freq <= fmax))
    i = band[np.argmax(spec[band])]
    if 0 < i < len(spec) - 1:  # parabolic interpolation of the peak (log power)
        a, b, c = np.log(spec[i - 1:i + 2] + 1e-30)
        den = a - 2 * b + c
        i = i + (0.5 * (a - c) / den if den != 0 else 0.0)
    return float(i * fs / nfft * 60.0)


def _peak_rate(x: np.ndarray, fs: float, fmax: float) -> float:
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(x, distance=max(1, int(fs / fmax * 0.9)), prominence=0.5 * np.std(x))
    if len(peaks) < 3:
        return np.nan
    # sub-sample peak positions (parabola through the three samples around each peak)
    inner = peaks[(peaks > 0) & (peaks < len(x) - 1)]
    a, b, c = x[inner - 1], x[inner], x[inner + 1]
    den = a - 2 * b + c
    pos = inner + np.where(den != 0, 0.5 * (a - c) / np.where(den != 0, den, 1), 0.0)
    if len(pos) < 3:
        return np.nan
    return float(60.0 * fs * (len(pos) - 1) / (pos[-1] - pos[0]))


def respiratory_rate(signal: np.ndarray, time: np.ndarray, *, fs: float,
                     segments: np.ndarray | None = None, window_s: float = 12.0,
                     step_s: float = 1.0, fmin: float = 0.1, fmax: float = 1.5,
                     min_valid: float = 0.8) -> pd.DataFrame:
    """Respiratory rate (min-1) over sliding windows of a band-passed signal.

    Parameters
    ----------
    signal : ndarray (n,)
        Band-passed ROI signal (degC), NaN where invalid.
    time : ndarray (n,)
        Sample times (s).
    fs : float
        Sampling rate (Hz).
    segments : ndarray of int (n,), optional
        Clip id per sample; windows never cross clips.
    window_s, step_s : float
        Window length and step (s).
    fmin, fmax : float
        Search band (Hz).
    min_valid : float
        Fraction of finite samples a window needs.

    Returns
    -------
    pandas.DataFrame
        One row per window: ``time`` (s, window centre), ``segment``, ``rf_periodogram``,
        ``rf_peaks``, ``rf`` (min-1: the peak-count estimate where it agrees with the
        periodogram within 10 %, else the periodogram), ``n`` (frames), ``reason`` ("" when estimated). A clip
        shorter than the window yields one NaN row whose reason says so.
    """
    x = np.asarray(signal, float)
    t = np.asarray(time, float)
    seg = np.zeros(len(x), int) if segments is None else np.asarray(segments)
    nwin = int(round(window_s * fs))
    rows = []
    for sid in np.unique(seg):
        idx = np.flatnonzero(seg == sid)
        ts = t[idx]
        dur = ts[-1] - ts[0] + 1 / fs
        if len(idx) < nwin:
            rows.append((float(ts.mean()), sid, np.nan, np.nan, np.nan, len(idx),
                         f"sequence too short for a rate estimate ({dur:.1f} s < "
                         f"{window_s:g} s window)"))
            continue
        step = max(1, int(round(step_s * fs)))
        for a in range(0, len(idx) - nwin + 1, step):
            w = x[idx[a:a + nwin]]
            tc = float(ts[a:a + nwin].mean())
            ok = np.isfinite(w)
            if ok.mean() < min_valid:
                rows.append((tc, sid, np.nan, np.nan, np.nan, int(ok.sum()),
                             f"only {ok.mean():.0%} of frames have a valid nostril region"))
                continue
            w = np.interp(np.arange(nwin), np.flatnonzero(ok), w[ok])
            rp = _periodogram_rate(w, fs, fmin, fmax)
            rk = _peak_rate(w, fs, fmax)
            # peak counting resolves the rate finer than the 5 min-1 bins of a 12 s periodogram;
            # the periodogram guards it against missed or doubled peaks
            rf = rk if np.isfinite(rk) and abs(rk - rp) < 0.1 * rp else rp
            rows.append((tc, sid, rp, rk, rf, nwin, ""))
    return pd.DataFrame(rows, columns=["time", "segment", "rf_periodogram", "rf_peaks", "rf",
                                       "n", "reason"])


def phase_from_signal(signal: np.ndarray, *, method: str = "slope") -> np.ndarray:
    """INH/EXH label per sample from a band-passed ROI signal.

    ``method="slope"``: EXH where the temperature rises (exhaled air warms), INH where it
    falls. ``method="level"``: EXH where the band-passed signal is above zero. NaN samples get
    "" (no label).
    """
    check_option("method", method, ("slope", "level"))
    x = np.asarray(signal, float)
    v = np.gradient(x) if method == "slope" else x
    out = np.where(v > 0, "EXH", "INH").astype(object)
    out[~np.isfinite(v)] = ""
    return out.astype(str)


def signal_baseline(ds: xr.Dataset | xr.DataArray, *, fps: float | None = None,
                    window_s: float = 12.0, high: float = 1.5,
                    phase_method: str = "slope") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the whole baseline on one session of face frames.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        ``frames`` (frame, y, x) degC with ``time(frame)`` and optional ``clip_index(frame)``
        (otherwise clips are split at gaps > 2 frame intervals).
    fps : float, optional
        Frame rate (Hz); default ``ds.attrs['fps']`` or the median frame interval.

    Returns
    -------
    frames_df : pandas.DataFrame
        Per frame: ``time``, ``clip``, ``roi`` (degC), ``filtered``, ``label_pred``, ``reason``.
    rate_df : pandas.DataFrame
        Output of :func:`respiratory_rate`.
    """
    da = ds["frames"] if isinstance(ds, xr.Dataset) else ds
    t = np.asarray(da["time"].values, float)
    fps = float(fps or da.attrs.get("fps") or (ds.attrs.get("fps") if isinstance(ds, xr.Dataset)
                                               else None) or 1.0 / np.median(np.diff(t)))
    if isinstance(ds, xr.Dataset) and "clip_index" in ds:
        clip = ds["clip_index"].values
    else:
        clip = np.r_[0, np.cumsum(np.diff(t) > 2.0 / fps)]
    roi, reason = roi_signal(da.values)
    filt = bandpass(roi, fps, high=high, segments=clip)
    rates = respiratory_rate(filt, t, fs=fps, segments=clip, window_s=window_s, fmax=high)
    frames_df = pd.DataFrame({"time": t, "clip": clip, "roi": roi, "filtered": filt,
                              "label_pred": phase_from_signal(filt, method=phase_method),
                              "reason": reason})
    return frames_df, rates
