"""The thermal frame model: a session's frames as an :class:`xarray.DataArray`, and its checks.

A session's frames are an :class:`xarray.DataArray` ``(frame, y, x)`` of temperature in degC
(float32 in memory) with coordinate ``time(frame)`` in seconds since the recording's own start and
``attrs['start_time']`` (ISO 8601 string, or ``""`` when the file has none). Every thermal reader
builds it with :func:`frames_dataarray` and checks it with :func:`check_frames` and
:func:`check_frame_times`; errors are :class:`FrameError` naming the file and frame.

Segmentation masks share the frame grid, uint8 (:data:`MASK_CLASSES`):

- ``roi``: 0 background, 1 left calf, 2 right calf;
- ``vessels``: 0 none, 1 vein, 2 perforator.

The on-disk encoding constants (:data:`SCALE_FACTOR`, :data:`ADD_OFFSET`, :data:`FILL_VALUE`)
are defined here because readers and the store share them; the store is
:mod:`irtrepro.io.zarr_store`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from irtrepro.errors import IrtreproWarning, OptionError, ReaderError, check_option

__all__ = [
    "ADD_OFFSET", "FILL_VALUE", "MASK_CLASSES", "PLAUSIBLE_RANGE", "SCALE_FACTOR",
    "DamagedFrameWarning", "FrameError", "FrameTimeError", "check_frame_times", "check_frames",
    "frames_dataarray", "time_segments", "warn_damaged",
]


#: Default CF encoding of the store: degC = uint16 * SCALE_FACTOR + ADD_OFFSET.
SCALE_FACTOR = 0.01
ADD_OFFSET = -50.0
#: uint16 value that marks a missing pixel (decodes to NaN).
FILL_VALUE = 65535
#: Default plausible temperature range of readers' checks, degC. Wide on purpose: it must pass
#: every real export (an InfraTec outdoor scene reaches -43 degC, a hot object 88 degC) and only
#: catch garbage such as a wrong unit or a raw-count image read as temperature.
PLAUSIBLE_RANGE = (-60.0, 300.0)

MASK_CLASSES: dict[str, dict[int, str]] = {
    "roi": {0: "background", 1: "left_calf", 2: "right_calf"},
    "vessels": {0: "none", 1: "vein", 2: "perforator"},
}

_UNITS = ("degC", "K", "degF")


class FrameError(ReaderError):
    """A frame is unusable: NaN/inf pixels, implausible or unencodable values, damaged bytes.

    Attributes ``path`` and ``frame`` name the culprit (``frame`` may be ``None``).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 frame: int | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.frame = frame


class FrameTimeError(FrameError):
    """Frame time stamps go backwards or repeat: the file holds more than one recording."""


class DamagedFrameWarning(IrtreproWarning):
    """Frames of a recording were damaged: skipped, or returned as NaN (named in the message).

    Attributes ``path`` and ``frames`` (file frame number -> reason; empty when the message
    alone names them) let :func:`write_frames` record frames found damaged while decoding.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 frames: Mapping[int, str] | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.frames = dict(frames or {})




def _jsonable(value: Any) -> Any:
    """A zarr/netCDF-safe attribute value (str, int, float, list thereof)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return json.dumps({str(k): _jsonable(v) for k, v in value.items()})
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def frames_dataarray(data, time: Sequence[float] | np.ndarray, *, start_time: Any = None,
                     source: str | os.PathLike | None = None, fmt: str = "",
                     attrs: Mapping[str, Any] | None = None) -> xr.DataArray:
    """Wrap a ``(frame, y, x)`` array of degC into the thermal-frames DataArray of the contract.

    Parameters
    ----------
    data : array-like or dask array, shape (n_frames, ny, nx)
        Temperatures in degC. Cast to float32 (lazily for dask arrays).
    time : array-like, shape (n_frames,)
        Seconds since the recording's start.
    start_time : datetime or str, optional
        Absolute time of the first frame; stored as an ISO 8601 string (``""`` if unknown).
    source, fmt : str
        Path of the file read and the reader's format name, kept in ``attrs``.
    attrs : mapping, optional
        Further attributes (camera constants ...); values are made zarr-safe.
    """
    if getattr(data, "ndim", None) == 2:
        data = data[None]
    if getattr(data, "ndim", None) != 3:
        raise FrameError(f"{source or '<array>'}: frames must be (frame, y, x), got shape "
                         f"{getattr(data, 'shape', None)}", source)
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    time = np.asarray(time, dtype=np.float64)
    if time.shape != (data.shape[0],):
        raise FrameError(f"{source or '<array>'}: {time.size} time stamps for {data.shape[0]} "
                         "frames", source)
    all_attrs = {k: _jsonable(v) for k, v in (attrs or {}).items() if v is not None}
    all_attrs.update({
        "units": "degC",
        "long_name": "temperature",
        "start_time": "" if start_time is None else _jsonable(start_time),
        "source": "" if source is None else str(source),
        "format": fmt,
    })
    return xr.DataArray(
        data, dims=("frame", "y", "x"), name="frames",
        coords={"time": ("frame", time, {"units": "s", "long_name": "time since recording start"})},
        attrs=all_attrs,
    )


