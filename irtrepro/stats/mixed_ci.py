"""Confidence intervals for the variance components and the ICC of a :func:`fit_mixed` model.

:func:`variance_ci` gives, on lme4's scale (standard deviations, correlations, residual
``sigma``, fixed effects, plus the model-based ICC):

- ``method="profile"``: likelihood-profile CIs as ``lme4::confint(fit, method="profile")``.
  As lme4 (``devfun2`` calls ``refitML``), the profile is that of the **ML** deviance even
  for a REML fit; the limit is where ``zeta = sign(x - x_hat) sqrt(dev_prof(x) - dev_min)``
  equals ``-/+ qnorm((1 + level) / 2)``. irtrepro finds that root exactly (Brent) where lme4
  interpolates a spline through profile points, so both agree to about 5 significant digits.
- ``method="boot"``: parametric bootstrap with percentile CIs, as
  ``lme4::confint(fit, method="boot", boot.type="perc")`` (``bootMer``): ``n_boot`` data sets
  simulated from the fitted model (seeded), each refitted with the fit's criterion (REML/ML).

The deviance is that of ``irtrepro.stats._lmm_inference.LmmDesign`` (the covariance written
linearly in the variance parameters), so no statsmodels refit is needed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as st

from irtrepro.errors import StatsError, check_option
from irtrepro.stats._common import CI_HIGH, CI_LEVEL, CI_LOW, CI_METHOD, check_ci, warn

__all__ = ["variance_ci"]

CI_METHODS = ("profile", "boot")


class _Problem:
    """(RE)ML deviance of an ``LmmDesign`` on the sd / correlation / sigma scale."""

    def __init__(self, design, reml: bool, icc_weights: np.ndarray, vc_names=()):
        self.design = design
        self.vc_names = set(vc_names)
        self.reml = reml
        names = design.names
        self.kind = []  # ("sd", r) | ("cor", r, i, j) | ("sigma", r)
        var_index = {n[4:]: r for r, n in enumerate(names) if n.startswith("var ")}
        for r, n in enumerate(names):
            if n == "residual":
                self.kind.append(("sigma", r))
            elif n.startswith("var "):
                self.kind.append(("sd", r))
            else:
                a, b = n[4:].split(" x ")
                self.kind.append(("cor", r, var_index[a], var_index[b]))
        self.icc_weights = icc_weights  # var_random = w . psi (design-averaged, Nakagawa)

    def psi(self, theta: np.ndarray) -> np.ndarray:
        psi = np.empty(len(theta))
        for k in self.kind:
            if k[0] != "cor":
                psi[k[1]] = theta[k[1]] ** 2
        for k in self.kind:
            if k[0] == "cor":
                psi[k[1]] = theta[k[1]] * theta[k[2]] * theta[k[3]]
        return psi

    def theta(self, psi: np.ndarray) -> np.ndarray:
        th = np.empty(len(psi))
        for k in self.kind:
            if k[0] != "cor":
                th[k[1]] = np.sqrt(max(psi[k[1]], 0.0))
        for k in self.kind:
            if k[0] == "cor":
                den = th[k[2]] * th[k[3]]
                th[k[1]] = psi[k[1]] / den if den > 0 else 0.0
        return th

    def bounds(self) -> list[tuple[float, float]]:
        return [(-1.0, 1.0) if k[0] == "cor" else (0.0, None) for k in self.kind]

    def deviance(self, theta, y=None, x=None) -> float:
        return _deviance(self.design, self.psi(np.asarray(theta, float)), self.reml, y, x)

    def icc(self, theta) -> float:
        psi = self.psi(np.asarray(theta, float))
        vr = float(self.icc_weights @ psi)
        return vr / (vr + psi[self.kind.index(("sigma", len(psi) - 1))])


def _buckets(design, y=None, x=None):
    """Groups of equal size stacked: [(D (k, G, n, n), X (G, n, p), Y (G, n))]."""
    y = design.y if y is None else y
    x = design.x if x is None else x
    key = (id(design), id(y), id(x))
    hit = _CACHE.get("key")
    if hit is not None and hit[0] == key:
        return hit[1]
    sizes = np.array([len(v) for v in y])
    out = []
    for n in np.unique(sizes):
        idx = np.flatnonzero(sizes == n)
        d = np.stack([np.stack([design.d[r][g] for g in idx]) for r in range(len(design.d))])
        out.append((d, np.stack([x[g] for g in idx]), np.stack([y[g] for g in idx])))
    _CACHE["key"] = (key, out, y, x)  # y, x kept alive so their ids stay unique
    return out


_CACHE: dict = {}


def _deviance(design, psi, reml: bool, y=None, x=None) -> float:
    """-2 (RE)ML log-likelihood up to a constant (beta profiled out); inf if V is not PD."""
    buckets = _buckets(design, y, x)
    p = buckets[0][1].shape[2]
    logdet, xtvx, xtvy, ytvy = 0.0, np.zeros((p, p)), np.zeros(p), 0.0
    for d, xs, ys in buckets:
        v = np.einsum("r,rgij->gij", psi, d)
        try:
            ch = np.linalg.cholesky(v)
        except np.linalg.LinAlgError:
            return np.inf
        logdet += 2 * np.log(np.diagonal(ch, axis1=1, axis2=2)).sum()
        b = np.linalg.solve(ch, ys[..., None])[..., 0]
        ytvy += float(np.sum(b * b))
        if p:
            a = np.linalg.solve(ch, xs)
            xtvx += np.einsum("gip,giq->pq", a, a)
            xtvy += np.einsum("gip,gi->p", a, b)
    rss = ytvy
    if p:
        try:
            rss -= xtvy @ np.linalg.solve(xtvx, xtvy)
        except np.linalg.LinAlgError:
            return np.inf
    dev = logdet + rss
    if reml and p:
        dev += np.linalg.slogdet(xtvx)[1]
    return float(dev) if np.isfinite(dev) else np.inf


def _minimise(fun, start, bounds):
    """Minimum of ``fun`` over the box ``bounds`` (``(0, None)`` or ``(-1, 1)``).

    BFGS on log SDs and atanh correlations (scipy's L-BFGS-B spends most of its time in its
    own bookkeeping on these 1-5 parameter problems); a variance whose optimum is 0 is
    approached as ``log sd -> -inf``, which changes the deviance by less than the tolerance.
    A non-positive-definite V (inf) is a large finite penalty.
    """
    start = np.asarray(start, float)
    kinds = ["cor" if b == (-1.0, 1.0) else "pos" for b in bounds]

    def to_theta(u):
        return np.array([np.tanh(v) if k == "cor" else np.exp(v) for v, k in zip(u, kinds,
                                                                                strict=True)])

    u0 = np.array([np.arctanh(np.clip(t, -1 + 1e-9, 1 - 1e-9)) if k == "cor"
                   else np.log(max(t, 1e-8)) for t, k in zip(start, kinds, strict=True)])

    def safe(u):
        v = fun(to_theta(u))
        return v if np.isfinite(v) else 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = optimize.minimize(safe, u0, method="BFGS", options={"gtol": 1e-7, "maxiter": 500})
        if not r.success:  # Nelder-Mead where BFGS stopped on a rough surface
            r2 = optimize.minimize(safe, r.x, method="Nelder-Mead",
                                   options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000})
            r = r2 if r2.fun <= r.fun else r
    return to_theta(r.x), float(r.fun)


def _fit_theta(prob: _Problem, start, y=None):
    if len(start) == 0:
        return np.asarray(start), prob.deviance(start, y)
    return _minimise(lambda t: prob.deviance(t, y), np.asarray(start, float), prob.bounds())


def _profile_fun(prob: _Problem, theta_hat, which):
    """Profiled ML deviance as a function of one parameter (index, or "icc")."""
    k = len(theta_hat)
    bounds = prob.bounds()
    # every evaluation starts from the optimum: a deterministic function for the root finder
    state = {"start": np.asarray(theta_hat, float)}
    if which == "icc":
        sig = [i for i, kd in enumerate(prob.kind) if kd[0] == "sigma"][0]
        sds = [i for i, kd in enumerate(prob.kind) if kd[0] == "sd" and prob.icc_weights[i] > 0]
        if not sds:
            return lambda c: np.nan
        # at ICC c the random SDs are rescaled so that w . psi = c / (1 - c) sigma^2; the
        # first of them only fixes the direction, so it is not a free parameter
        rest = [i for i in range(k) if i != sds[0]]
        w = prob.icc_weights

        def dev(c):
            def f(t):
                th = np.asarray(theta_hat, float).copy()
                th[rest] = t
                vr = float(w @ prob.psi(th))
                if vr <= 0:
                    return np.inf
                th[sds] *= np.sqrt(c / (1 - c) * th[sig] ** 2 / vr)
                return prob.deviance(th)
            return _minimise(f, state["start"][rest], [bounds[i] for i in rest])[1]
        return dev
    rest = [i for i in range(k) if i != which]

    def dev(val):
        def f(t):
            th = np.empty(k)
            th[rest] = t
            th[which] = val
            return prob.deviance(th)
        if not rest:
            return f(np.empty(0))
        return _minimise(f, state["start"][rest], [bounds[i] for i in rest])[1]
    return dev


def _fixed_profile(prob: _Problem, theta_hat, j):
    """Profiled ML deviance as a function of fixed effect j (offset x_j b_j, column dropped)."""
    des = prob.design
    xj = [x[:, j] for x in des.x]
    xo = [np.delete(x, j, axis=1) for x in des.x]
    # every evaluation starts from the optimum: a deterministic function for the root finder
    state = {"start": np.asarray(theta_hat, float)}

    def dev(b):
        y = [yy - xx * b for yy, xx in zip(des.y, xj, strict=True)]
        return _minimise(lambda th: _deviance(des, prob.psi(th), False, y, xo),
                         state["start"], prob.bounds())[1]
    return dev


def _limits(dev, est, dev_min, zc, lo_bound, hi_bound, scale):
    """Both roots of ``dev(x) - dev_min = zc^2`` around ``est`` within the bounds."""
    def g(x):
        return dev(x) - dev_min - zc**2
    out = []
    for sign, bound in ((-1, lo_bound), (1, hi_bound)):
        step = scale
        a, b = est, est + sign * step
        found = None
        for _ in range(60):
            if bound is not None and sign * (b - bound) >= 0:
                b = bound
                if g(b) < 0:
                    found = bound  # the profile stays inside the cutoff up to the bound
                break
            if g(b) > 0:
                break
            a, step = b, step * 2
            b = est + sign * step
        if found is None and g(b) > 0:
            found = optimize.brentq(g, min(a, b), max(a, b), xtol=1e-10 * max(1, abs(est)),
                                    rtol=1e-12)
        out.append(np.nan if found is None else found)
    return out


def _icc_weights(design) -> np.ndarray:
    """``w`` with random-effect variance = ``w . psi``, averaged over the observed design as
    ``MixedResult.icc`` (Nakagawa et al. 2017)."""
    n = sum(len(v) for v in design.y)
    w = np.zeros(len(design.psi))
    for r, name in enumerate(design.names):
        if name == "residual":
            continue
        w[r] = sum(float(np.trace(m)) for m in design.d[r]) / n
    return w


def _rows(prob: _Problem, groups: str) -> list[tuple[str, str, str]]:
    rows = []
    for kd, name in zip(prob.kind, prob.design.names, strict=True):
        if kd[0] == "sigma":
            rows.append(("residual", "", "sigma"))
        elif kd[0] == "sd":
            term = name[4:]
            grp = f"{term} within {groups}" if name in prob.vc_names else groups
            rows.append((grp, term if grp == groups else "Intercept", "sd"))
        else:
            rows.append((groups, name[4:], "cor"))
    return rows


def variance_ci(
    fit,
    method: str = "profile",
    *,
    ci: float = 0.95,
    n_boot: int = 500,
    seed: int = 0,
    fixed: bool = True,
) -> pd.DataFrame:
    """CIs of the random-effect SDs, correlations, residual SD, ICC (and fixed effects).

    Parameters
    ----------
    fit : MixedResult
        A model from :func:`irtrepro.stats.fit_mixed`.
    method : {"profile", "boot"}
        ``"profile"``: likelihood profile of the ML deviance, as
        ``lme4::confint(fit, method="profile")`` (lme4 profiles the ML deviance for REML fits
        too). ``"boot"``: parametric bootstrap, percentile CIs, as
        ``confint(fit, method="boot", boot.type="perc")``; refits use the fit's criterion.
    ci : float
        Confidence level.
    n_boot : int
        Bootstrap replicates (``method="boot"``).
    seed : int
        Seed of the bootstrap's random generator (numpy ``default_rng``).
    fixed : bool
        Also give the fixed effects' CIs (profile: profiled ML deviance in each coefficient;
        boot: percentile of the refitted coefficients).

    Returns
    -------
    DataFrame
        ``group``, ``term``, ``parameter`` (``sd``, ``cor``, ``sigma``, ``icc``, ``fixed``),
        ``estimate`` (the fit's: REML for a REML fit; ``sd`` and ``sigma`` in the response's
        units, ``icc`` and ``cor`` unitless), ``ci_low``, ``ci_high``, ``ci_level``,
        ``ci_method``, ``note`` (why a limit is NaN, or that a limit is the boundary 0).
        The ICC row is ``fit.icc`` (random-effect variance, averaged over the design, over
        random plus residual variance).

    Raises
    ------
    StatsError
        If ``fit`` is not a MixedResult or ``n_boot`` < 20.
    """
    from irtrepro.stats._lmm_inference import LmmDesign
    from irtrepro.stats.mixed import MixedResult

    if not isinstance(fit, MixedResult):
        raise StatsError(f"variance_ci() takes a MixedResult, got {type(fit).__name__}")
    check_option("method", method, CI_METHODS)
    ci = check_ci(ci)
    groups = fit._inputs["groups"]
    res = fit.model
    design = LmmDesign.from_statsmodels(res, groups)
    w = _icc_weights(design)
    vc = _vc_names(res)
    fe_names = list(res.fe_params.index)
    reml = bool(fit.reml)
    if method == "profile":
        out = _profile_table(design, w, vc, groups, fe_names, ci, fixed)
        label = "profile likelihood (ML deviance, as lme4 confint)"
    else:
        if int(n_boot) < 20:
            raise StatsError(f"n_boot={n_boot}: a percentile CI needs at least 20 replicates")
        out = _boot_table(design, w, vc, groups, fe_names, ci, fixed, int(n_boot), int(seed), reml,
                          np.asarray(res.fe_params, float))
        label = f"parametric bootstrap, percentile, n_boot={int(n_boot)}, seed={int(seed)}"
    # the estimate column is the fit's (REML or ML), as lme4 prints the fit beside confint
    prob = _Problem(design, reml, w, vc)
    th = prob.theta(design.psi)
    est = list(th) + [fit.icc]
    if fixed:
        est += list(np.asarray(res.fe_params, float))
    out.insert(3, "estimate", est)
    zero = _zero_variances(fit)
    if len(zero):
        out = pd.concat([zero, out], ignore_index=True)
    out[CI_LEVEL] = ci
    out[CI_METHOD] = label
    bad = out[[CI_LOW, CI_HIGH]].isna().any(axis=1)
    if bad.any():
        warn(f"variance_ci({fit.name!r}, method={method!r}): no CI for "
             f"{list(out.loc[bad, 'parameter'] + ' ' + out.loc[bad, 'term'])}; see 'note'")
    return out


def _zero_variances(fit, tol: float = 1e-6) -> pd.DataFrame:
    """Rows for variances estimated at zero (singular fit): held at 0, not profiled, as the
    variance parameters of ``LmmDesign``."""
    r = fit.random
    scale = float(r.loc[r.kind == "residual", "variance"].iloc[0])
    z = r[r.kind.isin(["variance", "variance_component"]) & (r.variance <= tol * scale)]
    return pd.DataFrame({
        "group": z.group, "term": z.term, "parameter": "sd", "estimate": 0.0,
        CI_LOW: np.nan, CI_HIGH: np.nan,
        "note": "variance estimated at 0 (singular fit): held at 0, no CI"})


def _table_skeleton(prob: _Problem, groups, fe_names, fixed) -> pd.DataFrame:
    rows = _rows(prob, groups) + [(groups, "", "icc")]
    if fixed:
        rows += [("fixed", n, "fixed") for n in fe_names]
    return pd.DataFrame(rows, columns=["group", "term", "parameter"])


def _vc_names(res) -> set:
    if not res.model.k_vc:
        return set()
    return {f"var {n}" for n in res.model.exog_vc.names}


def _gls(design, psi, y) -> np.ndarray:
    """GLS fixed effects ``(X'V^-1X)^-1 X'V^-1 y`` at the variance parameters ``psi``."""
    a, b = 0.0, 0.0
    for g, (x, yy) in enumerate(zip(design.x, y, strict=True)):
        v = sum(p * design.d[r][g] for r, p in enumerate(psi))
        a = a + x.T @ np.linalg.solve(v, x)
        b = b + x.T @ np.linalg.solve(v, yy)
    return np.linalg.solve(a, b)


def _profile_table(design, w, vc, groups, fe_names, ci, fixed) -> pd.DataFrame:
    prob = _Problem(design, False, w, vc)
    zc = st.norm.ppf(0.5 + ci / 2)
    theta_hat, dev_min = _fit_theta(prob, prob.theta(design.psi))
    lows, highs, notes = [], [], []
    for i, kd in enumerate(prob.kind):
        dev = _profile_fun(prob, theta_hat, i)
        lo_b, hi_b = ((-1.0, 1.0) if kd[0] == "cor" else (0.0, None))
        scale = 0.1 if kd[0] == "cor" else max(theta_hat[i], 1e-3) * 0.25
        lo, hi = _limits(dev, theta_hat[i], dev_min, zc, lo_b, hi_b, scale)
        lows.append(lo)
        highs.append(hi)
        notes.append("lower limit at the boundary" if lo == lo_b else "")
    dev = _profile_fun(prob, theta_hat, "icc")
    icc_hat = prob.icc(theta_hat)
    lo, hi = _limits(dev, icc_hat, dev_min, zc, 1e-12, 1 - 1e-12, max(icc_hat, 0.01) * 0.25)
    at_zero = lo == 1e-12  # the ICC is profiled on (0, 1) open; its boundary is 0
    lows.append(0.0 if at_zero else lo)
    highs.append(hi)
    notes.append("lower limit at the boundary" if at_zero else
                 "" if np.isfinite([lo, hi]).all() else
                 "no random variance above 0 to profile (singular fit)")
    if fixed:
        psi_ml = prob.psi(theta_hat)
        phi = design.phi(psi_ml)
        beta_hat = _gls(design, psi_ml, design.y)
        for j in range(len(fe_names)):
            dev = _fixed_profile(prob, theta_hat, j)
            lo, hi = _limits(dev, beta_hat[j], dev_min, zc, None, None,
                             float(np.sqrt(phi[j, j])))
            lows.append(lo)
            highs.append(hi)
            notes.append("")
    out = _table_skeleton(prob, groups, fe_names, fixed)
    out[CI_LOW], out[CI_HIGH], out["note"] = lows, highs, notes
    return out


def _boot_table(design, w, vc, groups, fe_names, ci, fixed, n_boot, seed, reml, beta):
    prob = _Problem(design, reml, w, vc)
    rng = np.random.default_rng(seed)
    psi = design.psi
    chols = [np.linalg.cholesky(sum(p * design.d[r][g] for r, p in enumerate(psi)))
             for g in range(len(design.y))]
    means = [x @ beta for x in design.x]
    start = prob.theta(psi)
    draws = []
    for _ in range(n_boot):
        y = [m + c @ rng.standard_normal(len(m)) for m, c in zip(means, chols, strict=True)]
        th, _ = _fit_theta(prob, start, y)
        row = list(th) + [prob.icc(th)]
        if fixed:
            row += list(_gls(design, prob.psi(th), y))
        draws.append(row)
    draws = np.asarray(draws)
    q = np.quantile(draws, [0.5 - ci / 2, 0.5 + ci / 2], axis=0)
    out = _table_skeleton(prob, groups, fe_names, fixed)
    out[CI_LOW], out[CI_HIGH] = q[0], q[1]
    out["note"] = ""
    return out
