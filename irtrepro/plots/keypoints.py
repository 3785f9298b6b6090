"""Keypoint figures: the beta sweep and example frames with predicted skeletons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BETA_CAPTION", "keypoint_examples", "plot_beta_sweep"]

BETA_CAPTION = ("Held-out thermal AP of the MobileNetV3-Small student against beta in "
                "beta*L1(latent) + (1-beta)*AWing(heatmaps) (COCO OKS AP, pycocotools); mean "
                "over folds (lines), each fold (faint dots); dashed: the published beta.")


def plot_beta_sweep(beta: pd.DataFrame, *, beta_default: float | None = 0.4) -> Any:
    """Figure of a beta sweep: AP / AP50 / AP75 against beta (fold means and single folds).

    Parameters
    ----------
    beta : pandas.DataFrame
        One row per (beta, fold) with ``AP``, ``AP50``, ``AP75``: the ``beta`` table of
        :func:`irtrepro.keypoints.train.run_experiment`.
    beta_default : float, optional
        Marked by a dashed line (the setting of the other rows).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    m = beta.groupby("beta")[["AP", "AP50", "AP75"]].mean().reset_index()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for col, c in (("AP", "C0"), ("AP50", "C1"), ("AP75", "C2")):
        ax.plot(beta["beta"], beta[col], ".", color=c, alpha=0.3, ms=5)
        ax.plot(m["beta"], m[col], "o-", color=c, label=col)
    if beta_default is not None:
        ax.axvline(beta_default, color="k", ls="--", lw=0.8)
    ax.set_xlabel("beta, weight of the latent L1 term (1)")
    ax.set_ylabel("held-out thermal AP (1)")
    ax.set_xlim(-0.05, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def keypoint_examples(frames: np.ndarray, predicted: Sequence[np.ndarray | None],
                      truth: np.ndarray, skeleton: Sequence[tuple[int, int]], *,
                      n: int = 6) -> Any:
    """Thermal frames with the predicted skeleton (white) and the true keypoints (cyan +).

    Parameters
    ----------
    frames : ndarray (frame, y, x)
    predicted : sequence of ndarray (17, 3) or None
        Keypoints (x, y, score; pixels) of the person found in each frame, None where none.
    truth : ndarray (frame, 17, 3)
        True keypoints (x, y, visibility; pixels); visibility 0 is not drawn.
    skeleton : sequence of (int, int)
        Limbs as 1-based keypoint pairs (COCO).
    n : int
        Frames shown, at most.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = min(n, len(predicted))
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.2))
    for ax, fr, k, g in zip(np.atleast_1d(axes), frames, predicted, truth, strict=False):
        ax.imshow(fr, cmap="inferno")
        lab = g[:, 2] > 0
        ax.plot(g[lab, 0], g[lab, 1], "c+", ms=4)
        if k is not None:
            for a, bb in skeleton:
                ax.plot(k[[a - 1, bb - 1], 0], k[[a - 1, bb - 1], 1], "w-", lw=0.8)
        ax.axis("off")
    fig.tight_layout()
    return fig
