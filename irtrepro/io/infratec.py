"""InfraTec IRBIS ``.irb`` images and sequences (VarioCAM, ImageIR).

Layout (little-endian; as documented by the open-source Apache-2.0 reader
github.com/jonathanschilling/irb, this is an independent implementation):

- **File header** (64 bytes): ``b"\\xffIRB\\0"``, file type (8 bytes, e.g. ``VARIOCAM``,
  ``IRBACS``), sub-type (8 bytes), then int32 ``flag`` at byte 21, int32 ``block_offset`` at 25
  and int32 ``block_count`` at 29.
- **Block directory**: ``block_count`` entries of 32 bytes at ``block_offset``: int32 type
  (0 empty, 1 image, 2 preview, 3 text info, 4 header, 7 audio), int32 version, int32 frame
  index, int32 offset, int32 size, 3 x int32 reserved.
- **Image block**: 60-byte header (int16 bytes per pixel @0, int16 compression flag @2, int16
  width @4, int16 height @6, float32 emissivity @24, distance (m) @28, environment temperature
  (K) @32, path temperature (K) @40, centre wavelength @48), then a 256-entry float32 palette
  (K) @60, then a metadata area @1084 (calibration range min/max (K) @+92/+96, device @+142,
  optics serial @+186, optics @+202, optics resolution @+234, device serial @+450, time stamp
  as an OLE automation date (days since 1899-12-30, read as UTC as the reference decoder
  does) @+540, milliseconds @+548, optics text @+554), and the pixels @1728.
- **Pixels**: 2 bytes each, ``(fraction, index)``: ``T = pal[i] + (pal[i+1] - pal[i]) * f/256``
  in K. With the compression flag set, the ``width*height`` fraction bytes come first and the
  palette indices follow run-length encoded as ``(count, index)`` byte pairs (a count of 0
  counts as 1, like the reference decoder).

Each image block is one frame; a sequence lists several. Frames are read lazily, chunk by
chunk (seek + read of only those blocks).
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from irtrepro.errors import FormatError, OptionError
from irtrepro.io.frames import (
    PLAUSIBLE_RANGE,
    FrameError,
    check_frame_times,
    check_frames,
    frames_dataarray,
)
from irtrepro.io.registry import register

__all__ = ["IRBError", "IrbFrame", "IrbIndex", "index_irb", "read_irb"]

MAGIC = b"\xffIRB\x00"
BLOCK_TYPES = {0: "empty", 1: "image", 2: "preview", 3: "text_info", 4: "header", 7: "audio"}
_IMG_HEADER = 60
_PALETTE_AT = 60
_META_AT = 1084
_DATA_AT = 1728
_OLE_EPOCH = _dt.datetime(1899, 12, 30, tzinfo=_dt.UTC)


class IRBError(FrameError, FormatError):
    """An IRBIS file, block or frame is damaged or of an unsupported kind (names file + frame)."""


@dataclass
class IrbFrame:
    """Header fields of one image block. Temperatures in degC, distance in m."""

    offset: int
    size: int
    bytes_per_pixel: int
    compressed: int
    width: int
    height: int
    emissivity: float
    distance: float
    environment_temperature: float
    path_temperature: float
    center_wavelength: float
    calibration_range_min: float
    calibration_range_max: float
    device: str
    device_serial: str
    optics: str
    optics_serial: str
    optics_resolution: str
    optics_text: str
    timestamp: _dt.datetime | None

    def as_attrs(self) -> dict[str, Any]:
        return {
            "bytes_per_pixel": self.bytes_per_pixel, "compressed": self.compressed,
            "emissivity": self.emissivity, "object_distance_m": self.distance,
            "environment_temperature_degC": self.environment_temperature,
            "path_temperature_degC": self.path_temperature,
            "center_wavelength": self.center_wavelength,
            "calibration_range_min_degC": self.calibration_range_min,
            "calibration_range_max_degC": self.calibration_range_max,
            "device": self.device, "device_serial": self.device_serial, "optics": self.optics,
            "optics_serial": self.optics_serial, "optics_resolution": self.optics_resolution,
            "optics_text": self.optics_text,
        }


@dataclass
class IrbIndex:
    path: str
    file_type: str
    sub_type: str
    blocks: list[tuple[int, str, int, int]]  # (type, name, offset, size)
    frames: list[IrbFrame]


def _cstr(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("latin-1").strip()


def _parse_frame(head: bytes, offset: int, size: int, path, frame: int) -> IrbFrame:
    if len(head) < _DATA_AT:
        raise IRBError(f"{path}: frame {frame}: image block at byte {offset} truncated "
                       f"({len(head)} of {_DATA_AT} header bytes)", path, frame)
    bpp, comp, w, h = struct.unpack_from("<hhhh", head, 0)
    emis, dist, env = struct.unpack_from("<fff", head, 24)
    (path_t,) = struct.unpack_from("<f", head, 40)
    (wl,) = struct.unpack_from("<f", head, 48)
    m = _META_AT
    cmin, cmax = struct.unpack_from("<ff", head, m + 92)
    ole, ms = struct.unpack_from("<di", head, m + 540)
    if not (0 < w <= 10000 and 0 < h <= 10000) or bpp != 2:
        raise IRBError(f"{path}: frame {frame}: image block header at byte {offset} is corrupt "
                       f"or unsupported (width {w}, height {h}, bytes per pixel {bpp}; "
                       "expected 2)", path, frame)
    if comp not in (0, 1):
        raise IRBError(f"{path}: frame {frame}: unknown compression flag {comp}", path, frame)
    ts = None
    if np.isfinite(ole) and 1.0 < ole < 2958465.0:  # OLE dates of years 1900..9999
        ts = _OLE_EPOCH + _dt.timedelta(days=ole)
        # the double holds ms already in most files; the extra ms field refines when present
        ts = ts.replace(microsecond=(ts.microsecond // 1000) * 1000)
        if 0 < ms < 1000:
            ts = ts.replace(microsecond=ms * 1000)
    return IrbFrame(
        offset, size, bpp, comp, w, h, emis, dist, env - 273.15, path_t - 273.15, wl,
        cmin - 273.15, cmax - 273.15, _cstr(head[m + 142:m + 154]),
        _cstr(head[m + 450:m + 466]), _cstr(head[m + 202:m + 234]),
        _cstr(head[m + 186:m + 202]), _cstr(head[m + 234:m + 266]),
        _cstr(head[m + 554:m + 602]), ts)


def index_irb(path: str | os.PathLike) -> IrbIndex:
    """Parse the header and block directory of an IRBIS file and the header of every image.

    Raises
    ------
    IRBError
        Not an IRBIS file, a block directory outside the file, an unknown block type, a
        truncated image block (each naming file, block and frame).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        hdr = fh.read(64)
        if hdr[:5] != MAGIC:
            raise IRBError(f"{path}: not an InfraTec IRBIS file (starts with {hdr[:5]!r}, "
                           f"expected {MAGIC!r})", path, None)
        ftype, sub = _cstr(hdr[5:13]), _cstr(hdr[13:21])
        _flag, boff, bcount = struct.unpack_from("<iii", hdr, 21)
        if not (64 <= boff < size) or not (0 < bcount < 1_000_000) or \
                boff + 32 * bcount > size:
            raise IRBError(f"{path}: corrupt block directory (offset {boff}, {bcount} blocks, "
                           f"file {size} bytes)", path, None)
        fh.seek(boff)
        dir_bytes = fh.read(32 * bcount)
        blocks, frames = [], []
        for b in range(bcount):
            btype, _ver, _fidx, off, bsize = struct.unpack_from("<iiiii", dir_bytes, 32 * b)
            if btype not in BLOCK_TYPES:
                raise IRBError(f"{path}: block {b}: unknown IRBIS block type {btype} (known: "
                               f"{BLOCK_TYPES}); cannot tell where the frames are", path,
                               len(frames))
            name = BLOCK_TYPES[btype]
            if btype == 0:
                continue
            blocks.append((btype, name, off, bsize))
            if btype != 1:
                continue  # previews, text, audio: not thermal frames
            frame = len(frames)
            if off < 0 or bsize < _DATA_AT or off + bsize > size:
                raise IRBError(f"{path}: frame {frame} (block {b}): image block at byte {off}, "
                               f"{bsize} bytes, runs past the end of the file ({size} bytes) "
                               "or is too small: truncated", path, frame)
            fh.seek(off)
            f = _parse_frame(fh.read(_DATA_AT), off, bsize, path, frame)
            need = 2 * f.width * f.height if not f.compressed else f.width * f.height + 2
            if bsize - _DATA_AT < need:
                raise IRBError(f"{path}: frame {frame}: {bsize - _DATA_AT} pixel bytes, "
                               f"expected {need} for {f.width}x{f.height}: truncated", path,
                               frame)
            frames.append(f)
    if not frames:
        raise IRBError(f"{path}: IRBIS file has no image block (blocks: "
                       f"{[b[1] for b in blocks]})", path, None)
    shapes = {(f.height, f.width) for f in frames}
    if len(shapes) > 1:
        raise IRBError(f"{path}: frames of different sizes {sorted(shapes)}", path, None)
    return IrbIndex(str(path), ftype, sub, blocks, frames)


