"""The zarr frame store: round trip, quantisation bound, masks, atomicity, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import FormatError
from irtrepro.io import read
from irtrepro.io.thermal import (
    ADD_OFFSET,
    FILL_VALUE,
    SCALE_FACTOR,
    FrameError,
    frames_dataarray,
    open_frame_store,
    open_frames,
    quantisation_bound,
    write_frames,
    write_masks,
)


def _frames(n=70, ny=6, nx=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-49.99, 600.0, (n, ny, nx)).astype(np.float32)
    return frames_dataarray(x, np.arange(n) / 7.5 + 0.013, start_time="2021-03-04T05:06:07.125",
                            source="memory", fmt="test", attrs={"emissivity": 0.98})


def _masks(shape, seed=1):
    rng = np.random.default_rng(seed)
    return {"roi": rng.integers(0, 3, shape).astype(np.uint8),
            "vessels": rng.integers(0, 3, shape).astype(np.uint8)}


def test_round_trip_within_quantisation_bound(tmp_path):
    da = _frames()
    path = write_frames(tmp_path / "s.zarr", da, chunk_frames=16)
    back = open_frames(path)
    assert back.dims == ("frame", "y", "x")
    assert back.dtype == np.float32
    assert back.chunks[0][0] == 16  # lazy, chunked along frame
    err = np.abs(back.values - da.values)
    assert err.max() <= quantisation_bound()
    # the bound is tight: quantisation really is half a quantum, not less
    assert err.max() > 0.4 * SCALE_FACTOR
    np.testing.assert_array_equal(back["time"].values, da["time"].values)
    assert back.attrs["start_time"] == "2021-03-04T05:06:07.125"
    assert back.attrs["emissivity"] == 0.98
    assert back.attrs["units"] == "degC"


def test_values_on_the_quantum_grid_round_trip_exactly(tmp_path):
    counts = np.arange(0, 65535, 937, dtype=np.float64)
    vals = (counts * SCALE_FACTOR + ADD_OFFSET).astype(np.float32).reshape(1, 1, -1)
    da = frames_dataarray(vals, [0.0])
    back = open_frames(write_frames(tmp_path / "q.zarr", da)).values
    np.testing.assert_array_equal(back, vals)


def test_on_disk_encoding_is_uint16_with_fill(tmp_path):
    import zarr

    x = np.full((2, 2, 3), 20.0, np.float32)
    x[1, 0, 2] = np.nan
    path = write_frames(tmp_path / "e.zarr", frames_dataarray(x, [0.0, 1.0]))
    raw = zarr.open_array(str(path / "frames"), mode="r")
    assert raw.dtype == np.uint16
    assert raw[1, 0, 2] == FILL_VALUE
    assert raw[0, 0, 0] == round((20.0 - ADD_OFFSET) / SCALE_FACTOR)
    back = open_frames(path).values
    assert np.isnan(back[1, 0, 2]) and np.isnan(back).sum() == 1


def test_masks_beside_frames_and_replace(tmp_path):
    da = _frames(n=40)
    m = _masks(da.shape)
    path = write_frames(tmp_path / "m.zarr", da, masks={"roi": m["roi"]}, chunk_frames=8)
    ds = open_frame_store(path)
    assert set(ds.data_vars) == {"frames", "roi"}
    assert ds["roi"].dtype == np.uint8
    np.testing.assert_array_equal(ds["roi"].values, m["roi"])
    write_masks(path, vessels=m["vessels"], roi=2 - m["roi"])
    ds = open_frame_store(path)
    np.testing.assert_array_equal(ds["vessels"].values, m["vessels"])
    np.testing.assert_array_equal(ds["roi"].values, 2 - m["roi"])
    # frames untouched, no temporary folders left beside the store
    assert np.abs(ds["frames"].values - da.values).max() <= quantisation_bound()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]


def test_bad_masks_rejected(tmp_path):
    da = _frames(n=10)
    with pytest.raises(FrameError, match="shape"):
        write_frames(tmp_path / "a.zarr", da, masks={"roi": np.zeros((10, 6, 7), np.uint8)})
    bad = np.zeros(da.shape, np.uint8)
    bad[7, 1, 1] = 5
    with pytest.raises(FrameError, match="frame 7"):
        write_frames(tmp_path / "b.zarr", da, masks={"vessels": bad}, chunk_frames=4)
    assert not list(tmp_path.iterdir())  # nothing partial left behind
    path = write_frames(tmp_path / "c.zarr", da)
    with pytest.raises(FrameError, match="frame 7"):
        write_masks(path, roi=bad)
    assert "roi" not in open_frame_store(path)


def test_unencodable_values_name_the_frame_and_leave_no_store(tmp_path):
    da = _frames(n=30)
    da.values[23, 2, 2] = 700.0
    with pytest.raises(FrameError, match=r"frame 23.*encodable range"):
        write_frames(tmp_path / "x.zarr", da, chunk_frames=10)
    da.values[23, 2, 2] = -np.inf
    with pytest.raises(FrameError, match="frame 23.*infinite"):
        write_frames(tmp_path / "x.zarr", da, chunk_frames=10)
    assert not list(tmp_path.iterdir())


def test_failed_rewrite_keeps_old_store(tmp_path):
    good = _frames(n=5)
    path = write_frames(tmp_path / "k.zarr", good)
    bad = good.copy(deep=True)
    bad.values[3] = 9999.0
    with pytest.raises(FrameError):
        write_frames(path, bad)
    np.testing.assert_allclose(open_frames(path).values, good.values, atol=quantisation_bound())


def test_lazy_dask_source_streams(tmp_path):
    da = _frames(n=50).chunk({"frame": 7})
    back = open_frames(write_frames(tmp_path / "d.zarr", da, chunk_frames=16))
    assert np.abs(back.values - da.values).max() <= quantisation_bound()


def test_registry_reads_store_and_rejects_non_store(tmp_path):
    path = write_frames(tmp_path / "r.zarr", _frames(n=3))
    da = read("thermal", path)
    assert isinstance(da, xr.DataArray) and da.sizes["frame"] == 3
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(FormatError, match="not a zarr frame store"):
        open_frames(tmp_path / "empty.zarr")


def test_wrong_dims_rejected(tmp_path):
    da = _frames(n=3).rename({"y": "row"})
    with pytest.raises(FrameError, match="dims"):
        write_frames(tmp_path / "w.zarr", da)


def test_times_that_go_back_are_refused_and_nothing_written(tmp_path):
    from irtrepro.io.thermal import FrameTimeError

    good = _frames(n=6)
    path = write_frames(tmp_path / "t.zarr", good)
    joined = good.assign_coords(time=("frame", np.r_[good["time"].values[:3],
                                                     good["time"].values[:3]]))
    with pytest.raises(FrameTimeError, match=r"memory: frame 3: time goes backwards.*"
                                             r"nothing written to .*t\.zarr") as exc:
        write_frames(path, joined)
    assert exc.value.frame == 3
    np.testing.assert_array_equal(open_frames(path)["time"].values, good["time"].values)
    with pytest.raises(FrameTimeError, match=r"frame 1: time repeats"):
        write_frames(tmp_path / "r.zarr", good.assign_coords(time=("frame", np.zeros(6))))
    assert not (tmp_path / "r.zarr").exists()
