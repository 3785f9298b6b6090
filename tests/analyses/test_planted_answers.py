"""The chain's bookkeeping: on a small synthetic study, every planted answer is recovered
from the ground-truth masks.

The whole chain runs on files: generator -> cart/HR/core exports and zarr thermograms on disk ->
manifest -> readers -> sync -> Study; thermal metrics come from the frames on disk through
``irtrepro.features`` with the ground-truth masks. These tests check that readers, clocks,
extraction and analyses carry the planted answers through; they cannot check the models, since
the generator sets each region's statistics under the true masks to the truth. The same answers
through U-Nets trained from scratch are tested in test_planted_unet_fast.py (``make test``) and
test_planted_unet.py (``make test-slow``).
"""

import json

import numpy as np
import pytest
import xarray as xr

from irtrepro.features.extract import extract_store, to_study_vars
from irtrepro.manifest import load_manifest
from irtrepro.report.run import find_analyses, load_analysis, merge_study
from irtrepro.sync import build_study
from irtrepro.synth.physiology import SynthConfig
from irtrepro.synth.study import GeneratorConfig, generate_study

CFG = GeneratorConfig(
    physiology=SynthConfig(n_subjects=8, seed=3, sessions=(("CON", "CON", 1), ("SI", "SI", 2))),
    kinds=("cpet", "hr", "core", "thermal"),
    thermal={"frame_interval_s": 30.0, "shape": [120, 160]})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    manifest = generate_study(root / "data", CFG, manifest_path=root / "study.yaml")
    m = load_manifest(manifest)
    study = build_study(m)
    parts = []
    for ses in m.sessions:
        per_sec = extract_store(ses.files["thermal"].path,
                                mask_store=ses.files["thermal_masks"].path,
                                grid=study.time.values)
        parts.append(to_study_vars(per_sec).expand_dims(subject=[ses.subject],
                                                        session=[ses.session]))
    study = merge_study(study, xr.combine_by_coords(parts))
    truth = json.loads((root / "data" / "derivatives" / "truth" / "truth.json").read_text())
    return study, truth


def _run(name, study):
    return load_analysis(name, find_analyses()).run(study, seed=0)


def test_delta_tnv_against_viat(demo):
    study, truth = demo
    table = _run("individual", study).tables["correlations"][0].set_index("x")
    row = table.loc["delta_tnv (mean of sessions)"]
    assert row.ci_low <= truth["delta_tnv_viat_r_planted"] <= row.ci_high
    assert row.r < -0.5 and row.n == 8


def test_tp_tracks_hr_inversely(demo):
    study, truth = demo
    q = _run("cardiopulmonary", study).tables["questions"][0].set_index(["x", "y"])
    lo, hi = truth["tp_hr_r_within_truth_range"]
    tp_hr = q.loc[("tp", "hr")]
    # thermogram noise attenuates r a little; the planted range is -0.9 to -0.63
    assert lo - 0.15 <= tp_hr.r_within_pooled <= hi + 0.05
    assert tp_hr.r < -0.5 and tp_hr.ci_high < 0
    # the interval the claims rest on (cluster bootstrap over subject-sessions) excludes zero
    assert tp_hr.claim_ci_low == tp_hr.cluster_boot_ci95_low
    assert tp_hr.claim_ci_high < 0
    assert q.loc[("tp", "vo2")].r < -0.4


def test_tp_entropy_follows_tcore_in_warmup(demo):
    study, _ = demo
    q = _run("cardiopulmonary", study).tables["questions"][0].set_index(["x", "y"])
    assert q.loc[("tp_entropy", "tcore")].r_within_pooled > 0.5


def test_baseline_icc_covers_the_planted_value(demo):
    study, truth = demo
    icc = _run("reliability", study).tables["icc"][0]
    row = icc[(icc.metric == "tnv") & (icc.window == "onset") & (icc.form == "ICC(1,1)")].iloc[0]
    assert row.ci_low <= truth["icc_baseline"]["tnv"] <= row.ci_high


def test_every_analysis_runs_and_labels_its_output(demo):
    study, _ = demo
    for name in ("time_courses", "reliability", "cardiopulmonary", "individual",
                 "mixed_models", "auxiliary"):
        part = _run(name, study)
        assert part.tables, name
        for tname, (df, caption) in part.tables.items():
            assert len(caption) > 20, (name, tname)
            assert len(df) > 0, (name, tname)
    ts = _run("time_courses", study).tables["phase_means"][0]
    assert np.isfinite(ts.filter(like="tnv_mean").to_numpy(float)).all()
