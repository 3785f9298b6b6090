"""Floor a broken breathing pipeline cannot pass: the full method, trained on three synthetic
subjects, labels the frames of a fourth (held-out) subject better than the signal baseline and
the majority class, both measured here on the same frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from irtrepro.breathing.data import ImageSet, session_images  # noqa: E402
from irtrepro.breathing.signal import signal_baseline  # noqa: E402
from irtrepro.breathing.train import BreathConfig, predict_proba, train  # noqa: E402
from irtrepro.synth.face import (  # noqa: E402
    demo_breaths,
    demo_truth_session,
    render_face_session,
)

pytestmark = pytest.mark.requires_torch
TRAIN, TEST = ("S01", "S02", "S03"), "S04"
#: rest, then two running speeds: ~100 s of face frames at 8 Hz per subject
PHASES = (("rest", 0.0, 20.0), ("run_low", 8.0, 40.0), ("run_high", 13.0, 40.0))
#: how far above the better of the two baselines the trained model must be (accuracy)
MARGIN = 0.10


@pytest.fixture(scope="module")
def study():
    sets, rendered = {}, {}
    for s in (*TRAIN, TEST):
        truth = demo_truth_session(s, "CON", seed=0, phases=PHASES)
        ds = render_face_session(truth, demo_breaths(truth, seed=0), fps=8.0, shape=(48, 64),
                                 seed=0)
        sets[s], rendered[s] = session_images(ds, subject=s, session="CON", size=16), ds
    train_set = ImageSet(np.concatenate([sets[s].images for s in TRAIN]),
                         np.concatenate([sets[s].labels for s in TRAIN]),
                         pd.concat([sets[s].meta for s in TRAIN], ignore_index=True))
    return train_set, sets[TEST], rendered[TEST]


def _floor(test: ImageSet, rendered) -> tuple[float, dict]:
    """The better of the majority class and the signal baseline on the test frames, + MARGIN
    (so a constant predictor, at most the majority class, is below it)."""
    y = test.labels[test.labels >= 0]
    majority = max(y.mean(), 1 - y.mean())
    frames, _ = signal_baseline(rendered)
    label = rendered["label"].values
    known = label != ""
    signal = float((frames["label_pred"].to_numpy()[known] == label[known]).mean())
    return max(majority, signal) + MARGIN, {"majority": majority, "signal": signal}


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(((p > 0.5) == y).mean())


def test_full_method_beats_the_signal_baseline_on_a_held_out_subject(study):
    train_set, test, rendered = study
    floor, baselines = _floor(test, rendered)
    cfg = replace(BreathConfig(), size=16, epochs=4, pretrain_epochs=1, batch_size=32,
                  max_train=600, lr=3e-3, seed=0)
    torch.manual_seed(0)
    model = train(train_set, cfg)
    keep = test.labels >= 0
    p = predict_proba(model, test.images[keep],
                      groups=test.meta["subject"].to_numpy()[keep])
    acc = _accuracy(p, test.labels[keep])
    assert baselines["signal"] > baselines["majority"]  # the baseline itself works
    assert acc > floor, (acc, baselines)
