"""FLIR radiometric sequences (SEQ: concatenated FFF frames, raw 16-bit), as the generator
writes them.

Read back by :func:`irtrepro.io.flir.read_flir_seq` (and by ExifTool, ``exiftool -ee``). The
layout is the one :mod:`irtrepro.io.flir` documents, written little-endian throughout as
ResearchIR writes its SEQ files:

- per frame a 64-byte FFF header (``FFF\\0``, creator software, version 100, directory at
  byte 64 with 2 entries), the record directory (camera info, type 32; raw image, type 1,
  subtype 2 = little-endian counts), the camera info record (2428 bytes) and the raw record
  (32-byte header with width and height, then ``uint16`` counts row by row);
- the camera info record holds emissivity, distance, reflected / atmospheric / window
  temperatures (K), humidity, the Planck constants R1, R2, B, F, O, the atmospheric
  transmission constants, and the frame's capture time (Unix seconds, milliseconds, time-zone
  offset in minutes) -- so every frame carries its own absolute time stamp, to 1 ms.

The counts come from the inverse of the radiometric chain of
:func:`irtrepro.io.flir.raw_to_celsius`: the black-body signal of the object temperature
``R1 / (R2 (exp(B / T) - F)) - O`` is attenuated by emissivity and atmosphere, and the
emissions of the reflected surroundings and the atmosphere are added, then rounded to the
nearest count. Reading the file back returns the temperatures to within half a count
(about 0.01 degC near skin temperature with the default constants).
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from irtrepro._atomic import atomic_path
from irtrepro.errors import OptionError

__all__ = ["DEFAULT_ATMOSPHERE", "DEFAULT_PLANCK", "celsius_to_raw", "write_flir_seq"]

#: Planck constants of the FLIR SC660 recording among the real exports (flir_SampleSEQ.seq):
#: a real camera's calibration, so the synthetic counts span a real camera's raw range.
DEFAULT_PLANCK = {"R1": 21106.77, "R2": 0.012545258, "B": 1501.0, "F": 1.0, "O": -7340.0}
#: FLIR's atmospheric transmission constants (the values FLIR cameras write, and flyr's
#: and Thermimage's defaults).
DEFAULT_ATMOSPHERE = {"alpha1": 0.006569, "alpha2": 0.01262, "beta1": -0.002276,
                      "beta2": -0.00667, "X": 1.9}

_HEADER = 64
_ENTRY = 32
_CAMERA_LEN = 2428   # the camera info record's length in ResearchIR's SEQ files
_RAW_HEADER = 32
_K = 273.15


def _tau(distance: float, t_atm: float, rh: float, atm: Mapping[str, float]) -> float:
    """Atmospheric transmission of half the path (the chain of raw_to_celsius)."""
    h2o = rh * np.exp(1.5587 + 0.06939 * t_atm - 0.00027816 * t_atm**2
                      + 0.00000068455 * t_atm**3)
    sq, half, x = np.sqrt(h2o), np.sqrt(distance / 2.0), atm["X"]
    return float(x * np.exp(-half * (atm["alpha1"] + atm["beta1"] * sq))
                 + (1 - x) * np.exp(-half * (atm["alpha2"] + atm["beta2"] * sq)))


def _blackbody(t_c, planck: Mapping[str, float]):
    return planck["R1"] / (planck["R2"] * (np.exp(planck["B"] / (np.asarray(t_c, np.float64)
                                                                  + _K)) - planck["F"])) \
        - planck["O"]


def celsius_to_raw(t_c: np.ndarray, *, planck: Mapping[str, float] = DEFAULT_PLANCK,
                   emissivity: float = 0.98, reflected_temperature: float = 22.0,
                   atmospheric_temperature: float = 22.0, object_distance: float = 1.5,
                   relative_humidity: float = 0.5,
                   atmosphere: Mapping[str, float] = DEFAULT_ATMOSPHERE) -> np.ndarray:
    """Raw FLIR counts (float64, unrounded) that a camera with these constants records for
    objects at ``t_c``.

    Parameters
    ----------
    t_c : ndarray
        Object temperature, degC.
    planck : mapping
        ``R1``, ``R2``, ``B`` (K), ``F``, ``O`` (counts).
    emissivity : float
        Object emissivity, 0 < emissivity <= 1.
    reflected_temperature, atmospheric_temperature : float
        degC.
    object_distance : float
        m.
    relative_humidity : float
        Fraction 0..1.
    atmosphere : mapping
        Transmission constants ``alpha1``, ``alpha2``, ``beta1``, ``beta2``, ``X``.

    Returns
    -------
    ndarray
        Counts; the exact inverse of :func:`irtrepro.io.flir.raw_to_celsius` with an IR window
        of transmission 1 at the air temperature.
    """
    if not 0 < emissivity <= 1:
        raise OptionError(f"emissivity={emissivity!r}; expected 0 < emissivity <= 1")
    if object_distance < 0:
        raise OptionError(f"object_distance={object_distance!r} m; expected >= 0")
    missing = [k for k in ("R1", "R2", "B", "F", "O") if k not in planck]
    if missing:
        raise OptionError(f"planck lacks {missing}; expected R1, R2, B, F, O")
    e = float(emissivity)
    tau = _tau(float(object_distance), float(atmospheric_temperature),
               float(relative_humidity), atmosphere)
    raw_refl = _blackbody(reflected_temperature, planck)
    raw_atm = _blackbody(atmospheric_temperature, planck)
    # what the camera sees: the attenuated object and reflections plus the air's emission on
    # both halves of the path (no window: transmission 1)
    return (e * _blackbody(t_c, planck) + (1 - e) * raw_refl) * tau * tau \
        + (1 - tau) * tau * raw_atm + (1 - tau) * raw_atm


def _put_f(buf: bytearray, off: int, v: float) -> None:
    struct.pack_into("<f", buf, off, float(v))


def _camera_record(*, width: int, height: int, planck, atmosphere, emissivity: float,
                   object_distance: float, reflected_temperature: float,
                   atmospheric_temperature: float, relative_humidity: float,
                   camera_model: str, serial: str, lens: str, fov: float, frame_rate: int,
                   raw_range: tuple[int, int], range_degC: tuple[float, float]) -> bytearray:
    rec = bytearray(_CAMERA_LEN)
    struct.pack_into("<HHH", rec, 0, 2, width, height)   # 2 = little-endian byte-order mark
    for off, v in ((0x20, emissivity), (0x24, object_distance),
                   (0x28, reflected_temperature + _K), (0x2C, atmospheric_temperature + _K),
                   (0x30, atmospheric_temperature + _K), (0x34, 1.0),
                   (0x3C, relative_humidity),
                   (0x58, planck["R1"]), (0x5C, planck["B"]), (0x60, planck["F"]),
                   (0x70, atmosphere["alpha1"]), (0x74, atmosphere["alpha2"]),
                   (0x78, atmosphere["beta1"]), (0x7C, atmosphere["beta2"]),
                   (0x80, atmosphere["X"]),
                   (0x90, range_degC[1] + _K), (0x94, range_degC[0] + _K),
                   (0x1B4, fov), (0x30C, planck["R2"])):
        _put_f(rec, off, v)
    for off, n, text in ((0xD4, 32, camera_model), (0x104, 16, serial), (0x170, 32, lens)):
        b = text.encode("latin-1")[: n - 1]
        rec[off:off + len(b)] = b
    struct.pack_into("<i", rec, 0x308, int(round(planck["O"])))
    struct.pack_into("<HH", rec, 0x310, *raw_range)
    struct.pack_into("<H", rec, 0x464, int(frame_rate))
    return rec


def _frame_header(creator: str) -> bytes:
    hdr = bytearray(_HEADER)
    hdr[0:4] = b"FFF\x00"
    b = creator.encode("latin-1")[:15]
    hdr[4:4 + len(b)] = b
    # version 100, directory right after the header, 2 entries, next free record id 3
    struct.pack_into("<IIII", hdr, 0x14, 100, _HEADER, 2, 3)
    return bytes(hdr)


def _directory(cam_off: int, raw_off: int, raw_len: int) -> bytes:
    # type, subtype, version, index, offset, length, parent, object number, checksum
    return (struct.pack("<HHIIIIIII", 32, 0, 105, 1, cam_off, _CAMERA_LEN, 0, 0, 0)
            + struct.pack("<HHIIIIIII", 1, 2, 100, 2, raw_off, raw_len, 0, 0, 0))


def write_flir_seq(path: str | os.PathLike, frames_degC, times, *, start_time: dt.datetime,
                   planck: Mapping[str, float] = DEFAULT_PLANCK, emissivity: float = 0.98,
                   reflected_temperature: float = 22.0, atmospheric_temperature: float = 22.0,
                   object_distance: float = 1.5, relative_humidity: float = 0.5,
                   atmosphere: Mapping[str, float] = DEFAULT_ATMOSPHERE,
                   frame_rate: int = 30, camera_model: str = "FLIR T640 (synthetic)",
                   serial: str = "irtrepro", lens: str = "FOL25",
                   field_of_view: float = 25.0, creator: str = "irtrepro.synth") -> Path:
    """Write a recording as a FLIR SEQ file: raw 16-bit counts, constants and time stamps.

    Parameters
    ----------
    path : path-like
        Target ``.seq`` (written to a temporary name and renamed; byte-identical for the same
        input).
    frames_degC : array-like (frame, y, x)
        Object temperatures in degC, as the camera with these constants would report them
        (NaN is refused: a camera records a number in every pixel). Read one frame at a time,
        so a lazy (dask / zarr backed) array streams.
    times : array-like (frame,)
        Capture time of each frame on the camera's own clock, s after ``start_time``;
        strictly increasing at the file's 1 ms resolution.
    start_time : datetime
        Camera clock at ``times == 0``, time-zone aware (the file stores UTC and the offset).
    planck : mapping
        Planck constants ``R1``, ``R2``, ``B``, ``F``, ``O`` (default :data:`DEFAULT_PLANCK`).
    emissivity : float
        Emissivity set on the camera.
    reflected_temperature, atmospheric_temperature : float
        degC (the IR window is written at the air temperature with transmission 1).
    object_distance : float
        m.
    relative_humidity : float
        Fraction 0..1.
    atmosphere : mapping
        Atmospheric transmission constants (default :data:`DEFAULT_ATMOSPHERE`).
    frame_rate : int
        The camera's frame rate (Hz) in the camera record; the recording's own interval is in
        the time stamps.
    camera_model, serial, lens : str
        Strings of the camera record.
    field_of_view : float
        Degrees.
    creator : str
        Creator software of the FFF headers (15 characters kept).

    Returns
    -------
    Path

    Raises
    ------
    OptionError
        A naive ``start_time``, times not strictly increasing at 1 ms, a count of times other
        than the frames', NaN pixels, or a temperature outside the 16-bit range of the
        constants (the message names the frame and the temperatures).
    """
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise OptionError(f"start_time={start_time.isoformat()!r} has no time zone; a FLIR "
                          "file stores UTC and the offset: pass an aware datetime")
    t = np.asarray(times, dtype=np.float64)
    shape = tuple(getattr(frames_degC, "shape", np.shape(frames_degC)))
    if len(shape) != 3:
        raise OptionError(f"frames_degC has shape {shape}; expected (frame, y, x)")
    n, h, w = shape
    if t.shape != (n,):
        raise OptionError(f"times has shape {t.shape}; expected one time per frame ({n},)")
    tz_min = int(round(start_time.utcoffset().total_seconds() / 60))
    unix0_ms = int(round(start_time.timestamp() * 1000))
    stamps_ms = unix0_ms + np.round(t * 1000).astype(np.int64)
    if n > 1 and (np.diff(stamps_ms) <= 0).any():
        k = int(np.flatnonzero(np.diff(stamps_ms) <= 0)[0]) + 1
        raise OptionError(f"times: frame {k} at {t[k]!r} s is not after frame {k - 1} at "
                          f"{t[k - 1]!r} s at the file's 1 ms resolution")
    radio = dict(planck=planck, emissivity=emissivity,
                 reflected_temperature=reflected_temperature,
                 atmospheric_temperature=atmospheric_temperature,
                 object_distance=object_distance, relative_humidity=relative_humidity,
                 atmosphere=atmosphere)
    range_degC = (-20.0, 120.0)
    raw_range = tuple(int(np.clip(np.round(_blackbody(v, planck)), 0, 65535))
                      for v in range_degC)
    cam = _camera_record(width=w, height=h, planck=planck, atmosphere=atmosphere,
                         emissivity=emissivity, object_distance=object_distance,
                         reflected_temperature=reflected_temperature,
                         atmospheric_temperature=atmospheric_temperature,
                         relative_humidity=relative_humidity, camera_model=camera_model,
                         serial=serial, lens=lens, fov=field_of_view, frame_rate=frame_rate,
                         raw_range=raw_range, range_degC=range_degC)
    cam_off = _HEADER + 2 * _ENTRY
    raw_off = cam_off + _CAMERA_LEN
    raw_len = _RAW_HEADER + 2 * w * h
    head = _frame_header(creator) + _directory(cam_off, raw_off, raw_len)
    raw_hdr = bytearray(_RAW_HEADER)
    struct.pack_into("<HHH", raw_hdr, 0, 2, w, h)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for i in range(n):
            deg = np.asarray(frames_degC[i], dtype=np.float64)
            if not np.isfinite(deg).all():
                raise OptionError(f"{path}: frame {i}: {int((~np.isfinite(deg)).sum())} "
                                  "non-finite pixel(s); a camera records a number in every pixel")
            raw = np.round(celsius_to_raw(deg, **radio))
            if raw.min() < 0 or raw.max() > 65535:
                raise OptionError(f"{path}: frame {i}: temperatures {deg.min():.2f}.."
                                  f"{deg.max():.2f} degC give counts {raw.min():.0f}.."
                                  f"{raw.max():.0f}, outside 0..65535 with these constants")
            sec, ms = divmod(int(stamps_ms[i]), 1000)
            struct.pack_into("<IIh", cam, 0x384, sec, ms, -tz_min)  # tz: UTC - local
            fh.write(head)
            fh.write(cam)
            fh.write(raw_hdr)
            fh.write(raw.astype("<u2").tobytes())
    return path
