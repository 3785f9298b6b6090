"""Feature values on tiny hand-made frames and masks, checked against exact numbers."""

from __future__ import annotations

import numpy as np
import pytest

from irtrepro.errors import OptionError
from irtrepro.features import (
    FEATURES,
    MaskMismatchError,
    compute_features,
    feature_names,
    register_family,
)


@pytest.fixture
def tiny():
    """Two frames 6x8. Left calf cols 0-2, right calf cols 5-7, rows 1-4.

    Frame 0: left skin 30.0, left vein (col 1, rows 1-3) 31.0, left perforator (row 4, col 2)
    32.0; right skin 29.0 except one pixel 29.2, no vessels. Frame 1: everything + 1 degC and
    the right calf missing.
    """
    f = np.full((2, 6, 8), 20.0)
    roi = np.zeros((2, 6, 8), np.uint8)
    ves = np.zeros((2, 6, 8), np.uint8)
    roi[:, 1:5, 0:3] = 1
    roi[0, 1:5, 5:8] = 2
    f[:, 1:5, 0:3] = 30.0
    ves[:, 1:4, 1] = 1
    f[:, 1:4, 1] = 31.0
    ves[:, 4, 2] = 2
    f[:, 4, 2] = 32.0
    f[0, 1:5, 5:8] = 29.0
    f[0, 2, 6] = 29.2
    f[1] += 1.0
    return f, roi, ves


def test_means_areas_and_missing(tiny):
    out = compute_features(*tiny)
    # left calf: 8 px at 30, 3 at 31, 1 at 32 -> (240 + 93 + 32) / 12
    assert out.calf_mean.sel(side="left")[0] == pytest.approx(365 / 12)
    assert out.tnv_mean.sel(side="left")[0] == pytest.approx(30.0)
    assert out.tv_mean.sel(side="left")[0] == pytest.approx(31.0)
    assert out.tp_mean.sel(side="left")[0] == pytest.approx(32.0)
    assert out.calf_area.sel(side="left")[0] == 12
    assert out.tv_area.sel(side="left")[0] == 3
    # right calf: 11 px at 29, one at 29.2
    assert out.calf_mean.sel(side="right")[0] == pytest.approx(29.0 + 0.2 / 12)
    # both: 24 px
    assert out.calf_mean.sel(side="both")[0] == pytest.approx((365 + 348.2) / 24)
    assert out.calf_area.sel(side="both")[0] == 24
    # missing regions are NaN, never 0
    assert np.isnan(out.tv_mean.sel(side="right")[0])
    assert np.isnan(out.calf_mean.sel(side="right")[1])
    assert out.calf_area.sel(side="right")[1] == 0
    assert out.tnv_mean.sel(side="left")[1] == pytest.approx(31.0)


def test_order_statistics_match_numpy(tiny):
    f, roi, ves = tiny
    out = compute_features(f, roi, ves, exact=True)
    left = f[0][roi[0] == 1]
    for q in (5, 25, 75, 95):
        assert out[f"calf_p{q}"].sel(side="left")[0] == pytest.approx(np.percentile(left, q))
    assert out.calf_median.sel(side="left")[0] == pytest.approx(30.0)
    assert out.calf_min.sel(side="left")[0] == pytest.approx(30.0)
    assert out.calf_max.sel(side="left")[0] == pytest.approx(32.0)
    assert out.calf_sd.sel(side="left")[0] == pytest.approx(left.std())
    both = f[0][roi[0] > 0]
    assert out.calf_p95.sel(side="both")[0] == pytest.approx(np.percentile(both, 95))


def test_entropy_fixed_bins(tiny):
    out = compute_features(*tiny)
    # left calf: bins {30: 8, 31: 3, 32: 1} of 12 -> -sum p log2 p
    p = np.array([8, 3, 1]) / 12
    assert out.calf_entropy.sel(side="left")[0] == pytest.approx(-(p * np.log2(p)).sum())
    assert out.tnv_entropy.sel(side="left")[0] == pytest.approx(0.0)
    # right calf: 11 px in the 29.0 bin, 1 in 29.2 -> two bins at width 0.1
    p = np.array([11, 1]) / 12
    assert out.calf_entropy.sel(side="right")[0] == pytest.approx(-(p * np.log2(p)).sum())
    # a bin width of 1 degC puts 29.0 and 29.2 together
    wide = compute_features(*tiny, bin_width=1.0, features=["calf_entropy"])
    assert wide.calf_entropy.sel(side="right")[0] == pytest.approx(0.0)


def test_components(tiny):
    f, roi, ves = tiny
    ves = ves.copy()
    ves[0, 1, 6] = 1   # one isolated vein pixel in the right calf at 29.0
    ves[0, 3, 7] = 1   # and another one, not touching (diagonal gap 2)
    out = compute_features(f, roi, ves)
    assert out.vein_count.sel(side="left").values.tolist() == [1, 1]
    assert out.vein_count.sel(side="right").values.tolist() == [2, 0]
    assert out.vein_count.sel(side="both")[0] == 3
    assert out.vein_area_total.sel(side="both")[0] == 5
    assert out.vein_area_mean.sel(side="both")[0] == pytest.approx(5 / 3)
    assert out.vein_comp_temp.sel(side="left")[0] == pytest.approx(31.0)
    assert out.vein_comp_temp.sel(side="both")[0] == pytest.approx((31 + 29 + 29) / 3)
    assert out.perforator_count.sel(side="right")[0] == 0
    assert np.isnan(out.perforator_area_mean.sel(side="right")[0])


