"""Thermal frames on disk and in memory: the zarr frame store and the simple thermal readers.

A session's frames are an :class:`xarray.DataArray` ``(frame, y, x)`` of temperature in degC
(float32 in memory) with coordinate ``time(frame)`` in seconds since the recording's own start and
``attrs['start_time']`` (ISO 8601 string, or ``""`` when the file has none).

On disk (:func:`write_frames`) the frames are a zarr (format 3) store, uint16 with CF encoding
``T = stored * scale_factor + add_offset``. The defaults ``scale_factor=0.01``,
``add_offset=-50.0`` cover -50.00 .. 605.34 degC in steps of 0.01 degC; the stored value 65535 is
the ``_FillValue`` and decodes to NaN. **Quantisation bound:** a value read back differs from the
value written by at most ``scale_factor / 2`` (0.005 degC with the defaults) plus float32
rounding (< 1e-4 degC below 1000 degC) -- see :func:`quantisation_bound`. Values outside the
encodable range raise :class:`FrameError` (they are never clipped or wrapped).

Segmentation masks live beside the frames in the same store, on the same grid, uint8:

- ``roi``: 0 background, 1 left calf, 2 right calf;
- ``vessels``: 0 none, 1 vein, 2 perforator.

Readers registered here (kind ``thermal``): ``zarr`` (this store), ``npy``, ``npz``, ``tiff``
(16-bit multi-page; scale, offset and unit must be given), ``flir-jpeg`` (through flyr) and
``flir-csv`` (FLIR Tools-style temperature matrices). The vendor sequence readers live in
:mod:`irtrepro.io.flir` and :mod:`irtrepro.io.infratec`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger, progress_bar
from irtrepro.errors import FormatError, IrtreproWarning, OptionError, ReaderError, check_option
from irtrepro.io.registry import register

__all__ = [
    "ADD_OFFSET",
    "FILL_VALUE",
    "MASK_CLASSES",
    "PLAUSIBLE_RANGE",
    "SCALE_FACTOR",
    "DamagedFrameWarning",
    "FrameError",
    "FrameTimeError",
    "check_frame_times",
    "check_frames",
    "time_segments",
    "frames_dataarray",
    "open_frame_store",
    "open_frames",
    "quantisation_bound",
    "two_point_calibration",
    "write_frames",
    "write_masks",
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


# --------------------------------------------------------------------------------------------
# building and checking frame arrays
# --------------------------------------------------------------------------------------------

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
        return t
    if fps is None:
        if n == 1:
            return np.zeros(1)
        raise OptionError(f"{source}: {n} frames but neither fps= (Hz) nor time= (s) given; "
                          "the frame times cannot be guessed")
    if not fps > 0:
        raise OptionError(f"{source}: fps={fps!r}; expected a positive frame rate in Hz")
    return np.arange(n, dtype=np.float64) / float(fps)


# --------------------------------------------------------------------------------------------
# the zarr frame store
# --------------------------------------------------------------------------------------------

def quantisation_bound(scale_factor: float = SCALE_FACTOR) -> float:
    """Largest |read - written| in degC for finite values inside the encodable range.

    Half a quantum from rounding to uint16 plus float32 rounding of the decoded value
    (temperatures below 1000 degC: float32 spacing <= 6.1e-5 degC).
    """
    return 0.5 * scale_factor + 1e-4


def _encodable_range(scale_factor: float, add_offset: float) -> tuple[float, float]:
    return add_offset, add_offset + (FILL_VALUE - 1) * scale_factor


def _encode(block: np.ndarray, scale_factor: float, add_offset: float) -> np.ndarray:
    """degC float -> uint16 counts (round half to even), NaN -> FILL_VALUE.

    Works in float64 a few frames at a time, so the rounding is exact and the temporary
    memory small whatever the chunk length.
    """
    out = np.empty(block.shape, np.uint16)
    step = max(1, (1 << 22) // max(1, block[0].size))  # ~32 MB of float64 per step
    for i in range(0, block.shape[0], step):
        b = block[i:i + step].astype(np.float64)
        q = np.rint((b - add_offset) / scale_factor)
        q[np.isnan(b)] = FILL_VALUE
        out[i:i + step] = q
    return out


def _check_mask(name: str, mask, frames_shape: tuple[int, ...], path) -> xr.DataArray:
    check_option("mask name", name, tuple(MASK_CLASSES))
    if isinstance(mask, xr.DataArray):
        data = mask.data
    else:
        data = np.asarray(mask)
    if tuple(data.shape) != tuple(frames_shape):
        raise FrameError(f"{path}: mask {name!r} has shape {tuple(data.shape)}, the frames "
                         f"{tuple(frames_shape)}; masks must share the (frame, y, x) grid", path)
    if not np.issubdtype(data.dtype, np.integer) and not np.issubdtype(data.dtype, np.bool_):
        raise FrameError(f"{path}: mask {name!r} has dtype {data.dtype}; expected integer "
                         f"class labels {sorted(MASK_CLASSES[name])}", path)
    classes = MASK_CLASSES[name]
    da = xr.DataArray(data, dims=("frame", "y", "x"), name=name, attrs={
        "long_name": f"{name} mask",
        "flag_values": list(classes),
        "flag_meanings": " ".join(classes.values()),
    })
    return da


def _check_mask_values(name: str, arr: np.ndarray, path, first_frame: int) -> np.ndarray:
    allowed = np.array(sorted(MASK_CLASSES[name]))
    bad = ~np.isin(arr, allowed)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
        raise FrameError(f"{path}: mask {name!r}, frame {first_frame + i}: values "
                         f"{sorted(set(np.unique(arr[i][bad[i]]).tolist()))[:5]} not in "
                         f"{allowed.tolist()}", path, first_frame + i)
    return arr.astype(np.uint8)


def write_frames(path: str | os.PathLike, frames: xr.DataArray, *,
                 masks: Mapping[str, xr.DataArray | np.ndarray] | None = None,
                 scale_factor: float = SCALE_FACTOR, add_offset: float = ADD_OFFSET,
                 chunk_frames: int = 64, progress: bool | None = None) -> Path:
    """Write a session's frames (and masks) to a zarr frame store, atomically.

    The store holds ``frames`` (uint16 on disk, CF ``scale_factor``/``add_offset``,
    ``_FillValue`` 65535 = NaN), ``time(frame)`` in s, and optionally ``roi`` and ``vessels``
    uint8 masks on the same grid. It is written chunk by chunk (``chunk_frames`` frames at a
    time, which is also the zarr chunk length), so a lazy (dask-backed) recording streams
    through in bounded memory, and only appears under ``path`` once complete.

    Parameters
    ----------
    path : path
        Target store (a folder, conventionally ``*.zarr``); replaced if it exists.
    frames : DataArray (frame, y, x), degC
        With coordinate ``time(frame)`` in s; attrs (start_time, camera constants, source) are
        kept.
    masks : mapping, optional
        ``{"roi": ..., "vessels": ...}`` label arrays of the frames' shape.
    scale_factor, add_offset : float
        Encoding, degC per count and degC at count 0. Defaults cover -50 .. 605.34 degC at
        0.01 degC; see :func:`quantisation_bound`.
    chunk_frames : int
        Frames per zarr chunk (and per write).
    progress : bool or None
        Progress bar (``None``: when the irtrepro logger shows INFO).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FrameError
        Wrong dims, inf pixels, values outside the encodable range (naming the frame), masks
        of the wrong shape or with unknown labels. No partial store is left behind.
    """
    path = Path(path)
    if not isinstance(frames, xr.DataArray) or frames.ndim != 3:
        raise FrameError(f"{path}: frames must be an xarray.DataArray (frame, y, x), got "
                         f"{type(frames).__name__} {getattr(frames, 'dims', None)}", path)
    if tuple(frames.dims) != ("frame", "y", "x"):
        raise FrameError(f"{path}: frames have dims {frames.dims}; expected ('frame', 'y', 'x')",
                         path)
    if "time" not in frames.coords:
        raise FrameError(f"{path}: frames have no time(frame) coordinate (s)", path)
    if not (scale_factor > 0) or int(chunk_frames) < 1:
        raise OptionError(f"scale_factor={scale_factor!r}, chunk_frames={chunk_frames!r}; "
                          "expected positive values")
    n, ny, nx = frames.shape
    # a chunk longer than the whole recording makes zarr allocate (and merge into) the full
    # chunk on every write: cap it
    chunk_frames = max(1, min(int(chunk_frames), n))
    source = frames.attrs.get("source") or "<frames>"
    lo, hi = _encodable_range(scale_factor, add_offset)
    mask_das = {name: _check_mask(name, m, frames.shape, path) for name, m in (masks or {}).items()}

    import dask.array as dsa

    time = np.asarray(frames["time"].values, dtype=np.float64)
    attrs = {k: _jsonable(v) for k, v in frames.attrs.items() if v is not None}
    attrs.update({"units": "degC", "long_name": attrs.get("long_name", "temperature")})
    # A lazy template: metadata first, then every chunk is written into its own region, so
    # only one chunk of the source is ever in memory.
    tpl = {"frames": (("frame", "y", "x"),
                      dsa.zeros((n, ny, nx), dtype=np.float32, chunks=(chunk_frames, ny, nx)),
                      attrs)}
    encoding: dict[str, dict] = {"frames": {
        "dtype": "uint16", "scale_factor": float(scale_factor), "add_offset": float(add_offset),
        "_FillValue": FILL_VALUE, "chunks": (chunk_frames, ny, nx)}}
    for name, m in mask_das.items():
        tpl[name] = (("frame", "y", "x"),
                     dsa.zeros((n, ny, nx), dtype=np.uint8, chunks=(chunk_frames, ny, nx)),
                     m.attrs)
        encoding[name] = {"dtype": "uint8", "chunks": (chunk_frames, ny, nx), "_FillValue": None}
    ds_tpl = xr.Dataset(tpl, coords={"time": ("frame", time, {"units": "s"})},
                        attrs={"irtrepro_store": "thermal-frames", "quantisation_bound_degC":
                               quantisation_bound(scale_factor)})
    encoding["time"] = {"dtype": "float64", "chunks": (max(n, 1),)}
    with atomic_path(path, is_dir=True) as tmp:
        ds_tpl.to_zarr(tmp, mode="w", encoding=encoding, compute=False, consolidated=False,
                       zarr_format=3)
        import zarr

        arrays = {name: zarr.open_array(str(tmp / name), mode="r+")
                  for name in ("frames", *mask_das)}
        starts = range(0, n, chunk_frames)
        caught: list[warnings.WarningMessage] = []
        found: dict[int, str] = {}  # frames found damaged while decoding (lazy readers)
        for s in progress_bar(starts, progress, desc=f"writing {path.name}",
                              total=len(starts)):
            sl = slice(s, min(s + chunk_frames, n))
            with warnings.catch_warnings(record=True) as log:
                warnings.simplefilter("always", DamagedFrameWarning)
                block = np.asarray(frames.isel(frame=sl).values, dtype=np.float32)
            for w in log:
                if isinstance(w.message, DamagedFrameWarning):
                    found.update(w.message.frames)
            caught.extend(log)
            with np.errstate(invalid="ignore"):
                fin = np.isfinite(block)
                if np.isinf(block).any():
                    check_frames(block, plausible_range=None, allow_nan=True, source=source,
                                 first_frame=s)
                out = fin & ((block < lo - 0.5 * scale_factor) | (block > hi + 0.5 * scale_factor))
            if out.any():
                i = int(np.flatnonzero(out.reshape(out.shape[0], -1).any(axis=1))[0])
                raise FrameError(
                    f"{source}: frame {s + i}: values {np.nanmin(block[i]):.3f}.."
                    f"{np.nanmax(block[i]):.3f} degC outside the store's encodable range "
                    f"{lo:.2f}..{hi:.2f} degC (scale_factor={scale_factor}, "
                    f"add_offset={add_offset}); writing to {path}", source, s + i)
            # encode here (not through xarray, which works on float64 copies of the whole
            # block) and write the uint16 counts straight into the zarr array
            arrays["frames"][sl] = _encode(block, scale_factor, add_offset)
            del block
            for name, m in mask_das.items():
                arrays[name][sl] = _check_mask_values(name, np.asarray(m.data[sl]), path, s)
        if found:
            arrays["frames"].attrs.update(_merge_damaged(attrs, found))
    seen = set()
    for w in caught:  # after the store is in place, once each: as the caller's filters say
        if (w.category, str(w.message)) not in seen:
            seen.add((w.category, str(w.message)))
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    logger.info("wrote %d frames (%dx%d) to %s", n, ny, nx, path)
    return path


def _merge_damaged(attrs: Mapping[str, Any], found: Mapping[int, str]) -> dict[str, list]:
    """``damaged_frames``/``damaged_reasons`` of ``attrs`` plus frames found NaN on decoding."""
    old = attrs.get("damaged_frames") or []
    reasons = attrs.get("damaged_reasons") or [""] * len(old)
    both = {int(k): str(r) for k, r in zip(old, reasons, strict=False)}
    for k, r in found.items():
        both.setdefault(int(k), f"NaN: {r}")
    frames = sorted(both)
    return {"damaged_frames": frames, "damaged_reasons": [both[k] for k in frames]}


def _is_store(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())


def open_frame_store(path: str | os.PathLike) -> xr.Dataset:
    """Open a frame store lazily: ``frames`` (degC float32, dask) and any masks (uint8).

    A *mask store* (annotations such as the synthetic study's ground truth: ``roi`` and/or
    ``vessels`` with ``time(frame)``, no ``frames``) opens too, with its masks only.

    Raises
    ------
    FormatError
        ``path`` is not a zarr store written by :func:`write_frames` (no ``frames`` variable)
        nor a mask store.
    """
    path = Path(path)
    if not _is_store(path):
        raise FormatError(f"{path}: not a zarr frame store (no zarr.json/.zgroup folder)")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
            ds = xr.open_zarr(path, consolidated=None, decode_timedelta=False, chunks={},
                              mask_and_scale=True)
    except Exception as exc:  # zarr raises many kinds on a damaged store
        raise FormatError(f"{path}: cannot open as a zarr frame store: {exc}") from exc
    if "frames" not in ds:
        if any(name in ds for name in MASK_CLASSES) and "time" in ds.coords:
            return ds.assign_coords(time=ds["time"].load()).astype(
                {name: np.uint8 for name in MASK_CLASSES if name in ds})
        raise FormatError(f"{path}: zarr store has no 'frames' variable (has {list(ds.data_vars)})")
    attrs = dict(ds["frames"].attrs)
    ds = ds.assign_coords(time=ds["time"].load())  # small; sync needs it in memory anyway
    ds["frames"] = ds["frames"].astype(np.float32)
    ds["frames"].attrs.update(attrs)
    ds["frames"].attrs["store"] = str(path)
    for name in MASK_CLASSES:
        if name in ds:
            ds[name] = ds[name].astype(np.uint8)
    return ds


def open_frames(path: str | os.PathLike) -> xr.DataArray:
    """The frames of a store: lazy, dask-backed ``(frame, y, x)`` float32 degC with ``time``."""
    return open_frame_store(path)["frames"]


def write_masks(path: str | os.PathLike, *, roi=None, vessels=None,
                progress: bool | None = None) -> Path:
    """Add or replace the ``roi``/``vessels`` masks of an existing frame store.

    Each mask is written completely to a temporary store beside ``path`` and then moved into
    the store by renaming its folder, so a reader sees either the old or the new mask, never a
    half-written one (replacing an existing mask renames the old folder aside first; the gap is
    two renames long).

    Parameters
    ----------
    path : path
        A store written by :func:`write_frames`.
    roi, vessels : DataArray or ndarray (frame, y, x), optional
        Integer labels (see :data:`MASK_CLASSES`); may be dask-backed (written chunk by chunk).
    """
    path = Path(path)
    ds = open_frame_store(path)
    shape = ds["frames"].shape
    chunk = ds["frames"].encoding.get("chunks", (64,))[0] if ds["frames"].encoding else 64
    zarr_format = 3 if (path / "zarr.json").is_file() else 2
    given = {k: v for k, v in (("roi", roi), ("vessels", vessels)) if v is not None}
    if not given:
        raise OptionError(f"{path}: write_masks needs roi= and/or vessels=")
    import dask.array as dsa

    for name, mask in given.items():
        m = _check_mask(name, mask, shape, path)
        n, ny, nx = shape
        tmp_root = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=path.parent))
        try:
            tmp = tmp_root / "store.zarr"
            tpl = xr.Dataset({name: (("frame", "y", "x"),
                                     dsa.zeros(shape, dtype=np.uint8, chunks=(chunk, ny, nx)),
                                     m.attrs)})
            tpl.to_zarr(tmp, mode="w", compute=False, consolidated=False, zarr_format=zarr_format,
                        encoding={name: {"dtype": "uint8", "chunks": (chunk, ny, nx),
                                         "_FillValue": None}})
            for s in progress_bar(range(0, n, chunk), progress, desc=f"writing {name}"):
                sl = slice(s, min(s + chunk, n))
                block = _check_mask_values(name, np.asarray(m.data[sl]), path, s)
                xr.Dataset({name: (("frame", "y", "x"), block)}).to_zarr(
                    tmp, region={"frame": sl}, consolidated=False, zarr_format=zarr_format)
            target = path / name
            old = None
            if target.exists():
                old = tmp_root / "old"
                os.replace(target, old)
            os.replace(tmp / name, target)
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)
    if (path / ".zmetadata").is_file():  # a consolidated v2 store must list the new arrays
        import zarr

        zarr.consolidate_metadata(str(path))
    return path


# --------------------------------------------------------------------------------------------
# two-point calibration
# --------------------------------------------------------------------------------------------

def _patch_mean(frames: xr.DataArray, patch, name: str) -> xr.DataArray:
    ny, nx = frames.sizes["y"], frames.sizes["x"]
    if isinstance(patch, tuple) and all(isinstance(p, slice) for p in patch):
        sel = frames.isel(y=patch[0], x=patch[1])
        if sel.size == 0:
            raise OptionError(f"{name}={patch!r} selects no pixel of a {ny}x{nx} frame")
        return sel.mean(("y", "x"))
    m = np.asarray(patch, dtype=bool)
    if m.shape != (ny, nx):
        raise OptionError(f"{name}: mask shape {m.shape}; expected the frame shape {(ny, nx)}")
    if not m.any():
        raise OptionError(f"{name}: mask selects no pixel")
    return frames.where(xr.DataArray(m, dims=("y", "x"))).mean(("y", "x"))


def two_point_calibration(frames: xr.DataArray, patch_a, patch_b, t_a: float,
                          t_b: float) -> xr.DataArray:
    """Correct each frame linearly so two reference patches read their known temperatures.

    For every frame, with ``m_a``, ``m_b`` the mean readings of the patches,
    ``T' = t_a + (T - m_a) * (t_b - t_a) / (m_b - m_a)``.

    Parameters
    ----------
    frames : DataArray (frame, y, x), degC
        Lazy arrays stay lazy.
    patch_a, patch_b : (slice, slice) or bool array (y, x)
        Pixels of the two reference sources (e.g. blackbodies) in view.
    t_a, t_b : float
        Their true temperatures, degC; must differ.

    Returns
    -------
    DataArray
        Corrected frames (float32), with per-frame ``calibration_gain`` and
        ``calibration_offset`` coordinates.

    Raises
    ------
    FrameError
        A frame where both patches read the same temperature (checked when computed).
    """
    if t_a == t_b:
        raise OptionError(f"t_a == t_b == {t_a}; the reference temperatures must differ")
    m_a = _patch_mean(frames, patch_a, "patch_a").astype(np.float64)
    m_b = _patch_mean(frames, patch_b, "patch_b").astype(np.float64)
    diff = m_b - m_a
    if not frames.chunks:  # eager: check now and name the frame
        d = np.asarray(diff.values)
        bad = ~(np.abs(d) > 1e-9)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            src = frames.attrs.get("source", "<frames>")
            raise FrameError(f"{src}: frame {i}: the two calibration patches read the same "
                             f"temperature ({float(m_a[i]):.3f} degC); cannot calibrate", src, i)
    gain = (t_b - t_a) / diff
    offset = t_a - m_a * gain
    out = (frames * gain + offset).astype(np.float32)
    out.attrs = dict(frames.attrs)
    out.attrs["calibration"] = f"two-point: patch_a={t_a} degC, patch_b={t_b} degC"
    return out.assign_coords(calibration_gain=gain.astype(np.float32),
                             calibration_offset=offset.astype(np.float32))


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------

def _finish(da: xr.DataArray, plausible_range, allow_nan: bool = False) -> xr.DataArray:
    if not da.chunks:
        check_frames(da, plausible_range=plausible_range, allow_nan=allow_nan)
    return da


def _sniff_zarr(head: bytes, path: Path) -> bool:
    return _is_store(path) and (path / "frames").is_dir()


@register("thermal", "zarr", extensions=(".zarr",), sniff=_sniff_zarr,
          description="irtrepro zarr frame store (uint16 + scale/offset, masks beside)",
          options=())
def read_zarr(path: str | os.PathLike, **options) -> xr.DataArray:
    """irtrepro zarr frame store (lazy)."""
    if options:
        raise OptionError(f"{path}: the zarr frame store takes no options, got {sorted(options)}")
    return open_frames(path)


def _array_frames(arr: np.ndarray, path, fmt: str, *, fps, time, start_time, scale, offset,
                  unit, plausible_range) -> xr.DataArray:
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise FormatError(f"{path}: expected a (frame, y, x) or (y, x) stack, got shape "
                          f"{arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        if scale is None or offset is None or unit is None:
            raise OptionError(f"{path}: integer ({arr.dtype}) frames need scale=, offset= and "
                              "unit= (T = value * scale + offset, in unit); they are never "
                              "guessed")
    if scale is not None or offset is not None:
        arr = arr.astype(np.float64) * (1.0 if scale is None else scale) + (offset or 0.0)
    data = _to_celsius(np.asarray(arr), unit or "degC", path)
    t = _time_axis(data.shape[0], fps, time, path)
    da = frames_dataarray(data, t, start_time=start_time, source=path, fmt=fmt)
    return _finish(da, plausible_range)


@register("thermal", "npy", extensions=(".npy",), sniff=lambda h, p: h.startswith(b"\x93NUMPY"))
def read_npy(path: str | os.PathLike, *, fps: float | None = None, time=None,
             start_time=None, scale: float | None = None, offset: float | None = None,
             unit: str | None = None,
             plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE) -> xr.DataArray:
    """NumPy .npy stack (frame, y, x) of degC (float) or counts (integer: scale/offset/unit)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise FormatError(f"{path}: not a readable .npy array: {exc}") from exc
    return _array_frames(np.asarray(arr), path, "npy", fps=fps, time=time, start_time=start_time,
                         scale=scale, offset=offset, unit=unit, plausible_range=plausible_range)


