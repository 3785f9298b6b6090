"""The array tail functions of ``irtrepro.stats._dist`` equal ``scipy.stats`` bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from irtrepro.stats import _dist

# degrees of freedom and arguments including the edges scipy.stats treats specially:
# non-positive and NaN df (NaN out), infinite df, x at and beyond the ends of the support
DF = np.array([-1.0, 0.0, np.nan, 1e-300, 0.3, 1.0, 2.0, 7.0, 38.0, 1e6, np.inf])
X = np.array([-np.inf, -2.0, -0.0, 0.0, 1e-12, 0.5, 1.0, 3.7, 1e8, np.inf, np.nan])
Q = np.array([-0.1, 0.0, 1e-12, 0.025, 0.5, 0.975, 1 - 1e-12, 1.0, 1.5, np.nan])


def _same(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)  # NaN positions must agree too
    assert not (np.signbit(actual) ^ np.signbit(expected))[actual == 0].any()


@pytest.mark.parametrize("x", [X[:, None, None], 2.5])
def test_f_sf(x):
    _same(_dist.f_sf(x, DF[None, :, None], DF[None, None, :]),
          st.f.sf(x, DF[None, :, None], DF[None, None, :]))


@pytest.mark.parametrize("q", [Q[:, None, None], 0.975])
def test_f_ppf(q):
    _same(_dist.f_ppf(q, DF[None, :, None], DF[None, None, :]),
          st.f.ppf(q, DF[None, :, None], DF[None, None, :]))


def test_chi2_ppf():
    _same(_dist.chi2_ppf(Q[:, None], DF[None, :]), st.chi2.ppf(Q[:, None], DF[None, :]))


def test_t_sf_and_ppf():
    _same(_dist.t_sf(X[:, None], DF[None, :]), st.t.sf(X[:, None], DF[None, :]))
    _same(_dist.t_ppf(Q[:, None], DF[None, :]), st.t.ppf(Q[:, None], DF[None, :]))
    n = np.arange(0, 12)  # integer df, as n - 1 in the paired t
    _same(_dist.t_ppf(0.975, n - 1), st.t.ppf(0.975, n - 1))


def test_norm_ppf():
    _same(_dist.norm_ppf(Q), st.norm.ppf(Q))
    assert _dist.norm_ppf(0.975) == st.norm.ppf(0.975)


def test_ppf_constant_df_same_as_elementwise():
    # the scalar shortcut for equal df must give what the elementwise call gives
    for df in (np.full(5, 10.0), np.full(5, 0.0), np.full(5, -1.0), np.full(5, np.inf),
               np.array([]), np.array([3.0, 3.0, np.nan]), np.float64(7.0), np.full((2, 3), 0.3)):
        _same(_dist.f_ppf(0.975, df, 2 * df), st.f.ppf(0.975, df, 2 * df))
        _same(_dist.chi2_ppf(0.025, df), st.chi2.ppf(0.025, df))
        _same(_dist.t_ppf(0.975, df), st.t.ppf(0.975, df))
