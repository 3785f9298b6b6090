"""Score a segmentation model against a lab's annotations (``irtrepro segment evaluate``).

The annotations are sparse mask stores (``irtrepro annotations import``) and the recordings
they annotate. Every annotated frame is segmented by the model and compared with its
annotation, ``ignore`` pixels left out everywhere:

- pixel scores per class (Dice, IoU, precision, recall, F1: the DeepIR article's metrics),
  pooled over all frames and per subject;
- the error the predicted masks cause in each skin-temperature metric (TNV, TP, TV, calf
  mean, entropies) against the annotated masks, beside the metric's own SD over the annotated
  frames of a recording;
- Dice under perturbations of the input (noise, blur, offset, contrast, ...).

Only the annotated frames are read, a few at a time, so memory is bounded by one batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._logging import logger, progress_bar
from irtrepro.vision.evaluate import (
    ERROR_METRICS,
    PERTURBATIONS,
    ROI_LABELS,
    VESSEL_LABELS,
    metric_error_table,
    metric_errors,
    robustness_table,
)
from irtrepro.vision.precision import DEFAULT_PRECISION

__all__ = ["ModelEvaluation", "evaluate_model", "write_evaluation", "scores_from_counts"]

_CLASSES = [("roi", k, n) for k, n in ROI_LABELS.items()] + \
           [("vessels", k, n) for k, n in VESSEL_LABELS.items()]


@dataclass
class ModelEvaluation:
    """What :func:`evaluate_model` measured.

    Attributes
    ----------
    scores : DataFrame
        One row per class pooled over every annotated frame: ``model`` (roi/vessels),
        ``label``, ``name``, ``dice``, ``iou``, ``precision``, ``recall``, ``f1``, ``n_true``,
        ``n_pred`` (pixels), plus ``subject_mean``, ``subject_sd``, ``n_subjects`` and
        ``subject_ci95_low``/``subject_ci95_high`` (Dice per subject, then mean, SD and the
        95 % t-interval of the mean over subjects).
    by_subject : DataFrame
        The same scores per subject.
    metric_errors : DataFrame
        :func:`irtrepro.vision.evaluate.metric_error_table` over the annotated frames.
    robustness : DataFrame or None
        :func:`irtrepro.vision.evaluate.robustness_table` on evenly spaced annotated frames.
    info : dict
        Model file, its card's data hash and validation subjects, recordings, frames,
        conventions.
    """

    scores: pd.DataFrame
    by_subject: pd.DataFrame
    metric_errors: pd.DataFrame
    robustness: pd.DataFrame | None
    info: dict = field(default_factory=dict)


def scores_from_counts(tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray) -> dict:
    """Dice, IoU, precision, recall, F1 from pixel counts; NaN where undefined (never 0 or 1).

    Parameters
    ----------
    tp, n_true, n_pred : array-like
        True-positive, annotated and predicted pixels of a class.
    """
    tp, nt, npred = (np.asarray(a, float) for a in (tp, n_true, n_pred))
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(nt + npred > 0, 2 * tp / (nt + npred), np.nan)
        iou = np.where(nt + npred > 0, tp / (nt + npred - tp), np.nan)
        prec = np.where(npred > 0, tp / npred, np.nan)
        rec = np.where(nt > 0, tp / nt, np.nan)
    return {"dice": dice, "iou": iou, "precision": prec, "recall": rec, "f1": dice}


def _t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Two-sided t-interval of the mean of the finite values of ``x`` (NaN if fewer than 2)."""
    from scipy import stats

    x = x[np.isfinite(x)]
    if x.size < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def _counts(truth_r, truth_v, pred_r, pred_v, ignore) -> np.ndarray:
    """Pixel counts (tp, n_true, n_pred) per class of :data:`_CLASSES`, ignore left out."""
    keep = ignore == 0
    tv = np.where(truth_r > 0, truth_v, 0)
    out = np.zeros((len(_CLASSES), 3), np.int64)
    for j, (model, lab, _) in enumerate(_CLASSES):
        t = (truth_r if model == "roi" else tv) == lab
        p = (pred_r if model == "roi" else pred_v) == lab
        t, p = t & keep, p & keep
        out[j] = ((t & p).sum(), t.sum(), p.sum())
    return out


def _table(counts: np.ndarray) -> pd.DataFrame:
    sc = scores_from_counts(counts[:, 0], counts[:, 1], counts[:, 2])
    return pd.DataFrame({"model": [c[0] for c in _CLASSES], "label": [c[1] for c in _CLASSES],
                         "name": [c[2] for c in _CLASSES], **sc,
                         "n_true": counts[:, 1], "n_pred": counts[:, 2]})


