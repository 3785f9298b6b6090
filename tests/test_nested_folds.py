"""Each model's nested fold: validation subjects come from the training subjects and are never
trained on, choices are made on them, the test subjects are scored once (tiny sizes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.requires_torch


def test_validation_rows_are_never_trained_on():
    from irtrepro.keypoints import train

    seen_train, seen_val = set(), set()
    w = torch.nn.Parameter(torch.ones(2))

    def loss(idx, is_train):
        (seen_train if is_train else seen_val).update(np.asarray(idx).tolist())
        return (w ** 2).sum()

    val = np.arange(30, 40)
    train._fit([w], loss, 40, lr=0.1, batch=4, max_epochs=2, patience=100, val_fraction=0.5,
               seed=0, desc="t", progress=False, val_rows=val)
    assert seen_val == set(val.tolist())
    assert seen_train and not seen_train & seen_val


def test_keypoint_fold_early_stops_on_a_training_subject_never_trained_on(monkeypatch):
    from irtrepro.keypoints import nested, train
    from irtrepro.synth import pose_corpus

    cfg = train.KeypointConfig(n_subjects=4, frames_per_subject=12, latent_ch=16,
                               deconv_ch=16, batch=8, teacher_epochs=2, max_epochs=1,
                               patience=100)
    corpus = pose_corpus.make_corpus(cfg, progress=False)
    labelled = np.random.default_rng(1).random(len(corpus)) < 0.5
    calls = []
    fit = train._fit

    def spy(params, loss_fn, n, **kw):
        calls.append((n, kw.get("val_rows")))
        return fit(params, loss_fn, n, **kw)

    monkeypatch.setattr(train, "_fit", spy)
    test = sorted(set(corpus.subject))[:1]
    out = nested.nested_fold(corpus, labelled, test, seed=3, config=cfg)
    val = out["choices"]["validation_subjects"]
    assert len(val) == 1 and val[0] not in test
    assert set(out["choices"]["training_subjects"]) | set(val) | set(test) == set(corpus.subject)
    # teacher, student, baseline: each early-stopped on the validation subject's rows only
    assert len(calls) == 3 and all(v is not None and len(v) for _, v in calls)
    train_rows = np.flatnonzero(~np.isin(corpus.subject, test) & corpus.detected)
    assert len(calls[1][1]) == np.isin(corpus.subject[train_rows], val).sum()
    assert set(out["per_subject"]) == set(test)
    for k in ("AP student", "AP baseline", "AP constant", "AP teacher"):
        assert 0.0 <= out["pooled"][k] <= 1.0
        # one test subject: its score is the fold's
        assert out["per_subject"][test[0]][k] == pytest.approx(out["pooled"][k])


def _faces(n_subjects: int = 5, n: int = 60):
    """16x16 crops: EXH a warm blob, INH a dark one, with a per-subject offset."""
    from irtrepro.breathing.amt import to_rgb
    from irtrepro.breathing.data import ImageSet

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n * n_subjects)
    subj = np.repeat([f"S{i}" for i in range(n_subjects)], n)
    t = rng.normal(30, 0.3, (len(y), 16, 16)) + np.repeat(rng.normal(0, 0.5, n_subjects),
                                                          n)[:, None, None]
    t[:, 9:13, 5:11] += np.where(y == 1, 1.5, -1.5)[:, None, None]
    meta = pd.DataFrame({"subject": subj, "session": "a", "time": np.arange(len(y)) / 8.0,
                         "clip": 0, "hard": False, "source": "", "frame": np.arange(len(y))})
    return ImageSet(to_rgb(t), y, meta)


def test_breathing_fold_chooses_on_validation_subjects_and_tests_once(monkeypatch):
    from irtrepro.breathing import nested, train
    from irtrepro.breathing.train import BreathConfig

    data = _faces()
    cfg = replace(BreathConfig(), size=16, epochs=2, pretrain_epochs=1, batch_size=16,
                  max_train=96)
    trained_on = []
    real_train = train.train

    def spy(d, c=None, **kw):
        trained_on.append(set(d.meta["subject"]))
        return real_train(d, c, **kw)

    monkeypatch.setattr(train, "train", spy)
    out = nested.nested_fold(data, ["S0"], seed=1, config=cfg)
    ch = out["choices"]
    val = set(ch["validation_subjects"])
    assert val and not val & {"S0"} and not val & set(ch["inner_training_subjects"])
    # the network (and its KD teacher) saw the inner-training subjects only
    assert trained_on and all(s == set(ch["inner_training_subjects"]) for s in trained_on)
    acc = ch["validation_accuracy"]
    assert set(acc) == set(nested.PREDICTION_VARIANTS)
    assert acc[ch["variant"]] == max(acc.values())
    assert set(out["per_subject"]) == {"S0"}
    assert out["per_subject"]["S0"]["accuracy"] == pytest.approx(out["pooled"]["accuracy"])
    # a test subject among the training ones would be refused: only 1 training subject left
    from irtrepro.errors import SplitError

    with pytest.raises(SplitError, match="validation subject"):
        nested.nested_fold(data.subset(np.isin(data.meta["subject"], ["S0", "S1"])), ["S0"],
                           seed=0, config=cfg)


def test_segmentation_fold_trains_on_training_subjects_and_scores_each_test_subject(
        tmp_path, monkeypatch):
    from irtrepro.vision import nested
    from irtrepro.vision.pipeline import Session
    from tests.vision.test_vision import _session_stores

    subjects = ("S01", "S02", "S03", "S04")
    paths = _session_stores(tmp_path, n_seconds=12, subjects=subjects)
    sessions = [Session(s, "CON", p, p) for s, p in zip(subjects, paths, strict=True)]
    seen = {}
    real = nested.train_models

    def spy(F, R, V, S, **kw):
        seen["subjects"] = set(S)
        return real(F, R, V, S, **kw)

    monkeypatch.setattr(nested, "train_models", spy)
    tiny = {"max_steps": 2, "eval_every": 1, "decoder_channels": (8, 8, 4), "batch_size": 2}
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the protocol's worker sets it
    try:
        out = nested.nested_fold(sessions, ["S02"], seed=0, test_frames_per_session=4,
                                 settings={"roi": tiny, "vessels": {**tiny, "crop": 16}})
        # the fold trained with the worker's thread, not the trainer's default of 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert seen["subjects"] == {"S01", "S03", "S04"}
    for task in ("roi", "vessels"):
        val = out["choices"][task]["validation_subjects"]
        assert val and set(val) <= seen["subjects"]
        assert 1 <= out["choices"][task]["step_kept"] <= out["choices"][task]["steps_run"]
    assert set(out["per_subject"]) == {"S02"}
    assert set(out["pooled"]) == {f"Dice {c}" for c in nested.CLASSES}
    # one test subject: its Dice is the fold's; undefined (empty) classes are NaN, not 0
    for k, v in out["pooled"].items():
        u = out["per_subject"]["S02"][k]
        assert (np.isnan(v) and np.isnan(u)) or (0.0 <= v <= 1.0 and u == pytest.approx(v))
