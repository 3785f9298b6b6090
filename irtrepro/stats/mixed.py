"""Linear mixed models: a thin, honest wrapper around statsmodels' ``MixedLM``.

:func:`fit_mixed` returns a :class:`MixedResult` with tidy tables of fixed effects and variance
components, Nakagawa R², the adjusted ICC, information criteria, and every convergence or
singular-fit problem reported (never silent). :func:`compare` runs likelihood-ratio tests of
nested models, refitting with ML where REML likelihoods are not comparable.
statsmodels is imported inside the functions, so ``import irtrepro.stats`` stays light.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from irtrepro.errors import OptionError, StatsError, check_option
from irtrepro.stats._common import CI_HIGH, CI_LEVEL, CI_LOW, CI_METHOD, P, check_ci, warn

__all__ = ["MixedResult", "compare", "fit_mixed"]

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_METHODS = ["lbfgs", None, "powell", "nm"]  # None: statsmodels default (bfgs)
#: fixed-effect inference of :func:`fit_mixed`
DF_METHODS = ("satterthwaite", "kenward-roger", "wald")
_CI_METHODS = {
    "satterthwaite": "t, Satterthwaite df (as lmerTest)",
    "kenward-roger": "t, Kenward-Roger adjusted SE and df (as pbkrtest / lmerTest)",
    "wald": "Wald, normal",
}


def _fixed_table(res, fe, se, ci, df_method, groups, msgs, formula) -> pd.DataFrame:
    """Fixed-effects table with the inference of ``df_method`` (see :func:`fit_mixed`)."""
    est = fe.to_numpy()
    se = se.to_numpy().astype(float)
    out = pd.DataFrame({"term": list(fe.index), "estimate": est})
    if df_method == "wald":
        z = est / se
        zc = st.norm.ppf(0.5 + ci / 2)
        out["se"] = se
        out["z"] = z
        out[P] = 2 * st.norm.sf(np.abs(z))
        out[CI_LOW], out[CI_HIGH] = est - zc * se, est + zc * se
    else:
        from irtrepro.stats._lmm_inference import LmmDesign

        dfs = np.full(len(est), np.nan)
        try:
            design = LmmDesign.from_statsmodels(res, groups)
            eye = np.eye(len(est))
            if df_method == "satterthwaite":
                dfs, _ = design.satterthwaite(eye)
            else:
                dfs, var_a, _ = design.kenward_roger(eye)
                se = np.sqrt(var_a)
        except (np.linalg.LinAlgError, ValueError) as exc:
            msgs.append(f"{df_method} df could not be computed ({exc}); df are NaN")
            warn(f"fit_mixed({formula!r}): " + msgs[-1])
        bad = ~(np.isfinite(dfs) & (dfs > 0))
        if bad.any() and np.isfinite(dfs).all():
            msgs.append(f"{df_method} df not positive for {list(fe.index[bad])}; set to NaN")
        dfs = np.where(bad, np.nan, dfs)
        t = est / se
        tc = st.t.ppf(0.5 + ci / 2, dfs)
        out["se"] = se
        out["df"] = dfs
        out["t"] = t
        out[P] = 2 * st.t.sf(np.abs(t), dfs)
        out[CI_LOW], out[CI_HIGH] = est - tc * se, est + tc * se
    out[CI_LEVEL] = ci
    out[CI_METHOD] = _CI_METHODS[df_method]
    return out


@dataclass(eq=False)
class MixedResult:
    """A fitted linear mixed model.

    Attributes
    ----------
    fixed : DataFrame
        ``term``, ``estimate``, ``se``, ``df``, ``t``, ``p``, ``ci_low``, ``ci_high``,
        ``ci_level``, ``ci_method`` (t distribution with Satterthwaite or Kenward–Roger df);
        with ``df_method="wald"`` the columns ``z`` (no ``df``, ``t``) and normal CIs.
    random : DataFrame
        Variance components: ``group``, ``term``, ``kind`` (``variance``, ``covariance``,
        ``variance_component``, ``residual``), ``variance``, ``sd``, ``corr``.
    icc : float
        Adjusted ICC, random-effect variance / (random-effect + residual variance)
        (Nakagawa et al. 2017: with random slopes the random-effect variance is averaged over
        the observed design).
    r2_marginal, r2_conditional : float
        Nakagawa & Schielzeth (2013) / Nakagawa et al. (2017) R² of the fixed part and of fixed
        plus random parts.
    llf, aic, bic : float
        Log-likelihood (REML log-likelihood when ``reml=True``, as lme4) and criteria
        ``-2 llf + 2 n_params`` and ``-2 llf + log(nobs) n_params``; with REML compare them
        only between models with the same fixed effects.
    converged : bool
    warnings : list of str
        Convergence and singular-fit messages, each naming the component at fault.
    model : statsmodels MixedLMResults
        For experts.
    """

    fixed: pd.DataFrame
    random: pd.DataFrame
    icc: float
    r2_marginal: float
    r2_conditional: float
    llf: float
    aic: float
    bic: float
    n_params: int
    nobs: int
    n_groups: int
    reml: bool
    converged: bool
    warnings: list[str]
    model: Any = field(repr=False)
    formula: str = ""
    name: str = ""
    _inputs: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (f"MixedResult({self.name or self.formula!r}, nobs={self.nobs}, "
                f"groups={self.n_groups}, reml={self.reml}, llf={self.llf:.6g}, "
                f"converged={self.converged}, warnings={len(self.warnings)})")


def _columns_used(data: pd.DataFrame, *texts: str | None) -> list[str]:
    tokens: list[str] = []
    for text in texts:
        if text:
            tokens += _TOKEN.findall(text)
    return [c for c in dict.fromkeys(tokens) if c in data.columns]


def _prepare_data(data: Any, formula: str, groups: str, re_formula, vc_formula) -> pd.DataFrame:
    texts = [formula, groups, re_formula] + list((vc_formula or {}).values())
    if type(data).__module__.startswith("xarray"):
        names = [t for t in dict.fromkeys(_TOKEN.findall(" ".join(x for x in texts if x)))
                 if t in data.variables]
        var_names = [n for n in names if n in data.data_vars]
        if not var_names:
            raise StatsError(f"no variable of the formula {formula!r} is in the Dataset; "
                             f"variables: {list(data.data_vars)}")
        data = data[var_names].to_dataframe().reset_index()
    if not isinstance(data, pd.DataFrame):
        raise StatsError(f"data of type {type(data).__name__}; expected a DataFrame or Dataset")
    if groups not in data.columns:
        raise StatsError(f"groups={groups!r} is not a column; columns are {list(data.columns)}")
    used = _columns_used(data, *texts)
    response = formula.split("~")[0].strip()
    if response not in data.columns:
        raise StatsError(f"response {response!r} of {formula!r} is not a column")
    if not pd.api.types.is_numeric_dtype(data[response]):
        raise StatsError(f"response {response!r} is not numeric (dtype {data[response].dtype})")
    return data[used].dropna().reset_index(drop=True)


def _drop_aliased(model):
    """Refit-ready model without aliased fixed-effect columns (empty cells of an interaction).

    ``phase * protocol`` with a phase that one protocol lacks (CON has no intervals) gives a
    rank-deficient design; like lme4, keep a maximal set of independent columns (QR with column
    pivoting, earlier columns preferred) and name the dropped ones.
    """
    import scipy.linalg as sla
    from statsmodels.regression.mixed_linear_model import MixedLM

    x = np.asarray(model.exog, dtype=float)
    rank = np.linalg.matrix_rank(x)
    if rank == x.shape[1]:
        return model, []
    _, _, piv = sla.qr(x, mode="economic", pivoting=True)
    keep = np.sort(piv[:rank])
    names = list(model.exog_names)
    dropped = [names[k] for k in range(x.shape[1]) if k not in set(keep.tolist())]
    exog = pd.DataFrame(x[:, keep], columns=[names[k] for k in keep])
    exog_re = pd.DataFrame(np.asarray(model.exog_re), columns=list(model.data.exog_re_names))
    new = MixedLM(pd.Series(np.asarray(model.endog), name=model.endog_names), exog,
                  groups=np.asarray(model.groups), exog_re=exog_re,
                  exog_vc=getattr(model, "exog_vc", None))
    return new, dropped


def _fit(data, formula, groups, re_formula, vc_formula, reml, method, polish):
    from statsmodels.regression.mixed_linear_model import MixedLM

    kwargs = {}
    re_formula = "1" if re_formula is None else re_formula
    if re_formula.strip() not in ("0", "-1"):
        kwargs["re_formula"] = re_formula
    elif not vc_formula:
        raise StatsError(f"re_formula={re_formula!r} and no vc_formula: the model has no random "
                         "part; use an ordinary regression instead")
    if vc_formula:
        kwargs["vc_formula"] = dict(vc_formula)
    try:
        model = MixedLM.from_formula(formula, groups=groups, data=data, **kwargs)
    except Exception as exc:  # patsy / statsmodels formula errors
        raise StatsError(f"cannot build the model {formula!r} (groups={groups!r}, "
                         f"re_formula={re_formula!r}, vc_formula={vc_formula!r}): {exc}") from exc
    model, dropped = _drop_aliased(model)
    tries = [method] if method is not None else _METHODS
    best, best_msgs, all_tried = None, [], []
    for meth in tries:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = model.fit(reml=reml, **({} if meth is None else {"method": meth}))
            except (np.linalg.LinAlgError, ValueError) as exc:
                all_tried.append(f"{meth or 'default'}: {exc}")
                continue
        msgs = list(dict.fromkeys(str(w.message).strip().replace("\n", " ") for w in caught))
        ok = bool(getattr(res, "converged", False)) and np.isfinite(res.llf)
        all_tried.append(f"{meth or 'default'}: llf={res.llf:.6g}, converged={ok}")
        if best is None or (np.isfinite(res.llf) and not np.isfinite(best.llf)) or (
            ok and np.isfinite(best.llf) and res.llf > best.llf + 1e-8
        ):
            best, best_msgs = res, msgs
        if ok and method is None:
            break
    if best is None:
        raise StatsError(f"fitting {formula!r} failed with every optimiser: {all_tried}")
    if polish and np.isfinite(best.llf):
        # BFGS at a tight gradient tolerance from the optimum: the (RE)ML surface is flat in
        # the variance parameters and the default tolerances stop ~1e-4 short of lme4
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fine = model.fit(reml=reml, method="bfgs", start_params=best.params_object,
                                 gtol=1e-9)
            except (np.linalg.LinAlgError, ValueError):
                fine = None
        if fine is not None and np.isfinite(fine.llf) and fine.llf >= best.llf and fine.converged:
            best = fine
    if len(all_tried) > 1:
        best_msgs.append("optimisers tried: " + "; ".join(all_tried))
    if dropped:
        best_msgs = [f"fixed-effect model matrix is rank deficient: dropped the aliased "
                     f"(not estimable) term(s) {dropped}, as lme4 does", *best_msgs]
    return model, best, best_msgs


def _random_table(res, groups: str) -> pd.DataFrame:
    rows = []
    cov = res.cov_re
    names = ["Intercept" if n == groups else str(n) for n in cov.index]
    for i, a in enumerate(names):
        rows.append((groups, a, "variance", cov.iloc[i, i], np.sqrt(max(cov.iloc[i, i], 0)),
                     np.nan))
        for j in range(i):
            b = names[j]
            den = np.sqrt(cov.iloc[i, i] * cov.iloc[j, j])
            corr = cov.iloc[i, j] / den if den > 0 else np.nan
            rows.append((groups, f"{b} x {a}", "covariance", cov.iloc[i, j], np.nan, corr))
    vc_names = list(getattr(res.model, "exog_vc", None).names) if res.model.k_vc else []
    for name, v in zip(vc_names, np.atleast_1d(res.vcomp), strict=False):
        rows.append((f"{name} within {groups}", "Intercept", "variance_component", v,
                     np.sqrt(max(v, 0)), np.nan))
    rows.append(("residual", "", "residual", res.scale, np.sqrt(res.scale), np.nan))
    return pd.DataFrame(rows, columns=["group", "term", "kind", "variance", "sd", "corr"])


def _nakagawa(model, res) -> tuple[float, float, float, float]:
    """(var_fixed, var_random, var_residual) averaged over the observed design."""
    fe = np.asarray(res.fe_params)
    xb = model.exog[:, : len(fe)] @ fe
    var_f = float(np.var(xb, ddof=1)) if len(xb) > 1 else 0.0
    var_r = 0.0
    if model.k_re:
        z = np.asarray(model.exog_re)
        cov = np.asarray(res.cov_re)
        var_r += float(np.mean(np.einsum("ij,jk,ik->i", z, cov, z)))
    if model.k_vc:
        total = 0.0
        for j, v in enumerate(np.atleast_1d(res.vcomp)):
            s = sum(float((np.asarray(m) ** 2).sum()) for m in model.exog_vc.mats[j])
            total += v * s
        var_r += total / model.nobs
    return var_f, var_r, float(res.scale), float(var_f + var_r + res.scale)


def _singular(res, groups: str, tol: float = 1e-6) -> list[str]:
    msgs = []
    scale = max(float(res.scale), 1e-300)
    cov = np.asarray(res.cov_re)
    names = ["Intercept" if n == groups else str(n) for n in res.cov_re.index]
    for i, nm in enumerate(names):
        if cov[i, i] <= tol * scale:
            msgs.append(f"singular fit: variance of the random effect '{nm}' by {groups!r} is at "
                        f"zero ({cov[i, i]:.3g})")
    if cov.shape[0] > 1 and not msgs:
        ev = np.linalg.eigvalsh(cov)
        if ev.min() <= tol * max(ev.max(), scale):
            d = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
            corr = cov / np.outer(d, d)
            i, j = np.unravel_index(np.argmax(np.abs(corr - np.eye(len(d)))), corr.shape)
            msgs.append(f"singular fit: random effects '{names[i]}' and '{names[j]}' by "
                        f"{groups!r} are perfectly correlated (r = {corr[i, j]:.3f})")
    if res.model.k_vc:
        for name, v in zip(res.model.exog_vc.names, np.atleast_1d(res.vcomp), strict=False):
            if v <= tol * scale:
                msgs.append(f"singular fit: variance component '{name}' within {groups!r} is at "
                            f"zero ({v:.3g})")
    return msgs


def fit_mixed(
    formula: str,
    data: Any,
    groups: str = "subject",
    re_formula: str | None = None,
    vc_formula: dict[str, str] | None = None,
    reml: bool = True,
    *,
    ci: float = 0.95,
    method: str | list[str] | None = None,
    name: str = "",
    polish: bool = True,
    df_method: str = "satterthwaite",
) -> MixedResult:
    """Fit a linear mixed model (statsmodels ``MixedLM``) and report it tidily.

    Parameters
    ----------
    formula : str
        Fixed part, patsy syntax: ``"tnv ~ C(phase) * C(protocol)"``.
    data : DataFrame or xarray.Dataset
        Long table, or a Study: the variables named in the formulas are flattened to a long
        table over all their dims. Rows with a missing value in a used column are dropped.
    groups : str
        Grouping column of the random effects (``"subject"``).
    re_formula : str, optional
        Random part per group: ``None``/``"1"`` random intercept, ``"1 + speed"`` random
        intercept and slope of ``speed`` (correlated).
    vc_formula : dict, optional
        Variance components nested in ``groups``: ``{"session": "0 + C(session)"}`` gives a
        session-within-subject random intercept.
    reml : bool
        REML (default) or ML.
    ci : float
        Level of the CIs of the fixed effects.
    method : str or list of str, optional
        Optimiser passed to statsmodels. Default: lbfgs, then statsmodels' default (bfgs), powell
        and Nelder-Mead in turn until one converges with a finite likelihood.
    name : str
        Label used by :func:`compare`.
    polish : bool
        Refine the optimum with BFGS at a tight gradient tolerance (default), which brings
        variance components to lme4's values to about 1e-6 where the default tolerance stops
        early.
    df_method : {"satterthwaite", "kenward-roger", "wald"}
        Inference on the fixed effects. ``"satterthwaite"`` (default): t tests and t CIs with
        Satterthwaite df, as ``lmerTest`` (``summary(lmer(...))``, ``ddf = "Satterthwaite"``);
        ``"kenward-roger"``: the Kenward–Roger adjusted covariance (standard errors) and df, as
        ``pbkrtest::vcovAdj`` / ``lmerTest`` ``ddf = "Kenward-Roger"`` (REML fits only);
        ``"wald"``: z tests and normal CIs (column ``z`` instead of ``df`` and ``t``), the
        large-sample approximation, anticonservative with few groups.

    Returns
    -------
    MixedResult

    Warns
    -----
    IrtreproWarning
        If the fit did not converge, or is singular (a variance at zero, or random effects
        perfectly correlated); the message names the component, and is kept in ``.warnings``.
    """
    ci = check_ci(ci)
    check_option("df_method", df_method, DF_METHODS)
    if df_method == "kenward-roger" and not reml:
        raise OptionError("df_method='kenward-roger' needs a REML fit (reml=True), as pbkrtest; "
                          "use df_method='satterthwaite' with ML")
    df = _prepare_data(data, formula, groups, re_formula, vc_formula)
    if df[groups].nunique() < 2:
        raise StatsError(f"{df[groups].nunique()} level(s) of {groups!r} with complete data; a "
                         "mixed model needs several groups")
    model, res, msgs = _fit(df, formula, groups, re_formula, vc_formula, reml, method, polish)
    converged = bool(getattr(res, "converged", False)) and bool(np.isfinite(res.llf))
    problems = [m for m in msgs if "converge" in m.lower() or "boundary" in m.lower()
                or "singular" in m.lower() or "hessian" in m.lower()]
    sing = _singular(res, groups)
    all_msgs = list(dict.fromkeys(sing + problems + [m for m in msgs if m not in problems]))
    if not converged:
        all_msgs.insert(0, f"the optimiser did not converge for {formula!r}")
    if not converged or sing:
        warn(f"fit_mixed({formula!r}): " + "; ".join(all_msgs[:4]))

    fe = res.fe_params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = res.bse_fe
    if not np.isfinite(se.to_numpy()).all():
        all_msgs.append("standard errors of fixed effects undefined (Hessian not positive "
                        f"definite) for {list(fe.index[~np.isfinite(se.to_numpy())])}")
        warn(f"fit_mixed({formula!r}): " + all_msgs[-1])
    fixed = _fixed_table(res, fe, se, ci, df_method, groups, all_msgs, formula)
    var_f, var_r, var_e, total = _nakagawa(model, res)
    q = model.k_re
    n_params = len(fe) + q * (q + 1) // 2 + model.k_vc + 1
    llf = float(res.llf)
    return MixedResult(
        fixed=fixed,
        random=_random_table(res, groups),
        icc=var_r / (var_r + var_e),
        r2_marginal=var_f / total,
        r2_conditional=(var_f + var_r) / total,
        llf=llf,
        aic=-2 * llf + 2 * n_params,
        bic=-2 * llf + np.log(model.nobs) * n_params,
        n_params=int(n_params),
        nobs=int(model.nobs),
        n_groups=int(model.n_groups),
        reml=reml,
        converged=converged,
        warnings=all_msgs,
        model=res,
        formula=formula,
        name=name or _default_name(formula, re_formula, vc_formula),
        _inputs=dict(formula=formula, data=df, groups=groups, re_formula=re_formula,
                     vc_formula=vc_formula, ci=ci, method=method, name=name, polish=polish,
                     df_method=df_method),
    )


def _default_name(formula: str, re_formula, vc_formula) -> str:
    parts = [formula]
    if re_formula not in (None, "1"):
        parts.append(f"re: {re_formula}")
    if vc_formula:
        parts.append("vc: " + ", ".join(f"{k}={v}" for k, v in vc_formula.items()))
    return " | ".join(parts)


def compare(a: MixedResult, b: MixedResult) -> pd.DataFrame:
    """Likelihood-ratio test of two nested mixed models.

    If the fixed effects differ and a model was fitted by REML, both are refitted by ML
    (REML likelihoods of different fixed parts are not comparable); if only the random parts
    differ, REML likelihoods are compared as they are.

    Returns
    -------
    DataFrame
        Two rows (smaller model first): ``model``, ``n_params``, ``llf``, ``aic``, ``bic``,
        ``chi2``, ``df``, ``p`` (naive chi-square(df), on the larger model's row), ``method``,
        ``p_mixture`` and ``p_mixture_method``.

    Notes
    -----
    When the models differ only in their random part, the extra parameters are variances
    whose null value is on the boundary and the naive chi-square p-value is conservative
    (about twice too large for one variance). ``p_mixture`` is the boundary-corrected
    p-value, ``0.5 P(chi2(df-1) > LR) + 0.5 P(chi2(df) > LR)`` (Self & Liang 1987; Stram &
    Lee 1994; ``chi2(0)`` a point mass at 0): exact asymptotically for one added variance
    (``df = 1``), the usual approximation when a random slope adds its covariance too.
    """
    for r in (a, b):
        if not isinstance(r, MixedResult):
            raise StatsError(f"compare() takes two MixedResult, got {type(r).__name__}")
    if a.nobs != b.nobs:
        raise StatsError(f"the models use different rows ({a.nobs} vs {b.nobs} observations); "
                         "an LRT needs the same data")
    small, big = sorted((a, b), key=lambda r: r.n_params)
    if small.n_params == big.n_params:
        raise StatsError("the models have the same number of parameters; they are not nested")
    same_fixed = list(small.fixed.term) == list(big.fixed.term)
    method = "LRT on REML likelihoods (same fixed effects)"
    if not same_fixed and (small.reml or big.reml):
        small = _refit_ml(small)
        big = _refit_ml(big)
        method = "LRT, both models refitted by ML (fixed effects differ)"
    elif not (small.reml or big.reml):
        method = "LRT on ML likelihoods"
    elif small.reml != big.reml:
        small, big = _refit_ml(small), _refit_ml(big)
        method = "LRT, both models refitted by ML (mixed REML/ML fits)"
    if not set(small.fixed.term) <= set(big.fixed.term):
        warn(f"compare: fixed effects of {small.name!r} are not a subset of {big.name!r}; the "
             "models may not be nested")
    chi2 = max(2 * (big.llf - small.llf), 0.0)
    df = big.n_params - small.n_params
    out = pd.DataFrame({
        "model": [small.name, big.name],
        "n_params": [small.n_params, big.n_params],
        "llf": [small.llf, big.llf],
        "aic": [small.aic, big.aic],
        "bic": [small.bic, big.bic],
        "chi2": [np.nan, chi2],
        "df": [np.nan, df],
        P: [np.nan, float(st.chi2.sf(chi2, df))],
    })
    out["method"] = method
    # same fixed part: the extra parameters are random-effect (co)variances, whose null value
    # is on the boundary: 50:50 mixture of chi2(df - 1) and chi2(df) (Self & Liang 1987;
    # Stram & Lee 1994), exact for one added variance, approximate with its covariances
    p_mix = np.nan
    if same_fixed and df >= 1:
        low = float(st.chi2.sf(chi2, df - 1)) if df > 1 else float(chi2 <= 0)
        p_mix = 0.5 * low + 0.5 * float(st.chi2.sf(chi2, df))
    out["p_mixture"] = [np.nan, p_mix]
    out["p_mixture_method"] = ("50:50 mixture of chi2(df-1) and chi2(df) (Self & Liang 1987), "
                               "random part tested on the boundary" if same_fixed else
                               "not applicable (fixed effects differ)")
    return out


def _refit_ml(r: MixedResult) -> MixedResult:
    if not r.reml:
        return r
    kw = dict(r._inputs)
    data = kw.pop("data")
    formula = kw.pop("formula")
    if kw.get("df_method") == "kenward-roger":
        kw["df_method"] = "satterthwaite"  # Kenward-Roger is defined for REML only
    return fit_mixed(formula, data, reml=False, **kw)
