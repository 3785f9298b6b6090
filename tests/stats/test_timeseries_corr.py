"""Windowed and lagged correlations, between-subject correlation, p-value corrections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from irtrepro.stats import between_subject_corr, lagged_xcorr, p_adjust, windowed_corr


@pytest.fixture
def series():
    rng = np.random.default_rng(5)
    rows = []
    for s in range(6):
        for phase in ("rest", "run"):
            n = 40 + 5 * s
            x = rng.normal(size=n).cumsum()
            y = 0.6 * x + rng.normal(size=n)
            rows.append(pd.DataFrame({"subject": f"S{s}", "phase": phase, "x": x, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_windowed_corr_per_subject_and_fisher_pooling(series, method):
    res = windowed_corr(series, "subject", "x", "y", window="phase", method=method)
    per = res.per_subject
    assert len(per) == 12 and set(per.phase) == {"rest", "run"}
    g = series[(series.subject == "S2") & (series.phase == "run")]
    fn = st.pearsonr if method == "pearson" else st.spearmanr
    ref = fn(g.x, g.y)
    row = per[(per.subject == "S2") & (per.phase == "run")].iloc[0]
    assert row.r == pytest.approx(ref.statistic, rel=1e-12)
    if method == "pearson":
        assert row.p == pytest.approx(ref.pvalue, rel=1e-8)
        ci = ref.confidence_interval(0.95)
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    pooled = res.pooled.set_index("phase").loc["run"]
    sub = per[per.phase == "run"]
    w = sub.n - 3
    z = (w * np.arctanh(sub.r)).sum() / w.sum()
    assert pooled.r == pytest.approx(np.tanh(z), rel=1e-12)
    assert pooled.r_min == sub.r.min() and pooled.r_max == sub.r.max()
    assert pooled.n_subjects == 6


def test_lagged_xcorr_finds_planted_lag_and_effective_n():
    rng = np.random.default_rng(0)
    n, lag = 400, 7
    base = np.convolve(rng.normal(size=n + lag + 20), np.ones(5) / 5, mode="same")
    x = base[20 : 20 + n]
    y = base[20 - lag : 20 - lag + n] + rng.normal(0, 0.05, n)  # y[t] = x[t - lag]
    out = lagged_xcorr(x, y, max_lag=15, dt=1.0)
    best = out[out.best].iloc[0]
    assert best.lag == lag  # positive lag: y lags x
    a, b = x[: n - lag], y[lag:]
    ra = ((a[:-1] - a.mean()) * (a[1:] - a.mean())).sum() / ((a - a.mean()) ** 2).sum()
    rb = ((b[:-1] - b.mean()) * (b[1:] - b.mean())).sum() / ((b - b.mean()) ** 2).sum()
    assert best.n_eff == pytest.approx((n - lag) * (1 - ra * rb) / (1 + ra * rb), rel=1e-12)
    assert best.n_eff < best.n / 3  # smoothed series: far fewer independent samples


def test_between_subject_corr_matches_scipy():
    rng = np.random.default_rng(3)
    subj = [f"S{i:02d}" for i in range(11)]
    x = pd.Series(rng.normal(size=11), index=subj)
    y = pd.Series(0.5 * x.to_numpy() + rng.normal(size=11), index=subj)
    out = between_subject_corr(x, y.sample(frac=1, random_state=1)).iloc[0]  # aligned on index
    ref = st.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)
    assert out.r == pytest.approx(ref.statistic, rel=1e-12)
    assert out.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert (out.ci_low, out.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert out.n == 11


@pytest.mark.parametrize("ours,theirs", [("holm", "holm"), ("bh", "fdr_bh")])
def test_p_adjust_matches_statsmodels(ours, theirs):
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).uniform(0, 0.2, 30)
    p[[3, 9]] = p[[9, 9]]  # ties
    assert np.allclose(p_adjust(p, ours), multipletests(p, method=theirs)[1], rtol=1e-12)
    with_nan = np.append(p, np.nan)
    assert np.isnan(p_adjust(with_nan, ours)[-1])
