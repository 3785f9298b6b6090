"""Hybrid classifier on deep features: SVM (RBF) + random forest, weighted soft vote.

Features reach the SVM/RF standardised either with the training set's pooled mean and SD
(``scaling="pooled"``) or with the mean and SD of their own group (``scaling="group"``: a
subject in training, a recording at prediction; :func:`standardise_groups`). The second removes
a per-face shift of the features that the pooled scaling leaves as a per-subject decision
offset (docs/breathing.md, "Feature scaling per recording").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Ensemble", "fit_ensemble", "standardise_groups", "WEIGHT_GRID", "MIN_GROUP"]

WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
# fewest images a group needs for its own feature statistics: 100 frames are 12.5 s at 8 fps,
# several breaths of both phases (validation: 240-frame clips score as whole subjects do)
MIN_GROUP = 100


def standardise_groups(feats: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Centre each group's rows on the group mean and divide by the group SD, per feature.

    Parameters
    ----------
    feats : numpy.ndarray
        ``(n, d)`` deep features.
    groups : numpy.ndarray
        ``(n,)`` group label per row (subject or recording).

    Notes
    -----
    A group should be a recording of several breaths, so that both phases are in it in their
    usual proportion: a group of one phase's images only is standardised towards the middle.
    """
    feats = np.asarray(feats, dtype=np.float64)
    groups = np.asarray(groups)
    out = np.empty_like(feats)
    for g in np.unique(groups):
        m = groups == g
        sd = feats[m].std(0)
        # a feature constant within the group carries nothing there: 0 after centring
        out[m] = (feats[m] - feats[m].mean(0)) / np.where(sd > 1e-12, sd, 1.0)
    return out


@dataclass
class Ensemble:
    """``p = weight * p_svm + (1 - weight) * p_rf`` on standardised deep features.

    ``scaling`` is ``"pooled"`` (the training set's mean and SD) or ``"group"`` (each group's
    own, :func:`standardise_groups`, before the pooled scaler).
    """

    scaler: Any
    svm: Any
    rf: Any
    weight: float
    scaling: str = "pooled"

    def predict_proba(self, feats: np.ndarray, groups: np.ndarray | None = None
                      ) -> np.ndarray:
        """P(EXH) per row of ``feats`` ``(n, d)``; ``groups`` (default: one group) are used
        by ``scaling="group"`` only."""
        if self.scaling == "group":
            feats = standardise_groups(feats, np.zeros(len(feats), int) if groups is None
                                       else groups)
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
                 seed: int = 0, max_svm: int = 2000, n_trees: int = 150,
                 scaling: str = "pooled") -> Ensemble:
    """Fit SVM and random forest on ``(x, y)`` and pick the SVM weight.

    The weight is the one of :data:`WEIGHT_GRID` with the best accuracy (ties: closest to
    0.5) on ``(x_val, y_val)`` when given; otherwise, with ``groups`` (subject of each row,
    >= 2 groups), on leave-one-group-out predictions of members refitted without that group;
    otherwise 0.5. The SVM sees at most ``max_svm`` rows (its fit is quadratic in n).

    With ``scaling="group"`` the rows of ``x`` (and ``x_val``) must already be standardised
    per subject (:func:`standardise_groups`, on each subject's natural frames, before any
    class balancing); the returned ensemble standardises new features per group.
    """
    from sklearn.preprocessing import StandardScaler

    from irtrepro.errors import check_option

    check_option("scaling", scaling, ("pooled", "group"))
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
    return Ensemble(scaler, svm, rf, weight, scaling)
