"""Planted answers through the trained U-Nets (slow: ``make test-slow``, ~5 min on 2 cores).

tests/analyses/test_planted_answers.py checks the chain with the ground-truth masks; this
module replaces them by the default ROI and vessel models, trained from scratch on half of the
subjects of a small synthetic study and applied to every frame of every subject, so the
skin-temperature metrics the analyses see come from segmentation, as in ``make report``.
"""

import json

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = [pytest.mark.slow, pytest.mark.requires_torch]


@pytest.fixture(scope="module")
def unet_study(tmp_path_factory):
    from irtrepro._threads import torch_threads
    from irtrepro.features.extract import extract_session, to_study_vars
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.manifest import load_manifest
    from irtrepro.report.run import merge_study
    from irtrepro.sync import build_study
    from irtrepro.synth.study import generate_study
    from irtrepro.vision.infer import predict_masks
    from irtrepro.vision.train import train_segmenter
    from tests.analyses.test_planted_answers import CFG

    torch_threads(2)
    root = tmp_path_factory.mktemp("planted_unet")
    m = load_manifest(generate_study(root / "data", CFG, manifest_path=root / "study.yaml"))
    study = build_study(m)
    stores = {(s.subject, s.session): s for s in m.sessions}
    train_subjects = sorted({s.subject for s in m.sessions})[::2]
    F, R, V, S = [], [], [], []
    for (subject, _), ses in stores.items():
        if subject in train_subjects:
            fr = open_frame_store(ses.files["thermal"].path)["frames"].values
            gt = open_frame_store(ses.files["thermal_masks"].path)
            F.append(fr)
            R.append(gt["roi"].values)
            V.append(gt["vessels"].values)
            S += [subject] * len(fr)
    F, R, V = np.concatenate(F), np.concatenate(R), np.concatenate(V)
    roi_ck = train_segmenter(F, R, V, S, task="roi", seed=0)
    ves_ck = train_segmenter(F, R, V, S, task="vessels", seed=0)
    parts, errors = [], []
    for (subject, session), ses in stores.items():
        ds = open_frame_store(ses.files["thermal"].path)
        f = ds["frames"].values
        pr, pv = predict_masks(f, roi_ck, ves_ck)
        per_sec = extract_session(f, pr, pv, time=ds["time"].values, grid=study.time.values)
        parts.append(to_study_vars(per_sec).expand_dims(subject=[subject], session=[session]))
        gt = open_frame_store(ses.files["thermal_masks"].path)
        errors.append(((pr > 0) != (gt["roi"].values > 0)).mean())
    study = merge_study(study, xr.combine_by_coords(parts))
    truth = json.loads((root / "data" / "derivatives" / "truth" / "truth.json").read_text())
    return study, truth, float(np.mean(errors))


def _run(name, study):
    from irtrepro.report.run import find_analyses, load_analysis

    return load_analysis(name, find_analyses()).run(study, seed=0)


def test_segmentation_is_what_the_study_sees(unet_study):
    _, _, calf_pixel_error = unet_study
    assert calf_pixel_error < 0.01     # the U-Net, not a stand-in, made the masks


def test_tp_tracks_hr_through_the_unet(unet_study):
    study, truth, _ = unet_study
    q = _run("cardiopulmonary", study).tables["questions"][0].set_index(["x", "y"])
    lo, hi = truth["tp_hr_r_within_truth_range"]
    assert lo - 0.15 <= q.loc[("tp", "hr")].r_within_pooled <= hi + 0.05
    assert q.loc[("tp", "hr")].ci_high < 0


@pytest.mark.xfail(strict=True, reason=(
    "known limitation: through the default U-Nets the warm-up TP entropy "
    "-TCORE coupling is attenuated (this study r_within 0.43; demo report rmcorr 0.02) because "
    "perforator mask errors move the per-frame entropy of a ~35-pixel region by ~0.2 bit, "
    "against a planted warm-up change of ~0.37 bit; with ground-truth masks it is recovered "
    "(test_planted_answers). strict: an improvement that fixes it must remove this mark."))
def test_tp_entropy_follows_tcore_through_the_unet(unet_study):
    study, _, _ = unet_study
    q = _run("cardiopulmonary", study).tables["questions"][0].set_index(["x", "y"])
    assert q.loc[("tp_entropy", "tcore")].r_within_pooled > 0.5


def test_delta_tnv_against_viat_through_the_unet(unet_study):
    study, truth, _ = unet_study
    row = _run("individual", study).tables["correlations"][0].set_index("x").loc[
        "delta_tnv (mean of sessions)"]
    assert row.ci_low <= truth["delta_tnv_viat_r_planted"] <= row.ci_high
    assert row.r < -0.5
