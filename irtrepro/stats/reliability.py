"""Test-retest reliability: intraclass correlations, SEM, MDC, typical error, CV.

One variance decomposition per call, vectorised over every metric of the input (numpy over a
``(metric, subject, session)`` array), never a Python loop over metrics.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from irtrepro.errors import StatsError, check_option
from irtrepro.stats._anova import Components, anova_listwise, complete_subjects, reml_crossed
from irtrepro.stats._common import (
    CI_HIGH,
    CI_LEVEL,
    CI_LOW,
    CI_METHOD,
    DF1,
    DF2,
    N_SESSIONS,
    N_SUBJECTS,
    Cube,
    P,
    check_ci,
    raise_or_warn,
    to_cube,
    warn,
)
from irtrepro.stats._dist import chi2_ppf, f_ppf, f_sf, norm_ppf, t_ppf, t_sf

__all__ = ["icc", "koo_li", "reliability", "FORMS"]

#: McGraw & Wong (1996) name -> (Shrout & Fleiss (1979) name, model description)
FORMS: dict[str, tuple[str, str]] = {
    "ICC(1,1)": ("ICC1", "one-way random effects, absolute agreement, single measurement"),
    "ICC(A,1)": ("ICC2", "two-way random effects, absolute agreement, single measurement"),
    "ICC(C,1)": ("ICC3", "two-way mixed effects, consistency, single measurement"),
    "ICC(1,k)": ("ICC1k", "one-way random effects, absolute agreement, mean of k measurements"),
    "ICC(A,k)": ("ICC2k", "two-way random effects, absolute agreement, mean of k measurements"),
    "ICC(C,k)": ("ICC3k", "two-way mixed effects, consistency, mean of k measurements"),
}

_CI_METHOD = {
    "anova": "F distribution (Shrout & Fleiss 1979; McGraw & Wong 1996 / Satterthwaite df for "
    "ICC(A,.)), as psych::ICC",
    "reml": "F distribution on the mean squares implied by the REML components, "
    "df2 = N_obs - n - k + 1 (approximate)",
}
_MISSING = ("listwise", "mixed")
#: Koo & Li (2016) bands of an ICC: poor < 0.5 <= moderate < 0.75 <= good < 0.9 <= excellent
KOO_LI_BANDS = ((0.5, "poor"), (0.75, "moderate"), (0.9, "good"), (np.inf, "excellent"))


def _koo_li_band(v: float) -> str:
    if not np.isfinite(v) and not v == np.inf:
        return "undefined"
    for edge, name in KOO_LI_BANDS:
        if v < edge:
            return name
    return "excellent"


def koo_li(ci_low: Any, ci_high: Any) -> list[str]:
    """Koo & Li (2016) interpretation of ICC confidence intervals, from their bounds.

    Koo & Li ask to read the reliability off the 95 % CI, not the point estimate: poor
    (< 0.5), moderate (0.5-0.75), good (0.75-0.9), excellent (> 0.9). A CI from 0.62 to
    0.93 is "moderate to excellent"; one inside a band is named once ("good").

    Parameters
    ----------
    ci_low, ci_high : float or array-like
        CI bounds (unitless).

    Returns
    -------
    list of str
        One label per CI; ``"undefined"`` where a bound is NaN.

    Examples
    --------
    >>> koo_li([0.62, 0.8], [0.93, 0.85])
    ['moderate to excellent', 'good']
    """
    lo = np.atleast_1d(np.asarray(ci_low, float))
    hi = np.atleast_1d(np.asarray(ci_high, float))
    if lo.shape != hi.shape:
        raise StatsError(f"ci_low has shape {lo.shape} and ci_high {hi.shape}; expected equal")
    out = []
    for a, b in zip(lo, hi, strict=True):
        if np.isnan(a) or np.isnan(b):
            out.append("undefined")
            continue
        la, lb = _koo_li_band(a), _koo_li_band(b)
        out.append(la if la == lb else f"{la} to {lb}")
    return out
_ERRORS = ("raise", "warn")


def _components(cube: np.ndarray, missing: str) -> Components:
    if missing == "listwise":
        return anova_listwise(cube)
    comps, _ = reml_crossed(cube)
    return comps


def _validate(cube: Cube, comps: Components, missing: str, errors: str,
              labels: list[str]) -> np.ndarray:
    """Per-metric checks; returns the mask of metrics that can be computed.

    ``labels`` is ``cube.labels``, built once by the caller.
    """
    problems: dict[str, str] = {}
    n = comps.n
    # the three checks as masks over all metrics (each metric gets the first that fails);
    # fmax, not maximum: max(1.0, nan) is 1.0 in the scalar rule this mirrors
    few = n < 3
    with np.errstate(invalid="ignore"):
        const = ~few & (~np.isfinite(comps.sd)
                        | (comps.sd <= 1e-12 * np.fmax(1.0, np.abs(comps.grand))))
        no_df = ~few & ~const & (comps.df_e < 1)
    how = "complete" if missing == "listwise" else "observed"
    for i in np.flatnonzero(few | const | no_df):
        if few[i]:
            problems[labels[i]] = f"only {int(n[i])} {how} subjects, need at least 3"
        elif const[i]:
            problems[labels[i]] = "constant values (zero variance): the ICC is 0/0"
        else:
            problems[labels[i]] = "no residual degrees of freedom"
    good = (np.ones(len(labels), bool) if not problems
            else np.array([lab not in problems for lab in labels]))
    raise_or_warn(problems, errors, "the ICC")
    if missing == "listwise" and not np.isfinite(cube.values).all():
        dropped = (~complete_subjects(cube.values)) & np.isfinite(cube.values).any(axis=2)
        notes = {}
        for i in np.flatnonzero(good & dropped.any(axis=1)):
            subs = [str(s) for s in cube.subjects[dropped[i]]][:5]
            notes[labels[i]] = subs
        if notes:
            listed = "; ".join(f"{k!r}: {v}" for k, v in list(notes.items())[:5])
            warn(
                f"missing='listwise' dropped subjects with incomplete sessions ({listed}"
                f"{' ...' if len(notes) > 5 else ''}); missing='mixed' keeps them (REML)"
            )
    if comps.converged is not None:
        bad = [labels[i] for i in np.flatnonzero(good & ~comps.converged)]
        if bad:
            warn(f"REML variance components did not converge for {bad[:10]}")
    return good


def _spearman_brown(r: np.ndarray, k: float) -> np.ndarray:
    """Single- to average-measures limit, ``k r / (1 + (k - 1) r)``, monotone in ``r``.

    The map has a pole at ``r = -1/(k-1)``, the lowest single-measure ICC; the Satterthwaite
    lower limit of ICC(A,1) can reach or pass it in near-degenerate data (3 subjects, session
    effect much larger than the subject effect). There the average-measures limit is -inf,
    not the huge positive number the formula gives past the pole (psych::ICC prints the
    latter; found by the Hypothesis property test as a bound of +-9e15 that flipped sign
    with the order of the subjects).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out = k * r / (1 + (k - 1) * r)
    return np.where(1 + (k - 1) * r <= 1e-12, -np.inf, out)


