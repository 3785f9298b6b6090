"""Planning a reliability or agreement study: how many subjects.

- :func:`plan_icc`: subjects for a target width of the CI of an ICC (Bonett 2002).
- :func:`plan_loa`: subjects so that the CIs of the Bland–Altman limits of agreement lie
  within a maximal allowed difference with a given power (Lu et al. 2016).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from irtrepro.errors import StatsError
from irtrepro.stats._common import CI_LEVEL, METHOD, check_ci

__all__ = ["plan_icc", "plan_loa"]


def plan_icc(icc: float, width: float, k: int, ci: float = 0.95, *,
             k2_correction: bool = False) -> pd.DataFrame:
    """Number of subjects for a CI of an ICC of a given width (Bonett 2002).

    Parameters
    ----------
    icc : float
        Planning value of the (single-measurement) ICC, 0 < icc < 1.
    width : float
        Target width of the CI (upper minus lower limit), ICC units, e.g. 0.2.
    k : int
        Measurements (sessions, raters) per subject, >= 2.
    ci : float
        Confidence level of the CI.
    k2_correction : bool
        Add ``5 icc`` subjects when ``k = 2`` and ``icc >= 0.7``, where Bonett found the
        approximation too small.

    Returns
    -------
    DataFrame
        One row: ``icc``, ``width``, ``k``, ``ci_level``, ``n_exact``
        (``8 z^2 (1-icc)^2 (1+(k-1) icc)^2 / (k (k-1) width^2) + 1``), ``n`` (rounded up,
        corrected if asked), ``method``.

    Notes
    -----
    The formula is the large-sample variance of the ICC (Fisher 1925) with the 95 % CI width
    ``2 z SE``; Bonett (2002) shows it fits the exact F-based CIs of ICC(1,1), ICC(A,1) and
    ICC(C,1) for planning.

    Examples
    --------
    >>> int(plan_icc(0.8, 0.2, k=2).n.iloc[0])   # Bonett (2002): 51 subjects
    51
    """
    ci = check_ci(ci)
    if not (0 < icc < 1):
        raise StatsError(f"icc={icc!r}; expected a planning value strictly between 0 and 1")
    if not (0 < width < 2):
        raise StatsError(f"width={width!r}; expected a CI width between 0 and 2")
    if int(k) != k or k < 2:
        raise StatsError(f"k={k!r}; expected an integer number of measurements >= 2")
    z = st.norm.ppf(0.5 + ci / 2)
    n_exact = 8 * z**2 * (1 - icc) ** 2 * (1 + (k - 1) * icc) ** 2 / (k * (k - 1) * width**2) + 1
    n = n_exact
    method = "Bonett 2002: n = 8 z^2 (1-icc)^2 (1+(k-1) icc)^2 / (k (k-1) w^2) + 1"
    if k2_correction and k == 2 and icc >= 0.7:
        n = n + 5 * icc
        method += ", + 5 icc (k = 2, icc >= 0.7)"
    return pd.DataFrame({"icc": [float(icc)], "width": [float(width)], "k": [int(k)],
                         CI_LEVEL: [ci], "n_exact": [float(n_exact)],
                         "n": [int(np.ceil(n - 1e-9))], METHOD: [method]})


def _loa_power(n: np.ndarray, bias: float, sd: float, delta: float, ci: float,
               agreement: float) -> np.ndarray:
    """Power of Lu et al. (2016): P(both CIs of the limits within -delta .. delta)."""
    alpha = 1 - ci
    zg = st.norm.ppf(0.5 + agreement / 2)
    n = np.asarray(n, float)
    se = sd * np.sqrt(1 / n + zg**2 / (2 * (n - 1)))
    ta = st.t.ppf(1 - alpha / 2, n - 1)
    tau1 = (delta - bias - zg * sd) / se
    tau2 = (delta + bias - zg * sd) / se
    beta1 = st.nct.cdf(ta, n - 1, tau1)
    beta2 = st.nct.cdf(ta, n - 1, tau2)
    return np.clip(1 - (beta1 + beta2), 0.0, 1.0)


def plan_loa(bias: float, sd: float, delta: float, power: float = 0.8, ci: float = 0.95,
             agreement: float = 0.95, *, n: int | list[int] | None = None,
             n_max: int = 100_000) -> pd.DataFrame:
    """Subjects for a Bland–Altman study whose limits must lie within ``+-delta`` (Lu et al. 2016).

    Parameters
    ----------
    bias, sd : float
        Planning values of the mean and SD of the differences (units of the measure).
    delta : float
        Maximal allowed difference (units of the measure), > 0: agreement is shown when the
        upper CI limit of the upper limit of agreement is below ``delta`` and the lower CI
        limit of the lower limit above ``-delta``.
    power : float
        Target probability of showing agreement (1 - beta).
    ci : float
        Confidence level of the CIs of the limits (exact-variance t CIs, Bland & Altman 1999).
    agreement : float
        Coverage of the limits (0.95: bias +- 1.96 SD).
    n : int or list of int, optional
        Instead of searching, give the power at these numbers of subjects.
    n_max : int
        Largest n searched.

    Returns
    -------
    DataFrame
        ``n``, ``power`` (achieved), ``target_power``, ``bias``, ``sd``, ``delta``,
        ``ci_level``, ``agreement``, ``method``: one row (the smallest ``n`` reaching
        ``power``), or one row per requested ``n``.

    Notes
    -----
    Type II errors (Lu et al. 2016, eqs. 3-5): ``beta_1 = F_nct(t_{1-alpha/2, n-1}; n-1,
    tau_1)``, ``tau_1 = (delta - bias - z sd) / se``, ``tau_2`` with ``+ bias``,
    ``se = sd sqrt(1/n + z^2 / (2 (n-1)))``; power ``1 - beta_1 - beta_2``. As
    ``SimplyAgree::blandPowerCurve``.
    """
    ci = check_ci(ci)
    agreement = check_ci(agreement, "agreement")
    power = check_ci(power, "power")
    if not sd > 0:
        raise StatsError(f"sd={sd!r}; expected a positive SD of the differences")
    if not delta > 0:
        raise StatsError(f"delta={delta!r}; expected a positive maximal allowed difference")
    zg = st.norm.ppf(0.5 + agreement / 2)
    if abs(bias) + zg * sd >= delta:
        raise StatsError(f"the planned limits (|bias| + {zg:.3g} sd = {abs(bias) + zg * sd:.4g}) "
                         f"reach delta={delta!r}: no sample size shows agreement")
    method = "Lu et al. 2016 (non-central t power of the limits' CIs)"
    if n is not None:
        ns = np.atleast_1d(np.asarray(n, dtype=int))
        if (ns < 3).any():
            raise StatsError(f"n={n!r}; expected numbers of subjects >= 3")
        pw = _loa_power(ns, bias, sd, delta, ci, agreement)
    else:
        ns, pw = np.array([], int), np.array([])
        lo = 3
        while lo <= n_max:
            cand = np.arange(lo, min(lo * 4, n_max) + 1)
            p = _loa_power(cand, bias, sd, delta, ci, agreement)
            hit = np.flatnonzero(p >= power)
            if hit.size:
                ns, pw = cand[hit[:1]], p[hit[:1]]
                break
            lo = cand[-1] + 1
        if ns.size == 0:
            raise StatsError(f"power {power} not reached with n <= n_max={n_max}")
    return pd.DataFrame({"n": ns.astype(int), "power": pw, "target_power": power,
                         "bias": float(bias), "sd": float(sd), "delta": float(delta),
                         CI_LEVEL: ci, "agreement": agreement, METHOD: method})
