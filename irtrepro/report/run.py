"""``make report``: from a manifest to ``reports/`` in one call, doing only what changed.

Steps (each timed for the provenance block):

1. **data**: load the manifest; regenerate a synthetic study's missing files; verify sha256.
2. **study**: readers + sync -> the Study (cached by the manifest's sha256 and the code).
3. **models**: each model part (``irtrepro.vision``, ``irtrepro.breathing``,
   ``irtrepro.keypoints``) trains or reuses its models, evaluates them on held-out subjects and
   returns Study variables (thermal metrics, camera respiratory rate, cadence). A part's result
   is cached by the manifest's sha256, the part's source code and the seed.
4. **analyses**: every ``analyses/*.py`` script's ``run(study, seed=...)`` on the merged Study.
5. **write**: figures, tables and ``index.html``.

A part or analysis that fails is listed at the top of the page with its error; the rest of the
report is still built. Nothing is silently dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import xarray as xr

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger
from irtrepro.errors import IrtreproError
from irtrepro.report.part import ReportPart

MODEL_PARTS = ("irtrepro.vision", "irtrepro.breathing", "irtrepro.keypoints")
ANALYSES = ("time_courses", "reliability", "cardiopulmonary", "individual", "mixed_models",
            "auxiliary")


@contextlib.contextmanager
def _timer(timings: dict, step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    logger.info("report: %s ...", step)
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - t0, 2)
        logger.info("report: %s done in %.1f s", step, timings[step])


def source_hash(*modules: str) -> str:
    """sha256 over the source files of the given packages/modules (cache keys)."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            h.update(f"{name}:absent".encode())
            continue
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def part_key(manifest_sha256: str, name: str, seed: int) -> str:
    """Cache key of a model part's result: manifest, seed and the source of the whole package.

    A part's result depends on more than its own package (the vision part extracts metrics
    with ``irtrepro.features``, reads frames with ``irtrepro.io``), so any source change
    recomputes the parts; their trained models have their own, narrower caches.
    """
    return hashlib.sha256(f"{manifest_sha256}|{source_hash('irtrepro', name)}|{seed}".encode()
                          ).hexdigest()[:16]


def _cached(path: Path, compute):
    if path.exists():
        try:
            with open(path, "rb") as fh:
                logger.info("report: reusing %s", path.name)
                return pickle.load(fh), True
        except Exception:  # a stale or unreadable cache is recomputed, never trusted
            path.unlink(missing_ok=True)
    value = compute()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(value, fh)
    return value, False


def find_analyses(analyses_dir: str | os.PathLike | None = None) -> Path:
    """The ``analyses/`` folder: given, or beside the repository's ``irtrepro/`` package."""
    if analyses_dir is not None:
        return Path(analyses_dir)
    here = Path(__file__).resolve().parents[2] / "analyses"
    return here if here.is_dir() else Path.cwd() / "analyses"


def load_analysis(name: str, analyses_dir: Path):
    """Import ``analyses/<name>.py`` as a module."""
    path = analyses_dir / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"irtrepro_analyses_{name}", path)
    if spec is None or spec.loader is None or not path.exists():
        raise FileNotFoundError(f"{path}: analysis script not found")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def merge_study(study: xr.Dataset, extra: xr.Dataset) -> xr.Dataset:
    """Add a part's variables to the Study, aligned on its subject/session/time grid."""
    extra = extra.reindex({d: study[d] for d in ("subject", "session", "time")
                           if d in extra.dims})
    return study.merge(extra, compat="override", join="left")


def _compute_part(name: str, manifest, models_dir: Path, seed: int, progress) -> ReportPart:
    """Run one model part's ``run_for_report`` (its models are cached in ``models_dir``)."""
    fn = importlib.import_module(name).run_for_report
    return fn(manifest, models_dir, seed=seed, progress=progress)


# Parts that keep both cores of the 2-core machine busy on their own (U-Net training on 2
# threads, then segmentation in 2 worker processes): under "auto" they run alone, in this
# process, and only the others are computed side by side.
SOLO_PARTS = ("irtrepro.vision",)


def _cores() -> int:
    return os.cpu_count() or 1


def _schedule(fresh: list, part_jobs: int | str | None) -> tuple[list, int]:
    """Which fresh parts run side by side in their own processes, and how many at once.

    ``None`` or 1: none (all one after the other in this process). An int N > 1: every fresh
    part, N at a time. ``"auto"``: the fresh parts not in :data:`SOLO_PARTS`, as many at once
    as there are cores, when there are at least 2 of each.
    """
    if part_jobs == "auto":
        side = [t for t in fresh if t[0] not in SOLO_PARTS]
        n = min(_cores(), len(side))
    elif part_jobs is None:
        return [], 1
    elif isinstance(part_jobs, bool) or not isinstance(part_jobs, int) or part_jobs < 1:
        raise ValueError(f"part_jobs={part_jobs!r}; expected an int >= 1, None or 'auto'")
    else:
        side, n = list(fresh), min(part_jobs, len(fresh))
    return (side, n) if n >= 2 else ([], 1)


