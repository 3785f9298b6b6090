"""Synthetic people with the 17 COCO keypoints, rendered as paired thermal and RGB-like frames.

An articulated 3-D stick body (capsules for limbs and trunk, a sphere for the head) is animated
by a gait model (treadmill running seen from behind, walking) or by the Timed Up and Go (TUG)
script (sit, stand, walk 3 m, turn, walk back, sit), projected by a pinhole camera and rendered
twice from the same geometry:

- **thermal**: 80x60 pixels (default), degC. Skin warm (32-34.5), clothing cooler, hair cooler
  than the face, background 19-24 with a vertical gradient; the scene is rendered at 3x, averaged
  onto the sensor pixels, blurred by the optics and given sensor noise.
- **RGB-like**: ``rgb_scale`` times the thermal resolution (default 3: 240x180), values in [0, 1],
  with random clothing colours, skin tones, textured background and cylinder shading. Nothing in
  its appearance follows from the thermal one: this is the domain gap the keypoint student
  has to bridge.

Both cameras share the optical axis (an aligned dual-sensor rig), so keypoints in RGB pixels are
thermal pixels scaled by ``rgb_scale`` (pixel centres at integer coordinates in both).

Keypoints follow the COCO order (:mod:`irtrepro.keypoints.vocabulary`) and visibility convention: ``v = 2``
visible, ``v = 1`` labelled but hidden behind a nearer body part, ``v = 0`` not labelled (then
``x = y = 0``): outside the frame, or nose/eyes of a head that faces away from the camera (from
behind their position is a guess, so they are not labelled).

Main entry points: :func:`render_running_clip` (what the study generator calls per session),
:func:`render_tug_clip`, :func:`write_coco` and :func:`clips_to_coco` (the truth as COCO
keypoints), :func:`make_paired_dataset` (training corpus; the keypoint experiment on it is
:mod:`irtrepro.synth.pose_corpus`). Clip files are written and read by :mod:`irtrepro.io.pose`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from irtrepro.errors import OptionError

# the clip file's reader and writer are io's; kept importable here under their documented names
from irtrepro.io.pose import read_pose_clip, write_coco_keypoints, write_pose_clip
from irtrepro.keypoints.vocabulary import COCO_SKELETON, KEYPOINT_NAMES

__all__ = ["Body", "Camera", "PoseClip", "clips_to_coco", "make_body", "read_pose_clip",
           "render_people_frame", "render_running_clip", "render_tug_clip", "write_coco",
           "write_pose_clip"]

THERMAL_SHAPE: tuple[int, int] = (60, 80)  # (rows, columns) of the low-resolution sensor
_SUPERSAMPLE = 3  # thermal scene rendered at 3x, then averaged onto sensor pixels

# Materials (index into the palettes).
_SKIN, _HAIR, _SHIRT, _SHORTS, _SHOE = range(5)


# --------------------------------------------------------------------------------------------
# Body and clip containers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Body:
    """Proportions (m) and appearance of one synthetic subject."""

    subject: str
    height: float
    thigh: float
    shank: float
    upper_arm: float
    forearm: float
    trunk: float
    hip_width: float
    shoulder_width: float
    head_r: float
    limb_r: float
    t_skin: float  # degC
    t_hair: float
    t_shirt: float
    t_shorts: float
    t_shoe: float
    rgb: tuple = ()  # 5 colours (skin, hair, shirt, shorts, shoe), each RGB in [0, 1]


def _subject_seed(subject: str, seed: int = 0) -> int:
    digest = hashlib.sha256(f"{subject}|{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def make_body(subject: str, *, seed: int = 0) -> Body:
    """Draw the body of ``subject``: the same id and seed give the same person every time.

    Parameters
    ----------
    subject : str
        Subject id, e.g. ``"S01"``.
    seed : int
        Corpus seed; different seeds give different people for the same id.
    """
    rng = np.random.default_rng(_subject_seed(subject, seed))
    h = float(rng.uniform(1.58, 1.92))
    skin_tone = rng.uniform(0.25, 0.95)
    rgb = (
        tuple(np.clip(np.array([0.95, 0.75, 0.6]) * skin_tone + 0.05, 0, 1)),
        tuple(rng.uniform(0.02, 0.5) * np.array([1.0, 0.8, 0.6])),
        tuple(rng.uniform(0.05, 1.0, 3)),
        tuple(rng.uniform(0.05, 0.9, 3)),
        tuple(rng.uniform(0.3, 1.0) * np.ones(3) * rng.uniform(0.7, 1.0, 3)),
    )
    return Body(
        subject=subject, height=h,
        thigh=0.245 * h * rng.uniform(0.95, 1.05), shank=0.246 * h * rng.uniform(0.95, 1.05),
        upper_arm=0.186 * h * rng.uniform(0.95, 1.05), forearm=0.16 * h * rng.uniform(0.95, 1.05),
        trunk=0.30 * h * rng.uniform(0.96, 1.04), hip_width=0.10 * h * rng.uniform(0.9, 1.15),
        shoulder_width=0.2 * h * rng.uniform(0.9, 1.1), head_r=0.062 * h * rng.uniform(0.95, 1.05),
        limb_r=0.032 * h * rng.uniform(0.85, 1.2),
        t_skin=float(rng.uniform(32.0, 34.5)), t_hair=float(rng.uniform(28.0, 31.0)),
        t_shirt=float(rng.uniform(27.0, 30.5)), t_shorts=float(rng.uniform(26.5, 30.0)),
        t_shoe=float(rng.uniform(24.0, 27.0)), rgb=rgb,
    )


@dataclass
class PoseClip:
    """A clip of paired frames with ground-truth keypoints (one person per frame).

    Attributes
    ----------
    thermal : ndarray, (n, H, W) float32
        Thermal frames, degC.
    rgb : ndarray, (n, H*s, W*s, 3) float32 or None
        RGB-like frames in [0, 1] (``s = rgb_scale``); ``None`` when not rendered.
    keypoints : ndarray, (n, 17, 3) float64
        ``x, y`` in thermal pixels (pixel centres at integers), ``v`` in {0, 1, 2}; unlabelled
        keypoints are ``(0, 0, 0)``.
    area : ndarray, (n,)
        Silhouette area in thermal pixels^2 (the COCO ``area`` that scales OKS).
    bbox : ndarray, (n, 4)
        Silhouette box ``x, y, w, h`` in thermal pixels.
    time : ndarray, (n,)
        Seconds on the session clock.
    stance : ndarray, (n, 2) bool
        True while the left / right foot is on the ground (gait truth).
    cadence : ndarray, (n,)
        True cadence, steps/min (NaN where not walking or running).
    phase : ndarray, (n,) str
        Activity phase (``run``, ``sit``, ``stand_up``, ``walk``, ``turn``, ``sit_down``).
    """

    thermal: np.ndarray
    rgb: np.ndarray | None
    keypoints: np.ndarray
    area: np.ndarray
    bbox: np.ndarray
    time: np.ndarray
    stance: np.ndarray
    cadence: np.ndarray
    phase: np.ndarray
    subject: str
    activity: str
    fps: float
    rgb_scale: int
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.thermal.shape[0])

    @property
    def keypoints_rgb(self) -> np.ndarray:
        """Keypoints in RGB pixels, ``(n, 17, 3)``; unlabelled stay ``(0, 0, 0)``."""
        kp = self.keypoints.copy()
        s = self.rgb_scale
        lab = kp[..., 2] > 0
        kp[..., :2] = np.where(lab[..., None], (kp[..., :2] + 0.5) * s - 0.5, 0.0)
        return kp


# --------------------------------------------------------------------------------------------
# Motion: joint angles per frame
# --------------------------------------------------------------------------------------------
def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gait_angles(u: np.ndarray, *, duty: float, hip_f: float, hip_b: float, knee_stance: float,
                 knee_swing: float):
    """Hip flexion and knee flexion (rad) of one leg at gait phase ``u`` in [0, 1) (0 = strike).

    During stance (``u < duty``) the thigh sweeps back linearly (the foot moves with the belt);
    during swing it comes forward smoothly while the knee folds and unfolds.
    """
    u = np.mod(u, 1.0)
    st = u < duty
    a = np.where(st, u / duty, (u - duty) / (1 - duty))
    hip = np.where(st, hip_f + (-hip_b - hip_f) * a, -hip_b + (hip_f + hip_b) * _smoothstep(a))
    knee = np.where(st, knee_stance * (0.4 + 0.6 * np.sin(np.pi * a)),
                    knee_stance * 0.4 + (knee_swing - knee_stance * 0.4)
                    * np.sin(np.pi * np.clip(a * 1.15, 0, 1)))
    return hip, knee, st


def _gait_state(n: int, cadence: np.ndarray, fps: float, *, run: bool, rng) -> dict:
    """Leg/arm angles of a gait at per-frame ``cadence`` (steps/min)."""
    stride_hz = cadence / 120.0  # one stride = two steps
    phase = np.cumsum(np.r_[0.0, stride_hz[:-1]] / fps) + rng.uniform(0, 1)
    if run:
        kw = dict(duty=rng.uniform(0.33, 0.4), hip_f=0.55, hip_b=0.35, knee_stance=0.7,
                  knee_swing=rng.uniform(1.6, 2.0))
    else:
        kw = dict(duty=0.6, hip_f=0.35, hip_b=0.2, knee_stance=0.25, knee_swing=1.05)
    hip_l, knee_l, st_l = _gait_angles(phase + 0.5, **kw)
    hip_r, knee_r, st_r = _gait_angles(phase, **kw)
    arm = 0.55 if run else 0.3
    # arms swing opposite to the legs, elbows bent (runners ~90 deg)
    sh_l, sh_r = -arm * (hip_l - 0.1), -arm * (hip_r - 0.1)
    elbow = (1.5 if run else 0.3) + 0.15 * np.sin(2 * np.pi * phase)
    bounce = (0.035 if run else 0.015) * np.cos(4 * np.pi * phase)
    return dict(hip=np.stack([hip_l, hip_r], 1), knee=np.stack([knee_l, knee_r], 1),
                shoulder=np.stack([sh_l, sh_r], 1), elbow=np.stack([elbow, elbow], 1),
                bounce=bounce, stance=np.stack([st_l, st_r], 1), lean=np.full(n, 0.12 if run else 0.04))


# --------------------------------------------------------------------------------------------
# Kinematics and projection
# --------------------------------------------------------------------------------------------
def _joints_3d(body: Body, root: np.ndarray, yaw: np.ndarray, st: dict) -> dict:
    """World positions (m) of keypoints and render points; arrays ``(n, 3)``."""
    n = root.shape[0]
    up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), (n, 3))
    fwd = np.stack([np.sin(yaw), np.zeros(n), np.cos(yaw)], 1)
    right = np.stack([np.cos(yaw), np.zeros(n), -np.sin(yaw)], 1)
    lean = st["lean"][:, None]
    trunk_up = up * np.cos(lean) + fwd * np.sin(lean)
    pelvis = root
    p = {}
    neck = pelvis + trunk_up * body.trunk
    p["neck"] = neck
    p["pelvis"] = pelvis
    head = neck + trunk_up * (0.05 * body.height) + up * body.head_r
    p["head"] = head
    p["nose"] = head + fwd * body.head_r * 0.95
    for side, sgn in (("left", -1.0), ("right", 1.0)):
        i = 0 if side == "left" else 1
        p[f"{side}_eye"] = head + fwd * body.head_r * 0.8 + up * 0.025 + sgn * right * 0.032
        p[f"{side}_ear"] = head + sgn * right * body.head_r * 0.95
        sh = neck - trunk_up * 0.03 + sgn * right * body.shoulder_width / 2
        p[f"{side}_shoulder"] = sh
        a_s = st["shoulder"][:, i][:, None]
        a_e = a_s + st["elbow"][:, i][:, None]
        el = sh + body.upper_arm * (-up * np.cos(a_s) + fwd * np.sin(a_s)) + sgn * right * 0.02
        p[f"{side}_elbow"] = el
        p[f"{side}_wrist"] = el + body.forearm * (-up * np.cos(a_e) + fwd * np.sin(a_e))
        hp = pelvis + sgn * right * body.hip_width / 2
        p[f"{side}_hip"] = hp
        a_h = st["hip"][:, i][:, None]
        a_k = a_h - st["knee"][:, i][:, None]
        kn = hp + body.thigh * (-up * np.cos(a_h) + fwd * np.sin(a_h))
        p[f"{side}_knee"] = kn
        an = kn + body.shank * (-up * np.cos(a_k) + fwd * np.sin(a_k))
        p[f"{side}_ankle"] = an
        p[f"{side}_toe"] = an + fwd * 0.16 - up * 0.04
    return p


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking along +z from ``position`` (m); focal length in thermal pixels."""

    position: tuple[float, float, float]
    focal: float
    shape: tuple[int, int] = THERMAL_SHAPE

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(..., 3)`` -> thermal pixel ``(..., 2)`` and depth ``(...)`` (m)."""
        rel = pts - np.asarray(self.position)
        z = np.maximum(rel[..., 2], 1e-3)
        h, w = self.shape
        x = self.focal * rel[..., 0] / z + (w - 1) / 2
        y = -self.focal * rel[..., 1] / z + (h - 1) / 2
        return np.stack([x, y], -1), z


# Capsules: (start, end, radius factor of limb_r, material)
_PARTS = (
    ("left_hip", "left_knee", 1.25, _SHORTS), ("right_hip", "right_knee", 1.25, _SHORTS),
    ("left_knee", "left_ankle", 0.95, _SKIN), ("right_knee", "right_ankle", 0.95, _SKIN),
    ("left_ankle", "left_toe", 0.9, _SHOE), ("right_ankle", "right_toe", 0.9, _SHOE),
    ("left_hip", "right_hip", 1.6, _SHORTS), ("pelvis", "neck", 3.2, _SHIRT),
    ("left_shoulder", "right_shoulder", 1.3, _SHIRT),
    ("left_shoulder", "left_elbow", 0.85, _SKIN), ("right_shoulder", "right_elbow", 0.85, _SKIN),
    ("left_elbow", "left_wrist", 0.75, _SKIN), ("right_elbow", "right_wrist", 0.75, _SKIN),
    ("neck", "head", 0.9, _SKIN),
)


def _render_frame(parts: list, shape: tuple[int, int], s: int, bg, *, mode: str):
    """Composite capsules far-to-near at ``s`` x resolution.

    ``parts``: list of (p0 (2,), p1 (2,), radius px, depth m, material, head face share or None,
    temps (5,), colors (5, 3)) in thermal px. ``mode`` is ``"thermal"`` (``bg`` (H, W) degC),
    ``"rgb"`` (``bg`` (H, W, 3)) or ``"cover"`` (``bg`` ignored; returns coverage in [0, 1]).
    """
    hs, ws = shape[0] * s, shape[1] * s
    out = np.zeros((hs, ws)) if mode == "cover" else bg.copy()
    for p0, p1, r, _depth, mat, head, temps, colors in sorted(parts, key=lambda q: -q[3]):
        a = (np.asarray(p0) + 0.5) * s - 0.5
        b = (np.asarray(p1) + 0.5) * s - 0.5
        rs = r * s
        x0 = int(max(0, np.floor(min(a[0], b[0]) - rs - 1)))
        x1 = int(min(ws, np.ceil(max(a[0], b[0]) + rs + 2)))
        y0 = int(max(0, np.floor(min(a[1], b[1]) - rs - 1)))
        y1 = int(min(hs, np.ceil(max(a[1], b[1]) + rs + 2)))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        ab = b - a
        # plain products, not ``@``: a BLAS dot picks a CPU-specific kernel (FMA or not), and
        # its last bits would reach the silhouette area written into the truth files
        denom = float(ab[0] * ab[0] + ab[1] * ab[1]) or 1e-9
        t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / denom, 0, 1)
        dx, dy = xx - (a[0] + t * ab[0]), yy - (a[1] + t * ab[1])
        d = np.sqrt(dx * dx + dy * dy)
        alpha = np.clip(rs - d + 0.5, 0, 1)  # anti-aliased edge, one pixel wide
        sl = (slice(y0, y1), slice(x0, x1))
        if mode == "cover":
            out[sl] = np.maximum(out[sl], alpha)
            continue
        hair = None
        if head is not None:
            # head: face where it turns to the camera, hair behind and on top
            rel = dy / max(rs, 1e-6)
            hair = (rel < (1 - 2 * head)) | (rel < -0.55)
        if mode == "thermal":
            val = np.full(d.shape, temps[mat]) if hair is None else np.where(
                hair, temps[_HAIR], temps[_SKIN])
            out[sl] = out[sl] * (1 - alpha) + alpha * val
        else:
            shade = 0.55 + 0.45 * np.sqrt(np.clip(1 - (d / max(rs, 1e-6)) ** 2, 0, 1))
            col = np.broadcast_to(colors[mat], d.shape + (3,))
            if hair is not None:
                col = np.where(hair[..., None], colors[_HAIR], colors[_SKIN])
            out[sl] = out[sl] * (1 - alpha[..., None]) + (alpha * shade)[..., None] * col
    return out


def _background(rng, shape: tuple[int, int], s: int, *, treadmill: bool):
    """Thermal background (degC, supersampled) and RGB background; both smooth + textured."""
    hs, ws = shape[0] * s, shape[1] * s
    yy, xx = np.mgrid[0:hs, 0:ws] / np.array([hs, ws])[:, None, None]
    t0 = rng.uniform(19.0, 24.0)
    bg_t = t0 + rng.uniform(-1.0, 1.0) * yy + rng.uniform(-0.6, 0.6) * xx
    c_wall = rng.uniform(0.2, 0.95, 3)
    c_floor = rng.uniform(0.1, 0.7, 3)
    fx, fy = rng.uniform(5, 30, 2)
    tex = 0.08 * np.sin(2 * np.pi * (fx * xx + rng.uniform())) * np.sin(2 * np.pi * fy * yy)
    horizon = rng.uniform(0.55, 0.75)
    floor = (yy > horizon)[..., None]
    bg_rgb = np.where(floor, c_floor, c_wall) * (0.8 + 0.3 * yy[..., None]) + tex[..., None]
    if treadmill:
        belt = (yy > 0.8) & (np.abs(xx - 0.5) < 0.3)
        bg_t = np.where(belt, bg_t + rng.uniform(0.5, 2.0), bg_t)
        bg_rgb = np.where(belt[..., None], np.array([0.1, 0.1, 0.12]), bg_rgb)
    return bg_t, np.clip(bg_rgb, 0, 1)


def _box_blur_down(a: np.ndarray, s: int) -> np.ndarray:
    h, w = a.shape[0] // s, a.shape[1] // s
    return a[: h * s, : w * s].reshape(h, s, w, s, *a.shape[2:]).mean(axis=(1, 3))


def _render_people(bodies: list[Body], kps3d: list[dict], yaws: list[np.ndarray], cam: Camera,
                   *, rgb_scale: int, rng, treadmill: bool, noise: float = 0.12,
                   render_rgb: bool = True):
    """Render frames of one or more people; returns thermal, rgb, keypoints (n, P, 17, 3),
    area (n, P), bbox (n, P, 4)."""
    from scipy.ndimage import gaussian_filter

    n = yaws[0].shape[0]
    s = _SUPERSAMPLE
    h, w = cam.shape
    bg_t, _ = _background(rng, cam.shape, s, treadmill=treadmill)
    _, bg_rgb = _background(rng, cam.shape, rgb_scale, treadmill=treadmill)
    n_p = len(bodies)
    thermal = np.empty((n, h, w), np.float32)
    rgb = np.empty((n, h * rgb_scale, w * rgb_scale, 3), np.float32) if render_rgb else None
    kps = np.zeros((n, n_p, 17, 3))
    area = np.zeros((n, n_p))
    bbox = np.zeros((n, n_p, 4))
    proj = []
    for p3 in kps3d:
        names = list(KEYPOINT_NAMES) + ["neck", "pelvis", "head", "left_toe", "right_toe"]
        pts = np.stack([p3[k] for k in names], 1)  # (n, K, 3)
        xy, z = cam.project(pts)
        proj.append((dict(zip(names, np.moveaxis(xy, 1, 0), strict=False)), dict(zip(names, z.T, strict=False))))
    blur = 0.6  # optics PSF, thermal px
    for f in range(n):
        parts_all, per_person = [], []
        for pi, body in enumerate(bodies):
            xy, z = proj[pi]
            temps = np.array([body.t_skin, body.t_hair, body.t_shirt, body.t_shorts, body.t_shoe])
            temps = temps + rng.normal(0, 0.05, 5)
            colors = np.array(body.rgb)
            parts = []
            for a, b, rf, mat in _PARTS:
                depth = 0.5 * (z[a][f] + z[b][f])
                r = body.limb_r * rf * cam.focal / depth
                parts.append((xy[a][f], xy[b][f], r, depth, mat, None, temps, colors))
            # head: how much face shows depends on the yaw (camera looks +z; yaw pi faces it)
            face_share = float(np.clip(0.5 - 0.5 * np.cos(yaws[pi][f]), 0, 1)) * 0.8
            hz = z["head"][f]
            parts.append((xy["head"][f], xy["head"][f], body.head_r * cam.focal / hz, hz - 0.01,
                          _SKIN, face_share, temps, colors))
            parts_all += parts
            per_person.append(parts)
        th = _box_blur_down(_render_frame(parts_all, cam.shape, s, bg_t, mode="thermal"), s)
        thermal[f] = gaussian_filter(th, blur) + rng.normal(0, noise, th.shape)
        if render_rgb:
            im = _render_frame(parts_all, cam.shape, rgb_scale, bg_rgb, mode="rgb")
            im = im * rng.uniform(0.85, 1.15) + rng.normal(0, 0.02, im.shape)
            rgb[f] = np.clip(im, 0, 1)
        # per-person silhouettes (area, box), keypoints and visibility
        for pi, parts in enumerate(per_person):
            sil = _box_blur_down(_render_frame(parts, cam.shape, s, None, mode="cover"), s)
            area[f, pi] = float(sil.sum())
            ys, xs = np.nonzero(sil > 0.5)
            if xs.size:
                bbox[f, pi] = [xs.min() - 0.5, ys.min() - 0.5, xs.max() - xs.min() + 1,
                               ys.max() - ys.min() + 1]
            xy, z = proj[pi]
            for k, name in enumerate(KEYPOINT_NAMES):
                x, y = xy[name][f]
                v = 2
                if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5):
                    v = 0
                elif name in ("nose", "left_eye", "right_eye") and np.cos(yaws[pi][f]) > 0.2:
                    v = 0  # face turned away: position not observable, not labelled
                elif _occluded(xy, z, f, name, parts):
                    v = 1
                kps[f, pi, k] = (x, y, v) if v else (0.0, 0.0, 0.0)
    return thermal, rgb, kps, area, bbox


_OWN_PARTS = {
    name: {i for i, (a, b, _r, _m) in enumerate(_PARTS) if name in (a, b)} for name in KEYPOINT_NAMES
}


def _occluded(xy: dict, z: dict, f: int, name: str, parts: list) -> bool:
    """True if the keypoint lies inside a capsule clearly nearer to the camera than itself."""
    p = np.asarray(xy[name][f])
    zk = z[name][f]
    for i, (a, b, r, depth, _mat, head, _t, _c) in enumerate(parts):
        if i in _OWN_PARTS.get(name, ()) or head is not None or depth > zk - 0.08:
            continue
        a, b = np.asarray(a), np.asarray(b)
        ab = b - a
        d = p - a
        t = np.clip((d[0] * ab[0] + d[1] * ab[1]) / (ab[0] * ab[0] + ab[1] * ab[1] + 1e-9), 0, 1)
        if np.hypot(*(p - (a + t * ab))) < r * 0.8:
            return True
    return False


# --------------------------------------------------------------------------------------------
# Public generators
# --------------------------------------------------------------------------------------------
def _as_cadence(cadence, n: int) -> np.ndarray:
    c = np.asarray(cadence, float)
    c = np.full(n, float(c)) if c.ndim == 0 else c
    if c.shape != (n,):
        raise OptionError(f"cadence has shape {c.shape}; expected a scalar or ({n},) steps/min")
    if not np.all(np.isfinite(c)) or np.any(c <= 0) or np.any(c > 300):
        raise OptionError("cadence must be finite, in (0, 300] steps/min")
    return c


def render_running_clip(cadence, speed: float = 10.0, *, n_frames: int = 150, fps: float = 15.0,
                        seed: int = 0, subject_id: str = "S01", t0: float = 0.0,
                        body_seed: int = 0, rgb: bool = True, rgb_scale: int = 3,
                        noise: float = 0.12) -> PoseClip:
    """Render a runner on a treadmill seen from behind.

    Parameters
    ----------
    cadence : float or array (n_frames,)
        Steps per minute (both feet; a stride is two steps). An array gives one value per frame
        (the gait phase integrates it, so cadence may drift during the clip).
    speed : float
        Treadmill speed, km/h; it scales the stride amplitude and the trunk lean a little.
    n_frames, fps : int, float
        Clip length (frames) and frame rate (Hz).
    seed : int
        Seed of everything that varies between clips (camera, background, noise, gait phase).
    subject_id : str
        The same id (with the same ``body_seed``) gives the same body and clothes.
    t0 : float
        Time of the first frame on the session clock, s.
    rgb : bool
        Also render the paired RGB-like frames (``False`` saves time for thermal-only clips).

    Returns
    -------
    PoseClip
        ``activity = "run"``; ``cadence`` holds the truth per frame.
    """
    if n_frames < 1 or fps <= 0:
        raise OptionError(f"n_frames={n_frames}, fps={fps}; expected n_frames >= 1 and fps > 0")
    c = _as_cadence(cadence, n_frames)
    rng = np.random.default_rng(seed)
    body = make_body(subject_id, seed=body_seed)
    st = _gait_state(n_frames, c, fps, run=True, rng=rng)
    gain = float(np.clip(speed / 10.0, 0.6, 1.6)) ** 0.5
    st["hip"] = st["hip"] * gain
    st["lean"] = st["lean"] * gain
    leg = body.thigh + body.shank
    root = np.zeros((n_frames, 3))
    root[:, 1] = leg * 0.97 + 0.07 + st["bounce"]
    root[:, 0] = 0.03 * np.sin(2 * np.pi * np.arange(n_frames) / fps * 0.2 + rng.uniform(0, 6))
    yaw = np.full(n_frames, rng.normal(0, 0.05))  # facing away from the camera
    cam = Camera((rng.normal(0, 0.05), rng.uniform(0.85, 1.05), -rng.uniform(2.9, 3.4)),
                 focal=rng.uniform(80, 90))
    p3 = _joints_3d(body, root, yaw, st)
    th, im, kp, area, bbox = _render_people([body], [p3], [yaw], cam, rgb_scale=rgb_scale,
                                            rng=rng, treadmill=True, noise=noise, render_rgb=rgb)
    return PoseClip(thermal=th, rgb=im, keypoints=kp[:, 0], area=area[:, 0], bbox=bbox[:, 0],
                    time=t0 + np.arange(n_frames) / fps, stance=st["stance"], cadence=c,
                    phase=np.full(n_frames, "run", dtype=object), subject=subject_id,
                    activity="run", fps=float(fps), rgb_scale=rgb_scale,
                    attrs={"speed_kmh": float(speed), "seed": seed, "view": "behind"})


def render_tug_clip(*, fps: float = 15.0, seed: int = 0, subject_id: str = "S01",
                    body_seed: int = 0, walk_speed: float = 1.1, rgb: bool = True,
                    rgb_scale: int = 3, noise: float = 0.12) -> PoseClip:
    """Render a Timed Up and Go test seen from the side.

    Sit (1 s), stand up, walk 3 m, turn 180 deg, walk back, turn, sit down; the camera looks at
    the walking line from the side, so the person turns from profile to front/back views.

    Parameters
    ----------
    walk_speed : float
        Walking speed, m/s (sets the durations of the walking phases).
    """
    rng = np.random.default_rng(seed)
    body = make_body(subject_id, seed=body_seed)
    walk_t = 3.0 / walk_speed
    durs = [("sit", 1.0), ("stand_up", 1.3), ("walk", walk_t), ("turn", 1.2),
            ("walk", walk_t), ("turn", 1.0), ("sit_down", 1.5), ("sit", 0.7)]
    labels, tloc = [], []
    for name, d in durs:
        k = max(1, int(round(d * fps)))
        labels += [name] * k
        tloc += list(np.arange(k) / k)
    n = len(labels)
    labels = np.array(labels, dtype=object)
    tloc = np.array(tloc)
    cad = np.full(n, rng.uniform(100, 118))
    g = _gait_state(n, cad, fps, run=False, rng=rng)
    walking = labels == "walk"
    leg = body.thigh + body.shank
    stand_h = leg * 0.98 + 0.07
    sit_h = 0.47 + 0.02
    # sitting: hips and knees at 90 deg, trunk slightly back
    sit_w = np.zeros(n)
    sit_w[labels == "sit"] = 1
    sit_w[labels == "stand_up"] = 1 - _smoothstep(tloc[labels == "stand_up"])
    sit_w[labels == "sit_down"] = _smoothstep(tloc[labels == "sit_down"])
    trans = (labels == "stand_up") | (labels == "sit_down")
    w_gait = walking.astype(float)
    st = {}
    for key in ("hip", "knee", "shoulder", "elbow"):
        st[key] = g[key] * w_gait[:, None]
    st["hip"] = st["hip"] + sit_w[:, None] * 1.55
    st["knee"] = st["knee"] + sit_w[:, None] * 1.6
    st["elbow"] = st["elbow"] + sit_w[:, None] * 0.6 + 0.15
    st["shoulder"] = st["shoulder"] + sit_w[:, None] * 0.4
    st["lean"] = 0.05 + 0.5 * np.sin(np.pi * np.where(trans, tloc, 0)) * trans - 0.05 * sit_w
    # position along the walking line (x, m) and heading: each turn is 180 deg
    x = np.zeros(n)
    yaw = np.zeros(n)
    pos, head = -1.5, np.pi / 2  # start facing +x
    n_turn = {}
    bounds = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    seg_len = np.diff(np.r_[bounds, n])
    for b0, ln in zip(bounds, seg_len, strict=False):
        n_turn[b0] = ln
    cur = 0
    for i in range(n):
        if i in n_turn:
            cur = n_turn[i]
        if labels[i] == "walk":
            pos += np.sign(np.sin(head)) * walk_speed / fps
        elif labels[i] == "turn":
            head += np.pi / cur
        x[i] = pos
        yaw[i] = head
    root = np.zeros((n, 3))
    root[:, 0] = x
    root[:, 2] = 0.0
    root[:, 1] = stand_h * (1 - sit_w) + sit_h * sit_w + g["bounce"] * w_gait
    # seated pelvis sits back on the chair: shift it against the heading
    cam = Camera((rng.normal(0, 0.1), rng.uniform(0.9, 1.1), -rng.uniform(4.2, 4.8)),
                 focal=rng.uniform(80, 90))
    p3 = _joints_3d(body, root, yaw, st)
    th, im, kp, area, bbox = _render_people([body], [p3], [yaw], cam, rgb_scale=rgb_scale,
                                            rng=rng, treadmill=False, noise=noise,
                                            render_rgb=rgb)
    stance = g["stance"] & walking[:, None]
    stance |= ~walking[:, None] & (sit_w[:, None] < 0.5)
    return PoseClip(thermal=th, rgb=im, keypoints=kp[:, 0], area=area[:, 0], bbox=bbox[:, 0],
                    time=np.arange(n) / fps, stance=stance,
                    cadence=np.where(walking, cad, np.nan), phase=labels, subject=subject_id,
                    activity="tug", fps=float(fps), rgb_scale=rgb_scale,
                    attrs={"seed": seed, "view": "side", "walk_speed_ms": walk_speed})


def render_people_frame(subjects: list[str], offsets_m: list[float], *, seed: int = 0,
                        rgb: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One thermal frame with several standing people side by side (detector tests).

    Returns the thermal frame ``(H, W)`` in degC and keypoints ``(P, 17, 3)``.
    """
    rng = np.random.default_rng(seed)
    bodies = [make_body(s) for s in subjects]
    cam = Camera((0.0, 0.95, -3.6), focal=85.0)
    p3s, yaws = [], []
    for body, off in zip(bodies, offsets_m, strict=False):
        st = _gait_state(1, np.array([100.0]), 15.0, run=False, rng=rng)
        root = np.array([[off, body.thigh + body.shank + 0.07, 0.0]])
        yaw = np.array([np.pi])
        p3s.append(_joints_3d(body, root, yaw, st))
        yaws.append(yaw)
    th, _, kp, _, _ = _render_people(bodies, p3s, yaws, cam, rgb_scale=2, rng=rng,
                                     treadmill=False, render_rgb=rgb)
    return th[0], kp[0]


