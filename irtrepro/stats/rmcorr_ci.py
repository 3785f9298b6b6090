"""Autocorrelation-aware intervals for the repeated-measures correlation.

The classic rmcorr interval (:func:`irtrepro.stats.rmcorr`) treats every sample as independent
(``n_eff = df + 2``). On 1-s time series the samples are strongly autocorrelated and that
interval is far too narrow. :func:`rmcorr_intervals` reports beside it:

- ``cluster_boot``: subject-level (cluster) bootstrap — whole units resampled with replacement
  (Field & Welsh 2007), percentile CI. Valid for any within-unit dependence; needs enough units.
- ``block_boot``: moving-block bootstrap within each unit (Künsch 1989), percentile CI; block
  length from the AR(1) plug-in of the MSE-optimal rule (Bühlmann & Künsch 1999).
- ``neff``: Fisher-z interval and t test on ``df`` scaled by the Bretherton et al. (1999)
  factor ``(1 - r1x r1y) / (1 + r1x r1y)`` that :func:`lagged_xcorr` uses.

All three are vectorised over pairs of columns: bootstrap statistics come from per-unit sums
(cluster) or prefix sums (blocks), never from re-running rmcorr per draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from irtrepro.errors import StatsError
from irtrepro.stats._common import check_ci
from irtrepro.stats._dist import t_sf
from irtrepro.stats.correlation import (
    _as_frame,
    _numeric_block,
    _pairs,
    bretherton_factor,
    fisher_z_ci,
    rmcorr,
)

__all__ = ["METHODS", "ci_columns", "mbb_block_length", "rmcorr_intervals"]

#: Interval methods of :func:`rmcorr_intervals`.
METHODS = ("cluster_boot", "block_boot", "neff")

# cap on elements of one gathered prefix-sum block (B x blocks x pairs) so that 276-pair
# runs stay within a few hundred MB
_CHUNK = 4_000_000


def ci_columns(method: str, ci: float) -> tuple[str, str]:
    """Names of the low/high columns of ``method`` at level ``ci``, e.g. ``cluster_boot_ci95_low``."""
    lev = f"{100 * ci:g}".replace(".", "_")
    return f"{method}_ci{lev}_low", f"{method}_ci{lev}_high"


def mbb_block_length(rho: Any, n: Any) -> np.ndarray:
    """Moving-block length (samples) from an AR(1) plug-in of the MSE-optimal rule.

    ``L = (3 n / 2)^(1/3) (2 rho / (1 - rho^2))^(2/3)``, the Bühlmann & Künsch (1999) optimum
    for the block-bootstrap variance of a mean, with the autocovariances of an AR(1) series of
    lag-1 autocorrelation ``rho``. Rounded, at least 1 and at most ``n``; ``rho <= 0`` gives 1
    (the iid bootstrap). ``rho`` is clipped to 0.99.

    Parameters
    ----------
    rho : array-like
        Lag-1 autocorrelation of the series whose mean drives the statistic (for rmcorr the
        within-unit centred product ``xc * yc``).
    n : array-like
        Samples per unit.
    """
    rho = np.clip(np.asarray(rho, float), 0.0, 0.99)
    n = np.asarray(n, float)
    with np.errstate(invalid="ignore"):
        length = (1.5 * n) ** (1 / 3) * (2 * rho / (1 - rho**2)) ** (2 / 3)
    length = np.where(np.isfinite(length), np.round(length), 1.0)
    return np.clip(length, 1, np.maximum(n, 1)).astype(int)


def _unit_arrays(data, subject, xs, ys):
    """Rows grouped by unit (order kept within unit), masked values, unit boundaries."""
    cols = sorted(set(xs + ys))
    block = _numeric_block(data, cols)
    pos = {c: i for i, c in enumerate(cols)}
    codes, units = pd.factorize(data[subject])
    order = np.argsort(codes, kind="stable")
    xa = block[order][:, [pos[c] for c in xs]]
    ya = block[order][:, [pos[c] for c in ys]]
    codes = codes[order]
    bounds = np.searchsorted(codes, np.arange(len(units) + 1))
    mask = np.isfinite(xa) & np.isfinite(ya)
    return np.where(mask, xa, 0.0), np.where(mask, ya, 0.0), mask.astype(float), bounds


def _centred_sums(cnt, sx, sy, sxx, syy, sxy):
    """Within-unit centred sums of squares/products from raw sums (any leading shape)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(cnt > 0, 1.0 / np.where(cnt > 0, cnt, 1.0), 0.0)
    return sxx - sx * sx * inv, syy - sy * sy * inv, sxy - sx * sy * inv


def _r(cxx, cyy, cxy):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(cxy / np.sqrt(cxx * cyy), -1.0, 1.0)