@register("thermal", "npz", extensions=(".npz",))
def read_npz(path: str | os.PathLike, *, fps: float | None = None, key: str | None = None,
             start_time=None, scale: float | None = None, offset: float | None = None,
             unit: str | None = None,
             plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE) -> xr.DataArray:
    """NumPy .npz with ``frames`` (or one array) and optional ``time`` (s) arrays."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if key is None:
                cands = [k for k in names if k != "time"]
                key = "frames" if "frames" in names else (cands[0] if len(cands) == 1 else None)
            if key is None or key not in names:
                raise FormatError(f"{path}: cannot tell which array holds the frames "
                                  f"(arrays {names}); pass key=")
            arr = z[key]
            time = z["time"] if "time" in names else None
    except (ValueError, OSError) as exc:
        raise FormatError(f"{path}: not a readable .npz archive: {exc}") from exc
    if time is not None and fps is not None:
        raise OptionError(f"{path}: has a 'time' array; do not also give fps=")
    return _array_frames(arr, path, "npz", fps=fps, time=time, start_time=start_time,
                         scale=scale, offset=offset, unit=unit, plausible_range=plausible_range)


@register("thermal", "tiff", extensions=(".tif", ".tiff"),
          sniff=lambda h, p: h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"))
def read_tiff(path: str | os.PathLike, *, scale: float | None = None,
              offset: float | None = None, unit: str | None = None, fps: float | None = None,
              time=None, start_time=None,
              plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE) -> xr.DataArray:
    """Multi-page 16-bit TIFF; ``T = value * scale + offset`` in ``unit`` (all three required)."""
    missing = [n for n, v in (("scale", scale), ("offset", offset), ("unit", unit)) if v is None]
    if missing:
        raise OptionError(f"{path}: a TIFF stores counts, not temperatures; give {missing} "
                          "(T = value * scale + offset, unit one of degC, K, degF). They are "
                          "never guessed")
    import tifffile

    try:
        arr = tifffile.imread(str(path))
    except Exception as exc:
        raise FormatError(f"{path}: not a readable TIFF: {exc}") from exc
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return _array_frames(arr, path, "tiff", fps=fps, time=time, start_time=start_time,
                         scale=scale, offset=offset, unit=unit, plausible_range=plausible_range)


def _sniff_flir_jpeg(head: bytes, path: Path) -> bool:
    return head[:3] == b"\xff\xd8\xff" and b"FLIR\x00" in head


# flyr's metadata keys that callers may override (reflected/atmospheric temperatures in degC
# on our side, kelvin in flyr's).
_FLYR_KELVIN = {"reflected_temperature": "reflected_apparent_temperature",
                "atmospheric_temperature": "atmospheric_temperature",
                "ir_window_temperature": "ir_window_temperature"}
_FLYR_PLAIN = ("emissivity", "object_distance", "relative_humidity", "ir_window_transmission")


@register("thermal", "flir-jpeg", extensions=(".jpg", ".jpeg"), sniff=_sniff_flir_jpeg,
          aliases=("flir_jpeg",))
def read_flir_jpeg(path: str | os.PathLike, *, emissivity: float | None = None,
                   reflected_temperature: float | None = None,
                   object_distance: float | None = None,
                   atmospheric_temperature: float | None = None,
                   relative_humidity: float | None = None,
                   plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE) -> xr.DataArray:
    """FLIR radiometric JPEG through flyr (one frame); overrides in degC, m, 0-1."""
    import flyr

    try:
        thermogram = flyr.unpack(str(path))
        md = dict(thermogram.metadata)
    except Exception as exc:
        raise FormatError(f"{path}: no FLIR radiometric data in this JPEG (flyr: "
                          f"{type(exc).__name__}: {exc}); a plain JPEG or a non-radiometric "
                          "FLIR export has no temperatures") from exc
    over: dict[str, float] = {}
    for ours, val in (("reflected_temperature", reflected_temperature),
                      ("atmospheric_temperature", atmospheric_temperature)):
        if val is not None:
            over[_FLYR_KELVIN[ours]] = float(val) + 273.15
    for ours, val in (("emissivity", emissivity), ("object_distance", object_distance),
                      ("relative_humidity", relative_humidity)):
        if val is not None:
            over[ours] = float(val)
    if over:
        thermogram = thermogram.adjust_metadata(**over)
        md.update(over)
    try:
        celsius = np.asarray(thermogram.celsius, dtype=np.float32)
    except Exception as exc:
        raise FormatError(f"{path}: FLIR radiometric data could not be converted: {exc}") from exc
    start = None
    try:
        cam = thermogram.camera_metadata.data
        if cam.get("date_time"):
            start = _dt.datetime.strptime(cam["date_time"], "%Y:%m:%d %H:%M:%S")
        md["camera_model"] = cam.get("model")
    except Exception:  # EXIF is optional; the thermal data are what matters
        pass
    attrs = {k: v for k, v in md.items() if isinstance(v, (int, float, str, np.generic))}
    # temperatures in degC in our attrs, like every other reader
    for key in ("reflected_apparent_temperature", "atmospheric_temperature",
                "ir_window_temperature"):
        if key in attrs:
            attrs[key.replace("_apparent", "") + "_degC"] = float(attrs.pop(key)) - 273.15
    da = frames_dataarray(celsius, [0.0], start_time=start, source=path, fmt="flir-jpeg",
                          attrs=attrs)
    return _finish(da, plausible_range)


# --- FLIR Tools-style CSV matrices ------------------------------------------------------------

_NUM = r"[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?"


def _csv_rows(text: str) -> tuple[list[str], str, bool]:
    lines = text.splitlines()
    sample = [ln for ln in lines if ln.strip()][:50]
    delim = max((";", "\t", ","), key=lambda d: sum(ln.count(d) for ln in sample))
    # with ';' or tab as separator, a ',' inside numbers is the decimal comma (German exports)
    decimal_comma = delim != "," and any(re.search(r"\d,\d", ln) for ln in sample)
    return lines, delim, decimal_comma


@register("thermal", "flir-csv", extensions=(".csv",), aliases=("csv",))
def read_flir_csv(path: str | os.PathLike, *, unit: str | None = None, fps: float | None = None,
                  time=None, start_time=None,
                  plausible_range: tuple[float, float] | None = PLAUSIBLE_RANGE) -> xr.DataArray:
    """FLIR Tools / ResearchIR CSV temperature matrix (one or several frames).

    Header lines (``File:``, ``Frame 1`` ...) are skipped; each block of numeric rows of equal
    width is a frame. A trailing empty column (lines ending in the separator) is ignored. The
    unit is taken from the header (``°C``/``°F``/``K``) or ``unit=``; with neither, degC, the
    FLIR Tools default, is assumed and logged.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    lines, delim, dec_comma = _csv_rows(text)
    num_re = re.compile(rf"^\s*{_NUM}\s*$")
    numeric_line = re.compile(r"[0-9eE+\-.,;\t ]+")
    blocks: list[list[list[float]]] = []
    header: list[str] = []
    current: list[list[float]] = []
    for lineno, ln in enumerate(lines, 1):
        body = ln.strip().rstrip(delim).rstrip()
        vals = None
        # fast path: a line of only number characters is parsed in C; cell-by-cell otherwise
        if body and numeric_line.fullmatch(body):
            txt = body.replace(",", ".") if dec_comma else body
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                arr = np.fromstring(txt, sep=delim)
            if arr.size == body.count(delim) + 1 and arr.size > 1:
                vals = arr
            else:
                cells = [c.strip() for c in body.split(delim)]
                if len(cells) > 1 and all(num_re.match(c) for c in cells):
                    vals = np.array([float(c.replace(",", ".")) for c in cells])
        if vals is not None:
            if current and len(vals) != len(current[0]):
                raise FormatError(f"{path}:{lineno}: {len(vals)} values; the rows above have "
                                  f"{len(current[0])}")
            current.append(vals)
        else:
            if current:
                blocks.append(current)
                current = []
            if ln.strip():
                header.append(ln)
    if current:
        blocks.append(current)
    if not blocks:
        raise FormatError(f"{path}: no temperature matrix found (no block of numeric rows "
                          f"separated by {delim!r})")
    shapes = {(len(b), len(b[0])) for b in blocks}
    if len(shapes) != 1:
        raise FormatError(f"{path}: frames of different sizes {sorted(shapes)}")
    if unit is None:
        head = " ".join(header)
        if "°F" in head or "Fahrenheit" in head:
            unit = "degF"
        elif re.search(r"\bKelvin\b|\[K\]|\(K\)", head):
            unit = "K"
        else:
            if not ("°C" in head or "Celsius" in head):
                logger.info("%s: no unit in the CSV header; assuming degC", path)
            unit = "degC"
    arr = np.asarray(blocks, dtype=np.float64)
    data = _to_celsius(arr, unit, path)
    t = _time_axis(data.shape[0], fps, time, path)
    da = frames_dataarray(data, t, start_time=start_time, source=path, fmt="flir-csv",
                          attrs={"csv_header": "\n".join(header[:20])})
    return _finish(da, plausible_range)


def warn_damaged(path, frames: Sequence[int], reasons: Sequence[str] = ()) -> None:
    """Warn that ``frames`` of ``path`` were damaged and skipped (never silently dropped)."""
    if not frames:
        return
    detail = "; ".join(f"frame {f}: {r}" for f, r in zip(frames, reasons, strict=False))
    warnings.warn(DamagedFrameWarning(
        f"{path}: {len(frames)} damaged frame(s) skipped: {list(frames)}"
        + (f" ({detail})" if detail else "")), stacklevel=3)
