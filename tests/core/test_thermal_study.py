"""Extracted metrics keep their recording's clock; ``build --metrics`` places them on the
session clock with per-session provenance; every stream's clock origin is in the Study."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from irtrepro.cli import main
from irtrepro.errors import SyncError
from irtrepro.manifest import load_manifest, sha256_path
from irtrepro.recordings import frame_store
from irtrepro.study import open_study
from irtrepro.sync import study_grid
from irtrepro.synth.lab import LabConfig, generate_lab_study
from irtrepro.synth.physiology import SynthConfig
from irtrepro.thermal_study import metrics_session

CFG = LabConfig(physiology=SynthConfig(n_subjects=1, sessions=(("CON", "CON", 1),)),
                shape=(32, 32), frame_interval_s=30.0, duration_s=240.0, lead_s=60.0,
                annotated_per_subject=0, kinds=("hr",))


def _t(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("ts")
    mpath = generate_lab_study(root / "lab", CFG, n_jobs=1)
    m = load_manifest(mpath)
    s = m.sessions[0]
    fs = frame_store(s.files["thermal"], root / "frames")
    truth = json.loads((root / "lab" / "derivatives" / "truth" / "lab.json").read_text())
    masks = root / "lab" / truth["sessions"][0]["masks"]
    out = root / "metrics" / "sub-S01_ses-CON.nc"
    assert main(["extract", str(fs.path), "--masks", str(masks), "--out", str(out)]) == 0
    return mpath, out, fs, truth


def test_extract_keeps_the_recordings_start_time_and_source(extracted):
    _, out, fs, truth = extracted
    ds = xr.load_dataset(out)
    st = truth["sessions"][0]
    assert _t(ds.attrs["start_time"]) == _t(st["first_frame_camera_clock"])
    assert ds.attrs["source"].endswith("sub-S01_ses-CON_thermal.seq")
    assert ds.attrs["source_sha256"] == fs.sha256 == sha256_path(fs.source)
    assert ds.attrs["frames_read"] == 11 and ds.attrs["frames_damaged"] == 0
    assert "first frame" in ds.attrs["time_origin"]


def test_build_metrics_places_frames_by_the_file_clock(extracted, tmp_path, capsys):
    mpath, out, fs, truth = extracted
    target = tmp_path / "study.nc"
    assert main(["build", "--manifest", str(mpath), "--out", str(target),
                 "--metrics", str(out)]) == 0
    assert "thermal S01/CON" in capsys.readouterr().out
    st = open_study(target)
    tp = st.tp.sel(subject="S01", session="CON", side="both").values
    # camera +47 s: the frame taken at true -60 s is stamped -13 s (outside the grid); the
    # frame of true t lands at t + 47 s (drift of 30 ppm: under 10 ms here)
    have = np.flatnonzero(np.isfinite(tp))
    np.testing.assert_array_equal(have, np.arange(17, 17 + 30 * len(have), 30))
    one = lambda v: v.sel(subject="S01", session="CON").values.item()  # noqa: E731
    assert one(st.thermal_clock_origin) == "file timestamps"
    assert one(st.thermal_clock_offset_s) == 0.0
    assert one(st.thermal_frames_read) == 11 and one(st.thermal_frames_outside_grid) == 1
    assert one(st.thermal_sha256) == fs.sha256
    assert one(st.thermal_source).endswith(".seq")
    streams = {r["stream"]: r for r in json.loads(st.attrs["clock"])}
    assert streams["hr"]["origin"] == "file start time"
    assert _t(streams["thermal"]["file_start"]) == \
        _t(truth["sessions"][0]["first_frame_camera_clock"])


def test_manifest_offset_moves_the_metrics(extracted):
    mpath, out, _, _ = extracted
    m = load_manifest(mpath)
    s = m.sessions[0]
    fixed = dataclasses.replace(s.files["thermal"], options={"offset_s": -47.0,
                                                             "drift_ppm": 30.0})
    m.sessions[0] = dataclasses.replace(s, files={**s.files, "thermal": fixed})
    ts = metrics_session(out, m, study_grid(m))
    tp = ts.variables["tp"].sel(side="both").values
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(tp)), np.arange(0, 241, 30))
    assert ts.clock["offset_s"] == -47.0 and ts.provenance["frames_outside_grid"] == 2


def test_a_per_frame_file_is_placed_frame_by_frame(extracted, tmp_path):
    mpath, _, fs, truth = extracted
    masks = Path(mpath).parent / truth["sessions"][0]["masks"]
    out = tmp_path / "sub-S01_ses-CON.nc"
    assert main(["extract", str(fs.path), "--masks", str(masks), "--out", str(out),
                 "--per-frame", "--subject", "S01", "--session", "CON"]) == 0
    m = load_manifest(mpath)
    ts = metrics_session(out, m, study_grid(m))
    t_cam = np.asarray(truth["sessions"][0]["frame_time_camera_s"])
    have = np.flatnonzero(np.isfinite(ts.variables["tp"].sel(side="both").values))
    np.testing.assert_array_equal(have, np.floor(t_cam[t_cam >= 0]).astype(int))
    assert ts.provenance["frames_read"] == 11 and ts.provenance["frames_outside_grid"] == 1


def test_a_metrics_file_of_no_session_is_named(extracted, tmp_path):
    mpath, out, _, _ = extracted
    anon = tmp_path / "metrics.nc"
    ds = xr.load_dataset(out)
    ds.attrs["source_sha256"] = "0" * 64
    ds.to_netcdf(anon, engine="h5netcdf")
    m = load_manifest(mpath)
    with pytest.raises(SyncError, match=r"metrics.nc: which session\?"):
        metrics_session(anon, m, study_grid(m))
    other = tmp_path / "sub-S09_ses-CON.nc"
    shutil.copy(out, other)
    with pytest.raises(SyncError, match="S09/CON .*not in"):
        metrics_session(other, m, study_grid(m))
