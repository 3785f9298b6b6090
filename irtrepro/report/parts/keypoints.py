"""The keypoint part of ``make report``: manifest -> keypoint models, AP tables, cadence."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._logging import logger
from irtrepro.report.cache import Cache, cache_key
from irtrepro.report.part import ReportPart

__all__ = ["DEFAULT_BETAS", "DEFAULT_STUDENTS", "run_for_report"]

#: What the default report trains (sized for 2 CPU cores; see docs/keypoints.md). The full
#: table (ViT-like and CNN students) and the beta sweep run with ``students=``/``betas=``, e.g.
#: ``settings={"keypoints": {"students": [...], "betas": [...]}}``.
DEFAULT_STUDENTS: tuple[str, ...] = ("mobilenetv3",)
DEFAULT_BETAS: tuple[float, ...] = ()

#: source of the experiment's result (its cache key): the keypoint code and the synthetic
#: corpus it trains on
EXPERIMENT_SOURCE = ("irtrepro.keypoints", "irtrepro.synth.pose", "irtrepro.synth.pose_corpus")


def _experiment(cfg, cache: Cache, students, betas, progress, workers: int):
    """The experiment's tables, models and a few example frames, computed or reused."""
    from irtrepro.synth import pose_corpus as train

    def compute():
        res = train.run_experiment(cfg, students=students, baseline=True, betas=betas,
                                   progress=progress, keep_models=True, workers=workers)
        cs = res["corpus"]
        keep = np.flatnonzero(np.isin(cs.subject, sorted(set(cs.subject))[-1:]))[:200:25]
        small = {k: res[k] for k in ("table", "beta", "timings", "history", "config")}
        small["models"] = res["models"]
        small["examples"] = {"frames": cs.frames[keep], "keypoints": cs.keypoints[keep]}
        return small

    key = cache_key(settings=[cfg.to_dict(), list(students), list(betas)],
                    source=EXPERIMENT_SOURCE)
    return cache.get("keypoints", key, compute)


def _cadence(manifest, model, cfg) -> tuple[pd.DataFrame, list[str]]:
    """Cadence per pose clip of the manifest; truth keypoints compared where present."""
    from irtrepro.io.pose import read_pose_clip
    from irtrepro.keypoints.cadence import clip_cadence
    from irtrepro.keypoints.coco import annotations_array, read_coco_keypoints

    rows, notes = [], []
    for s in manifest.sessions:
        files = [f for f in s.files.values() if f.kind == "pose"]
        truths = [f for f in s.files.values() if f.kind == "pose_keypoints"]
        for fe in files:
            try:
                clip = read_pose_clip(fe.path)
            except Exception as exc:  # a bad file is reported and left out
                notes.append(f"{s.subject}/{s.session}: {fe.path.name} unreadable ({exc})")
                continue
            truth = None
            for tf in truths:
                try:
                    k, _ = annotations_array(read_coco_keypoints(tf.path))
                    if len(k) == len(clip["thermal"]):
                        truth = k
                except Exception as exc:
                    notes.append(f"{s.subject}/{s.session}: truth {tf.path.name}: {exc}")
            est = clip_cadence(model, clip["thermal"], clip["fps"], cfg, truth=truth)
            rows.append({"subject": s.subject, "session": s.session, "file": fe.path.name,
                         "t_start": float(clip["time"][0]), "t_end": float(clip["time"][-1]),
                         **est})
    cols = ["subject", "session", "file", "t_start", "t_end", "n_frames", "frames_with_person",
            "cadence", "cadence_truth_keypoints", "periodicity", "reason"]
    return pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(rows), notes


def _ap_caption(cfg) -> str:
    split = ("leave-one-subject-out" if cfg.folds is None
             else f"{cfg.folds}-fold leave-subjects-out")
    return (f"COCO keypoint AP/AP50/AP75 (pycocotools, OKS with the 17 COCO sigmas) on the "
            f"thermal frames of held-out synthetic subjects ({split}, "
            f"{cfg.n_subjects} subjects, {cfg.frames_per_subject} frames each, "
            f"{cfg.label_fraction:.0%} labelled). Teacher on RGB-like frames; students distilled "
            f"on paired frames without thermal labels (beta={cfg.beta}); baseline trained on the "
            f"thermal frames with the labels the teacher had. Crops {cfg.crop_hw[0]}x"
            f"{cfg.crop_hw[1]}, heatmaps {cfg.hm_hw[0]}x{cfg.hm_hw[1]}, deconv width "
            f"{cfg.deconv_ch} (published: 256x192, 64x48, 256); teacher/baseline "
            f"{cfg.teacher_epochs} epochs, students {cfg.max_epochs}; flip test "
            f"{'on' if cfg.flip_test else 'off'}. AP_run / AP_tug: the running (from behind) "
            f"and Timed Up and Go (side view) frames alone. FLOPs by torch FlopCounterMode, one "
            f"crop.")


