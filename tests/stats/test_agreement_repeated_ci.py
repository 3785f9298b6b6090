"""MOVER confidence intervals of repeated-measures limits of agreement (Zou 2013) against
SimplyAgree's tests on Zou's example data (``SimplyAgree::reps``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from irtrepro.errors import OptionError
from irtrepro.stats import bland_altman_repeated

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def reps():
    return pd.read_csv(DATA / "reps.csv")


def test_constant_true_value_matches_simplyagree_agree_reps(reps):
    # SimplyAgree tests/testthat/test-agree_reps.R, "examples from Zou":
    # agree_reps(x, y, id, reps, TOST = FALSE): estimates (0.7125, -2.23, 3.66) (tolerance
    # 0.001), lower.ci[2:3] = (-9.76, 1.91), upper.ci[2:3] = (-0.48, 11.20) (tolerance 0.01).
    # The bias is 0.7152 (mean of the 4 subject mean differences; 0.7125 passes SimplyAgree's
    # relative tolerance); the lower limit's lower bound computes to -9.769 with SimplyAgree's
    # own formulas (R/agree_reps.R), 0.009 from the printed -9.76.
    r = bland_altman_repeated(reps, "id", "x", "y", true_value="constant")
    assert r.bias == pytest.approx(0.7152, abs=5e-5)
    assert [r.loa_low, r.loa_high] == pytest.approx([-2.23, 3.66], abs=5e-3)
    assert r.loa_low_ci == pytest.approx((-9.76, -0.48), abs=0.01)
    assert r.loa_high_ci == pytest.approx((1.91, 11.20), abs=5e-3)
    tab = r.to_frame().set_index("statistic")
    assert tab.loc["loa_low", "ci_low"] == r.loa_low_ci[0]
    assert tab.loc["loa_high", "ci_method"].startswith("MOVER (Zou 2013)")


def test_varying_true_value_zou_matches_simplyagree_agree_nest(reps):
    # SimplyAgree tests/testthat/test-agree_nest.R: reps with y[5] = 6.35, y[9] = 4.09 (every
    # reading paired); agree_nest(..., TOST = FALSE): estimates (0.7255, -2.14, 3.59)
    # (tolerance 0.001), lower.ci[2:3] = (-9.83, 1.77), upper.ci[2:3] = (-0.33, 11.27)
    # (tolerance 0.01); SimplyAgree's formulas (R/agree_nest.R) give 1.780 for the printed 1.77
    nest = reps.copy()
    nest.loc[4, "y"] = 6.35
    nest.loc[8, "y"] = 4.09
    r = bland_altman_repeated(nest, "id", "x", "y", true_value="varying", estimator="zou")
    assert r.bias == pytest.approx(0.7255, abs=5e-5)
    assert [r.loa_low, r.loa_high] == pytest.approx([-2.14, 3.59], abs=5e-3)
    assert r.loa_low_ci == pytest.approx((-9.83, -0.33), abs=5e-3)
    assert r.loa_high_ci[0] == pytest.approx(1.77, abs=0.011)
    assert r.loa_high_ci[1] == pytest.approx(11.27, abs=0.01)
    assert r.estimator == "zou"


def test_anova_and_zou_estimators_agree_on_balanced_pairs(reps):
    bal = reps.dropna().groupby("id").head(3).reset_index(drop=True)  # 3 pairs per subject
    a = bland_altman_repeated(bal, "id", "x", "y", estimator="bland-altman")
    z = bland_altman_repeated(bal, "id", "x", "y", estimator="zou")
    assert a.bias == pytest.approx(z.bias, rel=1e-12)
    assert a.sd == pytest.approx(z.sd, rel=1e-12)
    np.testing.assert_allclose(a.loa_low_ci + a.loa_high_ci, z.loa_low_ci + z.loa_high_ci,
                               rtol=1e-10)


def test_mover_reduces_to_single_variance_interval():
    # one component with df: the variance CI is the chi-square CI, and the limits' CIs
    # contain the limits with the upper side wider for the outer bound
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"s": np.repeat(np.arange(12), 4)})
    df["x"] = rng.normal(size=48) + np.repeat(rng.normal(size=12), 4)
    df["y"] = df.x + 0.3 + rng.normal(0, 0.5, size=48)
    r = bland_altman_repeated(df, "s", "x", "y")
    lo, hi = r.loa_low_ci, r.loa_high_ci
    assert lo[0] < r.loa_low < lo[1] and hi[0] < r.loa_high < hi[1]
    assert (r.loa_low - lo[0]) > (lo[1] - r.loa_low)
    assert (hi[1] - r.loa_high) > (r.loa_high - hi[0])


def test_bad_estimator(reps):
    with pytest.raises(OptionError, match="estimator='anova'"):
        bland_altman_repeated(reps.dropna(), "id", "x", "y", estimator="anova")
