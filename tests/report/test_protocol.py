"""The nested protocol's bookkeeping: folds, job cache and resume, spread and intervals."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
from scipy import stats

from irtrepro.report.protocol import Job, plan_jobs, run_jobs, summarise_figure, target_met

SUBJECTS = [f"S{i:02d}" for i in range(1, 12)]


def test_every_subject_is_tested_once_per_seed_and_folds_do_not_move_with_the_seed():
    jobs = plan_jobs("m", SUBJECTS + SUBJECTS[:3], folds=5, seeds=(0, 1, 2))
    assert len(jobs) == 15
    # seeds outermost: the first 5 jobs (what a run stopped part-way has) test every subject
    assert sorted(s for j in jobs[:5] for s in j.test_subjects) == SUBJECTS
    assert [j.seed for j in jobs] == [0] * 5 + [1] * 5 + [2] * 5
    for seed in (0, 1, 2):
        tested = [s for j in jobs if j.seed == seed for s in j.test_subjects]
        assert sorted(tested) == SUBJECTS
    by_fold = {}
    for j in jobs:
        by_fold.setdefault(j.fold, set()).add(j.test_subjects)
    assert all(len(v) == 1 for v in by_fold.values())
    # shuffled once: the folds are not the contiguous sorted groups
    assert jobs[0].test_subjects != tuple(SUBJECTS[:3])
    loso = plan_jobs("m", SUBJECTS[:4], folds=None, seeds=(0,))
    assert sorted(j.test_subjects for j in loso) == [(s,) for s in SUBJECTS[:4]]


def _fold(job: Job, calls: list | None = None) -> dict:
    if calls is not None:
        calls.append(job.name)
    rng = np.random.default_rng([job.fold, job.seed])
    per = {s: {"acc": float(rng.random())} for s in job.test_subjects}
    return {"per_subject": per,
            "pooled": {"acc": float(np.mean([v["acc"] for v in per.values()]))},
            "choices": {"variant": "a"}}


def test_jobs_are_cached_reused_and_resumed(tmp_path):
    jobs = plan_jobs("m", SUBJECTS, folds=3, seeds=(0, 1))
    calls: list[str] = []
    fn = partial(_fold, calls=calls)
    done, pending = run_jobs(jobs, fn, tmp_path, key="k1", max_seconds=0.0)
    # a spent budget still runs nothing new after the first check: 0 s left before job 1
    assert len(done) + len(pending) == len(jobs)
    first = list(calls)
    done, pending = run_jobs(jobs, fn, tmp_path, key="k1")
    assert not pending and len(done) == len(jobs)
    assert len(calls) == len(jobs)  # the jobs done before were not run again
    assert calls[:len(first)] == first
    done2, _ = run_jobs(jobs, fn, tmp_path, key="k1")
    assert len(calls) == len(jobs) and done2 == done
    # another key (data, settings or code changed): every job again
    run_jobs(jobs, fn, tmp_path, key="k2")
    assert len(calls) == 2 * len(jobs)
    # an unreadable job file is recomputed, never trusted
    path = tmp_path / "m" / f"{jobs[0].name}.json"
    path.write_text("{not json")
    run_jobs(jobs, fn, tmp_path, key="k2")
    assert calls[-1] == jobs[0].name and json.loads(path.read_text())["key"] == "k2"


def test_worker_processes_give_the_results_of_a_run_here(tmp_path, monkeypatch):
    from pathlib import Path

    # spawned workers import this module by the name pytest gave it (below tests/); they
    # start with the parent's sys.path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    jobs = plan_jobs("m", SUBJECTS[:6], folds=3, seeds=(0, 1))
    here, _ = run_jobs(jobs, _fold, tmp_path / "a", key="k")
    there, _ = run_jobs(jobs, _fold, tmp_path / "b", key="k", workers=2)
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "threads")} for r in here]
    assert strip == [{k: v for k, v in r.items() if k not in ("seconds", "threads")}
                     for r in there]
    assert {r["threads"] for r in there} == {1}


def test_summary_is_the_mean_over_subjects_of_seed_means_with_a_t_interval():
    jobs = plan_jobs("m", SUBJECTS, folds=3, seeds=(0, 1, 2))
    results = [{"job": {"fold": j.fold, "seed": j.seed}, **_fold(j)} for j in jobs]
    out = summarise_figure(results, "acc", target=">= 0.3")
    u = {}
    for r in results:
        for s, v in r["per_subject"].items():
            u.setdefault(s, []).append(v["acc"])
    subj = np.array([np.mean(v) for v in u.values()])
    half = stats.t.ppf(0.975, len(subj) - 1) * subj.std(ddof=1) / np.sqrt(len(subj))
    assert out["value"] == pytest.approx(subj.mean(), abs=1e-12)
    assert out["ci_low"] == pytest.approx(subj.mean() - half, abs=1e-12)
    assert out["ci_high"] == pytest.approx(subj.mean() + half, abs=1e-12)
    pooled = [r["pooled"]["acc"] for r in results]
    assert out["sd_folds_seeds"] == pytest.approx(np.std(pooled, ddof=1), abs=1e-12)
    assert out["n_subjects"] == 11 and out["n_jobs"] == 9
    assert out["met"] == (out["ci_low"] >= 0.3)
    # a NaN (a class absent from a subject) leaves that subject out, not zero
    results[0]["per_subject"][jobs[0].test_subjects[0]]["acc"] = float("nan")
    assert summarise_figure(results, "acc")["n_subjects"] == 11


def test_target_met_only_when_the_interval_clears_it():
    assert target_met(">= 0.95", 0.951, 0.99) is True
    assert target_met(">= 0.95", 0.94, 0.99) is False      # mean may be above, CI is not
    assert target_met("<= 1.5", 0.2, 1.49) is True
    assert target_met("<= 1.5", 0.2, 1.6) is False
    assert target_met(None, 0.1, 0.2) is None
    assert target_met(">= 0.5", None, None) is None


def test_interval_of_a_proportion_is_clipped_to_its_range_and_says_so():
    # four subjects far apart: the t-interval of their mean passes 1 and 0
    results = [{"job": {"fold": i, "seed": 0},
                "per_subject": {f"S{i}": {"ap": v}}, "pooled": {"ap": v}}
               for i, v in enumerate((0.0, 1.0, 1.0, 0.1))]
    free = summarise_figure(results, "ap")
    assert free["ci_low"] < 0 and free["ci_high"] > 1
    out = summarise_figure(results, "ap", bounds=(0.0, 1.0))
    assert (out["ci_low"], out["ci_high"]) == (0.0, 1.0)
    assert "clipped to [0, 1]" in out["ci_method"]
    narrow = [{"job": {"fold": i, "seed": 0}, "per_subject": {f"S{i}": {"ap": v}},
               "pooled": {"ap": v}} for i, v in enumerate((0.5, 0.6, 0.55))]
    assert summarise_figure(narrow, "ap", bounds=(0.0, 1.0))["ci_low"] == pytest.approx(
        summarise_figure(narrow, "ap")["ci_low"], abs=1e-15)
