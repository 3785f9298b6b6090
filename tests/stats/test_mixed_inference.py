"""Small-sample inference of fit_mixed (Satterthwaite, Kenward-Roger) against lmerTest /
pbkrtest output, and the boundary-corrected LRT of a random effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from irtrepro.errors import OptionError
from irtrepro.stats import compare, fit_mixed

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def sleepstudy():
    return pd.read_csv(DATA / "sleepstudy.csv")


def test_sleepstudy_random_slope_satterthwaite_matches_lmertest(sleepstudy):
    # lmerTest: summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)) prints
    # (Intercept) 251.405 SE 6.825 df 17.000 t 36.838; Days 10.467 SE 1.546 df 17.000
    # t 6.771 p 3.26e-06; variances 612.09 / 35.07 (corr 0.07) / 654.94
    m = fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject", re_formula="1 + Days")
    fx = m.fixed.set_index("term")
    assert list(fx.columns[:5]) == ["estimate", "se", "df", "t", "p"]
    np.testing.assert_allclose(fx.estimate, [251.405, 10.467], atol=5e-4)
    np.testing.assert_allclose(fx.se, [6.825, 1.546], atol=5e-4)
    np.testing.assert_allclose(fx.df, [17.000, 17.000], atol=5e-4)
    np.testing.assert_allclose(fx.t, [36.838, 6.771], atol=5e-4)
    assert fx.loc["Days", "p"] == pytest.approx(3.26e-06, abs=5e-9)
    assert fx.ci_method.iloc[0].startswith("t, Satterthwaite")
    # t CI: estimate +- t_{0.975, 17} SE
    q = st.t.ppf(0.975, fx.df.to_numpy())
    np.testing.assert_allclose(fx.ci_low, fx.estimate - q * fx.se, rtol=1e-12)


def test_sleepstudy_random_intercept_non_integer_df_matches_lmertest(sleepstudy):
    # lmerTest: summary(lmer(Reaction ~ Days + (1 | Subject), sleepstudy)) prints
    # (Intercept) 251.4051 SE 9.7467 df 22.8102 t 25.79; Days 10.4673 SE 0.8042 df 161.0000
    # t 13.02 (variances 1378.2 and 960.5)
    m = fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject")
    fx = m.fixed.set_index("term")
    np.testing.assert_allclose(fx.se, [9.7467, 0.8042], atol=5e-5)
    np.testing.assert_allclose(fx.df, [22.8102, 161.0000], atol=5e-5)
    np.testing.assert_allclose(fx.t, [25.79, 13.02], atol=5e-3)


def test_kenward_roger_equals_satterthwaite_in_balanced_designs(sleepstudy, pastes):
    # balanced data: the Kenward-Roger adjustment of the covariance vanishes here and both df
    # are the ANOVA df: the lmerTest Satterthwaite values above (df 17, SE 1.546) for
    # sleepstudy, 10 batches - 1 = 9 df for the nested Pastes intercept (exact F test on the
    # batch mean square). No printed pbkrtest output was available to check against.
    kr = fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject", re_formula="1 + Days",
                   df_method="kenward-roger").fixed
    np.testing.assert_allclose(kr.df, [17.0, 17.0], atol=5e-4)
    np.testing.assert_allclose(kr.se, [6.825, 1.546], atol=5e-4)
    assert "Kenward-Roger" in kr.ci_method.iloc[0]
    for how in ("satterthwaite", "kenward-roger"):
        p = fit_mixed("strength ~ 1", pastes, groups="batch", vc_formula={"cask": "0 + C(cask)"},
                      df_method=how).fixed
        assert p.df.iloc[0] == pytest.approx(9.0, abs=1e-3)


def test_kenward_roger_unbalanced_inflates_the_se(sleepstudy):
    # unbalanced: Phi_A = Phi + 2 Lambda is larger than Phi and the df move away from 17
    d = sleepstudy.drop(index=[3, 15, 27, 28, 50, 77, 101, 140, 141, 142, 170])
    s = fit_mixed("Reaction ~ Days", d, groups="Subject", re_formula="1 + Days").fixed
    k = fit_mixed("Reaction ~ Days", d, groups="Subject", re_formula="1 + Days",
                  df_method="kenward-roger").fixed
    assert (k.se > s.se).all() and (k.se < 1.01 * s.se).all()
    assert np.all(np.abs(k.df - 17) < 1) and np.all(np.abs(s.df - 17) < 1)
    assert not np.allclose(s.df, 17.0, atol=1e-3)


def test_wald_keeps_the_z_table(sleepstudy):
    w = fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject", df_method="wald").fixed
    assert "z" in w.columns and "df" not in w.columns
    assert w.ci_method.iloc[0] == "Wald, normal"
    np.testing.assert_allclose(w.p, 2 * st.norm.sf(np.abs(w.z)), rtol=1e-12)


def test_bad_df_method_and_kr_with_ml(sleepstudy):
    with pytest.raises(OptionError, match="df_method='satter'"):
        fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject", df_method="satter")
    with pytest.raises(OptionError, match="REML"):
        fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject", reml=False,
                  df_method="kenward-roger")


def test_satterthwaite_df_of_between_subject_effect_is_near_groups_minus_two():
    # one observation per subject-level covariate value, balanced random intercepts: the
    # exact test of a between-subject covariate is the t test on subject means, df = n - 2
    rng = np.random.default_rng(3)
    n, m = 9, 4
    g = np.repeat(np.arange(n), m)
    x = rng.normal(size=n)[g]
    y = rng.normal(size=n)[g] + rng.normal(size=n * m) + 0.3 * x
    fx = fit_mixed("y ~ x", pd.DataFrame({"y": y, "x": x, "subject": g})).fixed
    assert fx.df.iloc[1] == pytest.approx(n - 2, abs=1e-3)


def test_lrt_of_a_random_effect_carries_the_boundary_mixture(sleepstudy):
    # Self & Liang (1987): one variance on the boundary, LR ~ 0.5 chi2(0) + 0.5 chi2(1);
    # random slope with its covariance (df 2): 0.5 chi2(1) + 0.5 chi2(2) (Stram & Lee 1994)
    m1 = fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject")
    m2 = fit_mixed("Reaction ~ Days", sleepstudy, groups="Subject", re_formula="1 + Days")
    out = compare(m1, m2)
    lr, df = out.chi2.iloc[1], out.df.iloc[1]
    assert df == 2
    assert out.p_mixture.iloc[1] == pytest.approx(
        0.5 * st.chi2.sf(lr, 1) + 0.5 * st.chi2.sf(lr, 2), rel=1e-12)
    assert out.p_mixture.iloc[1] < out.p.iloc[1]
    assert "Self & Liang" in out.p_mixture_method.iloc[1]
    # lme4 / Bates (2010) sleepstudy: REML criteria 1786.5 (random intercept) and 1743.6
    # (correlated random slope)
    assert lr == pytest.approx(1786.5 - 1743.6, abs=0.1)


def test_lrt_mixture_for_one_variance_halves_the_naive_p(pastes):
    a = fit_mixed("strength ~ 1", pastes, groups="batch")
    b = fit_mixed("strength ~ 1", pastes, groups="batch", vc_formula={"cask": "0 + C(cask)"})
    out = compare(a, b)
    assert out.df.iloc[1] == 1
    assert out.p_mixture.iloc[1] == pytest.approx(out.p.iloc[1] / 2, rel=1e-12)
