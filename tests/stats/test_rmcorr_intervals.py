"""rmcorr_intervals: agreement with rmcorr, exact cluster/block identities, AR(1) coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from irtrepro.errors import StatsError
from irtrepro.stats import rmcorr, rmcorr_intervals
from irtrepro.stats.rmcorr_ci import ci_columns, mbb_block_length
from irtrepro.stats.sim_ar1 import simulate_ar1_rm

TRUE_R = 0.5


def _coverage(out, method):
    lo, hi = ("ci_low", "ci_high") if method == "classic" else ci_columns(method, 0.95)
    return float(((out[lo] <= TRUE_R) & (out[hi] >= TRUE_R)).mean())


@pytest.fixture(scope="module")
def ar1_coverage():
    # 30 units x 200 s, phi = 0.9 (variance of r inflated (1 + phi^2)/(1 - phi^2) = 9.5x),
    # 200 replicates: a coverage's binomial SE is about 0.015 near 0.95
    reps = 200
    d = simulate_ar1_rm(30, 200, reps, r=TRUE_R, phi=0.9, seed=1)
    out = rmcorr_intervals(d, "unit", [f"x{k}" for k in range(reps)],
                           [f"y{k}" for k in range(reps)], n_boot=200, seed=2)
    return {m: _coverage(out, m) for m in ("classic", "cluster_boot", "block_boot", "neff")}


def test_classic_interval_undercovers_under_ar1(ar1_coverage):
    # theory: P(|Z| < 1.96 / sqrt(9.5)) = 0.47; the naive interval must fail a 95 % check
    assert ar1_coverage["classic"] < 0.65


def test_cluster_bootstrap_and_neff_cover_under_ar1(ar1_coverage):
    # percentile cluster bootstrap with 30 units: close to nominal (measured 0.92), not exact
    assert ar1_coverage["cluster_boot"] >= 0.88
    assert ar1_coverage["neff"] >= 0.88


def test_block_bootstrap_far_better_than_classic_under_ar1(ar1_coverage):
    # the block bootstrap under-estimates the variance at finite block length (measured 0.885)
    assert ar1_coverage["block_boot"] >= 0.83
    assert ar1_coverage["block_boot"] - ar1_coverage["classic"] > 0.3


def test_iid_data_all_intervals_near_nominal():
    reps = 150
    d = simulate_ar1_rm(20, 60, reps, r=TRUE_R, phi=0.0, seed=3)
    out = rmcorr_intervals(d, "unit", [f"x{k}" for k in range(reps)],
                           [f"y{k}" for k in range(reps)], n_boot=200, seed=4)
    for m in ("classic", "cluster_boot", "block_boot", "neff"):
        assert _coverage(out, m) >= 0.88, m


def test_classic_columns_equal_rmcorr(bland1995):
    got = rmcorr_intervals(bland1995, "Subject", "pH", "PacO2", n_boot=50, seed=0)
    ref = rmcorr(bland1995, "Subject", "pH", "PacO2")
    pd.testing.assert_frame_equal(got[ref.columns], ref)
    assert {"cluster_boot_ci95_low", "block_boot_ci95_high", "neff_ci95_low"} <= set(got)
    assert got.n_boot.iloc[0] == 50


def test_cluster_bootstrap_equals_explicit_resampling(bland1995):
    # one draw via multinomial counts must equal rmcorr on the units copied as new units
    seed = 7
    got = rmcorr_intervals(bland1995, "Subject", "pH", "PacO2", methods=["cluster_boot"],
                           n_boot=400, seed=seed)
    rng = np.random.default_rng(seed)
    units = pd.unique(bland1995.Subject)
    w = rng.multinomial(len(units), np.full(len(units), 1 / len(units)), size=400)
    draws = []
    for row in w:
        parts = [bland1995[bland1995.Subject == u].assign(Subject=f"{u}_{k}")
                 for u, c in zip(units, row, strict=True) for k in range(c)]
        draws.append(rmcorr(pd.concat(parts), "Subject", "pH", "PacO2").r.iloc[0])
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert got.cluster_boot_ci95_low.iloc[0] == pytest.approx(lo, rel=1e-10)
    assert got.cluster_boot_ci95_high.iloc[0] == pytest.approx(hi, rel=1e-10)


def test_block_length_one_whole_series_is_degenerate():
    # block = whole series: every draw rebuilds each unit unchanged, so the CI collapses to r
    d = simulate_ar1_rm(4, 30, 1, r=TRUE_R, phi=0.5, seed=0)
    out = rmcorr_intervals(d, "unit", "x0", "y0", methods=["block_boot"], n_boot=20,
                           block_length=30, seed=0).iloc[0]
    assert out.block_boot_ci95_low == pytest.approx(out.r, rel=1e-12)
    assert out.block_boot_ci95_high == pytest.approx(out.r, rel=1e-12)


def test_many_pairs_equal_single_pair_for_cluster_and_neff():
    d = simulate_ar1_rm(6, 40, 3, r=TRUE_R, phi=0.7, seed=5)
    d.loc[5, "x1"] = np.nan
    xs, ys = ["x0", "x1", "x2"], ["y0", "y1", "y2"]
    together = rmcorr_intervals(d, "unit", xs, ys, methods=["neff"])
    for j in range(3):
        alone = rmcorr_intervals(d, "unit", xs[j], ys[j], methods=["neff"]).iloc[0]
        for col in ("r", "df_eff", "neff_ci95_low", "neff_ci95_high", "r1_x"):
            assert together[col].iloc[j] == pytest.approx(alone[col], rel=1e-12)


def test_mbb_block_length_rule():
    # (1.5 * 300)^(1/3) * (2 * 0.81 / (1 - 0.81^2))^(2/3) = 7.66 * 2.81 = 21.5
    assert mbb_block_length(0.81, 300) == 22
    assert mbb_block_length(0.0, 300) == 1
    assert mbb_block_length(-0.3, 300) == 1
    assert mbb_block_length(0.99, 10) == 10


def test_ci_level_in_column_names(bland1995):
    out = rmcorr_intervals(bland1995, "Subject", "pH", "PacO2", ci=0.9, methods=["neff"])
    assert "neff_ci90_low" in out and out.ci_level.iloc[0] == 0.9
    assert ci_columns("cluster_boot", 0.975) == ("cluster_boot_ci97_5_low",
                                                 "cluster_boot_ci97_5_high")


def test_bad_options(bland1995):
    with pytest.raises(StatsError, match="methods"):
        rmcorr_intervals(bland1995, "Subject", "pH", "PacO2", methods=["jackknife"])
    with pytest.raises(StatsError, match="n_boot"):
        rmcorr_intervals(bland1995, "Subject", "pH", "PacO2", n_boot=1)
    with pytest.raises(StatsError, match="block_length"):
        rmcorr_intervals(bland1995, "Subject", "pH", "PacO2", block_length=0)
    with pytest.raises(StatsError, match="phi"):
        simulate_ar1_rm(3, 10, 1, r=0.5, phi=1.0)
