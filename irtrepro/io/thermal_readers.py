"""The simple thermal readers: numpy arrays, 16-bit TIFF stacks, FLIR radiometric JPEG and CSV.

Readers registered here (kind ``thermal``): ``npy``, ``npz``, ``tiff`` (16-bit multi-page;
scale, offset and unit must be given), ``flir-jpeg`` (through flyr) and ``flir-csv`` (FLIR
Tools-style temperature matrices). Each returns the frame model of :mod:`irtrepro.io.frames`.
The zarr frame store's reader is in :mod:`irtrepro.io.zarr_store`; the vendor sequence readers
in :mod:`irtrepro.io.flir` and :mod:`irtrepro.io.infratec`.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from irtrepro._logging import logger
from irtrepro.errors import FormatError, OptionError
from irtrepro.io.frames import (
    PLAUSIBLE_RANGE,
    _time_axis,
    _to_celsius,
    frames_dataarray,
)
from irtrepro.io.registry import register
from irtrepro.io.zarr_store import _finish

__all__ = ["read_flir_csv", "read_flir_jpeg", "read_npy", "read_npz", "read_tiff"]


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
