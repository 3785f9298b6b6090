"""Gait features from keypoint trajectories of the running view (seen from behind).

- :func:`cadence_from_ankles`: steps/min from the two ankle heights. Their difference (left
  minus right) repeats once per stride and flips sign every half stride: stride frequency and
  odd harmonics only. Their mean repeats every step: step frequency (= 2 x stride) and its
  multiples only. A keypoint model that cannot tell the legs apart (on 80x60 thermal frames
  both predicted ankles tend to follow the lower foot, the difference is then noise) still
  gives the mean, so the estimator scores each candidate stride frequency f by the summed,
  normalised power of the difference at f and of the mean at 2f (Hann window, zero-padded FFT,
  parabolic peak refinement); cadence = 2 steps per stride * 60 * f_stride.
- :func:`stance_swing`: stance while an ankle is in the lower part of its vertical range in the
  image (the foot on the belt moves towards the camera, lowest in the picture); per-leg stance
  and swing durations and the duty factor.
- :func:`calf_points`: knee, ankle and the calf-belly point (a third of the way from knee to
  ankle) per frame and side, to place or check calf ROIs.

Missing keypoints (NaN) stay missing; short gaps (<= ``max_gap`` frames) are interpolated for
the spectrum only, and too few valid frames give NaN with a reason, never a guessed cadence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 13, 14, 15, 16


def _fill_gaps(y: np.ndarray, max_gap: int) -> np.ndarray:
    y = np.asarray(y, float).copy()
    bad = ~np.isfinite(y)
    if bad.all() or not bad.any():
        return y
    s = pd.Series(y).interpolate(limit=max_gap, limit_area="inside")
    return s.to_numpy()


def _power(seg: np.ndarray, nfft: int) -> np.ndarray:
    # a linear trend (the runner drifting on the belt, slow camera motion) is not a stride
    t = np.arange(len(seg)) - (len(seg) - 1) / 2
    seg = seg - seg.mean() - t * (t @ seg) / max(t @ t, 1e-12)
    return np.abs(np.fft.rfft(seg * np.hanning(len(seg)), nfft)) ** 2


def cadence_from_ankles(keypoints: np.ndarray, fps: float, *, band=(60.0, 240.0),
                        max_gap: int = 3, min_strides: float = 3.0,
                        min_periodicity: float = 0.3) -> dict:
    """Cadence of a running/walking clip from the ankle trajectories.

    The score of a candidate stride frequency ``f`` (within ``band``) is
    ``P_diff(f) + P_mean(2 f)``: the power of the left-minus-right ankle height at ``f`` plus
    the power of the mean ankle height at the step frequency ``2 f``, each spectrum normalised
    to unit power above ``band[0] / 240`` Hz. With both legs tracked the two terms agree; when
    the legs are confused (both ankles move together) the difference is noise and the mean
    still pins the step frequency, so neither half nor double the cadence is picked.

    Parameters
    ----------
    keypoints : ndarray (n_frames, 17, 2 or 3)
        Per-frame keypoints (px); NaN where not found.
    fps : float
        Frame rate, Hz.
    band : (float, float)
        Plausible cadences, steps/min (step frequencies up to the Nyquist frequency).
    min_strides : float
        Fewer strides in the valid stretch give NaN.
    min_periodicity : float
        Below this periodicity the clip has no measurable cadence (NaN with the reason): a
        standing, sitting or turning person, or keypoints that are noise, still have a highest
        spectral bin, and it must not be reported as a cadence.

    Returns
    -------
    dict
        ``cadence`` (steps/min, NaN if not measurable), ``stride_hz``, ``n_valid`` (frames with
        both ankles), ``periodicity`` (0-1: the larger of the fractions of the difference's
        power within +-2 frequency resolutions ``fps / n`` of the stride frequency and of the
        mean's power around the step frequency; white noise gives about ``8 / n``, a clean
        stride 0.5-1) and ``reason`` ("" when measured).
    """
    kp = np.asarray(keypoints, float)
    if kp.ndim != 3 or kp.shape[1] != 17:
        from irtrepro.errors import OptionError

        raise OptionError(f"keypoints have shape {kp.shape}; expected (frame, 17, 2|3)")
    yl = _fill_gaps(kp[:, L_ANKLE, 1], max_gap)
    yr = _fill_gaps(kp[:, R_ANKLE, 1], max_gap)
    ok = np.isfinite(yl) & np.isfinite(yr)
    out = {"cadence": np.nan, "stride_hz": np.nan, "n_valid": int(ok.sum()),
           "periodicity": np.nan, "reason": ""}
    # longest run of frames with both ankles
    if ok.any():
        edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(int), 0]))
        starts, stops = edges[::2], edges[1::2]
        k = np.argmax(stops - starts)
        sl = slice(starts[k], stops[k])
    else:
        sl = slice(0, 0)
    diff, mean = (yl - yr)[sl], (0.5 * (yl + yr))[sl]
    n = len(diff)
    f_lo, f_hi = band[0] / 120.0, band[1] / 120.0
    if n / fps * f_lo < min_strides or n < 8:
        out["reason"] = (f"only {n} consecutive frames with both ankles "
                         f"(< {min_strides} strides at {band[0]:.0f} steps/min)")
        return out
    nfft = int(2 ** np.ceil(np.log2(n * 64)))
    freqs = np.fft.rfftfreq(nfft, 1 / fps)
    above = freqs > f_lo / 2

    def _unit(p):
        tot = p[above].sum()
        return p / tot if tot > 0 else np.zeros_like(p)

    p_diff, p_mean = _unit(_power(diff, nfft)), _unit(_power(mean, nfft))
    # candidates f on the FFT grid: the mean's bin of 2 f is exactly index 2 i
    idx = np.flatnonzero((freqs >= f_lo) & (freqs <= f_hi) & (2 * freqs <= fps / 2))
    score = p_diff[idx] + p_mean[2 * idx] if len(idx) else np.zeros(0)
    if not len(score) or score.max() <= 0:
        out["reason"] = "no periodic ankle motion in the cadence band"
        return out
    j = int(np.argmax(score))
    if 0 < j < len(idx) - 1:
        a, b, c = np.log(score[j - 1:j + 2] + 1e-30)
        off = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    else:
        off = 0.0
    f = freqs[idx[j]] + off * (freqs[1] - freqs[0])
    near = 2.0 * fps / n  # the Hann main lobe is +-2 resolution bins wide

    def _share(p, f0):
        return float(p[above & (np.abs(freqs - f0) <= near)].sum())

    periodicity = max(_share(p_diff, f), _share(p_mean, 2 * f))
    out["periodicity"] = periodicity
    if periodicity < min_periodicity:
        out["reason"] = (f"no periodic ankle motion: periodicity {periodicity:.2f} < "
                         f"{min_periodicity} (best candidate {120 * f:.0f} steps/min)")
        return out
    out.update(cadence=float(120.0 * f), stride_hz=float(f))
    return out


def stance_swing(keypoints: np.ndarray, fps: float, *, threshold: float = 0.55) -> pd.DataFrame:
    """Stance/swing timing per leg from the ankles' image height.

    A frame is stance for a leg when its ankle is lower in the image than ``threshold`` of the
    way from its 5th to 95th percentile height. Returns one row per leg: ``side``, ``duty``
    (stance share), ``stance_s``, ``swing_s`` (mean durations of complete phases, s),
    ``n_cycles`` and the boolean frame mask in ``df.attrs["stance"]`` (n_frames, 2).
    """
    kp = np.asarray(keypoints, float)
    rows, masks = [], []
    for side, j in (("left", L_ANKLE), ("right", R_ANKLE)):
        y = kp[:, j, 1]
        ok = np.isfinite(y)
        if ok.sum() < 8:
            rows.append({"side": side, "duty": np.nan, "stance_s": np.nan, "swing_s": np.nan,
                         "n_cycles": 0})
            masks.append(np.zeros(len(y), bool))
            continue
        lo, hi = np.nanpercentile(y, [5, 95])
        st = np.where(ok, (y - lo) / max(hi - lo, 1e-9) > threshold, False)
        masks.append(st)
        edges = np.flatnonzero(np.diff(st.astype(int)))
        runs = np.diff(edges)
        kinds = st[edges[:-1] + 1]  # state of each complete run
        stance = runs[kinds] / fps
        swing = runs[~kinds] / fps
        rows.append({"side": side, "duty": float(st[ok].mean()),
                     "stance_s": float(stance.mean()) if stance.size else np.nan,
                     "swing_s": float(swing.mean()) if swing.size else np.nan,
                     "n_cycles": int(min(stance.size, swing.size))})
    df = pd.DataFrame(rows)
    df.attrs["stance"] = np.stack(masks, 1)
    return df


def calf_points(keypoints: np.ndarray, *, belly: float = 1 / 3) -> pd.DataFrame:
    """Knee, ankle and calf-belly positions per frame and side (px; NaN where missing).

    The calf belly (where calf ROIs are centred) is placed ``belly`` of the way from knee to
    ankle. ``shank_px`` is the knee-ankle distance (sets the ROI size).
    """
    kp = np.asarray(keypoints, float)
    rows = []
    for side, jk, ja in (("left", L_KNEE, L_ANKLE), ("right", R_KNEE, R_ANKLE)):
        k, a = kp[:, jk, :2], kp[:, ja, :2]
        c = k + belly * (a - k)
        rows.append(pd.DataFrame({"frame": np.arange(len(kp)), "side": side,
                                  "knee_x": k[:, 0], "knee_y": k[:, 1], "ankle_x": a[:, 0],
                                  "ankle_y": a[:, 1], "calf_x": c[:, 0], "calf_y": c[:, 1],
                                  "shank_px": np.hypot(*(a - k).T)}))
    return pd.concat(rows, ignore_index=True)


def check_roi_sides(keypoints: np.ndarray, roi: np.ndarray) -> pd.DataFrame:
    """Left/right sanity check of calf ROI masks against the keypoints (same pixel grid).

    ``roi`` (n_frames, H, W): 0 background, 1 left calf, 2 right calf. Seen from behind, the left
    calf must lie on the side of the left knee/ankle. Returns per frame ``ok`` (True/False, NaN
    when a mask side or a keypoint is missing) and the column centroids.
    """
    kp = np.asarray(keypoints, float)
    roi = np.asarray(roi)
    cols = np.arange(roi.shape[-1])
    res = []
    for f in range(len(kp)):
        cx = {}
        for lab in (1, 2):
            m = roi[f] == lab
            cx[lab] = float((m.sum(0) * cols).sum() / m.sum()) if m.any() else np.nan
        kl = np.nanmean(kp[f, [L_KNEE, L_ANKLE], 0])
        kr = np.nanmean(kp[f, [R_KNEE, R_ANKLE], 0])
        vals = [cx[1], cx[2], kl, kr]
        ok = np.nan if not np.all(np.isfinite(vals)) else bool((cx[1] - cx[2]) * (kl - kr) > 0)
        res.append({"frame": f, "roi_left_x": cx[1], "roi_right_x": cx[2], "kp_left_x": kl,
                    "kp_right_x": kr, "ok": ok})
    return pd.DataFrame(res)
