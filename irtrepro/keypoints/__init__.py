"""COCO keypoints in low-resolution thermal frames by distillation from an RGB teacher; gait.

Public names load lazily, so ``import irtrepro.keypoints`` does not import torch.

- :mod:`~irtrepro.keypoints.vocabulary`: the 17 COCO keypoint names, skeleton, mirror pairs,
  OKS sigmas.
- :mod:`~irtrepro.keypoints.detector`: warm-blob person boxes, crop windows, bilinear crops.
- :mod:`~irtrepro.keypoints.models`: ViT-like / CNN / MobileNetV3-Small encoders, classic decoder,
  parameter and FLOP counts.
- :mod:`~irtrepro.keypoints.losses`: Adaptive Wing, latent L1, the composite distillation loss.
- :mod:`~irtrepro.keypoints.decode`: Gaussian targets, sub-pixel (DARK) heatmap decoding.
- :mod:`~irtrepro.keypoints.train`: corpus -> crops, teacher, student, baseline, evaluation
  (the corpus is an argument; the synthetic one is rendered by the generator).
- :mod:`~irtrepro.keypoints.oks`: OKS and COCO AP (pycocotools).
- :mod:`~irtrepro.keypoints.coco`: COCO truth arrays and result entries (the file reader is
  :func:`irtrepro.io.pose.read_coco_keypoints`, re-exported here).
- :mod:`~irtrepro.keypoints.gait`: cadence, stance/swing, calf points, ROI side check.
- :mod:`~irtrepro.keypoints.cadence`: cadence of a clip from the model, as a Study variable.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "detect_people": "detector", "box_to_crop": "detector", "crop_images": "detector",
    "adaptive_wing": "losses", "distillation_loss": "losses",
    "decode_heatmaps": "decode", "gaussian_targets": "decode",
    "KeypointConfig": "train", "run_experiment": "train", "predict_frames": "train",
    "save_model": "train", "load_model": "train", "summarise": "train",
    "oks": "oks", "coco_keypoint_ap": "oks", "COCO_SIGMAS": "oks",
    "read_coco_keypoints": "coco",
    "KEYPOINT_NAMES": "vocabulary", "COCO_SKELETON": "vocabulary", "FLIP_PAIRS": "vocabulary",
    "cadence_from_ankles": "gait", "stance_swing": "gait", "calf_points": "gait",
    "check_roi_sides": "gait",
    "clip_cadence": "cadence", "cadence_study_variables": "cadence",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        mod = importlib.import_module(f"irtrepro.keypoints.{_LAZY[name]}")
        return getattr(mod, name)
    raise AttributeError(f"module 'irtrepro.keypoints' has no attribute {name!r}")
