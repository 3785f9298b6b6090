"""The zarr frame store: frames (and masks beside them) on disk, written and opened lazily.

On disk (:func:`write_frames`) the frames are a zarr (format 3) store, uint16 with CF encoding
``T = stored * scale_factor + add_offset``. The defaults ``scale_factor=0.01``,
``add_offset=-50.0`` cover -50.00 .. 605.34 degC in steps of 0.01 degC; the stored value 65535 is
the ``_FillValue`` and decodes to NaN. **Quantisation bound:** a value read back differs from the
value written by at most ``scale_factor / 2`` (0.005 degC with the defaults) plus float32
rounding (< 1e-4 degC below 1000 degC) -- see :func:`quantisation_bound`. Values outside the
encodable range raise :class:`~irtrepro.io.frames.FrameError` (they are never clipped or
wrapped). Segmentation masks (:data:`~irtrepro.io.frames.MASK_CLASSES`) live beside the frames
in the same store, on the same grid (:func:`write_masks`).

Reader registered here: kind ``thermal`` format ``zarr`` (:func:`read_zarr`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger, progress_bar
from irtrepro.errors import FormatError, OptionError, check_option
from irtrepro.io.frames import (
    ADD_OFFSET,
    FILL_VALUE,
    MASK_CLASSES,
    SCALE_FACTOR,
    DamagedFrameWarning,
    FrameError,
    FrameTimeError,
    _jsonable,
    check_frame_times,
    check_frames,
)
from irtrepro.io.registry import register

__all__ = ["open_frame_store", "open_frames", "quantisation_bound", "read_zarr", "write_frames",
           "write_masks"]



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
    elif hasattr(mask, "shape") and hasattr(mask, "dtype"):
        data = mask  # numpy or dask: a lazy template of a whole session must stay lazy
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
    # the common case, integer labels 0..k, in two reductions instead of a set lookup
    if (arr.dtype.kind in "ui" and arr.size and np.array_equal(allowed, np.arange(len(allowed)))
            and arr.min() >= 0 and arr.max() < len(allowed)):
        return arr.astype(np.uint8, copy=False)
    bad = ~np.isin(arr, allowed)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
        raise FrameError(f"{path}: mask {name!r}, frame {first_frame + i}: values "
                         f"{sorted(set(np.unique(arr[i][bad[i]]).tolist()))[:5]} not in "
                         f"{allowed.tolist()}", path, first_frame + i)
    return arr.astype(np.uint8)


@contextlib.contextmanager
def _resumable(path: Path, ident: str, source: Mapping[str, str | None] | None = None):
    """Like :func:`atomic_path` for a folder, but an interrupted write is kept to resume.

    Yields ``(tmp, state)``: ``tmp`` is ``.<name>.resume`` beside ``path``; ``state`` is
    ``{"ident", "source", "source_sha256", "next", "found"}`` from its ``progress.json`` when
    that names the same ``ident`` (same frames, same encoding) and the same ``source`` values
    (:func:`read_progress`), else fresh (and ``tmp`` emptied). On success ``progress.json`` is
    removed and ``tmp`` renamed onto ``path``; on an exception ``tmp`` is left for the next
    call.
    """
    tmp = path.parent / f".{path.name}.resume"
    meta = {"source": None, "source_sha256": None, **(source or {})}
    state = {"ident": ident, **meta, "next": 0, "found": {}}
    old = read_progress(tmp)
    if old.get("ident") == ident and all(old.get(k) == v for k, v in meta.items()):
        state = old
    if state["next"] == 0 and tmp.exists():
        shutil.rmtree(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    yield tmp, state
    (tmp / "progress.json").unlink(missing_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)


@contextlib.contextmanager
def _atomic_store(path: Path):
    """:func:`atomic_path` for a store, yielding ``(tmp, state)`` as :func:`_resumable`."""
    with atomic_path(path, is_dir=True) as tmp:
        yield tmp, {"next": 0, "found": {}}


def read_progress(resume_dir: str | os.PathLike) -> dict:
    """The ``progress.json`` of a ``.<name>.resume`` folder; ``{}`` if absent or unreadable.

    Keys: ``ident`` (the frames and encoding), ``source`` (the recording's resolved path, or
    ``None``), ``source_sha256`` (its sha256 when the caller gave one, else ``None``), ``next``
    (first frame not yet written) and ``found`` (frames found damaged so far).
    """
    prog = Path(resume_dir) / "progress.json"
    try:
        return json.loads(prog.read_text())
    except (OSError, ValueError):  # absent, or cut while writing it: start again
        return {}


def _source_record(attrs: Mapping[str, Any]) -> dict[str, str | None]:
    """Resolved ``source`` path and ``source_sha256`` of a recording's attrs, for progress.json."""
    src, sha = attrs.get("source"), attrs.get("source_sha256")
    if src and Path(str(src)).exists():
        src = Path(str(src)).resolve()
    return {"source": str(src) if src else None, "source_sha256": str(sha) if sha else None}


def _save_progress(tmp: Path, state: dict) -> None:
    part = tmp / "progress.json.part"
    part.write_text(json.dumps(state))
    os.replace(part, tmp / "progress.json")


def write_frames(path: str | os.PathLike, frames: xr.DataArray, *,
                 masks: Mapping[str, xr.DataArray | np.ndarray] | None = None,
                 scale_factor: float = SCALE_FACTOR, add_offset: float = ADD_OFFSET,
                 chunk_frames: int = 64, progress: bool | None = None,
                 resume: bool = False) -> Path:
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
    resume : bool
        Keep an interrupted write (in ``.<name>.resume`` beside ``path``, with the chunks
        done) and continue it on the next call with the same frames and encoding, instead of
        starting again. The store still only appears under ``path`` once complete.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FrameError
        Wrong dims, inf pixels, values outside the encodable range (naming the frame), masks
        of the wrong shape or with unknown labels. No partial store is left behind.
    FrameTimeError
        A frame's time is not after the previous frame's (the frames hold more than one
        recording); select one segment first (:func:`~irtrepro.io.frames.time_segments`).
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
    # a store is one recording on one clock: times that go back or repeat (a file read with
    # check_time=False, several recordings joined) are refused before anything is written
    fi = frames["frame_index"].values if "frame_index" in frames.coords else None
    try:
        check_frame_times(time, source=source, frame_index=fi)
    except FrameTimeError as exc:
        raise FrameTimeError(f"{exc}; nothing written to {path}", exc.path, exc.frame) from None
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
    if resume:
        h = hashlib.sha256(time.tobytes())
        h.update(json.dumps([n, ny, nx, chunk_frames, scale_factor, add_offset, sorted(mask_das),
                             source]).encode())
        ctx = _resumable(path, h.hexdigest(), _source_record(frames.attrs))
    else:
        ctx = _atomic_store(path)
    with ctx as (tmp, state):
        if state["next"] == 0:
            ds_tpl.to_zarr(tmp, mode="w", encoding=encoding, compute=False,
                           consolidated=False, zarr_format=3)
            if resume:  # the folder names its source from the start (frame_store's clean-up)
                _save_progress(tmp, state)
        import zarr

        arrays = {name: zarr.open_array(str(tmp / name), mode="r+")
                  for name in ("frames", *mask_das)}
        starts = range(state["next"], n, chunk_frames)
        caught: list[warnings.WarningMessage] = []
        # frames found damaged while decoding (lazy readers), also in a resumed write's part
        found: dict[int, str] = {int(k): v for k, v in state["found"].items()}
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
            if resume:
                state.update(next=sl.stop, found={str(k): v for k, v in found.items()})
                _save_progress(tmp, state)
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