def make_paired_dataset(subjects: list[str], *, frames_per_subject: int = 300, fps: float = 10.0,
                        tug_share: float = 0.3, seed: int = 0, rgb_scale: int = 3,
                        progress: bool | None = None) -> list[PoseClip]:
    """A training/evaluation corpus: per subject several running clips and TUG clips.

    Running clips draw a cadence in 150-185 steps/min and a speed in 8-16 km/h; each clip has
    its own camera, background and noise. Frames are paired (thermal + RGB, same keypoints).

    Returns
    -------
    list of PoseClip
        Clips in subject order; ``sum(len(c)) ~= len(subjects) * frames_per_subject``.
    """
    from irtrepro._logging import progress_bar

    clips = []
    rng = np.random.default_rng(seed)
    for subj in progress_bar(subjects, progress, desc="render pose"):
        n_tug = int(round(frames_per_subject * tug_share))
        n_run = frames_per_subject - n_tug
        got = 0
        while got < n_tug:
            c = render_tug_clip(fps=fps * 0.5, seed=int(rng.integers(2**31)), subject_id=subj,
                                body_seed=seed, walk_speed=float(rng.uniform(0.9, 1.4)),
                                rgb_scale=rgb_scale)
            take = min(len(c), n_tug - got)
            clips.append(_slice_clip(c, slice(0, take)))
            got += take
        got = 0
        while got < n_run:
            k = min(60, n_run - got)
            clips.append(render_running_clip(float(rng.uniform(150, 185)),
                                             float(rng.uniform(8, 16)), n_frames=k, fps=fps,
                                             seed=int(rng.integers(2**31)), subject_id=subj,
                                             body_seed=seed, rgb_scale=rgb_scale))
            got += k
    return clips