def evaluate_model(model, items: Sequence, *, robustness_frames: int = 16,
                   perturbations: dict | None = None, batch_size: int = 4, seed: int = 0,
                   threads: int | None = None, device: str | None = None,
                   precision: str = DEFAULT_PRECISION,
                   progress: bool | None = None) -> ModelEvaluation:
    """Segment every annotated frame with ``model`` and score it against its annotation.

    Parameters
    ----------
    model : SegmentationModel or path
        A model file (``train-seg --annotations``) or a loaded
        :class:`~irtrepro.vision.models.SegmentationModel`.
    items : sequence of AnnotatedRecording
        Sparse mask stores with the recordings they annotate (and subjects); see
        :func:`irtrepro.vision.sparse.annotated_recordings`.
    robustness_frames : int
        Annotated frames (evenly spaced over all) scored under each perturbation; 0 skips
        the robustness table.
    perturbations : dict, optional
        ``{kind: [levels]}`` (default :data:`irtrepro.vision.evaluate.PERTURBATIONS`).
    batch_size : int
        Frames segmented at once (memory: one batch of frames and activations).
    seed : int
        Seed of the noise perturbation.
    threads, device, progress
        Torch CPU threads; ``cpu``/``cuda``; progress bar (``None``: at INFO, ``-v``).
    precision : {"auto", "float32", "bfloat16"}
        Numeric precision of the networks (:mod:`irtrepro.vision.precision`), as
        :func:`~irtrepro.vision.infer.segment_store` would segment the sessions.

    Returns
    -------
    ModelEvaluation

    Notes
    -----
    Vessel classes are scored inside the annotated calves (the annotation's vessels outside
    its calves are dropped) against the predicted vessels, which the model keeps inside its
    predicted calves. For the metric errors, ``ignore`` pixels are taken out of both the
    annotated and the predicted masks, so that both masks cover the same pixels.
    """
    from irtrepro._threads import torch_threads
    from irtrepro.manifest import sha256_path
    from irtrepro.vision.infer import device as pick_device
    from irtrepro.vision.infer import predict_masks
    from irtrepro.vision.models import SegmentationModel
    from irtrepro.vision.precision import inference_network
    from irtrepro.vision.sparse import SparseFrames

    path = None
    if not isinstance(model, SegmentationModel):
        path = Path(model)
        model = SegmentationModel.load(path)
    if threads:
        torch_threads(threads)
    dev = pick_device(device)
    nets = tuple(inference_network(ck, dev, precision) for ck in (model.roi, model.vessels))
    data = SparseFrames(items, cache_mb=0)

    def predict(frames):
        return predict_masks(frames, model.roi, model.vessels, models=nets, dev=dev,
                             batch_size=batch_size)

    subjects = sorted(set(data.groups.tolist()))
    counts = {s: np.zeros((len(_CLASSES), 3), np.int64) for s in subjects}
    err_rows = []
    n_frames = 0
    recs = sorted({r for r, _ in data.index})
    for r in progress_bar(recs, progress, desc="segment evaluate", total=len(recs)):
        idx = [i for i, (rr, _) in enumerate(data.index) if rr == r]
        subj = str(data.groups[idx[0]])
        mets = {k: [] for k in ("f", "tr", "tv", "pr", "pv")}
        for a in range(0, len(idx), batch_size):
            part = idx[a:a + batch_size]
            f = np.stack([data.frame(i) for i in part])
            lab = [data.labels(i) for i in part]
            tr, tv, ig = (np.stack([x[j] for x in lab]) for j in range(3))
            pr, pv = predict(f)
            counts[subj] += _counts(tr, tv, pr, pv, ig)
            keep = ig == 0
            mets["f"].append(f)
            mets["tr"].append(np.where(keep, tr, 0))
            mets["tv"].append(np.where(keep & (tr > 0), tv, 0))
            mets["pr"].append(np.where(keep, pr, 0))
            mets["pv"].append(np.where(keep, pv, 0))
            n_frames += len(part)
        # one recording's annotated frames: a few dozen at most, so the metric pass holds them
        m = {k: np.concatenate(v) for k, v in mets.items()}
        err_rows += metric_errors(m["f"], m["pr"], m["pv"], m["tr"], m["tv"])
        logger.info("segment evaluate: %s (%s) %d frames", data.items[r].recording, subj,
                    len(idx))
    by_subject = pd.concat([_table(c).assign(subject=s) for s, c in counts.items()],
                           ignore_index=True)
    scores = _table(sum(counts.values()))
    per = by_subject.pivot(index="subject", columns="name", values="dice")
    scores["subject_mean"] = [float(per[n].mean()) for n in scores["name"]]
    scores["subject_sd"] = [float(per[n].std(ddof=1)) if per[n].notna().sum() > 1 else np.nan
                            for n in scores["name"]]
    scores["n_subjects"] = [int(per[n].notna().sum()) for n in scores["name"]]
    lo, hi = zip(*(_t_interval(per[n].to_numpy(float)) for n in scores["name"]), strict=True)
    scores["subject_ci95_low"], scores["subject_ci95_high"] = list(lo), list(hi)
    rob = None
    if robustness_frames > 0:
        pick = np.unique(np.linspace(0, len(data) - 1, min(robustness_frames, len(data)))
                         .astype(int))
        f = np.stack([data.frame(int(i)) for i in pick])
        lab = [data.labels(int(i)) for i in pick]
        tr, tv, ig = (np.stack([x[j] for x in lab]) for j in range(3))
        rob = robustness_table(f, tr, tv, predict, perturbations=perturbations, seed=seed,
                               ignore=ig)
    card = model.card or {}
    info = {
        "model": str(path) if path else None,
        "model_sha256": sha256_path(path) if path else None,
        "model_data_hash": card.get("data_hash"),
        "model_training_subjects": (card.get("training") or {}).get("subjects"),
        "model_validation": (card.get("validation") or {}).get("dice"),
        "recordings": [str(it.recording) for it in data.items],
        "annotations": [str(it.masks) for it in data.items],
        "subjects": subjects, "frames": n_frames,
        "robustness_frames": 0 if rob is None else int(len(pick)),
        "perturbations": perturbations or PERTURBATIONS,
        "conventions": {
            "scores": "pixel counts pooled over every annotated frame; ignore pixels left "
                      "out; Dice = F1; NaN where a class is absent from both masks",
            "subject_mean": "Dice per subject, then mean and SD (ddof=1) over subjects",
            "subject_ci95": "two-sided 95 % t-interval of the mean Dice over subjects "
                            "(n_subjects - 1 df); NaN with fewer than 2 subjects",
            "vessels": "annotated vessels inside the annotated calves against predicted "
                       "vessels inside the predicted calves",
            "metric_errors": "absolute difference per frame and calf, metric under predicted "
                              "vs annotated masks (ignore pixels out of both); "
                              "within_session_sd: SD over the annotated frames of one "
                              "recording and calf under the annotated masks",
            "units": dict(ERROR_METRICS),
        },
    }
    overlap = sorted(set(subjects) & set(info["model_training_subjects"] or []))
    if overlap:
        logger.warning("segment evaluate: subjects %s were also in the model's training "
                       "data: these scores are not held-out scores", overlap)
        info["trained_on_evaluated_subjects"] = overlap
    return ModelEvaluation(scores, by_subject, metric_error_table(err_rows), rob, info)