def _percentile(draws, ci):
    a = 1 - ci
    ok = np.isfinite(draws).sum(0) >= 2
    with np.errstate(invalid="ignore"):
        lo = np.where(ok, np.nanquantile(np.where(ok, draws, 0.0), a / 2, axis=0), np.nan)
        hi = np.where(ok, np.nanquantile(np.where(ok, draws, 0.0), 1 - a / 2, axis=0), np.nan)
    return lo, hi


def _lag1_products(x0, y0, w, bounds):
    """Per unit centred values and the pooled lag-1 sums of xc, yc and xc*yc."""
    n_units = len(bounds) - 1
    p = x0.shape[1]
    acc = {k: np.zeros(p) for k in ("xx", "xl", "yy", "yl", "pp", "pl")}
    for s in range(n_units):
        a, b = bounds[s], bounds[s + 1]
        if b - a < 2:
            continue
        ws, xs_, ys_ = w[a:b], x0[a:b], y0[a:b]
        cnt = ws.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            xc = (xs_ - np.where(cnt > 0, xs_.sum(0) / cnt, 0.0)) * ws
            yc = (ys_ - np.where(cnt > 0, ys_.sum(0) / cnt, 0.0)) * ws
        pr = xc * yc
        pc = (pr - np.where(cnt > 0, pr.sum(0) / np.where(cnt > 0, cnt, 1), 0.0)) * ws
        # a lag pair counts only where both neighbours are present
        both = ws[1:] * ws[:-1]
        acc["xx"] += (xc * xc).sum(0)
        acc["yy"] += (yc * yc).sum(0)
        acc["pp"] += (pc * pc).sum(0)
        acc["xl"] += (xc[1:] * xc[:-1] * both).sum(0)
        acc["yl"] += (yc[1:] * yc[:-1] * both).sum(0)
        acc["pl"] += (pc[1:] * pc[:-1] * both).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return acc["xl"] / acc["xx"], acc["yl"] / acc["yy"], acc["pl"] / acc["pp"]


def _cluster_boot(x0, y0, w, bounds, n_boot, rng):
    n_units = len(bounds) - 1
    starts = bounds[:-1]
    # per-unit raw sums (S, P); reduceat over empty units is guarded by bounds being distinct
    sums = [np.add.reduceat(v, starts, axis=0) if len(v) else v
            for v in (w, x0 * w, y0 * w, x0 * x0 * w, y0 * y0 * w, x0 * y0 * w)]
    cxx, cyy, cxy = _centred_sums(*sums)
    weights = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)
    return _r(weights @ cxx, weights @ cyy, weights @ cxy)


def _block_boot(x0, y0, w, bounds, n_boot, lengths, rng):
    """Moving-block bootstrap r, (B, P); ``lengths`` (S, P) block length per unit and pair."""
    p = x0.shape[1]
    tot = np.zeros((3, n_boot, p))
    for s in range(len(bounds) - 1):
        a, b = bounds[s], bounds[s + 1]
        n = b - a
        if n == 0:
            continue
        ws, xs_, ys_ = w[a:b], x0[a:b], y0[a:b]
        raw = np.stack([ws, xs_ * ws, ys_ * ws, xs_ * xs_ * ws, ys_ * ys_ * ws, xs_ * ys_ * ws])
        pref = np.concatenate([np.zeros((6, 1, p)), np.cumsum(raw, axis=1)], axis=1)
        for length in np.unique(lengths[s]):
            cols = np.flatnonzero(lengths[s] == length)
            nb = -(-n // length)
            last = n - (nb - 1) * length
            blen = np.full(nb, length)
            blen[-1] = last
            acc = np.empty((6, n_boot, len(cols)))
            step = max(1, _CHUNK // max(1, nb * len(cols) * 6))
            for c0 in range(0, n_boot, step):
                c1 = min(n_boot, c0 + step)
                st = rng.integers(0, n - length + 1, size=(c1 - c0, nb))
                pc = pref[:, :, cols]
                acc[:, c0:c1] = (pc[:, st + blen] - pc[:, st]).sum(axis=2)
            cxx, cyy, cxy = _centred_sums(*acc)
            tot[0][:, cols] += cxx
            tot[1][:, cols] += cyy
            tot[2][:, cols] += cxy
    return _r(*tot)


def rmcorr_intervals(
    data: Any,
    subject: str,
    x: str | list[str],
    y: str | list[str],
    ci: float = 0.95,
    *,
    methods: tuple[str, ...] | list[str] = METHODS,
    n_boot: int = 1000,
    block_length: int | None = None,
    seed: int | np.random.Generator | None = None,
    errors: str = "raise",
) -> pd.DataFrame:
    """rmcorr with autocorrelation-aware intervals beside the classic one.

    Parameters
    ----------
    data : DataFrame or xarray.Dataset
        Long table, one row per sample; within a unit the rows must be in time order (the
        block bootstrap and the lag-1 autocorrelations use that order).
    subject : str
        Unit column (a subject, or a subject-session).
    x, y : str or list of str
        Columns, paired as in :func:`irtrepro.stats.rmcorr`.
    ci : float
        Confidence level of every interval.
    methods : sequence of {"cluster_boot", "block_boot", "neff"}
        Intervals to add.
    n_boot : int
        Bootstrap draws (>= 2) for ``cluster_boot`` and ``block_boot``.
    block_length : int, optional
        Block length (samples) of ``block_boot`` for every unit and pair; None: per unit and
        pair from :func:`mbb_block_length` with the pooled lag-1 autocorrelation of the
        within-unit centred product ``xc * yc``.
    seed : int or Generator, optional
        Seed of the bootstraps.
    errors : {"raise", "warn"}
        As in :func:`irtrepro.stats.rmcorr`.

    Returns
    -------
    DataFrame
        The columns of :func:`rmcorr` (classic Fisher-z CI in ``ci_low``/``ci_high``) and, per
        method, ``<method>_ci<level>_low``/``_high`` (e.g. ``cluster_boot_ci95_low``); with
        ``neff`` also ``df_eff``, ``p_neff``, ``r1_x``, ``r1_y`` (pooled lag-1
        autocorrelations); with ``block_boot`` ``r1_xy`` and ``block_length_median``
        (samples). ``n_boot`` is a column when a bootstrap ran.

    Notes
    -----
    Cluster bootstrap: a draw picks units with replacement (multinomial counts); a unit drawn
    twice enters twice with its own mean, so the draw's r is
    ``sum_s w_s Sxy_s / sqrt(sum_s w_s Sxx_s * sum_s w_s Syy_s)`` of the per-unit centred sums.
    Block bootstrap: each unit's series is rebuilt from ``ceil(n/L)`` blocks of length ``L``
    with uniform random starts (the last block cut to length), re-centred, and the sums pooled.
    Both CIs are percentile intervals. ``neff``: ``df_eff = df (1 - r1x r1y)/(1 + r1x r1y)``,
    Fisher z with ``n_eff = df_eff + 2`` and a t test on ``df_eff`` df.
    """
    ci = check_ci(ci)
    methods = list(methods)
    for m in methods:
        if m not in METHODS:
            raise StatsError(f"methods: {m!r} is not one of {METHODS}")
    boot = [m for m in methods if m.endswith("_boot")]
    if boot and int(n_boot) < 2:
        raise StatsError(f"n_boot={n_boot!r}; expected at least 2 for {boot}")
    if block_length is not None and int(block_length) < 1:
        raise StatsError(f"block_length={block_length!r}; expected a positive number of samples")
    out = rmcorr(data, subject, x, y, ci, errors=errors)
    pairs = _pairs(x, y)
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    frame = _as_frame(data, [subject] + sorted(set(xs + ys)))
    x0, y0, w, bounds = _unit_arrays(frame, subject, xs, ys)
    bad = out["r"].isna().to_numpy()
    rng = np.random.default_rng(seed)
    r1x, r1y, r1p = _lag1_products(x0, y0, w, bounds)
    if "cluster_boot" in methods:
        lo, hi = _percentile(_cluster_boot(x0, y0, w, bounds, int(n_boot), rng), ci)
        cl, ch = ci_columns("cluster_boot", ci)
        out[cl], out[ch] = np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)
    if "block_boot" in methods:
        n_unit = np.add.reduceat(w, bounds[:-1], axis=0) if len(w) else w
        if block_length is None:
            lengths = mbb_block_length(np.broadcast_to(r1p, n_unit.shape), n_unit)
        else:
            lengths = np.minimum(int(block_length), np.maximum(n_unit, 1)).astype(int)
        # units with no sample for a pair are skipped by their zero sums; any length does
        draws = _block_boot(x0, y0, w, bounds, int(n_boot), np.maximum(lengths, 1), rng)
        lo, hi = _percentile(draws, ci)
        bl, bh = ci_columns("block_boot", ci)
        out[bl], out[bh] = np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)
        out["r1_xy"] = r1p
        used = np.where(n_unit > 0, lengths, np.nan)
        with np.errstate(all="ignore"):
            out["block_length_median"] = np.nanmedian(used, axis=0)
    if "neff" in methods:
        df_eff = out["df"].to_numpy() * bretherton_factor(r1x, r1y)
        r = out["r"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            tstat = r * np.sqrt(df_eff / (1 - r**2))
            p = np.where(np.abs(r) == 1, 0.0, 2 * t_sf(np.abs(tstat), df_eff))
        lo, hi = fisher_z_ci(r, df_eff + 2, ci)
        nl, nh = ci_columns("neff", ci)
        out[nl], out[nh] = lo, hi
        out["df_eff"], out["p_neff"] = df_eff, np.where(df_eff > 0, p, np.nan)
        out["r1_x"], out["r1_y"] = r1x, r1y
    if boot:
        out["n_boot"] = int(n_boot)
    return out