def _part_process(name: str, manifest_path: str, cache: str, path: str, seed: int,
                  threads: int, log_level: int, err_path: str) -> None:
    """Body of a part's process: compute the part into its cache file, or write the error."""
    import logging
    import sys

    short = name.rsplit(".", 1)[-1]
    if not logger.handlers:  # spawned: the parent's handlers are not inherited
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(levelname)s %(name)s [{short}]: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(log_level)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        from irtrepro.manifest import load_manifest

        m = load_manifest(manifest_path)
        # no progress bars: three processes would draw over each other; the parts log instead
        _cached(Path(path), lambda: _compute_part(name, m, Path(cache) / "models" / short,
                                                  seed, False))
    except BaseException as exc:
        Path(err_path).write_text(f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        raise SystemExit(1) from None


def _compute_parts_parallel(fresh, manifest_path: Path, cache: Path, seed: int, n_jobs: int,
                            timings: dict) -> dict[str, str]:
    """Compute model parts in ``n_jobs`` concurrent processes; each writes its cache file.

    Each process gets ``cores // n_jobs`` torch threads and no progress bars, and writes the
    part's cache file, which the caller then loads; :func:`run_report` says when this pays.

    Returns ``{short name: reason}`` of the parts that failed (their traceback is logged).
    """
    import multiprocessing
    import tempfile
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")  # fork after torch/OpenMP init can hang
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    logger.info("report: %d model parts in parallel processes (%d torch thread(s) each): %s",
                n_jobs, threads, ", ".join(t[1] for t in fresh))
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="irtrepro-parts-") as tmp:
        queue, running = list(fresh), {}
        while queue or running:
            while queue and len(running) < n_jobs:
                name, short, path = queue.pop(0)
                err = Path(tmp) / f"{short}.err"
                p = ctx.Process(target=_part_process, name=f"irtrepro-{short}",
                                args=(name, str(manifest_path), str(cache), str(path), seed,
                                      threads, logger.getEffectiveLevel(), str(err)))
                p.start()
                running[p.sentinel] = (p, short, err, time.perf_counter())
            for sentinel in wait(list(running)):
                p, short, err, t0 = running.pop(sentinel)
                p.join()
                timings[f"models: {short} (process)"] = round(time.perf_counter() - t0, 2)
                if p.exitcode != 0:
                    why = (err.read_text() if err.exists()
                           else f"its process ended with exit code {p.exitcode}")
                    logger.error("report: %s failed:\n%s", short, why)
                    failed[short] = why.split("\n", 1)[0]
                else:
                    logger.info("report: %s done in %.0f s", short, time.perf_counter() - t0)
    return failed


