"""Correlations for repeated measures and time series.

- :func:`rmcorr`: repeated-measures correlation (Bakdash & Marusich 2017), vectorised over many
  (x, y) pairs of columns.
- :func:`windowed_corr`: per-subject Pearson/Spearman correlations within windows (phases),
  pooled across subjects by Fisher z, with the range across subjects.
- :func:`lagged_xcorr`: lagged cross-correlation of two series, the lag of maximum ``|r|`` and
  p-values with the effective sample size of Bretherton et al. (1999).
- :func:`between_subject_corr`: correlation of subject-level summaries with a Fisher-z CI.
- :func:`p_adjust`: Holm and Benjamini–Hochberg corrections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from irtrepro.errors import StatsError, check_option
from irtrepro.stats._common import (
    CI_HIGH,
    CI_LEVEL,
    CI_LOW,
    CI_METHOD,
    DF,
    P,
    check_ci,
    finite_1d,
    long_from_xarray,
    raise_or_warn,
    warn,
)
from irtrepro.stats._dist import norm_ppf, t_sf

__all__ = [
    "WindowedCorr",
    "between_subject_corr",
    "bretherton_factor",
    "fisher_z_ci",
    "lagged_xcorr",
    "p_adjust",
    "rmcorr",
    "windowed_corr",
]


def fisher_z_ci(r: Any, n_eff: Any, ci: float = 0.95, se_factor: float = 1.0):
    """Fisher-z confidence interval of a correlation: ``tanh(atanh(r) -/+ z sqrt(f/(n-3)))``.

    ``n_eff`` is the effective sample size (``n`` for Pearson, ``df + 2`` for rmcorr);
    ``se_factor`` is 1 for Pearson and 1.06 for Spearman (Fieller, Hartley & Pearson 1957).
    Returns NaN where ``n_eff <= 3``.
    """
    r = np.asarray(r, float)
    n_eff = np.asarray(n_eff, float)
    zc = norm_ppf(0.5 + ci / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(se_factor / (n_eff - 3))
        z = np.arctanh(np.clip(r, -1, 1))
        lo, hi = np.tanh(z - zc * se), np.tanh(z + zc * se)
    bad = n_eff <= 3
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _pairs(x, y) -> list[tuple[str, str]]:
    xs = [x] if isinstance(x, str) else list(x)
    ys = [y] if isinstance(y, str) else list(y)
    if len(xs) == len(ys):
        return list(zip(xs, ys, strict=True))
    if len(ys) == 1:
        return [(a, ys[0]) for a in xs]
    if len(xs) == 1:
        return [(xs[0], b) for b in ys]
    raise StatsError(f"x has {len(xs)} columns and y {len(ys)}; expected equal lengths (pairs) "
                     "or a single column on one side")


def _as_frame(data: Any, cols: list[str]) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if type(data).__module__.startswith("xarray"):
        return long_from_xarray(data, cols)
    raise StatsError(f"data of type {type(data).__name__}; expected a DataFrame or an xarray "
                     "Dataset")


def _is_number_dtype(dt: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)


def _numeric_block(data: pd.DataFrame, cols: list[str],
                   report: list[str] | None = None) -> np.ndarray:
    """``data[cols]`` as a float array, after checking that every column exists, is numeric
    and has no infinite value; errors name the first bad column of ``report`` (default
    ``cols``, a reordering of the same names)."""
    if data.columns.is_unique:
        # the usual case, checked with one set and the few distinct dtypes of the selection;
        # any problem goes to the loops below, which name the offending column
        names = set(data.columns)
        if all(c in names for c in cols):
            sub = data[cols]
            if all(_is_number_dtype(dt) for dt in set(sub.dtypes.tolist())):
                return _finite_block(sub.to_numpy(dtype=float), cols)
    cols_in = cols
    cols = cols if report is None else report
    if data.columns.is_unique:
        # one dtype lookup per column name and one numeric test per distinct dtype: a
        # Series per column (``data[c]``) dominated rmcorr over a few hundred pairs
        dtypes = dict(zip(data.columns, data.dtypes, strict=True))
        numeric = {}
        for c in cols:
            if c not in dtypes:
                raise StatsError(f"{c!r} is not a column; columns are {list(data.columns)}")
            dt = dtypes[c]
            if dt not in numeric:
                numeric[dt] = (pd.api.types.is_numeric_dtype(dt)
                               and not pd.api.types.is_bool_dtype(dt))
            if not numeric[dt]:
                raise StatsError(f"column {c!r} is not numeric (dtype {dt})")
    else:
        for c in cols:
            if c not in data.columns:
                raise StatsError(f"{c!r} is not a column; columns are {list(data.columns)}")
            if not (pd.api.types.is_numeric_dtype(data[c])
                    and not pd.api.types.is_bool_dtype(data[c])):
                raise StatsError(f"column {c!r} is not numeric (dtype {data[c].dtype})")
    return _finite_block(data[cols_in].to_numpy(dtype=float), cols_in)


def _finite_block(arr: np.ndarray, cols: list[str]) -> np.ndarray:
    if np.isinf(arr).any():
        bad = sorted({cols[j] for j in np.flatnonzero(np.isinf(arr).any(0))})
        raise StatsError(f"columns {bad} have infinite values")
    return arr


def _rm_stats(xa: np.ndarray, ya: np.ndarray, onehot: np.ndarray, codes: np.ndarray):
    """Within-subject centring and rmcorr sums for all pairs at once.

    xa, ya: (N, P) with NaN for missing; onehot: (N, S); codes: (N,) subject index of each row
    (the column of its 1 in ``onehot``). Returns r, df, n, n_subjects, sxx, syy.
    """
    mask = np.isfinite(xa) & np.isfinite(ya)
    if mask.all():
        return _rm_stats_complete(xa, ya, onehot, codes)
    return _rm_stats_masked(xa, ya, onehot, mask)


def _rm_stats_masked(xa: np.ndarray, ya: np.ndarray, onehot: np.ndarray, mask: np.ndarray):
    """:func:`_rm_stats` with missing values: each pair's mask applied to sums and counts."""
    w = mask.astype(float)
    x0 = np.where(mask, xa, 0.0)
    y0 = np.where(mask, ya, 0.0)
    cnt = onehot.T @ w  # (S, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (onehot.T @ x0) / cnt
        my = (onehot.T @ y0) / cnt
    mx = np.where(cnt > 0, mx, 0.0)
    my = np.where(cnt > 0, my, 0.0)
    xc = (x0 - onehot @ mx) * w
    yc = (y0 - onehot @ my) * w
    sxy = (xc * yc).sum(0)
    sxx = (xc * xc).sum(0)
    syy = (yc * yc).sum(0)
    n = w.sum(0)
    n_sub = (cnt > 0).sum(0)
    df = n - n_sub - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    return np.clip(r, -1.0, 1.0), df, n, n_sub, sxx, syy


