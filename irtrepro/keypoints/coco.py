"""Read and validate COCO keypoint files (user data and the synthetic truth)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from irtrepro.errors import ReaderError

_N = 17


def read_coco_keypoints(path: str | os.PathLike) -> dict:
    """Read a COCO keypoint annotation file and check what the evaluation needs.

    Required: ``images`` (each with ``id``), ``annotations`` (each with ``id``, ``image_id``,
    ``keypoints`` of 17 * 3 numbers with ``v`` in {0, 1, 2}, and ``area`` or ``bbox``),
    ``categories`` with 17 ``keypoints`` names. A missing ``area`` is taken from the ``bbox``
    (w * h) and flagged in ``dataset["irtrepro_notes"]``; nothing else is filled in.

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


def annotations_array(coco: dict) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(n_ann, 17, 3)`` and image ids ``(n_ann,)`` of a COCO dict."""
    anns = coco["annotations"]
    kp = np.array([a["keypoints"] for a in anns], float).reshape(-1, _N, 3)
    return kp, np.array([a["image_id"] for a in anns])


def to_results(image_ids, keypoints: np.ndarray, scores: np.ndarray) -> list[dict]:
    """COCO result entries; rows whose keypoints are all NaN (no person found) are dropped."""
    out = []
    for iid, kp, sc in zip(image_ids, keypoints, scores, strict=False):
        kp = np.asarray(kp, float)
        if not np.isfinite(kp[:, :2]).any():
            continue
        k3 = np.concatenate([np.nan_to_num(kp[:, :2]), np.ones((_N, 1))], 1)
        out.append({"image_id": int(iid), "category_id": 1,
                    "keypoints": [float(v) for v in k3.reshape(-1)], "score": float(sc)})
    return out
