"""Image preprocessing of the BreathAI pipeline: pseudo-colour, grey-scale, adaptive multi-thresholding.

Images travel as RGB-coloured uint8 arrays ``(n, rows, cols, 3)`` (the layout of the published
breathing data set and of camera exports); :func:`to_rgb` turns degC crops into that form with a
per-image auto range, as thermal cameras colour their exports.

Adaptive multi-thresholding (AMT) computes ``k`` thresholds per image by multi-level Otsu (the
thresholds maximising the between-class variance of the image's own grey histogram, hence
adaptive) and stacks the ``k`` binary copies ``grey > t_i`` as extra input channels.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from irtrepro.errors import OptionError

__all__ = ["to_rgb", "to_grey", "multi_otsu", "amt_channels", "network_input"]


def to_rgb(crops: np.ndarray, *, cmap: str = "inferno") -> np.ndarray:
    """Colour degC crops ``(n, rows, cols)`` into uint8 RGB ``(n, rows, cols, 3)``.

    Each image is scaled between its own 1st and 99th percentile (camera auto range).
    """
    from matplotlib import colormaps

    c = np.asarray(crops, dtype=np.float32)
    lo = np.percentile(c, 1, axis=(1, 2), keepdims=True)
    hi = np.percentile(c, 99, axis=(1, 2), keepdims=True)
    u = np.clip((c - lo) / np.maximum(hi - lo, 1e-3), 0, 1)
    lut = (colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return lut[np.round(u * 255).astype(np.uint8)]


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Grey-scale intensity in [0, 1] ``(n, rows, cols)`` from uint8 RGB (ITU-R 601 luma).

    The luma of perceptual colour maps (inferno, iron, grey) grows with temperature, so the
    grey image keeps the temperature order.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim == 3:  # already grey
        return rgb / 255.0 if rgb.max() > 1.0 else rgb
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def multi_otsu(grey: np.ndarray, k: int = 2, *, bins: int = 32) -> np.ndarray:
    """Per-image multi-level Otsu thresholds.

    Parameters
    ----------
    grey : ndarray (n, rows, cols)
        Intensities in [0, 1].
    k : int
        Number of thresholds (1-3).
    bins : int
        Histogram bins (the search is exhaustive over bin edges, vectorised over images).

    Returns
    -------
    ndarray (n, k)
        Thresholds, ascending.
    """
    if not 1 <= k <= 3:
        raise OptionError(f"amt_k={k}; expected 1, 2 or 3 thresholds")
    g = np.asarray(grey, dtype=np.float32).reshape(len(grey), -1)
    lo, hi = g.min(1, keepdims=True), g.max(1, keepdims=True)
    u = (g - lo) / np.maximum(hi - lo, 1e-6)
    idx = np.minimum((u * bins).astype(int), bins - 1)
    hist = np.zeros((len(g), bins))
    np.add.at(hist, (np.repeat(np.arange(len(g)), g.shape[1]), idx.ravel()), 1.0)
    p = hist / hist.sum(1, keepdims=True)
    centers = (np.arange(bins) + 0.5) / bins
    w = np.c_[np.zeros(len(g)), p.cumsum(1)]                 # cumulative weight
    m = np.c_[np.zeros(len(g)), (p * centers).cumsum(1)]     # cumulative first moment
    cuts = np.array(list(combinations(range(1, bins), k)))   # (n_combos, k)
    edges = np.c_[np.zeros(len(cuts), int), cuts, np.full(len(cuts), bins)]
    score = np.zeros((len(g), len(cuts)))
    for a, b in zip(edges[:, :-1].T, edges[:, 1:].T, strict=True):
        wc = w[:, b] - w[:, a]
        mc = m[:, b] - m[:, a]
        score += np.where(wc > 0, mc ** 2 / np.maximum(wc, 1e-12), 0.0)
    best = cuts[np.argmax(score, 1)] / bins                  # (n, k) in [0, 1]
    return lo + best * (hi - lo)


def amt_channels(grey: np.ndarray, k: int = 2) -> np.ndarray:
    """The ``k`` thresholded copies ``grey > t_i`` as float32 ``(n, k, rows, cols)``."""
    t = multi_otsu(grey, k)
    return (grey[:, None] > t[:, :, None, None]).astype(np.float32)


def network_input(rgb: np.ndarray, *, grey: bool = True, amt: bool = False,
                  amt_k: int = 2) -> np.ndarray:
    """Network input ``(n, channels, rows, cols)`` float32, centred around 0.

    ``grey=False``: 3 RGB channels; ``grey=True``: 1 grey channel; ``amt=True`` adds ``amt_k``
    thresholded copies (of the grey image) as channels.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise OptionError(f"images have shape {rgb.shape}; expected (n, rows, cols, 3) RGB")
    g = to_grey(rgb)
    base = g[:, None] if grey else np.moveaxis(rgb.astype(np.float32) / 255.0, -1, 1)
    parts = [(base - 0.5) / 0.25]
    if amt:
        parts.append((amt_channels(g, amt_k) - 0.5) / 0.5)
    return np.concatenate(parts, axis=1).astype(np.float32)
