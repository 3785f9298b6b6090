"""rmcorr: Bland & Altman (1995) data against the rmcorr package and pingouin; vectorised pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from irtrepro.stats import rmcorr


def test_bland1995_matches_rmcorr_package(bland1995):
    # rmcorr (>= 0.5.4) tests/testthat/_snaps/rmcorr.md, printed to 7 significant digits:
    # r -0.5067697, df 38, p 0.0008471081, 95% CI -0.7067146 -0.2318631
    # (Bland & Altman 1995, BMJ 310:446 report r = -0.51)
    row = rmcorr(bland1995, "Subject", "pH", "PacO2").iloc[0]
    assert row.r == pytest.approx(-0.5067697, abs=5e-8)
    assert row.df == 38
    assert row.p == pytest.approx(0.0008471081, abs=5e-11)
    assert row.ci_low == pytest.approx(-0.7067146, abs=5e-8)
    assert row.ci_high == pytest.approx(-0.2318631, abs=5e-8)
    assert (row.n, row.n_subjects) == (47, 8)
    assert round(row.r, 2) == -0.51
    assert "df + 2" in row.ci_method


def test_bland1995_matches_pingouin(bland1995):
    pg = pytest.importorskip("pingouin")
    exp = pg.rm_corr(bland1995, x="pH", y="PacO2", subject="Subject").iloc[0]
    row = rmcorr(bland1995, "Subject", "pH", "PacO2").iloc[0]
    assert row.r == pytest.approx(exp.r, rel=1e-12)
    assert row.p == pytest.approx(exp.pval, rel=1e-9)
    assert row.df == exp.dof
    np.testing.assert_allclose([row.ci_low, row.ci_high], exp.CI95, atol=0.005)  # pg rounds


def test_ancova_definition_with_statsmodels(bland1995):
    smf = pytest.importorskip("statsmodels.formula.api")
    fit = smf.ols("PacO2 ~ C(Subject) + pH", data=bland1995).fit()
    row = rmcorr(bland1995, "Subject", "pH", "PacO2").iloc[0]
    ss_x = fit.params["pH"] ** 2 * ((bland1995.pH - bland1995.groupby("Subject").pH.transform(
        "mean")) ** 2).sum()
    r = np.sign(fit.params["pH"]) * np.sqrt(ss_x / (ss_x + fit.ssr))
    assert row.r == pytest.approx(r, rel=1e-12)
    assert row.p == pytest.approx(fit.pvalues["pH"], rel=1e-9)
    assert row.df == fit.df_resid


def test_many_pairs_in_one_call_equal_single_calls(bland1995):
    rng = np.random.default_rng(0)
    df = bland1995.copy()
    for j in range(5):
        df[f"a{j}"] = df.pH + rng.normal(0, 0.1, len(df))
        df[f"b{j}"] = df.PacO2 + rng.normal(0, 0.3, len(df))
    df.loc[3, "a2"] = np.nan  # NaN handled pair by pair
    xs, ys = [f"a{j}" for j in range(5)], [f"b{j}" for j in range(5)]
    together = rmcorr(df, "Subject", xs, ys)
    for j in range(5):
        alone = rmcorr(df.dropna(subset=[xs[j], ys[j]]), "Subject", xs[j], ys[j]).iloc[0]
        got = together.iloc[j]
        for col in ("r", "df", "p", "ci_low", "ci_high", "n"):
            assert got[col] == pytest.approx(alone[col], rel=1e-12)
    assert together.n.iloc[2] == 46


def test_bootstrap_is_seeded(bland1995):
    a = rmcorr(bland1995, "Subject", "pH", "PacO2", n_boot=200, seed=1)
    b = rmcorr(bland1995, "Subject", "pH", "PacO2", n_boot=200, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert a.boot_ci_low.iloc[0] < a.r.iloc[0] < a.boot_ci_high.iloc[0]


def test_dataset_input(study_summary):
    ds = study_summary.sel(side="left")
    out = rmcorr(ds, "subject", "tnv", "tp")
    long = ds[["tnv", "tp"]].to_dataframe().reset_index()
    ref = rmcorr(long, "subject", "tnv", "tp")
    assert out.r.iloc[0] == pytest.approx(ref.r.iloc[0], rel=1e-12)
    assert out.n.iloc[0] == 11 * 3 * 3
