"""Histogram region statistics against the plain per-region numpy loop (exact reference)."""

from __future__ import annotations

import numpy as np
import pytest

from irtrepro.features import compute_features, feature_names
from irtrepro.features.reference import reference_region_stats

ORDER = ("median", "min", "max", "p5", "p25", "p75", "p95")


def random_session(n=12, shape=(30, 40), seed=0, quantised=False):
    """Two calves with veins/perforators, smooth gradients + noise; a few NaN pixels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    f = 30 + 2 * yy / h + rng.normal(0, 0.4, (n, h, w))
    roi = np.zeros((n, h, w), np.uint8)
    roi[:, 3:h - 3, 2:w // 2 - 1] = 1
    roi[:, 3:h - 3, w // 2 + 1:w - 2] = 2
    ves = rng.choice(3, size=(n, h, w), p=[0.7, 0.2, 0.1]).astype(np.uint8)
    f[ves == 1] += 1.0
    f[ves == 2] += 1.5
    roi[-1, :, w // 2 + 1:] = 0                 # right calf missing in the last frame
    ves[-2] = np.where(ves[-2] == 2, 0, ves[-2])  # no perforators in one frame
    f[0, 10, 5] = np.nan
    if quantised:  # as read from uint16 stores (0.01 degC steps): many values on bin edges
        f = np.round(f * 100) / 100
    return f.astype(np.float32), roi, ves


@pytest.mark.parametrize("bin_width", [0.1, 0.25])
@pytest.mark.parametrize("quantised", [False, True])
def test_histogram_statistics_against_plain_loop(bin_width, quantised):
    f, roi, ves = random_session(quantised=quantised, seed=int(quantised))
    names = feature_names("region")
    fast = compute_features(f, roi, ves, features=names, bin_width=bin_width)
    ref = reference_region_stats(f, roi, ves, bin_width=bin_width)
    for name in names:
        a, b = fast[name].values, ref[name]
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        stat = name.split("_", 1)[1]
        if stat in ORDER:
            # order statistics: within one bin width, and not trivially exact
            assert np.nanmax(np.abs(a - b)) < bin_width, name
        elif stat == "area":
            assert np.array_equal(a, b), name
        else:  # mean, sd, entropy: exact
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=name)
    # the estimate is not the exact value by accident of the data
    assert np.nanmax(np.abs(fast["calf_median"].values - ref["calf_median"])) > 1e-4
    assert np.isnan(fast["calf_mean"].values[-1, 1])


def test_exact_option_and_wide_range_fallback_match_reference():
    f, roi, ves = random_session(n=5, seed=3)
    names = feature_names("region")
    ref = reference_region_stats(f, roi, ves)
    exact = compute_features(f, roi, ves, features=names, exact=True)
    wide = f.copy()
    wide[2, 5, 5] = 900.0  # implausible pixel: > 4096 bins of 0.1 degC -> exact path
    ref_wide = reference_region_stats(wide, roi, ves)
    fallback = compute_features(wide, roi, ves, features=names)
    for name in names:
        np.testing.assert_allclose(exact[name].values, ref[name], rtol=1e-9, atol=1e-7,
                                   err_msg=name)
        np.testing.assert_allclose(fallback[name].values, ref_wide[name], rtol=1e-9,
                                   atol=1e-7, err_msg=name)


def test_blocks_do_not_change_results():
    from irtrepro.features.core import FeatureContext, region_stats

    f, roi, ves = random_session(n=9, seed=4)
    one = region_stats(FeatureContext(f, roi, ves), block=9)
    many = region_stats(FeatureContext(f, roi, ves), block=2)
    for k in one:
        np.testing.assert_allclose(one[k], many[k], rtol=1e-12, atol=1e-12, err_msg=k)
