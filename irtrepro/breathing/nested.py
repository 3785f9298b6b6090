"""One outer fold of the nested protocol for the breathing classifier.

The fold's training subjects are split again into inner-training and validation subjects. The
full method is trained on the inner-training subjects (its SVM/RF weight is chosen on
leave-one-inner-subject-out fits, as always); the prediction variants, which share that
training, are scored on the validation subjects and the best is kept; the kept model labels
the fold's test subjects once. The model is not retrained with the validation subjects, so the
model that is tested is exactly the one the choice was made for.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from irtrepro.breathing.data import ImageSet
from irtrepro.errors import SplitError
from irtrepro.splits import subject_split

__all__ = ["PREDICTION_VARIANTS", "nested_fold", "signal_baseline_accuracy"]

#: variants of the full method that differ only at prediction (one training serves all);
#: the first is the default, kept on ties
PREDICTION_VARIANTS: dict[str, dict] = {
    "per-recording feature scaling": {},
    "pooled feature scaling": {"group_scaling": False},
    "per-subject BatchNorm statistics (AdaBN)": {"adapt_bn": True},
}


def _accuracy(model, data: ImageSet) -> tuple[float, dict[str, float]]:
    """Frame accuracy pooled and per subject (each subject's frames one prediction group)."""
    from irtrepro.breathing.train import predict_proba

    subj = data.meta["subject"].astype(str).to_numpy()
    ok = (predict_proba(model, data.images, groups=subj) > 0.5) == (data.labels == 1)
    return float(ok.mean()), {s: float(ok[subj == s].mean()) for s in np.unique(subj)}


def nested_fold(data: ImageSet, test_subjects, *, seed: int, config=None,
                val_fraction: float = 0.3, variants: dict | None = None,
                progress: bool | None = None) -> dict:
    """Train on the fold's training subjects, choose on validation subjects, test once.

    Parameters
    ----------
    data : ImageSet
        Labelled face crops of every subject (unlabelled images are left out).
    test_subjects : collection of str
        The fold's test subjects; every other subject is a training subject.
    seed : int
        Training seed, also the seed of the inner (validation) split.
    config : BreathConfig, optional
        Default: the full method.
    val_fraction : float
        Share of the training subjects held out for validation (at least one).
    variants : dict, optional
        ``{name: BreathConfig fields}`` of prediction variants (:data:`PREDICTION_VARIANTS`).

    Returns
    -------
    dict
        ``per_subject`` (``{subject: {"accuracy": ...}}``, test subjects), ``pooled``
        (``accuracy`` over the test frames), ``choices`` (validation subjects, the validation
        accuracy of each variant, the variant kept, the SVM weight of the ensemble, training
        seconds).

    Raises
    ------
    SplitError
        Fewer than two training subjects (no validation subject can be drawn).
    """
    from irtrepro.breathing.train import BreathConfig, train

    variants = variants or PREDICTION_VARIANTS
    cfg = replace(config or BreathConfig(), seed=int(seed))
    data = data.subset(data.labels >= 0)
    subj = data.meta["subject"].astype(str)
    test = sorted(map(str, test_subjects))
    training = sorted(set(subj) - set(test))
    if len(training) < 2:
        raise SplitError(f"breathing fold with test subjects {test}: {len(training)} training "
                         "subject(s); a validation subject needs at least 2")
    inner, val = subject_split(training, n_test=val_fraction, seed=int(seed))
    model = train(data.subset(subj.isin(inner).to_numpy()), cfg, progress=progress)
    val_set = data.subset(subj.isin(val).to_numpy())
    scores = {name: _accuracy(replace(model, config=replace(cfg, **ov)), val_set)[0]
              for name, ov in variants.items()}
    best = max(scores, key=lambda k: (scores[k], -list(variants).index(k)))
    kept = replace(model, config=replace(cfg, **variants[best]))
    pooled, per = _accuracy(kept, data.subset(subj.isin(test).to_numpy()))
    return {"per_subject": {s: {"accuracy": a} for s, a in per.items()},
            "pooled": {"accuracy": pooled},
            "choices": {"inner_training_subjects": inner, "validation_subjects": val,
                        "validation_accuracy": scores, "variant": best,
                        "ensemble_weight_svm": model.history.get("group_ensemble_weight_svm"
                                                                 if kept.config.group_scaling
                                                                 else "ensemble_weight_svm"),
                        "train_seconds": model.history.get("train_seconds")}}


def signal_baseline_accuracy(frames: dict, labels: dict, subjects) -> dict[str, float]:
    """Frame accuracy of the signal baseline (no training) per subject.

    Parameters
    ----------
    frames : dict
        ``{(subject, session): DataArray (frame, y, x)}`` face frames.
    labels : dict
        ``{(subject, session): ndarray of str}`` true INH/EXH label per frame ("" unknown).
    subjects : collection of str

    Returns
    -------
    dict
        ``{subject: accuracy}`` over the frames with a known label, pooled over the
        subject's labelled sessions.
    """
    from irtrepro.breathing.signal import signal_baseline

    hits: dict[str, list[np.ndarray]] = {}
    for (s, j), da in frames.items():
        if s in subjects and (s, j) in labels:
            pred = signal_baseline(da)[0]["label_pred"].to_numpy()
            truth = np.asarray(labels[(s, j)])
            known = np.isin(truth, ["INH", "EXH"])
            hits.setdefault(s, []).append(pred[known] == truth[known])
    return {s: float(np.concatenate(h).mean()) for s, h in hits.items()
            if sum(len(x) for x in h)}
