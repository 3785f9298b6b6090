"""Vectorised variance decomposition of a ``(metric, subject, session)`` cube.

Two estimators give the same :class:`Components`:

- :func:`anova_listwise`: the two-way ANOVA (subjects x sessions, one observation per cell) on
  the subjects complete in every session, for every metric at once.
- :func:`reml_crossed`: REML variance components of the two-way crossed random model
  ``y = mu + s_i + r_j + e_ij`` fitted by batched Fisher scoring over all metrics, so that
  incomplete subjects still count. With complete data and non-negative components it returns
  the ANOVA mean squares exactly.

Both report the mean squares the ICC formulas need; for REML they are the mean squares the
fitted components imply for a balanced design (``MSR = s2_e + k s2_s``, ``MSC = s2_e + n s2_r``,
``MSE = s2_e``, ``MSW = s2_e + s2_r``), with ``df_e = N_obs - n - k + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Components:
    """Mean squares and counts per metric (arrays of shape ``(M,)``)."""

    msr: np.ndarray  # between subjects
    msc: np.ndarray  # between sessions
    mse: np.ndarray  # residual
    msw: np.ndarray  # within subjects (sessions + residual)
    n: np.ndarray  # subjects used
    k: int  # sessions
    df_e: np.ndarray  # residual df
    n_obs: np.ndarray  # observations used
    grand: np.ndarray  # grand mean
    sd: np.ndarray  # SD of all observations used
    method: str  # "anova" or "reml"
    converged: np.ndarray | None = None  # REML only


def complete_subjects(cube: np.ndarray) -> np.ndarray:
    """Mask ``(M, S)``: subject has a finite value in every session."""
    finite = np.isfinite(cube)
    if finite.all():
        # a reduction over the short session axis costs ~20 times the whole-array test
        return np.ones(cube.shape[:2] + cube.shape[3:], bool)
    return finite.all(axis=2)


#: ``y.sum(-1)`` is replaced by adding the session slices in turn only up to this many
#: sessions: numpy sums a short last axis in that order (checked bitwise in the tests), longer
#: ones with partial sums
_SEQUENTIAL_SESSIONS = 7


def _sum_sessions(y: np.ndarray) -> np.ndarray:
    """``y.sum(-1)``, bit for bit, without numpy's per-row overhead on a 2-5 long axis."""
    k = y.shape[-1]
    if k > _SEQUENTIAL_SESSIONS or k < 2 or not y.flags.c_contiguous:
        return y.sum(-1)
    out = y[..., 0] + y[..., 1]
    for j in range(2, k):
        out += y[..., j]
    return out


def _sum_subjects(y: np.ndarray) -> np.ndarray:
    """``y.sum(-2)``, bit for bit: numpy accumulates a non-innermost axis in order.

    With one session the subject axis is the innermost one, which numpy sums pairwise.
    """
    s = y.shape[-2]
    if s < 2 or y.shape[-1] < 2 or not y.flags.c_contiguous:
        return y.sum(-2)
    out = y[..., 0, :] + y[..., 1, :]
    for i in range(2, s):
        out += y[..., i, :]
    return out


