"""Bad input: a clear StatsError naming the culprit, or a documented result with a warning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from irtrepro.errors import IrtreproWarning, OptionError, StatsError
from irtrepro.stats import (
    bland_altman,
    bland_altman_repeated,
    fit_mixed,
    icc,
    lagged_xcorr,
    reliability,
    rmcorr,
)


@pytest.fixture
def long(make_cube):
    v = make_cube(n_sub=5, n_ses=3, n_metric=1)[0]
    return xr.DataArray(v, dims=("subject", "session"), name="tnv").to_dataframe().reset_index()


def test_fewer_than_two_sessions(long):
    with pytest.raises(StatsError, match="1 session"):
        icc(long[long.session == 0], "subject", "session", "tnv")


def test_fewer_than_three_subjects(long):
    with pytest.raises(StatsError, match="2 subject"):
        reliability(long[long.subject < 2], "subject", "session", "tnv")


def test_constant_values_name_the_metric(long):
    df = long.assign(flat=7.5)
    with pytest.raises(StatsError, match="'flat': constant values"):
        icc(df, "subject", "session", ["tnv", "flat"])
    with pytest.warns(IrtreproWarning, match="'flat': constant values"):
        out = icc(df, "subject", "session", ["tnv", "flat"], errors="warn")
    assert out[out.metric == "flat"].icc.isna().all()
    assert out[out.metric == "tnv"].icc.notna().all()


def test_nan_listwise_warns_and_mixed_keeps(long):
    df = long.copy()
    df.loc[0, "tnv"] = np.nan
    with pytest.warns(IrtreproWarning, match="dropped subjects.*\\['0'\\]"):
        out = icc(df, "subject", "session", "tnv")
    assert out.n_subjects.iloc[0] == 4
    assert icc(df, "subject", "session", "tnv", missing="mixed").n_subjects.iloc[0] == 5


def test_unbalanced_missing_rows_are_missing_cells(long):
    df = long.drop(index=[1, 5])
    with pytest.warns(IrtreproWarning, match="dropped subjects"):
        out = icc(df, "subject", "session", "tnv")
    assert out.n_subjects.iloc[0] == 3


def test_too_many_missing_after_listwise(long):
    df = long.copy()
    df.loc[df.subject.isin([0, 1, 2]) & (df.session == 1), "tnv"] = np.nan
    with pytest.raises(StatsError, match="only 2 complete subjects"):
        icc(df, "subject", "session", "tnv")


def test_duplicate_subject_session_rows(long):
    df = pd.concat([long, long.iloc[[4]]])
    with pytest.raises(StatsError, match="duplicate \\(subject, session\\) rows: \\(1, 1\\)"):
        icc(df, "subject", "session", "tnv")


def test_non_numeric_and_missing_columns(long):
    with pytest.raises(StatsError, match="column 'tnv' is not numeric"):
        icc(long.assign(tnv=long.tnv.astype(str)), "subject", "session", "tnv")
    with pytest.raises(StatsError, match="'tp' is not a column"):
        icc(long, "subject", "session", "tp")
    with pytest.raises(StatsError, match="infinite"):
        icc(long.assign(tnv=np.inf), "subject", "session", "tnv")
    with pytest.raises(StatsError, match="expected a pandas DataFrame"):
        icc([1, 2, 3], "subject", "session", "tnv")
    with pytest.raises(OptionError, match="missing='pairwise'"):
        icc(long, "subject", "session", "tnv", missing="pairwise")
    with pytest.raises(OptionError, match="ci=1.5"):
        icc(long, "subject", "session", "tnv", ci=1.5)


def test_xarray_variable_without_session_dim(study_summary):
    ds = study_summary.assign(viat=("subject", np.arange(11.0)))
    with pytest.raises(StatsError, match="'viat' has dims"):
        icc(ds, value=["tp", "viat"])
    with pytest.raises(StatsError, match="'protocol' is not numeric"):
        icc(ds, value="protocol")


def test_perfect_consistency_is_warned_not_silent(long):
    df = long.assign(tnv=long.subject * 2.0 + long.session * 0.5)  # MSE = 0
    with pytest.warns(IrtreproWarning, match="undefined"):
        out = icc(df, "subject", "session", "tnv").set_index("form")
    assert out.loc["ICC(C,1)", "icc"] == pytest.approx(1.0)
    assert out.loc["ICC(C,1)", "ci_low"] == 1.0


def test_bland_altman_bad_input():
    with pytest.raises(StatsError, match="3 values and y 2"):
        bland_altman([1, 2, 3], [1, 2])
    with pytest.raises(StatsError, match="at least 3"):
        bland_altman([1, 2], [1, 3])
    with pytest.raises(StatsError, match="constant"):
        bland_altman([1, 2, 3, 4], [2, 3, 4, 5])
    with pytest.raises(StatsError, match="not numeric"):
        bland_altman(["a", "b", "c"], [1, 2, 3])
    with pytest.raises(StatsError, match="positive"):
        bland_altman([1, -2, 3], [1, 2, 4], log=True)
    with pytest.warns(IrtreproWarning, match="1 pair\\(s\\) with NaN dropped"):
        r = bland_altman([1, 2, 3, np.nan, 5], [1.5, 2, 2.5, 4, 5.5])
    assert r.n == 4


def test_bland_altman_repeated_bad_input():
    df = pd.DataFrame({"s": [1, 1, 2, 2], "x": [1.0, 2, 3, 4], "y": [1.0, 2, 3, 5]})
    with pytest.raises(StatsError, match="2 subjects"):
        bland_altman_repeated(df, "s", "x", "y")
    with pytest.raises(StatsError, match="'z' is not a column"):
        bland_altman_repeated(df, "s", "x", "z")


def test_rmcorr_bad_input():
    df = pd.DataFrame({"s": np.repeat([1, 2, 3], 4), "x": np.tile([1.0, 2, 3, 4], 3),
                       "y": np.arange(12.0) % 5})
    with pytest.raises(StatsError, match="'c' does not vary within subjects"):
        rmcorr(df.assign(c=df.s * 1.0), "s", "c", "y")
    with pytest.warns(IrtreproWarning, match="does not vary"):
        out = rmcorr(df.assign(c=df.s * 1.0), "s", ["c", "x"], "y", errors="warn")
    assert np.isnan(out.r.iloc[0]) and np.isfinite(out.r.iloc[1])
    with pytest.raises(StatsError, match="need at least 3"):
        rmcorr(df.iloc[:5], "s", "x", "y")
    with pytest.raises(StatsError, match="not numeric"):
        rmcorr(df.assign(x=df.x.astype(str)), "s", "x", "y")


def test_lagged_and_mixed_bad_input():
    with pytest.raises(StatsError, match="max_lag"):
        lagged_xcorr(np.arange(10.0), np.arange(10.0), max_lag=9)
    with pytest.raises(StatsError, match="constant"):
        lagged_xcorr(np.ones(50), np.arange(50.0), max_lag=3)
    df = pd.DataFrame({"subject": np.repeat([1, 2, 3], 3), "y": list("abcabcabc")})
    with pytest.raises(StatsError, match="'y' is not numeric"):
        fit_mixed("y ~ 1", df, groups="subject")
    with pytest.raises(StatsError, match="groups='id'"):
        fit_mixed("y ~ 1", df, groups="id")
