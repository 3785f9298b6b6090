"""FLIR FFF/SEQ/CSQ reader: against ExifTool and flyr, round trip, damaged files."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest

from irtrepro.errors import FormatError, IrtreproError
from irtrepro.io import detect, flir, read
from irtrepro.io.thermal import DamagedFrameWarning, open_frames, quantisation_bound, write_frames

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed "
                                    "(Debian libimage-exiftool-perl)")


@pytest.fixture(scope="module")
def seq(real_exports):
    return real_exports / "flir_SampleSEQ.seq"


@pytest.fixture(scope="module")
def csq(real_exports):
    return real_exports / "flir_SampleCSQ.csq"


def _exiftool_docs(path) -> dict[str, dict]:
    """{"Main": {...}, "Doc1": {...}} from ``exiftool -ee -G3 -j -n``."""
    out = subprocess.run([EXIFTOOL, "-ee", "-G3", "-j", "-n", str(path)], check=True,
                         capture_output=True, text=True).stdout
    docs: dict[str, dict] = {}
    for key, val in json.loads(out)[0].items():
        if ":" in key:
            g, tag = key.split(":", 1)
            docs.setdefault(g, {})[tag] = val
    return docs


def _exif_time(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y:%m:%d %H:%M:%S.%f%z")


CONSTANTS = {  # our attr -> ExifTool tag
    "planck_r1": "PlanckR1", "planck_r2": "PlanckR2", "planck_b": "PlanckB",
    "planck_f": "PlanckF", "planck_o": "PlanckO", "emissivity": "Emissivity",
    "object_distance_m": "ObjectDistance",
    "reflected_temperature_degC": "ReflectedApparentTemperature",
    "atmospheric_temperature_degC": "AtmosphericTemperature",
    "ir_window_temperature_degC": "IRWindowTemperature",
    "ir_window_transmission": "IRWindowTransmission", "relative_humidity": "RelativeHumidity",
    "atmospheric_trans_alpha1": "AtmosphericTransAlpha1",
    "atmospheric_trans_alpha2": "AtmosphericTransAlpha2",
    "atmospheric_trans_beta1": "AtmosphericTransBeta1",
    "atmospheric_trans_beta2": "AtmosphericTransBeta2",
    "atmospheric_trans_x": "AtmosphericTransX", "frame_rate_hz": "FrameRate",
}


def test_seq_readme_values(seq):
    assert detect(seq, "thermal") == "flir-seq"
    da = read("thermal", seq)
    assert da.shape == (2, 480, 640)
    assert da.attrs["planck_r1"] == pytest.approx(21106.77, abs=0.01)
    assert da.attrs["planck_b"] == 1501 and da.attrs["planck_f"] == 1
    assert da.attrs["planck_o"] == -7340
    assert da.attrs["planck_r2"] == pytest.approx(0.012545258, rel=1e-7)
    assert da.attrs["emissivity"] == pytest.approx(0.95)
    assert da.attrs["start_time"] == "2012-06-13T14:52:08.699000-05:00"
    assert da.chunks is not None  # lazy


@needs_exiftool
def test_seq_against_exiftool(seq):
    docs = _exiftool_docs(seq)
    docs_sorted = sorted((g for g in docs if g == "Main" or g.startswith("Doc")),
                         key=lambda g: -1 if g == "Main" else int(g[3:]))
    frames = [docs[g] for g in docs_sorted]
    da = read("thermal", seq)
    assert da.sizes["frame"] == len(frames) == 2
    assert (da.sizes["x"], da.sizes["y"]) == (docs["Main"]["RawThermalImageWidth"],
                                             docs["Main"]["RawThermalImageHeight"])
    for ours, tag in CONSTANTS.items():
        # ExifTool's JSON quotes some small floats as strings
        assert da.attrs[ours] == pytest.approx(float(docs["Main"][tag]), rel=1e-6, abs=1e-5), ours
    times = [_exif_time(d["DateTimeOriginal"]) for d in frames]
    assert dt.datetime.fromisoformat(da.attrs["start_time"]) == times[0]
    expected = [(t - times[0]).total_seconds() for t in times]
    np.testing.assert_allclose(da["time"].values, expected, atol=1e-6)


@needs_exiftool
def test_csq_against_exiftool(csq):
    main = _exiftool_docs(csq)["Main"]
    assert detect(csq, "thermal") == "flir-csq"
    da = read("thermal", csq)
    assert da.sizes["frame"] == 8  # README; ExifTool reads only the first CSQ frame
    assert (da.sizes["x"], da.sizes["y"]) == (main["RawThermalImageWidth"],
                                             main["RawThermalImageHeight"]) == (1024, 768)
    for ours, tag in CONSTANTS.items():
        assert da.attrs[ours] == pytest.approx(float(main[tag]), rel=1e-6, abs=1e-5), ours
    assert dt.datetime.fromisoformat(da.attrs["start_time"]) == _exif_time(
        main["DateTimeOriginal"])
    # 30 Hz recording: the frames' own stamps are 33-34 ms apart
    np.testing.assert_allclose(np.diff(da["time"].values), 1 / 30, atol=1.5e-3)


def test_csq_values(csq):
    da = read("thermal", csq)
    v = da.values
    assert not np.isnan(v).any()
    assert 10 < v.min() < v.mean() < v.max() < 45  # an indoor scene in degC
    assert da.attrs["compression"] == "jpegls"
    # the last record is declared 4 bytes longer than the file: decoded, and noted
    assert 7 in flir.index_fff(csq).notes


def test_radiometric_chain_matches_flyr_on_jpeg(real_exports):
    import flyr

    path = real_exports / "flir_IR_2412.jpg"
    ours, cam = flir.read_flir_jpeg_fff(path)
    ref = flyr.unpack(str(path)).celsius
    assert np.abs(ours - ref).max() < 1e-4
    ours_e, _ = flir.read_flir_jpeg_fff(path, emissivity=0.8, reflected_temperature=30.0,
                                        object_distance=5.0)
    ref_e = flyr.unpack(str(path)).adjust_metadata(
        emissivity=0.8, reflected_apparent_temperature=303.15, object_distance=5.0).celsius
    assert np.abs(ours_e - ref_e).max() < 1e-4
    assert np.abs(ours_e - ours).max() > 1.0  # the overrides really act


def test_seq_frames_match_jpeg_path_on_equal_constants(seq):
    """SEQ raw frames converted by flyr's JPEG code with the SEQ's own constants."""
    from flyr.thermogram import FlyrThermogram

    da = read("thermal", seq)
    a = da.attrs
    md = {"emissivity": a["emissivity"], "object_distance": a["object_distance_m"],
          "atmospheric_temperature": a["atmospheric_temperature_degC"] + 273.15,
          "ir_window_temperature": a["ir_window_temperature_degC"] + 273.15,
          "ir_window_transmission": a["ir_window_transmission"],
          "reflected_apparent_temperature": a["reflected_temperature_degC"] + 273.15,
          "relative_humidity": a["relative_humidity"]}
    for k in ("planck_r1", "planck_r2", "planck_b", "planck_f", "planck_o",
              "atmospheric_trans_alpha1", "atmospheric_trans_alpha2",
              "atmospheric_trans_beta1", "atmospheric_trans_beta2", "atmospheric_trans_x"):
        md[k] = a[k]
    for i in range(2):
        raw = flir.read_raw_frame(seq, i)
        ref = FlyrThermogram(raw.astype(np.int64), md).celsius
        assert np.abs(da.values[i] - ref).max() < 1e-4


def test_overrides_change_temperatures(seq):
    base = read("thermal", seq).values[0]
    hot = read("thermal", seq, emissivity=0.8).values[0]
    warm_refl = read("thermal", seq, reflected_temperature=30.0).values[0]
    m = base > 25  # surfaces warmer than the 20 degC surroundings
    assert np.mean(hot[m] - base[m]) > 0.2  # lower emissivity -> higher object temperature
    assert np.mean(warm_refl[m] - base[m]) < -0.1  # warmer surroundings -> lower reading


def test_round_trip_to_zarr(seq, tmp_path):
    da = read("thermal", seq)
    path = write_frames(tmp_path / "seq.zarr", da, chunk_frames=1)
    back = open_frames(path)
    assert np.abs(back.values - da.values).max() <= quantisation_bound()
    np.testing.assert_array_equal(back["time"].values, da["time"].values)
    assert back.attrs["start_time"] == da.attrs["start_time"]
    assert back.attrs["planck_r1"] == da.attrs["planck_r1"]


def test_index_is_cached(seq):
    assert flir.index_fff(seq) is flir.index_fff(seq)


# --- damaged copies --------------------------------------------------------------------------

def _frames_bytes(path):
    data = path.read_bytes()
    idx = flir.index_fff(path)
    ends = list(idx.offsets[1:]) + [len(data)]
    return [data[s:e] for s, e in zip(idx.offsets, ends, strict=True)]


def test_truncated_last_frame(seq, tmp_path):
    # cut inside the raw pixels of the last frame: its header and time stamp are intact, so
    # the frame is kept, all NaN, and listed
    bad = tmp_path / "trunc.seq"
    bad.write_bytes(seq.read_bytes()[:-1000])
    with pytest.raises(flir.FFFError, match=r"trunc\.seq: frame 1: truncated: raw image cut"):
        read("thermal", bad, on_damaged="raise")
    with pytest.warns(DamagedFrameWarning, match=r"damaged frame\(s\) returned as NaN: \[1\]"):
        da = read("thermal", bad)
    assert da.sizes["frame"] == 2 and da.attrs["damaged_frames"] == [1]
    assert da.attrs["damaged_reasons"] == [
        "NaN: truncated: raw image cut short at the end of the file (613400 of 614400 pixel "
        "bytes)"]
    v = da.values
    assert np.isnan(v[1]).all()
    np.testing.assert_array_equal(v[0], read("thermal", seq).values[0])
    np.testing.assert_array_equal(da["time"].values, read("thermal", seq)["time"].values)
    # cut inside the last frame's header: no time stamp, skipped
    f0, _ = _frames_bytes(seq)
    head = tmp_path / "head.seq"
    head.write_bytes(seq.read_bytes()[:len(f0) + 40])
    with pytest.warns(DamagedFrameWarning, match=r"damaged frame\(s\) skipped: \[1\]"):
        da = read("thermal", head)
    assert da.sizes["frame"] == 1 and da.attrs["damaged_frames"] == [1]
    assert da.attrs["damaged_reasons"][0].startswith("skipped: ")
    assert "truncated FFF header (40 of 64 bytes)" in da.attrs["damaged_reasons"][0]


def test_corrupt_record_directory_inside_recording(seq, tmp_path):
    f0, f1 = _frames_bytes(seq)
    broken = bytearray(f1)
    struct.pack_into("<I", broken, 0x1C, 0)  # zero directory entries
    bad = tmp_path / "dir.seq"
    bad.write_bytes(f0 + bytes(broken) + f1 + f0)
    with pytest.raises(flir.FFFError, match=r"dir\.seq: frame 1: corrupt record directory"):
        read("thermal", bad, on_damaged="raise")
    with pytest.warns(DamagedFrameWarning, match=r"\[1\]"):
        da = read("thermal", bad, check_time=False)  # frame 3 repeats frame 0's time stamp
    assert da.sizes["frame"] == 3
    np.testing.assert_array_equal(da["frame_index"].values, [0, 2, 3])
    good = read("thermal", seq).values
    np.testing.assert_array_equal(da.values[1], good[1])
    np.testing.assert_array_equal(da.values[2], good[0])
    # a corrupt first frame cannot be skipped: nothing to take the constants from
    first = tmp_path / "first.seq"
    first.write_bytes(bytes(broken) + f0)
    with pytest.raises(flir.FFFError, match="frame 0: corrupt record directory"):
        read("thermal", first, fmt="flir-seq")


def test_jpegls_decode_failure(csq, tmp_path):
    data = bytearray(csq.read_bytes())
    idx = flir.index_fff(csq)
    start = int(idx.raw_offsets[3])
    data[start:start + 64] = b"\x00" * 64  # wipe SOI/SOF of frame 3's JPEG-LS stream
    bad = tmp_path / "jls.csq"
    bad.write_bytes(bytes(data))
    da = read("thermal", bad, on_damaged="raise")
    with pytest.raises(flir.FFFError, match=r"jls\.csq: frame 3: jpegls raw image failed"):
        _ = da.values
    lazy = read("thermal", bad)
    with pytest.warns(DamagedFrameWarning, match=r"frame\(s\) \[3\]"):
        v = lazy.values
    assert np.isnan(v[3]).all() and not np.isnan(np.delete(v, 3, axis=0)).any()
    # only found when decoded (the stream still ends with its EOI marker): the frame store
    # written from it lists the frame found while writing
    assert lazy.attrs["damaged_frames"] == []
    with pytest.warns(DamagedFrameWarning, match=r"frame\(s\) \[3\]"):
        write_frames(tmp_path / "jls.zarr", lazy, chunk_frames=4)
    back = open_frames(tmp_path / "jls.zarr")
    assert back.attrs["damaged_frames"] == [3]
    assert back.attrs["damaged_reasons"][0].startswith("NaN: jpegls raw image failed to decode")
    assert np.isnan(back.values[3]).all()


def _csq_cut(csq, tmp_path, where):
    """The real CSQ cut inside its 5th frame (frame 4) at a named place."""
    idx = flir.index_fff(csq)
    f4, raw4, len4 = (int(idx.offsets[4]), int(idx.raw_offsets[4]), int(idx.raw_lengths[4]))
    cut = {"mid-header": f4 + 30,  # inside the 64-byte FFF header
           "mid-camera-record": f4 + 1000,  # camera info (time stamp) at +256..+2732
           "raw-record-header": raw4 - 32 + 40,  # the raw record's own header
           "mid-payload": raw4 + len4 // 2,  # half the JPEG-LS stream
           "before-eoi": raw4 + len4 - 4}[where]  # all but the end-of-image marker + padding
    out = tmp_path / f"cut_{where}.csq"
    out.write_bytes(csq.read_bytes()[:cut])
    return out


@pytest.mark.parametrize("where, kept", [
    ("mid-header", False), ("mid-camera-record", False), ("raw-record-header", False),
    ("mid-payload", True), ("before-eoi", True),
])
def test_csq_truncated_inside_a_frame(csq, tmp_path, where, kept):
    """Cut inside frame 4: listed in damaged_frames by the reader, `info` and the store."""
    from irtrepro.cli import main

    bad = _csq_cut(csq, tmp_path, where)
    with pytest.raises(flir.FFFError, match=rf"cut_{where}\.csq: frame 4[: ].*truncated"):
        read("thermal", bad, on_damaged="raise")
    with pytest.warns(DamagedFrameWarning, match=r"\[4\]"):
        da = read("thermal", bad)
    assert da.attrs["damaged_frames"] == [4]
    reason = da.attrs["damaged_reasons"][0]
    good = read("thermal", csq)
    if kept:  # header and time stamp intact: a NaN frame at its own time
        assert da.sizes["frame"] == 5 and reason.startswith("NaN: truncated: JPEG-LS stream")
        np.testing.assert_array_equal(da["time"].values, good["time"].values[:5])
    else:  # no time stamp: skipped
        assert da.sizes["frame"] == 4 and reason.startswith("skipped: ")
    v = da.values
    np.testing.assert_array_equal(v[:4], good.values[:4])
    assert not kept or np.isnan(v[4]).all()

    with pytest.warns(DamagedFrameWarning):
        assert main(["-q", "thermal", "info", str(bad), "--json"]) == 0
    with pytest.warns(DamagedFrameWarning):
        assert main(["-q", "thermal", "convert", str(bad), str(tmp_path / "c.zarr")]) == 0
    store = open_frames(tmp_path / "c.zarr")
    assert store.attrs["damaged_frames"] == [4] and store.attrs["damaged_reasons"] == [reason]
    assert store.sizes["frame"] == da.sizes["frame"]
    if kept:
        assert np.isnan(store.values[4]).all()  # NaN in the store (fill value), never zeros
    assert not np.isnan(store.values[:4]).any()


def test_csq_truncated_info_json(csq, tmp_path, capsys):
    from irtrepro.cli import main

    bad = _csq_cut(csq, tmp_path, "mid-payload")
    capsys.readouterr()
    with pytest.warns(DamagedFrameWarning):
        main(["-q", "thermal", "info", str(bad), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 5 and info["damaged_frames"] == [4]
    assert "61400 bytes missing" in info["damaged_reasons"][0]
    with pytest.warns(DamagedFrameWarning):  # the plain listing says the same
        main(["-q", "thermal", "info", str(bad)])
    text = capsys.readouterr().out
    assert re.search(r"(?m)^frames +5$", text) and re.search(r"(?m)^damaged_frames +\[4\]$", text)


def test_not_a_thermal_file(tmp_path):
    txt = tmp_path / "notes.seq"
    txt.write_text("time,hr\n0,60\n")
    with pytest.raises(FormatError, match="not a FLIR"):
        read("thermal", txt, fmt="flir-seq")
    with pytest.raises(IrtreproError):
        read("thermal", txt)


# --- frame times that go back or repeat ------------------------------------------------------

def test_seq_concatenated_with_itself_is_refused(seq, tmp_path):
    from irtrepro.io.thermal import FrameTimeError

    cat = tmp_path / "cat.seq"
    cat.write_bytes(seq.read_bytes() * 2)  # the 2-frame recording, then the same bytes again
    with pytest.raises(FrameTimeError, match=r"cat\.seq: frame 2: time goes backwards "
                                             r"\(3\.967 s at frame 1, then 0\.000 s\).*"
                                             r"at frames \[2\].*2 recordings") as exc:
        read("thermal", cat)
    assert exc.value.frame == 2 and exc.value.path == str(cat)
    da = read("thermal", cat, check_time=False)  # as it is, to select a recording
    np.testing.assert_allclose(da["time"].values, [0.0, 3.967, 0.0, 3.967])
    np.testing.assert_array_equal(da.isel(frame=slice(2, 4)).values, read("thermal", seq).values)
    # read as it is, it still cannot become one store; one selected recording can
    with pytest.raises(FrameTimeError, match=r"cat\.seq: frame 2: time goes backwards.*"
                                             r"nothing written"):
        write_frames(tmp_path / "cat.zarr", da)
    assert not (tmp_path / "cat.zarr").exists()
    one = open_frames(write_frames(tmp_path / "one.zarr", da.isel(frame=slice(2, 4))))
    np.testing.assert_allclose(one["time"].values, [0.0, 3.967])


def test_duplicated_frame_time_repeats(seq, tmp_path):
    from irtrepro.io.thermal import FrameTimeError

    f0, f1 = _frames_bytes(seq)
    dup = tmp_path / "dup.seq"
    dup.write_bytes(f0 + f1 + f1)
    with pytest.raises(FrameTimeError, match=r"dup\.seq: frame 2: time repeats \(3\.967 s at "
                                             r"frame 1, then 3\.967 s\)"):
        read("thermal", dup)


def test_info_shows_the_segments_and_convert_refuses(seq, tmp_path, capsys):
    from irtrepro.cli import main

    cat = tmp_path / "cat5.seq"
    cat.write_bytes(seq.read_bytes() * 5)
    capsys.readouterr()
    assert main(["-q", "thermal", "info", str(cat), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 10 and info["time_span_s"] is None
    assert "frame 2: time goes backwards" in info["time_error"]
    assert [(s["first_frame"], s["last_frame"]) for s in info["time_segments"]] == [
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert all(s["time_span_s"] == pytest.approx(3.967) for s in info["time_segments"])
    assert main(["-q", "thermal", "info", str(cat)]) == 0
    assert "frames 8..9 (2), 3.967 s" in capsys.readouterr().out
    assert main(["-q", "thermal", "convert", str(cat), str(tmp_path / "cat.zarr")]) == 2
    assert "frame 2: time goes backwards" in capsys.readouterr().err
    assert not (tmp_path / "cat.zarr").exists()
    # an ordinary recording is one segment with its span
    assert main(["-q", "thermal", "info", str(seq), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["time_span_s"] == pytest.approx(3.967) and "time_segments" not in info
