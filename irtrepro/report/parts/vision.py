"""The vision part of ``make report``: manifest -> trained models, segmented sessions, tables."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro.report.cache import Cache, cache_key
from irtrepro.report.part import ReportPart
from irtrepro.vision.precision import DEFAULT_PRECISION

__all__ = ["model_key", "run_for_report"]

#: source of the trained models' weights (their cache key)
MODEL_SOURCE = ("irtrepro.vision.train", "irtrepro.vision.data", "irtrepro.vision.models",
                "irtrepro.vision.infer")


def model_key(frames, roi, vessels, *, seed: int, settings: dict) -> str:
    """Cache key of the trained models: what decides their weights.

    Data, seed, settings, the defaults the settings fall back on and the training code itself
    (a changed default must never reuse models trained under the old one).
    """
    from irtrepro.vision.train import TASK_DEFAULTS

    return cache_key(settings={"seed": seed, "settings": settings, "defaults": TASK_DEFAULTS},
                     data=(frames, roi, vessels), source=MODEL_SOURCE)


def _sessions(manifest, frames_dir: Path, progress=None):
    """Sessions with a frame store on the session clock, their provenance, and notes.

    Every thermal entry goes through :func:`irtrepro.recordings.frame_store` (a camera file
    is converted once, cached by its sha256 in ``frames_dir``; a zarr store is its own);
    its frames are timed by :func:`irtrepro.clock.camera_times`. A session whose recording
    cannot be read or timed is left out, with the reason in the notes.
    """
    from irtrepro.clock import camera_times
    from irtrepro.errors import IrtreproError
    from irtrepro.io.zarr_store import open_frames
    from irtrepro.recordings import frame_store
    from irtrepro.vision.pipeline import Session

    out, info, notes = [], {}, []
    for e in manifest.sessions:
        if "thermal" not in e.files:
            continue
        entry = e.files["thermal"]
        try:
            fs = frame_store(entry, frames_dir, progress=progress)
            rec = open_frames(fs.path)
            clock = camera_times(rec, entry, e)
        except IrtreproError as exc:
            notes.append(f"{e.subject}/{e.session}: thermal recording left out: {exc}")
            continue
        masks = e.files["thermal_masks"].path if "thermal_masks" in e.files else None
        out.append(Session(e.subject, e.session, fs.path, masks, clock=clock.time))
        damaged = [int(v) for v in (rec.attrs.get("damaged_frames") or [])]
        reasons = list(rec.attrs.get("damaged_reasons") or [""] * len(damaged))
        info[(e.subject, e.session)] = {
            "store": fs, "clock": clock.to_dict(),
            "provenance": {"source": str(fs.source), "sha256": fs.sha256,
                           "source_format": fs.format, "frames_read": int(rec.shape[0]),
                           "frames_damaged": len(damaged),
                           "damaged_reasons": {str(k): str(r) for k, r in
                                               zip(damaged, reasons, strict=False)}}}
    return out, info, notes


def _checkpoint_io(task: str):
    from irtrepro.vision.models import Checkpoint

    return {"save": lambda ck, path: ck.save(path),
            "load": lambda path: Checkpoint.load(path, task=task), "suffix": ".pt"}


def _given_model(path: str | os.PathLike, study_subjects: list[str]):
    """The checkpoints of a model file, the caption phrase naming it, and the notes on it."""
    from irtrepro.manifest import sha256_path
    from irtrepro.vision.models import SegmentationModel

    path = Path(path)
    m = SegmentationModel.load(path)
    card = m.card or {}
    data_hash = str(card.get("data_hash") or m.roi.data_hash)
    named = f"model {path.name} (card data_hash {data_hash[:12]}), not trained on this study"
    trained_on = (card.get("training") or {}).get("subjects") or []
    dice = {task: {k: round(float(v), 3) for k, v in d.items()}
            for task, d in ((card.get("validation") or {}).get("dice") or {}).items()}
    notes = [f"{named}: file {path}, sha256 {sha256_path(path)}; its card: trained on subjects "
             f"{list(trained_on)}, validation Dice {dice}; no model was trained here and every "
             "subject with ground-truth masks is scored as held out"]
    shared = sorted(set(map(str, trained_on)) & set(study_subjects))
    if shared:
        notes.append(f"the model's training subjects {shared} share ids with this study's: if "
                     "they are the same people, their scores are not held out")
    return m.roi, m.vessels, named, notes


def _clock_table(part: ReportPart, manifest, info: dict, signals: dict) -> None:
    """The camera clock cross-check table of the part, and a note per disagreement.

    ``signals`` are the camera signals the segmentation pass computed while it read the
    frames; a session without one (its pass failed) is read again here.
    """
    from irtrepro.thermal_study import check_clocks

    # the page's notes carry the warning (a Python warning would end the part where
    # warnings are errors)
    tab = check_clocks(manifest, {k: v["store"].path for k, v in info.items()}, warn=False,
                       signals=signals)
    if not len(tab):
        return
    part.tables["clock_check"] = (
        tab, "Camera clock cross-check per session: lag (s) of the calf temperature (mean of "
        "the frames' central region) against heart rate, by cross-correlation of first "
        "differences, on the session clock (origin: where the frames' time origin came from; "
        "offset_s, drift_ppm: the manifest's corrections). 0 when the clocks agree; agrees: "
        "|lag_s| <= tolerance_s, empty when the peak correlation r is below min_r (the lag is "
        "then not identified; reason). A guard against gross clock errors, not a 1 s "
        "measurement (irtrepro.clock).")
    for row in tab.itertuples():
        if row.agrees is not None and not row.agrees:
            part.notes.append(f"{row.subject}/{row.session}: camera clock disagrees with heart "
                              f"rate by {row.lag_s:+.1f} s (r={row.r:.2f}; tolerance "
                              f"{row.tolerance_s:g} s): check the thermal entry's offset_s "
                              "(table clock_check)")


def _study_vars(manifest, seg, info: dict, model):
    """The segmented sessions' Study variables with provenance (one road with `build`)."""
    from irtrepro.manifest import sha256_path
    from irtrepro.thermal_study import ThermalSession, thermal_study_vars

    model_prov = ({"model": str(model), "model_sha256": sha256_path(model)}
                  if model is not None else {})
    sessions = []
    for key, variables in seg.features.items():
        prov = {**info[key]["provenance"], **model_prov, **seg.frame_counts.get(key, {})}
        prov["frames_read"] = info[key]["provenance"]["frames_read"]
        sessions.append(ThermalSession(key[0], key[1], variables, info[key]["clock"], prov))
    return thermal_study_vars(sessions, [s.id for s in manifest.subjects],
                              list(dict.fromkeys(s.session for s in manifest.sessions)))


