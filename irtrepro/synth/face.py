"""Synthetic face thermograms with frame-level INH/EXH labels, driven by the breath table.

Physics in one paragraph
------------------------
Exhaled air (~34 degC) warms the skin of the nostril rim and upper lip and shows as a warm plume
below the nostrils; inhaled room air cools the nostril interior. The renderer draws a frontal
face (warm ellipse on a cooler background, warm inner canthi, cool nose tip), then adds three
breathing cues, each scaled with the breath's tidal volume (``sqrt(vt / 0.8 L)``, clipped to
[0.5, 2.2]):

- a **plume** below the nostrils, intensity ∝ expiratory flow (``sin(pi u) ** 0.5`` over the
  expiration, ``u`` in [0, 1] the fraction of the phase elapsed) with a 0.1 s lag;
- a **cold jet** inside the nostrils, ∝ inspiratory flow, 0.1 s lag;
- the **nostril rim** temperature, a first-order lag (tau 0.6 s) of the air temperature
  (warm on expiration, cold on inspiration), so it peaks near the end of expiration.

Frames near a phase boundary have almost no flow and a rim temperature that fits either phase:
these are the hard frames (``hard`` is True where ``phase_frac < 0.15`` or ``> 0.85``).
Head motion while running is a vertical bob at the step frequency (``cadence`` / 60 Hz, about
1 px) plus a slow sway (about 1 px), both sub-pixel (the face is evaluated analytically on the
shifted grid). Noise: white 0.08 degC (NETD) per pixel and frame, a fixed pattern of 0.03 degC,
and a slow offset drift (as between non-uniformity corrections).

Sampling design
---------------
Breathing while running reaches ~60 min-1 (1 Hz), so frames are rendered at ``fps`` = 8 Hz
(Nyquist 4 Hz) at ``shape`` = (48, 64) (rows, columns). 46 min of video per session at that rate
would be ~22 000 frames, so the camera records **clips**: by default one ``clip_s`` = 30 s clip
centred in every contiguous segment of ``truth.phase`` (the protocol's phases: rest, warm-up,
each speed stage, recovery), i.e. a few hundred frames per phase. Everything derived from the
frames (``rf_irt``, ``ie_ratio``) is therefore NaN outside the clips, with the reason in attrs.

Appearance (face size and position, nose shape, skin and room temperature) depends on
``(seed, subject)`` only, so a subject looks the same in every session and held-out subjects are
new faces; noise and motion depend on ``(seed, subject, session)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.errors import OptionError

# the label file's reader and writer are io's; kept importable here under their documented names
from irtrepro.io.face import LABELS, read_face_labels, write_face_labels

__all__ = ["render_face_session", "write_face_labels", "read_face_labels", "clip_windows",
           "demo_truth_session", "demo_breaths", "LABELS"]

_TAU_RIM = 0.6   # s, thermal lag of the nostril rim skin
_TAU_AIR = 0.1   # s, lag of the plume / jet (air mixing)
_OVERSAMPLE = 8  # internal steps per frame for the lag filters


def _key(*parts: object) -> int:
    """Stable integer from strings/ints (``hash`` is salted per process)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def clip_windows(truth: xr.Dataset, *, clip_s: float = 30.0, min_s: float = 10.0,
                 t_min: float | None = None, t_max: float | None = None) -> pd.DataFrame:
    """The default sampling design: one clip centred in each contiguous phase segment.

    Parameters
    ----------
    truth : xarray.Dataset
        One subject-session slice on ``time`` (s, 1 Hz) with ``phase`` (str).
    clip_s : float
        Clip length (s).
    min_s : float
        Segments shorter than this (s) get no clip.
    t_min, t_max : float, optional
        Limits (s) the clips must lie within (e.g. the breath table's coverage).

    Returns
    -------
    pandas.DataFrame
        Columns ``t0``, ``t1`` (s), ``phase``, one row per clip.
    """
    time = np.asarray(truth["time"].values, dtype=float)
    lo = time[0] if t_min is None else max(time[0], t_min)
    hi = time[-1] if t_max is None else min(time[-1], t_max)
    if "phase" in truth:
        phase = np.asarray(truth["phase"].values).astype(str)
    else:
        phase = np.full(time.shape, "all")
    change = np.flatnonzero(phase[1:] != phase[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(time)]
    rows = []
    for s, e in zip(starts, ends, strict=True):
        if phase[s] in ("", "nan"):  # outside the protocol (padding of shorter sessions)
            continue
        a, b = max(time[s], lo), min(time[e - 1], hi)
        if b - a < min_s:
            continue
        length = min(clip_s, b - a)
        mid = 0.5 * (a + b)
        rows.append((mid - length / 2, mid + length / 2, phase[s]))
    return pd.DataFrame(rows, columns=["t0", "t1", "phase"])


def _phase_of(t: np.ndarray, breaths: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Per time: breath index, is-inspiration, fraction of the phase elapsed, breath rf, vt."""
    ts = breaths["t_start"].to_numpy(float)
    ti = breaths["t_insp_end"].to_numpy(float)
    te = breaths["t_end"].to_numpy(float)
    idx = np.searchsorted(ts, t, side="right") - 1
    ok = (idx >= 0) & (t < te[np.clip(idx, 0, None)])
    idx = np.clip(idx, 0, len(ts) - 1)
    insp = t < ti[idx]
    a = np.where(insp, ts[idx], ti[idx])
    b = np.where(insp, ti[idx], te[idx])
    frac = np.clip((t - a) / np.maximum(b - a, 1e-6), 0.0, 1.0)
    rf = 60.0 / (te[idx] - ts[idx])
    vt = breaths["vt"].to_numpy(float)[idx]
    return idx, ok, insp, frac, rf, vt


def _lag(x: np.ndarray, dt: float, tau: float) -> np.ndarray:
    """First-order lag (exponential smoothing) along the last axis, started at x[..., 0]."""
    from scipy.signal import lfilter

    a = np.exp(-dt / tau)
    zi = (a * x[..., :1])  # steady state at the first sample
    y, _ = lfilter([1 - a], [1, -a], x, axis=-1, zi=zi)
    return y


def _blob(yy, xx, cy, cx, sy, sx):
    return np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))


def render_face_session(truth: xr.Dataset, breaths: pd.DataFrame, *, fps: float = 8.0,
                        shape: tuple[int, int] = (48, 64), clips: pd.DataFrame | None = None,
                        clip_s: float = 30.0, motion_scale: float = 1.0, noise: float = 0.08,
                        seed: int = 0) -> xr.Dataset:
    """Render face thermograms of one subject-session with INH/EXH labels.

    Parameters
    ----------
    truth : xarray.Dataset
        One subject-session slice of the truth (:mod:`irtrepro.synth`) on ``time`` (s, 1 Hz) with
        ``speed`` (km/h), ``cadence`` (steps/min), ``phase`` (str); ``subject`` and ``session``
        as scalar coordinates or attrs (used for the appearance seed), optional.
    breaths : pandas.DataFrame
        One row per breath: ``t_start``, ``t_insp_end``, ``t_end`` (s, session clock), ``vt`` (L).
    fps : float
        Frame rate (Hz); must exceed twice the highest breathing frequency (>= 2.5 Hz).
    shape : (int, int)
        Frame size (rows, columns), at least (24, 32).
    clips : pandas.DataFrame, optional
        Recorded windows, columns ``t0``, ``t1`` (s) [, ``phase``]; default
        :func:`clip_windows` with ``clip_s``.
    clip_s : float
        Clip length (s) of the default design.
    motion_scale : float
        Multiplies the head motion amplitude (1 = about 1 px bob + 1 px sway while running).
    noise : float
        Temporal noise SD (degC) per pixel and frame.
    seed : int
        Seed of the appearance (with the subject) and of noise and motion (with the session).

    Returns
    -------
    xarray.Dataset
        On dim ``frame``: ``frames`` (frame, y, x) float32 degC; ``label`` "INH"/"EXH";
        ``rf`` (min-1, true rate of the breath containing the frame); ``vt`` (L); ``phase_frac``
        (fraction of the current phase elapsed); ``hard`` (bool, near a phase boundary);
        ``clip_index`` (int); ``phase`` (protocol phase); ``roi_y``, ``roi_x`` (px, true centre of the
        nostril region); coordinate ``time`` (s). On dim ``clip``: ``clip_t0``, ``clip_t1`` (s).
        Attrs: ``fps``, ``subject``, ``session``, ``seed``, ``sampling_design``.

    Raises
    ------
    OptionError
        Frame rate or shape too small, or a breath table missing columns.
    """
    _check_face_arguments(fps, shape, breaths)
    breaths = breaths.sort_values("t_start").reset_index(drop=True)
    subject = str(truth.coords["subject"].item() if "subject" in truth.coords
                  else truth.attrs.get("subject", "S00"))
    session = str(truth.coords["session"].item() if "session" in truth.coords
                  else truth.attrs.get("session", "ses"))
    if clips is None:
        clips = clip_windows(truth, clip_s=clip_s, t_min=float(breaths["t_start"].iloc[0]),
                             t_max=float(breaths["t_end"].iloc[-1]))
    if len(clips) == 0:
        raise OptionError(f"{subject}/{session}: no clip window of >= 10 s within the breaths")

    look = _appearance(np.random.default_rng([seed, _key("face", subject)]), shape)
    rng = np.random.default_rng([seed, _key("face", subject, session)])
    ny, nx = shape
    t, clip = _frame_times(clips, fps)
    nf = len(t)
    plume, jet, rim = _breathing_drive(t, clip, len(clips), breaths, fps)
    _, ok, insp, frac, rf, vt = _phase_of(t, breaths)
    dy, dx = _head_motion(truth, t, fps, rng, look.s, motion_scale)
    img = _draw_face(look, shape, dy, dx, rim=rim, jet=jet, plume=plume)
    # noise: fixed pattern + slow offset drift + white
    fpn = rng.normal(0, 0.03, (1, ny, nx))
    drift = _lag(rng.normal(0, 1, nf), 1.0 / fps, 10.0)[:, None, None] * 0.3
    img = img + fpn + drift + rng.normal(0, noise, (nf, ny, nx))

    label = np.where(insp, "INH", "EXH").astype(object)
    label[~ok] = ""
    tt = np.asarray(truth["time"].values, dtype=float)
    phase_tr = np.asarray(truth["phase"].values).astype(str) if "phase" in truth else None
    phase = (phase_tr[np.clip(np.searchsorted(tt, t, side="right") - 1, 0, len(tt) - 1)]
             if phase_tr is not None else np.full(nf, ""))
    roi_y = look.cy0 + look.nostril_dy + 1.0 * look.s + dy
    roi_x = look.cx0 + dx
    design = (f"{len(clips)} clips ({', '.join(f'{a:.0f}-{b:.0f} s' for a, b in zip(clips.t0, clips.t1, strict=True))})"
              f" at {fps:g} fps, {ny}x{nx} px; frames outside the clips are not recorded")
    ds = xr.Dataset(
        {
            "frames": (("frame", "y", "x"), img.astype(np.float32),
                       {"units": "degC", "long_name": "face temperature"}),
            "label": ("frame", label.astype(str),
                      {"long_name": "breathing phase (INH inspiration, EXH expiration; '' none)"}),
            "rf": ("frame", np.where(ok, rf, np.nan),
                   {"units": "min-1", "long_name": "true respiratory rate of the current breath"}),
            "vt": ("frame", np.where(ok, vt, np.nan), {"units": "L", "long_name": "tidal volume"}),
            "phase_frac": ("frame", frac, {"units": "1",
                                           "long_name": "fraction of the breathing phase elapsed"}),
            "hard": ("frame", (frac < 0.15) | (frac > 0.85),
                     {"long_name": "frame within 15% of a phase boundary (little airflow)"}),
            "clip_index": ("frame", clip.astype(np.int64),
                           {"long_name": "index of the clip the frame belongs to"}),
            "phase": ("frame", phase.astype(str), {"long_name": "protocol phase"}),
            "roi_y": ("frame", roi_y, {"units": "px", "long_name": "true nostril-region row"}),
            "roi_x": ("frame", roi_x, {"units": "px", "long_name": "true nostril-region column"}),
            "clip_t0": ("clip", clips["t0"].to_numpy(float), {"units": "s"}),
            "clip_t1": ("clip", clips["t1"].to_numpy(float), {"units": "s"}),
        },
        coords={"time": ("frame", t, {"units": "s", "long_name": "time since exercise start"})},
        attrs={"fps": float(fps), "subject": subject, "session": session, "seed": int(seed),
               "sampling_design": design},
    )
    return ds


def _check_face_arguments(fps: float, shape: tuple[int, int], breaths: pd.DataFrame) -> None:
    if fps < 2.5:
        raise OptionError(f"fps={fps}; must be >= 2.5 Hz to resolve breathing up to 60 min-1")
    if shape[0] < 24 or shape[1] < 32:
        raise OptionError(f"shape={shape}; expected at least (24, 32) (rows, columns)")
    missing = {"t_start", "t_insp_end", "t_end", "vt"} - set(breaths.columns)
    if missing:
        raise OptionError(f"breaths lacks columns {sorted(missing)}; expected t_start, "
                          "t_insp_end, t_end (s), vt (L)")
    if len(breaths) == 0:
        raise OptionError("breaths is empty: no breath to render")


@dataclass(frozen=True)
class _Look:
    """One subject's face: geometry (px) and temperatures (degC), drawn once per subject."""

    s: float  # geometry scale relative to the 48x64 design
    cy0: float
    cx0: float
    ry: float
    rx: float
    t_skin: float
    t_room: float
    nose_dy: float  # nose tip below centre
    nostril_dy: float
    nostril_dx: float
    mouth_dy: float
    amp_plume: float
    amp_jet: float
    amp_rim: float


def _appearance(app: np.random.Generator, shape: tuple[int, int]) -> _Look:
    """Draw the face of a subject; the draws from ``app`` keep their order (bytes depend on it)."""
    ny, nx = shape
    s = min(ny / 48.0, nx / 64.0)
    cy0 = ny * 0.5 + app.uniform(-2, 2) * s
    cx0 = nx * 0.5 + app.uniform(-3, 3) * s
    ry, rx = app.uniform(16.5, 18.5) * s, app.uniform(12.5, 15) * s
    t_skin = app.uniform(33.0, 34.8)
    t_room = app.uniform(21.0, 25.0)
    nose_dy = app.uniform(2.0, 4.0) * s
    nostril_dy = nose_dy + app.uniform(3.0, 4.0) * s
    nostril_dx = app.uniform(2.5, 3.5) * s
    mouth_dy = nostril_dy + app.uniform(5.0, 6.5) * s
    amp_plume = app.uniform(0.9, 1.3)
    amp_jet = app.uniform(0.8, 1.2)
    amp_rim = app.uniform(0.5, 0.8)
    return _Look(s, cy0, cx0, ry, rx, t_skin, t_room, nose_dy, nostril_dy, nostril_dx, mouth_dy,
                 amp_plume, amp_jet, amp_rim)


def _frame_times(clips: pd.DataFrame, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (s) and clip index of every frame, clip by clip."""
    times, clip_id = [], []
    for k, row in enumerate(clips.itertuples(index=False)):
        n = int(np.floor((row.t1 - row.t0) * fps))
        times.append(row.t0 + np.arange(n) / fps)
        clip_id.append(np.full(n, k))
    return np.concatenate(times), np.concatenate(clip_id)


def _breathing_drive(t: np.ndarray, clip: np.ndarray, n_clips: int, breaths: pd.DataFrame,
                     fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plume, jet and rim drive at the frame times (lagged airflow, dimensionless).

    Computed on a fine grid per clip: the lags need continuity within a clip.
    """
    nf = len(t)
    plume = np.empty(nf)
    jet = np.empty(nf)
    rim = np.empty(nf)
    dt = 1.0 / (fps * _OVERSAMPLE)
    for k in range(n_clips):
        sel = clip == k
        tk = t[sel]
        # start 3 s early so the lags are settled at the first frame
        tf = np.arange(tk[0] - 3.0, tk[-1] + dt / 2, dt)
        _, ok, insp, frac, _, vt = _phase_of(tf, breaths)
        gain = np.clip(np.sqrt(vt / 0.8), 0.5, 2.2) * ok
        flow = np.sin(np.pi * frac) ** 0.5 * gain
        exp_flow = np.where(insp, 0.0, flow)
        ins_flow = np.where(insp, flow, 0.0)
        air = np.where(insp, -1.0, 1.0) * gain
        lag_p = _lag(exp_flow, dt, _TAU_AIR)
        lag_j = _lag(ins_flow, dt, _TAU_AIR)
        lag_r = _lag(air, dt, _TAU_RIM)
        pick = np.clip(np.round((tk - tf[0]) / dt).astype(int), 0, len(tf) - 1)
        plume[sel], jet[sel], rim[sel] = lag_p[pick], lag_j[pick], lag_r[pick]
    return plume, jet, rim


def _head_motion(truth: xr.Dataset, t: np.ndarray, fps: float, rng: np.random.Generator,
                 s: float, motion_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Head shift ``(dy, dx)`` (px) per frame: bob at the step frequency while running, slow
    sway always."""
    nf = len(t)
    tt = np.asarray(truth["time"].values, dtype=float)
    speed = (np.interp(t, tt, np.nan_to_num(truth["speed"].values.astype(float)))
             if "speed" in truth else np.zeros(nf))
    cadence = (np.interp(t, tt, np.nan_to_num(truth["cadence"].values.astype(float)))
               if "cadence" in truth else np.zeros(nf))
    running = speed > 0.5
    step_phase = 2 * np.pi * np.cumsum(cadence / 60.0) / fps + rng.uniform(0, 2 * np.pi)
    bob = np.where(running, 1.0 * s * np.sin(step_phase), 0.0)
    sway_y = _lag(rng.normal(0, 1, nf), 1.0 / fps, 2.0) * 3.0 * s
    sway_x = _lag(rng.normal(0, 1, nf), 1.0 / fps, 2.0) * 3.0 * s
    amp_sway = np.where(running, 1.0, 0.4)
    return motion_scale * (bob + amp_sway * sway_y), motion_scale * amp_sway * sway_x


def _draw_face(look: _Look, shape: tuple[int, int], dy: np.ndarray, dx: np.ndarray, *,
               rim: np.ndarray, jet: np.ndarray, plume: np.ndarray) -> np.ndarray:
    """Noise-free frames (degC): the analytic face on the grid shifted by the head motion
    (sub-pixel, vectorised over frames) with the three breathing cues."""
    ny, nx = shape
    s = look.s
    yy = np.arange(ny, dtype=np.float32)[None, :, None] - dy[:, None, None].astype(np.float32)
    xx = np.arange(nx, dtype=np.float32)[None, None, :] - dx[:, None, None].astype(np.float32)
    cy, cx = np.float32(look.cy0), np.float32(look.cx0)
    ry, rx = look.ry, look.rx
    r2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    face = 1.0 / (1.0 + np.exp((np.sqrt(r2) - 1.0) * 12.0))  # soft-edged ellipse
    grad_bg = (np.arange(ny, dtype=np.float32)[None, :, None] / ny - 0.5) * 1.0
    img = look.t_room + grad_bg + face * (look.t_skin - look.t_room)
    img = img - face * 0.6 * ((yy - cy) / ry)  # forehead warmer than chin
    eye_dy, eye_dx = -4.5 * s, 6.0 * s
    for sx_ in (-1, 1):
        img = img + 1.2 * _blob(yy, xx, cy + eye_dy, cx + sx_ * (eye_dx - 2 * s), 1.3 * s, 1.3 * s)
        img = img - 0.4 * _blob(yy, xx, cy + eye_dy, cx + sx_ * eye_dx, 1.5 * s, 2.5 * s)
    img = img - 1.5 * _blob(yy, xx, cy + look.nose_dy, cx, 2.2 * s, 1.8 * s)  # cool nose tip
    img = img + 0.5 * _blob(yy, xx, cy + look.mouth_dy, cx, 1.0 * s, 4.0 * s)  # warm lips
    rim_t = (look.amp_rim * rim)[:, None, None].astype(np.float32)
    jet_t = (look.amp_jet * jet)[:, None, None].astype(np.float32)
    plume_t = (look.amp_plume * plume)[:, None, None].astype(np.float32)
    for sx_ in (-1, 1):
        ncx = cx + sx_ * look.nostril_dx
        img = img + rim_t * _blob(yy, xx, cy + look.nostril_dy, ncx, 1.6 * s, 1.6 * s)
        img = img - jet_t * _blob(yy, xx, cy + look.nostril_dy, ncx, 0.8 * s, 0.8 * s)
    # plume: over the upper lip and spreading down/out in front of the mouth
    img = img + plume_t * _blob(yy, xx, cy + look.nostril_dy + 2.5 * s, cx, 2.0 * s, 4.5 * s)
    img = img + 0.5 * plume_t * _blob(yy, xx, cy + look.mouth_dy + 1.5 * s, cx, 2.5 * s, 5.5 * s)
    return img


# --------------------------------------------------------------------------------------------
# Small hand-made truth for tests, benchmarks and the CLI demo (stands in for simulate_study).
# --------------------------------------------------------------------------------------------

def demo_truth_session(subject: str = "S01", session: str = "CON", *, seed: int = 0,
                       phases: Sequence[tuple[str, float, float]] = (
                           ("rest", 0.0, 60.0), ("run_low", 8.0, 90.0),
                           ("run_high", 13.0, 90.0)),
                       ) -> xr.Dataset:
    """A one-session truth slice with plausible rf/vt/cadence for each (phase, speed, length).

    Not a physiology model: rf rises with speed from ~14 to ~50 min-1, vt from 0.7 to 2.5 L,
    cadence ~150-175 steps/min while running. Use :mod:`irtrepro.synth.physiology` for studies.
    """
    rng = np.random.default_rng([seed, _key("demo", subject, session)])
    fit = rng.uniform(-0.15, 0.15)
    segs = []
    for name, speed, dur in phases:
        n = int(dur)
        run = speed > 0
        rf = (14.0 + 2.6 * speed * (1 - fit)) if run else rng.uniform(12, 18)
        vt = (0.8 + 0.12 * speed * (1 + fit)) if run else rng.uniform(0.6, 0.9)
        segs.append(pd.DataFrame({"speed": np.full(n, speed), "phase": name,
                                  "rf": rf, "vt": vt,
                                  "cadence": (140 + 2.5 * speed) if run else 0.0}))
    df = pd.concat(segs, ignore_index=True)
    # smooth the steps (physiological kinetics, tau ~ 20 s) and add slow wander
    from scipy.ndimage import uniform_filter1d

    for col in ("rf", "vt"):
        df[col] = uniform_filter1d(df[col].to_numpy(float), 20, mode="nearest")
    df["rf"] *= np.exp(_lag(rng.normal(0, 0.05, len(df)), 1.0, 15.0))
    ds = xr.Dataset({c: ("time", df[c].to_numpy()) for c in df.columns},
                    coords={"time": np.arange(len(df), dtype=float), "subject": subject,
                            "session": session})
    ds["rf"].attrs["units"] = "min-1"
    ds["vt"].attrs["units"] = "L"
    return ds


def demo_breaths(truth: xr.Dataset, *, seed: int = 0) -> pd.DataFrame:
    """Breath table following ``truth.rf`` and ``truth.vt`` with ~6% breath-to-breath jitter."""
    rng = np.random.default_rng([seed, _key("breaths", truth.attrs.get("subject", ""),
                                            str(truth.coords.get("session", "")))])
    tt = truth["time"].values.astype(float)
    t, rows = float(tt[0]), []
    while t < tt[-1]:
        rf = float(np.interp(t, tt, truth["rf"].values))
        vt = float(np.interp(t, tt, truth["vt"].values))
        dur = 60.0 / rf * rng.normal(1.0, 0.06)
        ti = dur * np.clip(rng.normal(0.40 + 0.002 * min(rf, 50), 0.03), 0.3, 0.6)
        rows.append((t, t + ti, t + dur, vt * rng.normal(1, 0.08), 60.0 / dur))
        t += dur
    return pd.DataFrame(rows, columns=["t_start", "t_insp_end", "t_end", "vt", "rf"])
