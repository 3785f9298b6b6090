"""The keypoint experiment on a synthetic corpus: render paired clips, crop, train, evaluate.

:mod:`irtrepro.keypoints.train` trains and evaluates on whatever paired frames it is given;
this module supplies the synthetic ones (subjects ``K01``, ``K02``, ... rendered by
:func:`irtrepro.synth.pose.make_paired_dataset` with the corpus fields of the
:class:`~irtrepro.keypoints.train.KeypointConfig`) and runs the experiment on them.
"""

from __future__ import annotations

import time

from irtrepro.keypoints.train import CropSet, KeypointConfig, crops_from_clips
from irtrepro.keypoints.train import run_experiment as _run_on_corpus
from irtrepro.synth.pose import make_paired_dataset

__all__ = ["corpus_subjects", "make_corpus", "run_experiment"]


def corpus_subjects(cfg: KeypointConfig) -> list[str]:
    """Subject ids of the synthetic corpus: ``K01`` .. ``K{n_subjects}``."""
    return [f"K{i + 1:02d}" for i in range(cfg.n_subjects)]


def make_corpus(cfg: KeypointConfig | None = None, *, progress: bool | None = None) -> CropSet:
    """Render the paired corpus of ``cfg`` and crop it (frames kept for figures).

    Uses ``cfg.n_subjects``, ``frames_per_subject``, ``fps`` (Hz), ``tug_share``,
    ``data_seed`` (``corpus_seed``, else ``seed``) and ``crop_hw`` (the defaults of :class:`KeypointConfig` when ``None``); the same settings give
    the same crops.
    """
    cfg = KeypointConfig() if cfg is None else cfg
    clips = make_paired_dataset(corpus_subjects(cfg), frames_per_subject=cfg.frames_per_subject,
                                fps=cfg.fps, tug_share=cfg.tug_share, seed=cfg.data_seed,
                                progress=progress)
    return crops_from_clips(clips, cfg.crop_hw, keep_frames=True)


def run_experiment(cfg: KeypointConfig | None = None, *, corpus: CropSet | None = None,
                   progress: bool | None = None, **options) -> dict:
    """:func:`irtrepro.keypoints.train.run_experiment` on the synthetic corpus of ``cfg``.

    Parameters
    ----------
    cfg : KeypointConfig, optional
        Corpus, model and training settings (the defaults when ``None``).
    corpus : CropSet, optional
        A corpus made before (by :func:`make_corpus`); rendered from ``cfg`` when ``None``.
    **options
        ``students``, ``baseline``, ``betas``, ``keep_models``, ``workers`` of the experiment.

    Returns
    -------
    dict
        As :func:`irtrepro.keypoints.train.run_experiment`; ``timings["render+crop"]`` is the
        time spent making the corpus (0 when it was given).
    """
    cfg = KeypointConfig() if cfg is None else cfg
    t0 = time.perf_counter()
    if corpus is None:
        corpus = make_corpus(cfg, progress=progress)
    made = time.perf_counter() - t0
    res = _run_on_corpus(cfg, corpus=corpus, progress=progress, **options)
    res["timings"] = {"render+crop": made, **res["timings"]}
    return res
