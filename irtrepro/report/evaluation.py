"""``make evaluate``: the nested protocol of every model on a study, into ``evaluation.json``.

Adapts a manifest (and, for the keypoints, the generator's paired corpus) to the models'
``nested_fold`` functions, runs outer folds x seeds through :mod:`irtrepro.report.protocol`
(one cached, resumable job each) and writes the summary: per figure its value, SD over folds x
seeds, 95 % interval over subjects and whether the target is met. ``make report`` quotes it
where it exists (:mod:`irtrepro.report.results`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger
from irtrepro.report.cache import cache_key
from irtrepro.report.protocol import plan_jobs, run_jobs, summarise_figure

__all__ = ["DEFAULT_FOLDS", "DEFAULT_SEEDS", "FIGURES", "MODELS", "run_evaluation"]

MODELS = ("breathing", "keypoints", "segmentation")
DEFAULT_SEEDS = (0, 1, 2)
#: outer folds per model (None: leave one subject out)
DEFAULT_FOLDS: dict[str, int | None] = {"breathing": 3, "keypoints": None, "segmentation": 3}

#: figures per model: (name, units, target)
FIGURES: dict[str, list[tuple[str, str, str | None]]] = {
    "breathing": [("accuracy", "1", ">= 0.95"), ("accuracy signal baseline", "1", None)],
    "keypoints": [(f"{k} {m}", "1", ">= 0.8" if (k, m) == ("AP", "student") else None)
                  for m in ("student", "baseline", "constant", "teacher")
                  for k in ("AP", "AP50", "AP75")],
    "segmentation": [("Dice left_calf", "1", ">= 0.95"), ("Dice right_calf", "1", ">= 0.95"),
                     ("Dice vein", "1", ">= 0.75"), ("Dice perforator", "1", ">= 0.6")],
}

#: the range of every figure above (each is a proportion)
FIGURE_BOUNDS = (0.0, 1.0)

PROTOCOL = (
    "Outer folds of subjects (the same for every seed) x training seeds. Inside each fold, "
    "every choice is made on validation subjects drawn from its training subjects: breathing: "
    "the prediction variant (feature scaling per recording / pooled / AdaBN) on 30 % of the "
    "training subjects, the SVM/RF weight on leave-one-training-subject-out fits; keypoints: "
    "the epoch kept (early stopping) of teacher, student and baseline on one validation "
    "subject never trained on; segmentation: the step kept (early stopping) of each U-Net on "
    "25 % of the training subjects. The test subjects are scored once per seed. value: mean "
    "over subjects of each subject's mean over seeds; sd_folds_seeds: SD of the per-job "
    "figure; ci: 95 % t-interval over subjects, clipped to [0, 1]; met: the interval clears "
    "the target.")


# ---- breathing -------------------------------------------------------------------------
def _breathing_data(manifest, progress):
    from irtrepro.breathing.data import manifest_images
    from irtrepro.report.parts.breathing import _labels

    data, frames = manifest_images(manifest, progress=progress)
    return data, frames, _labels(manifest, frames)


def _breathing_job(job, *, data, frames, labels) -> dict:
    from irtrepro.breathing.nested import nested_fold, signal_baseline_accuracy

    res = nested_fold(data, job.test_subjects, seed=job.seed)
    base = signal_baseline_accuracy(frames, labels, job.test_subjects)
    for s, a in base.items():
        res["per_subject"].setdefault(s, {})["accuracy signal baseline"] = a
    if base:
        # subjects weighted alike (their frame counts are alike in the study)
        res["pooled"]["accuracy signal baseline"] = sum(base.values()) / len(base)
    return res


def _breathing(manifest, progress):
    from irtrepro.breathing.nested import PREDICTION_VARIANTS
    from irtrepro.breathing.train import BreathConfig
    from irtrepro.report.parts.breathing import MODEL_SOURCE

    data, frames, labels = _breathing_data(manifest, progress)
    data = data.subset(data.labels >= 0)
    key = cache_key(settings=[asdict(BreathConfig()), PREDICTION_VARIANTS],
                    data=(data.images, data.labels, list(data.meta["subject"].astype(str))),
                    source=(*MODEL_SOURCE, "irtrepro.breathing.nested",
                            "irtrepro.breathing.signal"))
    fn = partial(_breathing_job, data=data, frames=frames, labels=labels)
    return sorted(set(data.meta["subject"].astype(str))), fn, key


# ---- keypoints -------------------------------------------------------------------------
def _keypoints_job(job, *, corpus, labelled, config) -> dict:
    from irtrepro.keypoints.nested import nested_fold

    return nested_fold(corpus, labelled, job.test_subjects, seed=job.seed, config=config)


def _keypoints(manifest, progress, corpus_seed):
    import dataclasses

    from irtrepro.keypoints.train import KeypointConfig, labelled_frames
    from irtrepro.report.parts.keypoints import EXPERIMENT_SOURCE
    from irtrepro.synth.pose_corpus import make_corpus

    cfg = KeypointConfig(corpus_seed=corpus_seed)
    corpus = dataclasses.replace(make_corpus(cfg, progress=progress), frames=None)
    labelled = labelled_frames(cfg, len(corpus))
    key = cache_key(settings=cfg.to_dict(), data=(labelled,),
                    source=EXPERIMENT_SOURCE)
    fn = partial(_keypoints_job, corpus=corpus, labelled=labelled, config=cfg)
    return sorted(set(map(str, corpus.subject))), fn, key


# ---- segmentation ----------------------------------------------------------------------
def _segmentation_job(job, *, sessions) -> dict:
    from irtrepro.vision.nested import nested_fold

    return nested_fold(sessions, job.test_subjects, seed=job.seed)


def _segmentation(manifest, progress, frames_cache):
    from irtrepro.report.parts.vision import MODEL_SOURCE, _sessions
    from irtrepro.vision.train import TASK_DEFAULTS

    sessions, info, _notes = _sessions(manifest, Path(frames_cache), progress)
    sessions = [s for s in sessions if s.masks is not None]
    data = [(s.subject, s.session, info[(s.subject, s.session)]["provenance"]["sha256"])
            for s in sessions]
    masks = [e.files["thermal_masks"].sha256 for e in manifest.sessions
             if "thermal_masks" in e.files]
    key = cache_key(settings=TASK_DEFAULTS, data=(data, masks),
                    source=(*MODEL_SOURCE, "irtrepro.vision.nested", "irtrepro.vision.evaluate",
                            "irtrepro.vision.pipeline"))
    fn = partial(_segmentation_job, sessions=sessions)
    return sorted({s.subject for s in sessions}), fn, key


# ---- the run ---------------------------------------------------------------------------
def run_evaluation(manifest, out: str | os.PathLike, *, models=MODELS,
                   seeds=DEFAULT_SEEDS, folds: dict | None = None,
                   max_seconds: float | None = None, workers: int | None = None,
                   frames_cache: str | os.PathLike | None = None,
                   keypoint_corpus_seed: int | None = None,
                   progress: bool | None = None) -> Path:
    """Run (or resume) the nested protocol of ``models``; write ``out/evaluation.json``.

    Parameters
    ----------
    manifest : Manifest
    out : path-like
        Folder of ``evaluation.json`` and of the per-job cache (``out/jobs``).
    models : sequence of str
        Any of :data:`MODELS`.
    seeds : sequence of int
        Training seeds (at least 3 for a spread over seeds).
    folds : dict, optional
        Outer folds per model (default :data:`DEFAULT_FOLDS`).
    max_seconds : float, optional
        Start no new job after this many seconds in all; the summary says which jobs are
        pending, and a later run resumes them.
    workers : int, optional
        Jobs run at the same time, one torch thread each (default
        :func:`irtrepro._threads.parallelism`).
    frames_cache : path-like, optional
        Where camera files are converted to frame stores (default ``out/frames``; the
        report's ``data/cache/frames`` shares the conversions).
    keypoint_corpus_seed : int, optional
        Seed of the keypoints' synthetic corpus (default: that of :class:`KeypointConfig`,
        the corpus the report trains on). Another seed renders subjects the defaults were
        never tuned on; the training seeds stay ``seeds``.

    Returns
    -------
    Path
        ``out/evaluation.json``, rewritten after each model.
    """
    from irtrepro._threads import parallelism
    from irtrepro.errors import OptionError
    from irtrepro.study import git_commit
    from irtrepro.vision.infer import device

    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise OptionError(f"evaluate: unknown model(s) {unknown}; models: {list(MODELS)}")
    folds = {**DEFAULT_FOLDS, **(folds or {})}
    out = Path(out)
    path = out / "evaluation.json"
    head = {"protocol": PROTOCOL, "commit": git_commit(), "device": str(device()),
            "seeds": list(seeds)}
    workers = parallelism(workers)
    t_start = time.perf_counter()
    for name in models:
        t0 = time.perf_counter()
        if name == "breathing":
            subjects, fn, key = _breathing(manifest, progress)
        elif name == "keypoints":
            subjects, fn, key = _keypoints(manifest, progress, keypoint_corpus_seed)
        else:
            subjects, fn, key = _segmentation(manifest, progress,
                                              frames_cache or out / "frames")
        jobs = plan_jobs(name, subjects, folds=folds[name], seeds=seeds)
        left = None if max_seconds is None else max(0.0, max_seconds - (t0 - t_start))
        done, pending = run_jobs(jobs, fn, out / "jobs", key=key, max_seconds=left,
                                 workers=workers)
        figures = {fig: {"units": units, **summarise_figure(done, fig, target=target,
                                                                bounds=FIGURE_BOUNDS)}
                   for fig, units, target in FIGURES[name]}
        entry = {
            # each model's own provenance: the file's head is that of its last writer
            "commit": head["commit"], "device": head["device"],
            # the machines the jobs ran on (a cached job keeps its own; older ones lack it)
            "cpu": sorted({r.get("machine") or "not recorded" for r in done}),
            "seeds": list(seeds),
            "subjects": subjects,
            "folds": "leave-one-subject-out" if folds[name] is None else folds[name],
            "test_subjects": {f"fold{j.fold}": list(j.test_subjects) for j in jobs},
            "jobs_planned": len(jobs), "jobs_done": len(done),
            "pending": [f"fold{j.fold}-seed{j.seed}" for j in pending],
            "complete": not pending, "key": key,
            **({"corpus_seed": keypoint_corpus_seed} if name == "keypoints" else {}),
            "threads": sorted({r.get("threads") for r in done if r.get("threads")}),
            "job_seconds": round(sum(r.get("seconds", 0.0) for r in done), 1),
            "figures": figures,
            "choices": {f"fold{r['job']['fold']}-seed{r['job']['seed']}": r.get("choices")
                        for r in done}}
        logger.info("evaluate %s: %d of %d jobs done in %.0f s", name, len(done), len(jobs),
                    time.perf_counter() - t0)
        out.mkdir(parents=True, exist_ok=True)
        # read again: another run may have written other models meanwhile
        summary = json.loads(path.read_text()) if path.is_file() else {}
        summary.update(head)
        summary.setdefault("models", {})[name] = entry
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return path