def test_diagonal_pixels_are_one_component():
    f = np.full((1, 5, 5), 30.0)
    roi = np.ones((1, 5, 5), np.uint8)
    ves = np.zeros((1, 5, 5), np.uint8)
    ves[0, [0, 1, 2], [0, 1, 2]] = 1
    out = compute_features(f, roi, ves, features=["vein_count"])
    assert out.vein_count.sel(side="left")[0] == 1


def test_quality_flags(tiny):
    f, roi, ves = tiny
    f = f.copy()
    f[0, 2, 0] = np.nan
    out = compute_features(f, roi, ves)
    assert bool(out.flag_range[0]) and not bool(out.flag_range[1])
    assert bool(out.flag_area[1])          # right calf missing in frame 1
    assert not bool(out.valid[0]) and not bool(out.valid[1])
    # NaN pixel ignored in the statistics, not turned into 0
    assert out.tnv_mean.sel(side="left")[0] == pytest.approx(30.0)


def test_split_calf_and_blur_flags():
    rng = np.random.default_rng(0)
    f = np.full((10, 20, 20), 22.0)
    roi = np.zeros((10, 20, 20), np.uint8)
    roi[:, 2:18, 2:8] = 1
    roi[:, 2:18, 12:18] = 2
    f[roi > 0] = 32.0
    f += rng.normal(0, 0.01, f.shape)
    roi[3, 10, 2:8] = 0                     # left calf cut in two
    from scipy import ndimage
    f[7] = ndimage.uniform_filter1d(f[7], 5, axis=1)   # horizontally blurred frame
    out = compute_features(f, roi, np.zeros_like(roi))
    assert out.flag_shape.values.nonzero()[0].tolist() == [3]
    assert out.flag_blur.values.nonzero()[0].tolist() == [7]


def test_vectorised_equals_frame_by_frame():
    rng = np.random.default_rng(1)
    f = rng.normal(31, 0.6, (7, 12, 14))
    roi = rng.integers(0, 3, (7, 12, 14)).astype(np.uint8)
    ves = rng.integers(0, 3, (7, 12, 14)).astype(np.uint8)
    names = [k for k in feature_names() if k not in ("flag_blur", "valid", "sharpness")]
    whole = compute_features(f, roi, ves, features=names)
    for k in range(7):
        one = compute_features(f[k:k + 1], roi[k:k + 1], ves[k:k + 1], features=names)
        for name in names:
            np.testing.assert_allclose(whole[name].values[k], one[name].values[0], rtol=1e-12,
                                       atol=1e-9, err_msg=name)


@pytest.fixture
def clean_registry():
    """Restore the feature registry after a test registers a family (no leaking)."""
    from irtrepro.features import registry

    feats, fams = dict(registry.FEATURES), dict(registry._FAMILIES)
    yield
    registry.FEATURES.clear()
    registry.FEATURES.update(feats)
    registry._FAMILIES.clear()
    registry._FAMILIES.update(fams)


def test_units_and_registry(clean_registry):
    out = compute_features(np.full((1, 4, 4), 30.0), np.ones((1, 4, 4)), np.zeros((1, 4, 4)))
    assert out.tnv_mean.attrs["units"] == "degC"
    assert out.tp_entropy.attrs["units"] == "bit"
    assert out.tnv_mean.dims == ("time", "side")
    assert list(out.side.values) == ["left", "right", "both"]
    assert len(FEATURES) >= 4 * 11 + 8 + 6  # regions x stats, components, quality

    @register_family("test_hot", {"test_hot": ("1", "fraction of calf above 34 degC")})
    def _hot(ctx):
        calf = ctx.roi > 0
        frac = (calf & (ctx.frames > 34)).sum((1, 2)) / np.maximum(calf.sum((1, 2)), 1)
        return {"test_hot": np.repeat(frac[:, None], 3, axis=1)}

    f = np.full((1, 4, 4), 30.0)
    f[0, 0, :2] = 35
    out = compute_features(f, np.ones((1, 4, 4)), np.zeros((1, 4, 4)), features=["test_hot"])
    assert out.test_hot.values[0, 0] == pytest.approx(2 / 16)


def test_bad_input():
    f = np.zeros((2, 4, 4))
    with pytest.raises(MaskMismatchError, match="do not match"):
        compute_features(f, np.zeros((2, 4, 5)), np.zeros((2, 4, 4)))
    bad = np.zeros((2, 4, 4), np.uint8)
    bad[1, 0, 0] = 7
    with pytest.raises(MaskMismatchError, match="frame 1"):
        compute_features(f, bad, np.zeros((2, 4, 4)))
    with pytest.raises(OptionError, match="bin_width"):
        compute_features(f, np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), bin_width=0)
    with pytest.raises(OptionError, match="nope"):
        compute_features(f, np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), features=["nope"])


def test_background_around_the_calves_changes_nothing_but_area_fractions(tiny):
    """Features are computed on the calves' bounding box; the frame size still counts."""
    f, roi, ves = tiny
    pad = ((0, 0), (40, 40), (40, 40))
    fp, rp, vp = np.pad(f, pad, constant_values=20.0), np.pad(roi, pad), np.pad(ves, pad)
    a, b = compute_features(f, roi, ves), compute_features(fp, rp, vp)
    border = {"flag_area", "flag_blur", "sharpness", "valid"}  # border and frame size differ
    for name in set(feature_names()) - border:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, err_msg=name)
    # 12 calf pixels are 25 % of a 6x8 frame but 0.16 % of the padded 86x88 frame
    assert not bool(a.flag_area[0]) and bool(b.flag_area[0])
