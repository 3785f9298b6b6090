"""``make report``: from a manifest to ``reports/`` in one call, doing only what changed.

Steps (each timed for the provenance block):

1. **data**: load the manifest; regenerate a synthetic study's missing files; verify sha256.
2. **study**: readers + sync -> the Study (cached by the manifest's sha256 and the code).
3. **models**: each model part (:mod:`irtrepro.report.parts`: ``vision``, ``breathing``,
   ``keypoints``) trains or reuses its models, evaluates them on held-out subjects and
   returns Study variables (thermal metrics on the session clock, camera respiratory rate,
   cadence); the vision part converts camera files once into ``cache/frames/``
   (:mod:`irtrepro.recordings`). A part's result
   is cached (:mod:`irtrepro.report.cache`) by the manifest's sha256, the package's source
   code, the seed and its settings. A segmentation model file (``settings={"vision": {"model":
   PATH}}``, ``irtrepro report --model``, or the manifest's ``models.segmentation``) replaces
   the vision part's training; its sha256 joins that part's key.
4. **analyses**: every ``analyses/*.py`` script's ``run(study, seed=...)`` on the merged Study.
5. **write**: figures, tables and ``index.html``.

A part, analysis or file that fails is listed at the top of the page with its error; the rest of
the report is still built, and :func:`run_report` then raises :class:`IncompleteError` (exit 1
from the CLI) unless ``keep_going``. Nothing is silently dropped.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import os
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import xarray as xr

from irtrepro._logging import logger
from irtrepro.errors import IncompleteError, IrtreproError, OptionError
from irtrepro.report.cache import Cache, cache_key, part_key
from irtrepro.report.deviations import deviations_html
from irtrepro.report.part import ReportPart
from irtrepro.report.results import (
    collect_results,
    load_evaluation,
    results_html,
    write_results,
)

__all__ = ["ANALYSES", "MODEL_PARTS", "find_analyses", "load_analysis", "merge_study",
           "part_key", "run_report"]

#: the model parts, by import name; ``--parts`` and ``settings=`` name them by the last part
MODEL_PARTS = ("irtrepro.report.parts.vision", "irtrepro.report.parts.breathing",
               "irtrepro.report.parts.keypoints")
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
    """Add a part's variables to the Study (:func:`irtrepro.study.merge_variables`)."""
    from irtrepro.study import merge_variables

    return merge_variables(study, extra)


VISION = "irtrepro.report.parts.vision"


def _segmentation_model(m, settings: dict, parts: tuple[str, ...]) -> dict | None:
    """The segmentation model the vision part uses instead of training, checked; or None.

    ``settings["vision"]["model"]`` (``--model``) wins over the manifest's
    ``models.segmentation``. A missing file, or one of other classes or input channels, is
    refused here, before anything runs (:class:`ModelError` naming the file and the field).
    """
    given = (settings.get("vision") or {}).get("model")
    if given is not None:
        path, source = Path(given).resolve(), "--model"
    elif VISION in parts and "segmentation" in m.models:
        fe = m.models["segmentation"]
        path, source = fe.path, fe.where
    else:
        return None
    from irtrepro.errors import ModelError
    from irtrepro.manifest import sha256_path
    from irtrepro.vision.models import SegmentationModel

    if not path.is_file():
        raise ModelError(f"{path} ({source}): no such model file")
    SegmentationModel.load(path)
    return {"path": str(path), "sha256": sha256_path(path), "from": source}


def _compute_part(name: str, manifest, models_dir: Path, seed: int, progress,
                  settings: dict, frames_cache: Path | None = None) -> ReportPart:
    """Run one model part's ``run_for_report`` (its models are cached in ``models_dir``;
    the vision part converts camera files into ``frames_cache``)."""
    fn = importlib.import_module(name).run_for_report
    if name == VISION and frames_cache is not None:
        settings = {**settings, "frames_cache": frames_cache}
    return fn(manifest, models_dir, seed=seed, progress=progress, **settings)