def decode_irb_pixels(buf: bytes, palette: np.ndarray, width: int, height: int,
                      compressed: bool, *, path="<bytes>", frame: int = 0) -> np.ndarray:
    """Pixel bytes of an image block -> temperature in K (float32, (height, width)).

    Float32 arithmetic like the reference decoder, so values agree to float rounding.
    """
    n = width * height
    pal = np.append(palette.astype(np.float32), np.float32(palette[-1]))  # index 255 + 1
    raw = np.frombuffer(buf, np.uint8)
    if not compressed:
        if raw.size < 2 * n:
            raise IRBError(f"{path}: frame {frame}: {raw.size} pixel bytes, expected {2 * n}",
                           path, frame)
        pairs = raw[: 2 * n].reshape(n, 2)
        frac, idx = pairs[:, 0], pairs[:, 1].astype(np.intp)
    else:
        frac = raw[:n]
        rle = raw[n:]
        rle = rle[: rle.size // 2 * 2].reshape(-1, 2)
        counts = np.maximum(rle[:, 0].astype(np.int64), 1)
        ends = np.cumsum(counts)
        k = int(np.searchsorted(ends, n))  # runs needed to cover n pixels
        if frac.size < n or k >= len(ends):
            raise IRBError(f"{path}: frame {frame}: run-length data end before pixel {n}",
                           path, frame)
        idx = np.repeat(rle[: k + 1, 1], counts[: k + 1])[:n].astype(np.intp)
    f = frac.astype(np.float32) / np.float32(256.0)
    t = pal[idx + 1] * f + pal[idx] * (np.float32(1.0) - f)
    return t.reshape(height, width)


def _read_frames(path: str, frames: list[IrbFrame]) -> np.ndarray:
    out = np.empty((len(frames), frames[0].height, frames[0].width), np.float32)
    with open(path, "rb") as fh:
        for j, f in enumerate(frames):
            fh.seek(f.offset + _PALETTE_AT)
            palette = np.frombuffer(fh.read(1024), "<f4")
            fh.seek(f.offset + _DATA_AT)
            buf = fh.read(f.size - _DATA_AT)
            k = decode_irb_pixels(buf, palette, f.width, f.height, bool(f.compressed),
                                  path=path, frame=j)
            out[j] = k - np.float32(273.15)
    return out


@register("thermal", "infratec-irb", extensions=(".irb",),
          sniff=lambda h, p: h[:5] == MAGIC, aliases=("irb", "infratec_irb"))
def read_irb(path: str | os.PathLike, *, chunk_frames: int = 32,
             plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE,
             check_time: bool = True) -> xr.DataArray:
    """InfraTec IRBIS .irb image or sequence as a lazy ``(frame, y, x)`` DataArray in degC.

    The temperatures are the camera's own (its palette/lookup table already applies
    emissivity, distance and environment), so no radiometric overrides are offered: changing
    them needs the raw detector signal, which .irb does not store. Frame times that go back or
    repeat raise :class:`~irtrepro.io.frames.FrameTimeError` unless ``check_time=False``.

    Returns
    -------
    DataArray
        ``time(frame)`` in s from the blocks' time stamps (relative to the first frame),
        ``start_time`` and header fields (emissivity, distance, environment/path temperature,
        calibration range, device, optics) of the first frame in ``attrs``.
    """
    import dask
    import dask.array as dsa

    if chunk_frames < 1:
        raise OptionError(f"chunk_frames={chunk_frames!r}; expected >= 1")
    idx = index_irb(path)
    path = str(path)
    frames = idx.frames
    n, h, w = len(frames), frames[0].height, frames[0].width
    blocks = []
    for s in range(0, n, chunk_frames):
        sel = frames[s:s + chunk_frames]
        d = dask.delayed(_read_frames, pure=True)(path, sel)
        blocks.append(dsa.from_delayed(d, (len(sel), h, w), np.float32))
    data = dsa.concatenate(blocks, axis=0)
    ts = [f.timestamp for f in frames]
    if all(t is not None for t in ts):
        t = np.array([(x - ts[0]).total_seconds() for x in ts])
    else:
        t = np.full(n, np.nan)
    if check_time:
        check_frame_times(t, source=path)
    attrs = frames[0].as_attrs()
    attrs.update({"file_type": idx.file_type, "file_sub_type": idx.sub_type,
                  "width": w, "height": h, "time_zone_note": "IRBIS OLE date read as UTC"})
    da = frames_dataarray(data, t, start_time=ts[0], source=path, fmt="infratec-irb",
                          attrs=attrs)
    if plausible_range is not None:
        check_frames(da.isel(frame=slice(0, 1)).values, plausible_range=plausible_range,
                     source=path)
    return da
