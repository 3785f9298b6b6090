"""Registry of named per-frame features, grouped in families computed together.

A *family* is a function ``FeatureContext -> {name: ndarray}`` that computes several named
features at once (the region statistics share one sort); :func:`register_family` adds one and
declares the units and long names of what it returns. :func:`compute_features` runs the families
that produce the requested names.

Examples
--------
>>> import numpy as np
>>> from irtrepro.features import register_family, FeatureContext
>>> @register_family("hot_fraction", {"hot_fraction": ("1", "calf pixels above 34 degC")})
... def _hot(ctx: FeatureContext):
...     calf = ctx.roi > 0
...     frac = (calf & (ctx.frames > 34)).sum((1, 2)) / np.maximum(calf.sum((1, 2)), 1)
...     return {"hot_fraction": np.repeat(frac[:, None], 3, axis=1)}
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from irtrepro.errors import OptionError
from irtrepro.features.core import (
    REGIONS,
    STATS,
    FamilyFunc,
    FeatureContext,
    QualitySettings,
    _as_arrays,
    check_bin_width,
    component_stats,
    crop_to_calves,
    quality_flags,
    region_stats,
    to_dataset,
)

__all__ = ["FEATURES", "register_family", "feature_names", "compute_features"]

_REGION_LONG = {"calf": "calf", "tnv": "non-vessel skin (TNV)", "tv": "veins (TV)",
                "tp": "perforators (TP)"}
_STAT_LONG = {"mean": "mean", "median": "median", "sd": "spatial SD", "min": "minimum",
              "max": "maximum", "p5": "5th percentile", "p25": "25th percentile",
              "p75": "75th percentile", "p95": "95th percentile", "area": "area",
              "entropy": "Shannon entropy of the temperature histogram"}

#: name -> (family, units, long_name)
FEATURES: dict[str, tuple[str, str, str]] = {}
_FAMILIES: dict[str, FamilyFunc] = {}


def register_family(family: str, features: dict[str, tuple[str, str]], func=None):
    """Register a family function producing ``features`` ({name: (units, long_name)}).

    Usable as a decorator. Each returned array is (frame, 3) on side left/right/both, or
    (frame,) for per-frame values.
    """
    def deco(fn: FamilyFunc) -> FamilyFunc:
        clash = [k for k in features if k in FEATURES and FEATURES[k][0] != family]
        if clash:
            raise OptionError(f"features {clash} are already registered by family "
                              f"{FEATURES[clash[0]][0]!r}")
        _FAMILIES[family] = fn
        for name, (units, long_name) in features.items():
            FEATURES[name] = (family, units, long_name)
        return fn
    return deco(func) if func is not None else deco


register_family("region", {
    f"{r}_{s}": ("pixel" if s == "area" else "bit" if s == "entropy" else "degC",
                 f"{_STAT_LONG[s]} of {_REGION_LONG[r]}")
    for r in REGIONS for s in STATS}, region_stats)
register_family("components", {
    f"{v}_{k}": (u, f"{ln} of {v} connected components")
    for v in ("vein", "perforator")
    for k, u, ln in (("count", "1", "number"), ("area_total", "pixel", "total area"),
                     ("area_mean", "pixel", "mean area"),
                     ("comp_temp", "degC", "mean per-component temperature"))}, component_stats)
register_family("quality", {
    "flag_area": ("1", "calf area implausible"), "flag_shape": ("1", "calf mask in pieces"),
    "flag_range": ("1", "calf pixels non-finite or out of range"),
    "flag_blur": ("1", "motion blur (low border sharpness)"),
    "sharpness": ("degC/pixel", "mean temperature step across the calf border"),
    "valid": ("1", "frame passes every quality check")}, quality_flags)


def feature_names(family: str | None = None) -> list[str]:
    """Names of the registered features (of one family)."""
    return [k for k, v in FEATURES.items() if family is None or v[0] == family]


def compute_features(frames, roi, vessels, *, features: list[str] | None = None,
                     time=None, bin_width: float = 0.1,
                     quality: QualitySettings | None = None, source: str = "<array>",
                     exact: bool = False) -> xr.Dataset:
    """Compute named features of every frame; one Dataset on (time, side).

    Parameters
    ----------
    frames : array-like (frame, y, x)
        Temperatures (degC).
    roi, vessels : array-like (frame, y, x)
        Labels: roi 0 background / 1 left calf / 2 right calf; vessels 0 / 1 vein / 2
        perforator (vessel pixels outside the roi are ignored).
    features : list of str, optional
        Names (see :func:`feature_names`); default all.
    time : array-like (frame,), optional
        Frame times (s); default the frame index.
    bin_width : float
        Entropy histogram bin width (degC); bins are ``[k*w, (k+1)*w)``.
    quality : QualitySettings, optional
        Thresholds of the quality flags.
    source : str
        Named in error messages.
    exact : bool
        Exact order statistics (min, max, median, percentiles) from a sort; by default they
        come from the ``bin_width`` histograms and are within one ``bin_width`` (degC) of the
        exact ones (means, SDs, areas and entropies are the same either way).

    Returns
    -------
    xarray.Dataset
        One variable per feature, dims (time, side) with side left/right/both, or (time,),
        each with ``units`` and ``long_name``. Missing values (empty regions) are NaN.
    """
    f, r, v = _as_arrays(frames, roi, vessels, source)
    bin_width = check_bin_width(bin_width)
    if features is None:
        features = list(FEATURES)
    unknown = [k for k in features if k not in FEATURES]
    if unknown:
        raise OptionError(f"features={unknown!r} unknown; registered: {sorted(FEATURES)}")
    frame_shape = tuple(f.shape[1:])
    f, r, v = crop_to_calves(f, r, v)
    ctx = FeatureContext(f, r, v, bin_width=bin_width, frame_shape=frame_shape, exact=exact)
    if quality is not None:
        ctx.cache["quality_settings"] = quality
    values: dict[str, np.ndarray] = {}
    for fam in dict.fromkeys(FEATURES[k][0] for k in features):
        values.update(_FAMILIES[fam](ctx))
    values = {k: values[k] for k in features}
    meta = {k: (FEATURES[k][1], FEATURES[k][2]) for k in features}
    return to_dataset(values, meta, time)