def run_for_report(manifest, cache_dir: Path, *, seed: int = 0, progress=None,
                   max_train_frames: int = 2400, n_heldout: int = 3,
                   settings: dict | None = None, n_workers: int | None = None,
                   model: str | os.PathLike | None = None,
                   frames_cache: str | os.PathLike | None = None,
                   scheduler: str | None = None,
                   uncertainty_every_s: float | None = 60.0,
                   uncertainty_variants: tuple[str, ...] | None = None,
                   precision: str = DEFAULT_PRECISION) -> ReportPart:
    """Train-or-reuse the ROI and vessel models (or take a model file), segment every
    session, extract features.

    Parameters
    ----------
    manifest : Manifest
    cache_dir : path-like
        Where the trained models are cached.
    seed : int
        Seed of the subject split and of training.
    progress : bool or None
    max_train_frames : int
        Training frames, drawn evenly from the training subjects' sessions.
    n_heldout : int
        Held-out subjects (at least one subject is kept for training).
    settings : dict, optional
        ``{"roi": {...}, "vessels": {...}}`` keyword arguments of
        :func:`~irtrepro.vision.train.train_segmenter` (part of the model cache key).
    n_workers : int, optional
        Processes that segment sessions in parallel (default: 1 on CUDA, else
        :func:`irtrepro._threads.parallelism`, each with one torch thread).
    model : path-like, optional
        A model file (:class:`~irtrepro.vision.models.SegmentationModel`, ``irtrepro
        train-seg --annotations``). Nothing is trained and the model cache is not used; every
        subject with ground-truth masks is held out, and the captions and notes name the file.
        ``max_train_frames``, ``n_heldout`` and ``settings`` are then unused.
    frames_cache : path-like, optional
        Where camera files are converted to zarr frame stores, once each, cached by their
        sha256 (default ``cache_dir/frames``; the report passes its ``cache/frames``).
    scheduler : str, optional
        Segment the sessions on dask.distributed workers (``vision: {scheduler: ADDRESS}`` in
        the report's settings file; :func:`irtrepro.distributed.open_client`): one task per
        session, the masks equal to a run here on the same kind of device. Not part of the
        part's cache key, for that reason. ``n_workers`` is then unused.
    uncertainty_every_s : float or None
        Segmentation uncertainty by test-time augmentation
        (:mod:`irtrepro.vision.uncertainty`): one frame every this many seconds of each
        session is segmented again under each of ``uncertainty_variants`` (default
        :data:`~irtrepro.vision.uncertainty.DEFAULT_VARIANTS`), and measured under the
        ground-truth masks where a held-out session has them; ``None`` or 0 skips it.
    uncertainty_variants : tuple of str, optional
    precision : {"auto", "float32", "bfloat16"}
        Numeric precision of the networks at inference (:mod:`irtrepro.vision.precision`;
        ``"auto"``: bfloat16 where the device computes it natively, else float32); the
        quality tables score the masks made at this precision, and the notes name it.

    Returns
    -------
    ReportPart
        The quality table (per class on held-out subjects), the metric-error table
        (segmented vs ground-truth masks), the robustness table, the camera clock check
        table (:func:`irtrepro.thermal_study.check_clocks`), the segmentation-uncertainty table,
        an example figure and ``study_vars`` on (subject, session, time, side), placed on the session clock, with
        per-session provenance (:func:`irtrepro.thermal_study.thermal_study_vars`); with
        ``uncertainty_every_s``, also ``<metric>_seg`` on (subject, session, segmentation,
        time), both calves, at the sampled seconds only; its last segmentation is
        ``"ground truth"`` (NaN but for held-out sessions with masks).
    """

    from irtrepro._threads import parallelism, torch_threads
    from irtrepro.plots.segmentation import robustness_figure, segmentation_example
    from irtrepro.splits import subject_split
    from irtrepro.sync import study_grid
    from irtrepro.vision.evaluate import (
        ATTENUATION_WARN,
        ROI_LABELS,
        VESSEL_LABELS,
        metric_error_table,
        robustness_table,
        scores_from_counts,
    )
    from irtrepro.vision.infer import device, predict_masks
    from irtrepro.vision.pipeline import (
        segment_sessions,
        train_models,
        training_arrays,
    )
    from irtrepro.vision.precision import inference_network, resolve_precision

    t_start = time.perf_counter()
    cache = Cache(Path(cache_dir) / "vision")
    part = ReportPart(name="vision", title="Thermal segmentation and skin-temperature metrics")
    t0 = time.perf_counter()
    frames_dir = Path(frames_cache) if frames_cache is not None else Path(cache_dir) / "frames"
    sessions, info, notes = _sessions(manifest, frames_dir, progress)
    part.notes += notes
    part.timings["frame_stores"] = time.perf_counter() - t0
    with_truth = [e for e in sessions if e.masks is not None]
    named = None  # caption phrase of a given model file
    if model is not None:
        t0 = time.perf_counter()
        held = sorted({e.subject for e in with_truth})
        roi_ck, ves_ck, named, model_notes = _given_model(
            model, sorted({e.subject for e in sessions}))
        part.notes += model_notes
        torch_threads()
        part.timings["load_model"] = time.perf_counter() - t0
    else:
        if not with_truth:
            part.notes.append("no session has ground-truth thermal masks: nothing to train on")
            return part
        subjects = sorted({e.subject for e in with_truth})
        train_s, held = subject_split(subjects, n_test=min(n_heldout, len(subjects) - 1),
                                      seed=seed)
        torch_threads()
        t0 = time.perf_counter()
        F, R, V, S = training_arrays([e for e in with_truth if e.subject in train_s],
                                     max_train_frames, progress)
        key = model_key(F, R, V, seed=seed, settings=dict(settings or {}))
        roi_ck, ves_ck = train_models(
            F, R, V, S, seed=seed, settings=settings,
            cached=lambda task, train: cache.get(task, key, train, **_checkpoint_io(task))[0])
        part.timings["train_or_load"] = time.perf_counter() - t0
        del F, R, V
    # where a caption says which models made the masks
    by = f"; {named}" if named else ""
    dev = device()
    precision = resolve_precision(precision, dev)
    models = tuple(inference_network(ck, dev, precision) for ck in (roi_ck, ves_ck))
    part.notes.append(f"segmentation networks run in {precision} on {dev.type}")
    if n_workers is None:
        n_workers = 1 if dev.type == "cuda" else parallelism()
    t0 = time.perf_counter()
    seg = segment_sessions(sessions, roi_ck, ves_ck, held=held, models=models,
                           n_workers=n_workers, progress=progress, grid=study_grid(manifest),
                           scheduler=scheduler, signals=True)
    part.notes += seg.notes
    part.timings["segment_extract"] = time.perf_counter() - t0
    _clock_table(part, manifest, info, seg.signals)
    if seg.counts:
        q = pd.concat([scores_from_counts(seg.counts["roi"], labels=ROI_LABELS).assign(model="roi"),
                       scores_from_counts(seg.counts["vessels"], labels=VESSEL_LABELS).assign(
                           model="vessels")], ignore_index=True)
        part.tables["segmentation_quality"] = (
            q, f"Per-class pixel scores pooled over all frames of the held-out subjects {held} "
               + (f"({named}); " if named else f"(models trained on {train_s}); ")
               + "Dice = F1.")
        err = metric_error_table(seg.metric_errors)
        part.tables["metric_error"] = (
            err, "Absolute difference per frame and calf between the metric under predicted "
            f"masks and under ground-truth masks (held-out subjects{by}). within_session_sd: "
            "SD over "
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
        fa, tr, tv = seg.picked if seg.picked is not None else (np.zeros((0, 1, 1)),) * 3
        rob = robustness_table(np.asarray(fa, np.float32), tr, tv, lambda x: predict_masks(
            x, roi_ck, ves_ck, models=models, dev=dev), seed=seed)
        part.tables["robustness"] = (rob, f"Dice etc. per class on {len(fa)} held-out frames under "
                                     f"perturbations of the input (masks scaled alike){by}.")
        if len(rob):
            part.figures["segmentation_robustness"] = (
                robustness_figure(rob), f"Dice per class on {len(fa)} held-out frames under each "
                "perturbation of the input (table robustness): added noise, whole-frame offset "
                "and contrast (emissivity / reflected-temperature errors), background offset, "
                f"blur, zoom{by}.")
    if seg.example is not None:
        f, gr, gv, pr, pv, subject, session = seg.example
        part.figures["example_segmentation"] = (
            segmentation_example(f, gr, gv, pr, pv, title=f"{subject}/{session} frame"),
            "Example held-out frame: ground-truth and predicted calf (colour) and vessel masks.")
    if seg.features:
        sv = _study_vars(manifest, seg, info, model)
        which = {"roi": roi_ck.data_hash[:16], "vessels": ves_ck.data_hash[:16],
                 "held_out": held}
        if model is not None:
            which["model"] = Path(model).name
        sv.attrs["vision_models"] = json.dumps(which)
        if uncertainty_every_s:
            t0 = time.perf_counter()
            seg_vars, table = _uncertainty(sessions, seg, roi_ck, ves_ck, models, dev, held,
                                           float(uncertainty_every_s), uncertainty_variants, sv)
            sv = sv.merge(seg_vars)
            part.timings["segmentation_uncertainty"] = time.perf_counter() - t0
            if len(table):
                part.tables["segmentation_uncertainty"] = (table, _UNCERTAINTY_CAPTION.format(
                    every=uncertainty_every_s, variants=", ".join(
                        seg_vars["segmentation"].values[1:-1]), held=held, by=by))
        part.study_vars = sv
    if model is None:
        part.notes.append(f"models: encoder {roi_ck.encoder} depth {roi_ck.encoder_depth}, "
                          f"trained {roi_ck.metrics.get('seconds', 0):.0f} s + "
                          f"{ves_ck.metrics.get('seconds', 0):.0f} s on {train_s}")
    part.timings["total"] = time.perf_counter() - t_start
    return part


_UNCERTAINTY_CAPTION = (
    "Segmentation uncertainty by test-time augmentation: one frame every {every:g} s of every "
    "session segmented again with the input transformed ({variants}: mirrored left-right, "
    "shifted by one pixel), the masks transformed back, the metric measured under each (both "
    "calves). "
    "tta_sd: SD over the segmentations of a frame's metric (median over the sampled frames); "
    "on the held-out subjects {held} with ground truth also abs_error (|as segmented - "
    "ground-truth masks|, median) and error_to_tta_sd. Augmentation misses an error every "
    "variant shares, so tta_sd is a lower bound: an error_to_tta_sd well above 1 says the "
    "augmentation spread understates the segmentation error; the reliability part therefore "
    "also propagates the error measured against the ground truth "
    "(reliability: segmentation_sensitivity){by}.")


def _uncertainty(sessions, seg, roi_ck, ves_ck, models, dev, held, every_s, variants, sv):
    """``<metric>_seg`` Study variables of every segmented session, and the calibration table
    (test-time-augmentation spread against the error vs ground truth, held-out subjects)."""
    import xarray as xr

    from irtrepro.io.thermal import open_frame_store
    from irtrepro.vision.uncertainty import (
        DEFAULT_VARIANTS,
        GROUND_TRUTH,
        METRICS,
        sample_frames,
        variant_metrics,
    )

    variants = tuple(variants) if variants else DEFAULT_VARIANTS
    subjects, order = list(sv["subject"].values), list(sv["session"].values)
    grid = sv["time"].values
    names = None
    data: dict[str, np.ndarray] = {}
    spread: dict[str, list] = {}
    errors: dict[str, list] = {}
    for e in sessions:
        key = (e.subject, e.session)
        if key not in seg.features:
            continue
        fr = open_frame_store(e.frames)["frames"]
        times = fr["time"].values
        idx = sample_frames(e.clock if e.clock is not None else times, every_s)
        truth = None
        if e.masks is not None and e.subject in held:
            gt = open_frame_store(e.masks)
            truth = (gt["roi"][idx].values, gt["vessels"][idx].values)
        own_grid = seg.features[key]["time"].values
        m, true = variant_metrics(fr[idx].values, times[idx], roi_ck, ves_ck,
                                  variants=variants, grid=own_grid, models=models, dev=dev,
                                  clock=e.clock[idx] if e.clock is not None else None,
                                  truth=truth)
        names = [*m["segmentation"].values, GROUND_TRUTH]
        i, j = subjects.index(e.subject), order.index(e.session)
        for name in METRICS:
            if name not in m:
                continue
            da = m[name].sel(side="both") if "side" in m[name].dims else m[name]
            arr = data.setdefault(name, np.full((len(subjects), len(order), len(names),
                                                 grid.size), np.nan, np.float32))
            vals = da.transpose("segmentation", "time").values
            if own_grid.size == grid.size:  # sessions on their own clock: not on the Study's
                arr[i, j, :-1] = vals
            seen = np.isfinite(vals).all(axis=0)
            spread.setdefault(name, []).append(np.std(vals[:, seen], axis=0, ddof=1))
            if true is not None and name in true:
                t = (true[name].sel(side="both") if "side" in true[name].dims
                     else true[name]).values
                if own_grid.size == grid.size:
                    arr[i, j, -1] = t
                ok = seen & np.isfinite(t)
                errors.setdefault(name, []).append(np.abs(vals[0, ok] - t[ok]))
    if names is None:
        return xr.Dataset(), pd.DataFrame()
    out = xr.Dataset(coords={"subject": subjects, "session": order, "segmentation": names,
                             "time": grid})
    rows = []
    for name, arr in data.items():
        attrs = dict(sv[name].attrs) if name in sv else {}
        out[f"{name}_seg"] = (("subject", "session", "segmentation", "time"), arr, {
            **attrs, "long_name": f"{attrs.get('long_name', name)} under each segmentation "
            "(test-time augmentation; both calves; sampled seconds only)",
            "every_s": every_s})
        sd = np.concatenate(spread[name])
        err = np.concatenate(errors[name]) if name in errors else np.zeros(0)
        tta = float(np.median(sd)) if sd.size else np.nan
        ae = float(np.median(err)) if err.size else np.nan
        rows.append({"metric": name, "units": attrs.get("units", ""), "tta_sd": tta,
                     "abs_error": ae, "error_to_tta_sd": ae / tta if tta > 0 else np.nan,
                     "n_frames": int(sd.size), "n_frames_truth": int(err.size),
                     "variants": ", ".join(names[1:-1]), "every_s": every_s})
    return out, pd.DataFrame(rows)
