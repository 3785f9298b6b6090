"""The vision part of ``make report``: train or reuse the models, segment, extract, evaluate."""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro._logging import logger, progress_bar

#: metrics whose segmentation-caused error the report tables (name -> units)
ERROR_METRICS = {"calf_mean": "degC", "tnv_mean": "degC", "tp_mean": "degC", "tv_mean": "degC",
                 "tp_entropy": "bit", "tnv_entropy": "bit"}


#: error_to_sd at or above which the report warns that a metric's time course is dominated by
#: segmentation error (median per-frame error >= half the metric's within-session SD).
ATTENUATION_WARN = 0.5


def metric_error_table(err_rows: list[dict]) -> pd.DataFrame:
    """Segmentation-induced metric error against the metric's own within-session variation.

    Parameters
    ----------
    err_rows : list of dict
        One per held-out session and metric: ``metric``, ``errors`` (absolute per-frame,
        per-calf differences, predicted vs ground-truth masks) and ``sd`` (SD over the frames
        of each calf under ground-truth masks), in the metric's units.

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``median_abs_error``, ``p95_abs_error``, ``n`` (frame-calves),
        ``within_session_sd`` (median over session-calves), ``error_to_sd`` (ratio of the two),
        ``units``; NaN where a metric had no finite value.
    """
    rows = []
    for n, units in ERROR_METRICS.items():
        mine = [r for r in err_rows if r["metric"] == n]
        d = np.concatenate([r["errors"] for r in mine]) if mine else np.array([])
        sd = np.concatenate([r["sd"] for r in mine]) if mine else np.array([])
        med = float(np.median(d)) if d.size else np.nan
        wsd = float(np.median(sd)) if sd.size else np.nan
        rows.append({"metric": n, "median_abs_error": med,
                     "p95_abs_error": float(np.percentile(d, 95)) if d.size else np.nan,
                     "n": int(d.size), "within_session_sd": wsd,
                     "error_to_sd": med / wsd if wsd > 0 else np.nan, "units": units})
    return pd.DataFrame(rows)


def _load_session(entry):
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(entry.files["thermal"].path)
    truth = xr.open_zarr(entry.files["thermal_masks"].path, consolidated=False)
    return ds["frames"], truth["roi"], truth["vessels"]


