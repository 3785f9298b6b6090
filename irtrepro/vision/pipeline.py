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
from irtrepro.vision.precision import DEFAULT_PRECISION

__all__ = ["SegmentedSessions", "Session", "SessionJob", "SessionResult", "load_session",
           "process_session", "segment_sessions", "session_results", "study_variables",
           "train_models", "training_arrays"]


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


#: frames of a session segmented and measured at a time (rounded to whole inference batches):
#: a session's memory is one chunk of frames and masks, whatever the session's length
SESSION_CHUNK_FRAMES = 256

#: frames of the held-out sessions kept for the robustness table, spread evenly over them
ROBUSTNESS_FRAMES = 48


@dataclass(frozen=True)
class SessionJob:
    """What one session's pass needs (plain data: it travels to worker processes).

    Attributes
    ----------
    frames : str
        Frame store.
    masks : str or None
        Ground-truth mask store, when the session is scored (a held-out subject's).
    clock : ndarray or None
        Session-clock time of every frame (s); ``None``: per second since the first frame.
    grid : ndarray or None
        The Study's time grid (s), needed with ``clock``.
    picks : tuple of int
        Frames (indices in this session) kept for the robustness table.
    example : bool
        Keep the middle frame and its masks as the example figure's.
    signal : bool
        Also return :func:`irtrepro.clock.frame_signal` of the frames (the clock cross-check's
        camera signal), so the recording is read once.
    chunk : int
        Frames per pass (:data:`SESSION_CHUNK_FRAMES`).
    """

    frames: str
    masks: str | None = None
    clock: np.ndarray | None = field(default=None, compare=False, repr=False)
    grid: np.ndarray | None = field(default=None, compare=False, repr=False)
    picks: tuple[int, ...] = ()
    example: bool = False
    signal: bool = False
    chunk: int = SESSION_CHUNK_FRAMES


@dataclass
class SessionResult:
    """The small results of one session's pass (:func:`process_session`).

    Attributes
    ----------
    features : xarray.Dataset or None
        Study variables on (time, side) (:func:`irtrepro.features.extract.to_study_vars`).
    frame_counts : dict
        Frames read / placed / outside the grid / invalid (sessions with a clock).
    counts : dict
        ``{"roi": ndarray, "vessels": ndarray}`` pixel counts of the scored session
        (:func:`irtrepro.vision.evaluate.segmentation_counts`; vessels of the truth kept
        inside its calves).
    metric_errors : list of dict
        :func:`irtrepro.vision.evaluate.metric_errors` rows of the scored session.
    picked : tuple of ndarray or None
        ``(frames, roi_true, vessels_true)`` of ``SessionJob.picks``.
    example : tuple or None
        ``(frame, roi_true, vessels_true, roi_pred, vessels_pred)`` of the middle frame.
    signal : ndarray or None
        Camera signal of every frame (degC).
    error : str or None
        Why the session failed (everything else is then empty).
    """

    features: xr.Dataset | None = None
    frame_counts: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    metric_errors: list = field(default_factory=list)
    picked: tuple | None = None
    example: tuple | None = None
    signal: np.ndarray | None = None
    error: str | None = None