def _icc_arrays(c: Components, ci: float) -> dict[str, np.ndarray]:
    """The six ICCs with F, df, p and psych::ICC confidence limits; arrays of shape (6, M)."""
    n, k = c.n.astype(float), float(c.k)
    msb, msj, mse, msw = c.msr, c.msc, c.mse, c.msw
    alpha = 1.0 - ci
    df1 = n - 1
    df_w = n * (k - 1)
    df_e = c.df_e
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        icc1 = (msb - msw) / (msb + (k - 1) * msw)
        icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
        icc3 = (msb - mse) / (msb + (k - 1) * mse)
        icc1k = (msb - msw) / msb
        icc2k = (msb - mse) / (msb + (msj - mse) / n)
        icc3k = (msb - mse) / msb
        f1 = msb / msw
        f3 = msb / mse
        p1 = f_sf(f1, df1, df_w)
        p3 = f_sf(f3, df1, df_e)
        # one-way and consistency forms
        f1l = f1 / f_ppf(1 - alpha / 2, df1, df_w)
        f1u = f1 * f_ppf(1 - alpha / 2, df_w, df1)
        f3l = f3 / f_ppf(1 - alpha / 2, df1, df_e)
        f3u = f3 * f_ppf(1 - alpha / 2, df_e, df1)
        l1, u1 = (f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)
        l3, u3 = (f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)
        l1k, u1k = 1 - 1 / f1l, 1 - 1 / f1u
        l3k, u3k = 1 - 1 / f3l, 1 - 1 / f3u
        # perfect consistency (MSE = 0 or MSW = 0): F is infinite and the limits are 1
        for arr_f, pairs in ((f1, (l1, u1, l1k, u1k)), (f3, (l3, u3, l3k, u3k))):
            for arr in pairs:
                arr[np.isinf(arr_f)] = 1.0
        # absolute agreement: Satterthwaite df (McGraw & Wong 1996, as psych::ICC)
        fj = msj / mse
        vn = df_e * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        f2u = f_ppf(1 - alpha / 2, df1, v)
        f2l = f_ppf(1 - alpha / 2, v, df1)
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
        # Satterthwaite df near 0 (near-degenerate data) make the F quantile infinite and the
        # formulas inf/inf; their limits as the quantile grows are finite
        l2 = np.where(np.isinf(f2u), -n * mse / (k * msj + (k * n - k - n) * mse), l2)
        u2 = np.where(np.isinf(f2l) & (msb > 0), 1.0, u2)
        l2k = _spearman_brown(l2, k)
        u2k = _spearman_brown(u2, k)
    return {
        "icc": np.array([icc1, icc2, icc3, icc1k, icc2k, icc3k]),
        "f": np.array([f1, f3, f3, f1, f3, f3]),
        DF1: np.array([df1] * 6),
        DF2: np.array([df_w, df_e, df_e, df_w, df_e, df_e]),
        P: np.array([p1, p3, p3, p1, p3, p3]),
        CI_LOW: np.array([l1, l2, l3, l1k, l2k, l3k]),
        CI_HIGH: np.array([u1, u2, u3, u1k, u2k, u3k]),
    }