def run_report(manifest: str | os.PathLike = "data_manifest.yaml",
               out: str | os.PathLike = "reports", *, cache_dir: str | os.PathLike | None = None,
               study_path: str | os.PathLike | None = None, seed: int = 0,
               analyses_dir: str | os.PathLike | None = None, parts: tuple[str, ...] = MODEL_PARTS,
               progress: bool | None = None, part_jobs: int | str | None = None) -> Path:
    """Build every figure and table of the study described by ``manifest``.

    Parameters
    ----------
    manifest : path-like
        Study manifest (default: the synthetic demo study).
    out : path-like
        Output folder (``figures/``, ``tables/``, ``index.html``).
    cache_dir : path-like, optional
        Models and cached results (default ``<manifest folder>/data/cache``).
    study_path : path-like, optional
        Where the Study is written (default ``<manifest folder>/data/study.nc``).
    seed : int
        Seed of model training and resampling.
    analyses_dir : path-like, optional
        Folder of the analysis scripts (default: the repository's ``analyses/``).
    parts : tuple of str
        Model parts to run.
    progress : bool or None
        Progress bars.
    part_jobs : int, "auto" or None
        How the model parts that are not cached yet are scheduled. ``None`` or 1 (default):
        one after the other in this process, each with up to 2 torch threads. ``"auto"``: the
        parts that keep every core busy on their own (:data:`SOLO_PARTS`, the U-Nets) first,
        alone, in this process; the others (breathing, keypoints) then side by side, each in
        its own process with ``cores // n`` torch threads, when the machine has >= 2 cores.
        An int N: every fresh part side by side, N at a time. Opt-in, for machines with more
        cores: on the 2-core machine this project is measured on, a whole cold ``make
        report`` already keeps both cores 186 % busy, and neither schedule paid: all three
        parts side by side 1213 s against ~1176 s one after the other (2026-11-26, night);
        "auto" took 493 s for breathing + keypoints in a cold run (07:10) against 442 s one
        after the other in the cold run of 05:15 (an isolated pair of runs had shown the
        opposite, 433 s against 499 s: this VM's speed drifts by that much). A part side by
        side gets fewer torch threads (1 instead of 2), which can change its last digits
        (breathing accuracies by up to 0.008).

    Returns
    -------
    Path
        ``index.html``.
    """
    from irtrepro.info import device, versions
    from irtrepro.pipeline import ensure_files
    from irtrepro.report.writer import write_report
    from irtrepro.study import git_commit, save_study
    from irtrepro.sync import build_study

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    left_out: list[str] = []
    manifest = Path(manifest)
    root = manifest.resolve().parent
    cache = Path(cache_dir) if cache_dir else root / "data" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    with _timer(timings, "data: generate if missing, verify checksums"):
        m = ensure_files(manifest, progress=progress)
    with _timer(timings, "study: read, sync, build"):
        key = hashlib.sha256((m.sha256 + source_hash("irtrepro.sync", "irtrepro.io",
                                                     "irtrepro.manifest", "irtrepro.study")
                              ).encode()).hexdigest()[:16]
        study, _ = _cached(cache / f"study-{key}.pkl", lambda: build_study(m, progress=progress))
        for miss in json.loads(study.attrs.get("missing", "[]")):
            left_out.append(f"{miss['subject']}/{miss['session']} {miss['kind']}: "
                            f"{miss['reason']}")
    model_parts: list[ReportPart] = []
    todo = []  # (name, short, cache path) of every part to load or compute
    for name in parts:
        short = name.rsplit(".", 1)[-1]
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # its parent package is missing
            found = False
        if not found:
            left_out.append(f"{short}: part not available (no module {name})")
            continue
        todo.append((name, short, cache / f"part-{short}-{part_key(m.sha256, name, seed)}.pkl"))
    fresh = [t for t in todo if not t[2].exists()]
    side, n_jobs = _schedule(fresh, part_jobs)
    failed: dict[str, str] = {}
    computed: dict[str, ReportPart] = {}

    def in_process(name: str, short: str, path: Path) -> ReportPart | None:
        with _timer(timings, f"models: {short}"):
            try:
                part, _ = _cached(path, lambda: _compute_part(
                    name, m, cache / "models" / short, seed, progress))
            except Exception as exc:  # a failing part must not take the report down
                logger.error("report: %s failed:\n%s", short, traceback.format_exc())
                failed[short] = f"{type(exc).__name__}: {exc}"
                return None
        return part

    if side:
        # the parts that fill the machine on their own first, alone; then the rest side by side
        for name, short, path in fresh:
            if (name, short, path) not in side:
                computed[short] = in_process(name, short, path)
        with _timer(timings, "models: side by side (wall)"):
            failed.update(_compute_parts_parallel(side, m.path, cache, seed, n_jobs, timings))
    for name, short, path in todo:
        if short in failed:
            continue
        part = computed[short] if short in computed else in_process(name, short, path)
        if part is None:
            continue
        timings.update({f"{short}: {k}": v for k, v in part.timings.items()})
        if part.study_vars is not None:
            study = merge_study(study, part.study_vars)
        model_parts.append(part)
    left_out.extend(f"{short}: failed with {why}" for short, why in failed.items())
    with _timer(timings, "study: save"):
        sp = Path(study_path) if study_path else root / "data" / "study.nc"
        try:
            save_study(study, sp)
        except IrtreproError as exc:
            left_out.append(f"Study file not written: {exc}")
    analysis_parts: list[ReportPart] = []
    adir = find_analyses(analyses_dir)
    for name in ANALYSES:
        with _timer(timings, f"analysis: {name}"):
            try:
                mod = load_analysis(name, adir)
                analysis_parts.append(mod.run(study, seed=seed))
            except Exception as exc:
                logger.error("report: analysis %s failed:\n%s", name, traceback.format_exc())
                left_out.append(f"analysis {name}: failed with {type(exc).__name__}: {exc}")
    timings["total before writing"] = round(time.perf_counter() - t_start, 2)
    with _timer(timings, "write report"):
        prov = {
            "git_commit": git_commit(), "versions": versions(), "device": device(),
            "manifest": str(m.path), "manifest_sha256": m.sha256,
            "seeds": {"report": seed, "generator": (m.generator or {}).get("seed")},
            "study": {"subjects": len(m.subjects), "sessions": len(m.sessions)},
            "timings_s": timings, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        intro = (f"Study '{m.name}': {len(m.subjects)} subjects, {len(m.sessions)} sessions. "
                 f"{m.description}")
        page = write_report(analysis_parts + model_parts, out, title=f"irtrepro report: {m.name}",
                            provenance=prov, left_out=left_out, intro=intro)
    logger.info("report: %s (%.0f s)", page, time.perf_counter() - t_start)
    return page
