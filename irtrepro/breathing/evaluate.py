"""Evaluation on held-out subjects: classification metrics, the ablation table, RR errors."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from irtrepro._logging import logger
from irtrepro._threads import torch_threads
from irtrepro.breathing.data import ImageSet
from irtrepro.splits import subject_split

__all__ = ["classification_metrics", "run_ablation", "validate_ablation", "baseline_labels",
           "rate_agreement",
           "true_rate_from_labels", "window_mean", "agreement"]


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, precision, recall, F1 (EXH = positive class) and the confusion matrix.

    Returns a dict with ``accuracy``, ``precision``, ``recall``, ``f1``, ``tn``, ``fp``,
    ``fn``, ``tp`` (counts; rows of the confusion matrix are the truth INH, EXH) and ``n``.
    Precision/recall/F1 are NaN when undefined (no predicted / true positives).
    """
    y, p = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    tp = int(((y == 1) & (p == 1)).sum())
    tn = int(((y == 0) & (p == 0)).sum())
    fp = int(((y == 0) & (p == 1)).sum())
    fn = int(((y == 1) & (p == 0)).sum())
    prec = tp / (tp + fp) if tp + fp else np.nan
    rec = tp / (tp + fn) if tp + fn else np.nan
    f1 = 2 * prec * rec / (prec + rec) if np.isfinite(prec) and np.isfinite(rec) and \
        prec + rec > 0 else np.nan
    return {"accuracy": (tp + tn) / max(len(y), 1) if len(y) else np.nan, "precision": prec,
            "recall": rec, "f1": f1, "tn": tn, "fp": fp, "fn": fn, "tp": tp, "n": len(y)}


TIMING_SAMPLE = 512  # test images timed on 1 thread for ``ms_per_image``