def _slice_clip(c: PoseClip, sl: slice) -> PoseClip:
    return PoseClip(thermal=c.thermal[sl], rgb=None if c.rgb is None else c.rgb[sl],
                    keypoints=c.keypoints[sl], area=c.area[sl], bbox=c.bbox[sl], time=c.time[sl],
                    stance=c.stance[sl], cadence=c.cadence[sl], phase=c.phase[sl],
                    subject=c.subject, activity=c.activity, fps=c.fps, rgb_scale=c.rgb_scale,
                    attrs=dict(c.attrs))


# --------------------------------------------------------------------------------------------
# Ground truth as COCO keypoints
# --------------------------------------------------------------------------------------------
# Decimals of the floats written into the COCO truth: 1e-3 px (and px^2) and 1e-6 s are far
# finer than any keypoint error or frame interval, and coarse enough that the last bits of a
# float (which differ between CPUs and library versions) never reach the file.
PIXEL_DECIMALS = 3
TIME_DECIMALS = 6


def _fixed(value, decimals: int) -> float:
    """``value`` rounded to ``decimals``, with -0.0 written as 0.0."""
    return round(float(value), decimals) + 0.0


def clips_to_coco(clips: list[PoseClip], *, image_prefix: str = "") -> dict:
    """COCO keypoint dictionary (``images``, ``annotations``, ``categories``) of thermal frames.

    Image ids run over all frames of all clips; file names are ``{prefix}{clip:03d}_{frame:05d}``.
    Each annotation carries ``keypoints`` (51 numbers, thermal px), ``num_keypoints``, ``area``
    (silhouette, px^2), ``bbox``, ``iscrowd = 0`` and the extension fields ``subject``,
    ``activity``, ``time`` (s), ``clip``. Frames where no keypoint is labelled get no annotation.
    Pixel values are rounded to 1e-3 px (``PIXEL_DECIMALS``), times to 1e-6 s
    (``TIME_DECIMALS``), so that the file's bytes do not depend on the machine.
    """
    images, anns = [], []
    img_id = ann_id = 0
    for ci, c in enumerate(clips):
        h, w = c.thermal.shape[1:]
        for f in range(len(c)):
            img_id += 1
            images.append({"id": img_id, "file_name": f"{image_prefix}{ci:03d}_{f:05d}",
                           "width": int(w), "height": int(h), "subject": c.subject,
                           "time": _fixed(c.time[f], TIME_DECIMALS), "clip": ci})
            kp = c.keypoints[f]
            nk = int(np.sum(kp[:, 2] > 0))
            if nk == 0:
                continue
            ann_id += 1
            anns.append({"id": ann_id, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                         "keypoints": [_fixed(v, PIXEL_DECIMALS) for v in kp.reshape(-1)],
                         "num_keypoints": nk, "area": _fixed(c.area[f], PIXEL_DECIMALS),
                         "bbox": [_fixed(v, PIXEL_DECIMALS) for v in c.bbox[f]],
                         "subject": c.subject, "activity": c.activity,
                         "time": _fixed(c.time[f], TIME_DECIMALS), "clip": ci})
    cats = [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(KEYPOINT_NAMES), "skeleton": COCO_SKELETON}]
    return {"info": {"description": "irtrepro synthetic pose truth (thermal pixels)"},
            "images": images, "annotations": anns, "categories": cats}


def write_coco(path: str | os.PathLike, clips: PoseClip | list[PoseClip], **kwargs) -> Path:
    """Write :func:`clips_to_coco` of one clip or a list of clips as JSON, atomically."""
    if isinstance(clips, PoseClip):
        clips = [clips]
    return write_coco_keypoints(path, clips_to_coco(clips, **kwargs))
