"""FLIR SEQ writer: read back by irtrepro.io (temperatures, time stamps, constants) and by
ExifTool."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import numpy as np
import pytest

from irtrepro.errors import OptionError
from irtrepro.io import detect, flir, read
from irtrepro.synth.exports.flir import DEFAULT_PLANCK, celsius_to_raw, write_flir_seq

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed "
                                    "(Debian libimage-exiftool-perl)")
CET = dt.timezone(dt.timedelta(hours=1))
START = dt.datetime(2026, 3, 2, 8, 59, 47, 123000, tzinfo=CET)
CAMERA = dict(emissivity=0.95, reflected_temperature=21.0, atmospheric_temperature=23.0,
              object_distance=2.0, relative_humidity=0.4)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rng = np.random.default_rng(3)
    frames = (30 + 4 * rng.standard_normal((4, 24, 40))).astype(np.float32)
    frames[0, 0, 0], frames[0, 0, 1] = 10.0, 45.0   # the ends of a plausible range
    # sub-ms parts: the file keeps 1 ms
    times = np.array([-13.0, 46.9996, 107.0004, 167.0021])
    path = write_flir_seq(tmp_path_factory.mktemp("seq") / "r.seq", frames, times,
                          start_time=START, **CAMERA)
    return path, frames, times




def test_round_trip_through_the_reader(recording):
    path, frames, times = recording
    assert detect(path, "thermal") == "flir-seq"
    da = read("thermal", path)
    assert da.shape == frames.shape and da.attrs["format"] == "flir-seq"
    back = da.values
    # half a count of the reader's own chain at each pixel bounds the quantisation
    cam = flir.index_fff(path).camera
    raw = np.round(celsius_to_raw(frames.astype(np.float64), **CAMERA))
    step = flir.raw_to_celsius(raw + 1, cam) - flir.raw_to_celsius(raw, cam)
    err = np.abs(back - frames)
    assert (err <= 0.5 * step + 2e-5).all(), float((err - 0.5 * step).max())
    assert float(step.max()) < 0.01   # a real camera's constants: ~0.005 degC per count
    # the emissivity matters: reading with another one moves skin by tenths of a degree
    other = read("thermal", path, emissivity=0.98).values
    assert np.abs(other - frames).mean() > 0.1


def test_time_stamps_exact_to_the_millisecond(recording):
    path, _frames, times = recording
    da = read("thermal", path)
    ms = np.round(times * 1000)
    np.testing.assert_allclose(da.time.values, (ms - ms[0]) / 1000, atol=1e-9)
    first = START + dt.timedelta(milliseconds=float(ms[0]))
    assert dt.datetime.fromisoformat(da.attrs["start_time"]) == first
    assert dt.datetime.fromisoformat(da.attrs["start_time"]).utcoffset() == dt.timedelta(hours=1)


def test_constants_read_back(recording):
    path, _, _ = recording
    cam = flir.index_fff(path).camera
    assert cam.planck_r1 == pytest.approx(DEFAULT_PLANCK["R1"], rel=1e-6)
    assert cam.planck_r2 == pytest.approx(DEFAULT_PLANCK["R2"], rel=1e-6)
    assert cam.planck_b == pytest.approx(DEFAULT_PLANCK["B"])
    assert cam.planck_o == DEFAULT_PLANCK["O"]
    assert cam.emissivity == pytest.approx(0.95, abs=1e-6)
    assert cam.reflected_temperature == pytest.approx(21.0, abs=1e-4)
    assert cam.atmospheric_temperature == pytest.approx(23.0, abs=1e-4)
    assert cam.object_distance == pytest.approx(2.0)
    assert cam.relative_humidity == pytest.approx(0.4, abs=1e-6)


def test_same_input_same_bytes(recording, tmp_path):
    path, frames, times = recording
    again = write_flir_seq(tmp_path / "again.seq", frames, times, start_time=START, **CAMERA)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("bad, match", [
    (dict(start_time=START.replace(tzinfo=None)), "no time zone"),
    (dict(times=[0.0, 0.0004, 1.0, 2.0]), "frame 1 .* not after frame 0"),
    (dict(times=[0.0, 1.0]), "one time per frame"),
])
def test_bad_input_is_named(recording, tmp_path, bad, match):
    _, frames, times = recording
    kw = dict(times=times, start_time=START) | bad
    with pytest.raises(OptionError, match=match):
        write_flir_seq(tmp_path / "x.seq", frames, kw.pop("times"), **kw)
    assert not (tmp_path / "x.seq").exists()


def test_nan_and_out_of_range_pixels_name_the_frame(tmp_path):
    f = np.full((2, 8, 8), 30.0)
    f[1, 2, 3] = np.nan
    with pytest.raises(OptionError, match="frame 1: 1 non-finite"):
        write_flir_seq(tmp_path / "n.seq", f, [0, 1], start_time=START)
    f[1, 2, 3] = 900.0
    with pytest.raises(OptionError, match="frame 1: .*outside 0..65535"):
        write_flir_seq(tmp_path / "n.seq", f, [0, 1], start_time=START)
    assert not (tmp_path / "n.seq").exists()


@needs_exiftool
def test_exiftool_reads_constants_size_and_times(recording):
    path, frames, times = recording
    out = subprocess.run([EXIFTOOL, "-ee", "-G3", "-j", "-n", str(path)], check=True,
                         capture_output=True, text=True).stdout
    docs: dict[str, dict] = {}
    for key, val in json.loads(out)[0].items():
        if ":" in key:
            g, tag = key.split(":", 1)
            docs.setdefault(g, {})[tag] = val
    main = docs["Main"]
    assert main["FileType"] == "SEQ"
    assert main["RawThermalImageWidth"] == 40 and main["RawThermalImageHeight"] == 24
    for tag, key in (("PlanckR1", "R1"), ("PlanckR2", "R2"), ("PlanckB", "B"),
                     ("PlanckF", "F"), ("PlanckO", "O")):
        assert main[tag] == pytest.approx(DEFAULT_PLANCK[key], rel=1e-6), tag
    assert main["Emissivity"] == pytest.approx(0.95, abs=1e-6)
    # one document per frame (-ee), each with its own capture time
    stamps = [d["DateTimeOriginal"] for _, d in sorted(docs.items(), key=lambda kv: (
        kv[0] != "Main", kv[0])) if "DateTimeOriginal" in d]
    assert len(stamps) == len(times)
    got = [dt.datetime.strptime(s, "%Y:%m:%d %H:%M:%S.%f%z") for s in stamps]
    want = [START + dt.timedelta(milliseconds=float(np.round(t * 1000))) for t in times]
    assert got == want