def _nan_guard(metric: np.ndarray, cols: dict[str, np.ndarray], good_rows: np.ndarray,
               what: str) -> None:
    """Warn about NaN in ``cols`` of rows that passed validation: never a silent NaN.

    ``metric`` holds the metric label of each row, ``cols`` the columns to check (row arrays).
    """
    nan = {key: np.isnan(arr) & good_rows for key, arr in cols.items()}
    bad = np.logical_or.reduce(list(nan.values()))
    if bad.any():
        labels = [str(v) for v in pd.unique(metric[bad])][:10]
        cols_nan = [key for key, mask in nan.items() if mask.any()]
        warn(
            f"{what}: {cols_nan} undefined for {labels} (degenerate data, e.g. residual mean "
            "square 0 when sessions agree perfectly); those cells are NaN"
        )


def _metric_columns(metrics: pd.DataFrame, rows: np.ndarray) -> dict[str, Any]:
    """Columns of the metric table taken at ``rows``, dtypes kept, for one frame constructor."""
    return {col: metrics[col].array.take(rows) for col in metrics.columns}


def _text_column(values: list[str], codes: np.ndarray):
    """``values[codes]`` with the dtype pandas infers for ``values``.

    The dtype is inferred once on the few distinct strings; inferring it on every row (a
    text column of the whole table) is what made the table construction slow.
    """
    return _text_array(tuple(values)).take(codes)


@functools.lru_cache(maxsize=256)
def _text_array(values: tuple[str, ...]):
    """The pandas array of a few distinct strings; ``take`` copies, so it is never modified.

    The labels (forms, statistics, methods) are the same on every call: inferring their dtype
    again each time was a sizeable part of a call on a few hundred metrics.
    """
    return pd.Series(list(values)).array


