"""FLIR radiometric recordings: FFF frames, SEQ (concatenated FFF) and CSQ (JPEG-LS raw).

Layout (as documented by ExifTool's FLIR tag tables; this is an independent implementation):

- **FFF header** (64 bytes): ``b"FFF\\0"``, creator software (16 bytes), format version (uint32,
  100..199 in the file's byte order -- that is how the byte order is recognised), offset of the
  record directory (uint32, from the header start) and number of directory entries (uint32).
- **Record directory**: 32-byte entries ``type (u16), subtype (u16), version (u32), index (u32),
  offset (u32), length (u32), ...``. Type 1 is the raw thermal image, type 32 the camera info.
  Offsets count from the frame's own header, and the frame ends at the furthest record end; the
  next frame of a SEQ/CSQ starts right there.
- **Raw data record**: a 32-byte header (u16 byte-order mark 2, u16 width, u16 height) followed
  by the pixels: little/big-endian uint16 (SEQ), a JPEG-LS stream (CSQ; ``FF D8 FF F7``) or a PNG
  (radiometric JPEGs; FLIR stores those big-endian).
- **Camera info record**: float32 constants at fixed offsets (emissivity 0x20, object distance
  0x24, reflected/atmospheric/window temperature in K 0x28/0x2C/0x30, window transmission 0x34,
  relative humidity 0x3C, Planck R1 0x58, B 0x5C, F 0x60, atmospheric transmission alpha1/2,
  beta1/2, X at 0x70..0x80, Planck O (int32) 0x308, R2 0x30C), camera and lens strings, and the
  capture time at 0x384: uint32 Unix seconds (UTC), uint32 milliseconds (low 16 bits), int16
  time-zone offset in minutes (UTC - local).

Temperatures follow the standard FLIR radiometric chain (the one flyr and Thermimage use):
the raw signal is corrected for atmospheric transmission (from humidity, air temperature and
distance), the external IR window and the reflected radiation, then inverted with the Planck
constants -- see :func:`raw_to_celsius`.

Streaming: :func:`index_fff` walks the frame headers once (a few hundred bytes read per frame)
and caches the result per (path, size, mtime) in memory; :func:`read_fff` returns a lazy
dask-backed DataArray whose chunks seek to their frames and decode only those.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import os
import struct
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from irtrepro._logging import logger
from irtrepro.errors import FormatError, OptionError, ReaderError, check_option
from irtrepro.io.frames import (
    PLAUSIBLE_RANGE,
    DamagedFrameWarning,
    FrameError,
    check_frame_times,
    check_frames,
    frames_dataarray,
)
from irtrepro.io.registry import register

__all__ = [
    "CameraInfo",
    "FFFError",
    "FFFIndex",
    "index_fff",
    "raw_to_celsius",
    "read_fff",
    "read_raw_frame",
    "read_flir_jpeg_fff",
]

MAGIC = b"FFF\x00"
_HEADER = 64
_ENTRY = 32
REC_RAW = 1
REC_CAMERA = 32


class FFFError(FrameError, FormatError):
    """A FLIR FFF/SEQ/CSQ file or frame is damaged or not what it claims (names file + frame)."""


# --------------------------------------------------------------------------------------------
# camera info
# --------------------------------------------------------------------------------------------

@dataclass
class CameraInfo:
    """Radiometric constants of one FFF frame. Temperatures in degC, distance in m."""

    emissivity: float
    object_distance: float
    reflected_temperature: float
    atmospheric_temperature: float
    ir_window_temperature: float
    ir_window_transmission: float
    relative_humidity: float  # fraction 0..1
    planck_r1: float
    planck_r2: float
    planck_b: float
    planck_f: float
    planck_o: float
    atmospheric_trans_alpha1: float
    atmospheric_trans_alpha2: float
    atmospheric_trans_beta1: float
    atmospheric_trans_beta2: float
    atmospheric_trans_x: float
    camera_temperature_range_min: float = float("nan")
    camera_temperature_range_max: float = float("nan")
    raw_value_range_min: int = 0
    raw_value_range_max: int = 0
    camera_model: str = ""
    camera_serial_number: str = ""
    lens_model: str = ""
    field_of_view: float = float("nan")
    frame_rate: float = float("nan")
    extra: dict = field(default_factory=dict)

    def as_attrs(self) -> dict[str, Any]:
        """Flat attribute dict (names with units where not obvious)."""
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        for k in ("reflected_temperature", "atmospheric_temperature", "ir_window_temperature",
                  "camera_temperature_range_min", "camera_temperature_range_max"):
            out[f"{k}_degC"] = out.pop(k)
        out["object_distance_m"] = out.pop("object_distance")
        out["frame_rate_hz"] = out.pop("frame_rate")
        out["field_of_view_deg"] = out.pop("field_of_view")
        return out


def _cstr(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("latin-1").strip()


def parse_camera_info(rec: bytes, *, path="<bytes>", frame: int = 0) -> CameraInfo:
    """Parse a camera-info record (type 32) into :class:`CameraInfo`."""
    if len(rec) < 0x390:
        raise FFFError(f"{path}: frame {frame}: camera info record is {len(rec)} bytes; "
                       "expected at least 912", path, frame)
    bo = "<" if struct.unpack_from("<H", rec, 0)[0] == 2 else ">"

    def f(off: int) -> float:
        return float(struct.unpack_from(bo + "f", rec, off)[0])

    rh = f(0x3C)
    if rh > 2.0:  # some cameras store percent
        rh /= 100.0
    info = CameraInfo(
        emissivity=f(0x20), object_distance=f(0x24),
        reflected_temperature=f(0x28) - 273.15, atmospheric_temperature=f(0x2C) - 273.15,
        ir_window_temperature=f(0x30) - 273.15, ir_window_transmission=f(0x34),
        relative_humidity=rh,
        planck_r1=f(0x58), planck_b=f(0x5C), planck_f=f(0x60),
        atmospheric_trans_alpha1=f(0x70), atmospheric_trans_alpha2=f(0x74),
        atmospheric_trans_beta1=f(0x78), atmospheric_trans_beta2=f(0x7C),
        atmospheric_trans_x=f(0x80),
        camera_temperature_range_max=f(0x90) - 273.15,
        camera_temperature_range_min=f(0x94) - 273.15,
        camera_model=_cstr(rec[0xD4:0xF4]), camera_serial_number=_cstr(rec[0x104:0x114]),
        lens_model=_cstr(rec[0x170:0x190]), field_of_view=f(0x1B4),
        planck_o=float(struct.unpack_from(bo + "i", rec, 0x308)[0]), planck_r2=f(0x30C),
        raw_value_range_min=int(struct.unpack_from(bo + "H", rec, 0x310)[0]),
        raw_value_range_max=int(struct.unpack_from(bo + "H", rec, 0x312)[0]),
    )
    if len(rec) >= 0x466:
        info.frame_rate = float(struct.unpack_from(bo + "H", rec, 0x464)[0])
    bad = [k for k in ("planck_r1", "planck_r2", "planck_b", "emissivity")
           if not np.isfinite(getattr(info, k)) or getattr(info, k) <= 0]
    if bad:
        raise FFFError(f"{path}: frame {frame}: camera info has invalid {bad} "
                       f"({[getattr(info, k) for k in bad]}); record damaged?", path, frame)
    return info


def parse_timestamp(rec: bytes, off: int = 0x384) -> tuple[float, int]:
    """(UTC Unix time in s with ms, local offset east of UTC in minutes) of a camera record."""
    bo = "<" if struct.unpack_from("<H", rec, 0)[0] == 2 else ">"
    sec, ms, tz = struct.unpack_from(bo + "IIh", rec, off)
    return sec + (ms & 0xFFFF) / 1000.0, -int(tz)


# --------------------------------------------------------------------------------------------
# radiometric chain
# --------------------------------------------------------------------------------------------

def _planck_raw(t_c: float, c: CameraInfo) -> float:
    """Raw signal of a black body at ``t_c`` degC."""
    return c.planck_r1 / (c.planck_r2 * (np.exp(c.planck_b / (t_c + 273.15)) - c.planck_f)) \
        - c.planck_o


def raw_to_celsius(raw: np.ndarray, cam: CameraInfo, *, emissivity: float | None = None,
                   reflected_temperature: float | None = None,
                   object_distance: float | None = None,
                   atmospheric_temperature: float | None = None,
                   relative_humidity: float | None = None) -> np.ndarray:
    """Convert raw FLIR counts to object temperature in degC (float32).

    The radiometric chain: atmospheric transmission
    ``tau = X exp(-sqrt(d/2) (a1 + b1 sqrt(h2o))) + (1-X) exp(-sqrt(d/2) (a2 + b2 sqrt(h2o)))``
    for each half of the path (either side of the IR window), water content
    ``h2o = RH exp(1.5587 + 0.06939 T - 0.00027816 T^2 + 0.00000068455 T^3)`` (T air, degC);
    the raw signal of the object is the measured one divided by the transmissions and
    emissivity, minus the (attenuated) emissions of reflected surroundings, atmosphere and
    window; ``T = B / ln(R1 / (R2 (raw_obj + O)) + F)``.

    Parameters
    ----------
    raw : ndarray of counts
    cam : CameraInfo
        Constants from the file.
    emissivity, reflected_temperature (degC), object_distance (m), atmospheric_temperature
    (degC), relative_humidity (0..1) : float, optional
        Overrides of the file's values (e.g. from the manifest).
    """
    e = cam.emissivity if emissivity is None else float(emissivity)
    t_refl = cam.reflected_temperature if reflected_temperature is None else reflected_temperature
    d = cam.object_distance if object_distance is None else float(object_distance)
    t_atm = (cam.atmospheric_temperature if atmospheric_temperature is None
             else atmospheric_temperature)
    rh = cam.relative_humidity if relative_humidity is None else float(relative_humidity)
    if not 0 < e <= 1:
        raise OptionError(f"emissivity={e!r}; expected 0 < emissivity <= 1")
    if d < 0:
        raise OptionError(f"object_distance={d!r} m; expected >= 0")
    t_win = cam.ir_window_temperature
    irt = cam.ir_window_transmission if cam.ir_window_transmission > 0 else 1.0
    h2o = rh * np.exp(1.5587 + 0.06939 * t_atm - 0.00027816 * t_atm**2
                      + 0.00000068455 * t_atm**3)
    sq = np.sqrt(h2o)
    half = np.sqrt(d / 2.0)
    x = cam.atmospheric_trans_x
    tau = (x * np.exp(-half * (cam.atmospheric_trans_alpha1 + cam.atmospheric_trans_beta1 * sq))
           + (1 - x) * np.exp(-half * (cam.atmospheric_trans_alpha2
                                       + cam.atmospheric_trans_beta2 * sq)))
    tau1 = tau2 = tau  # the window sits halfway: both halves of the path are equal
    raw_refl = _planck_raw(t_refl, cam)
    raw_atm = _planck_raw(t_atm, cam)
    raw_win = _planck_raw(t_win, cam)
    # emission of the surroundings and media, as seen through what lies in front of them
    sub = ((1 - e) / e * raw_refl
           + (1 - tau1) / e / tau1 * raw_atm
           + (1 - irt) / e / tau1 / irt * raw_win
           + (1 - tau2) / e / tau1 / irt / tau2 * raw_atm)  # window reflection assumed 0
    raw_obj = np.asarray(raw, dtype=np.float64) / (e * tau1 * irt * tau2) - sub
    with np.errstate(invalid="ignore", divide="ignore"):
        t = cam.planck_b / np.log(cam.planck_r1 / (cam.planck_r2 * (raw_obj + cam.planck_o))
                                  + cam.planck_f) - 273.15
    return t.astype(np.float32)


# --------------------------------------------------------------------------------------------
# index
# --------------------------------------------------------------------------------------------

@dataclass
class FFFIndex:
    """Where every frame of an FFF/SEQ/CSQ file lies; built once by :func:`index_fff`.

    ``offsets[i]`` is the file offset of frame ``i``'s header; ``raw`` holds the absolute
    offset and length of its raw record; ``time_utc`` its capture time (Unix s, NaN if
    unreadable). ``damaged`` maps file frame numbers that could not be indexed (skipped) to the
    reason; ``undecodable`` those indexed -- header, constants and time stamp intact -- whose
    pixels are cut short or do not decode (read as NaN frames).
    """

    path: str
    byteorder: str  # of the raw pixels (the raw record's own byte-order mark)
    width: int
    height: int
    compression: str  # "raw", "jpegls" or "png"
    camera: CameraInfo
    tz_minutes: int
    offsets: np.ndarray
    raw_offsets: np.ndarray
    raw_lengths: np.ndarray
    time_utc: np.ndarray
    damaged: dict[int, str]
    creator: str = ""
    notes: dict[int, str] = field(default_factory=dict)
    undecodable: dict[int, str] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.offsets.size)

    @property
    def start_time(self) -> _dt.datetime | None:
        if self.n_frames == 0 or not np.isfinite(self.time_utc[0]):
            return None
        tz = _dt.timezone(_dt.timedelta(minutes=self.tz_minutes))
        return _dt.datetime.fromtimestamp(float(self.time_utc[0]), tz)


def _parse_header(hdr: bytes, pos: int, path, frame: int) -> tuple[str, int, int, str]:
    if len(hdr) < _HEADER:
        raise FFFError(f"{path}: frame {frame} at byte {pos}: truncated FFF header "
                       f"({len(hdr)} of {_HEADER} bytes)", path, frame)
    if hdr[:4] != MAGIC:
        raise FFFError(f"{path}: frame {frame} at byte {pos}: no FFF header (found "
                       f"{hdr[:4]!r}, expected {MAGIC!r})", path, frame)
    for bo in ("<", ">"):
        version, dir_off, n_entries = struct.unpack_from(bo + "III", hdr, 0x14)
        if 100 <= version < 200:
            break
    else:
        raise FFFError(f"{path}: frame {frame}: unknown FFF version in header at byte {pos}",
                       path, frame)
    if not (_HEADER <= dir_off < 1 << 20) or not (1 <= n_entries <= 1024):
        raise FFFError(f"{path}: frame {frame}: corrupt record directory (offset {dir_off}, "
                       f"{n_entries} entries)", path, frame)
    return bo, dir_off, n_entries, _cstr(hdr[4:20])


def _read_directory(fh, pos: int, size: int, path, frame: int, allow_short_raw: bool = False):
    fh.seek(pos)
    hdr = fh.read(_HEADER)
    bo, dir_off, n, creator = _parse_header(hdr, pos, path, frame)
    fh.seek(pos + dir_off)
    dir_bytes = fh.read(n * _ENTRY)
    if len(dir_bytes) < n * _ENTRY:
        raise FFFError(f"{path}: frame {frame}: truncated record directory", path, frame)
    recs = {}
    end = pos + dir_off + n * _ENTRY
    for i in range(n):
        rtype, sub, ver, idx, off, length = struct.unpack_from(bo + "HHIIII", dir_bytes,
                                                               i * _ENTRY)
        if rtype == 0:
            continue
        if off > (1 << 31) or length > (1 << 31):
            raise FFFError(f"{path}: frame {frame}: corrupt record directory (record type "
                           f"{rtype} at offset {off}, length {length})", path, frame)
        recs.setdefault(rtype, (pos + off, length, sub))
        end = max(end, pos + off + length)
    if REC_RAW not in recs or REC_CAMERA not in recs:
        raise FFFError(f"{path}: frame {frame}: record directory has no "
                       f"{'raw image' if REC_RAW not in recs else 'camera info'} record "
                       f"(record types {sorted(recs)})", path, frame)
    if end > size:
        raw_off, raw_len, _ = recs[REC_RAW]
        cam_off, cam_len, _ = recs[REC_CAMERA]
        # only the raw record cut short at the end of the file: the header, constants and time
        # stamp are intact, the caller decides about the pixels (a compressed stream may still
        # be whole; raw pixels are not). Anything else cut short is a truncated frame.
        if (cam_off + cam_len > size or raw_off + 64 > size or raw_off + raw_len <= size
                or not allow_short_raw):
            raise FFFError(f"{path}: frame {frame}: truncated: its records end at byte {end}, "
                           f"the file has {size} bytes", path, frame)
        recs[REC_RAW] = (raw_off, size - raw_off, recs[REC_RAW][2])
        return bo, recs, size, creator, end - size
    return bo, recs, end, creator, 0


def _jpegls_complete(fh, off: int, length: int) -> bool:
    """Whether a JPEG-LS stream ends with its end-of-image marker (zero padding allowed).

    ``FF D9`` cannot occur inside JPEG-LS scan data (a ``FF`` there is followed by a byte below
    0x80), so a stream cut short almost never ends with it; CharLS refuses streams without it.
    """
    n = min(length, 32)
    fh.seek(off + length - n)
    return fh.read(n).rstrip(b"\x00").endswith(b"\xff\xd9")


def _resync(fh, start: int, size: int) -> int | None:
    """File offset of the next plausible FFF header after ``start`` (None if none)."""
    block = 1 << 20
    pos = start
    while pos < size:
        fh.seek(pos)
        buf = fh.read(block + 3)
        k = buf.find(MAGIC, 1 if pos == start else 0)
        while k >= 0:
            fh.seek(pos + k)
            try:
                _parse_header(fh.read(_HEADER), pos + k, "", -1)
                return pos + k
            except FFFError:
                k = buf.find(MAGIC, k + 1)
        pos += block
    return None


_CACHE: dict[tuple, FFFIndex] = {}
_CACHE_LOCK = threading.Lock()


def index_fff(path: str | os.PathLike, *, on_damaged: str = "skip") -> FFFIndex:
    """Index the frames of a FLIR FFF/SEQ/CSQ file (cached per path, size and mtime).

    Parameters
    ----------
    path : path
    on_damaged : {"skip", "raise"}
        What to do with a frame whose header or record directory is corrupt, or a truncated
        last frame: skip it (listed in ``FFFIndex.damaged``) or raise :class:`FFFError`.
        The first frame must always be readable.
    """
    check_option("on_damaged", on_damaged, ("skip", "raise"))
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, on_damaged)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    size = st.st_size
    offsets, raw_off, raw_len, times = [], [], [], []
    damaged: dict[int, str] = {}
    notes: dict[int, str] = {}
    undecodable: dict[int, str] = {}
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head != MAGIC:
            raise FFFError(f"{path}: not a FLIR FFF/SEQ/CSQ recording (starts with {head!r}, "
                           f"expected {MAGIC!r})", path, 0)
        bo, recs, end, creator, _ = _read_directory(fh, 0, size, path, 0)
        cam_off, cam_len, _ = recs[REC_CAMERA]
        fh.seek(cam_off)
        cam_rec = fh.read(cam_len)
        camera = parse_camera_info(cam_rec, path=path, frame=0)
        _, tz = parse_timestamp(cam_rec) if cam_len >= 0x38E else (0.0, 0)
        fh.seek(recs[REC_RAW][0])
        rhdr = fh.read(34)
        rbo = "<" if struct.unpack_from("<H", rhdr, 0)[0] == 2 else ">"
        width, height = struct.unpack_from(rbo + "HH", rhdr, 2)
        sig = rhdr[32:34]
        compression = ("jpegls" if sig == b"\xff\xd8" else
                       "png" if rhdr[32:34] == b"\x89P" else "raw")
        pos, frame = 0, 0
        while pos < size:
            try:
                _, recs, end, _, short = _read_directory(fh, pos, size, path, frame,
                                                         allow_short_raw=True)
                roff, rlen, _ = recs[REC_RAW]
                coff, clen, _ = recs[REC_CAMERA]
                bad = None
                if compression == "raw" and rlen < 32 + 2 * width * height:
                    if not short:
                        raise FFFError(f"{path}: frame {frame}: raw record of {rlen} bytes, "
                                       f"expected {32 + 2 * width * height}", path, frame)
                    bad = (f"truncated: raw image cut short at the end of the file ({rlen - 32} "
                           f"of {2 * width * height} pixel bytes)")
                elif compression == "jpegls" and not _jpegls_complete(fh, roff + 32, rlen - 32):
                    bad = _try_decode(fh, roff + 32, rlen - 32, width, height, compression)
                    if bad is not None and short:
                        bad = (f"truncated: JPEG-LS stream cut short at the end of the file "
                               f"({short} bytes missing; {bad})")
                if bad is not None:
                    if on_damaged == "raise":
                        raise FFFError(f"{path}: frame {frame}: {bad}", path, frame)
                    undecodable[frame] = bad
                elif short:
                    notes[frame] = (f"raw record {short} bytes shorter than declared (end of "
                                    "file); decoded from the bytes present")
                t = float("nan")
                if clen >= 0x38E:
                    fh.seek(coff)
                    t = parse_timestamp(fh.read(0x38E))[0]
                offsets.append(pos)
                raw_off.append(roff + 32)
                raw_len.append(rlen - 32)
                times.append(t)
                pos = end
            except FFFError as exc:
                if on_damaged == "raise" or frame == 0:
                    raise
                nxt = _resync(fh, pos, size)
                damaged[frame] = str(exc).split(": ", 1)[-1]
                if nxt is None:
                    break
                pos = nxt
            frame += 1
    idx = FFFIndex(str(path), rbo, int(width), int(height), compression, camera, tz,
                   np.asarray(offsets, np.int64), np.asarray(raw_off, np.int64),
                   np.asarray(raw_len, np.int64), np.asarray(times, np.float64), damaged,
                   creator, notes, undecodable)
    with _CACHE_LOCK:
        _CACHE[key] = idx
    return idx


def _try_decode(fh, off: int, length: int, width: int, height: int,
                compression: str) -> str | None:
    """None if the raw record at ``off`` decodes to a (height, width) image, else the reason."""
    import imagecodecs

    fh.seek(off)
    buf = fh.read(length)
    try:
        img = (imagecodecs.jpegls_decode(buf) if compression == "jpegls"
               else imagecodecs.png_decode(buf))
    except Exception as exc:
        return f"{compression} raw image failed to decode ({type(exc).__name__}: {exc})"
    if img.shape != (height, width):
        return f"decoded image {img.shape}, header says {(height, width)}"
    return None


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------

def _decode_raw(buf: bytes, idx: FFFIndex, path, frame: int) -> np.ndarray:
    w, h = idx.width, idx.height
    if idx.compression == "raw":
        return np.frombuffer(buf, dtype=idx.byteorder + "u2", count=w * h).reshape(h, w)
    import imagecodecs

    try:
        if idx.compression == "jpegls":
            img = imagecodecs.jpegls_decode(buf)
        else:
            # FLIR writes the PNG's 16-bit samples in little-endian order; PNG is big-endian
            img = imagecodecs.png_decode(buf).byteswap()
    except Exception as exc:
        raise FFFError(f"{path}: frame {frame}: {idx.compression} raw image failed to decode "
                       f"({type(exc).__name__}: {exc})", path, frame) from exc
    if img.shape != (h, w):
        raise FFFError(f"{path}: frame {frame}: decoded image {img.shape}, header says "
                       f"{(h, w)}", path, frame)
    return img


def read_raw_frame(path: str | os.PathLike, frame: int = 0) -> np.ndarray:
    """Raw counts (uint16, (y, x)) of the ``frame``-th good frame of an FFF/SEQ/CSQ file."""
    idx = index_fff(path)
    if not 0 <= frame < idx.n_frames:
        raise OptionError(f"{path}: frame={frame}; the file has {idx.n_frames} readable frames")
    file_frame = int(_file_frame_numbers(idx)[frame])
    if file_frame in idx.undecodable:
        raise FFFError(f"{path}: frame {file_frame}: {idx.undecodable[file_frame]}", path,
                       file_frame)
    with open(path, "rb") as fh:
        fh.seek(int(idx.raw_offsets[frame]))
        buf = fh.read(int(idx.raw_lengths[frame]))
    return np.array(_decode_raw(buf, idx, str(path), file_frame), dtype=np.uint16)


def _read_block(path: str, idx: FFFIndex, frames: np.ndarray, overrides: dict,
                on_damaged: str, file_frames: np.ndarray | None = None) -> np.ndarray:
    """degC of the indexed frames ``frames``; ``file_frames`` their numbers in the file.

    Frames the index found undecodable are NaN (reported when the recording was opened); a
    frame failing to decode here is NaN too and reported by a :class:`DamagedFrameWarning`
    whose ``frames`` name it (or raises :class:`FFFError` with ``on_damaged="raise"``).
    """
    out = np.empty((len(frames), idx.height, idx.width), np.float32)
    numbers = frames if file_frames is None else file_frames
    bad: dict[int, str] = {}
    with open(path, "rb") as fh:
        for j, (i, k) in enumerate(zip(frames, numbers, strict=True)):
            if int(k) in idx.undecodable:
                out[j] = np.nan  # known since indexing, already reported
                continue
            fh.seek(int(idx.raw_offsets[i]))
            buf = fh.read(int(idx.raw_lengths[i]))
            try:
                raw = _decode_raw(buf, idx, path, int(k))
            except FFFError as exc:
                if on_damaged == "raise":
                    raise
                out[j] = np.nan  # flagged by NaN and a warning below
                bad[int(k)] = str(exc).split(f"frame {int(k)}: ", 1)[-1]
                continue
            out[j] = raw_to_celsius(raw, idx.camera, **overrides)
    if bad:
        warnings.warn(DamagedFrameWarning(
            f"{path}: frame(s) {sorted(bad)} could not be decoded; returned as NaN ("
            + "; ".join(f"frame {k}: {v}" for k, v in sorted(bad.items())) + ")",
            path, bad), stacklevel=2)
    return out


def read_fff(path: str | os.PathLike, *, fmt: str = "flir-seq", chunk_frames: int = 32,
             on_damaged: str = "skip", emissivity: float | None = None,
             reflected_temperature: float | None = None, object_distance: float | None = None,
             atmospheric_temperature: float | None = None,
             relative_humidity: float | None = None,
             plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE,
             check_time: bool = True) -> xr.DataArray:
    """Read a FLIR SEQ/CSQ/FFF recording as a lazy ``(frame, y, x)`` DataArray in degC.

    Parameters
    ----------
    path : path
    fmt : str
        Format name kept in ``attrs['format']``.
    chunk_frames : int
        Frames per dask chunk (each chunk seeks and decodes only its frames).
    on_damaged : {"skip", "raise"}
        Damaged frames (corrupt directory, truncated, undecodable) are skipped and reported
        (``attrs['damaged_frames']``, a :class:`DamagedFrameWarning`; a frame whose JPEG-LS
        data fail to decode only shows when computed: NaN + warning) or raise
        :class:`FFFError` naming file and frame.
    emissivity, reflected_temperature (degC), object_distance (m), atmospheric_temperature
    (degC), relative_humidity (0..1) : float, optional
        Overrides of the file's camera constants.
    plausible_range : (low, high) degC or None
        The first frame is checked eagerly (NaN allowed) to catch wrong constants early.
    check_time : bool
        Raise :class:`~irtrepro.io.frames.FrameTimeError` (naming file and frame) when a
        frame's time stamp is not after the previous frame's (see
        :func:`~irtrepro.io.frames.check_frame_times`). ``False`` reads such a file as it is,
        e.g. to select one of its recordings.

    Returns
    -------
    DataArray
        ``time(frame)`` in s from the frames' own time stamps (relative to the first),
        ``frame_index(frame)`` the frame numbers in the file, camera constants and
        ``start_time`` (ISO 8601 with UTC offset) in ``attrs``.
    """
    import dask
    import dask.array as dsa

    idx = index_fff(path, on_damaged=on_damaged)
    path = str(path)
    if idx.damaged:
        warnings.warn(DamagedFrameWarning(
            f"{path}: {len(idx.damaged)} damaged frame(s) skipped: {sorted(idx.damaged)} ("
            + "; ".join(f"frame {k}: {v}" for k, v in sorted(idx.damaged.items())) + ")",
            path), stacklevel=2)
    if idx.undecodable:
        warnings.warn(DamagedFrameWarning(
            f"{path}: {len(idx.undecodable)} damaged frame(s) returned as NaN: "
            f"{sorted(idx.undecodable)} ("
            + "; ".join(f"frame {k}: {v}" for k, v in sorted(idx.undecodable.items())) + ")",
            path), stacklevel=2)
    overrides = {k: v for k, v in (("emissivity", emissivity),
                                   ("reflected_temperature", reflected_temperature),
                                   ("object_distance", object_distance),
                                   ("atmospheric_temperature", atmospheric_temperature),
                                   ("relative_humidity", relative_humidity)) if v is not None}
    n = idx.n_frames
    file_frames = _file_frame_numbers(idx)
    blocks = []
    for s in range(0, n, chunk_frames):
        sel = np.arange(s, min(s + chunk_frames, n))
        blk = dask.delayed(_read_block, pure=True)(path, idx, sel, overrides, on_damaged,
                                                   file_frames[sel])
        blocks.append(dsa.from_delayed(blk, (len(sel), idx.height, idx.width), np.float32))
    data = dsa.concatenate(blocks, axis=0) if blocks else dsa.zeros((0, idx.height, idx.width))
    # ms resolution in the file; rounding removes float noise of large Unix times
    t = np.round(idx.time_utc - idx.time_utc[0], 6) if n else np.zeros(0)
    if n and not np.isfinite(t).all():
        fr = idx.camera.frame_rate
        if np.isfinite(fr) and fr > 0:  # no time stamps: fall back on the declared rate
            t = np.arange(n) / fr
    if check_time:
        check_frame_times(t, source=path, frame_index=file_frames)
    attrs = idx.camera.as_attrs()
    attrs.update({"width": idx.width, "height": idx.height, "compression": idx.compression,
                  "creator_software": idx.creator, "n_frames_in_file": n + len(idx.damaged),
                  **damaged_attrs(idx),
                  "overrides": ", ".join(f"{k}={v}" for k, v in overrides.items())})
    for k, v in overrides.items():
        key = {"reflected_temperature": "reflected_temperature_degC",
               "atmospheric_temperature": "atmospheric_temperature_degC",
               "object_distance": "object_distance_m"}.get(k, k)
        attrs[key] = v
    da = frames_dataarray(data, t, start_time=idx.start_time, source=path, fmt=fmt,
                          attrs=attrs)
    da = da.assign_coords(frame_index=("frame", file_frames))
    if n and plausible_range is not None:
        # decode frame 0 alone (not its whole dask chunk) to catch wrong constants early
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedFrameWarning)  # reported when computed
            first = _read_block(path, idx, np.array([0]), overrides, "skip", file_frames[:1])
        check_frames(first, plausible_range=plausible_range, allow_nan=True, source=path,
                     first_frame=int(file_frames[0]))
    logger.debug("%s: %d frames %dx%d (%s)", path, n, idx.width, idx.height, idx.compression)
    return da


def damaged_attrs(idx: FFFIndex) -> dict[str, list]:
    """``damaged_frames`` (file frame numbers) and ``damaged_reasons`` (same order) of an index.

    Each reason says what became of the frame: ``skipped`` (header, record directory or
    camera record unreadable: no time stamp to place it) or ``NaN`` (time stamp intact, pixels
    cut short or undecodable: the frame is kept, all NaN).
    """
    both = {k: f"skipped: {v}" for k, v in idx.damaged.items()}
    both.update({k: f"NaN: {v}" for k, v in idx.undecodable.items()})
    frames = sorted(both)
    return {"damaged_frames": frames, "damaged_reasons": [both[k] for k in frames]}


def _file_frame_numbers(idx: FFFIndex) -> np.ndarray:
    """Frame numbers in the file of the indexed (good) frames, skipping damaged ones."""
    total = idx.n_frames + len(idx.damaged)
    good = [i for i in range(total) if i not in idx.damaged]
    return np.asarray(good[: idx.n_frames], dtype=np.int64)


def _sniff_fff(head: bytes, path: Path, want: str) -> bool:
    if head[:4] != MAGIC or len(head) < _HEADER:
        return False
    try:
        bo, dir_off, n, _ = _parse_header(head[:_HEADER], 0, path, 0)
    except FFFError:
        return False
    for i in range(n):
        o = dir_off + i * _ENTRY
        if o + _ENTRY > len(head):
            break
        rtype, _, _, _, off, _ = struct.unpack_from(bo + "HHIIII", head, o)
        if rtype == REC_RAW and off + 34 <= len(head):
            jls = head[off + 32: off + 34] == b"\xff\xd8"
            return jls == (want == "flir-csq")
    return path.suffix.lower() == (".csq" if want == "flir-csq" else ".seq")


#: Keyword options of read_fff that the SEQ/CSQ readers pass on.
FFF_OPTIONS = tuple(name for name in inspect.signature(read_fff).parameters
                    if name not in ("path", "fmt"))


@register("thermal", "flir-seq", extensions=(".seq", ".fff"),
          sniff=lambda h, p: _sniff_fff(h, p, "flir-seq"), aliases=("flir_seq", "flir-fff"),
          options=FFF_OPTIONS)
def read_flir_seq(path: str | os.PathLike, **options) -> xr.DataArray:
    """FLIR SEQ recording (concatenated FFF frames, raw 16-bit), lazy; see read_fff."""
    return read_fff(path, fmt="flir-seq", **options)


@register("thermal", "flir-csq", extensions=(".csq",),
          sniff=lambda h, p: _sniff_fff(h, p, "flir-csq"), aliases=("flir_csq",),
          options=FFF_OPTIONS)
def read_flir_csq(path: str | os.PathLike, **options) -> xr.DataArray:
    """FLIR CSQ recording (FFF frames with JPEG-LS raw), lazy; see read_fff."""
    return read_fff(path, fmt="flir-csq", **options)


# --------------------------------------------------------------------------------------------
# FLIR JPEG through this module's own FFF parser (cross-check of flyr and of the SEQ path)
# --------------------------------------------------------------------------------------------

def extract_jpeg_fff(data: bytes, path="<bytes>") -> bytes:
    """The FFF block embedded in a FLIR JPEG's APP1 ``FLIR`` segments, reassembled."""
    if data[:2] != b"\xff\xd8":
        raise FormatError(f"{path}: not a JPEG")
    pos, parts = 2, {}
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: no more metadata segments
            break
        (seg_len,) = struct.unpack_from(">H", data, pos + 2)
        seg = data[pos + 4: pos + 2 + seg_len]
        if marker == 0xE1 and seg[:5] == b"FLIR\x00":
            parts[seg[6]] = seg[8:]
        pos += 2 + seg_len
    if not parts:
        raise FormatError(f"{path}: no FLIR radiometric data (no APP1 FLIR segments)")
    return b"".join(parts[k] for k in sorted(parts))


