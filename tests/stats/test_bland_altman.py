"""Bland–Altman against the 1986 peak-flow paper (../shared/reference) and repeated readings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from irtrepro.stats import bland_altman, bland_altman_repeated

T16 = 2.1199052992  # t(0.975, 16), README


def test_pefr_bias_sd_limits(pefr):
    r = bland_altman(pefr.wright1, pefr.mini1)
    assert r.bias == pytest.approx(-2.1176470588, abs=1e-9)
    assert r.sd == pytest.approx(38.7651298736, abs=1e-9)
    assert r.loa_low == pytest.approx(-78.0973016111, abs=1e-9)
    assert r.loa_high == pytest.approx(73.8620074934, abs=1e-9)
    assert r.bias_ci == pytest.approx((-22.0488376966, 17.8135435790), abs=1e-9)
    assert r.n == 17 and r.loa_ci == "exact" and r.ci_level == 0.95


def test_pefr_published_rounded_limits(pefr):
    # Lancet 1986 (limits at bias +- 2 SD): bias -2.1, SD 38.8, limits -79.7 and 75.5
    r = bland_altman(pefr.wright1, pefr.mini1, agreement=2)
    assert round(r.bias, 1) == -2.1 and round(r.sd, 1) == 38.8
    # the paper computed the limits from the rounded bias and SD: -2.1 -+ 2 * 38.8
    assert round(round(r.bias, 1) - 2 * round(r.sd, 1), 1) == -79.7
    assert round(round(r.bias, 1) + 2 * round(r.sd, 1), 1) == 75.5
    assert r.loa_low == pytest.approx(-79.7, abs=0.06) and r.loa_high == pytest.approx(75.5, abs=0.1)


@pytest.mark.parametrize("method,se", [("exact", 16.3951079847), ("approx", 16.2846117950)])
def test_pefr_limit_cis(pefr, method, se):
    r = bland_altman(pefr.wright1, pefr.mini1, loa_ci=method)
    lo, hi = -78.0973016111, 73.8620074934
    assert r.loa_low_ci == pytest.approx((lo - T16 * se, lo + T16 * se), abs=1e-8)
    assert r.loa_high_ci == pytest.approx((hi - T16 * se, hi + T16 * se), abs=1e-8)
    frame = r.to_frame().set_index("statistic")
    assert r.loa_ci == method
    assert frame.loc["loa_high", "ci_high"] == pytest.approx(hi + T16 * se, abs=1e-8)
    assert frame.loc["loa_low", "ci_low"] == pytest.approx(lo - T16 * se, abs=1e-8)
    assert "Bland & Altman" in frame.loc["loa_low", "ci_method"]


def test_pefr_nct_interval_is_exact_coverage_quantile(pefr):
    r = bland_altman(pefr.wright1, pefr.mini1, loa_ci="nct")
    n, z = 17, 1.96
    q = st.nct.ppf([0.025, 0.975], n - 1, z * np.sqrt(n)) / np.sqrt(n)
    assert r.loa_high_ci == pytest.approx((r.bias + r.sd * q[0], r.bias + r.sd * q[1]), abs=1e-9)
    # close to the exact-variance normal approximation
    assert r.loa_high_ci[1] - r.loa_high_ci[0] == pytest.approx(2 * T16 * 16.3951079847, rel=0.1)


def test_proportional_bias_regression_matches_linregress(pefr):
    r = bland_altman(pefr.wright1, pefr.mini1)
    mean = (pefr.wright1 + pefr.mini1) / 2
    lr = st.linregress(mean, pefr.wright1 - pefr.mini1)
    assert r.slope == pytest.approx(lr.slope, rel=1e-10)
    assert r.slope_p == pytest.approx(lr.pvalue, rel=1e-8)
    half = st.t.ppf(0.975, 15) * lr.stderr
    assert r.slope_ci == pytest.approx((lr.slope - half, lr.slope + half), rel=1e-10)


def test_log_gives_back_transformed_ratios(pefr):
    r = bland_altman(pefr.wright1, pefr.mini1, log=True)
    d = np.log(pefr.wright1) - np.log(pefr.mini1)
    assert r.bias == pytest.approx(np.exp(d.mean()), rel=1e-12)
    assert r.loa_low == pytest.approx(np.exp(d.mean() - 1.96 * d.std(ddof=1)), rel=1e-12)
    assert r.to_frame().scale.iloc[0] == "ratio x/y"


def test_repeated_varying_one_way_anova_of_differences(pefr):
    # two pairs per subject (readings 1 and 2 of both meters): compare with the direct formula
    long = pd.concat([
        pefr[["subject", "wright1", "mini1"]].set_axis(["subject", "x", "y"], axis=1),
        pefr[["subject", "wright2", "mini2"]].set_axis(["subject", "x", "y"], axis=1),
    ])
    r = bland_altman_repeated(long, "subject", "x", "y", true_value="varying")
    d = (long.x - long.y).to_numpy()
    g = long.subject.to_numpy()
    means = pd.Series(d).groupby(g).mean()
    msw = ((d - means[g].to_numpy()) ** 2).sum() / (len(d) - 17)
    msb = 2 * ((means - d.mean()) ** 2).sum() / 16
    s2b = (msb - msw) / 2  # equal replicates: divisor m = 2
    assert r.sd == pytest.approx(np.sqrt(s2b + msw), rel=1e-12)
    assert r.bias == pytest.approx(d.mean(), rel=1e-12)
    assert r.n_subjects == 17 and r.n_obs == 34


def test_repeated_constant_equal_replicates_formula(pefr):
    # Bland & Altman 1999 section 5.1: s2_D = s2_dbar + (1 - 1/m) s2_wx + (1 - 1/m) s2_wy
    long = pd.concat([
        pefr[["subject", "wright1", "mini1"]].set_axis(["subject", "x", "y"], axis=1),
        pefr[["subject", "wright2", "mini2"]].set_axis(["subject", "x", "y"], axis=1),
    ])
    r = bland_altman_repeated(long, "subject", "x", "y", true_value="constant")
    s2wx = ((pefr.wright1 - pefr.wright2) ** 2).sum() / (2 * 17)
    s2wy = ((pefr.mini1 - pefr.mini2) ** 2).sum() / (2 * 17)
    dbar = (pefr.wright1 + pefr.wright2) / 2 - (pefr.mini1 + pefr.mini2) / 2
    var = dbar.var(ddof=1) + 0.5 * s2wx + 0.5 * s2wy
    assert r.var_components["within_x"] == pytest.approx(s2wx, rel=1e-12)
    assert r.sd == pytest.approx(np.sqrt(var), rel=1e-12)
    assert r.loa_high == pytest.approx(dbar.mean() + 1.96 * np.sqrt(var), rel=1e-12)
    assert r.to_frame().true_value.iloc[0] == "constant"


def test_repeated_constant_unequal_replicates_uses_harmonic_mean():
    rng = np.random.default_rng(2)
    rows = []
    for s in range(8):
        true = rng.normal(5, 1)
        for _ in range(1 + s % 3):
            rows.append((s, true + rng.normal(0, 0.3), np.nan))
        for _ in range(2 + s % 2):
            rows.append((s, np.nan, true + 0.4 + rng.normal(0, 0.4)))
    df = pd.DataFrame(rows, columns=["subject", "x", "y"])
    r = bland_altman_repeated(df, "subject", "x", "y", true_value="constant")
    gx = df.dropna(subset=["x"]).groupby("subject").x
    gy = df.dropna(subset=["y"]).groupby("subject").y
    mx, my = gx.count(), gy.count()
    s2wx = (gx.transform(lambda v: (v - v.mean()) ** 2).sum()) / (mx.sum() - 8)
    s2wy = (gy.transform(lambda v: (v - v.mean()) ** 2).sum()) / (my.sum() - 8)
    dbar = gx.mean() - gy.mean()
    hx, hy = 1 / np.mean(1 / mx), 1 / np.mean(1 / my)
    var = dbar.var(ddof=1) + (1 - 1 / hx) * s2wx + (1 - 1 / hy) * s2wy
    assert r.sd == pytest.approx(np.sqrt(var), rel=1e-12)
    assert r.bias == pytest.approx(dbar.mean(), rel=1e-12)
