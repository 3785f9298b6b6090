"""Resampling to the study grid: gap rules, exact grid hits, breath rolling means, no
extrapolation (the rules stated in the docstring of :mod:`irtrepro.sync`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from irtrepro.sync import resample_breaths, resample_linear

GRID = np.arange(0.0, 11.0)


def test_linear_interpolation_between_close_samples():
    actual = resample_linear([0.0, 4.0], [10.0, 18.0], GRID[:5], max_gap_s=5)
    np.testing.assert_array_equal(actual, [10.0, 12.0, 14.0, 16.0, 18.0])


def test_nan_across_a_gap_longer_than_max_gap():
    # samples at 0, 1, 2 then 9, 10: the 7 s gap exceeds 5 s, so 3..8 are NaN
    actual = resample_linear([0, 1, 2, 9, 10], [0, 1, 2, 9, 10], GRID, max_gap_s=5)
    expected = np.array([0, 1, 2, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 9, 10])
    np.testing.assert_array_equal(actual, expected)


def test_a_gap_equal_to_max_gap_is_interpolated():
    actual = resample_linear([0, 5], [0, 5], GRID[:6], max_gap_s=5)
    np.testing.assert_array_equal(actual, [0, 1, 2, 3, 4, 5])


def test_exact_grid_hits_keep_their_sample_beside_a_long_gap():
    # 2 and 9 are samples on the grid: exact values even though the gap between them is long
    actual = resample_linear([2.0, 9.0], [7.0, 3.0], GRID, max_gap_s=1)
    assert actual[2] == 7.0 and actual[9] == 3.0
    assert np.isnan(actual[3:9]).all()


def test_nan_samples_count_as_gaps():
    actual = resample_linear([0, 1, 2, 3, 4], [0, 1, np.nan, np.nan, 4], GRID[:5], max_gap_s=2)
    np.testing.assert_array_equal(actual, [0, 1, np.nan, np.nan, 4])


def test_no_extrapolation_before_first_or_after_last_sample():
    actual = resample_linear([2.5, 6.5], [1.0, 1.0], GRID, max_gap_s=60)
    assert np.isnan(actual[:3]).all() and np.isnan(actual[7:]).all()
    np.testing.assert_array_equal(actual[3:7], 1.0)


def test_fewer_than_two_samples_give_nan():
    assert np.isnan(resample_linear([3.0], [1.0], GRID, max_gap_s=60)).all()


def test_breaths_are_rolling_means_then_interpolated():
    t = np.array([0.0, 2.0, 4.0, 6.0, 8.0])
    vo2 = np.array([1000.0, 2000.0, 3000.0, 4000.0, 5000.0])
    df = pd.DataFrame({"time": t, "vo2": vo2, "ve": vo2 / 100})
    out = resample_breaths(df, GRID[:9], columns=("vo2", "ve", "rer"), breath_window=3,
                           max_gap_s=15)
    assert set(out) == {"vo2", "ve"}  # absent columns are skipped
    # centred mean of 3 breaths (2 at the ends): 1500, 2000, 3000, 4000, 4500 at 0, 2, ..., 8 s
    smoothed = np.array([1500.0, 2000.0, 3000.0, 4000.0, 4500.0])
    np.testing.assert_allclose(out["vo2"][::2], smoothed)
    assert out["vo2"][1] == pytest.approx(1750.0)
    np.testing.assert_allclose(out["ve"], out["vo2"] / 100)


def test_breath_gap_rule():
    t = np.array([0.0, 1.0, 2.0, 30.0, 31.0])
    df = pd.DataFrame({"time": t, "vo2": np.ones(5)})
    out = resample_breaths(df, np.arange(0.0, 32.0), columns=("vo2",), max_gap_s=15)["vo2"]
    assert np.isfinite(out[:3]).all() and np.isfinite(out[30:]).all()
    assert np.isnan(out[3:30]).all()
