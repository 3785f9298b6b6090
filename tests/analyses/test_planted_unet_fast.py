"""Planted answers through U-Nets trained here, fast enough for ``make test`` (~2 min, 1 thread).

The fast counterpart of tests/analyses/test_planted_unet.py (``make test-slow``): a smaller
study (one frame a minute), the default ROI and vessel networks trained from scratch for a
few hundred steps on half of its subjects (early stopping on a validation subject taken from
those), and every frame of every subject segmented by them. The analyses see only the
predicted masks. What is asserted is what such short training can carry: the held-out
subjects are segmented far better than an all-background prediction, and the answers that
rest on the calves and the perforators are recovered (TP against HR, delta TNV against vIAT).
The TP entropy answer is not asserted here: see the strict xfail of the slow module.
"""

import json

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.requires_torch

# measured on this study (seed 3, 8 subjects, one frame a minute): held-out calf pixel error
# 0.015, Dice vein 0.91 and perforator 0.39; TP-HR r_within -0.90; delta TNV-vIAT r -0.77
STEPS = {"roi": 60, "vessels": 250}


@pytest.fixture(scope="module")
def unet_study(tmp_path_factory):
    from irtrepro._threads import torch_threads
    from irtrepro.features.extract import extract_session, to_study_vars
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.manifest import load_manifest
    from irtrepro.report.run import merge_study
    from irtrepro.sync import build_study
    from irtrepro.synth.physiology import SynthConfig
    from irtrepro.synth.study import GeneratorConfig, generate_study
    from irtrepro.vision.infer import predict_masks
    from irtrepro.vision.train import train_segmenter

    cfg = GeneratorConfig(
        physiology=SynthConfig(n_subjects=8, seed=3,
                               sessions=(("CON", "CON", 1), ("SI", "SI", 2))),
        kinds=("cpet", "hr", "core", "thermal"),
        thermal={"frame_interval_s": 60.0, "shape": [120, 160]})
    torch_threads(1)
    root = tmp_path_factory.mktemp("planted_unet_fast")
    m = load_manifest(generate_study(root / "data", cfg, manifest_path=root / "study.yaml"))
    study = build_study(m)
    train_subjects = sorted({s.subject for s in m.sessions})[::2]
    F, R, V, S = [], [], [], []
    for ses in m.sessions:
        if ses.subject in train_subjects:
            fr = open_frame_store(ses.files["thermal"].path)["frames"].values
            gt = open_frame_store(ses.files["thermal_masks"].path)
            F.append(fr)
            R.append(gt["roi"].values)
            V.append(gt["vessels"].values)
            S += [ses.subject] * len(fr)
    F, R, V = np.concatenate(F), np.concatenate(R), np.concatenate(V)
    cks = {task: train_segmenter(F, R, V, S, task=task, seed=0, threads=1,
                                 max_steps=steps, eval_every=steps // 2)
           for task, steps in STEPS.items()}
    parts, held_out = [], {"calf_error": [], "calf_fraction": [], "dice": []}
    held_frames = []
    for ses in m.sessions:
        ds = open_frame_store(ses.files["thermal"].path)
        f = ds["frames"].values
        pr, pv = predict_masks(f, cks["roi"], cks["vessels"])
        per_sec = extract_session(f, pr, pv, time=ds["time"].values, grid=study.time.values)
        parts.append(to_study_vars(per_sec).expand_dims(subject=[ses.subject],
                                                        session=[ses.session]))
        if ses.subject in train_subjects:
            continue
        held_frames.append(f)
        gt = open_frame_store(ses.files["thermal_masks"].path)
        true_roi, true_ves = gt["roi"].values > 0, gt["vessels"].values
        held_out["calf_error"].append(((pr > 0) != true_roi).mean())
        held_out["calf_fraction"].append(true_roi.mean())
        held_out["dice"].append([2 * ((true_ves == c) & (pv == c)).sum()
                                 / ((true_ves == c).sum() + (pv == c).sum()) for c in (1, 2)])
    study = merge_study(study, xr.combine_by_coords(parts))
    truth = json.loads((root / "data" / "derivatives" / "truth" / "truth.json").read_text())
    summary = {k: np.mean(v, axis=0) for k, v in held_out.items()}
    return study, truth, {**summary, "train_subjects": train_subjects,
                          "frames": np.concatenate(held_frames)}, cks


def _run(name, study):
    from irtrepro.report.run import find_analyses, load_analysis

    return load_analysis(name, find_analyses()).run(study, seed=0)


def test_held_out_subjects_are_segmented_far_above_background(unet_study):
    _, _, held_out, cks = unet_study
    # all-background masks would miss every calf pixel (~15 % of a frame) and every vessel
    assert held_out["calf_error"] < 0.2 * held_out["calf_fraction"]
    vein, perforator = held_out["dice"]
    assert vein > 0.7 and perforator > 0.2
    # each network early-stopped on a validation subject taken from the training subjects
    for ck in cks.values():
        val, fit = set(ck.metrics["val_subjects"]), set(ck.metrics["train_subjects"])
        assert val and not val & fit and val | fit == set(held_out["train_subjects"])

def test_bfloat16_masks_match_float32_masks(unet_study):
    """The fast path (bfloat16 networks, conv-BN folded) against the float32 reference, on
    every held-out frame: Dice >= 0.99 per class."""
    from irtrepro.vision.infer import predict_masks

    _, _, held_out, cks = unet_study
    frames = held_out["frames"]
    ref = predict_masks(frames, cks["roi"], cks["vessels"], precision="float32")
    fast = predict_masks(frames, cks["roi"], cks["vessels"], precision="bfloat16")
    for k, (name, classes) in enumerate((("roi", (1, 2)), ("vessels", (1, 2)))):
        for c in classes:
            a, b = ref[k] == c, fast[k] == c
            assert a.sum() > 100, (name, c)   # the class is there to be compared
            dice = 2 * (a & b).sum() / (a.sum() + b.sum())
            assert dice >= 0.99, (name, c, dice)


def test_tp_tracks_hr_inversely_through_trained_unets(unet_study):
    study, truth, _, _ = unet_study
    q = _run("cardiopulmonary", study).tables["questions"][0].set_index(["x", "y"])
    lo, hi = truth["tp_hr_r_within_truth_range"]
    tp_hr = q.loc[("tp", "hr")]
    assert lo - 0.15 <= tp_hr.r_within_pooled <= hi + 0.05
    assert tp_hr.claim_ci_high < 0          # the cluster-bootstrap interval the claims rest on


def test_delta_tnv_against_viat_through_trained_unets(unet_study):
    study, truth, _, _ = unet_study
    row = _run("individual", study).tables["correlations"][0].set_index("x").loc[
        "delta_tnv (mean of sessions)"]
    assert row.ci_low <= truth["delta_tnv_viat_r_planted"] <= row.ci_high
    assert row.r < -0.5 and row.n == 8