def _icc_frame(cube: Cube, comps: Components, ci: float, good: np.ndarray, missing: str,
               labels: list[str]):
    arrs = _icc_arrays(comps, ci)
    m = len(cube.metrics)
    forms = list(FORMS)
    rep = np.repeat(np.arange(m), 6)
    columns = _metric_columns(cube.metrics, rep)
    form_of_row = np.tile(np.arange(6), m)
    columns["form"] = _text_column(forms, form_of_row)
    columns["shrout_fleiss"] = _text_column([FORMS[f][0] for f in forms], form_of_row)
    columns["model"] = _text_column([FORMS[f][1] for f in forms], form_of_row)
    # (6, M) -> metric-major rows, as the rows of the table
    for key, arr in arrs.items():
        columns[key] = np.where(good[None, :], arr, np.nan).T.reshape(-1)
    columns[CI_LEVEL] = ci
    same = np.zeros(6 * m, np.intp)
    columns[CI_METHOD] = _text_column([_CI_METHOD[comps.method]], same)
    columns[N_SUBJECTS] = np.repeat(comps.n, 6).astype(int)
    columns[N_SESSIONS] = comps.k
    columns["n_obs"] = np.repeat(comps.n_obs, 6).astype(int)
    columns["missing"] = _text_column([missing], same)
    table = pd.DataFrame(columns)
    _nan_guard(np.asarray(labels, object)[rep],
               {key: columns[key] for key in ("icc", "f", P, CI_LOW, CI_HIGH)},
               np.repeat(good, 6), "ICC")
    return table


def _prepare(data, subject, session, value, ci, missing, errors):
    ci = check_ci(ci)
    check_option("missing", missing, _MISSING)
    check_option("errors", errors, _ERRORS)
    cube = to_cube(data, subject, session, value)
    if cube.values.shape[2] < 2:
        raise StatsError(
            f"{cube.values.shape[2]} session(s) ({list(cube.sessions)}); reliability needs at "
            "least 2 sessions per subject"
        )
    if cube.values.shape[1] < 3:
        raise StatsError(
            f"{cube.values.shape[1]} subject(s) ({list(cube.subjects)}); reliability needs at "
            "least 3 subjects"
        )
    return ci, cube


def icc(
    data: Any,
    subject: str = "subject",
    session: str = "session",
    value: str | list[str] | None = None,
    ci: float = 0.95,
    missing: str = "listwise",
    *,
    errors: str = "raise",
) -> pd.DataFrame:
    """Intraclass correlation coefficients, all six forms, for every metric in one call.

    Parameters
    ----------
    data : DataFrame, xarray.DataArray or xarray.Dataset
        Long table (one row per subject and session) or an xarray object with dims
        ``(subject, session, ...)``; each combination of extra dims (and each Dataset
        variable) is one metric, e.g. ``study[["tnv", "tp"]].groupby("phase").mean("time")``.
    subject, session : str
        Column / dim names of the targets (subjects) and raters (sessions).
    value : str or list of str, optional
        Measurement column(s) of a table; for a Dataset the variables (default: all numeric
        variables with both dims).
    ci : float
        Confidence level of the intervals (two-sided, ``(1 - ci) / 2`` per tail).
    missing : {"listwise", "mixed"}
        ``"listwise"``: subjects without a value in every session are dropped (with a
        warning), the classic ANOVA estimators. ``"mixed"``: variance components of the
        two-way crossed random model by REML, so incomplete subjects still count.
    errors : {"raise", "warn"}
        What to do when a metric cannot be computed (fewer than 3 subjects, constant values):
        raise :class:`~irtrepro.errors.StatsError` naming it, or warn and give NaN rows.

    Returns
    -------
    DataFrame
        One row per metric and form: metric column(s), ``form`` (McGraw & Wong: ICC(1,1),
        ICC(A,1), ICC(C,1), ICC(1,k), ICC(A,k), ICC(C,k)), ``shrout_fleiss`` (ICC1 ... ICC3k),
        ``model``, ``icc``, ``f``, ``df1``, ``df2``, ``p``, ``ci_low``, ``ci_high``,
        ``ci_level``, ``ci_method``, ``n_subjects``, ``n_sessions``, ``n_obs``, ``missing``.
        Never rounded.

    Notes
    -----
    Mean squares of the two-way ANOVA without replication: MSR (subjects), MSC (sessions),
    MSE (residual), MSW (within subjects). ICC(1,1) = (MSR - MSW) / (MSR + (k-1) MSW),
    ICC(A,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n),
    ICC(C,1) = (MSR - MSE) / (MSR + (k-1) MSE); the k forms are their Spearman-Brown
    versions. F tests and confidence intervals follow Shrout & Fleiss (1979) and McGraw & Wong
    (1996) exactly as R's ``psych::ICC`` (the CI of ICC(A,.) uses Satterthwaite's df).
    With ``missing="mixed"`` the mean squares are those implied by the REML components
    (identical to the ANOVA ones for complete data when no component is negative); the F test
    and CI then use ``df2 = N_obs - n - k + 1`` and are approximate.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"subject": [1, 1, 2, 2, 3, 3], "session": [1, 2] * 3,
    ...                    "tnv": [1.0, 1.2, 2.0, 2.1, 3.0, 3.3]})
    >>> icc(df, "subject", "session", "tnv").set_index("form").loc["ICC(C,1)", "icc"].round(4)
    np.float64(0.9953)

    A Study is summarised over time first (every second would otherwise be a metric):

    >>> import irtrepro as irt
    >>> study = irt.example_study()
    >>> icc(study[["hr"]])
    Traceback (most recent call last):
    ...
    irtrepro.errors.StatsError: variable 'hr' of the Dataset has dimension 'time'; summarise first, e.g. ds.irt.phase_means() or ds.irt.summary(...)
    >>> table = icc(study.irt.summary(["steady"], ["hr"]))
    >>> table.loc[table.form == "ICC(A,1)", ["metric", "window", "icc"]].round(3)
          metric  window    icc
    1  hr/steady  steady  0.939
    """
    ci, cube = _prepare(data, subject, session, value, ci, missing, errors)
    comps = _components(cube.values, missing)
    labels = cube.labels
    good = _validate(cube, comps, missing, errors, labels)
    return _icc_frame(cube, comps, ci, good, missing, labels)


