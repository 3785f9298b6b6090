"""Pooling one estimate computed on several versions of the data (Rubin's rules).

Rubin (1987) combines an estimate computed on each of ``m`` imputed data sets: the pooled
estimate is their mean, and its variance adds the between-version variance to the average
within-version variance. The same rules carry measurement uncertainty that is represented by
alternative versions of the data, e.g. the skin-temperature metrics under several plausible
segmentations of the same frames (:mod:`irtrepro.vision.uncertainty`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

from irtrepro.errors import StatsError

__all__ = ["rubin_pool"]


def rubin_pool(estimates: Sequence[float], variances: Sequence[float], *,
               ci: float = 0.95) -> dict[str, float]:
    """Pool ``m`` estimates of one quantity and their sampling variances by Rubin's rules.

    Parameters
    ----------
    estimates : sequence of float, length m >= 2
        The estimate computed on each version of the data.
    variances : sequence of float, length m
        Its squared standard error in each version (within-version variance).
    ci : float
        Level of the pooled interval.

    Returns
    -------
    dict
        ``estimate`` (mean of the estimates), ``within`` (mean variance, W), ``between``
        (variance of the estimates, ddof 1, B), ``total`` (T = W + (1 + 1/m) B), ``df``
        (Rubin's df, (m - 1)(1 + W / ((1 + 1/m) B))^2; ``inf`` when B = 0), ``ci_low``,
        ``ci_high`` (estimate -/+ t(df) sqrt(T)), ``widening`` (sqrt(T / W): how much wider the
        pooled interval's standard error is than a single version's), ``fmi`` ((1 + 1/m) B /
        T, the fraction of the variance due to the versions), ``m`` and ``ci_level``.

    Raises
    ------
    StatsError
        Fewer than two estimates, lengths that differ, a non-finite value or a negative
        variance.

    References
    ----------
    Rubin DB (1987). Multiple Imputation for Nonresponse in Surveys. Wiley, ch. 3.
    Van Buuren S (2018). Flexible Imputation of Missing Data, 2nd ed., sec. 5.2.

    Examples
    --------
    >>> r = rubin_pool([1.0, 1.2, 0.8], [0.04, 0.05, 0.03])
    >>> round(r["estimate"], 3), round(r["total"], 4), round(r["widening"], 3)
    (1.0, 0.0933, 1.528)
    """
    q = np.asarray(estimates, float)
    u = np.asarray(variances, float)
    if q.ndim != 1 or q.shape != u.shape:
        raise StatsError(f"rubin_pool: {q.size} estimates and {u.size} variances")
    m = q.size
    if m < 2:
        raise StatsError(f"rubin_pool: needs at least 2 versions of the data, got {m}")
    if not (np.isfinite(q).all() and np.isfinite(u).all()):
        raise StatsError("rubin_pool: estimates and variances must be finite")
    if (u < 0).any():
        raise StatsError("rubin_pool: a variance is negative")
    if not 0 < ci < 1:
        raise StatsError(f"rubin_pool: ci must be in (0, 1), got {ci}")
    qbar = float(q.mean())
    w = float(u.mean())
    b = float(q.var(ddof=1)) if np.ptp(q) > 0 else 0.0  # identical: exactly no spread
    f = 1 + 1 / m
    t_var = w + f * b
    if b == 0:
        df = np.inf
    elif w == 0:
        df = float(m - 1)
    else:
        df = (m - 1) * (1 + w / (f * b)) ** 2
    crit = float(_st.norm.ppf((1 + ci) / 2) if np.isinf(df) else _st.t.ppf((1 + ci) / 2, df))
    half = crit * np.sqrt(t_var)
    return {"estimate": qbar, "within": w, "between": b, "total": t_var, "df": float(df),
            "ci_low": float(qbar - half), "ci_high": float(qbar + half),
            "widening": float(np.sqrt(t_var / w)) if w > 0 else np.inf,
            "fmi": f * b / t_var if t_var > 0 else 0.0, "m": m, "ci_level": ci}