def run_ablation(train_set: ImageSet, test_set: ImageSet, *, rows: dict | None = None,
                 baseline: pd.DataFrame | None = None, progress: bool | None = None,
                 models: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Train every ablation row on ``train_set`` and score it on ``test_set``.

    Parameters
    ----------
    rows : dict, optional
        ``{name: BreathConfig}``; default :data:`irtrepro.breathing.train.ABLATION`.
    baseline : pandas.DataFrame, optional
        Signal-baseline frame labels on the test sessions: ``label`` (true), ``label_pred``
        and ``seconds_per_image``; adds the row "signal baseline (ROI slope)".
    models : dict, optional
        Already trained models by row name (reused, e.g. from a cache). A row whose settings
        differ from an already trained row only in ``adapt_bn``, ``flip_test`` or
        ``group_scaling`` reuses that model (no training, ``train_s`` 0). Test images are
        grouped by ``subject`` for ``adapt_bn`` and ``group_scaling``.

    Returns
    -------
    table : pandas.DataFrame
        One row per method: ``method``, ``accuracy``, ``precision``, ``recall``, ``f1``,
        ``accuracy_hard`` (frames near a phase boundary), ``tn``, ``fp``, ``fn``, ``tp``,
        ``n``, ``ms_per_image`` (inference incl. preprocessing on 1 thread, timed on the
        first :data:`TIMING_SAMPLE` test images), ``train_s``.
    models : dict
        ``{name: BreathModel}``.
    """
    from dataclasses import replace

    import torch

    from irtrepro.breathing.train import ABLATION, predict_proba, same_training, train

    rows = rows or ABLATION
    models = dict(models or {})
    out = []
    if baseline is not None and len(baseline):
        lab = baseline["label"].to_numpy()
        ok = np.isin(lab, ["INH", "EXH"]) & np.isin(baseline["label_pred"], ["INH", "EXH"])
        m = classification_metrics(lab[ok] == "EXH", baseline["label_pred"].to_numpy()[ok]
                                   == "EXH")
        hard = baseline.get("hard", pd.Series(False, index=baseline.index)).to_numpy()[ok]
        m["accuracy_hard"] = float(((lab[ok] == "EXH") == (baseline["label_pred"].to_numpy()[ok]
                                                           == "EXH"))[hard].mean()) \
            if hard.any() else np.nan
        out.append({"method": "signal baseline (ROI slope)", **m,
                    "ms_per_image": float(baseline["seconds_per_image"].iloc[0] * 1e3),
                    "train_s": 0.0})
    teacher = None
    threads = torch.get_num_threads()
    groups = test_set.meta["subject"].astype(str).to_numpy()
    k = min(len(groups), TIMING_SAMPLE)
    for name, cfg in rows.items():
        if name not in models:
            # a row that differs from a trained one only in prediction (adapt_bn,
            # flip_test, group_scaling) reuses it
            twin = next((m for m in models.values() if same_training(m.config, cfg)), None)
            if twin is not None:
                models[name] = replace(twin, config=cfg,
                                       history={**twin.history, "train_seconds": 0.0})
        if name not in models:
            logger.info("breathing: training %r", name)
            use_teacher = teacher if teacher is not None and cfg.kd and (
                teacher.config.grey, teacher.config.amt) == (cfg.grey, cfg.amt) else None
            models[name] = train(train_set, cfg, teacher=use_teacher, progress=progress)
        model = models[name]
        if (model.config.arch == "source" and not model.config.kd and model.config.amt
                and model.config.finetune == "full"):
            teacher = model  # the "+ AMT" network is the KD teacher of the rows below
        # compute time per image on 1 thread (the published unit) from a sample; the
        # predictions themselves use every thread the caller allows
        torch_threads(1)
        t0 = time.perf_counter()
        predict_proba(model, test_set.images[:k], groups=groups[:k])
        dt = (time.perf_counter() - t0) / max(k, 1)
        torch_threads(threads)
        p = predict_proba(model, test_set.images, groups=groups)
        yhat = p > 0.5
        m = classification_metrics(test_set.labels, yhat)
        hard = test_set.meta["hard"].to_numpy(bool)
        m["accuracy_hard"] = float((yhat == test_set.labels)[hard].mean()) if hard.any() \
            else np.nan
        out.append({"method": name, **m, "ms_per_image": dt * 1e3,
                    "train_s": float(model.history.get("train_seconds", np.nan))})
    cols = ["method", "accuracy", "precision", "recall", "f1", "accuracy_hard", "tn", "fp",
            "fn", "tp", "n", "ms_per_image", "train_s"]
    return pd.DataFrame(out)[cols], models


def validate_ablation(train_set: ImageSet, *, rows: dict | None = None, folds=(0, 1),
                      test_fraction: float = 0.3, progress: bool | None = None
                      ) -> pd.DataFrame:
    """Score ablation rows on validation subjects drawn from the **training** subjects only.

    For each seed in ``folds`` the subjects of ``train_set`` are split again
    (:func:`irtrepro.splits.subject_split`), every row is trained on the inner training subjects and scored
    on the inner validation subjects. This is where settings are chosen; the held-out
    subjects of the outer split are never seen.

    Returns
    -------
    pandas.DataFrame
        The :func:`run_ablation` columns plus ``fold`` and ``validation_subjects``, one row per
        (fold, method), followed by one ``fold == "mean"`` row per method (mean accuracy and
        F1 over the folds).
    """
    out = []
    subjects = train_set.meta["subject"].astype(str)
    for fold in folds:
        inner, val = subject_split(subjects, n_test=test_fraction, seed=int(fold))
        is_val = subjects.isin(val).to_numpy()
        table, _ = run_ablation(train_set.subset(~is_val), train_set.subset(is_val), rows=rows,
                                progress=progress)
        out.append(table.assign(fold=str(fold), validation_subjects=" ".join(val)))
    res = pd.concat(out, ignore_index=True)
    mean = res.groupby("method", sort=False)[["accuracy", "f1", "train_s"]].mean().reset_index()
    mean["fold"], mean["validation_subjects"] = "mean", ""
    return pd.concat([res, mean], ignore_index=True)


def true_rate_from_labels(time: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """True respiratory rate (min-1) per frame from INH/EXH labels.

    A breath starts at each EXH->INH transition; the rate of a frame is 60 / the duration of
    the breath containing it. Frames before the first or after the last complete breath are NaN.
    """
    t = np.asarray(time, float)
    lab = np.asarray(labels).astype(str)
    onset = np.flatnonzero((lab[1:] == "INH") & (lab[:-1] == "EXH")) + 1
    # interpolate the onset time between the two frames
    t_on = 0.5 * (t[onset] + t[onset - 1])
    rf = np.full(len(t), np.nan)
    if len(onset) < 2:
        return rf
    k = np.searchsorted(t_on, t, side="right") - 1
    ok = (k >= 0) & (k < len(t_on) - 1)
    dur = np.diff(t_on)
    rf[ok] = 60.0 / dur[k[ok]]
    # a gap between clips is not a breath
    rf[ok & (dur[np.clip(k, 0, len(dur) - 1)] > 20)] = np.nan
    return rf


def window_mean(t_value: np.ndarray, value: np.ndarray, centres: np.ndarray,
                half_width: float) -> np.ndarray:
    """Mean of ``value`` over ``|t - centre| <= half_width`` for each centre (NaN if none)."""
    tv = np.asarray(t_value, float)
    v = np.asarray(value, float)
    c = np.asarray(centres, float)[:, None]
    w = (np.abs(tv[None, :] - c) <= half_width) & np.isfinite(v)[None, :]
    n = w.sum(1)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, (w * np.nan_to_num(v)[None, :]).sum(1) / np.maximum(n, 1), np.nan)


def agreement(camera: np.ndarray, reference: np.ndarray) -> dict:
    """MAE and Bland-Altman bias / limits of agreement of camera minus reference (min-1).

    Parameters
    ----------
    camera, reference : ndarray
        Paired rates (min-1); pairs with a NaN are left out.

    Returns
    -------
    dict
        ``n`` (pairs), ``mae``, ``bias``, ``loa_low``, ``loa_high`` (min-1; bias +- 1.96 SD,
        :func:`irtrepro.stats.bland_altman`) and ``method``; NaN estimates with
        ``method = "too few pairs"`` under 3 pairs.
    """
    from irtrepro.stats import bland_altman

    a, b = np.asarray(camera, float), np.asarray(reference, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    out = {"n": int(ok.sum()), "mae": float(np.abs(d).mean()) if ok.any() else np.nan}
    if ok.sum() < 3:
        return {**out, "bias": np.nan, "loa_low": np.nan, "loa_high": np.nan,
                "method": "too few pairs"}
    res = bland_altman(a[ok], b[ok])
    return {**out, "bias": float(res.bias), "loa_low": float(res.loa_low),
            "loa_high": float(res.loa_high), "method": "irtrepro.stats.bland_altman"}


def baseline_labels(frames: dict, labels: dict, subjects) -> pd.DataFrame | None:
    """Signal-baseline INH/EXH labels of the labelled sessions of ``subjects``.

    Parameters
    ----------
    frames : dict
        ``{(subject, session): DataArray (frame, y, x)}`` face frames with a ``time`` coordinate.
    labels : dict
        ``{(subject, session): ndarray of str}`` true label per frame.
    subjects : collection of str
        Subjects to label (the held-out ones).

    Returns
    -------
    pandas.DataFrame or None
        The frame table of :func:`~irtrepro.breathing.signal.signal_baseline` plus ``label``,
        ``seconds_per_image`` (its compute time per frame) and ``hard`` (near a phase
        boundary), as :func:`run_ablation` takes it; None when no session qualifies.
    """
    from irtrepro.breathing.data import clip_index, hard_from_labels
    from irtrepro.breathing.signal import signal_baseline

    rows = []
    for (s, j), da in frames.items():
        if s not in subjects or (s, j) not in labels:
            continue
        tb = time.perf_counter()
        fdf, _ = signal_baseline(da)
        per = (time.perf_counter() - tb) / max(len(fdf), 1)
        t = da["time"].values
        rows.append(fdf.assign(label=labels[(s, j)], seconds_per_image=per,
                               hard=hard_from_labels(t, labels[(s, j)], clip_index(t))))
    return pd.concat(rows, ignore_index=True) if rows else None


def rate_agreement(rates: pd.DataFrame, held_out) -> pd.DataFrame:
    """Agreement of the camera rate with each reference, over all and over held-out subjects.

    Parameters
    ----------
    rates : pandas.DataFrame
        One row per window: ``subject``, ``rf_irt``, ``rf_true``, ``rf_cart`` (min-1).
    held_out : collection of str
        Held-out subjects.

    Returns
    -------
    pandas.DataFrame
        ``reference`` ("truth (labels)", "cart RF"), ``subjects`` ("all sessions",
        "held-out subjects") and the columns of :func:`agreement`.
    """
    rows = []
    for ref in ("rf_true", "rf_cart"):
        for subset, m in (("all sessions", np.ones(len(rates), bool)),
                          ("held-out subjects", rates["subject"].isin(held_out).to_numpy())):
            a = agreement(rates["rf_irt"].to_numpy()[m], rates[ref].to_numpy()[m])
            rows.append({"reference": "truth (labels)" if ref == "rf_true" else "cart RF",
                         "subjects": subset, **a})
    return pd.DataFrame(rows)
