"""Segmentation quality per class, metric error from segmentation, robustness under
perturbations, COCO mask reading."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from irtrepro.errors import ReaderError

ROI_LABELS = {1: "left_calf", 2: "right_calf"}
VESSEL_LABELS = {1: "vein", 2: "perforator"}

#: metrics whose segmentation-caused error the report tables (name -> units)
ERROR_METRICS = {"calf_mean": "degC", "tnv_mean": "degC", "tp_mean": "degC", "tv_mean": "degC",
                 "tp_entropy": "bit", "tnv_entropy": "bit"}

#: error_to_sd at or above which the report warns that a metric's time course is dominated by
#: segmentation error (median per-frame error >= half the metric's within-session SD).
ATTENUATION_WARN = 0.5


def error_metric_values(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray, *,
                        compute: Callable | None = None) -> dict[str, np.ndarray]:
    """Per-frame values of the :data:`ERROR_METRICS` metrics under one pair of masks.

    Parameters
    ----------
    frames : ndarray (frame, y, x)
        Temperatures (degC).
    roi, vessels : ndarray (frame, y, x)
        Masks.
    compute : callable, optional
        :func:`irtrepro.features.compute_features` (the default) or a stand-in.

    Returns
    -------
    dict
        ``{metric: ndarray (frame, 2)}``, left and right calf, in the metric's units. Values
        are per frame, so the values of a session's chunks, concatenated, are the session's
        (to float rounding: region sums run over the crop box of the frames passed).
    """
    if compute is None:
        from irtrepro.features import compute_features as compute
    names = list(ERROR_METRICS)
    ds = compute(frames, roi, vessels, features=names)
    return {n: ds[n].sel(side=["left", "right"]).values for n in names}


def metric_errors_from_values(predicted: dict[str, np.ndarray],
                              truth: dict[str, np.ndarray]) -> list[dict]:
    """:func:`metric_errors` from per-frame values (:func:`error_metric_values`) of a session.

    Parameters
    ----------
    predicted, truth : dict
        ``{metric: ndarray (frame, 2)}`` under predicted and under ground-truth masks.
    """
    rows = []
    for n in ERROR_METRICS:
        gt = truth[n]
        d = np.abs(predicted[n] - gt).ravel()
        # a time-course correlation survives only if the segmentation error is small
        # against the metric's own movement within the session
        with warnings.catch_warnings():  # a calf without that region: NaN SD
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(gt, axis=0, ddof=1) if len(gt) > 2 else np.full(2, np.nan)
        rows.append({"metric": n, "errors": d[np.isfinite(d)], "sd": sd[np.isfinite(sd)]})
    return rows


def metric_errors(frames: np.ndarray, roi_pred: np.ndarray, vessels_pred: np.ndarray,
                  roi_true: np.ndarray, vessels_true: np.ndarray, *,
                  compute: Callable | None = None) -> list[dict]:
    """Per-frame error of each :data:`ERROR_METRICS` metric of one session from segmentation.

    Parameters
    ----------
    frames : ndarray (frame, y, x)
        Temperatures (degC).
    roi_pred, vessels_pred, roi_true, vessels_true : ndarray (frame, y, x)
        Predicted and ground-truth masks.
    compute : callable, optional
        :func:`irtrepro.features.compute_features` (the default) or a stand-in.

    Returns
    -------
    list of dict
        One per metric: ``metric``, ``errors`` (finite absolute differences per frame and
        calf, predicted vs ground-truth masks) and ``sd`` (finite SDs over the frames of each
        calf under ground-truth masks: how much the metric itself moves within the session,
        the yardstick for the error), in the metric's units.
    """
    return metric_errors_from_values(
        error_metric_values(frames, roi_pred, vessels_pred, compute=compute),
        error_metric_values(frames, roi_true, vessels_true, compute=compute))


def metric_error_table(err_rows: list[dict]) -> pd.DataFrame:
    """Segmentation-induced metric error against the metric's own within-session variation.

    Parameters
    ----------
    err_rows : list of dict
        One per held-out session and metric: ``metric``, ``errors`` (absolute per-frame,
        per-calf differences, predicted vs ground-truth masks) and ``sd`` (SD over the frames
        of each calf under ground-truth masks), in the metric's units (:func:`metric_errors`).

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``median_abs_error``, ``p95_abs_error``, ``n`` (frame-calves),
        ``within_session_sd`` (median over session-calves), ``error_to_sd`` (ratio of the two),
        ``units``; NaN where a metric had no finite value.
    """
    rows = []
    for n, units in ERROR_METRICS.items():
        mine = [r for r in err_rows if r["metric"] == n]
        d = np.concatenate([r["errors"] for r in mine]) if mine else np.array([])
        sd = np.concatenate([r["sd"] for r in mine]) if mine else np.array([])
        med = float(np.median(d)) if d.size else np.nan
        wsd = float(np.median(sd)) if sd.size else np.nan
        rows.append({"metric": n, "median_abs_error": med,
                     "p95_abs_error": float(np.percentile(d, 95)) if d.size else np.nan,
                     "n": int(d.size), "within_session_sd": wsd,
                     "error_to_sd": med / wsd if wsd > 0 else np.nan, "units": units})
    return pd.DataFrame(rows)


def _labels(labels: dict[int, str] | Sequence[int]) -> dict[int, str]:
    return labels if isinstance(labels, dict) else {int(k): str(k) for k in labels}


def segmentation_counts(mask_true: np.ndarray, mask_pred: np.ndarray, *,
                        labels: dict[int, str] | Sequence[int] = ROI_LABELS) -> np.ndarray:
    """Pixel counts behind :func:`segmentation_scores`, to be summed over chunks of frames.

    Parameters
    ----------
    mask_true, mask_pred : ndarray of int, same shape
        Ground truth first, prediction second.
    labels : dict or sequence
        Label values counted.

    Returns
    -------
    ndarray (label, 3) of int64
        Per label: true positives, pixels in the truth, pixels in the prediction.
    """
    t = np.asarray(mask_true)
    p = np.asarray(mask_pred)
    if t.shape != p.shape:
        raise ValueError(f"mask_true {t.shape} and mask_pred {p.shape} differ in shape")
    out = np.zeros((len(_labels(labels)), 3), np.int64)
    for i, lab in enumerate(_labels(labels)):
        tt, pp = t == lab, p == lab
        out[i] = (tt & pp).sum(), tt.sum(), pp.sum()
    return out


def scores_from_counts(counts: np.ndarray, *,
                       labels: dict[int, str] | Sequence[int] = ROI_LABELS) -> pd.DataFrame:
    """:func:`segmentation_scores` from pixel counts (:func:`segmentation_counts`, summed)."""
    rows = []
    for (lab, name), (tp, nt, npred) in zip(_labels(labels).items(), np.asarray(counts, float),
                                            strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = tp / npred if npred else np.nan
            rec = tp / nt if nt else np.nan
            dice = 2 * tp / (nt + npred) if (nt + npred) else np.nan
            iou = tp / (nt + npred - tp) if (nt + npred) else np.nan
        rows.append({"label": lab, "name": name, "dice": dice, "iou": iou, "precision": prec,
                     "recall": rec, "f1": dice, "n_true": int(nt), "n_pred": int(npred)})
    return pd.DataFrame(rows)


def segmentation_scores(mask_true: np.ndarray, mask_pred: np.ndarray, *,
                        labels: dict[int, str] | Sequence[int] = ROI_LABELS) -> pd.DataFrame:
    """Per-class Dice, IoU, precision, recall and F1, pooled over all pixels given.

    Parameters
    ----------
    mask_true, mask_pred : ndarray of int, same shape
        Ground truth first, prediction second.
    labels : dict or sequence
        Label values to score (``{value: name}``); 0 (background) is not scored by default.

    Returns
    -------
    pandas.DataFrame
        Columns label, name, dice, iou, precision, recall, f1, n_true, n_pred (pixels). A
        class absent from both masks gives NaN scores (never 0 or 1).

    Notes
    -----
    Dice equals F1 for a binary mask; both are given because readers look for either. The
    scores of many chunks pooled are :func:`scores_from_counts` of their summed
    :func:`segmentation_counts`.
    """
    return scores_from_counts(segmentation_counts(mask_true, mask_pred, labels=labels),
                              labels=labels)


def _blur(f: np.ndarray, k: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(f, sigma=(0, k, k)) if k > 0 else f


def _scale(arrs: list[np.ndarray], s: float, order: list[int]) -> list[np.ndarray]:
    """Zoom about the frame centre by ``s`` keeping the shape (order per array)."""
    from scipy import ndimage

    out = []
    for a, o in zip(arrs, order, strict=True):
        n, h, w = a.shape
        mat = np.diag([1.0, 1 / s, 1 / s])
        offset = np.array([0, (h - 1) / 2 * (1 - 1 / s), (w - 1) / 2 * (1 - 1 / s)])
        out.append(ndimage.affine_transform(a, mat, offset=offset, order=o, mode="nearest"))
    return out


#: kind -> levels. ``offset_degC`` and ``contrast`` are what a wrong emissivity or reflected
#: temperature does to a whole thermogram; ``ambient_offset_degC`` changes the background only.
PERTURBATIONS = {
    "none": [0.0],
    "noise_sd_degC": [0.1, 0.2],
    "offset_degC": [-0.5, 0.5],
    "contrast": [0.9, 1.1],
    "ambient_offset_degC": [-3.0, 3.0],
    "blur_sigma_px": [1.0, 2.0],
    "scale": [0.9, 1.1],
}


def perturb(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray, kind: str, level: float,
            rng: np.random.Generator, ignore: np.ndarray | None = None):
    """One perturbation of frames (degC) and, for ``scale``, of the masks alike.

    Returns
    -------
    frames, roi, vessels, ignore : ndarray
        ``contrast`` scales each frame about its median (degC); ``scale`` zooms about the
        frame centre (nearest neighbour for the masks).
    """
    f = frames.astype(np.float32)
    r, v, ig = roi, vessels, ignore
    if kind == "noise_sd_degC":
        f = f + rng.normal(0, level, f.shape).astype(np.float32)
    elif kind == "offset_degC":
        f = f + np.float32(level)
    elif kind == "contrast":
        med = np.median(f.reshape(len(f), -1), axis=1)[:, None, None]
        f = (med + (f - med) * level).astype(np.float32)
    elif kind == "ambient_offset_degC":
        f = np.where(r == 0, f + level, f).astype(np.float32)
    elif kind == "blur_sigma_px":
        f = _blur(f, level).astype(np.float32)
    elif kind == "scale":
        arrs = [f, r, v] + ([ig] if ig is not None else [])
        out = _scale(arrs, level, [1, 0, 0, 0][:len(arrs)])
        f, r, v = out[:3]
        ig = out[3] if ig is not None else None
    elif kind != "none":
        raise ValueError(f"perturbation {kind!r} unknown; expected {list(PERTURBATIONS)}")
    return f, r, v, ig


def robustness_table(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray,
                     predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], *,
                     perturbations: dict[str, list[float]] | None = None, seed: int = 0,
                     ignore: np.ndarray | None = None) -> pd.DataFrame:
    """Dice per class under perturbations of the input frames.

    Parameters
    ----------
    frames : ndarray (frame, y, x), degC; roi, vessels : ground truth
    predict : callable
        ``frames -> (roi, vessels)``.
    perturbations : dict, optional
        ``{kind: [levels]}`` (default :data:`PERTURBATIONS`); kinds ``none``,
        ``noise_sd_degC`` (added Gaussian noise), ``offset_degC`` (added to the whole frame),
        ``contrast`` (gain about the frame median), ``ambient_offset_degC`` (added outside
        the calves), ``blur_sigma_px`` (Gaussian), ``scale`` (zoom about the centre; masks
        zoomed alike).
    ignore : ndarray (frame, y, x), optional
        Pixels (1) left out of the scores.

    Returns
    -------
    pandas.DataFrame
        Columns perturbation, level, label, name, dice, iou, precision, recall, f1, n_true,
        n_pred.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for kind, levels in (perturbations or PERTURBATIONS).items():
        for lev in levels:
            f, r, v, ig = perturb(frames, roi, vessels, kind, lev, rng, ignore)
            pr, pv = predict(f)
            keep = slice(None) if ig is None else (ig == 0)
            for tab in (segmentation_scores(r[keep], pr[keep], labels=ROI_LABELS),
                        segmentation_scores(np.where(r > 0, v, 0)[keep], pv[keep],
                                            labels=VESSEL_LABELS)):
                tab.insert(0, "level", lev)
                tab.insert(0, "perturbation", kind)
                rows.append(tab)
    return pd.concat(rows, ignore_index=True)


