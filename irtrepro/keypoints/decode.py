"""Sub-pixel decoding of heatmaps and Gaussian heatmap targets.

Decoding follows DARK (Zhang et al. 2020, CVPR): smooth each heatmap with a Gaussian of the
target's sigma, take the arg-max, and refine it by one Newton step on the log-heatmap
(second-order Taylor expansion, derivatives by central differences), clipped to one pixel.
"""

from __future__ import annotations

import numpy as np


def gaussian_targets(xy: np.ndarray, vis: np.ndarray, hm_hw: tuple[int, int],
                     sigma: float) -> np.ndarray:
    """Unnormalised Gaussian heatmaps (peak 1) at ``xy`` (N, K, 2) heatmap px; zero where
    ``vis`` (N, K) is 0 or the point lies outside the map."""
    h, w = hm_hw
    ys = np.arange(h)[None, None, :, None]
    xs = np.arange(w)[None, None, None, :]
    x = xy[..., 0][..., None, None]
    y = xy[..., 1][..., None, None]
    g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    inside = (xy[..., 0] > -0.5) & (xy[..., 0] < w - 0.5) & (xy[..., 1] > -0.5) & (xy[..., 1] < h - 0.5)
    return (g * ((vis > 0) & inside)[..., None, None]).astype(np.float32)


def _pad_quadratic(a: np.ndarray) -> np.ndarray:
    """Pad the last two axes by one sample, extrapolating quadratically (a log-Gaussian is a
    quadratic, so a peak on the border is still refined correctly)."""
    def pad(x, axis):
        x0, x1, x2 = (np.take(x, [i], axis) for i in (0, 1, 2))
        y0, y1, y2 = (np.take(x, [i], axis) for i in (-1, -2, -3))
        return np.concatenate([3 * x0 - 3 * x1 + x2, x, 3 * y0 - 3 * y1 + y2], axis)

    return pad(pad(a, -1), -2)


def decode_heatmaps(hm: np.ndarray, *, sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel keypoint positions from heatmaps.

    Parameters
    ----------
    hm : ndarray (N, K, h, w)
        Heatmaps.
    sigma : float
        Smoothing (heatmap px); the target's sigma.

    Returns
    -------
    xy : ndarray (N, K, 2)
        Positions in heatmap pixels (centres at integers).
    score : ndarray (N, K)
        Heatmap maximum (confidence).
    """
    from scipy.ndimage import gaussian_filter

    hm = np.asarray(hm, float)
    n, k, h, w = hm.shape
    score = hm.reshape(n, k, -1).max(-1)
    sm = gaussian_filter(hm, sigma=(0, 0, sigma, sigma), mode="constant")
    # keep the original peak height (DARK re-scales after smoothing)
    smax = sm.reshape(n, k, -1).max(-1)
    sm = sm * (score / np.where(smax > 0, smax, 1))[..., None, None]
    idx = sm.reshape(n, k, -1).argmax(-1)
    py, px = np.divmod(idx, w)
    lg = _pad_quadratic(np.log(np.clip(sm, 1e-10, None)))
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    Y, X = py + 1, px + 1

    def at(dy, dx):
        return lg[ni, ki, Y + dy, X + dx]

    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * at(0, 0) + at(0, -1)
    dyy = at(1, 0) - 2 * at(0, 0) + at(-1, 0)
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    ok = (det > 1e-12) & (dxx < 0) & (dyy < 0)  # a proper maximum
    safe = np.where(ok, det, 1.0)
    ox = np.where(ok, -(dyy * dx - dxy * dy) / safe, 0.0)
    oy = np.where(ok, -(dxx * dy - dxy * dx) / safe, 0.0)
    xy = np.stack([px + np.clip(ox, -1, 1), py + np.clip(oy, -1, 1)], -1)
    return xy, score
