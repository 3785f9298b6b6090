"""Pose recordings and their keypoint annotations: clip ``.npz`` files and COCO keypoint JSON.

A pose clip is a short thermal recording of one moving person, stored as a compressed ``.npz``
(:func:`write_pose_clip`): ``thermal`` ``(frame, y, x)`` float32 degC, ``time`` (s on the
session clock), optional ``rgb`` ``(frame, h, w, 3)`` uint8 from a paired RGB camera, and the
clip's attributes as JSON in ``meta`` (``fps`` Hz, ``subject``, ``activity``, ...). It holds no
keypoints, so it looks like a camera export; keypoint labels are a separate COCO keypoint file
(:func:`read_coco_keypoints`), whether a lab's annotation tool or the generator wrote it.

Readers registered here: kind ``pose`` format ``npz`` (:func:`read_pose_clip`) and kind
``pose_keypoints`` format ``coco`` (:func:`read_coco_keypoints`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from irtrepro._atomic import atomic_path
from irtrepro.errors import ReaderError
from irtrepro.io.registry import register

__all__ = ["read_coco_keypoints", "read_pose_clip", "write_coco_keypoints", "write_pose_clip"]

#: Keypoints per person in a COCO keypoint file (the 17 COCO joints).
_N = 17


# --------------------------------------------------------------------------------------------
# pose clips (.npz)
# --------------------------------------------------------------------------------------------
def write_pose_clip(path: str | os.PathLike, clip, *, include_rgb: bool = False) -> Path:
    """Write the thermal frames of a clip (and optionally RGB) to a compressed ``.npz``.

    Parameters
    ----------
    path : path-like
        Target ``.npz`` file; written atomically.
    clip : object
        Anything with ``thermal`` ``(n, H, W)`` degC, ``time`` ``(n,)`` s, ``fps`` Hz,
        ``subject``, ``activity``, ``rgb_scale``, ``attrs`` (dict) and ``rgb``
        ``(n, h, w, 3)`` in [0, 1] or ``None`` (e.g. a synthetic ``PoseClip``).
    include_rgb : bool
        Also store the RGB frames (as uint8).

    Notes
    -----
    Arrays: ``thermal`` (frame, y, x) float32 degC, ``time`` (s, session clock); attributes as
    JSON in ``meta``. Keypoints are NOT stored here (see :func:`write_coco_keypoints`).
    """
    path = Path(path)
    meta = {"subject": clip.subject, "activity": clip.activity, "fps": clip.fps,
            "units": "degC", "rgb_scale": clip.rgb_scale, **clip.attrs}
    arrays = {"thermal": clip.thermal.astype(np.float32), "time": clip.time.astype(np.float64),
              "meta": np.array(json.dumps(meta))}
    if include_rgb and clip.rgb is not None:
        arrays["rgb"] = (clip.rgb * 255 + 0.5).astype(np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def _sniff_pose_npz(head: bytes, path: Path) -> bool:
    # a zip whose first member is thermal.npy: the layout write_pose_clip produces
    return head.startswith(b"PK\x03\x04") and b"thermal.npy" in head[:80]


@register("pose", "npz", extensions=(".npz",), sniff=_sniff_pose_npz)
def read_pose_clip(path: str | os.PathLike) -> dict:
    """Read a pose clip written by :func:`write_pose_clip` (or laid out like one).

    Returns
    -------
    dict
        ``thermal`` (n, H, W) float32 degC, ``time`` (n,) s, ``fps`` Hz, ``meta`` dict and
        ``rgb`` (n, h, w, 3) float32 in [0, 1] when stored.

    Raises
    ------
    ReaderError
        Not an ``.npz``, an array missing, or ``thermal`` not ``(frame, y, x)`` matching
        ``time`` (naming the file).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ReaderError(f"{path}: not a pose clip .npz ({exc})") from exc
    for key in ("thermal", "time", "meta"):
        if key not in out:
            raise ReaderError(f"{path}: pose clip lacks the array {key!r}")
    th = out["thermal"]
    if th.ndim != 3 or th.shape[0] != out["time"].shape[0]:
        raise ReaderError(f"{path}: 'thermal' has shape {th.shape}; expected (frame, y, x) with "
                          f"{out['time'].shape[0]} frames like 'time'")
    meta = json.loads(str(out["meta"]))
    res = {"thermal": th.astype(np.float32), "time": out["time"].astype(float),
           "fps": float(meta.get("fps", np.nan)), "meta": meta}
    if "rgb" in out:
        res["rgb"] = out["rgb"].astype(np.float32) / 255.0
    return res


