"""Tests of the synthetic face thermograms (irtrepro.synth.face)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from irtrepro.errors import OptionError
from irtrepro.io import read
from irtrepro.io.face import write_face_labels
from irtrepro.synth.face import (
    clip_windows,
    demo_breaths,
    demo_truth_session,
    render_face_session,
)


@pytest.fixture(scope="module")
def session():
    truth = demo_truth_session("S01", "CON", seed=1)
    breaths = demo_breaths(truth, seed=1)
    return truth, breaths, render_face_session(truth, breaths, seed=1)


def test_labels_follow_breath_table(session):
    truth, breaths, ds = session
    t = ds["time"].values
    # expected: INH inside [t_start, t_insp_end), EXH inside [t_insp_end, t_end)
    i = np.searchsorted(breaths.t_start.values, t, side="right") - 1
    expected = np.where(t < breaths.t_insp_end.values[i], "INH", "EXH")
    assert (ds["label"].values == expected).all()
    assert set(np.unique(ds["label"].values)) == {"INH", "EXH"}
    rf_expected = 60.0 / (breaths.t_end.values[i] - breaths.t_start.values[i])
    np.testing.assert_allclose(ds["rf"].values, rf_expected)


def test_shapes_units_and_clip_design(session):
    truth, _, ds = session
    assert ds["frames"].dims == ("frame", "y", "x")
    assert ds["frames"].shape[1:] == (48, 64)
    assert ds["frames"].dtype == np.float32
    assert ds["frames"].attrs["units"] == "degC"
    clips = clip_windows(truth)
    assert list(clips.phase) == ["rest", "run_low", "run_high"]
    assert ds.sizes["frame"] == int(30 * 8) * 3
    # frame spacing 1/fps inside a clip
    dt = np.diff(ds["time"].values[ds["clip_index"].values == 0])
    np.testing.assert_allclose(dt, 1 / 8)


def test_exhalation_warms_nostril_region(session):
    _, _, ds = session
    f = ds["frames"].values
    ry = np.round(ds["roi_y"].values).astype(int)
    rx = np.round(ds["roi_x"].values).astype(int)
    roi = np.array([f[k, ry[k] - 2:ry[k] + 3, rx[k] - 4:rx[k] + 5].mean() for k in range(len(f))])
    mid = (ds["phase_frac"].values > 0.3) & (ds["phase_frac"].values < 0.7)
    lab = ds["label"].values
    for clip in range(3):
        sel = mid & (ds["clip_index"].values == clip)
        assert roi[sel & (lab == "EXH")].mean() > roi[sel & (lab == "INH")].mean() + 0.3


def test_amplitude_scales_with_tidal_volume():
    truth = demo_truth_session("S02", "CON", phases=(("rest", 0.0, 60.0),))
    br = demo_breaths(truth)
    small = render_face_session(truth, br.assign(vt=0.5), noise=0.0, seed=0)
    big = render_face_session(truth, br.assign(vt=3.0), noise=0.0, seed=0)
    assert big["frames"].std("frame").max() > 1.5 * small["frames"].std("frame").max()


def test_reproducible_and_subject_appearance():
    truth = demo_truth_session("S03", "CON", phases=(("rest", 0.0, 40.0),))
    br = demo_breaths(truth)
    a = render_face_session(truth, br, seed=5)
    b = render_face_session(truth, br, seed=5)
    xr.testing.assert_identical(a, b)
    other = render_face_session(truth.assign_coords(subject="S04"), br, seed=5)
    assert not np.allclose(a["frames"].mean("frame"), other["frames"].mean("frame"), atol=0.2)


def test_head_bob_at_cadence_while_running():
    truth = demo_truth_session("S05", "CON", phases=(("run", 10.0, 60.0),))
    truth["cadence"] = truth["cadence"] * 0 + 90.0  # 1.5 Hz, well below the 4 Hz Nyquist
    br = demo_breaths(truth)
    ds = render_face_session(truth, br, noise=0.0, seed=0)
    y = ds["roi_y"].values - ds["roi_y"].values.mean()
    spec = np.abs(np.fft.rfft(y - np.convolve(y, np.ones(9) / 9, "same")))
    freq = np.fft.rfftfreq(len(y), 1 / 8)
    assert abs(freq[np.argmax(spec[5:]) + 5] - 1.5) < 0.1


def test_labels_csv_roundtrip(session, tmp_path):
    # a rendered session's labels go through the same reader as a lab's label file
    _, _, ds = session
    path = write_face_labels(tmp_path / "labels.csv", ds)
    df = read("face_labels", path)
    assert list(df.columns) == ["frame", "time", "label"]
    assert (df["label"].values == ds["label"].values).all()
    np.testing.assert_allclose(df["time"].values, ds["time"].values, atol=1e-6)


def test_bad_render_arguments():
    truth = demo_truth_session("S01", "CON", phases=(("rest", 0.0, 40.0),))
    br = demo_breaths(truth)
    with pytest.raises(OptionError, match="fps"):
        render_face_session(truth, br, fps=1.0)
    with pytest.raises(OptionError, match="t_insp_end"):
        render_face_session(truth, br.drop(columns="t_insp_end"))
    with pytest.raises(OptionError, match="empty"):
        render_face_session(truth, pd.DataFrame(columns=br.columns))
