"""The thermal chain on many sessions: training arrays, models, segmentation, metrics.

Plain data in (store paths, arrays, checkpoints), plain data out (arrays, xarray objects); the
report's vision part (:mod:`irtrepro.report.parts.vision`) adapts a manifest to these.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from irtrepro._logging import logger, progress_bar

__all__ = ["SegmentedSessions", "Session", "load_session", "segment_sessions", "segmented",
           "study_variables", "train_models", "training_arrays"]


@dataclass(frozen=True)
class Session:
    """One thermal session: where its frames are and, if any, its ground-truth masks.

    ``clock``, when given, is the session-clock time (s since exercise start) of every frame
    (:func:`irtrepro.clock.camera_times`); without it the frames are placed by time since the
    first frame.
    """

    subject: str
    session: str
    frames: Path
    masks: Path | None = None
    clock: np.ndarray | None = field(default=None, compare=False, repr=False)


def load_session(frames: str | Path, masks: str | Path) -> tuple[xr.DataArray, ...]:
    """Frames (degC) and ground-truth ``roi`` / ``vessels`` of one session, lazily.

    Parameters
    ----------
    frames, masks : path-like
        Frame store and mask store (zarr) of the session.

    Returns
    -------
    frames, roi, vessels : xarray.DataArray
        ``(frame, y, x)``.
    """
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(frames)
    truth = xr.open_zarr(masks, consolidated=False)
    return ds["frames"], truth["roi"], truth["vessels"]


def training_arrays(sessions: Sequence[Session], max_frames: int, progress: bool | None = None):
    """Evenly spaced frames and masks of sessions with ground truth, about ``max_frames`` in all.

    Returns
    -------
    frames : ndarray (frame, y, x) float (degC)
    roi, vessels : ndarray (frame, y, x) uint8
    subjects : list of str
        The subject of each frame.
    """
    per = max(1, max_frames // max(1, len(sessions)))
    F, R, V, S = [], [], [], []
    for e in progress_bar(sessions, progress, desc="loading training frames"):
        fr, roi, ves = load_session(e.frames, e.masks)
        idx = np.linspace(0, fr.shape[0] - 1, min(per, fr.shape[0])).astype(int)
        F.append(fr.values[idx])
        R.append(roi.values[idx].astype(np.uint8))
        V.append(ves.values[idx].astype(np.uint8))
        S += [e.subject] * idx.size
    return np.concatenate(F), np.concatenate(R), np.concatenate(V), S


def train_models(frames, roi, vessels, subjects, *, seed: int = 0,
                 settings: dict | None = None, cached=None):
    """Train the ROI and the vessel model.

    Parameters
    ----------
    frames, roi, vessels, subjects
        As returned by :func:`training_arrays`.
    seed : int
    settings : dict, optional
        ``{"roi": {...}, "vessels": {...}}`` keyword arguments of
        :func:`~irtrepro.vision.train.train_segmenter`.
    cached : callable, optional
        ``cached(task, train)`` returns a model, calling ``train()`` only when it holds none
        (the report's cache); default: always train.

    Returns
    -------
    roi_ck, vessels_ck : Checkpoint
    """
    from irtrepro.vision.train import train_segmenter

    settings = dict(settings or {})
    out = []
    for task in ("roi", "vessels"):
        def train(task=task):
            return train_segmenter(frames, roi, vessels, subjects, task=task, seed=seed,
                                   **settings.get(task, {}))
        out.append(cached(task, train) if cached is not None else train())
    return out[0], out[1]


_WORKER: dict = {}


def _init_worker(roi_ck, ves_ck) -> None:
    """Segmentation worker: one torch thread, the two models built once."""
    import torch

    from irtrepro._threads import torch_threads

    torch_threads(1)
    _WORKER["cks"] = (roi_ck, ves_ck)
    _WORKER["models"] = tuple(ck.build().to(memory_format=torch.channels_last)
                              for ck in (roi_ck, ves_ck))


def _segment_path(path: str):
    """Masks of one frame store (in a worker); an error is returned, not raised."""
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.vision.infer import predict_masks

    try:
        f = open_frame_store(path)["frames"].values
        return (*predict_masks(f, *_WORKER["cks"], models=_WORKER["models"]), None)
    except Exception as exc:  # reported per session by the caller
        return None, None, f"{type(exc).__name__}: {exc}"


def _segment_path_on_worker(path: str, cks, key: str):
    """:func:`_segment_path` on a dask worker: the two networks built once per worker."""
    import torch

    from irtrepro._threads import torch_threads
    from irtrepro.distributed import worker_cache
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.vision.infer import device, predict_masks

    try:
        torch_threads(1)
        dev = device()
        models = worker_cache(f"sessions:{key}:{dev}", lambda: tuple(
            ck.build().to(dev, memory_format=torch.channels_last) for ck in cks))
        f = open_frame_store(path)["frames"].values
        return (*predict_masks(f, *cks, models=models, dev=dev), None)
    except Exception as exc:  # reported per session by the caller
        return None, None, f"{type(exc).__name__}: {exc}"


def segmented(paths, roi_ck, ves_ck, models, n_workers: int, scheduler=None):
    """(roi, vessels, error) per store path, in order; ``n_workers`` processes on CPU.

    On a CPU the sessions are spread over single-threaded processes, which segment faster
    than one process with as many threads, and the caller extracts features while the workers
    segment. The caller re-reads each session's frames from its store: cheaper than sending
    them back from the worker.

    With a dask ``scheduler`` (:func:`irtrepro.distributed.open_client`) the sessions are
    tasks on its workers instead (``n_workers`` is then unused): each worker builds the two
    networks once (on its own device) and segments whole sessions, as a process here does,
    so the masks are the same as here on the same kind of device.
    """
    from irtrepro.distributed import parse_scheduler

    if parse_scheduler(scheduler)[0] != "serial":
        import hashlib

        from irtrepro.distributed import open_client

        key = hashlib.sha256(b"".join(
            v.detach().cpu().contiguous().numpy().tobytes()
            for ck in (roi_ck, ves_ck) for v in ck.state_dict.values())).hexdigest()
        with open_client(scheduler) as client:
            cks = client.scatter([roi_ck, ves_ck], broadcast=True)
            futs = [client.submit(_segment_path_on_worker, p, cks, key, pure=False)
                    for p in paths]
            try:
                for fut in futs:  # in order: the caller pairs them with its sessions
                    yield fut.result()
                    fut.release()
            finally:
                client.cancel(futs)
        return
    if n_workers <= 1:
        _WORKER["cks"], _WORKER["models"] = (roi_ck, ves_ck), models
        for p in paths:
            yield _segment_path(p)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch's OpenMP init can hang
    with ctx.Pool(n_workers, initializer=_init_worker, initargs=(roi_ck, ves_ck)) as pool:
        yield from pool.imap(_segment_path, paths)


@dataclass
class SegmentedSessions:
    """What :func:`segment_sessions` found.

    Attributes
    ----------
    features : dict
        ``{(subject, session): xarray.Dataset}`` of Study variables on (time, side).
    metric_errors : list of dict
        Rows of :func:`irtrepro.vision.evaluate.metric_error_table` (held-out sessions).
    truth, predicted : list of (roi, vessels)
        Masks of the held-out sessions (vessels of the truth kept inside its calves).
    held_stores : list of Path
        Frame stores of the held-out sessions with ground truth, in the order of ``truth``.
    example : tuple or None
        ``(frame, roi_true, vessels_true, roi_pred, vessels_pred, subject, session)`` of the
        first held-out session's middle frame.
    notes : list of str
        Sessions that failed and why.
    frame_counts : dict
        ``{(subject, session): {frames_read, frames_placed, frames_outside_grid,
        frames_invalid}}`` of the sessions placed on their clock.
    """

    features: dict = field(default_factory=dict)
    metric_errors: list = field(default_factory=list)
    truth: list = field(default_factory=list)
    predicted: list = field(default_factory=list)
    held_stores: list = field(default_factory=list)
    example: tuple | None = None
    notes: list = field(default_factory=list)
    frame_counts: dict = field(default_factory=dict)


def segment_sessions(sessions: Sequence[Session], roi_ck, ves_ck, *, held: Sequence[str],
                     models=None, n_workers: int = 1, progress: bool | None = None,
                     grid: np.ndarray | None = None, scheduler=None) -> SegmentedSessions:
    """Segment every session, extract its features, score the held-out subjects' masks.

    Parameters
    ----------
    sessions : sequence of Session
    roi_ck, ves_ck : Checkpoint
    held : sequence of str
        Held-out subjects: their sessions with ground truth are scored.
    models : tuple, optional
        The two networks, built (default: built here on the default device).
    n_workers : int
        Processes that segment sessions in parallel (see :func:`segmented`).
    progress : bool or None
        Progress bar; ``False`` logs every quarter instead.
    grid : ndarray, optional
        The Study's time grid (s): sessions with a ``clock`` are placed on it
        (:func:`irtrepro.features.extract.place_on_clock`).
    scheduler : None, str, Client or cluster
        Segment the sessions on dask.distributed workers instead of ``n_workers`` processes
        (see :func:`segmented`); the features are extracted here, as they arrive.

    Returns
    -------
    SegmentedSessions
        A session that fails is listed in ``notes``, never raised.
    """
    from irtrepro.features import compute_features
    from irtrepro.features.extract import extract_session, place_on_clock, to_study_vars
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.vision.evaluate import metric_errors

    if grid is None and any(e.clock is not None for e in sessions):
        from irtrepro.errors import OptionError

        raise OptionError("segment_sessions: sessions with a clock need the Study's grid=")
    if models is None:
        import torch

        from irtrepro.vision.infer import device

        dev = device()
        models = tuple(ck.build().to(dev, memory_format=torch.channels_last)
                       for ck in (roi_ck, ves_ck))
    out = SegmentedSessions()
    t0 = time.perf_counter()
    masks = segmented([str(e.frames) for e in sessions], roi_ck, ves_ck, models, n_workers,
                      scheduler=scheduler)
    quarter = max(1, len(sessions) // 4)
    for i, (e, (pr, pv, err)) in enumerate(progress_bar(
            zip(sessions, masks, strict=True), progress, desc="segmenting sessions",
            total=len(sessions))):
        if progress is False and (i + 1) % quarter == 0:  # no bar (e.g. a part's process): log
            logger.info("vision: %d/%d sessions segmented (%.0f s)", i + 1, len(sessions),
                        time.perf_counter() - t0)
        try:
            if err is not None:
                raise RuntimeError(err)
            fr = open_frame_store(e.frames)["frames"]
            f = fr.values
            if e.clock is not None:
                per_frame = extract_session(f, pr, pv, time=fr["time"].values, per_frame=True)
                sec = place_on_clock(per_frame, e.clock, grid)
                out.frame_counts[(e.subject, e.session)] = dict(sec.attrs)
            else:
                sec = extract_session(f, pr, pv, time=fr["time"].values)
            out.features[(e.subject, e.session)] = to_study_vars(sec)
            if e.subject in held and e.masks is not None:
                _, gr, gv = load_session(e.frames, e.masks)
                gr, gv = gr.values, gv.values
                out.truth.append((gr, np.where(gr > 0, gv, 0)))
                out.predicted.append((pr, pv))
                out.held_stores.append(e.frames)
                out.metric_errors += [
                    {"subject": e.subject, "session": e.session, **row}
                    for row in metric_errors(f, pr, pv, gr, gv, compute=compute_features)]
                if out.example is None:
                    k = f.shape[0] // 2
                    out.example = (f[k], gr[k], gv[k], pr[k], pv[k], e.subject, e.session)
        except Exception as exc:  # one bad session must not sink the report; it is listed
            out.notes.append(f"{e.subject}/{e.session}: segmentation failed: {exc}")
    return out


def study_variables(features: dict, session_order: Sequence[str]) -> xr.Dataset:
    """Per-session features on (subject, session, time, side), sessions in ``session_order``.

    Parameters
    ----------
    features : dict
        ``{(subject, session): xarray.Dataset}`` (:attr:`SegmentedSessions.features`).
    session_order : sequence of str
        Order of the sessions (e.g. the manifest's).
    """
    order = list(session_order)
    subs = sorted({k[0] for k in features})
    sess = sorted({k[1] for k in features}, key=order.index)
    rows = []
    for s in subs:
        items = [features[(s, x)].expand_dims(session=[x]) for x in sess if (s, x) in features]
        rows.append(xr.concat(items, dim="session", join="outer").expand_dims(subject=[s]))
    sv = xr.concat(rows, dim="subject", join="outer")
    for k in sv.data_vars:
        sv[k].attrs = next(iter(features.values()))[k].attrs
    return sv
