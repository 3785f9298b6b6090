"""ICC: published Shrout & Fleiss (1979) table (psych::ICC), peak-flow test-retest, pingouin,
vectorised xarray input, REML (missing="mixed") against ANOVA and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from irtrepro.errors import IrtreproWarning
from irtrepro.stats import icc

# ../shared/reference/README.md: psych::ICC on the Shrout & Fleiss (1979) data (95 % CI)
SF_TABLE = {
    # form: (shrout_fleiss, icc, F, df1, df2, p, ci_low, ci_high)
    "ICC(1,1)": ("ICC1", 0.1657417684, 1.7946784922, 5, 18, 0.1647688083, -0.1329323249, 0.7225600623),
    "ICC(A,1)": ("ICC2", 0.2897637795, 11.0272479564, 5, 15, 1.345665e-4, 0.0187865134, 0.7610843696),
    "ICC(C,1)": ("ICC3", 0.7148407148, 11.0272479564, 5, 15, 1.345665e-4, 0.3424647650, 0.9458582600),
    "ICC(1,k)": ("ICC1k", 0.4427971337, 1.7946784922, 5, 18, 0.1647688083, -0.8844421552, 0.9124154203),
    "ICC(A,k)": ("ICC2k", 0.6200505476, 11.0272479564, 5, 15, 1.345665e-4, 0.0711368153, 0.9272320402),
    "ICC(C,k)": ("ICC3k", 0.9093155424, 11.0272479564, 5, 15, 1.345665e-4, 0.6756747138, 0.9858916782),
}


@pytest.mark.parametrize("form", list(SF_TABLE))
def test_icc_matches_shrout_fleiss_psych(sf1979, form):
    row = icc(sf1979, "target", "judge", "score").set_index("form").loc[form]
    sf, value, f, df1, df2, p, lo, hi = SF_TABLE[form]
    assert row.shrout_fleiss == sf
    assert row.icc == pytest.approx(value, abs=1e-9)
    assert row.f == pytest.approx(f, abs=1e-9)
    assert (row.df1, row.df2) == (df1, df2)
    assert row.p == pytest.approx(p, rel=1e-6)  # the table gives 7 significant digits
    assert row.ci_low == pytest.approx(lo, abs=1e-9)  # ICC(A,.): Satterthwaite df
    assert row.ci_high == pytest.approx(hi, abs=1e-9)
    assert row.ci_level == 0.95 and "psych" in row.ci_method
    assert (row.n_subjects, row.n_sessions) == (6, 4)


def test_icc_wright_test_retest(pefr):
    # ../shared/reference/README.md: Wright meter test-retest, ICC(C,1) = 0.9830458,
    # ICC(A,1) = 0.9831640 (7 decimals)
    long = pefr.melt(id_vars="subject", value_vars=["wright1", "wright2"], var_name="session",
                     value_name="pefr")
    t = icc(long, "subject", "session", "pefr").set_index("form")
    assert t.loc["ICC(C,1)", "icc"] == pytest.approx(0.9830458, abs=5e-8)
    assert t.loc["ICC(A,1)", "icc"] == pytest.approx(0.9831640, abs=5e-8)


def test_icc_matches_pingouin_all_columns():
    pg = pytest.importorskip("pingouin")
    data = pg.read_dataset("icc")  # 8 wines x 4 judges, shipped with pingouin
    expected = pg.intraclass_corr(data, "Wine", "Judge", "Scores")
    actual = icc(data, "Wine", "Judge", "Scores")
    np.testing.assert_allclose(actual["icc"], expected["ICC"], rtol=1e-12)
    np.testing.assert_allclose(actual["f"], expected["F"], rtol=1e-12)
    np.testing.assert_allclose(actual["df2"], expected["df2"])
    np.testing.assert_allclose(actual["p"], expected["pval"], rtol=1e-10)
    ci = np.stack(expected["CI95"].to_numpy())
    # pingouin rounds its CI to 2 decimals
    np.testing.assert_allclose(actual[["ci_low", "ci_high"]], ci, atol=0.005 + 1e-12)
    assert list(actual["form"]) == list(expected["Type"])


def test_xarray_vectorised_equals_per_metric_tables(make_cube):
    vals = make_cube(n_metric=5)
    da = xr.DataArray(vals, dims=("metric", "subject", "session"),
                      coords={"metric": [f"m{i}" for i in range(5)]})
    together = icc(da)
    assert list(together["metric"].unique()) == [f"m{i}" for i in range(5)]
    for i in range(5):
        long = da.isel(metric=i).to_dataframe("v").reset_index()
        alone = icc(long, "subject", "session", "v")
        got = together[together.metric == f"m{i}"].reset_index(drop=True)
        cols = ["icc", "f", "df1", "df2", "p", "ci_low", "ci_high"]
        pd.testing.assert_frame_equal(got[cols], alone[cols], rtol=1e-12)


def test_dataset_with_extra_dims_and_list_of_columns(study_summary):
    t = icc(study_summary[["tnv", "tp"]])
    # tnv: 3 phases x 2 sides, tp: 3 phases -> 9 metrics x 6 forms
    assert len(t) == 9 * 6
    assert {"variable", "phase", "side", "units"} <= set(t.columns)
    assert t.loc[t.variable == "tp", "side"].isna().all()
    assert "tnv/run/left" in set(t.metric)
    # list of value columns of a long table gives one block per column
    long = study_summary.tp.sel(phase="run").to_dataframe().reset_index()
    long["tp2"] = long["tp"] * 2
    t2 = icc(long, "subject", "session", ["tp", "tp2"])
    a, b = (t2[t2.metric == m].icc.to_numpy() for m in ("tp", "tp2"))
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_mixed_equals_anova_on_complete_data(sf1979):
    cols = ["icc", "f", "df1", "df2", "p", "ci_low", "ci_high"]
    a = icc(sf1979, "target", "judge", "score")
    b = icc(sf1979, "target", "judge", "score", missing="mixed")
    np.testing.assert_allclose(b[cols], a[cols], rtol=1e-8, atol=1e-10)
    assert b.missing.iloc[0] == "mixed" and "REML" in b.ci_method.iloc[0]


def test_mixed_keeps_incomplete_subjects_and_matches_statsmodels(make_cube):
    from statsmodels.regression.mixed_linear_model import MixedLM

    vals = make_cube(n_sub=9, n_ses=3, n_metric=1, seed=4)
    vals[0, 0, 2] = np.nan
    vals[0, 3, 0] = np.nan
    da = xr.DataArray(vals[0], dims=("subject", "session"), name="tnv")
    with pytest.warns(IrtreproWarning, match="dropped subjects"):
        listwise = icc(da)
    mixed = icc(da, missing="mixed")
    assert listwise.n_subjects.iloc[0] == 7 and mixed.n_subjects.iloc[0] == 9
    assert mixed.n_obs.iloc[0] == 25
    # statsmodels: crossed random effects as variance components of one all-encompassing group
    long = da.to_dataframe().reset_index().dropna()
    long["one"] = 1
    model = MixedLM.from_formula(
        "tnv ~ 1", groups="one", re_formula="0",
        vc_formula={"subject": "0 + C(subject)", "session": "0 + C(session)"}, data=long)
    res = model.fit(reml=True, method="powell", ftol=1e-14, maxiter=20000)
    names = list(model.exog_vc.names)
    s2s = res.vcomp[names.index("subject")]
    s2r = res.vcomp[names.index("session")]
    s2e = res.scale
    t = mixed.set_index("form")
    assert t.loc["ICC(A,1)", "icc"] == pytest.approx(s2s / (s2s + s2r + s2e), abs=1e-5)
    assert t.loc["ICC(C,1)", "icc"] == pytest.approx(s2s / (s2s + s2e), abs=1e-5)


def test_average_measures_limit_past_the_spearman_brown_pole():
    # 3 subjects, a session effect far larger than the subject effect: the Satterthwaite lower
    # limit of ICC(A,1) reaches -1/(k-1) = -1, where k r / (1 + (k-1) r) has its pole; the
    # ICC(A,k) lower limit is -inf there, in any subject order (was +-9e15, sign by order)
    import xarray as xr

    v = np.array([[0.0, 0.0], [4.0, -7.0], [0.0, 0.0]])
    tables = [icc(xr.DataArray(v[perm], dims=("subject", "session"), name="y")).set_index("form")
              for perm in ([0, 1, 2], [1, 0, 2], [2, 0, 1])]
    for t in tables:
        assert t.loc["ICC(A,1)", "ci_low"] == pytest.approx(-1.0)
        assert t.loc["ICC(A,k)", "ci_low"] == -np.inf
        assert t.loc["ICC(A,k)", "ci_low"] <= t.loc["ICC(A,k)", "icc"] <= t.loc["ICC(A,k)",
                                                                                 "ci_high"]
        np.testing.assert_allclose(t[["icc", "ci_low", "ci_high"]],
                                   tables[0][["icc", "ci_low", "ci_high"]], rtol=1e-9)