# --------------------------------------------------------------------------------------------
# COCO keypoint files (.json)
# --------------------------------------------------------------------------------------------
def write_coco_keypoints(path: str | os.PathLike, coco: dict) -> Path:
    """Write a COCO keypoint dictionary (``images``, ``annotations``, ``categories``) as JSON.

    Written atomically, compact (``json.dumps`` defaults), so the same dictionary always gives
    the same bytes.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(coco))
    return path


def _sniff_coco_keypoints(head: bytes, path: Path) -> bool:
    return head.lstrip().startswith(b"{") and b'"keypoints"' in head and b'"images"' in head


@register("pose_keypoints", "coco", extensions=(".json",), sniff=_sniff_coco_keypoints)
def read_coco_keypoints(path: str | os.PathLike) -> dict:
    """Read a COCO keypoint annotation file and check what the evaluation needs.

    Required: ``images`` (each with ``id``), ``annotations`` (each with ``id``, ``image_id``,
    ``keypoints`` of 17 * 3 numbers with ``v`` in {0, 1, 2}, and ``area`` or ``bbox``),
    ``categories`` with 17 ``keypoints`` names. A missing ``area`` is taken from the ``bbox``
    (w * h, px^2) and flagged in ``dataset["irtrepro_notes"]``; nothing else is filled in.

    Raises
    ------
    ReaderError
        Naming the file, the entry (index and id) and the missing or malformed field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ReaderError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise ReaderError(f"{path}: top level is {type(data).__name__}; expected a COCO object")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ReaderError(f"{path}: missing field {key!r} (COCO keypoint files need images, "
                              "annotations and categories)")
    cats = data["categories"]
    if not cats or "keypoints" not in cats[0]:
        raise ReaderError(f"{path}: categories[0] lacks 'keypoints' (the 17 COCO names)")
    if len(cats[0]["keypoints"]) != _N:
        raise ReaderError(f"{path}: categories[0].keypoints has {len(cats[0]['keypoints'])} "
                          f"names; expected {_N}")
    img_ids = set()
    for i, im in enumerate(data["images"]):
        if "id" not in im:
            raise ReaderError(f"{path}: images[{i}] lacks 'id'")
        img_ids.add(im["id"])
    notes = []
    for i, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}] (id {a.get('id', '?')})"
        for key in ("id", "image_id", "keypoints"):
            if key not in a:
                raise ReaderError(f"{where} lacks {key!r}")
        if a["image_id"] not in img_ids:
            raise ReaderError(f"{where}: image_id {a['image_id']} is not in images")
        kp = np.asarray(a["keypoints"], float)
        if kp.shape != (3 * _N,) or not np.all(np.isfinite(kp)):
            raise ReaderError(f"{where}: 'keypoints' has {kp.size} values; expected {3 * _N} "
                              "finite numbers (x, y, v per keypoint)")
        v = kp[2::3]
        if not np.all(np.isin(v, (0, 1, 2))):
            raise ReaderError(f"{where}: visibility flags {sorted(set(v.tolist()))}; "
                              "expected 0, 1 or 2")
        if "area" not in a:
            if "bbox" not in a:
                raise ReaderError(f"{where} lacks both 'area' and 'bbox' (OKS needs the scale)")
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
            notes.append(f"annotations[{i}]: area taken from bbox")
        a.setdefault("num_keypoints", int(np.sum(v > 0)))
        a.setdefault("iscrowd", 0)
        a.setdefault("category_id", cats[0].get("id", 1))
    data["irtrepro_notes"] = notes
    return data