# --------------------------------------------------------------------------------------------
# reliability(): the whole test-retest table
# --------------------------------------------------------------------------------------------


def _chi2_ci(te: np.ndarray, df: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    a = 1.0 - ci
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = te * np.sqrt(df / chi2_ppf(1 - a / 2, df))
        hi = te * np.sqrt(df / chi2_ppf(a / 2, df))
    return lo, hi


def _stat_block(c: Components, ci: float, sem_form: str) -> dict[tuple[str, str], dict]:
    """Per-metric statistics derived from one decomposition: {(statistic, term): columns}."""
    arrs = _icc_arrays(c, ci)
    forms = list(FORMS)
    out: dict[tuple[str, str], dict] = {}
    for i, form in enumerate(forms):
        out[("icc", form)] = {
            "estimate": arrs["icc"][i],
            CI_LOW: arrs[CI_LOW][i],
            CI_HIGH: arrs[CI_HIGH][i],
            "df": arrs[DF2][i],
            P: arrs[P][i],
            CI_METHOD: _CI_METHOD[c.method],
            "method": f"{FORMS[form][0]} (Shrout & Fleiss 1979), {FORMS[form][1]}",
        }
    te = np.sqrt(c.mse)
    te_lo, te_hi = _chi2_ci(te, c.df_e, ci)
    chi = "chi-square on df of the residual mean square"
    out[("sem", "sqrt(MSE)")] = {
        "estimate": te, CI_LOW: te_lo, CI_HIGH: te_hi, "df": c.df_e, CI_METHOD: chi,
        "method": "standard error of measurement = sqrt(residual mean square) (Weir 2005)",
    }
    j = forms.index(sem_form)
    with np.errstate(invalid="ignore"):
        sem2 = c.sd * np.sqrt(1 - arrs["icc"][j])
        sem2_lo = c.sd * np.sqrt(1 - arrs[CI_HIGH][j])
        sem2_hi = c.sd * np.sqrt(1 - arrs[CI_LOW][j])
    out[("sem", f"SD*sqrt(1-{sem_form})")] = {
        "estimate": sem2, CI_LOW: sem2_lo, CI_HIGH: sem2_hi, "df": np.nan,
        CI_METHOD: f"from the CI of {sem_form}, SD held fixed",
        "method": f"SD of all observations * sqrt(1 - {sem_form})",
    }
    out[("typical_error", "SD(diff)/sqrt(2)")] = {
        "estimate": te, CI_LOW: te_lo, CI_HIGH: te_hi, "df": c.df_e, CI_METHOD: chi,
        "method": "typical error (Hopkins 2000) = sqrt(MSE) = SD of differences / sqrt(2) "
        "for two sessions",
    }
    z = norm_ppf(0.975)
    out[("mdc95", "1.96*sqrt(2)*SEM")] = {
        "estimate": z * np.sqrt(2) * te, CI_LOW: z * np.sqrt(2) * te_lo,
        CI_HIGH: z * np.sqrt(2) * te_hi, "df": c.df_e, CI_METHOD: chi,
        "method": "minimal detectable change, 95%: z(0.975) * sqrt(2) * sqrt(MSE)",
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        out[("cv_percent", "100*sqrt(MSE)/mean")] = {
            "estimate": 100 * te / c.grand, CI_LOW: 100 * te_lo / c.grand,
            CI_HIGH: 100 * te_hi / c.grand, "df": c.df_e, CI_METHOD: chi,
            "method": "coefficient of variation, raw scale: 100 * sqrt(MSE) / grand mean",
        }
    return out


def _cv_log(cube: np.ndarray, missing: str, ci: float, good: np.ndarray, labels) -> dict:
    complete = bool(np.isfinite(cube).all())
    if complete:
        used = cube
    else:
        used = cube if missing == "mixed" else np.where(complete_subjects(cube)[..., None],
                                                        cube, np.nan)
    positive = ~(used <= 0).any(axis=(1, 2))
    bad = [labels[i] for i in np.flatnonzero(good & ~positive)]
    if bad:
        warn(
            f"CV% from log-transformed values needs positive values; not computed (NaN) for "
            f"{bad[:10]}"
        )
    if complete and positive.all():
        # every mask below selects everything: the same array without five cube-sized passes
        c = _components(np.log(cube), missing)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            logged = np.where(positive[:, None, None], np.log(np.where(used > 0, used, np.nan)),
                              np.nan)
        logged = np.where(np.isfinite(cube) & positive[:, None, None], logged, np.nan)
        c = _components(np.where(positive[:, None, None], logged, 1.0), missing)
    te = np.sqrt(c.mse)
    lo, hi = _chi2_ci(te, c.df_e, ci)
    f = lambda s: np.where(positive, 100 * (np.exp(s) - 1), np.nan)  # noqa: E731
    return {
        "estimate": f(te), CI_LOW: f(lo), CI_HIGH: f(hi), "df": c.df_e,
        CI_METHOD: "chi-square CI of the log typical error, back-transformed",
        "method": "CV% = 100 * (exp(typical error of ln values) - 1) (Hopkins 2000)",
    }


def _change_in_mean(cube: Cube, ci: float) -> dict[tuple[str, str], dict]:
    out = {}
    a = 1.0 - ci
    sess = [str(s) for s in cube.sessions]
    # complete data: nansum is sum (it sums a NaN-free copy) and every subject counts
    complete = bool(np.isfinite(cube.values).all())
    total = np.sum if complete else np.nansum
    for j in range(1, len(sess)):
        d = cube.values[:, :, j] - cube.values[:, :, j - 1]
        n = np.full(d.shape[0], d.shape[1]) if complete else np.isfinite(d).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, total(d, 1) / n, np.nan)
            sd = np.sqrt(total((d - mean[:, None]) ** 2, 1) / (n - 1))
            se = sd / np.sqrt(n)
            t = t_ppf(1 - a / 2, n - 1)
            tstat = mean / se
            p = 2 * t_sf(np.abs(tstat), n - 1)
        out[("change_in_mean", f"{sess[j]} - {sess[j - 1]}")] = {
            "estimate": mean, CI_LOW: mean - t * se, CI_HIGH: mean + t * se, "df": n - 1.0,
            P: p, CI_METHOD: "paired t", "n_pairs": n,
            "method": "mean of paired differences (subjects with both sessions)",
        }
    return out


def _bootstrap(cube: np.ndarray, missing: str, n_boot: int, seed, ci: float, sem_form: str,
               keys: list[tuple[str, str]], chunk: int = 200):
    rng = np.random.default_rng(seed)
    m, s, _ = cube.shape
    draws: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in keys}
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, s, size=(b, s))
        boot = cube[:, idx, :]  # (M, B, S, K)
        flat = np.moveaxis(boot, 1, 0).reshape(b * m, s, -1)
        c = _components(flat, missing)
        with np.errstate(invalid="ignore", divide="ignore"):
            block = _stat_block(c, ci, sem_form)
        for key in keys:
            draws[key].append(np.asarray(block[key]["estimate"]).reshape(b, m))
    a = 1.0 - ci
    out = {}
    for key in keys:
        arr = np.concatenate(draws[key], axis=0)
        arr = np.where(np.isfinite(arr), arr, np.nan)
        ok = np.isfinite(arr).sum(0)
        with np.errstate(invalid="ignore"):
            lo = np.where(ok > 0, np.nanquantile(np.where(ok > 0, arr, 0), a / 2, axis=0), np.nan)
            hi = np.where(ok > 0, np.nanquantile(np.where(ok > 0, arr, 0), 1 - a / 2, axis=0),
                          np.nan)
        out[key] = (lo, hi, ok)
    return out


