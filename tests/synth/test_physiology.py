"""The planted truths are present in the generated truth (before any file or model)."""

import json

import numpy as np
import pingouin as pg
import pytest

from irtrepro.summaries import delta_tnv, window_mean
from irtrepro.synth.physiology import SynthConfig, simulate_breaths, simulate_study


@pytest.fixture(scope="module")
def truth():
    return simulate_study(SynthConfig())


def test_bit_for_bit_reproducible():
    cfg = SynthConfig(n_subjects=3, seed=5)
    a, b = simulate_study(cfg), simulate_study(cfg)
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values)
    c = simulate_study(SynthConfig(n_subjects=3, seed=6))
    assert not np.allclose(a.hr.values, c.hr.values, equal_nan=True)


def test_shape_units_and_ranges(truth):
    assert dict(truth.sizes) == {"subject": 11, "session": 3, "time": 2760, "side": 2}
    assert truth.protocol.values.tolist() == ["CON", "SI", "IS"]
    assert truth.day.values.tolist() == [1, 2, 2]
    for v in truth.data_vars:
        assert "units" in truth[v].attrs and "long_name" in truth[v].attrs, v
    assert 13 <= truth.viat.min() and truth.viat.max() <= 18
    running = truth.sel(time=slice(900, 1400))  # steady or intervals in every protocol
    assert 130 < float(running.hr.mean()) < 185
    assert float(truth.tcore.max()) < 39.6 and float(truth.tcore.min()) > 36.4
    # same mean speed across protocols, per subject
    mean_speed = truth.speed.mean("time")
    np.testing.assert_allclose(mean_speed.values, mean_speed.isel(session=0).values[:, None]
                               * np.ones((1, 3)), rtol=1e-9)


def test_delta_tnv_correlates_with_viat_as_planted(truth):
    cfg = SynthConfig()
    d = delta_tnv(truth.tnv.mean("side")).mean("session")
    r = np.corrcoef(d.values, truth.viat.values)[0, 1]
    assert abs(r - cfg.delta_tnv_viat_r) < 0.1
    assert float(d.mean()) < -0.5  # TNV falls after exercise onset
    # larger core-skin gradient with higher vIAT
    grad = (truth.tcore - truth.tnv.mean("side")).sel(time=slice(480, 600)).mean(["time",
                                                                                    "session"])
    assert np.corrcoef(grad.values, truth.viat.values)[0, 1] > 0.5


def test_tp_couples_inversely_with_hr_within_subjects(truth):
    rs = []
    for s in truth.subject.values:
        for j in truth.session.values:
            x = truth.sel(subject=s, session=j)
            m = np.isin(x.phase.values, ["intervals", "recovery"])
            rs.append(np.corrcoef(x.tp.mean("side").values[m], x.hr.values[m])[0, 1])
    assert -0.95 < np.median(rs) < -0.6
    assert max(rs) < -0.5
    assert json.loads(truth.attrs["truth"])["tp_hr_r_within_truth_range"][1] == pytest.approx(
        max(rs))


def test_tp_entropy_follows_tcore_in_warmup(truth):
    w = truth.where(truth.phase == "warmup")
    for s in truth.subject.values[:3]:
        x = w.sel(subject=s, session="CON")
        m = np.isfinite(x.tcore.values)
        assert np.corrcoef(x.tp_entropy.mean("side").values[m], x.tcore.values[m])[0, 1] > 0.9


def test_planted_icc_is_recovered_from_baselines():
    cfg = SynthConfig(n_subjects=80, seed=11)
    ds = simulate_study(cfg)
    base = window_mean(ds.tnv.mean("side"), 0, 60).to_dataframe("tnv").reset_index()
    res = pg.intraclass_corr(base, targets="subject", raters="session", ratings="tnv")
    icc1 = res.set_index("Type").loc["ICC(1,1)", "ICC"]
    assert abs(icc1 - cfg.planted_icc()["tnv"]) < 0.08


def test_breath_table_matches_truth_rate():
    ds = simulate_study(SynthConfig(n_subjects=1, seed=3))
    ts = ds.isel(subject=0, session=0)
    b = simulate_breaths(ts, 0)
    assert (b.t_start.diff().dropna() > 0).all()
    assert ((b.t_insp_end > b.t_start) & (b.t_end > b.t_insp_end)).all()
    rate = np.interp(b.t_start, ts.time, ts.rf)
    assert abs(np.median(b.rf / rate) - 1) < 0.02
    assert len(b) == pytest.approx(float(ts.rf.mean()) * 46, rel=0.05)