def write_evaluation(ev: ModelEvaluation, out: str | os.PathLike) -> Path:
    """Write the tables (CSV), ``evaluation.json`` and ``evaluation.png`` into folder ``out``.

    The folder appears complete or not at all (written beside it, then renamed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from irtrepro._atomic import atomic_path
    from irtrepro.plots.segmentation import evaluation_figure

    out = Path(out)
    with atomic_path(out, is_dir=True) as tmp:
        tmp.mkdir(parents=True)
        ev.scores.to_csv(tmp / "scores.csv", index=False)
        ev.by_subject.to_csv(tmp / "scores_by_subject.csv", index=False)
        ev.metric_errors.to_csv(tmp / "metric_errors.csv", index=False)
        if ev.robustness is not None:
            ev.robustness.to_csv(tmp / "robustness.csv", index=False)
        (tmp / "evaluation.json").write_text(json.dumps(_clean(
            {**ev.info, "scores": ev.scores.to_dict(orient="records"),
             "metric_errors": ev.metric_errors.to_dict(orient="records")}),
            indent=1, allow_nan=False, default=str), encoding="utf-8")
        fig = evaluation_figure(ev.by_subject, ev.robustness)
        fig.savefig(tmp / "evaluation.png", dpi=120)
        plt.close(fig)
    return out


def _clean(o):
    """JSON-ready copy: plain Python types (as in a model file), NaN/inf to null."""
    from irtrepro.vision.models import _plain

    def finite(v):
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return None if isinstance(v, float) and not np.isfinite(v) else v

    return finite(_plain(o))
