"""One outer fold of the nested protocol for the keypoint teacher, student and baseline.

Of the fold's training subjects one (drawn with the seed) is the validation subject: its
frames decide early stopping of the teacher, the student and the baseline (the epoch each
keeps) and are never trained on. The test subjects are scored once, each on its own.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from irtrepro.errors import SplitError
from irtrepro.keypoints.train import (
    CONSTANT_POSE,
    CropSet,
    KeypointConfig,
    _constant_pose_ap,
    _run_fold,
    evaluate_by_activity,
    heatmap_targets,
)

__all__ = ["MODEL_NAMES", "nested_fold"]

#: short names of the models a fold scores, as the figures name them
MODEL_NAMES = {"teacher": "teacher (RGB frames)", "student": "student (thermal, distilled)",
               "baseline": "baseline (thermal, supervised on L)", "constant": CONSTANT_POSE}


def nested_fold(corpus: CropSet, labelled: np.ndarray, test_subjects, *, seed: int,
                config: KeypointConfig | None = None, progress=None) -> dict:
    """Teacher, student and baseline of one fold, early-stopped on a validation subject.

    Parameters
    ----------
    corpus : CropSet
        The paired corpus (every subject).
    labelled : ndarray of bool
        Which frames carry keypoint labels (the held-out subjects' are never used).
    test_subjects : collection of str
    seed : int
        Training seed, also the seed that draws the validation subject.
    config : KeypointConfig, optional

    Returns
    -------
    dict
        ``per_subject`` (``{subject: {"AP student": ..., ...}}``), ``pooled`` (the same over the
        fold's test frames) and ``choices`` (validation subject, epochs kept per network).
    """
    cfg = replace(config or KeypointConfig(), seed=int(seed))
    test = sorted(map(str, test_subjects))
    training = sorted(set(map(str, corpus.subject)) - set(test))
    if len(training) < 2:
        raise SplitError(f"keypoint fold with test subjects {test}: {len(training)} training "
                         "subject(s); a validation subject needs at least 2")
    val = [str(np.random.default_rng(int(seed)).choice(training))]
    out = _run_fold(0, test, corpus, labelled, cfg, (cfg.student,), True, (), True, progress,
                    val_subjects=val)
    models = {"teacher": out["models"]["teacher"],
              "student": out["models"][f"student {cfg.student}"],
              "baseline": out["models"]["baseline"]}
    train_rows = np.flatnonzero(~np.isin(corpus.subject, test + val) & corpus.detected)
    lab = train_rows[labelled[train_rows]]
    targets, _ = heatmap_targets(corpus, lab, cfg)

    def scores(idx) -> dict:
        res = {}
        for short, model in models.items():
            ap = evaluate_by_activity(model, corpus, idx, cfg, rgb=short == "teacher")
            res.update({f"{k} {short}": ap[k] for k in ("AP", "AP50", "AP75")})
        ap = _constant_pose_ap(targets, corpus, idx, cfg)
        res.update({f"{k} constant": ap[k] for k in ("AP", "AP50", "AP75")})
        return res

    per = {s: scores(np.flatnonzero(corpus.subject == s)) for s in test}
    pooled = scores(np.flatnonzero(np.isin(corpus.subject, test)))
    epochs = {k.split(" f")[0]: int(np.argmin(h["val"]) + 1)
              for k, h in out["history"].items() if h.get("val")}
    return {"per_subject": per, "pooled": pooled,
            "choices": {"validation_subjects": val, "training_subjects": sorted(
                set(training) - set(val)), "epochs_kept": epochs}}
