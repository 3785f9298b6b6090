"""The vision part's sessions: every thermal entry through the frames cache and the camera
clock; a recording that cannot be timed is left out with the reason, never placed by guess."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import xarray as xr

from irtrepro.io.thermal import write_frames
from irtrepro.report.parts.vision import _sessions


def _store(path, start_time=None):
    frames = xr.DataArray(np.full((3, 32, 32), 30.0, np.float32), dims=("frame", "y", "x"),
                          coords={"time": ("frame", [0.0, 2.0, 4.0])})
    if start_time:
        frames.attrs["start_time"] = start_time
    return write_frames(path, frames, progress=False)


def _session(subject, path, options):
    entry = SimpleNamespace(path=path, format="zarr", sha256=None, options=options,
                            where=f"m.yaml:1: {subject}")
    return SimpleNamespace(subject=subject, session="CON", files={"thermal": entry},
                           start_time=dt.datetime(2026, 3, 2, 9, 0, 0))


def test_untimed_recording_is_left_out_with_the_reason(tmp_path):
    m = SimpleNamespace(sessions=[
        _session("S01", _store(tmp_path / "a.zarr"), {}),
        _session("S02", _store(tmp_path / "b.zarr"), {"offset_s": -5.0}),
        _session("S03", _store(tmp_path / "c.zarr", "2026-03-02T08:59:50"), {})])
    sessions, info, notes = _sessions(m, tmp_path / "frames")
    assert [s.subject for s in sessions] == ["S02", "S03"]
    assert len(notes) == 1 and notes[0].startswith("S01/CON: thermal recording left out")
    assert "an offset is required" in notes[0] and "m.yaml:1: S01" in notes[0]
    np.testing.assert_array_equal(sessions[0].clock, [-5.0, -3.0, -1.0])
    np.testing.assert_array_equal(sessions[1].clock, [-10.0, -8.0, -6.0])
    assert info[("S03", "CON")]["clock"]["origin"] == "file timestamps"
    assert info[("S02", "CON")]["clock"]["origin"] == "offset_s"
    assert info[("S02", "CON")]["provenance"]["frames_read"] == 3