def run_report(manifest: str | os.PathLike = "data_manifest.yaml",
               out: str | os.PathLike = "reports", *, cache_dir: str | os.PathLike | None = None,
               study_path: str | os.PathLike | None = None, seed: int = 0,
               analyses_dir: str | os.PathLike | None = None, parts: tuple[str, ...] = MODEL_PARTS,
               progress: bool | None = None, settings: dict[str, dict] | None = None,
               keep_going: bool = False) -> Path:
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
    settings : dict, optional
        Keyword arguments of each model part's ``run_for_report``, by part (``{"vision":
        {...}, "breathing": {...}, "keypoints": {...}}``), e.g. smaller training for a quick
        check of the whole chain; part of each part's cache key and of the provenance.
        ``{"vision": {"model": PATH}}`` segments with that model file instead of training
        (it wins over the manifest's ``models.segmentation``).
    keep_going : bool
        Return normally when a step failed. By default a failed step (a model part, an
        analysis, a manifest file that could not be read, the Study not saved) raises
        :class:`IncompleteError` after the report is written, with the failures listed at the
        top of the page.

    Returns
    -------
    Path
        ``index.html``.

    Raises
    ------
    IncompleteError
        When any step failed and ``keep_going`` is false; the page is written all the same.
    ModelError
        The segmentation model file is missing or of other classes or input channels
        (before any part runs).
    """
    from irtrepro.info import device, versions
    from irtrepro.report.pipeline import ensure_files
    from irtrepro.report.writer import write_report
    from irtrepro.study import git_commit, save_study
    from irtrepro.sync import build_study

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    left_out: list[str] = []
    failures: list[str] = []
    manifest = Path(manifest)
    root = manifest.resolve().parent
    cache = Path(cache_dir) if cache_dir else root / "data" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    store = Cache(cache)
    with _timer(timings, "data: generate if missing, verify checksums"):
        m = ensure_files(manifest, progress=progress, checksum_cache=cache / "checksums.json")
    seg_model = _segmentation_model(m, dict(settings or {}), parts)
    with _timer(timings, "study: read, sync, build"):
        study_key = cache_key(data=(m.sha256,), source=("irtrepro.sync", "irtrepro.io",
                                                        "irtrepro.manifest", "irtrepro.study"))
        study, reused = store.get("study", study_key, lambda: build_study(m, progress=progress))
        for miss in json.loads(study.attrs.get("missing", "[]")):
            (failures if miss.get("failed") else left_out).append(
                f"{miss['subject']}/{miss['session']} {miss['kind']}: {miss['reason']}")
    # steps whose results came from the cache: their times are the reuse, not the work
    reused_steps = ["study: read, sync, build"] if reused else []
    model_parts: list[ReportPart] = []
    settings = dict(settings or {})
    unknown = sorted(set(settings) - {n.rsplit(".", 1)[-1] for n in parts})
    if unknown:
        raise OptionError(f"settings for {unknown}: no such model part in this report; parts: "
                          f"{[n.rsplit('.', 1)[-1] for n in parts]}")
    todo = []  # (name, short, cache path, settings) of every part to load or compute
    for name in parts:
        short = name.rsplit(".", 1)[-1]
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # its parent package is missing
            found = False
        if not found:
            failures.append(f"{short}: part not available (no module {name})")
            continue
        kwargs = dict(settings.get(short, {}))
        # where the work runs does not change its result (tests/test_distributed.py)
        keyed = {k: v for k, v in kwargs.items() if k != "scheduler"}
        if name == VISION and seg_model is not None:
            kwargs["model"] = seg_model["path"]
            # the file's content, not only its path, decides the part's result
            keyed = {**keyed, "model": seg_model["path"], "model_sha256": seg_model["sha256"]}
        todo.append((name, short, kwargs, part_key(m.sha256, name, seed, keyed)))
    failed: dict[str, str] = {}
    for name, short, kwargs, key in todo:
        with _timer(timings, f"models: {short}"):
            try:
                part, reused = store.get(f"part-{short}", key, functools.partial(
                    _compute_part, name, m, cache / "models" / short, seed, progress, kwargs,
                    cache / "frames"))
                if reused:
                    reused_steps.append(f"models: {short}")
            except Exception as exc:  # a failing part must not take the report down
                logger.error("report: %s failed:\n%s", short, traceback.format_exc())
                failed[short] = f"{type(exc).__name__}: {exc}"
                continue
        part.cache_key = key
        timings.update({f"{short}: {k}": v for k, v in part.timings.items()})
        if part.study_vars is not None:
            study = merge_study(study, part.study_vars)
        model_parts.append(part)
    failures.extend(f"{short}: failed with {why}" for short, why in failed.items())
    with _timer(timings, "study: save"):
        sp = Path(study_path) if study_path else root / "data" / "study.nc"
        try:
            save_study(study, sp)
        except IrtreproError as exc:
            failures.append(f"Study file not written: {exc}")
    analysis_parts: list[ReportPart] = []
    adir = find_analyses(analyses_dir)
    # an analysis is a function of the Study (the built one and the parts that joined it),
    # the seed, the analyses folder (scripts, models.yaml) and the package: the same inputs
    # reuse its result and its rendered figures
    inputs = [study_key, *(p.cache_key for p in model_parts),
              *(x for f in sorted(adir.glob("*"))
                if f.is_file() and f.suffix in (".py", ".yaml", ".yml")
                for x in (f.name, f.read_bytes()))]
    for name in ANALYSES:
        with _timer(timings, f"analysis: {name}"):
            try:
                akey = cache_key(settings={"seed": seed, "analysis": name}, data=inputs,
                                 source=("irtrepro",))
                mod = load_analysis(name, adir)
                part, reused = store.get(f"analysis-{name}", akey,
                                         functools.partial(mod.run, study, seed=seed))
                if reused:
                    reused_steps.append(f"analysis: {name}")
                part.cache_key = akey
                analysis_parts.append(part)
            except Exception as exc:
                logger.error("report: analysis %s failed:\n%s", name, traceback.format_exc())
                failures.append(f"analysis {name}: failed with {type(exc).__name__}: {exc}")
    timings["total before writing"] = round(time.perf_counter() - t_start, 2)
    with _timer(timings, "write report"):
        prov = {
            "git_commit": git_commit(), "versions": versions(), "device": device(),
            "manifest": str(m.path), "manifest_sha256": m.sha256,
            "seeds": {"report": seed, "generator": (m.generator or {}).get("seed")},
            "part_settings": settings,
            "study": {"subjects": len(m.subjects), "sessions": len(m.sessions)},
            "timings_s": timings, "reused_from_cache": reused_steps,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_average": [round(v, 2) for v in os.getloadavg()],
        }
        if seg_model is not None:
            prov["models"] = {"segmentation": seg_model}
        intro = (f"Study '{m.name}': {len(m.subjects)} subjects, {len(m.sessions)} sessions. "
                 f"{m.description}")
        gathered = {}

        def headline(tables):
            gathered["results"] = collect_results(tables, prov, load_evaluation(out))
            return results_html(gathered["results"]) + deviations_html(gathered["results"])

        page = write_report(analysis_parts + model_parts, out, title=f"irtrepro report: {m.name}",
                            provenance=prov, left_out=left_out, failures=failures, intro=intro,
                            headline=headline, render_cache=cache / "figures")
        write_results(out, prov, gathered.get("results"))
    logger.info("report: %s (%.0f s)", page, time.perf_counter() - t_start)
    if failures and not keep_going:
        raise IncompleteError(f"{page}: written, but {len(failures)} step(s) failed (listed at "
                              "the top of the page; --keep-going accepts a partial report):\n  "
                              + "\n  ".join(failures), failures, page)
    return page
