"""InfraTec IRBIS reader: reference values of an independent decoder, sequences, bad input."""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
import pytest

from irtrepro.errors import FormatError
from irtrepro.io import detect, infratec, read
from irtrepro.io.thermal import open_frames, quantisation_bound, write_frames

# README of ../shared/real-exports: min, max, mean, pixel (row 100, col 200), degC, from the
# Apache-2.0 Java reader github.com/jonathanschilling/irb
REFERENCE = {
    "infratec_AA011400.irb": (23.4352, 38.1682, 24.7765, 24.4935),
    "infratec_AA011401.irb": (23.6967, 88.0317, 24.7241, 24.5171),
    "infratec_image_1024x768.irb": (-42.93, 16.05, -36.5022, -41.28),
}
CET = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_values(real_exports, name):
    path = real_exports / name
    assert detect(path, "thermal") == "infratec-irb"
    da = read("thermal", path)
    v = da.values[0].astype(np.float64)
    lo, hi, mean, px = REFERENCE[name]
    # references are printed to 4 decimals (2 for the 1024x768 image): 1e-3 covers both
    assert v.min() == pytest.approx(lo, abs=1e-3)
    assert v.max() == pytest.approx(hi, abs=1e-3)
    assert v.mean() == pytest.approx(mean, abs=1e-3)
    assert v[100, 200] == pytest.approx(px, abs=1e-3)


def test_header_fields(real_exports):
    da = read("thermal", real_exports / "infratec_AA011400.irb")
    assert da.shape == (1, 480, 640)
    a = da.attrs
    assert a["emissivity"] == pytest.approx(1.0)
    assert a["object_distance_m"] == pytest.approx(0.805, abs=5e-4)
    assert a["environment_temperature_degC"] == pytest.approx(25.0, abs=1e-4)  # 298.15 K
    assert a["device"] == "VARIOCAM" and a["bytes_per_pixel"] == 2 and a["compressed"] == 0
    assert a["calibration_range_min_degC"] == pytest.approx(-40.15, abs=1e-3)
    assert dt.datetime.fromisoformat(a["start_time"]) == dt.datetime(2014, 1, 14, 18, 33, 45,
                                                                      tzinfo=CET)
    hd = read("thermal", real_exports / "infratec_image_1024x768.irb")
    assert hd.attrs["device"] == "VARIOCAM_HD" and hd.attrs["file_type"] == "IRBACS"


def test_round_trip(real_exports, tmp_path):
    da = read("thermal", real_exports / "infratec_image_1024x768.irb")
    back = open_frames(write_frames(tmp_path / "irb.zarr", da))
    assert np.abs(back.values - da.values).max() <= quantisation_bound()
    np.testing.assert_array_equal(back["time"].values, da["time"].values)


def _sequence(real_exports, tmp_path, n=3):
    """An n-frame IRBIS sequence: the two VarioCAM shots' image blocks, listed in one directory."""
    a = (real_exports / "infratec_AA011400.irb").read_bytes()
    b = (real_exports / "infratec_AA011401.irb").read_bytes()
    off, size = struct.unpack_from("<ii", a, 64 + 12)
    imgs = [a[off:off + size], b[off:off + size], a[off:off + size]][:n]
    head = bytearray(a[:64])
    struct.pack_into("<ii", head, 25, 64, n)
    data_at = 64 + 32 * n
    directory = b""
    for i in range(len(imgs)):
        directory += struct.pack("<iiiii12x", 1, 101, i + 1, data_at + i * size, size)
    path = tmp_path / "seq.irb"
    path.write_bytes(bytes(head) + directory + b"".join(imgs))
    return path


def test_sequence_times_and_frames(real_exports, tmp_path):
    from irtrepro.io.thermal import FrameTimeError

    path = _sequence(real_exports, tmp_path)
    # the third shot is the first again: its time stamp goes back, two recordings in one file
    with pytest.raises(FrameTimeError, match=r"seq\.irb: frame 2: time goes backwards"):
        read("thermal", path)
    da = read("thermal", path, chunk_frames=2, check_time=False)
    assert da.shape == (3, 480, 640) and da.chunks[0] == (2, 1)
    single = read("thermal", real_exports / "infratec_AA011401.irb").values[0]
    np.testing.assert_array_equal(da.values[1], single)
    # the second shot was taken 5 min 36 s after the first; the third is the first again
    np.testing.assert_allclose(da["time"].values, [0.0, 336.0, 0.0], atol=1e-3)


def test_compressed_block_decodes_like_uncompressed():
    rng = np.random.default_rng(0)
    pal = np.sort(rng.uniform(250, 350, 256)).astype("<f4")
    w, h = 7, 5
    frac = rng.integers(0, 256, w * h).astype(np.uint8)
    idx = np.repeat(rng.integers(0, 255, 6), [10, 1, 0, 3, 300, 5])[: w * h].astype(np.uint8)
    plain = np.column_stack([frac, idx]).ravel().tobytes()
    runs, i = [], 0
    while i < idx.size:  # run-length encode with runs of at most 4
        j = i
        while j < idx.size and idx[j] == idx[i] and j - i < 4:
            j += 1
        runs += [j - i, idx[i]]
        i = j
    comp = frac.tobytes() + bytes(runs)
    a = infratec.decode_irb_pixels(plain, pal, w, h, False)
    b = infratec.decode_irb_pixels(comp, pal, w, h, True)
    np.testing.assert_array_equal(a, b)
    k = idx.astype(int)
    np.testing.assert_allclose(a.ravel(), pal[k] + (pal[k + 1] - pal[k]) * frac / 256, rtol=1e-6)
    with pytest.raises(infratec.IRBError, match="run-length data end"):
        infratec.decode_irb_pixels(comp[:-4], pal, w, h, True)


def test_unknown_block_type(real_exports, tmp_path):
    data = bytearray((real_exports / "infratec_AA011400.irb").read_bytes())
    struct.pack_into("<i", data, 64 + 32, 42)  # second directory entry
    bad = tmp_path / "unknown.irb"
    bad.write_bytes(bytes(data))
    with pytest.raises(infratec.IRBError, match=r"unknown\.irb: block 1: unknown IRBIS block "
                                                r"type 42"):
        read("thermal", bad)


def test_truncated_image_block(real_exports, tmp_path):
    bad = tmp_path / "cut.irb"
    data = (real_exports / "infratec_AA011400.irb").read_bytes()
    off, size = struct.unpack_from("<ii", data, 64 + 12)
    bad.write_bytes(data[: off + size - 5000])
    with pytest.raises(infratec.IRBError, match=r"cut\.irb: frame 0 .*truncated"):
        read("thermal", bad)


def test_corrupt_header_and_not_irb(real_exports, tmp_path):
    data = bytearray((real_exports / "infratec_AA011400.irb").read_bytes())
    struct.pack_into("<i", data, 29, 10**7)  # absurd block count
    bad = tmp_path / "hdr.irb"
    bad.write_bytes(bytes(data))
    with pytest.raises(infratec.IRBError, match="corrupt block directory"):
        read("thermal", bad)
    junk = tmp_path / "junk.irb"
    junk.write_bytes(b"\x00" * 200)
    with pytest.raises(FormatError, match="not an InfraTec IRBIS file"):
        read("thermal", junk, fmt="infratec-irb")
