"""Settings of the U-Net training (irtrepro.vision.train.SegmenterSettings)."""

from __future__ import annotations

import numpy as np
import pytest

from irtrepro.errors import OptionError
from irtrepro.vision.train import TASK_DEFAULTS, SegmenterSettings, train_segmenter


def test_task_defaults_and_overrides():
    roi = SegmenterSettings.for_task("roi")
    assert (roi.max_steps, roi.eval_every, roi.crop) == (TASK_DEFAULTS["roi"]["max_steps"],
                                                         TASK_DEFAULTS["roi"]["eval_every"], None)
    ves = SegmenterSettings.for_task("vessels", max_steps=60, eval_every=30, crop=None)
    assert (ves.max_steps, ves.eval_every, ves.crop, ves.upsample) == (60, 30, None, 2)
    assert ves.class_weight == (1.0, 1.0, 3.0)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"max_step": 5}, "no setting 'max_step'; did you mean 'max_steps'"),
    ({"lr": 0.0}, r"lr=0.0; expected a learning rate > 0"),
    ({"max_steps": 0}, r"max_steps=0; expected an integer >= 1"),
    ({"class_weight": (1.0, 2.0)}, "one weight per class"),
    ({"precision": "float16"}, "precision='float16'; expected one of float32, bfloat16, auto"),
])
def test_bad_settings_are_named(overrides, match):
    with pytest.raises(OptionError, match=match):
        SegmenterSettings.for_task("roi", **overrides)


def test_train_segmenter_rejects_unknown_setting_before_training():
    f = np.zeros((2, 8, 8), np.float32)
    m = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(OptionError, match="eval_evry"):
        train_segmenter(f, m, m, ["a", "b"], task="roi", eval_evry=3)
    with pytest.raises(OptionError, match="task"):
        SegmenterSettings.for_task("calf")


@pytest.mark.requires_torch
def test_training_precision_is_recorded_and_changes_the_steps_not_the_setup():
    torch = pytest.importorskip("torch")
    pytest.importorskip("segmentation_models_pytorch")
    rng = np.random.default_rng(0)
    f = (30 + rng.normal(0, 1, (8, 32, 32))).astype(np.float32)
    roi = np.zeros((8, 32, 32), np.uint8)
    roi[:, 8:28, 4:14], roi[:, 8:28, 18:28] = 1, 2
    f[roi > 0] += 3
    subjects = ["a", "a", "b", "b", "c", "c", "d", "d"]
    cks = {p: train_segmenter(f, roi, roi * 0, subjects, task="roi", max_steps=4, eval_every=2,
                              batch_size=2, decoder_channels=(8, 8, 4), threads=1,
                              precision=p) for p in ("float32", "bfloat16")}
    for p, ck in cks.items():
        assert ck.settings["precision"] == p
        assert all(v.dtype in (torch.float32, torch.int64)   # weights stay float32
                   for v in ck.state_dict.values())
    # same split, same batches, same initial weights: only the arithmetic of the steps differs
    assert cks["float32"].metrics["val_subjects"] == cks["bfloat16"].metrics["val_subjects"]
    a, b = (cks[p].state_dict["segmentation_head.0.weight"] for p in ("float32", "bfloat16"))
    assert 0 < float((a - b).abs().max()) < 0.05