def reliability(
    data: Any,
    subject: str = "subject",
    session: str = "session",
    value: str | list[str] | None = None,
    ci: float = 0.95,
    missing: str = "listwise",
    *,
    sem_form: str = "ICC(C,1)",
    n_boot: int = 0,
    seed: int | np.random.Generator | None = None,
    errors: str = "raise",
) -> pd.DataFrame:
    """Test-retest reliability table: ICCs, SEM, MDC95, typical error, change in mean, CV%.

    Parameters
    ----------
    data, subject, session, value, ci, missing, errors
        As in :func:`icc`.
    sem_form : str
        ICC form used in ``SEM = SD * sqrt(1 - ICC)``; default ``"ICC(C,1)"``.
    n_boot : int
        Subject-level bootstrap resamples (0: none). Adds ``boot_ci_low``, ``boot_ci_high``
        (percentile) and ``boot_n`` (valid resamples) to the ICC, SEM, typical error, MDC and
        CV rows.
    seed : int or numpy.random.Generator, optional
        Seed of the bootstrap.

    Returns
    -------
    DataFrame
        Long tidy table, one row per metric and statistic: metric column(s), ``statistic``
        (``icc``, ``sem``, ``typical_error``, ``mdc95``, ``change_in_mean``, ``cv_percent``),
        ``term`` (the ICC form, the formula of the SEM/CV, or the sessions compared),
        ``estimate`` (units of the measure, or % / unitless), ``ci_low``, ``ci_high``,
        ``ci_level``, ``ci_method``, ``df``, ``p``, ``method``, ``n_subjects``, ``n_sessions``,
        ``missing``. ``table[table.metric == "tnv"]`` is the table of one metric;
        ``table.pivot_table(index="metric", columns=["statistic", "term"], values="estimate")``
        a wide summary.

    Notes
    -----
    - SEM two ways, both named: ``sqrt(MSE)`` (Weir 2005) with the chi-square CI of the
      residual variance, and ``SD * sqrt(1 - ICC)`` (SD of all observations).
    - Typical error (Hopkins 2000) = sqrt(MSE) = SD(diff)/sqrt(2) for two sessions, chi-square CI.
    - MDC95 = 1.96 * sqrt(2) * SEM.
    - Change in mean: consecutive sessions, mean paired difference with a t CI and p.
    - CV%: from the log-transformed analysis, ``100 (exp(TE_ln) - 1)`` (Hopkins), and on the
      raw scale ``100 sqrt(MSE) / grand mean``.
    """
    ci, cube = _prepare(data, subject, session, value, ci, missing, errors)
    check_option("sem_form", sem_form, tuple(FORMS))
    comps = _components(cube.values, missing)
    labels = cube.labels
    good = _validate(cube, comps, missing, errors, labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        block = _stat_block(comps, ci, sem_form)
    block[("cv_percent", "100*(exp(TE of ln values)-1)")] = _cv_log(
        cube.values, missing, ci, good, labels
    )
    block.update(_change_in_mean(cube, ci))
    boot = None
    boot_keys = [k for k in block if k[0] in ("icc", "sem", "typical_error", "mdc95")]
    boot_keys.append(("cv_percent", "100*sqrt(MSE)/mean"))
    if n_boot:
        if int(n_boot) < 2:
            raise StatsError(f"n_boot={n_boot!r}; expected 0 (no bootstrap) or at least 2")
        boot = _bootstrap(cube.values, missing, int(n_boot), seed, ci, sem_form, boot_keys)

    m = len(cube.metrics)
    keys = list(block)
    nb = len(keys)

    def stacked(get) -> np.ndarray:
        """(blocks, M) array of one column, ``get(cols)`` giving a block's values.

        The dtype is that ``np.stack`` gives; rows filled by assignment, which broadcasts
        scalars without a ``broadcast_to`` view per block.
        """
        vals = [get(block[key]) for key in keys]
        out = np.empty((nb, m), np.result_type(*vals))
        for i, v in enumerate(vals):
            out[i] = v
        return out

    block_of_row = np.repeat(np.arange(nb), m)
    est = {col: np.where(good, stacked(lambda c, col=col: c[col]), np.nan)
           for col in ("estimate", CI_LOW, CI_HIGH)}
    df = stacked(lambda c: np.asarray(c.get("df", np.nan), float))
    p = np.where(good, stacked(lambda c: np.asarray(c.get(P, np.nan), float)), np.nan)
    n_sub = stacked(lambda c: c.get("n_pairs", comps.n)).astype(int)
    n_ses = np.array([comps.k if key[0] != "change_in_mean" else 2 for key in keys])
    # rows block by block, then stably ordered by metric: one block of rows per metric
    metric_of_row = np.tile(np.arange(m), nb)
    order = {lab: i for i, lab in enumerate(labels)}
    unique = len(order) == m
    if unique:
        # each label its own rank: the stable sort by metric is metric-major, block-minor
        perm = (np.arange(m)[:, None] + m * np.arange(nb)[None, :]).reshape(-1)
    else:
        rank = np.array([order[lab] for lab in labels])
        perm = np.argsort(rank[metric_of_row], kind="stable")
    rows = metric_of_row[perm]
    columns = _metric_columns(cube.metrics, rows)
    block_of_row = block_of_row[perm]
    columns["statistic"] = _text_column([key[0] for key in keys], block_of_row)
    columns["term"] = _text_column([key[1] for key in keys], block_of_row)
    for col, arr in est.items():
        columns[col] = arr.reshape(-1)[perm]
    columns[CI_LEVEL] = ci
    columns[CI_METHOD] = _text_column([block[key][CI_METHOD] for key in keys], block_of_row)
    columns["df"] = df.reshape(-1)[perm]
    columns[P] = p.reshape(-1)[perm]
    columns["method"] = _text_column([block[key]["method"] for key in keys], block_of_row)
    columns[N_SUBJECTS] = n_sub.reshape(-1)[perm]
    columns[N_SESSIONS] = np.repeat(n_ses, m)[perm]
    columns["missing"] = _text_column([missing], np.zeros(nb * m, np.intp))
    if boot is not None:
        none = (np.full(m, np.nan), np.full(m, np.nan), np.zeros(m, int))
        got = [boot.get(key, none) for key in keys]
        for j, col in enumerate(("boot_ci_low", "boot_ci_high", "boot_n")):
            columns[col] = np.stack([g[j] for g in got]).reshape(-1)[perm]
    table = pd.DataFrame(columns)
    if unique:
        good_rows = good[rows]
    else:
        good_of = dict(zip(labels, good, strict=True))
        good_rows = np.array([good_of[lab] for lab in labels], bool)[rows]
    # the log CV has its own warning (non-positive values)
    crit = np.array([key != ("cv_percent", "100*(exp(TE of ln values)-1)") for key in keys])
    crit = crit[block_of_row]
    _nan_guard(np.asarray(labels, object)[rows], {"estimate": columns["estimate"]},
               good_rows & crit, "reliability")
    return table
