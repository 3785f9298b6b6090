"""Metrics placed on the Study grid from their session-clock times (per frame, per second)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import OptionError
from irtrepro.features.extract import place_on_clock


def _per_frame(values, valid=None):
    v = np.asarray(values, float)
    ds = xr.Dataset({"tp_mean": (("time", "side"), np.stack([v, v + 1, v + 2], 1))},
                    coords={"time": np.arange(v.size, dtype=float),
                            "side": ["left", "right", "both"]})
    ds["valid"] = ("time", np.ones(v.size, bool) if valid is None else np.asarray(valid))
    return ds


def test_frames_land_on_their_session_second():
    m = _per_frame([10.0, 11.0, 12.0, 13.0, 14.0], valid=[True, True, False, True, True])
    # camera 3.4 s before exercise start for the first frame, one frame every 2 s
    times = np.array([-3.4, -1.4, 0.6, 2.6, 4.6])
    out = place_on_clock(m, times, np.arange(0.0, 4.0))
    expected = np.array([np.nan, np.nan, 13.0, np.nan])  # frame 2 is invalid, frame 4 past
    np.testing.assert_array_equal(out["tp_mean"].sel(side="left").values, expected)
    np.testing.assert_array_equal(out["n_frames"].values, [0, 0, 1, 0])
    assert out.attrs == {"frames_read": 5, "frames_placed": 1, "frames_outside_grid": 3,
                         "frames_invalid": 1}


def test_per_second_input_is_placed_by_the_middle_of_each_second():
    ds = xr.Dataset({"tp_mean": ("time", [1.0, 2.0, 3.0]), "n_frames": ("time", [30, 0, 29])},
                    coords={"time": [0.0, 1.0, 2.0]})
    times = ds["time"].values + 0.5 + 46.7       # middles, camera 46.7 s after exercise start
    out = place_on_clock(ds, times, np.arange(0.0, 50.0))
    np.testing.assert_array_equal(out["tp_mean"].values[46:50], [np.nan, 1.0, np.nan, 3.0])
    assert out["n_frames"].values[47] == 30 and out["n_frames"].values[49] == 29
    assert out.attrs["frames_read"] == 59 and out.attrs["frames_placed"] == 59


def test_times_must_match_rows():
    with pytest.raises(OptionError, match="2 times for 5 rows"):
        place_on_clock(_per_frame(np.arange(5.0)), np.zeros(2), np.arange(3.0))