def read_flir_jpeg_fff(path: str | os.PathLike, **overrides) -> tuple[np.ndarray, CameraInfo]:
    """Raw-to-degC of a FLIR JPEG with this module's chain: (degC (y, x) float32, constants)."""
    fff = extract_jpeg_fff(Path(path).read_bytes(), path)
    import io
    import tempfile

    # reuse the file-based index on an in-memory copy written to a temp file (small)
    with tempfile.NamedTemporaryFile(suffix=".fff") as tmp:
        tmp.write(fff)
        tmp.flush()
        idx = index_fff(tmp.name)
        arr = _read_block(tmp.name, idx, np.array([0]), overrides, "raise")[0]
    del io
    return arr, idx.camera


def describe(path: str | os.PathLike) -> Mapping[str, Any]:
    """Summary for ``irtrepro thermal info``: frames, size, rate, time span, constants."""
    idx = index_fff(path)
    t = idx.time_utc - idx.time_utc[0]
    return {"frames": idx.n_frames, "width": idx.width, "height": idx.height,
            "compression": idx.compression, "start_time": idx.start_time,
            "time_span_s": float(t[-1]) if idx.n_frames else 0.0,
            **damaged_attrs(idx), **idx.camera.as_attrs()}


_ = ReaderError  # re-exported base for callers catching reader errors