def process_session(job: SessionJob, roi_ck, ves_ck, models, dev=None) -> SessionResult:
    """Segment one session chunk by chunk, extract its features, score it against its truth.

    Each chunk of ``job.chunk`` frames (rounded to whole inference batches, so the masks are
    those of segmenting the whole session at once) is read, segmented, measured and dropped:
    memory is one chunk's frames and masks plus per-frame features, flat in the session's
    length. Masks and Study variables do not depend on the chunking; the per-frame metric
    values behind the metric errors agree with a whole-session pass to float rounding (their
    region sums run over a crop box of the frames in the call).

    Parameters
    ----------
    job : SessionJob
    roi_ck, ves_ck : Checkpoint
    models : tuple
        The two networks, built (on ``dev``).
    dev : torch.device, optional

    Returns
    -------
    SessionResult
        A failure is returned in ``error``, never raised.
    """
    from irtrepro.clock import frame_signal
    from irtrepro.features.extract import extract_session, per_second, place_on_clock, to_study_vars
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.vision.evaluate import (
        ROI_LABELS,
        VESSEL_LABELS,
        error_metric_values,
        metric_errors_from_values,
        segmentation_counts,
    )
    from irtrepro.vision.infer import MAX_BATCH_PIXELS, effective_batch, predict_masks

    try:
        fr = open_frame_store(job.frames)["frames"]
        n = int(fr.shape[0])
        times = fr["time"].values
        truth = xr.open_zarr(job.masks, consolidated=False) if job.masks else None
        batch = effective_batch(32, fr.shape[1:], MAX_BATCH_PIXELS)
        step = batch * max(1, int(job.chunk) // batch)
        picks = np.asarray(job.picks, int)
        res = SessionResult()
        parts, sig, kept = [], [], []
        pred_vals: dict[str, list] = {}
        true_vals: dict[str, list] = {}
        counts = {"roi": 0, "vessels": 0}
        for a in range(0, n, step):
            b = min(n, a + step)
            f = fr[a:b].values
            pr, pv = predict_masks(f, roi_ck, ves_ck, models=models, dev=dev)
            parts.append(extract_session(f, pr, pv, time=times[a:b], per_frame=True))
            if job.signal:
                sig.append(frame_signal(xr.DataArray(f, dims=("frame", "y", "x"))))
            if truth is None:
                continue
            gr, gv = truth["roi"][a:b].values, truth["vessels"][a:b].values
            tv = np.where(gr > 0, gv, 0)
            counts["roi"] = counts["roi"] + segmentation_counts(gr, pr, labels=ROI_LABELS)
            counts["vessels"] = counts["vessels"] + segmentation_counts(
                tv, pv, labels=VESSEL_LABELS)
            for acc, (r_, v_) in ((pred_vals, (pr, pv)), (true_vals, (gr, gv))):
                for k, v in error_metric_values(f, r_, v_).items():
                    acc.setdefault(k, []).append(v)
            here = picks[(picks >= a) & (picks < b)] - a
            if here.size:
                kept.append((f[here], gr[here], tv[here]))
            if job.example and a <= n // 2 < b:
                k = n // 2 - a
                res.example = (f[k], gr[k], gv[k], pr[k], pv[k])
        feats = xr.concat(parts, dim="time")
        if job.clock is not None:
            sec = place_on_clock(feats, job.clock, job.grid)
            res.frame_counts = dict(sec.attrs)
        else:
            sec = per_second(feats)
        res.features = to_study_vars(sec)
        if job.signal:
            res.signal = np.concatenate(sig)
        if truth is not None:
            res.counts = counts
            res.metric_errors = metric_errors_from_values(
                {k: np.concatenate(v) for k, v in pred_vals.items()},
                {k: np.concatenate(v) for k, v in true_vals.items()})
            if kept:
                res.picked = tuple(np.concatenate([k[i] for k in kept]) for i in range(3))
        return res
    except Exception as exc:  # one bad session must not sink the report: the caller lists it
        return SessionResult(error=f"{type(exc).__name__}: {exc}")


_WORKER: dict = {}


def _init_worker(roi_ck, ves_ck, precision: str) -> None:
    """Session worker: one torch thread, the two models built once."""
    import torch

    from irtrepro._threads import torch_threads
    from irtrepro.vision.precision import inference_network

    torch_threads(1)
    _WORKER["cks"] = (roi_ck, ves_ck)
    _WORKER["models"] = tuple(inference_network(ck, torch.device("cpu"), precision)
                              for ck in (roi_ck, ves_ck))


def _process_here(job: SessionJob) -> SessionResult:
    return process_session(job, *_WORKER["cks"], _WORKER["models"], _WORKER.get("dev"))


def _process_on_worker(job: SessionJob, cks, key: str, precision: str) -> SessionResult:
    """:func:`process_session` on a dask worker: the two networks built once per worker."""
    from irtrepro._threads import torch_threads
    from irtrepro.distributed import worker_cache
    from irtrepro.vision.infer import device
    from irtrepro.vision.precision import inference_network

    torch_threads(1)
    dev = device()
    models = worker_cache(f"sessions:{key}:{dev}:{precision}", lambda: tuple(
        inference_network(ck, dev, precision) for ck in cks))
    return process_session(job, *cks, models, dev)


def session_results(jobs: Sequence[SessionJob], roi_ck, ves_ck, models, n_workers: int,
                    scheduler=None, dev=None, precision: str = DEFAULT_PRECISION):
    """:func:`process_session` of every job, yielded in order; ``n_workers`` processes on CPU.

    On a CPU the sessions are spread over single-threaded processes, which segment faster
    than one process with as many threads. Each process holds one chunk of one session at a
    time and sends back only the small :class:`SessionResult`.

    With a dask ``scheduler`` (:func:`irtrepro.distributed.open_client`) the sessions are
    tasks on its workers instead (``n_workers`` is then unused): each worker builds the two
    networks once (on its own device) and processes whole sessions chunk by chunk, as a
    process here does, so the results are the same as here on the same kind of device.
    Networks built in worker processes or on dask workers run at ``precision``
    (:mod:`irtrepro.vision.precision`), or at the precision of ``models`` where given, so
    that the workers compute what a run here would.
    """
    from irtrepro.distributed import parse_scheduler

    if models is not None:
        from irtrepro.vision.precision import precision_of

        precision = precision_of(models[0])

    if parse_scheduler(scheduler)[0] != "serial":
        import hashlib

        from irtrepro.distributed import open_client

        key = hashlib.sha256(b"".join(
            v.detach().cpu().contiguous().numpy().tobytes()
            for ck in (roi_ck, ves_ck) for v in ck.state_dict.values())).hexdigest()
        with open_client(scheduler) as client:
            cks = client.scatter([roi_ck, ves_ck], broadcast=True)
            futs = [client.submit(_process_on_worker, j, cks, key, precision, pure=False)
                    for j in jobs]
            try:
                for fut in futs:  # in order: the caller pairs them with its sessions
                    yield fut.result()
                    fut.release()
            finally:
                client.cancel(futs)
        return
    if n_workers <= 1:
        _WORKER.update(cks=(roi_ck, ves_ck), models=models, dev=dev)
        for j in jobs:
            yield _process_here(j)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch's OpenMP init can hang
    with ctx.Pool(n_workers, initializer=_init_worker,
                  initargs=(roi_ck, ves_ck, precision)) as pool:
        yield from pool.imap(_process_here, jobs)


@dataclass
class SegmentedSessions:
    """What :func:`segment_sessions` found.

    Attributes
    ----------
    features : dict
        ``{(subject, session): xarray.Dataset}`` of Study variables on (time, side).
    metric_errors : list of dict
        Rows of :func:`irtrepro.vision.evaluate.metric_error_table` (held-out sessions).
    counts : dict
        ``{"roi": ndarray, "vessels": ndarray}``: pixel counts pooled over every frame of the
        held-out sessions (:func:`irtrepro.vision.evaluate.scores_from_counts`); empty when
        none was scored.
    scored : list of (str, str)
        The held-out sessions scored, in order.
    picked : tuple of ndarray or None
        ``(frames, roi_true, vessels_true)``: :data:`ROBUSTNESS_FRAMES` frames spread evenly
        over the scored sessions (vessels of the truth kept inside its calves).
    example : tuple or None
        ``(frame, roi_true, vessels_true, roi_pred, vessels_pred, subject, session)`` of the
        first held-out session's middle frame.
    signals : dict
        ``{(subject, session): ndarray}`` camera signal per frame (``signals=True``).
    notes : list of str
        Sessions that failed and why.
    frame_counts : dict
        ``{(subject, session): {frames_read, frames_placed, frames_outside_grid,
        frames_invalid}}`` of the sessions placed on their clock.
    """

    features: dict = field(default_factory=dict)
    metric_errors: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    scored: list = field(default_factory=list)
    picked: tuple | None = None
    example: tuple | None = None
    signals: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    frame_counts: dict = field(default_factory=dict)


def _picks(lengths: Sequence[int], n: int) -> list[tuple[int, ...]]:
    """``n`` frame indices spread evenly over sessions of ``lengths`` frames, per session."""
    total = int(sum(lengths))
    k = np.linspace(0, total - 1, min(n, total)).astype(int) if total else np.zeros(0, int)
    first = np.cumsum([0, *lengths])
    return [tuple(int(v) for v in k[(k >= first[j]) & (k < first[j + 1])] - first[j])
            for j in range(len(lengths))]


def segment_sessions(sessions: Sequence[Session], roi_ck, ves_ck, *, held: Sequence[str],
                     models=None, n_workers: int = 1, progress: bool | None = None,
                     grid: np.ndarray | None = None, scheduler=None, signals: bool = False,
                     chunk_frames: int = SESSION_CHUNK_FRAMES,
                     precision: str = DEFAULT_PRECISION) -> SegmentedSessions:
    """Segment every session, extract its features, score the held-out subjects' masks.

    Every session is processed chunk by chunk (:func:`process_session`), so memory does not
    grow with session length: the held-out sessions are scored from pooled pixel counts and
    per-frame metric values, and only :data:`ROBUSTNESS_FRAMES` of their frames are kept.

    Parameters
    ----------
    sessions : sequence of Session
    roi_ck, ves_ck : Checkpoint
    held : sequence of str
        Held-out subjects: their sessions with ground truth are scored.
    models : tuple, optional
        The two networks, built (default: built here on the default device).
    n_workers : int
        Processes that process sessions in parallel (see :func:`session_results`).
    progress : bool or None
        Progress bar; ``False`` logs every quarter instead.
    grid : ndarray, optional
        The Study's time grid (s): sessions with a ``clock`` are placed on it
        (:func:`irtrepro.features.extract.place_on_clock`).
    scheduler : None, str, Client or cluster
        Process the sessions on dask.distributed workers instead of ``n_workers`` processes
        (see :func:`session_results`).
    signals : bool
        Also keep each session's camera signal (:func:`irtrepro.clock.frame_signal`) for the
        clock cross-check, read in the same pass.
    chunk_frames : int
        Frames per chunk (:data:`SESSION_CHUNK_FRAMES`).
    precision : {"auto", "float32", "bfloat16"}
        Precision of the networks built here (:mod:`irtrepro.vision.precision`); given
        ``models`` run at their own, and the workers at the same.

    Returns
    -------
    SegmentedSessions
        A session that fails is listed in ``notes``, never raised.
    """
    from irtrepro.io.thermal import open_frame_store

    if grid is None and any(e.clock is not None for e in sessions):
        from irtrepro.errors import OptionError

        raise OptionError("segment_sessions: sessions with a clock need the Study's grid=")
    dev = None
    if models is None:
        from irtrepro.vision.infer import device
        from irtrepro.vision.precision import inference_network

        dev = device()
        models = tuple(inference_network(ck, dev, precision) for ck in (roi_ck, ves_ck))
    else:
        dev = next(models[0].parameters()).device
    scored = [i for i, e in enumerate(sessions) if e.subject in held and e.masks is not None]
    lengths = []
    for i in scored:
        try:
            lengths.append(int(open_frame_store(sessions[i].frames)["frames"].shape[0]))
        except Exception:  # its pass fails and lists it; it keeps no frame
            lengths.append(0)
    picks = dict(zip(scored, _picks(lengths, ROBUSTNESS_FRAMES), strict=True))
    jobs = [SessionJob(str(e.frames), str(e.masks) if i in picks else None, clock=e.clock,
                       grid=grid if e.clock is not None else None, picks=picks.get(i, ()),
                       example=bool(scored) and i == scored[0], signal=signals,
                       chunk=chunk_frames)
            for i, e in enumerate(sessions)]
    out = SegmentedSessions()
    kept = []
    t0 = time.perf_counter()
    results = session_results(jobs, roi_ck, ves_ck, models, n_workers, scheduler=scheduler,
                              dev=dev, precision=precision)
    quarter = max(1, len(sessions) // 4)
    for i, (e, res) in enumerate(progress_bar(
            zip(sessions, results, strict=True), progress, desc="segmenting sessions",
            total=len(sessions))):
        if progress is False and (i + 1) % quarter == 0:  # no bar (e.g. a part's process): log
            logger.info("vision: %d/%d sessions segmented (%.0f s)", i + 1, len(sessions),
                        time.perf_counter() - t0)
        key = (e.subject, e.session)
        if res.error is not None:
            out.notes.append(f"{e.subject}/{e.session}: segmentation failed: {res.error}")
            continue
        out.features[key] = res.features
        if res.frame_counts:
            out.frame_counts[key] = res.frame_counts
        if res.signal is not None:
            out.signals[key] = res.signal
        if res.counts:
            out.scored.append(key)
            for task, c in res.counts.items():
                out.counts[task] = out.counts.get(task, 0) + c
            out.metric_errors += [{"subject": e.subject, "session": e.session, **row}
                                  for row in res.metric_errors]
            if res.picked is not None:
                kept.append(res.picked)
        if res.example is not None:
            out.example = (*res.example, e.subject, e.session)
    if kept:
        out.picked = tuple(np.concatenate([k[j] for k in kept]) for j in range(3))
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
