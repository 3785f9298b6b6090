"""Synthetic calf thermograms with ground-truth masks, rendered from the thermal truth.

Two calves seen from behind on a treadmill, moving with the running gait, with branching
superficial veins, small warm perforator spots, low-frequency skin texture, sensor noise,
emissivity / reflected temperature and occasional motion blur. Every frame comes with the
ground-truth ``roi`` (0 background, 1 left calf, 2 right calf) and ``vessels`` (0 none, 1 vein,
2 perforator) masks.

How the exactness is achieved
-----------------------------
Each subject has a fixed *anatomy* drawn in a canonical calf coordinate system
``(v, u)`` (``v`` 0 at the top of the calf, 1 at the ankle; ``u`` -1 lateral edge, +1 medial
edge): vein trees, perforators and a low-frequency texture field, Gaussianised within each
region so that the pixel values of a region follow a normal distribution. Every frame maps its
pixels back into canonical coordinates (a per-frame, per-side warp driven by the gait), samples the
anatomy, and sets the pixels of each region ``R`` (TNV = calf minus vessels, TV = veins,
TP = perforators) to ``mean_R + sd_R * z`` where ``z`` is re-standardised *after* motion blur and
sensor noise, within that region and frame. Hence, under the ground-truth masks, the region mean
equals the truth to float32 rounding **including** the sensor noise, and the region's spatial SD
equals the ``*_sd`` truth. The calf mean (``tsk_mean``) is the pixel-weighted mean of the three
regions; it is returned per frame as ``tsk_mean`` (it matches the truth's ``tsk_mean`` only as
far as the truth was built with the same area fractions).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage, special

from irtrepro.errors import OptionError, StudyError

__all__ = ["render_session", "CalfAnatomy", "make_anatomy", "SIDES"]

SIDES = ("left", "right")
_REQUIRED = ("tnv", "tp", "tv", "tnv_sd", "tp_sd", "tv_sd", "cadence")

# canonical anatomy grid (rows along v, columns along u); fine enough for 640x480 frames
_CH, _CW = 256, 128


@dataclass(frozen=True)
class CalfAnatomy:
    """Fixed anatomy of one subject (both calves), in canonical coordinates.

    Attributes
    ----------
    labels : ndarray, shape (2, 256, 128), uint8
        Canonical vessel labels per side (0 skin, 1 vein, 2 perforator).
    z : ndarray, shape (2, 256, 128), float32
        Standardised texture per side; within each label it is normal(0, 1).
    half_width : float
        Peak calf half-width as a fraction of the frame width.
    height : float
        Calf height as a fraction of the frame height.
    bulge : float
        Position of the widest point along v (0 top, 1 ankle).
    taper : float
        Ankle half-width relative to the peak.
    medial : float
        Medial/lateral width ratio (gastrocnemius asymmetry).
    """

    labels: np.ndarray
    z: np.ndarray
    half_width: float
    height: float
    bulge: float
    taper: float
    medial: float


def _stable_int(text: str) -> int:
    """A platform-independent integer from a string (Python's hash() is salted)."""
    return zlib.crc32(str(text).encode("utf-8"))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], n_modes: int,
                  max_freq: float) -> np.ndarray:
    """Sum of random low-frequency cosine modes on a grid (values roughly standard normal)."""
    vv, uu = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    kv = rng.uniform(0.3, max_freq, n_modes)
    ku = rng.uniform(-max_freq, max_freq, n_modes)
    ph = rng.uniform(0, 2 * np.pi, n_modes)
    amp = rng.normal(0, 1, n_modes) / np.sqrt(1 + kv**2 + ku**2)
    f = np.tensordot(amp, np.cos(2 * np.pi * (kv[:, None, None] * vv + ku[:, None, None] * uu)
                                 + ph[:, None, None]), axes=1)
    return (f - f.mean()) / (f.std() + 1e-12)


def _gaussianise(values: np.ndarray) -> np.ndarray:
    """Rank-transform ``values`` to standard normal scores (keeps spatial order)."""
    if values.size == 0:
        return values.astype(np.float64)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[np.argsort(values, kind="stable")] = np.arange(values.size)
    return special.ndtri((ranks + 0.5) / values.size)


