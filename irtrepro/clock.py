"""Camera frames on the session clock, and a cross-check of the clock from the data.

:func:`camera_times` places every frame of a thermal recording on the session clock (s since
exercise start) from the recording's own absolute time (``attrs['start_time']`` of the first
frame plus the per-frame ``time`` coordinate, as the SEQ/CSQ/IRB readers give them) and the
manifest's optional sync options ``offset_s`` (s added) and ``drift_ppm`` (the camera clock's
rate error, parts per million, positive when it runs fast; elapsed camera time is divided by
``1 + drift_ppm * 1e-6``).

:func:`estimate_lag` measures the lag of one signal against another by cross-correlation of
their first differences on a common uniform grid; :func:`check_clock` compares that lag with
what the clocks say and warns (:class:`ClockWarning`, naming the session) when they disagree
by more than a tolerance. The camera signal of :func:`frame_signal` is the mean temperature of
the central region of each frame (the calves in the lab's framing); its first differences
follow heart rate with the opposite sign (perforator temperature is coupled inversely to
relative HR and the calf skin cools as exercise starts), so the check correlates it with HR
with ``sign=-1``.

Accuracy: on the lab-shaped synthetic study (36x48 frames every 2 s over 900 s, integer HR
from the strap) the calf-mean-vs-HR lag is not reliable: over 8 sessions the estimate of the
planted +47 s ranged from about 26 s to 114 s (correlations 0.1-0.3), and even the noise-free
1 Hz truth (perforator temperature against HR, true lag 0) gives lags of -33 s to +20 s: the
synthetic skin temperatures share no sharp feature with HR, so the lag is not identifiable
there to better than tens of seconds. The check is a guard against gross clock errors where the
signals are strongly coupled, not a 1 s measurement. The estimator itself recovers a lag to
about 0.1 s where the two signals share their fluctuations (see the tests).
"""

from __future__ import annotations

import datetime as _dt
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from irtrepro._logging import logger
from irtrepro.errors import IrtreproWarning, OptionError, SyncError
from irtrepro.manifest import FileEntry, SessionEntry

__all__ = ["CameraClock", "ClockWarning", "LagEstimate", "camera_times", "check_clock",
           "estimate_lag", "frame_signal"]


class ClockWarning(IrtreproWarning):
    """The lag measured from the data disagrees with the session clock."""


@dataclass(frozen=True)
class CameraClock:
    """Frame times of a recording on the session clock.

    Attributes
    ----------
    time : ndarray, (frame,)
        Seconds since exercise start.
    origin : str
        ``"file timestamps"`` (the recording's absolute time, plus ``offset_s`` if given) or
        ``"offset_s"`` (no absolute time in the file; the manifest's offset alone).
    offset_s : float
        The manifest's offset added, s (0 when not given).
    drift_ppm : float
        The manifest's rate correction, ppm (0 when not given).
    file_start : str or None
        The recording's own start time (ISO 8601), when it has one.
    """

    time: np.ndarray
    origin: str
    offset_s: float
    drift_ppm: float
    file_start: str | None

    def to_dict(self) -> dict:
        """Provenance of the clock (everything but the frame times)."""
        return {"origin": self.origin, "offset_s": self.offset_s, "drift_ppm": self.drift_ppm,
                "file_start": self.file_start}


def _option(entry: FileEntry, name: str) -> float:
    v = entry.options.get(name, 0.0)
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise SyncError(f"{entry.path}: {name}={v!r} in {entry.where}; expected a number") \
            from None
    if not np.isfinite(v):
        raise SyncError(f"{entry.path}: {name}={v!r} in {entry.where}; expected a finite number")
    return v


