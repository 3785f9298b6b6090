"""Tests of the synthetic calf thermogram renderer."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import StudyError
from irtrepro.synth.thermogram import make_anatomy, render_session


def make_truth(n: int = 120, subject: str = "S01", session: str = "CON") -> xr.Dataset:
    """A small hand-made truth slice: warming skin, veins +1 degC, perforators +1.5 degC."""
    t = np.arange(n, dtype=float)
    tnv = 31.5 + 0.5 * t / n
    two = lambda a, b: np.stack([a, b], 1)  # noqa: E731
    return xr.Dataset(
        {
            "tnv": (("time", "side"), two(tnv, tnv + 0.2)),
            "tv": (("time", "side"), two(tnv + 1.0, tnv + 1.1)),
            "tp": (("time", "side"), two(tnv + 1.5, tnv + 1.3)),
            "tnv_sd": (("time", "side"), two(0.35 + 0 * t, 0.45 + 0 * t)),
            "tv_sd": (("time", "side"), two(0.30 + 0 * t, 0.25 + 0 * t)),
            "tp_sd": (("time", "side"), two(0.20 + 0 * t, 0.20 + 0 * t)),
            "cadence": (("time",), 165 + 0 * t),
        },
        coords={"time": t, "side": ["left", "right"], "subject": subject, "session": session},
    )


@pytest.fixture(scope="module")
def session():
    return make_truth(), render_session(make_truth(), frame_interval_s=5.0, seed=3)


def _region_stats(ds, side, region):
    calf = ds.roi == side
    sel = {"tnv": calf & (ds.vessels == 0), "tv": calf & (ds.vessels == 1),
           "tp": calf & (ds.vessels == 2)}[region]
    f = ds.frames.astype(float)
    return f.where(sel).mean(("y", "x")), f.where(sel).std(("y", "x"))


def test_shapes_dtypes_and_time(session):
    truth, ds = session
    assert ds.frames.dims == ("frame", "y", "x")
    assert ds.frames.shape == (24, 120, 160)
    assert ds.frames.dtype == np.float32
    assert ds.roi.dtype == np.uint8 and ds.vessels.dtype == np.uint8
    np.testing.assert_array_equal(ds.time.values, np.arange(0, 120, 5.0))
    assert set(np.unique(ds.roi.values)) == {0, 1, 2}
    assert set(np.unique(ds.vessels.values)) == {0, 1, 2}
    # vessels only inside the calves
    assert not ((ds.vessels > 0) & (ds.roi == 0)).any()


@pytest.mark.parametrize("region", ["tnv", "tv", "tp"])
def test_region_means_and_sds_match_truth(session, region):
    truth, ds = session
    expected = truth[region].sel(time=ds.time)
    expected_sd = truth[f"{region}_sd"].sel(time=ds.time)
    for k, side in enumerate(("left", "right")):
        mean, sd = _region_stats(ds, k + 1, region)
        # exact after noise (re-standardised per region), to float32 rounding
        np.testing.assert_allclose(mean.values, expected.sel(side=side).values, atol=2e-5)
        np.testing.assert_allclose(sd.values, expected_sd.sel(side=side).values, rtol=1e-3)
        np.testing.assert_allclose(ds[region].sel(side=side).values, mean.values, atol=1e-9)


def test_calf_mean_is_area_weighted(session):
    _, ds = session
    calf = (ds.roi == 1)
    actual = ds.frames.astype(float).where(calf).mean(("y", "x"))
    np.testing.assert_allclose(ds.tsk_mean.sel(side="left").values, actual.values, atol=1e-9)


def test_deterministic_and_seed_dependent():
    truth = make_truth(40)
    a = render_session(truth, seed=5)
    b = render_session(truth, seed=5)
    c = render_session(truth, seed=6)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.frames.values, c.frames.values)


def test_anatomy_fixed_per_subject_across_sessions():
    a = render_session(make_truth(40, "S01", "CON"), seed=1)
    b = render_session(make_truth(40, "S01", "SI"), seed=1)
    c = render_session(make_truth(40, "S02", "CON"), seed=1)
    assert a.attrs["anatomy_seed"] == b.attrs["anatomy_seed"] != c.attrs["anatomy_seed"]
    assert not np.array_equal(a.frames.values, b.frames.values)  # per-session randomness
    an1, an2 = make_anatomy([1, 7]), make_anatomy([1, 7])
    np.testing.assert_array_equal(an1.labels, an2.labels)
    assert (an1.labels == 1).any() and (an1.labels == 2).any()


def test_gait_moves_the_calves(session):
    _, ds = session
    # the calf masks differ between frames (gait, sway), but not wildly in area
    areas = (ds.roi == 1).sum(("y", "x")).values
    assert len(set(areas.tolist())) > 5
    assert areas.min() > 0.7 * areas.max()


def test_noise_level_on_background(session):
    _, ds = session
    # frame-to-frame differences of a static background patch: sqrt(2) * NETD (+ small drift)
    patch = ds.frames.values[:, 2:10, 2:20].astype(float)
    d = np.diff(patch, axis=0)
    sd = (d - d.mean(axis=(1, 2), keepdims=True)).std() / np.sqrt(2) / 0.9
    assert 0.035 < sd < 0.06


def test_large_frames_work():
    ds = render_session(make_truth(10), shape=(480, 640), seed=0, frame_interval_s=5)
    assert ds.frames.shape == (2, 480, 640)
    assert (ds.roi == 1).sum() > 4 * 1000


def test_missing_truth_variable_raises():
    with pytest.raises(StudyError, match="tp_sd"):
        render_session(make_truth(10).drop_vars("tp_sd"))


def test_unsliced_truth_raises():
    truth = make_truth(10).expand_dims(subject=["S01"])
    with pytest.raises(StudyError, match="subject"):
        render_session(truth.drop_vars("session"))