def _vein_tree(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Centre-line points (v, u) and radii (canonical pixels) of one branching vein tree."""
    pts, rad = [], []
    # main trunk: runs down the calf with a meander (small saphenous-like)
    u0 = rng.uniform(-0.35, 0.35)
    v = np.linspace(rng.uniform(0.0, 0.1), rng.uniform(0.85, 1.0), 200)
    u = u0 + 0.18 * np.sin(2 * np.pi * (rng.uniform(0.4, 1.0) * v + rng.uniform(0, 1)))
    r_trunk = rng.uniform(4.0, 5.0)
    pts.append(np.c_[v, u])
    rad.append(np.full(v.size, r_trunk))
    # branches leave the trunk at random points and run obliquely to the edges
    for _ in range(rng.integers(3, 6)):
        k = rng.integers(20, 180)
        length = rng.uniform(0.15, 0.35)
        direction = rng.choice([-1.0, 1.0])
        t = np.linspace(0, 1, 80)
        bv = v[k] + length * t * rng.uniform(0.3, 1.0)
        bu = u[k] + direction * length * 1.6 * t + 0.05 * np.sin(2 * np.pi * t * rng.uniform(1, 2))
        pts.append(np.c_[bv, bu])
        rad.append(np.linspace(r_trunk * 0.8, r_trunk * 0.55, t.size))
    return np.concatenate(pts), np.concatenate(rad)


def _calf_profile(v, bulge: float, taper: float):
    """Calf half-width along v relative to its peak (widest at ``bulge``, ``taper`` at the ankle)."""
    return (0.62 + 0.38 * np.exp(-((v - bulge) / 0.32) ** 2)) * np.where(
        v > bulge, 1 - (1 - taper) * np.clip((v - bulge) / (1 - bulge), 0, 1) ** 1.5, 1.0)


def make_anatomy(seed: int | np.random.Generator, *, vein_fraction: float | None = None,
                 perforator_fraction: float | None = None) -> CalfAnatomy:
    """Draw a subject's calf anatomy (vein trees, perforators, texture, shape).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Anatomy seed; the same seed gives the same anatomy bit for bit.
    vein_fraction, perforator_fraction : float, optional
        Target fractions of the calf area (image pixels at rest) covered by veins and by
        perforators; the vein radius and the number of perforators are tuned to match (the
        truth's ``tsk_mean`` is the area-weighted mean with these fractions).

    Returns
    -------
    CalfAnatomy
    """
    rng = np.random.default_rng(seed)
    shape_par = dict(half_width=float(rng.uniform(0.075, 0.092)),
                     height=float(rng.uniform(0.50, 0.58)), bulge=float(rng.uniform(0.25, 0.38)),
                     taper=float(rng.uniform(0.45, 0.58)), medial=float(rng.uniform(1.0, 1.15)))
    labels = np.zeros((2, _CH, _CW), np.uint8)
    z = np.zeros((2, _CH, _CW), np.float32)
    vv, uu = np.meshgrid(np.linspace(0, 1, _CH), np.linspace(-1, 1, _CW), indexing="ij")
    # image area represented by one canonical cell (the warp stretches u by the local width)
    weight = _calf_profile(vv, shape_par["bulge"], shape_par["taper"]) \
        * np.where(uu > 0, shape_par["medial"], 1.0) * (vv >= 0.05 * uu**2)
    weight = weight / weight.sum()
    for s in range(2):
        centre = np.zeros((_CH, _CW), bool)
        radius = np.zeros((_CH, _CW))
        for _ in range(rng.integers(1, 3)):
            p, r = _vein_tree(rng)
            iv = np.clip(np.round(p[:, 0] * (_CH - 1)).astype(int), 0, _CH - 1)
            iu = np.round((p[:, 1] + 1) / 2 * (_CW - 1)).astype(int)
            ok = (iu >= 0) & (iu < _CW)
            centre[iv[ok], iu[ok]] = True
            radius[iv[ok], iu[ok]] = r[ok]
        dist, (ia, ib) = ndimage.distance_transform_edt(~centre, return_indices=True)
        near_r = radius[ia, ib]
        ratio = dist / np.maximum(near_r, 1e-9)
        ratio[np.abs(uu) >= 0.92] = np.inf  # veins run round the leg, out of view, at the edges
        k = 1.0
        if vein_fraction is not None:
            # radius scale whose weighted area fraction equals the target (weighted quantile)
            order = np.argsort(ratio, axis=None)
            cw = np.cumsum(weight.ravel()[order])
            k = float(ratio.ravel()[order][min(np.searchsorted(cw, vein_fraction), cw.size - 1)])
        vein = ratio <= max(k, 0.5)
        labels[s][vein] = 1
        # perforators: small discs, away from the edges and from the veins
        n_perf = rng.integers(3, 7)
        placed = 0
        for _ in range(400):
            if perforator_fraction is None and placed == n_perf:
                break
            if perforator_fraction is not None and (
                    weight[labels[s] == 2].sum() >= perforator_fraction or placed >= 16):
                break
            pv, pu = rng.uniform(0.15, 0.9), rng.uniform(-0.7, 0.7)
            pr = rng.uniform(6.5, 8.5)
            d2 = ((vv - pv) * (_CH - 1)) ** 2 + ((uu - pu) * (_CW - 1) / 2) ** 2
            disc = d2 <= pr**2
            if (labels[s][np.sqrt(d2) <= pr + 6] != 0).any():
                continue
            labels[s][disc] = 2
            placed += 1
        # texture: low-frequency skin field with edge cooling; veins get a tubular profile
        # (warmest on the centre line) and perforators a radial profile, so each region has
        # spatial structure, then Gaussianised within each label
        tex = _smooth_field(rng, (_CH, _CW), 24, 3.0) - 0.8 * np.abs(uu) ** 4
        prof = np.where(labels[s] == 1, -dist / np.maximum(near_r, 1), 0.0)
        raw = tex + 2.0 * prof
        perf_dist = ndimage.distance_transform_edt(labels[s] == 2)
        raw = np.where(labels[s] == 2, perf_dist + 0.3 * tex, raw)
        for lab in (0, 1, 2):
            sel = labels[s] == lab
            z[s][sel] = _gaussianise(raw[sel])
    return CalfAnatomy(labels=labels, z=z, **shape_par)


def _truth_at(truth: xr.Dataset, name: str, t: np.ndarray) -> np.ndarray:
    """Truth variable ``name`` linearly interpolated at times ``t``; returns (frame, side)."""
    da = truth[name]
    tt = truth["time"].values.astype(float)
    if "side" in da.dims:
        return np.stack([np.interp(t, tt, da.sel(side=s).values.astype(float)) for s in SIDES], 1)
    vals = np.interp(t, tt, da.values.astype(float))
    return np.stack([vals, vals], 1)


def _check_truth(truth: xr.Dataset) -> None:
    missing = [v for v in _REQUIRED if v not in truth]
    if missing:
        raise StudyError(f"render_session: truth lacks {missing}; expected {list(_REQUIRED)} "
                         "on (time[, side]) for one subject-session")
    extra = [d for d in truth["tnv"].dims if d not in ("time", "side")]
    if extra:
        raise StudyError(f"render_session: truth has dims {extra} besides time/side; "
                         "pass one subject-session slice, e.g. truth.sel(subject=..., session=...)")
    if truth.sizes.get("time", 0) < 1:
        raise StudyError("render_session: truth has no time points")


def render_session(
    truth: xr.Dataset,
    *,
    frame_interval_s: float = 5.0,
    shape: tuple[int, int] = (120, 160),
    seed: int = 0,
    anatomy_seed: int | None = None,
    ambient: float = 22.0,
    netd: float = 0.045,
    blur_prob: float = 0.05,
    emissivity: float = 0.98,
    camera_emissivity: float | None = None,
    reflected_temp: float | None = None,
    chunk_frames: int | None = None,
) -> xr.Dataset:
    """Render one session's calf thermograms and ground-truth masks from the thermal truth.

    Parameters
    ----------
    truth : xarray.Dataset
        One subject-session slice of the truth (dims ``time`` at 1 Hz in s, ``side``) with
        ``tnv``, ``tp``, ``tv`` (degC region means), ``tnv_sd``, ``tp_sd``, ``tv_sd`` (degC
        spatial SDs) and ``cadence`` (steps/min). Scalar ``subject``/``session`` coordinates,
        when present, key the anatomy and the per-session randomness; scalar
        ``vein_area_fraction`` and ``perforator_area_fraction``, when present, set the anatomy's
        vessel area fractions.
    frame_interval_s : float
        Seconds between frames; frames start at the first truth time.
    shape : (int, int)
        Frame shape (rows, columns), e.g. ``(120, 160)`` or ``(480, 640)``.
    seed : int
        Study seed. The subject's anatomy comes from ``(seed, subject)`` (same on every session
        and day), everything per frame from ``(seed, subject, session)``.
    anatomy_seed : int, optional
        Overrides the anatomy seed.
    ambient : float
        Room / reflected temperature (degC).
    netd : float
        Sensor noise SD (degC); 0.045 is a typical microbolometer NETD.
    blur_prob : float
        Probability that a frame has horizontal motion blur.
    emissivity : float
        Skin emissivity (the background has 0.90).
    camera_emissivity : float, optional
        Emissivity set on the camera; ``None`` means the camera compensates exactly, so skin
        pixels carry the true skin temperature. A different value biases the skin (linearised
        radiometry: ``T_app = eps*T + (1-eps)*T_refl``).
    reflected_temp : float, optional
        Reflected apparent temperature (degC); default ``ambient``.
    chunk_frames : int, optional
        Frames rendered at a time (bounds memory); default keeps arrays near 2e6 pixels.

    Returns
    -------
    xarray.Dataset
        ``frames`` (frame, y, x) float32 degC, ``roi`` and ``vessels`` (frame, y, x) uint8,
        coordinate ``time(frame)`` (s), per frame ``blurred`` (bool), ``gait_phase`` (rad), and
        the rendered region metrics under the ground-truth masks ``tnv``, ``tp``, ``tv``,
        ``tsk_mean`` (frame, side) degC (NaN where a region is empty).

    Notes
    -----
    Region means and SDs are exact *after* sensor noise and blur (each region of each frame is
    re-standardised), to float32 rounding. If the camera emissivity differs from the skin's, the
    bias is applied after that, as a real camera would.
    """
    _check_truth(truth)
    h, w = (int(shape[0]), int(shape[1]))
    if h < 32 or w < 32:
        raise OptionError(f"shape={shape!r}; expected at least (32, 32) pixels")
    if not frame_interval_s > 0:
        raise OptionError(f"frame_interval_s={frame_interval_s!r}; expected > 0 s")
    subject = str(truth["subject"].item()) if "subject" in truth.coords else ""
    session = str(truth["session"].item()) if "session" in truth.coords else ""
    if anatomy_seed is None:
        anatomy_seed_seq = [int(seed), _stable_int(subject)]
    else:
        anatomy_seed_seq = [int(anatomy_seed)]
    anat = make_anatomy(np.random.default_rng(anatomy_seed_seq), **_vessel_fractions(truth))
    rng = np.random.default_rng([int(seed), _stable_int(subject), _stable_int(session), 7])

    t_truth = truth["time"].values.astype(float)
    times = np.arange(t_truth[0], t_truth[-1] + 1e-9, frame_interval_s)
    n = times.size
    means = {k: _truth_at(truth, k, times) for k in ("tnv", "tv", "tp")}
    sds = {k: np.maximum(_truth_at(truth, f"{k}_sd", times), 0.0) for k in ("tnv", "tv", "tp")}
    cad = _truth_at(truth, "cadence", times)[:, 0]
    phase = _gait_phase(truth, times, rng)
    mo = _motion(phase, times, rng, (h, w), anat, blur_prob=blur_prob, ambient=ambient)
    t_refl = mo.amb if reflected_temp is None else np.full(n, float(reflected_temp))
    eps_cam = emissivity if camera_emissivity is None else float(camera_emissivity)
    bg_static = _background(h, w, seed, session)

    if chunk_frames is None:
        chunk_frames = max(1, int(2_000_000 // (h * w)))
    frames = np.empty((n, h, w), np.float32)
    roi = np.zeros((n, h, w), np.uint8)
    ves = np.zeros((n, h, w), np.uint8)
    rendered = np.full((4, n, 2), np.nan)  # tnv, tv, tp, tsk_mean
    for a in range(0, n, chunk_frames):
        sl = slice(a, min(n, a + chunk_frames))
        img = np.broadcast_to(mo.amb[sl, None, None] + bg_static[None],
                              (sl.stop - a, h, w)).copy()
        # background apparent temperature through its own emissivity (0.90) and reflections
        img = 0.90 * img + 0.10 * t_refl[sl, None, None]
        img, code, zval = _draw_calves(img, anat, mo, sl, means["tnv"][sl], roi[sl], ves[sl])
        img, key, cnt = _skin_pixels(img, code, zval, {k: v[sl] for k, v in means.items()},
                                     {k: v[sl] for k, v in sds.items()}, mo, sl, rng, netd)
        if eps_cam != emissivity:
            img = np.where(code > 0, (emissivity * img + (eps_cam - emissivity)
                                      * t_refl[sl, None, None]) / eps_cam, img)
        frames[sl] = img
        rendered[:, sl] = _region_means(frames[sl], key, cnt)

    return _session_dataset(frames, roi, ves, mo.blurred, phase, rendered, times, attrs={
        "seed": int(seed), "anatomy_seed": str(anatomy_seed_seq), "subject": subject,
        "session": session, "netd_degC": netd, "emissivity": emissivity,
        "camera_emissivity": eps_cam, "frame_interval_s": float(frame_interval_s),
        "cadence_mean": float(np.nanmean(cad)),
        "renderer": "irtrepro.synth.thermogram.render_session"})


def _vessel_fractions(truth: xr.Dataset) -> dict[str, float]:
    """Vessel area fractions of the anatomy from scalar truth variables, where given."""
    fractions = {}
    for key, var in (("vein_fraction", "vein_area_fraction"),
                     ("perforator_fraction", "perforator_area_fraction")):
        if var in truth and truth[var].ndim == 0 and np.isfinite(truth[var].item()):
            fractions[key] = float(truth[var].item())
    return fractions


def _gait_phase(truth: xr.Dataset, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gait phase (rad) at ``times``: the cadence integrated on the 1 Hz truth grid."""
    t_truth = truth["time"].values.astype(float)
    cad_1hz = truth["cadence"].values.astype(float)
    if cad_1hz.ndim > 1:
        cad_1hz = cad_1hz.mean(axis=-1)
    cum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(cad_1hz[:-1]) * np.diff(t_truth))])
    phase0 = rng.uniform(0, 2 * np.pi)
    # a stride is two steps
    return (phase0 + 2 * np.pi * np.interp(times, t_truth, cum) / 120.0) % (2 * np.pi)


