"""Segmentation uncertainty carried into the reliability statistics (analyses/reliability.py).

The ``<metric>_seg`` variables are planted here on the example Study: versions that agree
must leave every interval as it is, and a planted segmentation error must come back as the
measured error SD, widen the pooled intervals and flag the metric.
"""

import numpy as np
import pytest
import xarray as xr

import irtrepro as irt
from irtrepro.report.run import find_analyses, load_analysis
from irtrepro.vision.uncertainty import AS_SEGMENTED, GROUND_TRUTH

EVERY_S = 20


def _with_seg(study, *, tta_sd, error_sd, truth_subjects, seed=0):
    """``tnv_seg`` at every EVERY_S-th second: as segmented = tnv; 'flip' = tnv + a constant
    offset per subject-session (SD tta_sd); ground truth = tnv - a constant error per held-out
    subject-session (SD error_sd)."""
    rng = np.random.default_rng(seed)
    tnv = study["tnv"].sel(side="both").transpose("subject", "session", "time").values
    keep = np.zeros(tnv.shape[-1], bool)
    keep[::EVERY_S] = True
    base = np.where(keep, tnv, np.nan)
    ns, nx = tnv.shape[:2]
    flip = base + rng.normal(0, tta_sd, (ns, nx, 1)) if tta_sd else base.copy()
    truth = np.full_like(base, np.nan)
    for i, s in enumerate(study.subject.values):
        if s in truth_subjects:
            truth[i] = base[i] - rng.normal(0, error_sd, (nx, 1))
    seg = np.stack([base, flip, truth], axis=2)
    return study.assign(tnv_seg=(("subject", "session", "segmentation", "time"), seg,
                                 {"units": "degC"})).assign_coords(
        segmentation=[AS_SEGMENTED, "flip", GROUND_TRUTH])


@pytest.fixture(scope="module")
def study():
    return irt.example_study()


def _tables(study):
    part = load_analysis("reliability", find_analyses()).run(study, seed=0)
    return part, part.tables["segmentation_sensitivity"][0].set_index(["metric", "window"])


def test_without_seg_variables_there_is_no_table(study):
    part = load_analysis("reliability", find_analyses()).run(study, seed=0)
    assert "segmentation_sensitivity" not in part.tables


def test_versions_that_agree_leave_the_intervals_as_they_are(study):
    s = _with_seg(study, tta_sd=0.0, error_sd=0.0, truth_subjects=study.subject.values[:3])
    part, t = _tables(s)
    icc = part.tables["icc_choice"][0].set_index(["metric", "window"])
    for window in ("onset", "warmup", "recovery"):
        row = t.loc[("tnv", window)]
        assert row.tta_se_widening == 1 and row.tta_seg_sd == 0
        np.testing.assert_allclose([row.tta_ci_low, row.tta_ci_high],
                                   [row.ci_low, row.ci_high], rtol=1e-9)
        np.testing.assert_allclose(row.icc, icc.loc[("tnv", window), "icc_a1"], rtol=1e-12)
        assert row.error_sd == 0 and row.error_n == 3 * study.sizes["session"]
        assert not row.segmentation_limited


def test_a_planted_error_is_measured_widens_the_intervals_and_flags(study):
    s = _with_seg(study, tta_sd=0.3, error_sd=0.5, truth_subjects=study.subject.values)
    part, t = _tables(s)
    row = t.loc[("tnv", "warmup")]
    # the error is constant within a session: every window's mean error is the planted one
    assert 0.25 < row.error_sd < 0.8               # SD of 12 draws of N(0, 0.5)
    assert 0.1 < row.tta_seg_sd < 0.4              # SD of two versions: |offset| / sqrt 2
    assert row.tta_se_widening > 1.01 and row.error_se_widening > 1.01
    assert row.error_ci_high - row.error_ci_low > row.ci_high - row.ci_low
    assert row.basis == "measured error"
    assert row.segmentation_limited == (row.error_sd / row.within_subject_sd >= 0.5)
    flagged = t[t.segmentation_limited]
    assert all(f"{m} ({w})" in " ".join(part.notes) for m, w in flagged.index)


def test_without_ground_truth_the_flag_rests_on_the_augmentation(study):
    s = _with_seg(study, tta_sd=0.3, error_sd=0.5, truth_subjects=())
    _, t = _tables(s)
    row = t.loc[("tnv", "warmup")]
    assert np.isnan(row.error_sd) and np.isnan(row.error_se_widening)
    assert row.basis == "augmentation"
    np.testing.assert_allclose(row.seg_to_within_sd, row.tta_seg_sd / row.within_subject_sd)


def test_the_seg_variables_do_not_disturb_the_other_analyses(study):
    s = _with_seg(study, tta_sd=0.3, error_sd=0.5, truth_subjects=study.subject.values)
    for name in ("time_courses", "individual"):
        a = load_analysis(name, find_analyses()).run(s, seed=0).tables
        b = load_analysis(name, find_analyses()).run(study, seed=0).tables
        assert a.keys() == b.keys()
        for k in a:
            xr.testing.assert_equal(xr.Dataset.from_dataframe(a[k][0].reset_index(drop=True)),
                                    xr.Dataset.from_dataframe(b[k][0].reset_index(drop=True)))
