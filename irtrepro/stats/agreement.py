"""Agreement between two methods: Bland–Altman limits of agreement, single and repeated readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    check_ci,
    finite_1d,
    long_from_xarray,
    warn,
)

__all__ = ["BlandAltman", "BlandAltmanRepeated", "bland_altman", "bland_altman_repeated"]

_LOA_CI = {
    "exact": "t(n-1) * s * sqrt(1/n + z^2 / (2 (n-1))) (Bland & Altman 1999, exact variance of "
    "the limit)",
    "approx": "t(n-1) * sqrt(3 s^2 / n) (Bland & Altman 1986)",
    "nct": "exact interval from the non-central t distribution (Carkeet 2015)",
}


@dataclass(frozen=True, eq=False)
class BlandAltman:
    """Result of :func:`bland_altman`.

    On the difference scale (``log=False``) every estimate is in the units of the measure,
    differences are ``x - y``. With ``log=True`` ``bias``, the limits and their CIs are ratios
    ``x / y`` back-transformed from the natural-log analysis (``sd`` stays on the log scale).
    """

    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_ci: tuple[float, float]
    loa_low_ci: tuple[float, float]
    loa_high_ci: tuple[float, float]
    n: int
    agreement: float  # multiple of SD defining the limits (1.96)
    ci_level: float
    loa_ci: str  # "exact", "approx" or "nct"
    log: bool
    slope: float  # proportional bias: difference regressed on mean
    slope_ci: tuple[float, float]
    slope_p: float
    intercept: float
    hetero_slope: float  # |difference - bias| regressed on mean
    hetero_p: float
    means: np.ndarray = field(repr=False)
    diffs: np.ndarray = field(repr=False)

    @property
    def scale(self) -> str:
        return "ratio x/y" if self.log else "difference x - y"

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per estimate (bias, sd, limits, proportional bias, ...)."""
        loa = _LOA_CI[self.loa_ci]
        rows = [
            ("bias", self.bias, *self.bias_ci, "t(n-1) * s / sqrt(n)", "mean difference"),
            ("sd", self.sd, np.nan, np.nan, "none", "SD of the differences"
             + (" (natural log scale)" if self.log else "")),
            ("loa_low", self.loa_low, *self.loa_low_ci, loa, f"bias - {self.agreement} SD"),
            ("loa_high", self.loa_high, *self.loa_high_ci, loa, f"bias + {self.agreement} SD"),
            ("proportional_bias_slope", self.slope, *self.slope_ci, "t(n-2)",
             "OLS slope of difference on mean; p tests slope = 0"),
            ("heteroscedasticity_slope", self.hetero_slope, np.nan, np.nan, "none",
             "OLS slope of |difference - bias| on mean; p tests slope = 0"),
        ]
        df = pd.DataFrame(rows, columns=["statistic", "estimate", CI_LOW, CI_HIGH, CI_METHOD,
                                         "method"])
        df["p"] = [np.nan, np.nan, np.nan, np.nan, self.slope_p, self.hetero_p]
        df[CI_LEVEL] = self.ci_level
        df["n"] = self.n
        df["scale"] = self.scale
        return df


