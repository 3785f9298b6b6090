"""Small-sample inference for linear mixed models fitted by statsmodels' ``MixedLM``.

The covariance of the observations is written linearly in the variance parameters
``psi`` (random-effect variances and covariances, variance components, residual variance),
``V_g = sum_r psi_r D_rg`` per group ``g``, as pbkrtest does. On that parametrisation:

- :meth:`LmmDesign.deviance` is the REML (or ML) deviance, evaluated by groups;
- :meth:`LmmDesign.phi` is the covariance of the fixed effects ``(X' V^-1 X)^-1``;
- :meth:`LmmDesign.satterthwaite` gives lmerTest's Satterthwaite df for a contrast ``c``,
  ``df = 2 (c' Phi c)^2 / (g' A g)``, with ``A`` twice the inverse of the observed Hessian of
  the deviance at the optimum and ``g`` the gradient of ``c' Phi(psi) c`` (both analytic,
  where lmerTest differentiates numerically);
- :meth:`LmmDesign.kenward_roger` gives pbkrtest's adjusted covariance ``Phi_A`` and the
  Kenward–Roger df (``Lb_ddf``) of a contrast, with the expected REML information as ``W``
  (second derivatives of ``V`` vanish on a linear parametrisation).

The Satterthwaite df are invariant to the parametrisation at the optimum, so they equal
lmerTest's (which differentiates in the Cholesky parameters). Variances estimated at zero are
held at zero (their rows and columns dropped), which is what the Cholesky parametrisation
does implicitly (the derivative of ``Phi`` in ``theta`` vanishes at ``theta = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LmmDesign:
    """Per-group pieces of a fitted ``MixedLM`` and its variance parameters."""

    y: list[np.ndarray]
    x: list[np.ndarray]
    d: list[list[np.ndarray]]  # d[r][g]: derivative of V_g with respect to psi_r
    psi: np.ndarray
    names: list[str]
    reml: bool

    @classmethod
    def from_statsmodels(cls, res, groups: str = "group", tol: float = 1e-6) -> LmmDesign:
        model = res.model
        ng = model.n_groups
        y = [np.asarray(v, float) for v in model.endog_li]
        x = [np.asarray(v, float) for v in model.exog_li]
        d: list[list[np.ndarray]] = []
        psi, names = [], []
        scale = float(res.scale)
        if model.k_re:
            cov = np.asarray(res.cov_re, float)
            re_names = ["Intercept" if n == groups else str(n) for n in res.cov_re.index]
            zero = [cov[i, i] <= tol * scale for i in range(len(cov))]
            for i in range(len(cov)):
                for j in range(i + 1):
                    if zero[i] or zero[j]:
                        continue
                    mats = []
                    for g in range(ng):
                        z = np.asarray(model.exog_re_li[g], float)
                        if i == j:
                            mats.append(np.outer(z[:, i], z[:, i]))
                        else:
                            a = np.outer(z[:, i], z[:, j])
                            mats.append(a + a.T)
                    d.append(mats)
                    psi.append(cov[i, j])
                    names.append(f"var {re_names[i]}" if i == j
                                 else f"cov {re_names[j]} x {re_names[i]}")
        if model.k_vc:
            for j, v in enumerate(np.atleast_1d(res.vcomp)):
                if v <= tol * scale:
                    continue
                mats = []
                for g in range(ng):
                    m = np.asarray(model.exog_vc.mats[j][g], float)
                    mats.append(m @ m.T)
                d.append(mats)
                psi.append(float(v))
                names.append(f"var {model.exog_vc.names[j]}")
        d.append([np.eye(len(v)) for v in y])
        psi.append(scale)
        names.append("residual")
        return cls(y, x, d, np.asarray(psi, float), names, bool(res.model.reml))

    # ------------------------------------------------------------------------------------
    def _v(self, psi: np.ndarray, g: int) -> np.ndarray:
        return sum(p * self.d[r][g] for r, p in enumerate(psi))

    def _pieces(self, psi: np.ndarray):
        """(sum log|V_g|, X'V^-1X, X'V^-1y, y'V^-1y) or None if a V_g is not positive definite."""
        p = self.x[0].shape[1]
        logdet, xtvx, xtvy, ytvy = 0.0, np.zeros((p, p)), np.zeros(p), 0.0
        for g in range(len(self.y)):
            try:
                ch = np.linalg.cholesky(self._v(psi, g))
            except np.linalg.LinAlgError:
                return None
            logdet += 2 * np.log(np.diag(ch)).sum()
            a = np.linalg.solve(ch, self.x[g])
            b = np.linalg.solve(ch, self.y[g])
            xtvx += a.T @ a
            xtvy += a.T @ b
            ytvy += b @ b
        return logdet, xtvx, xtvy, ytvy

    def deviance(self, psi: np.ndarray) -> float:
        """-2 (RE)ML log-likelihood up to a constant; inf outside the positive-definite region."""
        pieces = self._pieces(np.asarray(psi, float))
        if pieces is None:
            return np.inf
        logdet, xtvx, xtvy, ytvy = pieces
        beta = np.linalg.solve(xtvx, xtvy)
        rss = ytvy - xtvy @ beta
        dev = logdet + rss
        if self.reml:
            dev += np.linalg.slogdet(xtvx)[1]
        return float(dev)

    def phi(self, psi: np.ndarray | None = None) -> np.ndarray:
        """Covariance of the fixed effects, ``(X' V(psi)^-1 X)^-1``."""
        pieces = self._pieces(self.psi if psi is None else np.asarray(psi, float))
        if pieces is None:
            return np.full((self.x[0].shape[1],) * 2, np.nan)
        return np.linalg.inv(pieces[1])

    def _blocks(self):
        """Sums over groups for the derivatives, all on the linear parametrisation.

        Returns phi, M_r = X'V^-1 D_r V^-1 X, Q_rs = X'V^-1 D_r V^-1 D_s V^-1 X,
        T_rs = tr(V^-1 D_r V^-1 D_s) and Y_rs = (D_r u)' Pt (D_s u) with u = Pt y.
        """
        k, ng, p = len(self.psi), len(self.y), self.x[0].shape[1]
        vinv = [np.linalg.inv(self._v(self.psi, g)) for g in range(ng)]
        vx = [vinv[g] @ self.x[g] for g in range(ng)]
        phi = np.linalg.inv(sum(self.x[g].T @ vx[g] for g in range(ng)))
        beta = phi @ sum(vx[g].T @ self.y[g] for g in range(ng))
        u = [vinv[g] @ (self.y[g] - self.x[g] @ beta) for g in range(ng)]
        m = np.zeros((k, p, p))
        q = np.zeros((k, k, p, p))
        t = np.zeros((k, k))
        yy = np.zeros((k, k))
        xva = np.zeros((k, p))  # X' V^-1 D_r u
        for g in range(ng):
            dvx = [self.d[r][g] @ vx[g] for r in range(k)]
            vd = [vinv[g] @ self.d[r][g] for r in range(k)]
            du = [self.d[r][g] @ u[g] for r in range(k)]
            for r in range(k):
                m[r] += vx[g].T @ dvx[r]
                xva[r] += vx[g].T @ du[r]
                for s in range(r + 1):
                    q[r, s] += dvx[r].T @ vinv[g] @ dvx[s]
                    t[r, s] += np.sum(vd[r] * vd[s].T)
                    yy[r, s] += du[r] @ vinv[g] @ du[s]
        for r in range(k):
            for s in range(r):
                q[s, r] = q[r, s].T
                t[s, r] = t[r, s]
                yy[s, r] = yy[r, s]
        yy = yy - xva @ phi @ xva.T
        return phi, m, q, t, yy

    def vcov_psi(self, blocks=None) -> np.ndarray:
        """Asymptotic covariance of ``psi``: 2 x inverse of the observed Hessian of the
        deviance (analytic: ``-tr(Pt D_r Pt D_s) + 2 y' Pt D_r Pt D_s Pt y`` for REML)."""
        phi, m, q, t, yy = self._blocks() if blocks is None else blocks
        k = len(self.psi)
        tr = t.copy()
        if self.reml:
            for r in range(k):
                for s in range(k):
                    tr[r, s] += -2 * np.trace(phi @ q[r, s]) + np.trace(phi @ m[r] @ phi @ m[s])
        hess = -tr + 2 * yy
        return 2 * np.linalg.pinv(hess)

    def satterthwaite(self, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Satterthwaite df and variance ``c' Phi c`` of each row ``c`` of ``contrasts``.

        ``df = 2 (c' Phi c)^2 / (g' A g)`` with ``g_r = c' Phi M_r Phi c`` (the derivative
        of ``c' Phi c`` in ``psi_r``) and ``A`` from :meth:`vcov_psi`.
        """
        cs = np.atleast_2d(np.asarray(contrasts, float))
        blocks = self._blocks()
        phi, m = blocks[0], blocks[1]
        a = self.vcov_psi(blocks)
        var = np.einsum("ci,ij,cj->c", cs, phi, cs)
        grad = np.einsum("ci,ij,rjk,kl,cl->cr", cs, phi, m, phi, cs)
        den = np.einsum("ci,ij,cj->c", grad, a, grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = 2 * var**2 / den
        return df, var

    # ------------------------------------------------------------------------------------
    def kenward_roger(self, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kenward–Roger (1997) for rows ``c`` of ``contrasts``, as pbkrtest.

        Returns (df, adjusted variance ``c' Phi_A c``, adjusted covariance ``Phi_A``).
        ``W`` is the inverse expected REML information ``1/2 tr(Pt D_r Pt D_s)``.
        """
        cs = np.atleast_2d(np.asarray(contrasts, float))
        k = len(self.psi)
        phi, m, q, t, _ = self._blocks()
        pm = -m  # P_r of Kenward & Roger: derivative of X'V^-1X
        info = np.zeros((k, k))
        for r in range(k):
            for s in range(k):
                info[r, s] = 0.5 * (t[r, s] - 2 * np.trace(phi @ q[r, s])
                                    + np.trace(phi @ pm[r] @ phi @ pm[s]))
        w = np.linalg.inv(info)
        u = sum(w[r, s] * (q[r, s] - pm[r] @ phi @ pm[s]) for r in range(k) for s in range(k))
        phi_a = phi + 2 * phi @ u @ phi
        dfs, vars_ = [], []
        for c in cs:
            c2 = c[None, :]
            theta = c2.T @ np.linalg.solve(c2 @ phi @ c2.T, c2)
            ui = [theta @ phi @ pm[r] @ phi for r in range(k)]
            a1 = sum(w[r, s] * np.trace(ui[r]) * np.trace(ui[s])
                     for r in range(k) for s in range(k))
            a2 = sum(w[r, s] * np.sum(ui[r] * ui[s].T) for r in range(k) for s in range(k))
            dfs.append(_kr_ddf(a1, a2, 1))
            vars_.append(float(c @ phi_a @ c))
        return np.asarray(dfs), np.asarray(vars_), phi_a


def _kr_ddf(a1: float, a2: float, q: int) -> float:
    """Denominator df of Kenward & Roger (1997), eqs. as ``pbkrtest:::Lb_ddf``."""
    b = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2) if a2 != 0 else 0.0
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    v0, v1, v2 = 1 + c1 * b, 1 - c2 * b, 1 - c3 * b
    if abs(v0) < 1e-10:
        v0 = 0.0
    rho = (1 / q) * ((1 - a2 / q) / v1) ** 2 * v0 / v2 if v1 != 0 else np.inf
    if q * rho - 1 == 0:
        return np.inf
    return float(4 + (q + 2) / (q * rho - 1))
