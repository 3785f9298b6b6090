"""``irtrepro evaluate`` end to end on a tiny keypoint corpus: jobs, summary, resume, exit."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.requires_torch


@pytest.fixture()
def tiny_keypoints(monkeypatch):
    from irtrepro.keypoints import train
    from irtrepro.report import evaluation
    from irtrepro.synth import pose_corpus

    cfg = train.KeypointConfig(n_subjects=3, frames_per_subject=10, latent_ch=16,
                               deconv_ch=16, batch=8, teacher_epochs=1, max_epochs=1,
                               patience=100)
    corpus = pose_corpus.make_corpus(cfg, progress=False)
    labelled = np.random.default_rng(1).random(len(corpus)) < 0.5

    def setup(manifest, progress, corpus_seed):
        fn = partial(evaluation._keypoints_job, corpus=corpus, labelled=labelled, config=cfg)
        return sorted(set(corpus.subject)), fn, "tiny"

    monkeypatch.setattr(evaluation, "_keypoints", setup)
    monkeypatch.setattr("irtrepro.report.pipeline.ensure_files", lambda path: None)
    return corpus


def test_evaluate_runs_loso_times_seeds_and_resumes(tiny_keypoints, tmp_path, capsys):
    from irtrepro.cli import main

    out = tmp_path / "ev"
    args = ["evaluate", "--models", "keypoints", "--seeds", "0,1", "--out", str(out),
            "--workers", "1"]
    # a spent time budget: no job starts, the summary and the exit code say so
    assert main([*args, "--max-minutes", "0"]) == 3
    first = json.loads((out / "evaluation.json").read_text())["models"]["keypoints"]
    assert first["jobs_planned"] == 6 and first["jobs_done"] == 0 and not first["complete"]
    assert len(first["pending"]) == 6 and first["figures"]["AP student"]["value"] is None
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "keypoints: 6 of 6 jobs" in text and "AP student" in text
    m = json.loads((out / "evaluation.json").read_text())["models"]["keypoints"]
    assert m["complete"] and m["folds"] == "leave-one-subject-out"
    # each model carries its own provenance (the file's head is its last writer's)
    assert m["seeds"] == [0, 1] and m["commit"] and "corpus_seed" in m
    # and the machines its jobs ran on
    assert len(m["cpu"]) == 1 and m["cpu"][0].startswith(("cpu (", "cuda ("))
    assert sorted(s for v in m["test_subjects"].values() for s in v) == sorted(
        set(tiny_keypoints.subject))
    fig = m["figures"]["AP student"]
    assert fig["n_subjects"] == 3 and fig["n_jobs"] == 6 and fig["target"] == ">= 0.8"
    assert fig["ci_low"] <= fig["value"] <= fig["ci_high"]
    for choice in m["choices"].values():
        assert choice["validation_subjects"][0] in choice["training_subjects"] + \
            choice["validation_subjects"]
    # the jobs done before were reused: the first job's file is unchanged
    job = out / "jobs" / "keypoints" / "fold0-seed0.json"
    stamp = job.stat().st_mtime_ns
    assert main(args) == 0 and job.stat().st_mtime_ns == stamp


def test_bad_options_are_named(tmp_path):
    from irtrepro.cli import main

    assert main(["evaluate", "--folds", "breathing=five", "--out", str(tmp_path)]) == 2
    assert main(["evaluate", "--seeds", "a,b", "--out", str(tmp_path)]) == 2


def test_corpus_seed_renders_other_subjects_with_the_same_training_seed():
    from irtrepro.keypoints.train import KeypointConfig, labelled_frames
    from irtrepro.synth.pose_corpus import make_corpus

    small = dict(n_subjects=2, frames_per_subject=6)
    base = KeypointConfig(**small)
    assert base.data_seed == base.seed == 0
    # None means the training seed: one number still fixes a whole run
    assert KeypointConfig(seed=4, **small).data_seed == 4
    other = KeypointConfig(corpus_seed=9, **small)
    assert other.seed == 0 and other.data_seed == 9
    a, b = make_corpus(base, progress=False), make_corpus(other, progress=False)
    again = make_corpus(KeypointConfig(seed=3, corpus_seed=0, **small), progress=False)
    assert not np.allclose(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.keypoints, again.keypoints)
    n = 400
    assert (labelled_frames(base, n) != labelled_frames(other, n)).any()
    np.testing.assert_array_equal(labelled_frames(base, n),
                                  labelled_frames(KeypointConfig(seed=3, corpus_seed=0), n))
