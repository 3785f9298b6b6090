"""The nested evaluation protocol: outer subject-wise folds x training seeds, summarised.

Each model's figure is measured on the test subjects of every outer fold, once per training
seed; what the fold chooses (epochs, thresholds, prediction variants, ensemble weights) it
chooses on validation subjects drawn from its own training subjects (the model's
``nested_fold``). This module plans the folds, runs one job per (fold, seed) with a
resumable per-job cache, and summarises each figure as

- ``value``: the mean over subjects of each subject's mean over seeds (every subject is a
  test subject exactly once per seed);
- ``sd_folds_seeds``: the SD of the per-job figure over folds x seeds;
- ``ci_low`` / ``ci_high``: a 95 % t-interval over the subjects' values (n = subjects),
  clipped to the figure's range where it has one (a proportion's interval over 4 subjects
  can pass 1; ``ci_method`` then says so);
- ``met``: whether the interval clears the target (``>= x``: ``ci_low >= x``; ``<= x``:
  ``ci_high <= x``); ``None`` without a target or without an interval.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger
from irtrepro.splits import subject_folds

__all__ = ["Job", "plan_jobs", "run_jobs", "summarise_figure", "target_met"]

#: seed of the subject order behind the outer folds (the folds are the same for every seed)
FOLD_SEED = 0


@dataclass(frozen=True)
class Job:
    """One outer fold trained with one seed."""

    model: str
    fold: int
    seed: int
    test_subjects: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"fold{self.fold}-seed{self.seed}"


def plan_jobs(model: str, subjects: Sequence[str], *, folds: int | None,
              seeds: Sequence[int]) -> list[Job]:
    """Every (outer fold, seed) of a model, seeds outermost: a run stopped part-way (time
    limit) has scored every subject once before it starts a second seed.

    Parameters
    ----------
    model : str
        Name of the model (a job cache folder).
    subjects : sequence of str
        Subject ids (sorted, then shuffled once with :data:`FOLD_SEED`, so the folds mix
        subject ids and do not depend on the training seed).
    folds : int or None
        Outer folds (:func:`irtrepro.splits.subject_folds`; None: leave one subject out).
    seeds : sequence of int
        Training seeds.
    """
    subs = sorted(set(map(str, subjects)))
    order = [subs[i] for i in np.random.default_rng(FOLD_SEED).permutation(len(subs))]
    groups = subject_folds(order, folds)
    return [Job(model, k, int(s), tuple(sorted(g))) for s in seeds
            for k, g in enumerate(groups)]


def run_jobs(jobs: Sequence[Job], fold_fn: Callable[[Job], dict], cache_dir: str | Path, *,
             key: str, max_seconds: float | None = None, workers: int = 1
             ) -> tuple[list[dict], list[Job]]:
    """Run (or reuse) every job; each result is written as soon as it is done.

    Parameters
    ----------
    jobs : sequence of Job
    fold_fn : callable
        ``fold_fn(job) -> dict`` with ``per_subject`` (``{subject: {figure: value}}``),
        ``pooled`` (``{figure: value}`` over the job's test subjects) and ``choices`` (what
        the fold chose on its validation subjects, JSON-serialisable). Picklable (a
        module-level function or a ``functools.partial`` of one) when ``workers > 1``.
    cache_dir : path-like
        One JSON file per job (``<model>/<fold>-<seed>.json``), reused when its ``key``
        matches (the data, settings and code that decide the result).
    key : str
    max_seconds : float, optional
        Start no new job after this many seconds (the run resumes where it stopped).
    workers : int
        Processes running jobs at the same time, each with one torch thread; 1: here, with
        the caller's threads.

    Returns
    -------
    done : list of dict
        Results of the finished jobs (each with ``job``, ``seconds``, ``threads`` and
        ``machine``), in the order of ``jobs``.
    pending : list of Job
        Jobs not run (time budget spent).
    """
    t0 = time.perf_counter()
    found: dict[Job, dict] = {}
    todo = []
    for job in jobs:
        res = _cached(_job_path(cache_dir, job), key, job)
        if res is not None:
            found[job] = res
        else:
            todo.append(job)
    pending: list[Job] = []

    def keep(job, res):
        path = _job_path(cache_dir, job)
        res = {"key": key, "job": asdict(job), **res}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(res, indent=1, default=_json) + "\n")
        found[job] = json.loads(path.read_text())

    if workers > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # spawn: a fork after torch's OpenMP start can hang
        with ProcessPoolExecutor(min(workers, len(todo)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            queue, running = list(todo), {}
            while queue or running:
                while queue and len(running) < workers:
                    if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                        pending += queue
                        queue = []
                        break
                    job = queue.pop(0)
                    running[pool.submit(_timed, fold_fn, job, 1)] = job
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    keep(running.pop(fut), fut.result())
    else:
        for job in todo:
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                pending.append(job)
                continue
            keep(job, _timed(fold_fn, job, None))
    return [found[j] for j in jobs if j in found], pending


def _job_path(cache_dir, job: Job) -> Path:
    return Path(cache_dir) / job.model / f"{job.name}.json"


def _cached(path: Path, key: str, job: Job) -> dict | None:
    """A job's stored result when its key and its test subjects are this job's."""
    if not path.is_file():
        return None
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: recomputed, never trusted
    same = res.get("key") == key and res.get("job") == json.loads(json.dumps(asdict(job)))
    return res if same else None


def _timed(fold_fn, job: Job, threads: int | None) -> dict:
    """``fold_fn(job)`` with its run time, torch thread count (``threads`` set first) and the
    machine it ran on (:func:`irtrepro.info.machine`)."""
    from irtrepro._threads import torch_threads
    from irtrepro.info import machine

    n = torch_threads(threads)
    logger.info("evaluate %s %s: test subjects %s (%d torch thread(s))", job.model, job.name,
                ",".join(job.test_subjects), n)
    t = time.perf_counter()
    res = fold_fn(job)
    return {**res, "seconds": time.perf_counter() - t, "threads": n, "machine": machine()}


def _json(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def target_met(target: str | None, ci_low: float | None, ci_high: float | None) -> bool | None:
    """Whether a 95 % interval clears a target ``">= x"`` or ``"<= x"`` (None: no target, or
    no interval)."""
    if not target or ci_low is None or ci_high is None:
        return None
    op, x = target.split()
    x = float(x)
    return bool(ci_low >= x) if op == ">=" else bool(ci_high <= x)


def finite_or_none(v) -> float | None:
    """``v`` as a float, or None where it is missing, not a number, NaN or infinite."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def summarise_figure(results: Sequence[dict], figure: str, *, target: str | None = None,
                     ci_level: float = 0.95,
                     bounds: tuple[float, float] | None = None) -> dict:
    """Spread of one figure over the jobs of a model (see the module docstring).

    ``bounds``: the range the figure can take (``(0, 1)`` for Dice, accuracy, AP); the
    t-interval is clipped to it.

    Returns
    -------
    dict
        ``value``, ``sd_folds_seeds``, ``ci_low``, ``ci_high``, ``ci_method``, ``n_subjects``,
        ``n_jobs``, ``per_job`` (``{job name: pooled value}``), ``target``, ``met``.
    """
    from scipy import stats

    per_subject: dict[str, list[float]] = {}
    per_job = {}
    for r in results:
        name = f"fold{r['job']['fold']}-seed{r['job']['seed']}"
        v = finite_or_none((r.get("pooled") or {}).get(figure))
        if v is not None:
            per_job[name] = v
        for s, figs in (r.get("per_subject") or {}).items():
            u = finite_or_none(figs.get(figure))
            if u is not None:
                per_subject.setdefault(s, []).append(u)
    subj = np.array([np.mean(v) for v in per_subject.values()])
    jobs = np.array(list(per_job.values()))
    out = {"value": float(subj.mean()) if len(subj) else None,
           "sd_folds_seeds": float(jobs.std(ddof=1)) if len(jobs) > 1 else None,
           "ci_low": None, "ci_high": None,
           "ci_method": f"{ci_level:.0%} t-interval over subjects (each subject's mean over "
                        "seeds)",
           "n_subjects": int(len(subj)), "n_jobs": int(len(jobs)),
           "per_job": per_job, "target": target}
    if len(subj) >= 2:
        half = stats.t.ppf(0.5 + ci_level / 2, len(subj) - 1) * subj.std(ddof=1) / np.sqrt(
            len(subj))
        low, high = float(subj.mean() - half), float(subj.mean() + half)
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        out["ci_low"], out["ci_high"] = low, high
    if bounds is not None:
        out["ci_method"] += f", clipped to [{bounds[0]:g}, {bounds[1]:g}]"
    out["met"] = target_met(target, out["ci_low"], out["ci_high"])
    return out