def camera_times(recording: xr.DataArray, entry: FileEntry,
                 session: SessionEntry) -> CameraClock:
    """Session-clock time (s since exercise start) of every frame of a thermal recording.

    Parameters
    ----------
    recording : xarray.DataArray
        Frames ``(frame, y, x)`` from a thermal reader: coordinate ``time`` (s since the first
        frame) and ``attrs['start_time']`` (ISO 8601 of the first frame, ``""`` when none).
    entry : FileEntry
        The manifest's thermal entry; options ``offset_s`` (s) and ``drift_ppm`` (ppm) are used.
    session : SessionEntry
        The session; its ``start_time`` is the exercise start (local wall clock).

    Returns
    -------
    CameraClock

    Raises
    ------
    SyncError
        The recording has no absolute time (or the session no start time) and the manifest
        gives no ``offset_s``.
    """
    elapsed = np.asarray(recording["time"].values, float)
    drift = _option(entry, "drift_ppm")
    offset = _option(entry, "offset_s")
    elapsed = elapsed / (1.0 + drift * 1e-6)
    start = recording.attrs.get("start_time") or None
    if isinstance(start, _dt.datetime):
        start = start.isoformat()
    if start is not None and session.start_time is not None:
        a = _dt.datetime.fromisoformat(start)
        b = session.start_time
        if (a.tzinfo is None) != (b.tzinfo is None):  # the session is on the local wall clock
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        base = (a - b).total_seconds()
        return CameraClock(base + offset + elapsed, "file timestamps", offset, drift, start)
    if "offset_s" not in entry.options:
        what = ("the recording has no absolute time" if start is None
                else f"session {session.subject}/{session.session} has no start_time")
        raise SyncError(f"{entry.path}: {what}; an offset is required: give 'offset_s' "
                        f"(first frame minus exercise start, s) in {entry.where}")
    return CameraClock(offset + elapsed, "offset_s", offset, drift, start)


def frame_signal(recording: xr.DataArray, *, region: tuple[float, float, float, float] =
                 (0.2, 0.9, 0.2, 0.8)) -> np.ndarray:
    """Mean temperature (degC) of a central region of every frame.

    Parameters
    ----------
    recording : xarray.DataArray
        Frames ``(frame, y, x)``, degC.
    region : (y0, y1, x0, x1)
        The region as fractions of the frame height and width (default: the lab's calves).

    Returns
    -------
    ndarray, (frame,)
        NaN for a frame with no finite pixel in the region.
    """
    y0, y1, x0, x1 = region
    if not (0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1):
        raise OptionError(f"region={region!r}; expected fractions 0 <= y0 < y1 <= 1, "
                          "0 <= x0 < x1 <= 1")
    h, w = recording.shape[1:]
    rows = slice(int(y0 * h), max(int(y1 * h), int(y0 * h) + 1))
    cols = slice(int(x0 * w), max(int(x1 * w), int(x0 * w) + 1))
    n = recording.shape[0]
    out = np.full(n, np.nan)
    step = 256  # frames read at a time: memory stays flat in the recording's length
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frame -> NaN, on purpose
        for a in range(0, n, step):
            sl = np.asarray(recording[a:a + step, rows, cols].values, float)
            out[a:a + step] = np.nanmean(sl.reshape(sl.shape[0], -1), axis=1)
    return out


@dataclass(frozen=True)
class LagEstimate:
    """A lag measured by cross-correlation.

    Attributes
    ----------
    lag_s : float
        Seconds by which signal a's clock is ahead of signal b's (a at ``t + lag_s`` matches
        b at ``t``); NaN when it could not be measured.
    r : float
        Correlation of the differenced signals at that lag (sign applied).
    n : int
        Grid samples in the overlap at that lag.
    reason : str
        Why ``lag_s`` is NaN, else ``""``.
    """

    lag_s: float
    r: float
    n: int
    reason: str = ""