def _rm_stats_complete(xa: np.ndarray, ya: np.ndarray, onehot: np.ndarray, codes: np.ndarray):
    """:func:`_rm_stats` when no value is missing: the same numbers with fewer passes.

    The mask is all ones there, so the masked copies and the multiplications by it are the
    identity; the per-row subject mean ``onehot @ means`` picks one entry per row (the other
    terms are exact zeros), which ``means[codes]`` does without the product. Each array
    allocated here is a fresh block of pages that the kernel must fault in, which cost more
    than the arithmetic, so the products share one buffer. The sums run over the same values
    in the same memory order (C order, as the original mixed-order expressions gave), so every
    result is bit-identical to the masked path.
    """
    npair = xa.shape[1]
    per_subject = onehot.sum(0)  # rows of each subject: exact small integers
    cnt = np.broadcast_to(per_subject[:, None], (onehot.shape[1], npair))
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (onehot.T @ xa) / cnt
        my = (onehot.T @ ya) / cnt
    mx = np.where(cnt > 0, mx, 0.0)
    my = np.where(cnt > 0, my, 0.0)
    xc = mx[codes]
    np.subtract(xa, xc, out=xc)
    yc = my[codes]
    np.subtract(ya, yc, out=yc)
    buf = np.empty_like(xc)
    sxy = np.multiply(xc, yc, out=buf).sum(0)
    sxx = np.multiply(xc, xc, out=buf).sum(0)
    syy = np.multiply(yc, yc, out=buf).sum(0)
    n = np.full(npair, float(xa.shape[0]))
    n_sub = np.full(npair, int((per_subject > 0).sum()))
    df = n - n_sub - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    return np.clip(r, -1.0, 1.0), df, n, n_sub, sxx, syy


