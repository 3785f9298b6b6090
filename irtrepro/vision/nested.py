"""One outer fold of the nested protocol for the ROI and vessel U-Nets.

Both networks are trained on the fold's training subjects; each chooses its early-stopping
step on validation subjects drawn from those training subjects
(:func:`~irtrepro.vision.train.train_segmenter`, ``n_val``). The test subjects are scored
once: per-class Dice pooled over evenly spaced frames of each subject's sessions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from irtrepro.errors import SplitError
from irtrepro.vision.evaluate import ROI_LABELS, VESSEL_LABELS, segmentation_counts
from irtrepro.vision.pipeline import Session, train_models, training_arrays

__all__ = ["CLASSES", "nested_fold"]

#: the figure names of the four classes
CLASSES = (*ROI_LABELS.values(), *VESSEL_LABELS.values())


def _dice(counts: np.ndarray) -> list[float]:
    tp, nt, npred = np.asarray(counts, float).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return list(np.where(nt + npred > 0, 2 * tp / (nt + npred), np.nan))


def nested_fold(sessions: Sequence[Session], test_subjects, *, seed: int,
                max_train_frames: int = 2400, test_frames_per_session: int = 60,
                settings: dict | None = None, progress=None) -> dict:
    """Train both U-Nets on the training subjects and score the test subjects once.

    Parameters
    ----------
    sessions : sequence of Session
        Sessions with ground-truth masks (``masks`` set), every subject.
    test_subjects : collection of str
    seed : int
        Training seed (also of the validation split inside the training subjects).
    max_train_frames : int
        Training frames, evenly spaced over the training sessions (as the report trains).
    test_frames_per_session : int
        Evenly spaced frames scored per test session.
    settings : dict, optional
        ``{"roi": {...}, "vessels": {...}}`` of :func:`~irtrepro.vision.train.train_segmenter`.

    Returns
    -------
    dict
        ``per_subject`` and ``pooled`` (``{"Dice <class>": ...}``), ``choices`` (validation
        subjects, steps kept and validation Dice per network).
    """
    from irtrepro.vision.infer import predict_masks

    test = sorted(map(str, test_subjects))
    with_truth = [s for s in sessions if s.masks is not None]
    train = [s for s in with_truth if s.subject not in test]
    if len({s.subject for s in train}) < 2:
        raise SplitError(f"segmentation fold with test subjects {test}: fewer than 2 training "
                         "subjects with masks; a validation subject needs at least 2")
    F, R, V, S = training_arrays(train, max_train_frames, progress)
    # train with the threads this process was given (the protocol runs jobs side by side,
    # one thread each), not train_segmenter's own default of 2: oversubscribed OpenMP
    # threads made a job ~10x slower
    settings = {task: {"threads": None, **(settings or {}).get(task, {})}
                for task in ("roi", "vessels")}
    roi_ck, ves_ck = train_models(F, R, V, S, seed=int(seed), settings=settings)
    del F, R, V
    per, total = {}, np.zeros((len(CLASSES), 3), np.int64)
    for subject in test:
        mine = [s for s in with_truth if s.subject == subject]
        f, r, v, _ = training_arrays(mine, test_frames_per_session * len(mine))
        pr, pv = predict_masks(f, roi_ck, ves_ck)
        c = np.concatenate([segmentation_counts(r, pr, labels=ROI_LABELS),
                            segmentation_counts(v, pv, labels=VESSEL_LABELS)])
        total += c
        per[subject] = {f"Dice {k}": d for k, d in zip(CLASSES, _dice(c), strict=True)}
    best = {ck.task: max(ck.metrics["history"], key=lambda h: np.nanmean(h["val_dice"]))
            for ck in (roi_ck, ves_ck)}
    return {"per_subject": per,
            "pooled": {f"Dice {k}": d for k, d in zip(CLASSES, _dice(total), strict=True)},
            "choices": {task: {"validation_subjects": ck.metrics["val_subjects"],
                               "step_kept": best[task]["step"],
                               "steps_run": ck.metrics["steps"],
                               "validation_dice": ck.metrics["val_dice"],
                               "train_seconds": ck.metrics["seconds"]}
                        for task, ck in (("roi", roi_ck), ("vessels", ves_ck))}}
