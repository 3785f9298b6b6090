"""Batched, streaming inference: frames -> roi / vessels masks, written beside the frames."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from irtrepro._logging import logger, progress_bar
from irtrepro._threads import torch_threads
from irtrepro.errors import ModelError, OptionError
from irtrepro.vision.models import Checkpoint, check_checkpoint, normalise
from irtrepro.vision.precision import (
    DEFAULT_PRECISION,
    inference_network,
    network_dtype,
    resolve_precision,
)


def device(prefer: str | None = None):
    """CUDA when present (unless ``prefer='cpu'``), else CPU."""
    import torch

    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(prefer or "cuda")


def forward(model, ck: Checkpoint, x):
    """Network logits (float32) at the input's full resolution for a normalised (B, H, W)
    tensor; the input is cast to the network's dtype (:mod:`irtrepro.vision.precision`)."""
    import torch
    import torch.nn.functional as F

    b, h, w = x.shape
    # channels-last convolutions were ~1.3x faster on this CPU (oneDNN)
    x = x[:, None].float().contiguous(memory_format=torch.channels_last)
    if ck.downsample > 1:
        x = F.avg_pool2d(x, ck.downsample, ceil_mode=True)
    up = ck.upsample
    if up > 1:
        x = F.interpolate(x, scale_factor=up, mode="bilinear", align_corners=False)
    m = 2 ** ck.encoder_depth
    hh, ww = x.shape[-2:]
    ph, pw = (-hh) % m, (-ww) % m
    if ph or pw:  # U-Net needs sizes divisible by 2**depth; replicate the border
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    # resampling stays in float32 on both sides of the network, whatever its precision
    y = model(x.to(network_dtype(model)))[..., :hh, :ww].float()
    if ck.downsample > 1:
        y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    elif up > 1:
        y = F.avg_pool2d(y, up)
    return y


#: Pixels per forward pass of a network: 32 frames of 160x120. Bounds the activation memory
#: (which dominates a segmentation's peak) at any camera resolution; at 160x120 it leaves the
#: batch of 32 frames as it was.
MAX_BATCH_PIXELS = 32 * 160 * 120