def rmcorr(
    data: Any,
    subject: str,
    x: str | list[str],
    y: str | list[str],
    ci: float = 0.95,
    *,
    n_boot: int = 0,
    seed: int | np.random.Generator | None = None,
    errors: str = "raise",
) -> pd.DataFrame:
    """Repeated-measures correlation, vectorised over many pairs of columns.

    Parameters
    ----------
    data : DataFrame or xarray.Dataset
        Long table, one row per observation (several per subject). A Dataset is flattened to a
        long table over all its dims.
    subject : str
        Subject column.
    x, y : str or list of str
        Columns; two equal-length lists are paired element-wise, a single name on one side is
        paired with every name on the other.
    ci : float
        Confidence level.
    n_boot : int
        If > 0, add a percentile bootstrap CI resampling observations within subjects (as
        rmcorr's ``CIs="bootstrap"``): columns ``boot_ci_low``, ``boot_ci_high``. Like the
        classic CI it treats samples as independent; for time series use
        :func:`irtrepro.stats.rmcorr_intervals`.
    seed : int or Generator, optional
        Seed of the bootstrap.
    errors : {"raise", "warn"}
        A pair without within-subject variation (or too few observations): raise
        :class:`StatsError` naming it, or warn and give a NaN row.

    Returns
    -------
    DataFrame
        One row per pair: ``x``, ``y``, ``r``, ``df``, ``p``, ``ci_low``, ``ci_high``,
        ``ci_level``, ``ci_method``, ``n`` (observations), ``n_subjects``.

    Notes
    -----
    ``r = sign(b) sqrt(SS_x / (SS_x + SS_res))`` of the ANCOVA ``y ~ subject + x``, which equals
    the correlation of the within-subject centred values; ``df = N - S - 1``; the p-value is
    the F (= t^2) test of the common slope. The analytic CI is the Fisher-z interval with the
    effective sample size ``df + 2`` (rmcorr >= 0.5.4; before 0.5.4 rmcorr used ``df``).
    Rows with a NaN in x or y are dropped pair by pair.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"s": [1, 1, 1, 2, 2, 2], "a": [1, 2, 3, 4, 5, 6.],
    ...                    "b": [1, 3, 2, 5, 6, 8.]})
    >>> float(rmcorr(df, "s", "a", "b").r.iloc[0].round(3))
    0.775
    """
    ci = check_ci(ci)
    check_option("errors", errors, ("raise", "warn"))
    pairs = _pairs(x, y)
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    data = _as_frame(data, [subject] + sorted(set(xs + ys)))
    if subject not in data.columns:
        raise StatsError(f"{subject!r} is not a column; columns are {list(data.columns)}")
    if data[subject].isna().any():
        raise StatsError(f"column {subject!r} has missing subject labels")
    cols = sorted(set(xs + ys))
    if len(cols) == len(xs) + len(ys):
        # every column once: selected in pair order, x and y are views of one block instead
        # of two gathered copies (fresh pages cost more than the arithmetic on them)
        block = _numeric_block(data, xs + ys, report=cols)
        xa, ya = block[:, :len(xs)], block[:, len(xs):]
    else:
        block = _numeric_block(data, cols)
        pos = {c: i for i, c in enumerate(cols)}
        xa = block[:, [pos[c] for c in xs]]
        ya = block[:, [pos[c] for c in ys]]
    codes, subjects = pd.factorize(data[subject])
    onehot = np.zeros((len(codes), len(subjects)))
    onehot[np.arange(len(codes)), codes] = 1.0
    r, df, n, n_sub, sxx, syy = _rm_stats(xa, ya, onehot, codes)
    labels = [f"{a} ~ {b}" for a, b in pairs]
    problems = {}
    # the checks as masks over all pairs, each pair reported with the first that fails
    few_sub = n_sub < 2
    few_df = ~few_sub & (df < 3)
    flat = ~few_sub & ~few_df & ((sxx <= 0) | (syy <= 0))
    for j in np.flatnonzero(few_sub | few_df | flat):
        lab = labels[j]
        if few_sub[j]:
            problems[lab] = f"{int(n_sub[j])} subject(s) with data, need at least 2"
        elif few_df[j]:
            problems[lab] = f"df = N - subjects - 1 = {int(df[j])}, need at least 3"
        else:
            which = xs[j] if sxx[j] <= 0 else ys[j]
            problems[lab] = f"{which!r} does not vary within subjects (zero variance)"
    raise_or_warn(problems, errors, "the repeated-measures correlation")
    good = np.array([lab not in problems for lab in labels])
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = r * np.sqrt(df / (1 - r**2))
        p = 2 * t_sf(np.abs(tstat), df)
    p = np.where(np.abs(r) == 1, 0.0, p)
    lo, hi = fisher_z_ci(r, df + 2, ci)
    bad = ~good
    out = pd.DataFrame({
        "x": xs, "y": ys, "r": np.where(bad, np.nan, r), DF: np.where(bad, np.nan, df),
        P: np.where(bad, np.nan, p), CI_LOW: np.where(bad, np.nan, lo),
        CI_HIGH: np.where(bad, np.nan, hi), CI_LEVEL: ci,
        CI_METHOD: "Fisher z, n_eff = df + 2 (rmcorr >= 0.5.4)", "n": n.astype(int),
        "n_subjects": n_sub.astype(int),
    })
    if n_boot:
        if int(n_boot) < 2:
            raise StatsError(f"n_boot={n_boot!r}; expected 0 (no bootstrap) or at least 2")
        rng = np.random.default_rng(seed)
        groups = [np.flatnonzero(codes == s) for s in range(len(subjects))]
        draws = np.empty((int(n_boot), len(pairs)))
        for b in range(int(n_boot)):
            idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
            draws[b] = _rm_stats(xa[idx], ya[idx], onehot[idx], codes[idx])[0]
        a = 1 - ci
        with np.errstate(invalid="ignore"):
            out["boot_ci_low"] = np.nanquantile(draws, a / 2, axis=0)
            out["boot_ci_high"] = np.nanquantile(draws, 1 - a / 2, axis=0)
        out["boot_method"] = f"percentile, resampling within subjects, n_boot={int(n_boot)}"
    return out