@dataclass(frozen=True)
class _Motion:
    """Per-frame leg geometry (px, ``(frame, side)``) and camera effects of one session."""

    cx: np.ndarray
    top: np.ndarray
    height: np.ndarray
    widen: np.ndarray
    tilt: np.ndarray
    blurred: np.ndarray  # (frame,) bool
    blur_len: np.ndarray  # (frame,) px
    amb: np.ndarray  # (frame,) room temperature, degC


def _motion(phase: np.ndarray, times: np.ndarray, rng: np.random.Generator,
            shape: tuple[int, int], anat: CalfAnatomy, *, blur_prob: float,
            ambient: float) -> _Motion:
    """Leg geometry from the gait phase (left swings while right stands), blur and room drift.

    The draws from ``rng`` keep their order: the rendered bytes depend on it.
    """
    h, w = shape
    n = times.size
    ph_side = np.stack([phase, phase + np.pi], 1)                      # (frame, side)
    swing = np.clip(np.sin(ph_side), 0, None)                          # 0 stance .. 1 swing
    sway = 0.025 * w * np.sin(phase) + rng.normal(0, 0.006 * w, n)     # body sway, both legs
    drift = 0.02 * w * np.sin(2 * np.pi * times / rng.uniform(200, 400) + rng.uniform(0, 6))
    cx = np.array([0.37, 0.63])[None] * w + (sway + drift)[:, None] \
        + rng.normal(0, 0.004 * w, (n, 2))
    top = (0.20 * h - 0.07 * h * swing + rng.normal(0, 0.006 * h, (n, 2)))
    height = anat.height * h * (1 - 0.06 * swing) * rng.normal(1, 0.01, (n, 2))
    widen = (1 + 0.05 * (1 - swing) - 0.03 * swing) * rng.normal(1, 0.01, (n, 2))
    tilt = np.array([-1.0, 1.0])[None] * 0.08 * swing * np.cos(ph_side) + rng.normal(0, 0.02, (n, 2))
    blurred = rng.random(n) < blur_prob
    blur_len = rng.integers(2, 5, n) * max(1, round(w / 160))
    amb = ambient + 0.3 * np.sin(2 * np.pi * times / 900.0 + rng.uniform(0, 6))
    return _Motion(cx, top, height, widen, tilt, blurred, blur_len, amb)


