"""Signal baseline: ROI location, band-pass, respiratory rate, phase, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from irtrepro.breathing.signal import (
    bandpass,
    locate_nostrils,
    phase_from_signal,
    respiratory_rate,
    signal_baseline,
)
from irtrepro.errors import OptionError
from irtrepro.synth.face import demo_breaths, demo_truth_session, render_face_session


@pytest.fixture(scope="module")
def running():
    truth = demo_truth_session("S01", "CON", seed=3, phases=(("run", 12.0, 80.0),))
    br = demo_breaths(truth, seed=3)
    return render_face_session(truth, br, clip_s=40, seed=3)


def test_locates_nostril_region(running):
    boxes = locate_nostrils(running["frames"].values)
    assert boxes["valid"].all()
    assert np.abs(boxes["cy"] - running["roi_y"].values).mean() < 1.5
    assert np.abs(boxes["cx"] - running["roi_x"].values).mean() < 1.0


def test_rate_while_running_matches_truth(running):
    _, rates = signal_baseline(running)
    t = running["time"].values
    truth = np.array([running["rf"].values[np.abs(t - c) <= 6].mean() for c in rates["time"]])
    assert truth.mean() > 40  # running rates, not rest
    assert np.nanmean(np.abs(rates["rf"].to_numpy() - truth)) < 1.5
    assert rates["reason"].eq("").all()


def test_periodogram_and_peaks_on_a_sine():
    fs, f0 = 8.0, 0.75  # 45 min-1
    t = np.arange(0, 30, 1 / fs)
    x = np.sin(2 * np.pi * f0 * t)
    rates = respiratory_rate(x, t, fs=fs, window_s=12)
    np.testing.assert_allclose(rates["rf_periodogram"], 45.0, atol=0.3)
    np.testing.assert_allclose(rates["rf_peaks"], 45.0, atol=1.0)


def test_too_short_sequence_is_nan_with_reason():
    fs = 8.0
    t = np.arange(0, 5, 1 / fs)
    rates = respiratory_rate(np.sin(2 * np.pi * 0.5 * t), t, fs=fs, window_s=12)
    assert len(rates) == 1 and np.isnan(rates["rf"].iloc[0])
    assert "too short" in rates["reason"].iloc[0]


def test_band_upper_edge_must_pass_running_rates():
    with pytest.raises(OptionError, match=">= 1.2 Hz"):
        bandpass(np.zeros(200), 8.0, high=1.0)
    # a 1 Hz (60 min-1) breathing component survives the default band
    t = np.arange(0, 30, 1 / 8)
    y = bandpass(np.sin(2 * np.pi * 1.0 * t), 8.0)
    assert np.std(y[40:-40]) > 0.6


def test_roi_leaving_the_frame_is_flagged(running):
    f = running["frames"].values[:40].copy()
    # shift the face down by 20 rows: the nostril region leaves the 48-row frame
    shifted = np.concatenate([np.full_like(f[:, :20], f[:, :2].mean()), f[:, :-20]], axis=1)
    boxes = locate_nostrils(shifted)
    assert not boxes["valid"].any()
    assert boxes["reason"].str.contains("leaves the frame|edge").all()
    from irtrepro.breathing.signal import roi_signal

    sig, reason = roi_signal(shifted)
    assert np.isnan(sig).all() and (reason != "").all()


def test_phase_from_slope():
    x = np.sin(np.linspace(0, 2 * np.pi, 41))[:-1]
    lab = phase_from_signal(x, method="slope")
    assert lab[0] == "EXH" and lab[20] == "INH"  # rising, then falling
    assert phase_from_signal(np.array([np.nan, 1.0, 2.0]), method="level")[0] == ""


def test_row_nanpercentiles_equals_numpy_bit_for_bit():
    import warnings

    from irtrepro.breathing.signal import row_nanpercentiles

    rng = np.random.default_rng(4)
    x = rng.normal(30, 2, (40, 97)).astype(np.float32)
    full = x.copy()
    x[rng.random(x.shape) < 0.3] = np.nan
    x[3] = np.nan  # a frame with no finite pixel: NaN, like numpy
    x[5, :-1] = np.nan  # one finite pixel
    qs = (0, 10, 37.3, 50, 95, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for arr in (x, full, x.astype(np.float64)):
            got = row_nanpercentiles(arr, qs)
            for q, g in zip(qs, got, strict=True):
                want = np.nanpercentile(arr, q, axis=1)
                assert g.dtype == want.dtype
                np.testing.assert_array_equal(g, want)
