"""reliability(): SEM, typical error, MDC, CV, change in mean against the published figures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from irtrepro.stats import reliability


def _get(table, statistic, term=None):
    rows = table[table.statistic == statistic]
    if term is not None:
        rows = rows[rows.term == term]
    assert len(rows) == 1, (statistic, term, rows)
    return rows.iloc[0]


def test_sem_and_cv_shrout_fleiss(sf1979):
    # ../shared/reference/README.md: SEM = sqrt(MSE) = 1.0096754; CV = 100 sqrt(MSE)/mean = 19.0805 %
    t = reliability(sf1979, "target", "judge", "score")
    assert _get(t, "sem", "sqrt(MSE)").estimate == pytest.approx(1.0096754, abs=5e-8)
    assert _get(t, "cv_percent", "100*sqrt(MSE)/mean").estimate == pytest.approx(19.0805, abs=5e-5)
    # the ICC rows are the icc() table
    icc_rows = t[t.statistic == "icc"]
    assert icc_rows.set_index("term").loc["ICC(A,1)", "estimate"] == pytest.approx(0.2897637795,
                                                                                   abs=1e-9)
    # MSE on (n-1)(k-1) = 15 df: chi-square CI of the typical error
    te = _get(t, "typical_error")
    lo = 1.0096754 * np.sqrt(15 / st.chi2.ppf(0.975, 15))
    hi = 1.0096754 * np.sqrt(15 / st.chi2.ppf(0.025, 15))
    assert (te.ci_low, te.ci_high) == pytest.approx((lo, hi), abs=1e-7)
    mdc = _get(t, "mdc95")
    assert mdc.estimate == pytest.approx(st.norm.ppf(0.975) * np.sqrt(2) * 1.0096754, abs=1e-7)


def test_wright_typical_error_and_change_in_mean(pefr):
    # ../shared/reference/README.md: change in mean -4.9411765, TE = SD(diff)/sqrt(2) = 15.3612145
    long = pefr.melt(id_vars="subject", value_vars=["wright1", "wright2"], var_name="session",
                     value_name="pefr")
    t = reliability(long, "subject", "session", "pefr")
    te = _get(t, "typical_error")
    assert te.estimate == pytest.approx(15.3612145, abs=5e-8)
    assert _get(t, "sem", "sqrt(MSE)").estimate == pytest.approx(15.3612145, abs=5e-8)
    ch = _get(t, "change_in_mean")
    assert ch.term == "wright2 - wright1"
    assert ch.estimate == pytest.approx(-4.9411765, abs=5e-8)
    d = pefr.wright2 - pefr.wright1
    res = st.ttest_1samp(d, 0.0)
    assert ch.p == pytest.approx(res.pvalue, rel=1e-10)
    ci = res.confidence_interval(0.95)
    assert (ch.ci_low, ch.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    # CV% of the log analysis (Hopkins): 100 (exp(SD(diff of ln)/sqrt 2) - 1)
    dl = np.log(pefr.wright2) - np.log(pefr.wright1)
    cv = 100 * (np.exp(dl.std(ddof=1) / np.sqrt(2)) - 1)
    assert _get(t, "cv_percent", "100*(exp(TE of ln values)-1)").estimate == pytest.approx(
        cv, rel=1e-12)
    # SEM the other way, named
    sem2 = _get(t, "sem", "SD*sqrt(1-ICC(C,1))")
    icc_c = _get(t, "icc", "ICC(C,1)").estimate
    sd_all = long.pefr.std(ddof=1)
    assert sem2.estimate == pytest.approx(sd_all * np.sqrt(1 - icc_c), rel=1e-12)


def test_bootstrap_is_seeded_and_brackets_estimate(make_cube):
    import xarray as xr

    da = xr.DataArray(make_cube(n_metric=2), dims=("metric", "subject", "session"),
                      coords={"metric": ["a", "b"]})
    t1 = reliability(da, n_boot=200, seed=3)
    t2 = reliability(da, n_boot=200, seed=3)
    assert t1.equals(t2)
    rows = t1[t1.statistic.isin(["icc", "sem", "typical_error"])]
    assert (rows.boot_n == 200).all()
    assert (rows.boot_ci_low <= rows.boot_ci_high).all()
    # the two metrics differ, so their bootstrap draws must not be copies
    a = t1[(t1.metric == "a") & (t1.statistic == "icc")].boot_ci_low.to_numpy()
    b = t1[(t1.metric == "b") & (t1.statistic == "icc")].boot_ci_low.to_numpy()
    assert not np.allclose(a, b)


def test_sessions_keep_their_order(make_cube):
    import pandas as pd
    import xarray as xr

    da = xr.DataArray(make_cube(n_metric=1)[0], dims=("subject", "session"), name="tnv",
                      coords={"session": ["CON", "SI", "IS"]})
    long = da.to_dataframe().reset_index()
    terms = reliability(long, "subject", "session", "tnv").query("statistic == 'change_in_mean'")
    assert list(terms.term) == ["SI - CON", "IS - SI"]
    assert list(reliability(da).query("statistic == 'change_in_mean'").term) == list(terms.term)
    cat = long.assign(session=pd.Categorical(long.session, ["IS", "SI", "CON"], ordered=True))
    terms = reliability(cat, "subject", "session", "tnv").query("statistic == 'change_in_mean'")
    assert list(terms.term) == ["SI - IS", "CON - SI"]
