"""The COCO person-keypoint vocabulary: names, skeleton, mirror pairs and OKS sigmas.

Everything that reads, writes, renders or scores keypoints uses this order, so an array of
shape ``(..., 17, 3)`` means the same joints everywhere (``x, y`` px and the COCO visibility
``v``: 2 visible, 1 labelled but hidden, 0 not labelled).
"""

from __future__ import annotations

import numpy as np

__all__ = ["COCO_SIGMAS", "COCO_SKELETON", "FLIP_PAIRS", "KEYPOINT_NAMES", "N_KEYPOINTS",
           "flip_permutation"]

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
N_KEYPOINTS = len(KEYPOINT_NAMES)
#: COCO skeleton, 1-based keypoint indices (as in the COCO ``categories`` entry).
COCO_SKELETON: list[list[int]] = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]
#: Index pairs that swap under a left/right mirror.
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12),
                                           (13, 14), (15, 16))
#: COCO keypoint sigmas (dimensionless, per keypoint) in the order of :data:`KEYPOINT_NAMES`.
COCO_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
                        1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0


def flip_permutation() -> np.ndarray:
    """Keypoint order after a left/right mirror (COCO: left and right joints swap).

    Returns
    -------
    ndarray (17,) int
        ``perm[i]`` is the index whose keypoint lands on ``i`` in the mirrored image.
    """
    perm = np.arange(N_KEYPOINTS)
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm
