"""F, chi-square and t tail functions on whole arrays for the batch statistics.

``scipy.stats``' ``f.sf(x, dfn, dfd)`` etc. validate arguments, broadcast, mask and call
``scipy.special`` on the valid entries; on a few hundred metrics that wrapper costs more than
the special functions. These helpers call the same ``scipy.special`` functions as
``scipy.stats``' private ``_sf``/``_ppf`` and reproduce its handling of the edges (NaN for
non-positive or NaN degrees of freedom, the support's end points at ``q = 0, 1``, 1 and 0 at
the ends of the support), so every value is bit-identical to ``scipy.stats``.
"""

from __future__ import annotations

import numpy as np
from scipy import special as sc

__all__ = ["chi2_ppf", "f_ppf", "f_sf", "norm_ppf", "t_ppf", "t_sf"]


def _constant(a: np.ndarray) -> bool:
    """All entries equal (and not NaN); empty arrays count as constant."""
    return a.size == 0 or bool(a.min() == a.max())


def _ppf(fn, q, lower: float, *df):
    q = np.asarray(q, float)
    df = [np.asarray(d, float) for d in df]
    if q.ndim == 0 and 0.0 < q < 1.0 and all(d.size and _constant(d) for d in df):
        # one level and the same df for every metric (complete data): one scalar call and a
        # filled array, what the general path below gives for these arguments
        first = [d.flat[0] for d in df]
        shape = np.broadcast_shapes(*(d.shape for d in df))
        if all(v > 0 for v in first):
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                value = fn(q, *first) + 0.0
        else:
            value = np.nan
        out = np.full(shape, value)
        return out[()] if out.ndim == 0 else out
    ok = np.ones(np.broadcast_shapes(q.shape, *(d.shape for d in df)), bool)
    for d in df:
        ok &= d > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if q.ndim == 0 and all(_constant(d) for d in df):
            # one level and the same df for every metric (complete data): the inverse is one
            # scalar call, the costly part of these functions
            inner = np.full(ok.shape, fn(q, *(d.flat[0] if d.size else d for d in df)))
        else:
            inner = fn(q, *df)
        # "+ 0.0" as scipy's "* scale + loc": turns -0.0 into 0.0
        inner = inner + 0.0
    out = np.where((q > 0) & (q < 1), inner, np.nan)
    out = np.where(q == 0, lower, out)
    out = np.where(q == 1, np.inf, out)
    out = np.where(ok, out, np.nan)
    return out[()] if out.ndim == 0 else out


def _sf(fn, x, lower: float, *df):
    x = np.asarray(x, float)
    df = [np.asarray(d, float) for d in df]
    ok = ~np.isnan(x)
    for d in df:
        ok = ok & (d > 0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        inner = fn(x, *df)
        out = np.where(x <= lower, 1.0, np.where(x < np.inf, inner, 0.0))
    out = np.where(ok, out, np.nan)
    return out[()] if out.ndim == 0 else out


def f_sf(x, dfn, dfd):
    """``scipy.stats.f.sf(x, dfn, dfd)``."""
    return _sf(lambda x, a, b: sc.fdtrc(a, b, x), x, 0.0, dfn, dfd)


def f_ppf(q, dfn, dfd):
    """``scipy.stats.f.ppf(q, dfn, dfd)``."""
    return _ppf(lambda q, a, b: sc.fdtri(a, b, q), q, 0.0, dfn, dfd)


def chi2_ppf(q, df):
    """``scipy.stats.chi2.ppf(q, df)``."""
    return _ppf(lambda q, d: 2 * sc.gammaincinv(d / 2, q), q, 0.0, df)


def t_sf(x, df):
    """``scipy.stats.t.sf(x, df)``."""
    return _sf(lambda x, d: sc.stdtr(d, -x), x, -np.inf, df)


def t_ppf(q, df):
    """``scipy.stats.t.ppf(q, df)``."""
    return _ppf(lambda q, d: sc.stdtrit(d, q), q, -np.inf, df)


def norm_ppf(q):
    """``scipy.stats.norm.ppf(q)``."""
    q = np.asarray(q, float)
    out = np.where((q > 0) & (q < 1), sc.ndtri(q) + 0.0, np.nan)
    out = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, out))
    return out[()] if out.ndim == 0 else out
