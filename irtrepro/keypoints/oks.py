"""Object Keypoint Similarity and COCO keypoint AP.

OKS (COCO): for ground-truth keypoints with ``v > 0``::

    OKS = mean_i exp(-d_i^2 / (2 * s^2 * k_i^2)),   k_i = 2 * sigma_i,   s^2 = area

with ``d_i`` the distance (px) between prediction and truth, ``area`` the object's segment area
(px^2) and the 17 COCO sigmas (:data:`COCO_SIGMAS`). AP averages precision over OKS thresholds
0.50:0.05:0.95 (AP50, AP75 at one threshold), computed by ``pycocotools.cocoeval.COCOeval`` with
``iouType="keypoints"``.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

from irtrepro.keypoints.vocabulary import COCO_SIGMAS


def oks(gt: np.ndarray, pred: np.ndarray, area: float, *, sigmas: np.ndarray = COCO_SIGMAS) -> float:
    """OKS of one prediction against one annotation.

    Parameters
    ----------
    gt : ndarray (17, 3)
        ``x, y, v`` (px); keypoints with ``v = 0`` are ignored.
    pred : ndarray (17, 2) or (17, 3)
        Predicted ``x, y`` (px).
    area : float
        Object area, px^2.

    Returns
    -------
    float
        OKS in [0, 1]; NaN when no keypoint is labelled (COCO then falls back to the box).
    """
    gt = np.asarray(gt, float)
    pred = np.asarray(pred, float)[:, :2]
    vis = gt[:, 2] > 0
    if not vis.any():
        return float("nan")
    d2 = ((gt[:, :2] - pred) ** 2).sum(1)
    k2 = (2 * sigmas) ** 2
    # pycocotools adds np.spacing(1) to the area; kept for identical numbers
    e = d2 / (2 * (area + np.spacing(1)) * k2)
    return float(np.mean(np.exp(-e[vis])))


def coco_keypoint_ap(gt_coco: dict, results: list[dict]) -> dict:
    """COCO keypoint AP, AP50, AP75 (and AR) of ``results`` on ``gt_coco`` via pycocotools.

    Parameters
    ----------
    gt_coco : dict
        COCO keypoint dataset (``images``, ``annotations``, ``categories``).
    results : list of dict
        ``{"image_id", "category_id", "keypoints" (51 numbers), "score"}``; an image with no
        result counts as a miss.

    Returns
    -------
    dict
        ``AP``, ``AP50``, ``AP75``, ``AR``, ``n_gt``, ``n_det``; NaN where pycocotools has none.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    n_gt = len(gt_coco.get("annotations", []))
    out = {"AP": np.nan, "AP50": np.nan, "AP75": np.nan, "AR": np.nan, "n_gt": n_gt,
           "n_det": len(results)}
    if n_gt == 0:
        return out
    gt = copy.deepcopy(gt_coco)
    for a in gt["annotations"]:
        a.setdefault("iscrowd", 0)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        if not results:
            return {**out, "AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR": 0.0}
        cd = cg.loadRes(copy.deepcopy(results))
        ev = COCOeval(cg, cd, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    out.update(AP=float(s[0]), AP50=float(s[1]), AP75=float(s[2]), AR=float(s[5]))
    return out