def anova_listwise(cube: np.ndarray) -> Components:
    """Two-way ANOVA without replication on the complete subjects of each metric.

    ``cube`` has shape ``(..., S, K)``; leading dims are broadcast (metrics, bootstrap draws).
    """
    ok = complete_subjects(cube)
    k = cube.shape[-1]
    # complete data (the usual case): the masks select everything and multiply by 1, so
    # skipping them gives the same numbers without four temporaries of the cube's size
    full = bool(ok.all())
    n = np.full(ok.shape[:-1], ok.shape[-1]) if full else ok.sum(-1)
    y = cube if full else np.where(ok[..., None], cube, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        grand = y.sum((-2, -1)) / (n * k)
        rowm = _sum_sessions(y) / k
        colm = _sum_subjects(y) / n[..., None]
        dev_r = rowm - grand[..., None]
        if not full:
            dev_r = np.where(ok, dev_r, 0.0)
        ssr = k * (dev_r**2).sum(-1)
        ssc = n * _sum_sessions((colm - grand[..., None]) ** 2)
        res = y - rowm[..., None] - colm[..., None, :] + grand[..., None, None]
        dev = y - grand[..., None, None]
        if not full:
            res = res * ok[..., None]
            dev = dev * ok[..., None]
        sse = (res**2).sum((-2, -1))
        sst = (dev**2).sum((-2, -1))
        df_e = (n - 1) * (k - 1)
        return Components(
            msr=ssr / (n - 1),
            msc=ssc / (k - 1),
            mse=sse / df_e,
            msw=(ssc + sse) / (n * (k - 1)),
            n=n,
            k=k,
            df_e=df_e.astype(float),
            n_obs=n * k,
            grand=grand,
            sd=np.sqrt(sst / (n * k - 1)),
            method="anova",
        )


def reml_crossed(
    cube: np.ndarray, max_iter: int = 200, tol: float = 1e-10
) -> tuple[Components, np.ndarray]:
    """REML variance components of ``y = mu + s_i + r_j + e_ij`` for every metric at once.

    Parameters
    ----------
    cube : ndarray, shape (M, S, K)
        NaN marks a missing cell. Subjects without any value are ignored.
    max_iter, tol
        Fisher-scoring iterations and convergence tolerance (relative to the total variance).

    Returns
    -------
    Components
        Implied balanced-design mean squares (see module docstring), ``method="reml"``.
    theta : ndarray, shape (M, 3)
        ``(s2_subject, s2_session, s2_residual)``.

    Notes
    -----
    Fisher scoring on the REML log-likelihood (Harville 1977) with step halving and projection
    onto the non-negative orthant, so components on the boundary end at exactly zero, as in lme4.
    Missing cells are decoupled unit rows of V (zero design rows, zero response), which leaves
    the REML likelihood of the observed cells unchanged and keeps the batch rectangular.
    """
    m, s, kk = cube.shape
    nn = s * kk
    obs = np.isfinite(cube).reshape(m, nn).astype(float)
    y = np.where(obs > 0, cube.reshape(m, nn), 0.0)
    subj = np.repeat(np.arange(s), kk)
    sess = np.tile(np.arange(kk), s)
    oo = obs[:, :, None] * obs[:, None, :]
    g = np.stack(
        [
            (subj[:, None] == subj[None, :]) * oo,
            (sess[:, None] == sess[None, :]) * oo,
            np.eye(nn)[None] * obs[:, None, :],
        ],
        axis=1,
    )  # (M, 3, N, N)
    free_diag = np.eye(nn)[None] * (1.0 - obs)[:, None, :]
    n_obs = obs.sum(1)
    mean = y.sum(1) / n_obs
    var = ((y - mean[:, None]) ** 2 * obs).sum(1) / np.maximum(n_obs - 1, 1)
    scale = np.where(var > 0, var, 1.0)
    theta = np.repeat(scale[:, None] / 3.0, 3, axis=1)
    floor = 1e-12 * scale  # residual variance stays positive

    def evaluate(th, idx):
        ob, yy = obs[idx], y[idx]
        v = np.einsum("mi,mijk->mjk", th, g[idx]) + free_diag[idx]
        chol = np.linalg.cholesky(v)
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
        vi = np.linalg.inv(v)
        vix = vi @ ob[:, :, None]
        xvix = (ob[:, :, None] * vix).sum((1, 2))
        pm = vi - (vix @ vix.transpose(0, 2, 1)) / xvix[:, None, None]
        py = (pm @ yy[:, :, None])[..., 0]
        ll = -0.5 * (logdet + np.log(xvix) + (yy * py).sum(1))
        return ll, pm, py

    everyone = np.arange(m)
    ll, p, py = evaluate(theta, everyone)
    converged = np.zeros(m, bool)
    for _ in range(max_iter):
        act = np.flatnonzero(~converged)  # only metrics still moving are recomputed
        if act.size == 0:
            break
        th, pa, pya, lla, ga = theta[act], p[act], py[act], ll[act], g[act]
        pg = np.einsum("mjk,mikl->mijl", pa, ga)  # P G_i
        gpy = np.einsum("mijk,mk->mij", ga, pya)
        score = -0.5 * np.einsum("mijj->mi", pg) + 0.5 * np.einsum("mj,mij->mi", pya, gpy)
        info = 0.5 * np.einsum("mijk,mlkj->mil", pg, pg)
        # active set: components at zero whose score pushes them below zero stay at zero
        at_zero = (th <= 0) & (score <= 0)
        both = at_zero[:, :, None] | at_zero[:, None, :]
        info_f = np.where(both, 0.0, info) + np.eye(3)[None] * at_zero[:, :, None]
        score_f = np.where(at_zero, 0.0, score)
        try:
            step = np.linalg.solve(info_f, score_f[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = score_f * scale[act, None]
        t = np.ones(len(act))
        for _half in range(30):
            cand = np.maximum(th + t[:, None] * step, 0.0)
            cand[:, 2] = np.maximum(cand[:, 2], floor[act])
            ll_c, p_c, py_c = evaluate(cand, act)
            better = ll_c >= lla - 1e-12 * np.abs(lla)
            if better.all():
                break
            t = np.where(better, t, t / 2.0)
        new = np.where(better[:, None], cand, th)
        change = np.abs(new - th).max(1) / scale[act]
        theta[act] = new
        ll[act] = np.where(better, ll_c, lla)
        p[act] = np.where(better[:, None, None], p_c, pa)
        py[act] = np.where(better[:, None], py_c, pya)
        converged[act] = change < tol

    s2s, s2r, s2e = theta.T
    has = np.isfinite(cube).any(axis=2)
    n = has.sum(1)
    k = kk
    grand = mean
    comps = Components(
        msr=s2e + k * s2s,
        msc=s2e + n * s2r,
        mse=s2e,
        msw=s2e + s2r,
        n=n,
        k=k,
        df_e=n_obs - n - k + 1,
        n_obs=n_obs.astype(int),
        grand=grand,
        sd=np.sqrt(var),
        method="reml",
        converged=converged,
    )
    return comps, theta
