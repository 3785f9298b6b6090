"""Region statistics of a block of frames in one pass, from fixed-bin histograms (no sort).

Every finite calf pixel belongs to one of six disjoint *base groups* (side left/right x vessel
label none/vein/perforator); the others are dropped first. One
:func:`numpy.bincount` over the key ``(frame * 6 + group) * n_bins + bin`` gives each base
group's histogram with bins ``[k*w, (k+1)*w)``; two more give its sum and sum of squares. The
reported regions and sides (calf = all labels, both = both sides) are sums of base groups, so
each pixel is read once whatever the number of regions.

From the histograms:

- means, SDs and areas are exact (sums, not binned; squares of values centred on the block's
  lowest bin edge, so no cancellation at ~30 degC);
- the entropy is exact for the bins ``[k*w, (k+1)*w)`` (bin ``floor(value / w)`` in float64,
  as in the sort-based path);
- order statistics (min, max, median, percentiles with numpy's linear interpolation) are
  estimated by spreading the ``m`` values of a bin evenly over it: each lies in the bin of the
  exact order statistic, so the error is below one bin width ``w``.

Blocks whose skin temperatures span more than ``max_bins`` bins (implausible pixels) return
None and the caller falls back to the exact sort-based statistics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hist_region_stats"]

_N_BASE = 6  # (side, vessel label) pairs; index 6 = background / non-finite (discarded)
# base groups of each reported region, REGIONS order (calf, tnv, tv, tp): vessel labels
_REGION_LABELS = ((0, 1, 2), (0,), (1,), (2,))


def _clog(n_max: int) -> np.ndarray:
    c = np.arange(n_max + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, c * np.log2(np.maximum(c, 1)), 0.0)


def hist_region_stats(f: np.ndarray, roi: np.ndarray, ves: np.ndarray, bin_width: float,
                      quantiles: dict[str, float], max_bins: int = 4096
                      ) -> dict[str, np.ndarray] | None:
    """Region statistics of a block of frames from one histogram pass.

    Parameters
    ----------
    f : ndarray (frame, y, x)
        Temperatures (degC), float32 or float64.
    roi, vessels : ndarray (frame, y, x), int
        Labels as in :func:`irtrepro.features.compute_features` (already checked).
    bin_width : float
        Histogram bin width (degC), for the entropy and the order statistics.
    quantiles : dict
        ``{stat name: q in [0, 1]}`` of the order statistics to return (e.g. ``{"median": .5}``).
    max_bins : int
        Above this many bins across the block's skin temperatures, return None.

    Returns
    -------
    dict or None
        ``{stat: ndarray (frame, 4 regions, 3 sides)}`` for mean, sd, area, entropy and the
        requested quantiles (degC, bits, pixels); NaN where a region is empty. None when the
        temperature span needs more than ``max_bins`` bins.
    """
    n = f.shape[0]
    f = np.asarray(f)
    roi = np.asarray(roi)
    skin = roi > 0
    if f.dtype.kind == "f":
        skin &= np.isfinite(f)
    # only skin pixels from here on: (side, vessel label) -> 0..5, frame by frame. The code
    # roi * 3 + label is formed densely in uint8 (labels are 0..2, checked by the caller), so
    # one boolean gather of one byte per pixel replaces two gathers and two wide casts
    per_frame = np.count_nonzero(skin.reshape(n, -1), axis=1) if n else np.zeros(0, np.intp)
    code = roi.astype(np.uint8, copy=False) * np.uint8(3)
    code += np.asarray(ves).astype(np.uint8, copy=False)
    gkey = code[skin].astype(np.intp)
    gkey += np.repeat(np.arange(n, dtype=np.intp) * _N_BASE - 3, per_frame)
    fs = f[skin].astype(np.float64, copy=False)
    if fs.size:
        # bin k holds [k*w, (k+1)*w), computed in float64 like the exact reference
        bins = fs / bin_width
        np.floor(bins, out=bins)
        lo_bin = int(bins.min())
        nb = int(bins.max()) - lo_bin + 1
        if nb > max_bins:
            return None
        key = gkey * nb
        key += bins.astype(np.intp)
        key -= lo_bin
    else:
        lo_bin, nb, key = 0, 1, gkey
    size = n * _N_BASE
    hist = np.bincount(key, minlength=size * nb).reshape(n, _N_BASE, nb)
    ref = lo_bin * bin_width
    d = fs - ref
    s1 = np.bincount(gkey, d, minlength=size)
    d *= d
    s2 = np.bincount(gkey, d, minlength=size)
    # aggregate base groups into (frame, region, side): sides left, right, both
    h6 = hist.reshape(n, 2, 3, nb)
    s1_6 = s1.reshape(n, 2, 3)
    s2_6 = s2.reshape(n, 2, 3)
    H = np.empty((n, 4, 3, nb), np.int64)
    S1 = np.empty((n, 4, 3))
    S2 = np.empty((n, 4, 3))
    for r, labs in enumerate(_REGION_LABELS):
        if len(labs) == 3:
            H[:, r, :2] = h6.sum(2)
            S1[:, r, :2] = s1_6.sum(2)
            S2[:, r, :2] = s2_6.sum(2)
        else:
            H[:, r, :2] = h6[:, :, labs[0]]
            S1[:, r, :2] = s1_6[:, :, labs[0]]
            S2[:, r, :2] = s2_6[:, :, labs[0]]
    H[:, :, 2] = H[:, :, 0] + H[:, :, 1]
    S1[:, :, 2] = S1[:, :, 0] + S1[:, :, 1]
    S2[:, :, 2] = S2[:, :, 0] + S2[:, :, 1]
    cnt_i = H.sum(-1)
    cnt = cnt_i.astype(np.float64)
    has = cnt_i > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = S1 / cnt
        mean = np.where(has, m1 + float(ref), np.nan)
        sd = np.where(has, np.sqrt(np.maximum(S2 / cnt - m1 * m1, 0.0)), np.nan)
        # entropy = log2 N - sum(c log2 c) / N, c log2 c looked up for integer counts
        table = _clog(int(cnt_i.max()) if cnt_i.size else 0)
        ent = np.log2(cnt) - table[H].sum(-1) / cnt
    res = {"mean": mean, "sd": sd, "area": cnt,
           "entropy": np.where(has, np.maximum(ent, 0.0) + 0.0, np.nan)}
    # order statistics: one cumulative count over all rows, searched for each rank
    rows = H.reshape(-1, nb)
    gcum = np.cumsum(rows.ravel())
    row_base = np.r_[0, gcum[nb - 1::nb][:-1]] if rows.shape[0] else np.zeros(0, np.int64)
    c_flat = cnt_i.ravel()
    sel = np.flatnonzero(c_flat > 0)
    base_sel = row_base[sel]
    row_off = sel * nb

    names = list(quantiles)
    for name in names:
        res[name] = np.full(c_flat.size, np.nan)
    if sel.size and names:
        # every quantile's two ranks in one search of the cumulative counts
        c_sel = c_flat[sel]
        p = (c_sel - 1) * np.array([quantiles[k] for k in names])[:, None]
        k0 = np.floor(p).astype(np.int64)
        k1 = np.minimum(k0 + 1, c_sel - 1)
        k = np.concatenate([k0, k1])
        # value of the k-th smallest (0-based) in each selected row
        pos = np.searchsorted(gcum, base_sel + k, side="right")
        binr = pos - row_off
        before = np.where(pos > 0, gcum[np.maximum(pos - 1, 0)], 0) - base_sel
        before = np.where(binr > 0, before, 0)
        m = rows.ravel()[pos]
        val = (lo_bin + binr + (k - before + 0.5) / m) * bin_width
        a, b_ = val[:len(names)], val[len(names):]
        stat = a + (b_ - a) * (p - k0)
        for i, name in enumerate(names):
            res[name][sel] = stat[i]
    for name in names:
        res[name] = res[name].reshape(n, 4, 3)
    return res
