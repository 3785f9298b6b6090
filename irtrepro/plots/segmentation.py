"""Segmentation figures: a frame with its ground-truth and predicted masks."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["segmentation_example"]


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