def _to_celsius(arr: np.ndarray, unit: str, source) -> np.ndarray:
    check_option("unit", unit, _UNITS)
    arr = arr.astype(np.float32, copy=False)
    if unit == "K":
        return arr - np.float32(273.15)
    if unit == "degF":
        return (arr - np.float32(32.0)) * np.float32(5.0 / 9.0)
    return arr


def check_frames(frames: xr.DataArray | np.ndarray, *,
                 plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE,
                 allow_nan: bool = False, source: str | os.PathLike | None = None,
                 first_frame: int = 0) -> None:
    """Raise :class:`FrameError` on inf, NaN (unless allowed) or implausible temperatures.

    Parameters
    ----------
    frames : DataArray or ndarray, (frame, y, x), degC
        Checked in memory (call per chunk for long lazy recordings).
    plausible_range : (low, high) degC or None
        Finite values outside ``[low, high]`` raise; ``None`` skips the range check.
    allow_nan : bool
        Whether NaN pixels (masked/missing) are acceptable.
    source : path, optional
        Named in the error (defaults to ``frames.attrs['source']``).
    first_frame : int
        Index of ``frames[0]`` in the whole recording, so errors name the true frame.
    """
    if isinstance(frames, xr.DataArray):
        source = source or frames.attrs.get("source") or "<array>"
        arr = np.asarray(frames.values)
    else:
        arr = np.asarray(frames)
        source = source or "<array>"
    if arr.ndim == 2:
        arr = arr[None]
    flat = arr.reshape(arr.shape[0], -1)
    bad_inf = np.isinf(flat).any(axis=1)
    if bad_inf.any():
        i = int(np.flatnonzero(bad_inf)[0])
        raise FrameError(f"{source}: frame {first_frame + i}: {int(np.isinf(flat[i]).sum())} "
                         "infinite pixel(s)", source, first_frame + i)
    if not allow_nan:
        bad_nan = np.isnan(flat).any(axis=1)
        if bad_nan.any():
            i = int(np.flatnonzero(bad_nan)[0])
            raise FrameError(f"{source}: frame {first_frame + i}: {int(np.isnan(flat[i]).sum())} "
                             "NaN pixel(s)", source, first_frame + i)
    if plausible_range is not None:
        lo, hi = plausible_range
        with np.errstate(invalid="ignore"):
            out = ((flat < lo) | (flat > hi)).any(axis=1)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise FrameError(
                f"{source}: frame {first_frame + i}: temperatures {np.nanmin(flat[i]):.2f}.."
                f"{np.nanmax(flat[i]):.2f} degC outside the plausible range {lo}..{hi} degC "
                "(wrong unit or scale? pass plausible_range= to widen it)", source,
                first_frame + i)