def _training_arrays(sessions, max_frames: int, progress):
    per = max(1, max_frames // max(1, len(sessions)))
    F, R, V, S = [], [], [], []
    for e in progress_bar(sessions, progress, desc="loading training frames"):
        fr, roi, ves = _load_session(e)
        idx = np.linspace(0, fr.shape[0] - 1, min(per, fr.shape[0])).astype(int)
        F.append(fr.values[idx])
        R.append(roi.values[idx].astype(np.uint8))
        V.append(ves.values[idx].astype(np.uint8))
        S += [e.subject] * idx.size
    return np.concatenate(F), np.concatenate(R), np.concatenate(V), S


_WORKER: dict = {}


def _init_worker(roi_ck, ves_ck) -> None:
    """Segmentation worker: one torch thread, the two models built once."""
    import torch

    torch.set_num_threads(1)
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


def _segmented(paths, roi_ck, ves_ck, models, dev, n_workers: int):
    """(roi, vessels, error) per store path, in order; ``n_workers`` processes on CPU.

    On a CPU the sessions are spread over single-threaded processes: two of them segment ~50
    frames/s against 44 for one process with 2 threads (bench_thermal_pipeline), and the caller
    extracts features while the workers segment. The caller re-reads each session's frames
    from its store: cheaper than sending them back from the worker.
    """
    if n_workers <= 1:
        _WORKER["cks"], _WORKER["models"] = (roi_ck, ves_ck), models
        for p in paths:
            yield _segment_path(p)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch's OpenMP init can hang
    with ctx.Pool(n_workers, initializer=_init_worker, initargs=(roi_ck, ves_ck)) as pool:
        yield from pool.imap(_segment_path, paths)


def model_key(frames, roi, vessels, *, seed: int, settings: dict) -> str:
    """Cache key of the trained models: what decides their weights.

    Data, seed, settings, the defaults the settings fall back on and the training code itself
    (a changed default must never reuse models trained under the old one).
    """
    from irtrepro.vision.data import data_hash
    from irtrepro.vision.train import TASK_DEFAULTS

    code = hashlib.sha256()
    for name in ("train.py", "data.py", "models.py", "infer.py"):
        code.update((Path(__file__).parent / name).read_bytes())
    extra = json.dumps([seed, settings, TASK_DEFAULTS, code.hexdigest()], sort_keys=True,
                       default=str)
    return data_hash(frames, roi, vessels, extra)[:16]


def train_or_load(frames, roi, vessels, subjects, cache_dir: Path, *, seed: int = 0,
                  settings: dict | None = None):
    """Train both models, or load them from ``cache_dir`` when data and settings match."""
    from irtrepro.vision.models import Checkpoint
    from irtrepro.vision.train import train_segmenter

    settings = dict(settings or {})
    key = model_key(frames, roi, vessels, seed=seed, settings=settings)
    out = []
    for task in ("roi", "vessels"):
        path = Path(cache_dir) / f"{task}_{key}.pt"
        if path.is_file():
            out.append(Checkpoint.load(path, task=task))
            logger.info("vision: reusing %s", path)
            continue
        ck = train_segmenter(frames, roi, vessels, subjects, task=task, seed=seed,
                             **settings.get(task, {}))
        ck.save(path)
        out.append(ck)
    return out[0], out[1]


def run_for_report(manifest, cache_dir: Path, *, seed: int = 0, progress=None,
                   max_train_frames: int = 2400, n_heldout: int = 3,
                   settings: dict | None = None, n_workers: int | None = None):
    """Train-or-reuse the ROI and vessel models, segment every session, extract features.

    Returns a :class:`irtrepro.report.part.ReportPart` with the quality table (per class on
    held-out subjects), the metric-error table (segmented vs ground-truth masks), the
    robustness table, an example figure and ``study_vars`` on (subject, session, time, side).

    ``settings`` = ``{"roi": {...}, "vessels": {...}}`` keyword arguments of
    :func:`~irtrepro.vision.train.train_segmenter` (part of the model cache key).
    ``n_workers``: processes that segment sessions in parallel (default: 1 on CUDA, else
    min(2, cores), each with one torch thread).
    """
    import matplotlib.pyplot as plt

    from irtrepro.features.extract import extract_session, to_study_vars
    from irtrepro.report.part import ReportPart
    from irtrepro.vision.data import subject_split
    from irtrepro.vision.evaluate import (
        ROI_LABELS,
        VESSEL_LABELS,
        robustness_table,
        segmentation_scores,
    )
    from irtrepro.vision.infer import device, predict_masks, set_threads

    t_start = time.perf_counter()
    cache_dir = Path(cache_dir) / "vision"
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = ReportPart(name="vision", title="Thermal segmentation and skin-temperature metrics")
    sessions = [e for e in manifest.sessions if "thermal" in e.files]
    with_truth = [e for e in sessions if "thermal_masks" in e.files]
    if not with_truth:
        part.notes.append("no session has ground-truth thermal masks: nothing to train on")
        return part
    subjects = sorted({e.subject for e in with_truth})
    train_s, held = subject_split(subjects, n_val=min(n_heldout, len(subjects) - 1), seed=seed)
    import torch

    # at most 2 (measured fastest on 2 cores), fewer when the caller runs parts side by side
    set_threads(max(1, min(2, torch.get_num_threads())))
    t0 = time.perf_counter()
    F, R, V, S = _training_arrays([e for e in with_truth if e.subject in train_s],
                                  max_train_frames, progress)
    roi_ck, ves_ck = train_or_load(F, R, V, S, cache_dir, seed=seed, settings=settings)
    part.timings["train_or_load"] = time.perf_counter() - t0
    del F, R, V
    dev = device()
    models = tuple(ck.build().to(dev, memory_format=torch.channels_last)
                   for ck in (roi_ck, ves_ck))
    per_session, err_rows, t_pairs, p_pairs = {}, [], [], []
    example = None
    t0 = time.perf_counter()
    if n_workers is None:
        n_workers = 1 if dev.type == "cuda" else max(1, min(2, os.cpu_count() or 1))
    masks = _segmented([str(e.files["thermal"].path) for e in sessions], roi_ck, ves_ck,
                       models, dev, n_workers)
    quarter = max(1, len(sessions) // 4)
    for i, (e, (pr, pv, err)) in enumerate(progress_bar(
            zip(sessions, masks, strict=True), progress, desc="segmenting sessions",
            total=len(sessions))):
        if progress is False and (i + 1) % quarter == 0:  # no bar (e.g. a part's process): log
            logger.info("vision: %d/%d sessions segmented (%.0f s)", i + 1, len(sessions),
                        time.perf_counter() - t0)
        try:
            from irtrepro.io.thermal import open_frame_store

            if err is not None:
                raise RuntimeError(err)
            fr = open_frame_store(e.files["thermal"].path)["frames"]
            f = fr.values
            np.savez_compressed(cache_dir / f"masks_{e.subject}_{e.session}.npz", roi=pr,
                                vessels=pv, time=fr["time"].values)
            sec = extract_session(f, pr, pv, time=fr["time"].values)
            per_session[(e.subject, e.session)] = to_study_vars(sec)
            if e.subject in held and "thermal_masks" in e.files:
                _, gr, gv = _load_session(e)
                gr, gv = gr.values, gv.values
                t_pairs.append((gr, np.where(gr > 0, gv, 0)))
                p_pairs.append((pr, pv))
                names = list(ERROR_METRICS)
                from irtrepro.features import compute_features

                a = compute_features(f, pr, pv, features=names)
                b = compute_features(f, gr, gv, features=names)
                for n in names:
                    gt = b[n].sel(side=["left", "right"]).values
                    d = np.abs(a[n].sel(side=["left", "right"]).values - gt).ravel()
                    # how much the metric itself moves within this session (per calf), the
                    # yardstick for the error: a time-course correlation survives only if the
                    # segmentation error is small against this
                    with warnings.catch_warnings():  # a calf without that region: NaN SD
                        warnings.simplefilter("ignore", RuntimeWarning)
                        sd = np.nanstd(gt, axis=0, ddof=1) if len(gt) > 2 else np.full(2, np.nan)
                    err_rows.append({"subject": e.subject, "session": e.session, "metric": n,
                                     "errors": d[np.isfinite(d)], "sd": sd[np.isfinite(sd)]})
                if example is None:
                    k = f.shape[0] // 2
                    example = (f[k], gr[k], gv[k], pr[k], pv[k], e)
        except Exception as exc:  # one bad session must not sink the report; it is listed
            part.notes.append(f"{e.subject}/{e.session}: segmentation failed: {exc}")
    part.timings["segment_extract"] = time.perf_counter() - t0
    if t_pairs:
        tr = np.concatenate([t[0] for t in t_pairs])
        tv = np.concatenate([t[1] for t in t_pairs])
        prr = np.concatenate([p[0] for p in p_pairs])
        pvv = np.concatenate([p[1] for p in p_pairs])
        q = pd.concat([segmentation_scores(tr, prr, labels=ROI_LABELS).assign(model="roi"),
                       segmentation_scores(tv, pvv, labels=VESSEL_LABELS).assign(model="vessels")],
                      ignore_index=True)
        part.tables["segmentation_quality"] = (
            q, f"Per-class pixel scores pooled over all frames of the held-out subjects {held} "
               f"(models trained on {train_s}); Dice = F1.")
        err = metric_error_table(err_rows)
        part.tables["metric_error"] = (
            err, "Absolute difference per frame and calf between the metric under predicted "
            "masks and under ground-truth masks (held-out subjects). within_session_sd: SD over "
            "the frames of one session and calf under ground-truth masks (median over "
            "session-calves), i.e. how much the metric moves over time; error_to_sd = "
            "median_abs_error / within_session_sd. Near or above 1, the segmentation error is as "
            "large as the metric's own time course, and correlations of that metric over time "
            "through the learned masks are attenuated towards 0.")
        for row in err.itertuples():
            if row.error_to_sd >= ATTENUATION_WARN:
                part.notes.append(
                    f"{row.metric}: segmentation moves it by {row.median_abs_error:.3g} "
                    f"{row.units} per frame (median), {row.error_to_sd:.2f}x its variation "
                    f"within a session under ground-truth masks ({row.within_session_sd:.3g} "
                    f"{row.units}); its correlations over time in this report are attenuated "
                    "by segmentation error (table metric_error)")
        k = np.linspace(0, len(tr) - 1, min(48, len(tr))).astype(int)
        frames_all = []
        for e in sessions:
            if e.subject in held:
                frames_all.append(open_frame_store(e.files["thermal"].path)["frames"].values)
        fa = np.concatenate(frames_all)[k]
        rob = robustness_table(fa, tr[k], tv[k], lambda x: predict_masks(
            x, roi_ck, ves_ck, models=models, dev=dev), seed=seed)
        part.tables["robustness"] = (rob, "Dice etc. per class on 48 held-out frames under "
                                     "perturbations of the input (masks scaled alike).")
    if example is not None:
        f, gr, gv, pr, pv, e = example
        fig, ax = plt.subplots(1, 3, figsize=(10, 3.2))
        im = ax[0].imshow(f, cmap="inferno")
        fig.colorbar(im, ax=ax[0], label="temperature (degC)")
        ax[0].set_title(f"{e.subject}/{e.session} frame")
        ax[1].imshow(gr * 3 + gv, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        ax[1].set_title("ground truth (roi, vessels)")
        ax[2].imshow(pr * 3 + pv, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        ax[2].set_title("predicted")
        for a in ax:
            a.set_xlabel("x (pixel)")
            a.set_ylabel("y (pixel)")
        part.figures["example_segmentation"] = (fig, "Example held-out frame: ground-truth and "
                                                "predicted calf (colour) and vessel masks.")
    if per_session:
        subs = sorted({k[0] for k in per_session})
        sess = sorted({k[1] for k in per_session}, key=lambda s: [e.session for e in sessions].index(s))
        rows = []
        for s in subs:
            items = [per_session[(s, x)].expand_dims(session=[x]) for x in sess
                     if (s, x) in per_session]
            rows.append(xr.concat(items, dim="session", join="outer").expand_dims(subject=[s]))
        sv = xr.concat(rows, dim="subject", join="outer")
        for k in sv.data_vars:
            sv[k].attrs = next(iter(per_session.values()))[k].attrs
        sv.attrs["vision_models"] = json.dumps({"roi": roi_ck.data_hash[:16],
                                                "vessels": ves_ck.data_hash[:16],
                                                "held_out": held})
        part.study_vars = sv
    part.notes.append(f"models: encoder {roi_ck.encoder} depth {roi_ck.encoder_depth}, "
                      f"trained {roi_ck.metrics.get('seconds', 0):.0f} s + "
                      f"{ves_ck.metrics.get('seconds', 0):.0f} s on {train_s}")
    part.timings["total"] = time.perf_counter() - t_start
    return part