def run_for_report(manifest, cache_dir: Path, *, seed: int = 0, progress=None, config=None,
                   students: Sequence[str] = DEFAULT_STUDENTS,
                   betas: Sequence[float] = DEFAULT_BETAS, workers: int | None = None
                   ) -> ReportPart:
    """Train or reuse the keypoint models, evaluate held-out subjects, measure cadence.

    Parameters
    ----------
    manifest : Manifest
    cache_dir : path-like
        Where the experiment's result (tables and models) is cached.
    seed : int
    progress : bool or None
    config : KeypointConfig or dict, optional
        Settings of the experiment (a dict sets fields of the default
        :class:`~irtrepro.keypoints.train.KeypointConfig`).
    students : sequence of str
        Student encoders to compare (default MobileNetV3-Small only).
    betas : sequence of float
        Betas to sweep (default none).
    workers : int, optional
        Processes that train folds at the same time (default
        :func:`irtrepro._threads.parallelism`).

    Returns
    -------
    ReportPart
        Tables ``keypoints_ap`` (AP/AP50/AP75 per model, mean over folds, params, GFLOPs),
        ``keypoints_folds``, ``cadence``; figures ``keypoints_examples`` and (when computed)
        ``keypoints_beta``; ``study_vars`` with ``cadence`` (steps/min) on (subject, session,
        time) where pose clips exist, NaN elsewhere.
    """
    from irtrepro._threads import parallelism, torch_threads
    from irtrepro.keypoints.cadence import cadence_study_variables
    from irtrepro.keypoints.train import KeypointConfig, predict_frames, summarise
    from irtrepro.keypoints.vocabulary import COCO_SKELETON
    from irtrepro.plots.keypoints import BETA_CAPTION, keypoint_examples, plot_beta_sweep

    torch_threads()
    if isinstance(config, dict):
        config = KeypointConfig(**{"seed": seed, **config})
    cfg = config or KeypointConfig(seed=seed)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    res, reused = _experiment(cfg, Cache(cache_dir), tuple(students), tuple(betas), progress,
                              parallelism(workers))
    timings["train+evaluate" + (" (cached)" if reused else "")] = time.perf_counter() - t0
    part = ReportPart(name="keypoints", title="Keypoints in 80x60 thermal frames and cadence")
    part.tables["keypoints_ap"] = (summarise(res["table"]), _ap_caption(cfg))
    part.tables["keypoints_folds"] = (res["table"], "Per-fold results of the table above.")
    if len(res["beta"]):
        part.figures["keypoints_beta"] = (plot_beta_sweep(res["beta"], beta_default=cfg.beta),
                                          BETA_CAPTION)
        part.tables["keypoints_beta"] = (res["beta"], "beta sweep, per fold.")
    model = res["models"].get(f"student {cfg.student}")
    ex = res.get("examples")
    if model is not None and ex is not None and len(ex["frames"]):
        pred = predict_frames(model, ex["frames"], cfg, all_people=False)
        people = [p[0]["keypoints"] if p else None for p in pred]
        part.figures["keypoints_examples"] = (
            keypoint_examples(ex["frames"], people, ex["keypoints"], COCO_SKELETON),
            "Held-out thermal frames (80x60): student skeleton (white), truth (cyan +).")
    study_vars = None
    if model is not None:
        t = time.perf_counter()
        cad, notes = _cadence(manifest, model, cfg)
        part.notes += notes
        timings["cadence"] = time.perf_counter() - t
        if len(cad):
            part.tables["cadence"] = (cad, "Cadence (steps/min) per pose clip from the student's "
                                      "ankle trajectories; cadence_truth_keypoints uses the "
                                      "ground-truth keypoints of the same clip.")
            study_vars = cadence_study_variables(
                cad, sorted({s.subject for s in manifest.sessions}),
                sorted({s.session for s in manifest.sessions}))
        else:
            part.notes.append("keypoints: no 'pose' files in the manifest; cadence not measured")
    part.study_vars = study_vars
    part.timings = {k: round(v, 2) for k, v in {**timings, **res["timings"]}.items()}
    if reused:
        logger.info("keypoints: reused cached models")
    return part