def _corr_1d(a: np.ndarray, b: np.ndarray, method: str) -> float:
    if method == "spearman":
        a, b = st.rankdata(a), st.rankdata(b)
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else np.nan


def _r_p(r: float, n: float) -> float:
    if not np.isfinite(r) or n < 3:
        return np.nan
    if abs(r) >= 1:
        return 0.0
    t = r * np.sqrt((n - 2) / (1 - r * r))
    return float(2 * st.t.sf(abs(t), n - 2))


@dataclass(frozen=True)
class WindowedCorr:
    """Result of :func:`windowed_corr`.

    Attributes
    ----------
    per_subject : DataFrame
        One row per subject and window: ``r``, ``n``, ``p``, ``ci_low``, ``ci_high``.
    pooled : DataFrame
        One row per window: Fisher-z pooled ``r`` (weights ``n - 3``) with CI, ``r_min``,
        ``r_max`` (range across subjects), ``n_subjects``, ``n``.
    """

    per_subject: pd.DataFrame
    pooled: pd.DataFrame


def windowed_corr(
    data: Any,
    subject: str,
    x: str,
    y: str,
    window: str | None = None,
    method: str = "pearson",
    ci: float = 0.95,
) -> WindowedCorr:
    """Per-subject correlation of two series within windows, pooled by Fisher z.

    Parameters
    ----------
    data : DataFrame or xarray.Dataset
        Long table (e.g. a Study flattened: one row per subject, session, time).
    subject, x, y : str
        Columns.
    window : str, optional
        Column defining the windows (e.g. ``"phase"``); None: one window per subject.
    method : {"pearson", "spearman"}
    ci : float
        Confidence level of the per-subject and pooled CIs.

    Notes
    -----
    Pooled ``z = sum((n_i - 3) z_i) / sum(n_i - 3)``, ``SE = sqrt(f / sum(n_i - 3))`` with
    ``f = 1`` (Pearson) or 1.06 (Spearman, Fieller et al. 1957); subjects with fewer than 4
    points or without variation are left out of the pooled estimate (reported in
    ``per_subject`` with ``r`` NaN and a warning). Successive samples of a time series are
    autocorrelated, so per-subject p-values and CIs are optimistic; see :func:`lagged_xcorr`
    for an effective-sample-size correction.
    """
    ci = check_ci(ci)
    check_option("method", method, ("pearson", "spearman"))
    cols = [subject, x, y] + ([window] if window else [])
    data = _as_frame(data, cols)
    block = _numeric_block(data, [x, y])
    df = pd.DataFrame({"subject": data[subject].to_numpy(), "x": block[:, 0], "y": block[:, 1]})
    df["window"] = data[window].to_numpy() if window else "all"
    df = df.dropna(subset=["x", "y", "window"])
    f = 1.06 if method == "spearman" else 1.0
    rows = []
    for (win, sub), g in df.groupby(["window", "subject"], sort=False):
        r = _corr_1d(g["x"].to_numpy(), g["y"].to_numpy(), method) if len(g) >= 3 else np.nan
        rows.append((win, sub, r, len(g), _r_p(r, len(g))))
    per = pd.DataFrame(rows, columns=["window", "subject", "r", "n", P])
    if per.empty:
        raise StatsError(f"no rows with both {x!r} and {y!r}")
    per[CI_LOW], per[CI_HIGH] = fisher_z_ci(per["r"], per["n"], ci, f)
    per[CI_LEVEL] = ci
    per[CI_METHOD] = f"Fisher z, SE sqrt({f}/(n-3))"
    per["method"] = method
    usable = per["r"].notna() & (per["n"] > 3)
    if (~usable).any():
        bad = per.loc[~usable, ["window", "subject", "n"]].head(10).to_dict("records")
        warn(f"windowed_corr: no correlation (fewer than 4 points or no variation) for {bad}; "
             "left out of the pooled estimate")
    zc = st.norm.ppf(0.5 + ci / 2)
    pooled = []
    for win, g in per[usable].groupby("window", sort=False):
        w = g["n"].to_numpy(float) - 3
        z = np.arctanh(np.clip(g["r"].to_numpy(), -1 + 1e-15, 1 - 1e-15))
        zbar = (w * z).sum() / w.sum()
        se = np.sqrt(f / w.sum())
        pz = 2 * st.norm.sf(abs(zbar / se))
        pooled.append((win, float(np.tanh(zbar)), float(np.tanh(zbar - zc * se)),
                       float(np.tanh(zbar + zc * se)), float(pz), float(g["r"].min()),
                       float(g["r"].max()), len(g), int(g["n"].sum())))
    pooled_df = pd.DataFrame(pooled, columns=["window", "r", CI_LOW, CI_HIGH, P, "r_min",
                                              "r_max", "n_subjects", "n"])
    pooled_df[CI_LEVEL] = ci
    pooled_df[CI_METHOD] = "Fisher z pooled, weights n - 3"
    pooled_df["method"] = method
    if window:
        per = per.rename(columns={"window": window})
        pooled_df = pooled_df.rename(columns={"window": window})
    else:
        per = per.drop(columns="window")
        pooled_df = pooled_df.drop(columns="window")
    return WindowedCorr(per.rename(columns={"subject": subject}), pooled_df)


