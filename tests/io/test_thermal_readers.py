"""Simple thermal readers: npy/npz, TIFF, FLIR JPEG (flyr), FLIR CSV; checks; calibration."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import FormatError, OptionError
from irtrepro.io import detect, read
from irtrepro.io.thermal import (
    FrameError,
    check_frames,
    frames_dataarray,
    two_point_calibration,
)


def test_npy_with_fps(tmp_path):
    x = np.linspace(20, 35, 3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    np.save(tmp_path / "a.npy", x)
    assert detect(tmp_path / "a.npy", "thermal") == "npy"
    da = read("thermal", tmp_path / "a.npy", fps=2.0)
    np.testing.assert_array_equal(da.values, x)
    np.testing.assert_array_equal(da["time"].values, [0.0, 0.5, 1.0])
    assert da.attrs["format"] == "npy" and da.attrs["source"].endswith("a.npy")
    with pytest.raises(OptionError, match="neither fps"):
        read("thermal", tmp_path / "a.npy")


def test_npy_integer_counts_need_scale_offset_unit(tmp_path):
    np.save(tmp_path / "c.npy", np.full((2, 3, 3), 30000, np.uint16))
    with pytest.raises(OptionError, match="never guessed"):
        read("thermal", tmp_path / "c.npy", fps=1)
    da = read("thermal", tmp_path / "c.npy", fps=1, scale=0.01, offset=0.0, unit="K")
    np.testing.assert_allclose(da.values, 300.0 - 273.15, atol=1e-4)


def test_npz_time_array(tmp_path):
    x = np.full((2, 3, 4), 31.5, np.float32)
    np.savez(tmp_path / "b.npz", frames=x, time=np.array([0.25, 1.75]))
    da = read("thermal", tmp_path / "b.npz", start_time="2020-05-05T10:00:00")
    np.testing.assert_array_equal(da["time"].values, [0.25, 1.75])
    assert da.attrs["start_time"] == "2020-05-05T10:00:00"
    np.testing.assert_array_equal(da.values, x)


def test_tiff_requires_scale_offset_unit(tmp_path):
    import tifffile

    counts = np.array([[[27315, 30315]], [[31315, 37315]]], np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", counts)
    assert detect(tmp_path / "s.tif", "thermal") == "tiff"
    for missing in ({"offset": 0, "unit": "K"}, {"scale": 0.01, "unit": "K"},
                    {"scale": 0.01, "offset": 0}):
        with pytest.raises(OptionError, match="never guessed"):
            read("thermal", tmp_path / "s.tif", fps=1, **missing)
    da = read("thermal", tmp_path / "s.tif", fps=1, scale=0.01, offset=0.0, unit="K")
    assert da.shape == (2, 1, 2)
    np.testing.assert_allclose(da.values.ravel(), [0, 30, 40, 100], atol=1e-3)


def test_flir_jpeg_matches_flyr_reference(real_exports):
    path = real_exports / "flir_IR_2412.jpg"
    assert detect(path, "thermal") == "flir-jpeg"
    da = read("thermal", path)
    assert da.shape == (1, 480, 640)
    v = da.values
    assert v.min() == pytest.approx(22.74, abs=0.005)
    assert v.max() == pytest.approx(35.25, abs=0.005)
    assert v.mean() == pytest.approx(28.26, abs=0.005)
    assert da.attrs["emissivity"] == pytest.approx(0.95)
    assert da.attrs["reflected_temperature_degC"] == pytest.approx(20.0, abs=1e-4)
    # a higher emissivity lowers the reading of a surface warmer than its surroundings
    hi = read("thermal", path, emissivity=1.0)
    assert hi.values.mean() < v.mean() - 0.1


def test_plain_jpeg_is_not_radiometric(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "plain.jpg")
    with pytest.raises(FormatError, match="no FLIR radiometric data"):
        read("thermal", tmp_path / "plain.jpg", fmt="flir-jpeg")


def test_flir_csv_german_and_english(tmp_path):
    en = "File:,C:\\IR_0001.jpg\n\nFrame 1\n20.5,21.0,22.25,\n23.0,24.5,25.0,\n"
    (tmp_path / "en.csv").write_text(en)
    da = read("thermal", tmp_path / "en.csv")
    np.testing.assert_allclose(da.values[0], [[20.5, 21.0, 22.25], [23.0, 24.5, 25.0]])
    de = "Datei:;IR_0001.jpg\nTemperatur [°C]\n20,5;21,0\n23,0;24,5\n\nFrame 2\n1;2\n3;4\n"
    (tmp_path / "de.csv").write_text(de, encoding="utf-8")
    da = read("thermal", tmp_path / "de.csv", fps=1.0)
    assert da.shape == (2, 2, 2)
    np.testing.assert_allclose(da.values[0], [[20.5, 21.0], [23.0, 24.5]])
    np.testing.assert_allclose(da.values[1], [[1, 2], [3, 4]])
    (tmp_path / "f.csv").write_text("Unit: °F\n32,212\n50,68\n")
    np.testing.assert_allclose(read("thermal", tmp_path / "f.csv").values[0],
                               [[0, 100], [10, 20]], atol=1e-4)
    (tmp_path / "bad.csv").write_text("a,b\n1,2,3\n4,5\n")
    with pytest.raises(FormatError, match="bad.csv:3"):
        read("thermal", tmp_path / "bad.csv")


def test_check_frames_names_file_and_frame():
    x = np.full((4, 2, 2), 30.0, np.float32)
    check_frames(x, source="f.npy")
    x[2, 1, 1] = np.nan
    with pytest.raises(FrameError, match=r"f\.npy: frame 2: 1 NaN"):
        check_frames(x, source="f.npy")
    check_frames(x, source="f.npy", allow_nan=True)
    x[3, 0, 0] = np.inf
    with pytest.raises(FrameError, match="frame 3: 1 infinite"):
        check_frames(x, source="f.npy", allow_nan=True)
    y = np.full((3, 2, 2), 30.0, np.float32)
    y[1, 0, 0] = 2700.0
    with pytest.raises(FrameError, match="frame 11: .*plausible range"):
        check_frames(y, source="f.npy", first_frame=10)
    check_frames(y, plausible_range=(0, 3000))
    check_frames(y, plausible_range=None)


def test_reader_applies_plausible_range(tmp_path):
    np.save(tmp_path / "k.npy", np.full((1, 2, 2), 303.15, np.float32))  # kelvin, unit forgotten
    with pytest.raises(FrameError, match="frame 0.*plausible"):
        read("thermal", tmp_path / "k.npy")
    assert read("thermal", tmp_path / "k.npy", unit="K").values.mean() == pytest.approx(30.0)


def test_two_point_calibration_recovers_truth():
    rng = np.random.default_rng(3)
    truth = rng.uniform(25, 35, (5, 10, 10))
    truth[:, :2, :2] = 20.0   # patch a, a blackbody at 20 degC
    truth[:, -2:, -2:] = 40.0  # patch b at 40 degC
    gain = np.array([1.02, 0.97, 1.0, 1.05, 0.9])[:, None, None]
    offs = np.array([0.3, -0.5, 0.0, 1.1, -2.0])[:, None, None]
    measured = frames_dataarray((truth * gain + offs).astype(np.float32), np.arange(5.0))
    pa = (slice(0, 2), slice(0, 2))
    mb = np.zeros((10, 10), bool)
    mb[-2:, -2:] = True
    cal = two_point_calibration(measured, pa, mb, 20.0, 40.0)
    np.testing.assert_allclose(cal.values, truth, atol=2e-4)
    np.testing.assert_allclose(cal["calibration_gain"].values, 1 / gain.ravel(), rtol=1e-5)
    lazy = two_point_calibration(measured.chunk({"frame": 2}), pa, mb, 20.0, 40.0)
    assert isinstance(lazy, xr.DataArray) and lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, truth, atol=2e-4)
    flat = frames_dataarray(np.full((2, 10, 10), 30.0, np.float32), [0.0, 1.0])
    with pytest.raises(FrameError, match="frame 0: the two calibration patches"):
        two_point_calibration(flat, pa, mb, 20.0, 40.0)
    with pytest.raises(OptionError, match="must differ"):
        two_point_calibration(measured, pa, mb, 20.0, 20.0)


def test_cli_info_and_convert(tmp_path, capsys):
    import json

    from irtrepro.cli import main
    from irtrepro.io.thermal import open_frames, quantisation_bound

    x = np.linspace(20, 35, 4 * 3 * 5, dtype=np.float32).reshape(4, 3, 5)
    np.save(tmp_path / "a.npy", x)
    assert main(["-q", "thermal", "convert", str(tmp_path / "a.npy"),
                 str(tmp_path / "a.zarr"), "--fps", "4"]) == 0
    back = open_frames(tmp_path / "a.zarr")
    assert np.abs(back.values - x).max() <= quantisation_bound()
    np.testing.assert_array_equal(back["time"].values, [0, 0.25, 0.5, 0.75])
    capsys.readouterr()
    assert main(["-q", "thermal", "info", str(tmp_path / "a.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "zarr" and info["frames"] == 4
    assert (info["width"], info["height"]) == (5, 3)
    assert info["frame_rate_hz"] == pytest.approx(4.0) and info["time_span_s"] == 0.75
    (tmp_path / "x.txt").write_text("hello")
    assert main(["-q", "thermal", "info", str(tmp_path / "x.txt")]) == 2
    assert "no thermal reader recognises" in capsys.readouterr().err


def test_check_frame_times_and_segments():
    from irtrepro.io.thermal import FrameTimeError, check_frame_times, time_segments

    check_frame_times([0.0, 0.1, 5.0, 5.1])  # a forward jump (pause) is kept
    check_frame_times([0.0, np.nan, 0.2])  # unreadable stamps are not compared
    with pytest.raises(FrameTimeError, match=r"x\.seq: frame 12: time goes backwards \(0\.200 s "
                                             r"at frame 11, then 0\.000 s\)"):
        check_frame_times([0.0, 0.1, 0.2, 0.0, 0.1], source="x.seq",
                          frame_index=[9, 10, 11, 12, 13])
    with pytest.raises(FrameTimeError, match=r"frame 1: time repeats"):
        check_frame_times([0.0, 0.0, 0.1])
    assert time_segments([0.0, 0.1, 0.2, 0.0, 0.1]) == [
        {"first_frame": 0, "last_frame": 2, "n_frames": 3, "time_span_s": pytest.approx(0.2)},
        {"first_frame": 3, "last_frame": 4, "n_frames": 2, "time_span_s": pytest.approx(0.1)}]
    assert len(time_segments([0.0, 1.0])) == 1


def test_stack_times_that_go_back_or_repeat_are_refused(tmp_path):
    # the stack readers take their times from the file (npz ``time``) or time=, and hold them
    # to the camera files' rule
    from irtrepro.io.thermal import FrameTimeError

    x = np.full((4, 3, 4), 31.5, np.float32)
    np.savez(tmp_path / "cat.npz", frames=x, time=np.array([0.0, 0.5, 0.0, 0.5]))
    with pytest.raises(FrameTimeError, match=r"cat\.npz: frame 2: time goes backwards "
                                             r"\(0\.500 s at frame 1, then 0\.000 s\)") as exc:
        read("thermal", tmp_path / "cat.npz")
    assert exc.value.frame == 2
    np.save(tmp_path / "d.npy", x)
    with pytest.raises(FrameTimeError, match=r"d\.npy: frame 3: time repeats"):
        read("thermal", tmp_path / "d.npy", time=[0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(  # a pause (forward jump) is kept as given
        read("thermal", tmp_path / "d.npy", time=[0.0, 0.5, 9.0, 9.5])["time"].values,
        [0.0, 0.5, 9.0, 9.5])