def _background(h: int, w: int, seed: int, session: str) -> np.ndarray:
    """Static background offsets (degC): wall gradient, treadmill belt with stripes."""
    yy, xx = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
    bg_rng = np.random.default_rng([int(seed), _stable_int(session), 11])
    bg_static = (-1.0 * yy + 0.4 * np.sin(2 * np.pi * xx * bg_rng.uniform(0.5, 1.5))
                 + 0.6 * _smooth_field(bg_rng, (h, w), 10, 2.0))
    belt = yy > 0.9
    return np.where(belt, 2.0 + 0.5 * np.sign(np.sin(40 * xx)), bg_static)


def _draw_calves(img: np.ndarray, anat: CalfAnatomy, mo: _Motion, sl: slice, tnv: np.ndarray,
                 roi: np.ndarray, ves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both calves of frames ``sl``: writes ``roi``/``vessels``, paints knee and ankle into ``img``.

    Returns ``img``, the region ``code`` of each pixel (0 background, ``1 + 3 * side +
    {0 tnv, 1 vein, 2 perforator}``) and the anatomy's z-score field ``zval`` there.
    """
    f, h, w = img.shape
    ys = np.arange(h, dtype=np.float64)[None, :, None]
    xs = np.arange(w, dtype=np.float64)[None, None, :]
    code = np.zeros((f, h, w), np.int64)
    zval = np.zeros((f, h, w))
    for s in range(2):
        top = mo.top[sl, s, None, None]
        v = (ys - top) / mo.height[sl, s, None, None]
        centre = mo.cx[sl, s, None, None] + mo.tilt[sl, s, None, None] * (ys - top)
        prof = _calf_profile(v, anat.bulge, anat.taper)
        hw = anat.half_width * w * mo.widen[sl, s, None, None] * prof
        dx = xs - centre
        lateral_sign = -1.0 if s == 0 else 1.0   # lateral edge is image-left for the left calf
        lat = dx * lateral_sign > 0
        u = np.where(lat, -np.abs(dx) / hw, np.abs(dx) / (hw * anat.medial))
        inside = (v >= 0.05 * u**2) & (v <= 1.0) & (np.abs(u) <= 1.0)
        iv = np.clip(np.rint(v * (_CH - 1)), 0, _CH - 1).astype(np.intp)
        iu = np.clip(np.rint((u + 1) / 2 * (_CW - 1)), 0, _CW - 1).astype(np.intp)
        lab = anat.labels[s][iv, iu]
        zz = anat.z[s][iv, iu]
        code = np.where(inside, 1 + 3 * s + lab, code)
        zval = np.where(inside, zz, zval)
        roi[inside] = s + 1
        ves[inside] = lab[inside]
        # leg above (knee, cooler) and below (ankle / sock, cooler still)
        leg_w = np.abs(dx) <= anat.half_width * w * 0.85
        above = (v < 0.05 * u**2) & leg_w & (ys > 0.02 * h)
        below = (v > 1.0) & (np.abs(dx) <= anat.half_width * w * anat.taper * 0.9) & (ys < 0.9 * h)
        img = np.where(above, tnv[:, s, None, None] - 1.5 + 0.3 * zz, img)
        img = np.where(below, mo.amb[sl, None, None] + 6.0 + 0.3 * zz, img)
    return img, code, zval


def _skin_pixels(img: np.ndarray, code: np.ndarray, zval: np.ndarray, means: dict, sds: dict,
                 mo: _Motion, sl: slice, rng: np.random.Generator, netd: float):
    """Skin values, motion blur and sensor noise, then each region re-standardised.

    Provisional skin values first, so that blur mixes realistic temperatures; after noise and
    blur every region of every frame gets the truth's mean and SD exactly. Returns ``img``, the
    per-pixel (frame, region) ``key`` and the region pixel counts ``cnt`` ``(frame, 7)``.
    """
    f = img.shape[0]
    mean_c = np.zeros((f, 7))
    sd_c = np.zeros((f, 7))
    for s in range(2):
        for r, k in enumerate(("tnv", "tv", "tp")):
            mean_c[:, 1 + 3 * s + r] = means[k][:, s]
            sd_c[:, 1 + 3 * s + r] = sds[k][:, s]
    fidx = np.arange(f)[:, None, None]
    skin = code > 0
    img = np.where(skin, mean_c[fidx, code] + sd_c[fidx, code] * zval, img)
    for k in np.flatnonzero(mo.blurred[sl]):
        img[k] = ndimage.uniform_filter1d(img[k], int(mo.blur_len[sl.start + k]), axis=1,
                                          mode="nearest")
    img += rng.normal(0, netd, img.shape)
    key = (np.arange(f)[:, None, None] * 7 + code).ravel()
    cnt = np.bincount(key, minlength=f * 7).reshape(f, 7)
    s1 = np.bincount(key, img.ravel(), minlength=f * 7).reshape(f, 7)
    s2 = np.bincount(key, (img * img).ravel(), minlength=f * 7).reshape(f, 7)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s1 / cnt
        sd = np.sqrt(np.maximum(s2 / cnt - m * m, 0.0))
        scale = np.where(sd > 0, sd_c / sd, 0.0)
    scale[:, 0], m[:, 0], mean_c[:, 0] = 1.0, 0.0, 0.0
    m = np.nan_to_num(m)
    img = np.where(skin, mean_c[fidx, code] + (img - m[fidx, code]) * scale[fidx, code], img)
    return img, key, cnt


def _region_means(frames32: np.ndarray, key: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Means (degC) of the stored float32 frames under the GT masks: ``(4, frame, side)`` for
    tnv, tv, tp, tsk_mean; NaN where a region is empty."""
    f = frames32.shape[0]
    out = np.full((4, f, 2), np.nan)
    s1 = np.bincount(key, frames32.astype(np.float64).ravel(), minlength=f * 7).reshape(f, 7)
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in range(2):
            for r in range(3):
                c = 1 + 3 * s + r
                out[r, :, s] = np.where(cnt[:, c] > 0, s1[:, c] / cnt[:, c], np.nan)
            cs = slice(1 + 3 * s, 4 + 3 * s)
            out[3, :, s] = s1[:, cs].sum(1) / cnt[:, cs].sum(1)
    return out


def _session_dataset(frames, roi, ves, blurred, phase, rendered, times, *, attrs: dict
                     ) -> xr.Dataset:
    """The rendered session as the Dataset :func:`render_session` documents."""
    metr = dict(units="degC")
    return xr.Dataset(
        {
            "frames": (("frame", "y", "x"), frames,
                       dict(units="degC", long_name="apparent skin temperature "
                            "(emissivity-corrected)")),
            "roi": (("frame", "y", "x"), roi,
                    {"long_name": "calf ROI", "flag_values": [0, 1, 2],
                     "flag_meanings": "background left_calf right_calf"}),
            "vessels": (("frame", "y", "x"), ves,
                        {"long_name": "vessels", "flag_values": [0, 1, 2],
                         "flag_meanings": "none vein perforator"}),
            "blurred": (("frame",), blurred, {"long_name": "motion blur applied"}),
            "gait_phase": (("frame",), phase, {"units": "rad", "long_name": "gait phase"}),
            "tnv": (("frame", "side"), rendered[0], dict(metr, long_name="rendered TNV (GT masks)")),
            "tv": (("frame", "side"), rendered[1], dict(metr, long_name="rendered TV (GT masks)")),
            "tp": (("frame", "side"), rendered[2], dict(metr, long_name="rendered TP (GT masks)")),
            "tsk_mean": (("frame", "side"), rendered[3],
                         dict(metr, long_name="rendered calf mean (GT masks)")),
        },
        coords={"time": ("frame", times, {"units": "s", "long_name": "time since exercise start"}),
                "side": list(SIDES)},
        attrs=attrs,
    )