def effective_batch(batch_size: int, frame_shape: tuple[int, int],
                    max_pixels: int | None = MAX_BATCH_PIXELS) -> int:
    """Frames per forward pass: ``batch_size``, lowered so a batch holds <= ``max_pixels`` pixels.

    Parameters
    ----------
    batch_size : int
        Upper bound in frames (>= 1).
    frame_shape : (int, int)
        Frame height and width in pixels.
    max_pixels : int or None
        Pixel budget of one batch (``None``: no cap). At least one frame per batch.

    Returns
    -------
    int
        At least 1.
    """
    if int(batch_size) < 1 or (max_pixels is not None and int(max_pixels) < 1):
        raise OptionError(f"batch_size={batch_size!r}, max_pixels={max_pixels!r}; expected "
                          "positive integers")
    if max_pixels is None:
        return int(batch_size)
    per = max(1, int(frame_shape[0]) * int(frame_shape[1]))
    return max(1, min(int(batch_size), int(max_pixels) // per))


def predict_labels(ck: Checkpoint, frames: np.ndarray, *, model=None, batch_size: int = 32,
                   dev=None, max_pixels: int | None = MAX_BATCH_PIXELS,
                   precision: str = DEFAULT_PRECISION) -> np.ndarray:
    """Label image (frame, y, x) uint8 of one model for frames in degC.

    Batches hold ``batch_size`` frames at most and ``max_pixels`` pixels at most
    (:func:`effective_batch`), counted from the first frame. ``precision`` applies when the
    network is built here (``model=None``; :func:`irtrepro.vision.precision.inference_network`).
    """
    import torch

    dev = dev or device()
    if model is None:
        model = inference_network(ck, dev, precision)
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ModelError(f"frames must be (frame, y, x), got shape {frames.shape}")
    batch_size = effective_batch(batch_size, frames.shape[1:], max_pixels)
    out = np.empty(frames.shape, np.uint8)
    with torch.inference_mode():
        for a in range(0, len(frames), batch_size):
            x = torch.from_numpy(normalise(frames[a:a + batch_size], ck.normalisation)).to(dev)
            out[a:a + batch_size] = forward(model, ck, x).argmax(1).to(torch.uint8).cpu().numpy()
    return out


def _calf_boxes(roi: np.ndarray, margin: int) -> tuple[list, tuple[int, int]]:
    """Boxes (frame, side, y0, x0) of one common size around each predicted calf."""
    n, h, w = roi.shape
    found, size = [], [0, 0]
    for side in (1, 2):
        m = roi == side
        rows, cols = m.any(2), m.any(1)
        for k in np.flatnonzero(rows.any(1)):
            r, c = np.flatnonzero(rows[k]), np.flatnonzero(cols[k])
            found.append((k, side, r[0], r[-1], c[0], c[-1]))
            size = [max(size[0], r[-1] - r[0] + 1), max(size[1], c[-1] - c[0] + 1)]
    bh, bw = min(h, size[0] + 2 * margin), min(w, size[1] + 2 * margin)
    boxes = []
    for k, side, r0, r1, c0, c1 in found:
        y0 = int(np.clip((r0 + r1 + 1) // 2 - bh // 2, 0, h - bh))
        x0 = int(np.clip((c0 + c1 + 1) // 2 - bw // 2, 0, w - bw))
        boxes.append((k, side, y0, x0))
    return boxes, (bh, bw)


def predict_masks(frames: np.ndarray, roi_ck: Checkpoint, vessel_ck: Checkpoint, *,
                  batch_size: int = 32, models=None, dev=None, margin: int = 4,
                  max_pixels: int | None = MAX_BATCH_PIXELS,
                  precision: str = DEFAULT_PRECISION) -> tuple[np.ndarray, np.ndarray]:
    """ROI and vessel masks of frames (degC); vessels are kept only inside the predicted calves.

    The vessel model sees one box per predicted calf (the calf's bounding box plus ``margin``
    pixels of context, one common size per batch), not the whole frame: the calves cover
    ~15 % of a frame, so this saves most of the vessel model's time. Normalisation still uses
    the whole frame, as in :func:`predict_labels`, so the result equals whole-frame inference
    up to the network's behaviour at the box border (measured: 99.7 % of the calf pixels identical).

    Batches are ``batch_size`` frames at most and ``max_pixels`` pixels at most
    (:func:`effective_batch`), counted from the first frame; the box size is shared within a
    batch, so the masks of a frame depend on which frames share its batch. Memory is that of
    the frames and masks plus one batch of activations.

    ``precision`` (``"float32"``, ``"bfloat16"`` or ``"auto"``) sets the networks' precision
    when they are built here (``models=None``; :mod:`irtrepro.vision.precision`); built
    networks (``models``) run at their own.

    Returns
    -------
    roi, vessels : ndarray (frame, y, x) uint8
    """
    import torch

    check_checkpoint(roi_ck, "roi")
    check_checkpoint(vessel_ck, "vessels")
    dev = dev or device()
    m_roi, m_ves = models if models is not None else (
        inference_network(roi_ck, dev, precision), inference_network(vessel_ck, dev, precision))
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ModelError(f"frames must be (frame, y, x), got shape {frames.shape}")
    batch_size = effective_batch(batch_size, frames.shape[1:], max_pixels)
    # one normalisation per batch serves both networks when they were trained with the same
    same_norm = roi_ck.normalisation == vessel_ck.normalisation
    roi = np.empty(frames.shape, np.uint8)
    ves = np.zeros(frames.shape, np.uint8)
    with torch.inference_mode():
        for a in range(0, len(frames), batch_size):
            block = frames[a:a + batch_size]
            x = normalise(block, roi_ck.normalisation)
            r = forward(m_roi, roi_ck, torch.from_numpy(x).to(dev)).argmax(1)
            r = roi[a:a + batch_size] = r.to(torch.uint8).cpu().numpy()
            boxes, (bh, bw) = _calf_boxes(r, margin)
            if not boxes:
                continue
            if not same_norm:
                x = normalise(block, vessel_ck.normalisation)
            crops = np.stack([x[k, y0:y0 + bh, x0:x0 + bw] for k, _, y0, x0 in boxes])
            lab = forward(m_ves, vessel_ck, torch.from_numpy(crops).to(dev)).argmax(1)
            lab = lab.to(torch.uint8).cpu().numpy()
            for (k, side, y0, x0), lb in zip(boxes, lab, strict=True):
                win = ves[a + k, y0:y0 + bh, x0:x0 + bw]
                mine = r[k, y0:y0 + bh, x0:x0 + bw] == side
                win[mine] = lb[mine]
    return roi, ves


def _fingerprint(path: Path, models, settings: dict) -> str:
    """Identity of a segmentation run: the frames on disk, the networks' weights, the settings.

    The frames are identified by their array metadata and the inode and mtime of its file: the
    frame store is only ever written whole, into a new folder renamed into place, so a
    rewritten store has a new metadata file.
    """
    import torch

    h = hashlib.sha256()
    for meta in (path / "frames" / "zarr.json", path / "frames" / ".zarray"):
        if meta.is_file():
            st = meta.stat()
            h.update(meta.read_bytes())
            h.update(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode())
    for model in models:
        for k, v in model.state_dict().items():
            h.update(k.encode())
            # the raw bytes of every tensor (numpy has no bfloat16 to go through)
            h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps({**settings, "torch": torch.__version__}, sort_keys=True).encode())
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _open_part(part: Path, fingerprint: str, shape, chunk: int, zarr_format: int, source: Path,
               resume: bool) -> tuple[dict, set]:
    """The half-done mask store of a run: its zarr arrays and the chunk starts already written.

    A part folder of another run (other frames, weights or settings), or any part folder when
    ``resume`` is false, is discarded and started afresh.
    """
    import dask.array as dsa
    import xarray as xr
    import zarr

    from irtrepro.io.zarr_store import _check_mask

    state_file, store = part / "state.json", part / "store.zarr"
    done: set = set()
    # a crash while the finished masks were being renamed into place leaves one missing
    complete = all((store / name).is_dir() for name in ("roi", "vessels"))
    if resume and state_file.is_file() and complete:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("fingerprint") == fingerprint:
            done = {int(s) for s in state.get("done", [])}
    if not done:
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        n, ny, nx = shape
        tpl, enc = {}, {}
        for name in ("roi", "vessels"):
            z = dsa.zeros(shape, dtype=np.uint8, chunks=(chunk, ny, nx))
            tpl[name] = (("frame", "y", "x"), z, _check_mask(name, z, shape, source).attrs)
            enc[name] = {"dtype": "uint8", "chunks": (chunk, ny, nx), "_FillValue": None}
        xr.Dataset(tpl).to_zarr(store, mode="w", compute=False, consolidated=False,
                                zarr_format=zarr_format, encoding=enc)
        _write_json(state_file, {"fingerprint": fingerprint, "done": []})
    arrays = {name: zarr.open_array(str(store / name), mode="r+") for name in ("roi", "vessels")}
    return arrays, done


def segment_store(path: str | os.PathLike, roi_ck: Checkpoint | str | os.PathLike,
                  vessel_ck: Checkpoint | str | os.PathLike, *, batch_size: int = 32,
                  threads: int | None = None, progress: bool | None = None,
                  chunk: int | None = None, resume: bool = True, margin: int = 4,
                  max_pixels: int | None = MAX_BATCH_PIXELS, dev=None,
                  scheduler=None, provenance: dict[str, str] | None = None,
                  precision: str = DEFAULT_PRECISION) -> Path:
    """Segment every frame of a zarr frame store, chunk by chunk, and write ``roi``/``vessels``.

    Frames are read, segmented (:func:`predict_masks`: calf box first, then the vessel model on
    each box) and their masks written ``chunk`` frames at a time into a half-done mask store
    beside ``path`` (``.NAME.segment.part``), so memory is bounded by one chunk of frames and
    masks plus one batch of activations, whatever the session's length. When every chunk is
    written the masks are moved into the store, each by one rename (a reader sees the old mask
    or the new one, never a half-written one).

    Batches are aligned to the start of the recording (frames ``k*b .. (k+1)*b``), so the masks
    are those of :func:`predict_masks` on the whole recording in one call, whatever ``chunk``.

    Parameters
    ----------
    path : path
        A store written by :func:`irtrepro.io.thermal.write_frames`.
    roi_ck, vessel_ck : Checkpoint or path
        The calf (``roi``) and vessel models.
    batch_size : int
        Frames per forward pass at most; see ``max_pixels``.
    threads : int, optional
        Torch threads (:func:`irtrepro._threads.torch_threads`).
    progress : bool or None
        Progress bar (``None``: when the irtrepro logger shows INFO).
    chunk : int, optional
        Frames read, segmented and written per step. Rounded up to a multiple of both the
        batch and the store's zarr chunk length (so every write covers whole zarr chunks);
        default: the smallest such multiple.
    resume : bool
        Keep the chunks a previous interrupted run wrote, when it segmented the same frames
        (store metadata file, inode and mtime) with the same weights and settings; otherwise
        start afresh.
    margin : int
        Context pixels around each calf box (:func:`predict_masks`).
    max_pixels : int or None
        Pixels per forward pass at most (:func:`effective_batch`); bounds the activation memory
        at camera resolution. ``None``: ``batch_size`` frames whatever their size.
    dev : torch.device, optional
        Default: :func:`device` (CUDA when present; on a cluster, each worker's own).
    scheduler : None, str, Client or cluster
        ``None``: segment here. Otherwise the chunks are segmented on dask.distributed
        workers (:func:`irtrepro.distributed.open_client`: ``"local"``, ``"local:N"``, an
        address, a scheduler file, a Client or a cluster object). Each worker reads its chunk
        from the store and writes its masks into the half-done mask store itself, so the store
        must be on storage every worker sees; the two networks travel to each worker once and
        are built there once. The chunks are the serial run's, so the masks are the same
        (on the same kind of device: ``dev="cpu"`` forces it on every worker). Torch runs
        ``threads`` threads per task there (default 1). A worker that dies loses only its
        chunk: the scheduler runs it again elsewhere, and a rerun after the whole run stopped
        resumes from the chunks recorded as done.
    provenance : dict of str, optional
        Attributes written on both mask arrays before they are renamed into the store, e.g.
        ``{"model": path, "model_sha256": hex}`` (:func:`model_provenance`); read back by
        :func:`mask_provenance`. A mask written without them carries none.
    precision : {"auto", "float32", "bfloat16"}
        Numeric precision of the networks (:mod:`irtrepro.vision.precision`; ``"auto"``:
        bfloat16 where the device computes it natively). On a cluster, "auto" is decided on
        each worker's device.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Resuming: ``state.json`` in the part folder lists the chunks whose masks are on disk; it
    is rewritten (atomically) after each one. A chunk being written when the run stopped is
    not listed, and is segmented again.
    """
    import torch

    from irtrepro.distributed import parse_scheduler
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.io.zarr_store import _check_mask_values

    path = Path(path)
    distributed = parse_scheduler(scheduler)[0] != "serial"
    if not distributed:
        torch_threads(threads)
    if not isinstance(roi_ck, Checkpoint):
        roi_ck = Checkpoint.load(roi_ck, task="roi")
    if not isinstance(vessel_ck, Checkpoint):
        vessel_ck = Checkpoint.load(vessel_ck, task="vessels")
    check_checkpoint(roi_ck, "roi")
    check_checkpoint(vessel_ck, "vessels")
    worker_dev = None if dev is None else str(dev)
    # on a cluster the networks are built here only for the run's fingerprint (on the CPU)
    dev = torch.device("cpu") if distributed else dev or device()
    resolved = resolve_precision(precision, dev)  # a bad name fails before anything is written
    models = tuple(inference_network(ck, dev, "float32" if distributed else precision)
                   for ck in (roi_ck, vessel_ck))
    ds = open_frame_store(path)
    frames = ds["frames"].data
    n, ny, nx = frames.shape
    # the dask chunks are the zarr chunks (opened with chunks={}); the encoding is lost by astype
    zchunk = max(1, min(int(frames.chunks[0][0]) if n else 1, n))
    b = effective_batch(batch_size, (ny, nx), max_pixels)
    if chunk is not None and int(chunk) < 1:
        raise OptionError(f"{path}: chunk={chunk!r}; expected a positive number of frames")
    unit = math.lcm(b, zchunk)
    step = unit * max(1, -(-int(chunk) // unit)) if chunk is not None else unit
    zarr_format = 3 if (path / "zarr.json").is_file() else 2
    part = path.parent / f".{path.name}.segment.part"
    # a cluster's workers pick their own device unless told: not the same run as a serial one
    run_dev = (worker_dev or "each worker's default") if distributed else str(dev)
    fp = _fingerprint(path, models, {"batch": b, "step": step, "zchunk": zchunk, "shape": [n, ny, nx],
                                     "margin": int(margin), "device": run_dev,
                                     "precision": precision if distributed else resolved})
    arrays, done = _open_part(part, fp, (n, ny, nx), zchunk, zarr_format, path, resume)
    if done:
        logger.info("%s: resuming, %d of %d chunks already segmented", path, len(done),
                    -(-n // step))
    t0 = time.perf_counter()
    t_read = t_seg = t_write = 0.0
    starts = [s for s in range(0, n, step) if s not in done]
    if distributed:
        _segment_on_cluster(scheduler, path, part, fp, done, starts, step, (roi_ck, vessel_ck),
                            b, margin, worker_dev, threads, progress, precision)
        starts_run = starts
        starts = []
    for s in progress_bar(starts, progress, desc=f"segmenting {path.name}", total=len(starts)):
        ta = time.perf_counter()
        block = np.asarray(frames[s:s + step], dtype=np.float32)
        tb = time.perf_counter()
        r, v = _segment_block(block, path, s, (roi_ck, vessel_ck), b, models, dev, margin)
        del block
        tc = time.perf_counter()
        for name, m in (("roi", r), ("vessels", v)):
            arrays[name][s:s + len(m)] = _check_mask_values(name, m, path, s)
        done.add(s)
        _write_json(part / "state.json", {"fingerprint": fp, "done": sorted(done)})
        t_read, t_seg, t_write = t_read + tb - ta, t_seg + tc - tb, t_write + time.perf_counter() - tc
    for name in ("roi", "vessels"):  # as write_masks: old mask aside, new one renamed in
        if provenance:  # before the rename: a reader never sees masks without their model
            arrays[name].attrs.update({k: str(v) for k, v in provenance.items()})
        target = path / name
        if target.exists():
            os.replace(target, part / f"old-{name}")
        os.replace(part / "store.zarr" / name, target)
    shutil.rmtree(part, ignore_errors=True)
    if (path / ".zmetadata").is_file():  # a consolidated v2 store must list the new arrays
        import zarr

        zarr.consolidate_metadata(str(path))
    if distributed:
        logger.info("%s: %d frames segmented on the cluster in %.1f s", path,
                    sum(min(step, n - s) for s in starts_run), time.perf_counter() - t0)
    else:
        logger.info("%s: %d frames segmented in %.1f s (read %.1f s, networks %.1f s, write "
                    "%.1f s)", path, sum(min(step, n - s) for s in starts),
                    time.perf_counter() - t0, t_read, t_seg, t_write)
    return path


def model_provenance(model: str | os.PathLike) -> dict[str, str]:
    """``{"model": path as given, "model_sha256": sha256 of the file}`` of a model file."""
    from irtrepro.manifest import sha256_path

    return {"model": str(model), "model_sha256": sha256_path(model)}


def mask_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The model that wrote a store's ``roi`` and ``vessels`` masks, as :func:`segment_store`
    recorded it: ``{"model": ..., "model_sha256": ...}``.

    Empty when either mask is missing or carries no record, or when the two masks name
    different models (one of them was rewritten since): then the masks' model is unknown.
    """
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(path)
    found = []
    for name in ("roi", "vessels"):
        if name not in ds:
            return {}
        attrs = ds[name].attrs
        found.append({k: str(attrs[k]) for k in ("model", "model_sha256") if k in attrs})
    if not found[0].get("model_sha256") or found[0] != found[1]:
        return {}
    return found[0]


def _segment_block(block: np.ndarray, path, s: int, cks, batch: int, models, dev,
                   margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of frames ``s..`` of a store (one work unit, serial or on a worker)."""
    bad = ~np.isfinite(block.reshape(len(block), -1)).all(1)
    if bad.any():
        logger.warning("%s: frame %d has NaN/inf pixels; they are segmented as 0 degC after "
                       "normalisation", path, s + int(np.argmax(bad)))
    return predict_masks(block, *cks, batch_size=batch, models=models, dev=dev, margin=margin,
                         max_pixels=None)


def _segment_chunk(path: str, part_store: str, s: int, step: int, cks, key: str, batch: int,
                   margin: int, dev_name: str | None, threads: int | None,
                   precision: str = DEFAULT_PRECISION) -> int:
    """Segment frames ``s:s+step`` of a store and write their masks (runs on a worker).

    The networks are built once per worker process and weights (``key``); the masks go into
    the half-done mask store directly, one write per array covering whole zarr chunks, so two
    workers never write the same zarr chunk.
    """
    import zarr

    from irtrepro.distributed import worker_cache
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.io.zarr_store import _check_mask_values

    torch_threads(threads if threads is not None else 1)
    dev = device(dev_name)
    roi_ck, vessel_ck = cks
    models = worker_cache(f"segment:{key}:{dev}:{precision}", lambda: tuple(
        inference_network(ck, dev, precision) for ck in (roi_ck, vessel_ck)))
    block = np.asarray(open_frame_store(path)["frames"].data[s:s + step], dtype=np.float32)
    r, v = _segment_block(block, path, s, cks, batch, models, dev, margin)
    del block
    for name, m in (("roi", r), ("vessels", v)):
        arr = zarr.open_array(str(Path(part_store) / name), mode="r+")
        arr[s:s + len(m)] = _check_mask_values(name, m, path, s)
    return s


def _segment_on_cluster(scheduler, path: Path, part: Path, fp: str, done: set, starts: list,
                        step: int, cks, batch: int, margin: int, dev_name: str | None,
                        threads: int | None, progress,
                        precision: str = DEFAULT_PRECISION) -> None:
    """Run :func:`_segment_chunk` for every start on the cluster; record each one done."""
    from distributed import as_completed

    from irtrepro.distributed import open_client

    if not starts:
        return
    with open_client(scheduler) as client:
        # the checkpoints travel once per worker, not once per chunk
        cks_f = client.scatter(list(cks), broadcast=True)
        futs = [client.submit(_segment_chunk, str(path), str(part / "store.zarr"), s, step,
                              cks_f, fp, batch, int(margin), dev_name, threads, precision,
                              pure=False)
                for s in starts]
        try:
            for fut in progress_bar(as_completed(futs), progress,
                                    desc=f"segmenting {path.name}", total=len(futs)):
                done.add(int(fut.result()))
                _write_json(part / "state.json", {"fingerprint": fp, "done": sorted(done)})
        finally:
            client.cancel(futs)
