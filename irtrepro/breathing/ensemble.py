"""Hybrid classifier on deep features: SVM (RBF) + random forest, weighted soft vote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Ensemble", "fit_ensemble"]


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


def fit_ensemble(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
                 seed: int = 0, max_svm: int = 2000) -> Ensemble:
    """Fit SVM and random forest on ``(x, y)`` and pick the weight on ``(x_val, y_val)``.

    The weight is the one of {0, 0.25, 0.5, 0.75, 1} with the best validation accuracy (ties:
    closest to 0.5); 0.5 when no validation data are given. The SVM sees at most ``max_svm``
    rows (its fit is quadratic in n).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    sub = rng.choice(len(z), min(len(z), max_svm), replace=False)
    svm = SVC(kernel="rbf", C=1.0, probability=True, random_state=seed).fit(z[sub], y[sub])
    rf = RandomForestClassifier(n_estimators=150, min_samples_leaf=2, n_jobs=1,
                                random_state=seed).fit(z, y)
    weight = 0.5
    if len(y_val) and len(np.unique(y_val)) == 2:
        zv = scaler.transform(x_val)
        ps, pr = svm.predict_proba(zv)[:, 1], rf.predict_proba(zv)[:, 1]
        grid = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
        acc = np.array([((w * ps + (1 - w) * pr > 0.5) == y_val).mean() for w in grid])
        best = np.flatnonzero(acc >= acc.max() - 1e-12)
        weight = float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])
    return Ensemble(scaler, svm, rf, weight)
