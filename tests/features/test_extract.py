"""Per-second extraction: medians of valid frames, resumable chunks, dask == serial."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from irtrepro.features.extract import extract_session, per_second, to_study_vars


def _session(n=40, fps=4.0):
    rng = np.random.default_rng(0)
    f = np.full((n, 16, 20), 22.0) + rng.normal(0, 0.01, (n, 16, 20))
    roi = np.zeros((n, 16, 20), np.uint8)
    roi[:, 2:14, 2:8] = 1
    roi[:, 2:14, 12:18] = 2
    ves = np.zeros_like(roi)
    ves[:, 4:10, 4] = 1
    base = 30.0 + np.arange(n) / fps * 0.1      # warming 0.1 degC/s
    f[roi > 0] = np.repeat(base, (roi > 0).sum((1, 2)))
    time = np.arange(n) / fps
    return f, roi, ves, time


def test_per_second_median_and_flag_drop():
    f, roi, ves, time = _session()
    roi = roi.copy()
    roi[5, :, :] = 0           # frame 5 (second 1) has no calves: flagged and dropped
    out = extract_session(f, roi, ves, time=time, features=["calf_mean"], chunk_frames=16)
    np.testing.assert_array_equal(out.time.values, np.arange(10.0))
    # second 0 holds frames 0..3 -> median of 30.0, 30.025, 30.05, 30.075
    assert out.calf_mean.sel(side="left")[0] == pytest.approx(30.0375)
    # second 1: frames 4, 6, 7 (5 dropped) -> median 30.15
    assert out.calf_mean.sel(side="left")[1] == pytest.approx(30.15)
    assert out.n_frames.values[:2].tolist() == [4, 3]


def test_empty_second_is_nan():
    feats = xr.Dataset({"x": (("time",), [1.0, 2.0]), "valid": (("time",), [True, True])},
                       coords={"time": [0.2, 2.5]})
    out = per_second(feats)
    assert out.x.values[0] == 1.0 and np.isnan(out.x.values[1]) and out.x.values[2] == 2.0


def test_resume_skips_finished_chunks(tmp_path, monkeypatch):
    f, roi, ves, time = _session()
    first = extract_session(f, roi, ves, time=time, chunk_frames=16, cache_dir=tmp_path)
    files = sorted(tmp_path.rglob("chunk_*.nc"))
    assert len(files) == 3
    import irtrepro.features.extract as ex

    calls = []
    real = ex._chunk_features
    monkeypatch.setattr(ex, "_chunk_features", lambda *a: calls.append(1) or real(*a))
    files[1].unlink()          # as if interrupted before the second chunk was written
    again = extract_session(f, roi, ves, time=time, chunk_frames=16, cache_dir=tmp_path)
    assert len(calls) == 1
    xr.testing.assert_identical(first, again)


def test_study_vars_have_units():
    f, roi, ves, time = _session()
    sv = to_study_vars(extract_session(f, roi, ves, time=time))
    for name in ("tsk_mean", "tnv", "tp", "tv", "tp_entropy", "tnv_entropy", "vein_count"):
        assert {"units", "long_name"} <= set(sv[name].attrs)
    assert sv.tnv.dims == ("time", "side")
    assert np.isnan(sv.tp.values).all()       # no perforators drawn: NaN, not 0


def test_local_cluster_matches_serial():
    distributed = pytest.importorskip("distributed")
    f, roi, ves, time = _session(48)
    serial = extract_session(f, roi, ves, time=time, chunk_frames=16)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        par = extract_session(f, roi, ves, time=time, chunk_frames=16, scheduler=cluster)
    xr.testing.assert_identical(serial, par)


def test_per_second_equals_a_loop_over_seconds():
    # uneven frame counts per second (1 to 5), NaN values, an all-NaN second for one side,
    # invalid frames and a frame before the grid: the vectorised medians equal np.nanmedian
    # second by second
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 20, 60))
    x = rng.normal(30, 1, (60, 2))
    x[rng.random((60, 2)) < 0.2] = np.nan
    sec7 = np.floor(t) == 7
    x[sec7, 1] = np.nan
    valid = rng.random(60) > 0.1
    feats = xr.Dataset({"x": (("time", "side"), x), "valid": (("time",), valid)},
                       coords={"time": t, "side": ["left", "right"]})
    grid = np.arange(2.0, 20.0)
    out = per_second(feats, grid=grid)
    for k, g in enumerate(grid):
        sel = valid & (np.floor(t) == g)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(x[sel], axis=0) if sel.any() else np.full(2, np.nan)
        np.testing.assert_array_equal(out.x.values[k], want)
        assert out.n_frames.values[k] == sel.sum()
    assert sec7.any() and np.isnan(out.x.sel(time=7.0, side="right"))
