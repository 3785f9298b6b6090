"""Rubin's rules (irtrepro.stats.rubin_pool): the formulas, and statsmodels' MICE pooling."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from irtrepro.errors import StatsError
from irtrepro.stats import rubin_pool


def test_rubin_rules_by_hand():
    q, u = [0.52, 0.61, 0.47, 0.58], [0.010, 0.012, 0.009, 0.011]
    r = rubin_pool(q, u)
    m, qbar, w = 4, np.mean(q), np.mean(u)
    b = sum((x - qbar) ** 2 for x in q) / (m - 1)
    t = w + (1 + 1 / m) * b
    df = (m - 1) * (1 + w / ((1 + 1 / m) * b)) ** 2
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    np.testing.assert_allclose([r["estimate"], r["within"], r["between"], r["total"], r["df"]],
                               [qbar, w, b, t, df], rtol=1e-12)
    np.testing.assert_allclose([r["ci_low"], r["ci_high"]], [qbar - half, qbar + half],
                               rtol=1e-12)
    np.testing.assert_allclose(r["widening"], np.sqrt(t / w), rtol=1e-12)
    np.testing.assert_allclose(r["fmi"], (1 + 1 / m) * b / t, rtol=1e-12)


def test_pooled_variance_and_fmi_equal_statsmodels_mice():
    from statsmodels.imputation.mice import MICE

    rng = np.random.default_rng(1)
    params = rng.normal(size=(5, 2))
    covs = [np.diag(rng.uniform(0.01, 0.05, 2)) for _ in range(5)]
    fits = [SimpleNamespace(_results=SimpleNamespace(params=p, cov_params=lambda c=c: c),
                            scale=1.0) for p, c in zip(params, covs, strict=True)]
    fake = SimpleNamespace(results_list=fits, exog_names=["a", "b"], endog_names="y",
                           model_class=None)
    res = MICE.combine(fake)
    for j in range(2):
        ours = rubin_pool(params[:, j], [c[j, j] for c in covs])
        np.testing.assert_allclose(ours["estimate"], res.params[j], rtol=1e-12)
        np.testing.assert_allclose(ours["total"], res.cov_params()[j, j], rtol=1e-12)
        np.testing.assert_allclose(ours["fmi"], res.frac_miss_info[j], rtol=1e-12)


def test_identical_versions_add_nothing():
    r = rubin_pool([0.8, 0.8, 0.8], [0.01, 0.01, 0.01])
    assert r["between"] == 0 and r["widening"] == 1 and r["fmi"] == 0 and np.isinf(r["df"])
    np.testing.assert_allclose(r["ci_high"] - r["estimate"], 1.959963984540054 * 0.1)


@pytest.mark.parametrize("q,u,match", [([1.0], [0.1], "at least 2"),
                                       ([1.0, 2.0], [0.1], "2 estimates and 1"),
                                       ([1.0, np.nan], [0.1, 0.1], "finite"),
                                       ([1.0, 2.0], [0.1, -0.1], "negative")])
def test_bad_input_is_refused(q, u, match):
    with pytest.raises(StatsError, match=match):
        rubin_pool(q, u)
