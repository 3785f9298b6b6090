"""U-Net segmentation of calf thermograms (segmentation-models-pytorch), lazily imported.

Torch and smp load inside the functions, so ``import irtrepro.vision`` stays light.

- :mod:`~irtrepro.vision.models`: ``build_unet``, ``Checkpoint`` (save/load, metadata), ``normalise``
- :mod:`~irtrepro.vision.data`: augmentation (left/right-swapping flips, rotation/scale, noise,
  ambient offset, contrast)
- :mod:`~irtrepro.vision.train`: ``train_segmenter``
- :mod:`~irtrepro.vision.infer`: ``predict_masks``, ``segment_store``
- :mod:`~irtrepro.vision.evaluate`: ``segmentation_scores``, ``robustness_table``,
  ``metric_errors``, ``metric_error_table``
- :mod:`~irtrepro.vision.uncertainty`: ``variant_metrics`` (segmentation uncertainty of the
  metrics by test-time augmentation)
- :mod:`~irtrepro.vision.pipeline`: ``training_arrays``, ``train_models``, ``segment_sessions``,
  ``study_variables`` (many sessions at once; the report's vision part calls these)
"""

from __future__ import annotations

import importlib

_NAMES = {
    "build_unet": "models", "Checkpoint": "models", "normalise": "models",
    "train_segmenter": "train", "predict_masks": "infer", "segment_store": "infer",
    "segmentation_scores": "evaluate", "robustness_table": "evaluate",
    "read_coco_masks": "evaluate", "metric_errors": "evaluate", "metric_error_table": "evaluate",
    "training_arrays": "pipeline", "train_models": "pipeline", "segment_sessions": "pipeline",
    "study_variables": "pipeline",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"irtrepro.vision.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'irtrepro.vision' has no attribute {name!r}")
