"""COCO keypoint dictionaries for evaluation: truth arrays and result entries.

The file reader is :func:`irtrepro.io.pose.read_coco_keypoints` (registered as kind
``pose_keypoints``, format ``coco``); it is also importable from here.
"""

from __future__ import annotations

import numpy as np

from irtrepro.io.pose import read_coco_keypoints
from irtrepro.keypoints.vocabulary import N_KEYPOINTS as _N

__all__ = ["annotations_array", "read_coco_keypoints", "to_results"]


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