def read_coco_masks(path: str | os.PathLike, shape: tuple[int, int] | None = None
                    ) -> dict[str, np.ndarray]:
    """Label images from a COCO (or CVAT COCO-export) instance annotation file.

    Categories are matched by name: ``left_calf``/``right_calf`` (roi 1/2) and
    ``vein``/``perforator`` (vessels 1/2); names are case-insensitive, spaces or hyphens
    allowed. Returns ``{file_name: (roi, vessels)}`` stacked as ``(2, H, W)`` uint8.
    """
    from pycocotools.coco import COCO

    try:
        coco = COCO(str(path))
    except Exception as exc:  # pycocotools raises bare errors on bad JSON
        raise ReaderError(f"{path}: not a COCO annotation file: {exc}") from exc
    names = {c["id"]: c["name"].lower().replace(" ", "_").replace("-", "_")
             for c in coco.loadCats(coco.getCatIds())}
    where = {"left_calf": (0, 1), "right_calf": (0, 2), "vein": (1, 1), "perforator": (1, 2)}
    unknown = sorted(set(names.values()) - set(where))
    if unknown:
        raise ReaderError(f"{path}: categories {unknown} unknown; expected {sorted(where)}")
    out = {}
    for img in coco.loadImgs(coco.getImgIds()):
        h, w = shape or (img["height"], img["width"])
        lab = np.zeros((2, h, w), np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            ch, val = where[names[ann["category_id"]]]
            lab[ch][coco.annToMask(ann).astype(bool)] = val
        out[img["file_name"]] = lab
    return out