def _on_grid(t: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    out = np.full(grid.shape, np.nan)
    if t.size < 2:
        return out
    inside = (grid >= t[0]) & (grid <= t[-1])
    out[inside] = np.interp(grid[inside], t, y)
    return out


def estimate_lag(signal_a, times_a, signal_b, times_b, *, max_lag_s: float,
                 step_s: float = 1.0, smooth_s: float = 0.0, sign: int = 1,
                 min_overlap_s: float = 120.0) -> LagEstimate:
    """Lag of signal a against signal b from the cross-correlation of their first differences.

    Both signals are interpolated on a common grid of ``step_s`` (linear, nothing
    extrapolated), optionally smoothed by a centred moving mean of ``smooth_s``, differenced
    (which removes offsets and slow baselines) and correlated (Pearson, over the overlap) at
    every lag from ``-max_lag_s`` to ``max_lag_s`` in steps of ``step_s``; the peak is refined
    by a parabola through its neighbours.

    Parameters
    ----------
    signal_a, times_a : array-like
        Signal a (any unit) and its times (s, on its own clock).
    signal_b, times_b : array-like
        Signal b and its times (s, on the reference clock).
    max_lag_s : float
        Largest lag searched, s.
    step_s : float
        Grid step, s (the resolution before refinement).
    smooth_s : float
        Moving-mean window, s, applied before differencing (0: none).
    sign : {1, -1}
        Expected sign of the relation (-1: a falls when b rises).
    min_overlap_s : float
        Fewer overlapping seconds than this at a lag: that lag is not considered.

    Returns
    -------
    LagEstimate
    """
    if sign not in (1, -1):
        raise OptionError(f"sign={sign!r}; expected 1 or -1")
    if not (max_lag_s > 0 and step_s > 0 and smooth_s >= 0):
        raise OptionError(f"max_lag_s={max_lag_s!r}, step_s={step_s!r}, smooth_s={smooth_s!r};"
                          " expected max_lag_s > 0, step_s > 0, smooth_s >= 0")
    ya, ta = np.asarray(signal_a, float), np.asarray(times_a, float)
    yb, tb = np.asarray(signal_b, float), np.asarray(times_b, float)
    if ya.shape != ta.shape or yb.shape != tb.shape:
        raise OptionError("each signal must have one time per sample "
                          f"(a {ya.shape} vs {ta.shape}, b {yb.shape} vs {tb.shape})")
    lo = min(np.nanmin(ta), np.nanmin(tb)) - max_lag_s
    hi = max(np.nanmax(ta), np.nanmax(tb)) + max_lag_s
    grid = np.arange(lo, hi + step_s, step_s)
    ga, gb = _on_grid(ta, ya, grid), _on_grid(tb, yb, grid)
    if smooth_s > 0:
        k = max(1, int(round(smooth_s / step_s)))
        kern = np.ones(k) / k
        ga, gb = (np.convolve(g, kern, mode="same") for g in (ga, gb))  # NaN spreads: edges out
    da, db = np.diff(ga), np.diff(gb)
    nlag = int(round(max_lag_s / step_s))
    lags = np.arange(-nlag, nlag + 1)
    r = np.full(lags.shape, np.nan)
    nn = np.zeros(lags.shape, int)
    for i, k in enumerate(lags):
        # a at index j + k matches b at j
        a = da[max(k, 0):len(da) + min(k, 0)]
        b = db[max(-k, 0):len(db) - max(k, 0)]
        ok = np.isfinite(a) & np.isfinite(b)
        nn[i] = ok.sum()
        if nn[i] * step_s < min_overlap_s:
            continue
        x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        den = np.sqrt((x * x).sum() * (y * y).sum())
        if den > 0:
            r[i] = sign * (x * y).sum() / den
    if not np.isfinite(r).any():
        return LagEstimate(np.nan, np.nan, 0, f"fewer than {min_overlap_s:g} s of overlap at "
                           f"every lag within +-{max_lag_s:g} s")
    i = int(np.nanargmax(r))
    frac = 0.0
    if 0 < i < len(r) - 1 and np.isfinite(r[i - 1]) and np.isfinite(r[i + 1]):
        den = r[i - 1] - 2 * r[i] + r[i + 1]
        if den < 0:
            frac = 0.5 * (r[i - 1] - r[i + 1]) / den
    return LagEstimate(float((lags[i] + frac) * step_s), float(r[i]), int(nn[i]))


def check_clock(recording: xr.DataArray, entry: FileEntry, session: SessionEntry, reference,
                *, sign: int = -1, tolerance_s: float = 5.0, max_lag_s: float = 120.0,
                smooth_s: float = 30.0, min_r: float = 0.5,
                signal: np.ndarray | None = None) -> dict:
    """Cross-check the camera's session clock against a reference stream; warn on disagreement.

    The camera signal (:func:`frame_signal`, on :func:`camera_times`) is correlated with the
    reference (e.g. heart rate, on the session clock) with ``sign``; the measured lag is the
    camera clock's residual error (0 when the clocks agree). How well this works depends on
    how strongly the calf temperature follows the reference: see the module notes.

    Parameters
    ----------
    recording : xarray.DataArray
        Thermal frames from a reader.
    entry, session : FileEntry, SessionEntry
        The manifest's thermal entry and its session.
    reference : (times_s, values) tuple of arrays
        The reference signal (e.g. HR, min-1) and its session-clock times (s since exercise
        start).
    sign : {1, -1}
        Expected sign of the relation (-1 for HR: the calf cools as HR rises).
    tolerance_s : float
        Largest disagreement accepted, s.
    min_r : float
        Weakest peak correlation at which the lag counts as measured. Below it the signals do
        not pin the lag down (on the synthetic study the peaks, r 0.1-0.3, scatter over tens
        of seconds), so nothing is claimed: ``agrees`` is None, with the reason.
    max_lag_s, smooth_s : float
        Passed to :func:`estimate_lag`.
    signal : ndarray (frame,), optional
        :func:`frame_signal` of the recording, when the caller computed it while reading the
        frames for something else (the recording is then not read here).

    Returns
    -------
    dict
        ``lag_s`` (s, NaN with ``reason`` if unmeasurable), ``r``, ``tolerance_s``, ``agrees``
        (bool, or None when unmeasurable) and the clock provenance (:meth:`CameraClock.to_dict`).
    """
    clock = camera_times(recording, entry, session)
    t_ref, y_ref = (np.asarray(v, float) for v in reference)
    if signal is None:
        signal = frame_signal(recording)
    elif np.shape(signal) != (recording.shape[0],):
        raise OptionError(f"signal has shape {np.shape(signal)}; expected one value per frame "
                          f"({recording.shape[0]},)")
    est = estimate_lag(signal, clock.time, y_ref, t_ref, max_lag_s=max_lag_s,
                       smooth_s=smooth_s, sign=sign)
    name = f"{session.subject}/{session.session}"
    reason = est.reason
    if not reason and not est.r >= min_r:
        reason = (f"peak correlation r={est.r:.2f} below min_r={min_r:g}: the signals do not "
                  "identify the lag")
    measured = np.isfinite(est.lag_s) and not reason
    out = {"lag_s": est.lag_s, "r": est.r, "tolerance_s": float(tolerance_s),
           "min_r": float(min_r),
           "agrees": abs(est.lag_s) <= tolerance_s if measured else None,
           "reason": reason, **clock.to_dict()}
    if out["agrees"] is None:
        logger.info("%s: camera clock not cross-checked: %s", name, reason)
    elif not out["agrees"]:
        msg = (f"{name}: camera frames lag the reference by {est.lag_s:+.1f} s (r={est.r:.2f}) on "
               f"the session clock ({clock.origin}, offset_s={clock.offset_s:g}); more than "
               f"{tolerance_s:g} s: check 'offset_s' of {entry.path} in {entry.where}")
        logger.warning(msg)
        warnings.warn(msg, ClockWarning, stacklevel=2)
    return out