def _ols(x: np.ndarray, y: np.ndarray, ci: float) -> tuple[float, float, tuple, float]:
    n = len(x)
    xc = x - x.mean()
    sxx = (xc**2).sum()
    if n < 3 or sxx == 0:
        return np.nan, np.nan, (np.nan, np.nan), np.nan
    slope = (xc * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    res = y - intercept - slope * x
    se = np.sqrt((res**2).sum() / (n - 2) / sxx)
    t = st.t.ppf(0.5 + ci / 2, n - 2)
    p = 2 * st.t.sf(abs(slope / se), n - 2) if se > 0 else 0.0
    return slope, intercept, (slope - t * se, slope + t * se), p


def bland_altman(
    x: Any,
    y: Any,
    agreement: float = 1.96,
    ci: float = 0.95,
    loa_ci: str = "exact",
    log: bool = False,
) -> BlandAltman:
    """Bland–Altman limits of agreement of two methods measuring the same subjects once.

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Paired measurements (same units); differences are ``x - y``. Pairs with a NaN are
        dropped with a warning.
    agreement : float
        Multiple of the SD of the differences that defines the limits (1.96 for 95 %).
    ci : float
        Confidence level of the CIs of the bias and the limits.
    loa_ci : {"exact", "approx", "nct"}
        CI of the limits: ``"exact"``: ``t * s * sqrt(1/n + z^2/(2(n-1)))`` (the exact
        variance of the limit, Bland & Altman 1999); ``"approx"``: ``t * sqrt(3 s^2 / n)``
        (Bland & Altman 1986); ``"nct"``: exact interval from the non-central t (Carkeet 2015).
    log : bool
        Analyse ``ln(x) - ln(y)`` and report ratios ``x / y`` (bias, limits and CIs
        back-transformed), for differences that grow with the magnitude.

    Returns
    -------
    BlandAltman
        ``bias``, ``sd``, ``loa_low``, ``loa_high``, ``bias_ci``, ``loa_low_ci``,
        ``loa_high_ci``, ``n``, proportional-bias regression (``slope``, ``slope_ci``,
        ``slope_p``) and heteroscedasticity check (``hetero_slope``, ``hetero_p``);
        ``.to_frame()`` gives a tidy table; :func:`irtrepro.plots.bland_altman_plot` draws it.

    Examples
    --------
    >>> res = bland_altman([494, 395, 516, 434], [512, 430, 520, 428])
    >>> round(res.bias, 2)
    -12.75
    """
    ci = check_ci(ci)
    check_option("loa_ci", loa_ci, tuple(_LOA_CI))
    if not np.isfinite(agreement) or agreement <= 0:
        raise StatsError(f"agreement={agreement!r}; expected a positive multiple of the SD")
    x = finite_1d(x, "x")
    y = finite_1d(y, "y")
    if len(x) != len(y):
        raise StatsError(f"x has {len(x)} values and y {len(y)}; expected paired measurements")
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        warn(f"bland_altman: {int((~keep).sum())} pair(s) with NaN dropped "
             f"(positions {np.flatnonzero(~keep)[:10].tolist()})")
        x, y = x[keep], y[keep]
    n = len(x)
    if n < 3:
        raise StatsError(f"{n} complete pairs; limits of agreement need at least 3")
    if log:
        if (x <= 0).any() or (y <= 0).any():
            raise StatsError("log=True needs positive values in x and y")
        a, b = np.log(x), np.log(y)
    else:
        a, b = x, y
    d = a - b
    mean = (a + b) / 2
    bias = d.mean()
    sd = d.std(ddof=1)
    if sd <= 1e-12 * max(1.0, np.abs(d).max()):
        raise StatsError(
            "the differences are constant (SD = 0): limits of agreement and their CIs are "
            "undefined; the two methods differ by exactly a constant"
        )
    z = agreement
    alpha = 1 - ci
    t = st.t.ppf(1 - alpha / 2, n - 1)
    se_bias = sd / np.sqrt(n)
    lo, hi = bias - z * sd, bias + z * sd
    if loa_ci == "nct":
        q = st.nct.ppf([alpha / 2, 1 - alpha / 2], n - 1, z * np.sqrt(n)) / np.sqrt(n)
        hi_ci = (bias + sd * q[0], bias + sd * q[1])
        lo_ci = (bias - sd * q[1], bias - sd * q[0])
    else:
        if loa_ci == "exact":
            se_loa = sd * np.sqrt(1 / n + z**2 / (2 * (n - 1)))
        else:
            se_loa = np.sqrt(3 * sd**2 / n)
        lo_ci = (lo - t * se_loa, lo + t * se_loa)
        hi_ci = (hi - t * se_loa, hi + t * se_loa)
    slope, intercept, slope_ci, slope_p = _ols(mean, d, ci)
    h_slope, _, _, h_p = _ols(mean, np.abs(d - bias), ci)
    back = np.exp if log else (lambda v: v)
    pair = lambda p: (float(back(p[0])), float(back(p[1])))  # noqa: E731
    return BlandAltman(
        bias=float(back(bias)), sd=float(sd), loa_low=float(back(lo)), loa_high=float(back(hi)),
        bias_ci=pair((bias - t * se_bias, bias + t * se_bias)), loa_low_ci=pair(lo_ci),
        loa_high_ci=pair(hi_ci), n=n, agreement=float(z), ci_level=ci, loa_ci=loa_ci, log=log,
        slope=float(slope), slope_ci=(float(slope_ci[0]), float(slope_ci[1])),
        slope_p=float(slope_p), intercept=float(intercept), hetero_slope=float(h_slope),
        hetero_p=float(h_p), means=mean, diffs=d,
    )


_MOVER = ("MOVER (Zou 2013): chi-square limits of each variance component, normal quantile "
          "for the bias, as SimplyAgree agree_reps / agree_nest")


def _mover_loa(bias: float, var_bias: float, comps: list[tuple[float, float]], z_agree: float,
               ci: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """MOVER CIs of ``bias -+ z sqrt(sum w_i s2_i)`` (Zou 2013, eqs. 7-9).

    ``comps`` holds ``(w_i s2_i, df_i)``: each weighted variance with its chi-square df;
    ``var_bias`` is the variance of the bias. Returns (CI of the lower limit, CI of the upper).
    """
    alpha = 1 - ci
    zc = st.norm.ppf(1 - alpha / 2)
    tot = sum(v for v, _ in comps)
    lo = tot - np.sqrt(sum((v * (1 - d / st.chi2.ppf(1 - alpha / 2, d))) ** 2
                           for v, d in comps if d > 0))
    hi = tot + np.sqrt(sum((v * (d / st.chi2.ppf(alpha / 2, d) - 1)) ** 2
                           for v, d in comps if d > 0))
    sd = np.sqrt(tot)
    lme = np.sqrt(zc**2 * var_bias + z_agree**2 * (np.sqrt(hi) - sd) ** 2)
    rme = np.sqrt(zc**2 * var_bias + z_agree**2 * (sd - np.sqrt(max(lo, 0.0))) ** 2)
    loa_l, loa_u = bias - z_agree * sd, bias + z_agree * sd
    return ((float(loa_l - lme), float(loa_l + rme)), (float(loa_u - rme), float(loa_u + lme)))


@dataclass(frozen=True, eq=False)
class BlandAltmanRepeated:
    """Result of :func:`bland_altman_repeated` (units of the measure, differences ``x - y``).

    ``var_components`` names every variance used; ``sd`` is the SD of the difference between
    single readings of the two methods, from which the limits are built.
    """

    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_ci: tuple[float, float]
    n_subjects: int
    n_obs: int
    agreement: float
    ci_level: float
    true_value: str
    var_components: dict[str, float]
    method: str
    means: np.ndarray = field(repr=False)
    diffs: np.ndarray = field(repr=False)
    subjects: np.ndarray = field(repr=False)
    loa_low_ci: tuple[float, float] = (np.nan, np.nan)
    loa_high_ci: tuple[float, float] = (np.nan, np.nan)
    estimator: str = "bland-altman"
    loa_ci: str = _MOVER

    def to_frame(self) -> pd.DataFrame:
        rows = [
            ("bias", self.bias, *self.bias_ci, "t(n_subjects - 1)"),
            ("sd", self.sd, np.nan, np.nan, "none"),
            ("loa_low", self.loa_low, *self.loa_low_ci, self.loa_ci),
            ("loa_high", self.loa_high, *self.loa_high_ci, self.loa_ci),
        ] + [(f"var_{k}", v, np.nan, np.nan, "none") for k, v in self.var_components.items()]
        df = pd.DataFrame(rows, columns=["statistic", "estimate", CI_LOW, CI_HIGH, CI_METHOD])
        df[CI_LEVEL] = self.ci_level
        df["n_subjects"] = self.n_subjects
        df["n_obs"] = self.n_obs
        df["true_value"] = self.true_value
        df["method"] = self.method
        return df


def _oneway(values: np.ndarray, groups: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Within- and between-group variance components of a one-way random model (ANOVA).

    Returns (within variance, between variance, group sizes, group means).
    """
    codes, uniq = pd.factorize(groups)
    g = len(uniq)
    m = np.bincount(codes, minlength=g).astype(float)
    means = np.bincount(codes, weights=values, minlength=g) / m
    n_tot = m.sum()
    ssw = ((values - means[codes]) ** 2).sum()
    msw = ssw / (n_tot - g) if n_tot > g else np.nan
    grand = values.mean()
    msb = (m * (means - grand) ** 2).sum() / (g - 1)
    lam = (n_tot**2 - (m**2).sum()) / ((g - 1) * n_tot)
    return msw, (msb - msw) / lam, m, means


def bland_altman_repeated(
    data: Any,
    subject: str,
    x: str,
    y: str,
    true_value: str = "varying",
    agreement: float = 1.96,
    ci: float = 0.95,
    estimator: str = "bland-altman",
) -> BlandAltmanRepeated:
    """Limits of agreement with several readings per subject (Bland & Altman 1999, 2007).

    Parameters
    ----------
    data : DataFrame or xarray.Dataset
        Long table, one row per reading. For ``true_value="varying"`` each row is a pair of
        simultaneous readings ``x``, ``y``; for ``"constant"`` a row may hold only one of the
        two (NaN in the other), so the methods may have unequal numbers of replicates.
    subject, x, y : str
        Column names. Differences are ``x - y``.
    true_value : {"varying", "constant"}
        ``"varying"``: the true value changes between pairs (e.g. readings over an exercise
        test); the variance of single differences is the between-subject plus within-subject
        variance of the differences, from a one-way ANOVA with unequal replicates
        (Bland & Altman 2007, section 3; 1999, section 5.3). ``"constant"``: the true value is
        the same for all readings of a subject; the variance of single differences is
        ``s2(mean diff) + (1 - 1/m_x) s2_wx + (1 - 1/m_y) s2_wy`` with ``m`` the harmonic mean
        number of replicates (Bland & Altman 1999, sections 5.1-5.2; 2007, section 2).
    agreement, ci : float
        SD multiple of the limits; confidence level of the CIs of the bias and the limits.
    estimator : {"bland-altman", "zou"}
        Only for ``true_value="varying"``. ``"bland-altman"``: the ANOVA estimator above,
        bias = mean of all differences. ``"zou"``: Zou (2013) / ``SimplyAgree::agree_nest``,
        bias = mean of the subject mean differences ``dbar_i``, variance
        ``s2(dbar_i) + (1 - 1/m_h) s2_w`` (``m_h`` harmonic mean of the pairs per subject,
        ``s2_w`` pooled within-subject variance of the differences). Both agree on balanced
        data. With ``"constant"`` the estimator is always the one above (which is Zou's).

    Returns
    -------
    BlandAltmanRepeated
        ``bias``, ``sd``, limits and ``bias_ci``, ``loa_low_ci``, ``loa_high_ci``: MOVER CIs of
        the limits (Zou 2013; as SimplyAgree): every variance component of the limit gets its
        chi-square CI (``n - 1`` df for between-subject terms, ``N - n`` for within-subject
        terms), combined with the normal CI of the bias. ``.to_frame()`` gives a tidy table.
    """
    ci = check_ci(ci)
    check_option("true_value", true_value, ("varying", "constant"))
    check_option("estimator", estimator, ("bland-altman", "zou"))
    if not isinstance(data, pd.DataFrame):
        if type(data).__module__.startswith("xarray"):
            data = long_from_xarray(data, [x, y])
        else:
            raise StatsError(f"data of type {type(data).__name__}; expected a DataFrame")
    for col in (subject, x, y):
        if col not in data.columns:
            raise StatsError(f"{col!r} is not a column; columns are {list(data.columns)}")
    xv = finite_1d(data[x].to_numpy(), f"column {x!r}")
    yv = finite_1d(data[y].to_numpy(), f"column {y!r}")
    subj = data[subject].to_numpy()
    alpha = 1 - ci
    if true_value == "varying":
        keep = np.isfinite(xv) & np.isfinite(yv)
        if not keep.all():
            warn(f"bland_altman_repeated: {int((~keep).sum())} row(s) without both {x!r} and "
                 f"{y!r} dropped")
        xv, yv, subj = xv[keep], yv[keep], subj[keep]
        d = xv - yv
        n_sub = len(pd.unique(subj))
        if n_sub < 3 or len(d) <= n_sub:
            raise StatsError(f"{n_sub} subjects and {len(d)} pairs; need at least 3 subjects "
                             "and more pairs than subjects")
        s2w, s2b, m, means = _oneway(d, subj)
        n_tot = m.sum()
        if estimator == "zou":
            mh = 1 / np.mean(1 / m)
            s2d = means.var(ddof=1)
            var = s2d + (1 - 1 / mh) * s2w
            bias = means.mean()
            se_bias = np.sqrt(s2d / n_sub)
            mover = [(s2d, n_sub - 1), ((1 - 1 / mh) * s2w, n_tot - n_sub)]
            comps = {"subject_mean_differences": float(s2d), "within_subjects": float(s2w)}
            method = ("Zou 2013 (true value varies): s2(dbar_i) + (1 - 1/m_h) s2_w, bias = mean "
                      "of subject mean differences")
        else:
            lam = (n_tot**2 - (m**2).sum()) / ((n_sub - 1) * n_tot)
            msb = s2b * lam + s2w
            if s2b < 0:
                warn(f"between-subject variance of the differences estimated negative "
                     f"({s2b:.4g}); set to 0")
                s2b = 0.0
                mover = [(s2w, n_tot - n_sub)]
            else:
                # s2b + s2w = MSB / lambda + (1 - 1/lambda) MSW
                mover = [(msb / lam, n_sub - 1), ((1 - 1 / lam) * s2w, n_tot - n_sub)]
            var = s2b + s2w
            bias = d.mean()
            se_bias = np.sqrt(s2b * (m**2).sum() / n_tot**2 + s2w / n_tot)
            comps = {"between_subjects": float(s2b), "within_subjects": float(s2w)}
            method = "Bland & Altman 2007 (true value varies): one-way ANOVA of differences"
        mean_plot = (xv + yv) / 2
        diffs = d
        subj_out = subj
    else:
        fx, fy = np.isfinite(xv), np.isfinite(yv)
        both = pd.Index(pd.unique(subj[fx])).intersection(pd.Index(pd.unique(subj[fy])))
        if len(both) < 3:
            raise StatsError(f"{len(both)} subjects with readings by both methods; need >= 3")
        sx, sy = np.isin(subj, both) & fx, np.isin(subj, both) & fy
        s2wx, _, mx, mean_x = _oneway(xv[sx], subj[sx])
        s2wy, _, my, mean_y = _oneway(yv[sy], subj[sy])
        if not np.isfinite(s2wx) or not np.isfinite(s2wy):
            raise StatsError("true_value='constant' needs replicates: some subject must have more "
                             "than one reading by each method")
        ix = pd.Index(pd.unique(subj[sx]))
        iy = pd.Index(pd.unique(subj[sy]))
        order_y = iy.get_indexer(ix)
        dbar = mean_x - mean_y[order_y]
        mhx = 1 / np.mean(1 / mx)
        mhy = 1 / np.mean(1 / my[order_y])
        s2d = dbar.var(ddof=1)
        var = s2d + (1 - 1 / mhx) * s2wx + (1 - 1 / mhy) * s2wy
        bias = dbar.mean()
        se_bias = np.sqrt(s2d / len(dbar))
        comps = {"subject_mean_differences": float(s2d), "within_x": float(s2wx),
                 "within_y": float(s2wy)}
        n_d = len(dbar)
        mover = [(s2d, n_d - 1), ((1 - 1 / mhx) * s2wx, sx.sum() - n_d),
                 ((1 - 1 / mhy) * s2wy, sy.sum() - n_d)]
        method = ("Bland & Altman 1999/2007 (true value constant): s2(dbar) + (1-1/m_x) s2_wx "
                  "+ (1-1/m_y) s2_wy, m harmonic mean replicates")
        n_sub = len(dbar)
        n_tot = int(sx.sum() + sy.sum())
        mean_plot = (mean_x + mean_y[order_y]) / 2
        diffs = dbar
        subj_out = ix.to_numpy()
    sd = float(np.sqrt(var))
    if not sd > 0:
        raise StatsError("the differences have zero variance: limits of agreement are undefined")
    t = st.t.ppf(1 - alpha / 2, n_sub - 1)
    lo_ci, hi_ci = _mover_loa(bias, se_bias**2, mover, agreement, ci)
    return BlandAltmanRepeated(
        bias=float(bias), sd=sd, loa_low=float(bias - agreement * sd),
        loa_high=float(bias + agreement * sd),
        bias_ci=(float(bias - t * se_bias), float(bias + t * se_bias)), n_subjects=int(n_sub),
        n_obs=int(n_tot), agreement=float(agreement), ci_level=ci, true_value=true_value,
        var_components=comps, method=method, means=mean_plot, diffs=diffs, subjects=subj_out,
        loa_low_ci=lo_ci, loa_high_ci=hi_ci,
        estimator=estimator if true_value == "varying" else "zou", loa_ci=_MOVER,
    )
