"""Plain numpy per-frame, per-region loop of the region statistics: the slow reference.

Written for clarity, not speed (a Python loop over frames, regions and sides, ``np.percentile``
on each region's pixels). The tests check :func:`irtrepro.features.region_stats` against it and
``benchmarks/bench_extract.py`` times both.
"""

from __future__ import annotations

import numpy as np

from irtrepro.features.core import PERCENTILES, REGIONS, SIDES, STATS

__all__ = ["reference_region_stats"]


def reference_region_stats(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray,
                           bin_width: float = 0.1) -> dict[str, np.ndarray]:
    """Region statistics one frame, region and side at a time.

    Parameters
    ----------
    frames : ndarray (frame, y, x)
        Temperatures (degC).
    roi, vessels : ndarray (frame, y, x), int
        roi 0 background / 1 left / 2 right; vessels 0 none / 1 vein / 2 perforator.
    bin_width : float
        Entropy histogram bin width (degC); bins ``[k*w, (k+1)*w)``.

    Returns
    -------
    dict
        ``{f"{region}_{stat}": ndarray (frame, 3)}`` as :func:`irtrepro.features.region_stats`
        (exact order statistics, numpy's linear interpolation; NaN for empty regions).
    """
    n = frames.shape[0]
    out = {f"{r}_{s}": np.full((n, len(SIDES)), np.nan) for r in REGIONS for s in STATS}
    for i in range(n):
        f = frames[i].astype(np.float64)
        ok = np.isfinite(f)
        for rname, labels in REGIONS.items():
            in_region = np.isin(vessels[i], labels) & ok
            for j, side in enumerate(SIDES):
                sel = in_region & ((roi[i] > 0) if side == "both"
                                   else (roi[i] == (1 if side == "left" else 2)))
                x = f[sel]
                out[f"{rname}_area"][i, j] = x.size
                if x.size == 0:
                    continue
                out[f"{rname}_mean"][i, j] = x.mean()
                out[f"{rname}_sd"][i, j] = x.std()
                out[f"{rname}_median"][i, j] = np.median(x)
                out[f"{rname}_min"][i, j] = x.min()
                out[f"{rname}_max"][i, j] = x.max()
                for q in PERCENTILES:
                    out[f"{rname}_p{q}"][i, j] = np.percentile(x, q)
                _, counts = np.unique(np.floor(x / bin_width), return_counts=True)
                p = counts / x.size
                out[f"{rname}_entropy"][i, j] = float(-(p * np.log2(p)).sum()) + 0.0
    return out
