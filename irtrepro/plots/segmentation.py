"""Segmentation figures: a frame with its masks; scores per subject and under perturbations."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["segmentation_example", "evaluation_figure", "robustness_figure"]


def segmentation_example(frame: np.ndarray, roi_true: np.ndarray, vessels_true: np.ndarray,
                         roi_pred: np.ndarray, vessels_pred: np.ndarray, *,
                         title: str = "frame") -> Any:
    """A thermal frame beside its ground-truth and its predicted calf and vessel masks.

    Parameters
    ----------
    frame : ndarray (y, x)
        Temperatures (degC).
    roi_true, vessels_true, roi_pred, vessels_pred : ndarray (y, x) of int
        Calf (0, 1, 2) and vessel (0, 1, 2) labels; drawn as one colour per (calf, vessel)
        pair.
    title : str
        Title of the frame's panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(10, 3.2))
    im = ax[0].imshow(frame, cmap="inferno")
    fig.colorbar(im, ax=ax[0], label="temperature (degC)")
    ax[0].set_title(title)
    ax[1].imshow(roi_true * 3 + vessels_true, cmap="tab10", vmin=0, vmax=9,
                 interpolation="nearest")
    ax[1].set_title("ground truth (roi, vessels)")
    ax[2].imshow(roi_pred * 3 + vessels_pred, cmap="tab10", vmin=0, vmax=9,
                 interpolation="nearest")
    ax[2].set_title("predicted")
    for a in ax:
        a.set_xlabel("x (pixel)")
        a.set_ylabel("y (pixel)")
    return fig


_CLASS_ORDER = ("left_calf", "right_calf", "vein", "perforator")


def robustness_figure(robustness, *, ax=None):
    """Dice per class against each perturbation's level (one marker per level).

    Parameters
    ----------
    robustness : DataFrame
        :func:`irtrepro.vision.evaluate.robustness_table`.
    """
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
    kinds = [(k, lv) for k, lv in robustness[["perturbation", "level"]]
             .drop_duplicates().itertuples(index=False)]
    ticks = [("none" if k == "none" else f"{k}\n{lv:g}") for k, lv in kinds]
    x = np.arange(len(kinds))
    for name in _CLASS_ORDER:
        mine = robustness[robustness["name"] == name]
        if mine.empty:
            continue
        y = [mine[(mine["perturbation"] == k) & (mine["level"] == lv)]["dice"].mean()
             for k, lv in kinds]
        ax.plot(x, y, "o-", label=name, ms=4, lw=1)
    ax.set_xticks(x, ticks, fontsize=6, rotation=60, ha="right")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncols=4, loc="lower left")
    ax.set_title("Dice under input perturbations", fontsize=9)
    return fig if fig is not None else ax.figure


def evaluation_figure(by_subject, robustness=None):
    """Dice per class (one dot per subject, bar: pooled mean) and, if given, robustness.

    Parameters
    ----------
    by_subject : DataFrame
        ``subject``, ``name``, ``dice`` (:class:`irtrepro.vision.scoring.ModelEvaluation`).
    robustness : DataFrame, optional
    """
    import matplotlib.pyplot as plt

    ncol = 2 if robustness is not None else 1
    fig, axes = plt.subplots(1, ncol, figsize=(4 + 6 * (ncol - 1), 3.4),
                             constrained_layout=True, squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2][:ncol]})
    ax = axes[0, 0]
    names = [n for n in _CLASS_ORDER if n in set(by_subject["name"])]
    for j, name in enumerate(names):
        d = by_subject[by_subject["name"] == name]["dice"].to_numpy(float)
        ax.bar(j, np.nanmean(d) if np.isfinite(d).any() else 0, color="0.85", width=0.6)
        jitter = np.linspace(-0.15, 0.15, len(d)) if len(d) > 1 else np.zeros(1)
        ax.plot(j + jitter, d, "o", color="k", ms=3)
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=20)
    ax.set_ylabel("Dice (one dot per subject)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Pixel Dice on annotated frames", fontsize=9)
    if robustness is not None:
        robustness_figure(robustness, ax=axes[0, 1])
    return fig