def bretherton_factor(r1x: Any, r1y: Any) -> np.ndarray:
    """Effective-sample-size factor ``(1 - r1x r1y) / (1 + r1x r1y)`` (Bretherton et al. 1999).

    ``r1x``, ``r1y`` are the lag-1 autocorrelations of the two series; the factor multiplies
    ``n`` (or a df) and is capped at 1 (no gain from negative autocorrelation).
    """
    rho = np.asarray(r1x, float) * np.asarray(r1y, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum((1 - rho) / (1 + rho), 1.0)


def _lag1(a: np.ndarray) -> float:
    a = a - a.mean()
    den = (a * a).sum()
    return float((a[:-1] * a[1:]).sum() / den) if den > 0 else np.nan


def lagged_xcorr(
    x: Any,
    y: Any,
    max_lag: int,
    *,
    dt: float = 1.0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Lagged cross-correlation of two equally sampled series, with effective-n p-values.

    Parameters
    ----------
    x, y : array-like or xarray.DataArray, shape (n,)
        Series on the same regular grid (e.g. 1 s). NaN pairs are ignored lag by lag.
    max_lag : int
        Lags ``-max_lag ... max_lag`` (samples).
    dt : float
        Sampling interval, to express lags in time units (column ``lag_time``; s for a Study).
    ci : float
        Confidence level of the Fisher-z CI (on the effective sample size).

    Returns
    -------
    DataFrame
        One row per lag: ``lag`` (samples; positive: y lags x, ``r = corr(x[t], y[t+lag])``),
        ``lag_time``, ``r``, ``n``, ``n_eff``, ``p``, ``ci_low``, ``ci_high``, ``ci_level``,
        ``best`` (True at the lag of maximum ``|r|``), ``method``.

    Notes
    -----
    ``n_eff = n (1 - r1x r1y) / (1 + r1x r1y)`` with the lag-1 autocorrelations of the
    overlapping segments (Bretherton et al. 1999, eq. 31); p from t with ``n_eff - 2`` df.
    The p-value of the best lag does not correct for choosing the maximum over lags.
    """
    ci = check_ci(ci)
    xv = finite_1d(np.asarray(getattr(x, "values", x)), "x")
    yv = finite_1d(np.asarray(getattr(y, "values", y)), "y")
    if len(xv) != len(yv):
        raise StatsError(f"x has {len(xv)} samples and y {len(yv)}; expected the same grid")
    max_lag = int(max_lag)
    if max_lag < 0 or max_lag >= len(xv) - 3:
        raise StatsError(f"max_lag={max_lag}; expected 0 <= max_lag < n - 3 = {len(xv) - 3}")
    rows = []
    for lag in range(-max_lag, max_lag + 1):
        a = xv[max(0, -lag): len(xv) - max(0, lag)]
        b = yv[max(0, lag): len(yv) - max(0, -lag)]
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        n = len(a)
        r = _corr_1d(a, b, "pearson") if n >= 4 else np.nan
        rho = _lag1(a) * _lag1(b) if n >= 4 else np.nan
        n_eff = float(n * bretherton_factor(rho, 1.0)) if np.isfinite(rho) else np.nan
        if np.isfinite(r) and np.isfinite(n_eff) and n_eff > 2:
            p = 0.0 if abs(r) >= 1 else float(
                2 * st.t.sf(abs(r) * np.sqrt((n_eff - 2) / (1 - r * r)), n_eff - 2))
        else:
            p = np.nan
        rows.append((lag, lag * dt, r, n, n_eff, p))
    out = pd.DataFrame(rows, columns=["lag", "lag_time", "r", "n", "n_eff", P])
    if out["r"].isna().all():
        raise StatsError("lagged_xcorr: no lag has a defined correlation (constant series or "
                         "too few finite samples)")
    if out["r"].isna().any() or out[P].isna().any():
        warn(f"lagged_xcorr: r or p undefined at lags {out.lag[out[P].isna()].tolist()[:10]} "
             "(constant segment or n_eff <= 2)")
    out[CI_LOW], out[CI_HIGH] = fisher_z_ci(out["r"], out["n_eff"], ci)
    out[CI_LEVEL] = ci
    out["best"] = False
    out.loc[out["r"].abs().idxmax(), "best"] = True
    out["method"] = "Pearson; p and CI with Bretherton et al. (1999) effective n"
    return out


def between_subject_corr(
    x: Any, y: Any, method: str = "pearson", ci: float = 0.95
) -> pd.DataFrame:
    """Correlation of subject-level summaries (e.g. delta TNV vs vIAT) with a Fisher-z CI.

    Parameters
    ----------
    x, y : pandas Series or xarray DataArray indexed by subject, or equal-length arrays
        Series are aligned on their index (DataArrays on their only dim); subjects missing
        from either side or NaN are dropped with a warning.
    method : {"pearson", "spearman"}
    ci : float

    Returns
    -------
    DataFrame
        One row: ``r``, ``n``, ``df``, ``p``, ``ci_low``, ``ci_high``, ``ci_level``,
        ``ci_method``, ``method``.
    """
    ci = check_ci(ci)
    check_option("method", method, ("pearson", "spearman"))
    if hasattr(x, "to_series") and hasattr(x, "dims"):
        x = x.to_series()
    if hasattr(y, "to_series") and hasattr(y, "dims"):
        y = y.to_series()
    if isinstance(x, pd.Series) and isinstance(y, pd.Series):
        both = pd.concat({"x": x, "y": y}, axis=1, join="outer")
        xa = finite_1d(both["x"].to_numpy(), "x")
        ya = finite_1d(both["y"].to_numpy(), "y")
    else:
        xa, ya = finite_1d(np.asarray(x), "x"), finite_1d(np.asarray(y), "y")
        if len(xa) != len(ya):
            raise StatsError(f"x has {len(xa)} values and y {len(ya)}")
    ok = np.isfinite(xa) & np.isfinite(ya)
    if not ok.all():
        warn(f"between_subject_corr: {int((~ok).sum())} subject(s) without both values dropped")
    xa, ya = xa[ok], ya[ok]
    n = len(xa)
    if n < 4:
        raise StatsError(f"{n} subjects with both values; a correlation with CI needs >= 4")
    r = _corr_1d(xa, ya, method)
    if not np.isfinite(r):
        raise StatsError("x or y is constant across subjects (zero variance)")
    f = 1.06 if method == "spearman" else 1.0
    lo, hi = fisher_z_ci(r, n, ci, f)
    return pd.DataFrame({
        "r": [r], "n": [n], DF: [n - 2], P: [_r_p(r, n)], CI_LOW: [float(lo)],
        CI_HIGH: [float(hi)], CI_LEVEL: [ci], CI_METHOD: [f"Fisher z, SE sqrt({f}/(n-3))"],
        "method": [method],
    })


def p_adjust(p: Any, method: str = "holm") -> np.ndarray:
    """Adjust p-values for multiple testing.

    Parameters
    ----------
    p : array-like
        p-values (NaN kept as NaN and not counted).
    method : {"holm", "bh"}
        Holm (1979) step-down family-wise error control, or Benjamini & Hochberg (1995)
        false discovery rate.

    Returns
    -------
    ndarray
        Adjusted p-values, same shape, capped at 1.
    """
    check_option("method", method, ("holm", "bh"))
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    flat = p.ravel()
    ok = np.isfinite(flat)
    if ((flat[ok] < 0) | (flat[ok] > 1)).any():
        raise StatsError("p-values must lie in [0, 1]")
    q = flat[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ps = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ps)
    else:
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ps[::-1])[::-1]
    adj = np.minimum(adj, 1.0)
    res = np.empty(m)
    res[order] = adj
    o = out.ravel()
    o[ok] = res
    return o.reshape(p.shape)
