"""Skin-temperature metrics from thermal frames + ROI/vessel masks (no torch here).

- :func:`compute_features`: every registered feature of a stack of frames, vectorised, as a
  Dataset on (time, side); :func:`register_family` adds new ones.
- :mod:`irtrepro.features.extract`: per-second medians of valid frames on the study grid,
  resumable, serial or on dask (``extract_session``, ``extract_store``).
"""

from irtrepro.features.core import (
    PERCENTILES,
    REGIONS,
    SIDES,
    STATS,
    FeatureContext,
    MaskMismatchError,
    QualitySettings,
    component_stats,
    quality_flags,
    region_stats,
)
from irtrepro.features.registry import FEATURES, compute_features, feature_names, register_family

__all__ = [
    "FEATURES", "PERCENTILES", "REGIONS", "SIDES", "STATS", "FeatureContext",
    "MaskMismatchError", "QualitySettings", "component_stats", "compute_features",
    "feature_names", "quality_flags", "region_stats", "register_family",
]
