"""Hybrid classifier on deep features: SVM (RBF) + random forest, weighted soft vote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Ensemble", "fit_ensemble", "WEIGHT_GRID"]

WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Ensemble:
    """``p = weight * p_svm + (1 - weight) * p_rf`` on standardised deep features."""

    scaler: Any
    svm: Any
    rf: Any
    weight: float

    def predict_proba(self, feats: np.ndarray) -> np.ndarray:
        """P(EXH) per row of ``feats`` ``(n, d)``."""
        z = self.scaler.transform(feats)
        return self.weight * self.svm.predict_proba(z)[:, 1] + \
            (1 - self.weight) * self.rf.predict_proba(z)[:, 1]


def _members(z: np.ndarray, y: np.ndarray, seed: int, max_svm: int, n_trees: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    sub = rng.choice(len(z), min(len(z), max_svm), replace=False)
    svm = SVC(kernel="rbf", C=1.0, probability=True, random_state=seed).fit(z[sub], y[sub])
    rf = RandomForestClassifier(n_estimators=n_trees, min_samples_leaf=2, n_jobs=1,
                                random_state=seed).fit(z, y)
    return svm, rf


def _pick_weight(ps: np.ndarray, pr: np.ndarray, y: np.ndarray) -> float:
    """Weight of the grid with the best accuracy (ties: closest to 0.5)."""
    grid = np.asarray(WEIGHT_GRID)
    acc = np.array([((w * ps + (1 - w) * pr > 0.5) == y).mean() for w in grid])
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])


def fit_ensemble(x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
                 y_val: np.ndarray | None = None, *, groups: np.ndarray | None = None,
                 seed: int = 0, max_svm: int = 2000, n_trees: int = 150) -> Ensemble:
    """Fit SVM and random forest on ``(x, y)`` and pick the SVM weight.

    The weight is the one of :data:`WEIGHT_GRID` with the best accuracy (ties: closest to
    0.5) on ``(x_val, y_val)`` when given; otherwise, with ``groups`` (subject of each row,
    >= 2 groups), on leave-one-group-out predictions of members refitted without that group;
    otherwise 0.5. The SVM sees at most ``max_svm`` rows (its fit is quadratic in n).
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    svm, rf = _members(z, y, seed, max_svm, n_trees)
    weight = 0.5
    if x_val is not None and y_val is not None and len(y_val) and len(np.unique(y_val)) == 2:
        zv = scaler.transform(x_val)
        weight = _pick_weight(svm.predict_proba(zv)[:, 1], rf.predict_proba(zv)[:, 1], y_val)
    elif groups is not None and len(np.unique(groups)) >= 2:
        groups = np.asarray(groups)
        ps, pr = np.full(len(y), np.nan), np.full(len(y), np.nan)
        for g in np.unique(groups):
            out = groups == g
            if len(np.unique(y[~out])) < 2:
                continue
            s, r = _members(z[~out], y[~out], seed, max_svm // 2, max(n_trees // 3, 10))
            ps[out], pr[out] = s.predict_proba(z[out])[:, 1], r.predict_proba(z[out])[:, 1]
        ok = np.isfinite(ps)
        if ok.any() and len(np.unique(y[ok])) == 2:
            weight = _pick_weight(ps[ok], pr[ok], y[ok])
    return Ensemble(scaler, svm, rf, weight)
