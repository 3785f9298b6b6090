"""Camera frames on the session clock (file timestamps, offset_s, drift_ppm), the lag estimate
by cross-correlation and the clock cross-check warning."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
import xarray as xr

from irtrepro.clock import ClockWarning, camera_times, check_clock, estimate_lag
from irtrepro.errors import SyncError
from irtrepro.io import read
from irtrepro.manifest import SYNC_OPTIONS, load_manifest
from irtrepro.synth.lab import LabConfig, generate_lab_study
from irtrepro.synth.physiology import SynthConfig

CFG = LabConfig(physiology=SynthConfig(n_subjects=1, sessions=(("CON", "CON", 1),)),
                shape=(32, 32), frame_interval_s=30.0, duration_s=240.0, lead_s=60.0,
                clock_offset_s=47.0, clock_drift_ppm=400.0, annotated_per_subject=0,
                kinds=("hr",))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("clock")
    m = load_manifest(generate_lab_study(out, CFG, n_jobs=1))
    truth = json.loads((out / "derivatives" / "truth" / "lab.json").read_text())
    s = m.sessions[0]
    return s, read("thermal", s.files["thermal"].path, "flir-seq"), truth["sessions"][0]


def _with(entry, **options):
    return dataclasses.replace(entry, options={**entry.options, **options})


def test_drift_is_a_sync_option_not_a_reader_option():
    assert {"offset_s", "drift_ppm"} <= set(SYNC_OPTIONS)


def test_file_timestamps_carry_the_planted_offset(lab):
    s, da, truth = lab
    c = camera_times(da, s.files["thermal"], s)
    assert c.origin == "file timestamps" and c.offset_s == 0.0
    # uncorrected: the camera's +47 s and its 400 ppm of elapsed time are still in the times
    t_true = np.asarray(truth["frame_time_true_s"])
    np.testing.assert_allclose(c.time, np.asarray(truth["frame_time_camera_s"]), atol=1.5e-3)
    assert c.time[0] - t_true[0] == pytest.approx(47.0, abs=1e-3)


def test_offset_and_drift_correct_the_camera_clock(lab):
    s, da, truth = lab
    c = camera_times(da, _with(s.files["thermal"], offset_s=-47.0, drift_ppm=400.0), s)
    assert (c.origin, c.offset_s, c.drift_ppm) == ("file timestamps", -47.0, 400.0)
    np.testing.assert_allclose(c.time, truth["frame_time_true_s"], atol=1.5e-3)
    # without the drift term the last frame is 0.12 s late (400 ppm of 300 s)
    c0 = camera_times(da, _with(s.files["thermal"], offset_s=-47.0), s)
    assert c0.time[-1] - truth["frame_time_true_s"][-1] == pytest.approx(0.12, abs=2e-3)


def test_no_absolute_time_needs_an_offset(lab):
    s, da, truth = lab
    bare = da.copy()
    bare.attrs["start_time"] = ""
    with pytest.raises(SyncError, match="no absolute time; an offset is required.*offset_s"):
        camera_times(bare, s.files["thermal"], s)
    c = camera_times(bare, _with(s.files["thermal"], offset_s=-13.0), s)
    assert c.origin == "offset_s"
    np.testing.assert_allclose(c.time[[0, 1]], [-13.0, -13.0 + 30 * (1 + 400e-6)], atol=1e-3)


def test_bad_offset_is_named(lab):
    s, da, _ = lab
    with pytest.raises(SyncError, match="offset_s='soon'.*expected a number"):
        camera_times(da, _with(s.files["thermal"], offset_s="soon"), s)


def _pair(lag, step_a=2.0, seed=0, noise=0.01):
    """A smooth random signal b at 1 s and a = -b delayed by ``lag`` s, sampled every step_a."""
    rng = np.random.default_rng(seed)
    tb = np.arange(0.0, 1200.0)
    b = np.convolve(rng.normal(size=tb.size + 40), np.ones(20) / 20, mode="valid")[:tb.size]
    b = np.cumsum(b) * 0.1
    ta = np.arange(-100.0, 1100.0, step_a)
    a = -np.interp(ta - lag, tb, b) + rng.normal(0, noise, ta.size) + 33.0
    return a, ta, b, tb


@pytest.mark.parametrize("lag", [47.0, -12.3, 0.0])
def test_estimate_lag_recovers_a_known_lag(lag):
    a, ta, b, tb = _pair(lag)
    est = estimate_lag(a, ta, b, tb, max_lag_s=120, sign=-1)
    assert est.lag_s == pytest.approx(lag, abs=0.5) and est.r > 0.5
    # the wrong sign finds something else, with a far weaker correlation
    assert estimate_lag(a, ta, b, tb, max_lag_s=120, sign=1).r < 0.3


def test_estimate_lag_without_overlap_is_nan_with_reason():
    a, ta, b, tb = _pair(0.0)
    est = estimate_lag(a[:20], ta[:20], b[-30:], tb[-30:], max_lag_s=60)
    assert np.isnan(est.lag_s) and "overlap" in est.reason


def _recording(lag, session_start):
    """Frames whose central mean is -b (the reference) with the camera clock ``lag`` s ahead."""
    a, ta, b, tb = _pair(lag, step_a=2.0, seed=3)
    frames = np.broadcast_to(a[:, None, None], (a.size, 8, 8)).astype(np.float32)
    start = session_start + dt.timedelta(seconds=float(ta[0]))
    da = xr.DataArray(frames, dims=("frame", "y", "x"),
                      coords={"time": ("frame", ta - ta[0])},
                      attrs={"start_time": start.isoformat()})
    return da, (tb, b)


def test_check_clock_warns_on_disagreement_and_is_silent_when_corrected(lab, recwarn):
    s, _, _ = lab
    da, ref = _recording(47.0, s.start_time)
    with pytest.warns(ClockWarning, match=r"S01/CON.*\+4[67]\.\d s.*offset_s"):
        out = check_clock(da, s.files["thermal"], s, ref, smooth_s=0)
    assert out["agrees"] is False and out["lag_s"] == pytest.approx(47.0, abs=0.5)
    n = len(recwarn)
    out = check_clock(da, _with(s.files["thermal"], offset_s=-47.0), s, ref, smooth_s=0)
    assert out["agrees"] is True and abs(out["lag_s"]) < 0.5 and out["offset_s"] == -47.0
    assert len(recwarn) == n  # silent


def test_drift_on_a_tabular_stream_is_refused(lab):
    import pandas as pd

    from irtrepro.sync import clock_offset

    s, _, _ = lab
    df = pd.DataFrame({"time": [0.0, 1.0]})
    with pytest.raises(SyncError, match="drift_ppm.*thermal recordings only"):
        clock_offset(df, _with(s.files["hr"], offset_s=0.0, drift_ppm=30.0), s)


def test_check_clock_claims_nothing_when_the_signals_do_not_identify_the_lag(lab, recwarn):
    """Camera signal unrelated to the reference: a peak exists, but r is low, so no verdict."""
    s, _, _ = lab
    da, (tb, b) = _recording(47.0, s.start_time)
    rng = np.random.default_rng(5)
    unrelated = np.cumsum(rng.normal(0, 0.1, tb.size))
    n = len(recwarn)
    out = check_clock(da, s.files["thermal"], s, (tb, unrelated), smooth_s=0)
    assert np.isfinite(out["lag_s"]) and out["r"] < 0.5
    assert out["agrees"] is None and "min_r" in out["reason"]
    assert len(recwarn) == n   # no clock warning on a lag the data cannot give