def _time_breaks(time: np.ndarray) -> np.ndarray:
    """Positions ``k`` where ``time[k] <= time[k - 1]`` (pairs with a NaN time are ignored)."""
    t = np.asarray(time, dtype=np.float64)
    if t.size < 2:
        return np.zeros(0, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        back = ~(np.diff(t) > 0) & np.isfinite(t[1:]) & np.isfinite(t[:-1])
    return np.flatnonzero(back) + 1


def time_segments(time: Sequence[float] | np.ndarray,
                  frame_index: Sequence[int] | np.ndarray | None = None) -> list[dict[str, Any]]:
    """Runs of strictly increasing frame times: where a recording restarts inside one file.

    Parameters
    ----------
    time : array-like, shape (n_frames,)
        Frame times, s.
    frame_index : array-like, optional
        The frames' numbers in the file (default ``0..n-1``).

    Returns
    -------
    list of dict
        One per run, in file order: ``first_frame``, ``last_frame`` (file numbers),
        ``n_frames`` and ``time_span_s`` (last minus first time of the run). A file with
        increasing times is one segment.
    """
    t = np.asarray(time, dtype=np.float64)
    fi = np.arange(t.size) if frame_index is None else np.asarray(frame_index)
    cuts = [0, *_time_breaks(t).tolist(), t.size]
    return [{"first_frame": int(fi[a]), "last_frame": int(fi[b - 1]), "n_frames": int(b - a),
             "time_span_s": float(np.nanmax(t[a:b]) - np.nanmin(t[a:b])) if b > a else 0.0}
            for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def check_frame_times(time: Sequence[float] | np.ndarray, *,
                      source: str | os.PathLike | None = None,
                      frame_index: Sequence[int] | np.ndarray | None = None) -> None:
    """Raise :class:`FrameTimeError` where a frame's time is not after the previous frame's.

    A camera's time stamps increase from frame to frame; a time that goes back or repeats
    means the file holds more than one recording (files concatenated, a recording restarted
    into the same file, frames duplicated). Such a file has no single clock to place it on
    the session's, so it is refused rather than read as one recording. Forward jumps (a pause)
    are kept as stamped. NaN times (unreadable stamps) are not compared.

    Parameters
    ----------
    time : array-like, shape (n_frames,)
        Frame times, s.
    source : path, optional
        Named in the message.
    frame_index : array-like, optional
        The frames' numbers in the file, named in the message (default ``0..n-1``).
    """
    t = np.asarray(time, dtype=np.float64)
    breaks = _time_breaks(t)
    if not breaks.size:
        return
    fi = np.arange(t.size) if frame_index is None else np.asarray(frame_index)
    k = int(breaks[0])
    what = "repeats" if t[k] == t[k - 1] else "goes backwards"
    at = [int(fi[b]) for b in breaks[:10]]
    more = f" and {breaks.size - 10} more" if breaks.size > 10 else ""
    src = source or "<frames>"
    raise FrameTimeError(
        f"{src}: frame {int(fi[k])}: time {what} ({t[k - 1]:.3f} s at frame {int(fi[k - 1])}, "
        f"then {t[k]:.3f} s); the time stamps restart {breaks.size} time(s), at frames "
        f"{at}{more}: the file holds {breaks.size + 1} recordings (concatenated files, or a "
        "recording restarted into the same file). `irtrepro thermal info` lists the "
        "segments; read with check_time=False and select one (da.isel(frame=...)), or split "
        "the file", src, int(fi[k]))


def _time_axis(n: int, fps: float | None, time, source) -> np.ndarray:
    if time is not None:
        t = np.asarray(time, dtype=np.float64)
        if t.shape != (n,):
            raise OptionError(f"{source}: time= has {t.size} values for {n} frames")
        # given times (npz ``time`` array, ``time=``) are held to the camera files' rule: a
        # time that goes back or repeats means several recordings, with no single clock
        check_frame_times(t, source=source)
        return t
    if fps is None:
        if n == 1:
            return np.zeros(1)
        raise OptionError(f"{source}: {n} frames but neither fps= (Hz) nor time= (s) given; "
                          "the frame times cannot be guessed")
    if not fps > 0:
        raise OptionError(f"{source}: fps={fps!r}; expected a positive frame rate in Hz")
    return np.arange(n, dtype=np.float64) / float(fps)


def warn_damaged(path, frames: Sequence[int], reasons: Sequence[str] = ()) -> None:
    """Warn that ``frames`` of ``path`` were damaged and skipped (never silently dropped)."""
    if not frames:
        return
    detail = "; ".join(f"frame {f}: {r}" for f, r in zip(frames, reasons, strict=False))
    warnings.warn(DamagedFrameWarning(
        f"{path}: {len(frames)} damaged frame(s) skipped: {list(frames)}"
        + (f" ({detail})" if detail else "")), stacklevel=3)

