"""fit_mixed / compare against lme4 (Pastes: Bates 2010; dietox: statsmodels' lme4 numbers),
Nakagawa R², singular fits, and the Study (xarray) path with the default specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from irtrepro.errors import IrtreproWarning
from irtrepro.stats import compare, default_specs, fit_mixed


@pytest.fixture(scope="module")
def pastes_fit(pastes):
    return fit_mixed("strength ~ 1", pastes, groups="batch", vc_formula={"cask": "0 + C(cask)"})


def test_pastes_nested_variance_components_match_lme4(pastes_fit):
    # Bates (2010) lme4 book, ch. 2: lmer(strength ~ 1 + (1|batch) + (1|sample), Pastes)
    # printed: sample:batch 8.434 (SD 2.9041), batch 1.657 (SD 1.2874), residual 0.678
    # (SD 0.8234); intercept 60.0533, SE 0.6769; REML criterion 246.99
    m = pastes_fit
    rnd = m.random.set_index("kind")
    assert rnd.loc["variance", "variance"] == pytest.approx(1.657, abs=5e-4)
    assert rnd.loc["variance", "sd"] == pytest.approx(1.2874, abs=5e-5)
    assert rnd.loc["variance_component", "variance"] == pytest.approx(8.434, abs=5e-4)
    assert rnd.loc["variance_component", "sd"] == pytest.approx(2.9041, abs=5e-5)
    assert rnd.loc["residual", "sd"] == pytest.approx(0.8234, abs=5e-5)
    assert m.fixed.estimate.iloc[0] == pytest.approx(60.0533, abs=5e-5)
    assert m.fixed.se.iloc[0] == pytest.approx(0.6769, abs=5e-5)
    assert -2 * m.llf == pytest.approx(246.99, abs=5e-3)
    assert m.converged and m.warnings == []
    # Nakagawa: intercept-only model, R2m = 0 and R2c = adjusted ICC
    assert m.r2_marginal == pytest.approx(0.0, abs=1e-12)
    v = m.random.variance.to_numpy()
    assert m.icc == pytest.approx((v[0] + v[1]) / v.sum(), rel=1e-12)
    assert m.r2_conditional == pytest.approx(m.icc, rel=1e-12)


def _dietox():
    import statsmodels

    path = Path(statsmodels.__file__).parent / "regression/tests/results/dietox.csv"
    if not path.is_file():
        pytest.skip("statsmodels' test data (dietox.csv) not installed")
    return pd.read_csv(path)


def test_dietox_random_intercept_and_slope_match_lme4():
    # statsmodels test_lme.py, numbers from R: lmer(Weight ~ Time + (1 | Pig), dietox) and
    # lmer(Weight ~ Time + (1 + Time | Pig), dietox) (REML)
    data = _dietox()
    m1 = fit_mixed("Weight ~ Time", data, groups="Pig")
    np.testing.assert_allclose(m1.fixed.estimate, [15.723523, 6.942505], rtol=1e-6)
    np.testing.assert_allclose(m1.fixed.se, [0.78805374, 0.03338727], rtol=1e-6)
    np.testing.assert_allclose(m1.random.variance, [40.39395, 11.36692], rtol=1e-6)
    assert m1.llf == pytest.approx(-2404.775, abs=5e-4)
    m2 = fit_mixed("Weight ~ Time", data, groups="Pig", re_formula="1 + Time")
    np.testing.assert_allclose(m2.fixed.estimate, [15.738650, 6.939014], rtol=1e-6)
    np.testing.assert_allclose(m2.fixed.se, [0.5501253, 0.0798254], rtol=1e-6)
    rnd = m2.random.set_index("term").variance
    np.testing.assert_allclose(
        [rnd["Intercept"], rnd["Time"], rnd["Intercept x Time"], rnd[""]],
        [19.4934552, 0.4160620, 0.2938323, 6.03745], rtol=1e-5)
    assert m2.llf == pytest.approx(-2217.047, abs=5e-4)
    # Nakagawa et al. 2017 with a random slope: mean over rows of z' Sigma z
    z = np.column_stack([np.ones(len(data)), data.Time])
    sig = np.array([[19.4934552, 0.2938323], [0.2938323, 0.4160620]])
    var_r = np.mean(np.einsum("ij,jk,ik->i", z, sig, z))
    assert m2.icc == pytest.approx(var_r / (var_r + 6.03745), rel=1e-5)
    # LRT of the random slope: same fixed effects, REML likelihoods compared
    lrt = compare(m1, m2)
    assert lrt.df.iloc[1] == 2 and lrt.chi2.iloc[1] == pytest.approx(2 * (2404.775 - 2217.047),
                                                                       abs=2e-3)
    assert "REML" in lrt.method.iloc[1]


def test_compare_refits_with_ml_when_fixed_effects_differ(pastes):
    df = pastes.assign(x=np.arange(len(pastes)) % 2)
    a = fit_mixed("strength ~ 1", df, groups="batch")
    b = fit_mixed("strength ~ x", df, groups="batch")
    out = compare(a, b)
    assert "refitted by ML" in out.method.iloc[1]
    ml_a = fit_mixed("strength ~ 1", df, groups="batch", reml=False)
    ml_b = fit_mixed("strength ~ x", df, groups="batch", reml=False)
    assert out.llf.tolist() == pytest.approx([ml_a.llf, ml_b.llf], rel=1e-8)
    assert out.chi2.iloc[1] == pytest.approx(2 * (ml_b.llf - ml_a.llf), rel=1e-8)


def test_singular_fit_names_the_component():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"subject": np.repeat(np.arange(10), 6), "y": rng.normal(size=60)})
    df["y"] -= df.groupby("subject").y.transform("mean")  # no between-subject variance at all
    with pytest.warns(IrtreproWarning, match="singular fit.*'Intercept'"):
        m = fit_mixed("y ~ 1", df, groups="subject")
    assert any("at zero" in w for w in m.warnings)


def _study_like(seed=0):
    """Study-like Dataset: phase means of tnv per subject/session, with speed and protocol."""
    rng = np.random.default_rng(seed)
    subjects = [f"S{i:02d}" for i in range(1, 13)]
    sessions = ["CON", "SI", "IS"]
    phases = ["rest", "warmup", "run"]
    subj = rng.normal(0, 0.8, (12, 1, 1))
    ses = rng.normal(0, 0.3, (12, 3, 1))
    phase_eff = np.array([0.0, 0.5, 1.2])[None, None, :]
    prot_eff = np.array([0.0, 0.4, -0.2])[None, :, None]
    speed = np.broadcast_to(np.array([0.0, 8.0, 12.0])[None, None, :], (12, 3, 3)).copy()
    slope = 0.1 + rng.normal(0, 0.03, (12, 1, 1))
    tnv = 33 + subj + ses + phase_eff + prot_eff + slope * speed + rng.normal(0, 0.2, (12, 3, 3))
    dims = ("subject", "session", "phase")
    return xr.Dataset(
        {"tnv": (dims, tnv, {"units": "degC"}), "speed": (dims, speed, {"units": "km/h"}),
         "protocol": (("subject", "session"), np.array([sessions] * 12))},
        coords={"subject": subjects, "session": sessions, "phase": phases},
    )


def test_default_specs_fit_a_study():
    ds = _study_like()
    specs = {s.name: s for s in default_specs()}
    m1 = specs["tnv_phase_protocol"].fit(ds)
    m2 = specs["tnv_phase_protocol_session"].fit(ds)
    assert m1.nobs == m2.nobs == 12 * 3 * 3 and m1.n_groups == 12
    assert m1.converged and m2.converged
    assert "session within subject" in set(m2.random.group)
    assert 0 < m1.r2_marginal < m1.r2_conditional < 1
    lrt = compare(m1, m2)
    assert lrt.p.iloc[1] < 0.05  # the planted session-within-subject variance is found
    # protocol and phase effects are recovered (treatment contrasts, CON and rest reference)
    fx = m2.fixed.set_index("term").estimate
    assert fx["C(phase)[T.run]"] == pytest.approx(1.2 + 0.11 * 12, abs=0.3)
    # the random-slope example: speed is a per-row variable of the Study
    m3 = specs["tnv_speed_slope"].fit(ds)
    assert {"Intercept", "speed", "Intercept x speed"} <= set(m3.random.term)


def test_rank_deficient_interaction_drops_the_aliased_term_like_lme4():
    # CON has no interval phase: phase x protocol has an empty cell
    rng = np.random.default_rng(0)
    rows = []
    for s in range(10):
        u = rng.normal()
        for proto, phases in (("CON", ["warmup", "steady"]),
                              ("SI", ["warmup", "steady", "intervals"])):
            for ph in phases:
                eff = {"warmup": 0.0, "steady": -1.0, "intervals": -1.5}[ph]
                rows.append({"subject": f"S{s}", "protocol": proto,
                             "phase": ph, "tnv": 31 + u + eff + rng.normal(0, 0.2)})
    df = pd.DataFrame(rows)
    df["phase"] = pd.Categorical(df.phase, ["warmup", "steady", "intervals"])
    df["protocol"] = pd.Categorical(df.protocol, ["CON", "SI"])
    res = fit_mixed("tnv ~ C(phase) * C(protocol)", df)
    terms = list(res.fixed.term)
    assert "C(phase)[T.intervals]:C(protocol)[T.SI]" not in terms
    assert "C(phase)[T.intervals]" in terms
    assert any("rank deficient" in w and "intervals" in w for w in res.warnings)
    fx = res.fixed.set_index("term").estimate
    assert fx["C(phase)[T.steady]"] == pytest.approx(-1.0, abs=0.2)
