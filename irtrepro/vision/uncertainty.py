"""Segmentation uncertainty of the skin-temperature metrics, by test-time augmentation.

A metric measured through learned masks carries the segmentation's error. Ground truth exists
only for annotated frames, so the uncertainty of every session is estimated the way it can be
on a lab's own recordings: the same networks segment slightly transformed copies of a sample
of frames (mirrored left-right; shifted by one pixel), the masks are transformed back, and the
metrics are measured again under each segmentation. The spread of a metric over these
segmentations is its per-frame segmentation uncertainty; the analyses carry each variant
through the statistics (``analyses/reliability.py``: ICC and limits of agreement per variant,
combined by Rubin's rules).

Test-time augmentation measures how much the masks move when the input is perturbed in ways
the networks should be indifferent to. It does not see a systematic error that every variant
shares, so it bounds the segmentation error from below; on annotated frames
:func:`variant_metrics` with ``truth=`` also returns the error against the ground truth, and
the report compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from irtrepro.errors import OptionError

__all__ = ["AS_SEGMENTED", "DEFAULT_VARIANTS", "GROUND_TRUTH", "METRICS", "VARIANTS", "augment", "sample_frames", "unaugment",
           "variant_masks", "variant_metrics"]

#: Label of the segmentation the report itself uses (no transform).
AS_SEGMENTED = "as segmented"
#: Input transforms: a left-right mirror (the calves swap sides, so the ROI labels are swapped
#: back), and one-pixel shifts down-right and up-left (the networks' encoders downsample by 8,
#: so they are not exactly shift-equivariant; edges are replicated, not wrapped).
VARIANTS = {"flip": None, "shift+1": (1, 1), "shift-1": (-1, -1)}
#: What the report uses: each variant costs one more segmentation of the sampled frames.
DEFAULT_VARIANTS = ("flip", "shift+1")
#: Label of the metrics under ground-truth masks, where a session has them.
GROUND_TRUTH = "ground truth"
#: Study variables whose segmentation spread is measured.
METRICS = ("tsk_mean", "tnv", "tp", "tv", "tp_entropy", "tnv_entropy")


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Content moved by (dy, dx) pixels, the vacated border filled with the edge values."""
    n, h, w = a.shape
    py, px = (abs(dy), 0) if dy > 0 else (0, abs(dy)), (abs(dx), 0) if dx > 0 else (0, abs(dx))
    padded = np.pad(a, ((0, 0), py, px), mode="edge")
    y0, x0 = (0 if dy > 0 else abs(dy)), (0 if dx > 0 else abs(dx))
    return padded[:, y0:y0 + h, x0:x0 + w]


def augment(frames: np.ndarray, variant: str) -> np.ndarray:
    """``frames`` (frame, y, x) under the input transform ``variant`` (:data:`VARIANTS`)."""
    if variant not in VARIANTS:
        raise OptionError(f"segmentation variant {variant!r}: expected one of {list(VARIANTS)}")
    if variant == "flip":
        return np.ascontiguousarray(frames[:, :, ::-1])
    return _shift(frames, *VARIANTS[variant])


def unaugment(roi: np.ndarray, vessels: np.ndarray, variant: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Masks predicted on augmented frames, back in the original frames' geometry.

    The mirror swaps the calves' sides, so left (1) and right (2) calf labels are exchanged.
    """
    if variant == "flip":
        r = np.ascontiguousarray(roi[:, :, ::-1])
        r = np.where(r == 1, 2, np.where(r == 2, 1, r)).astype(roi.dtype)
        return r, np.ascontiguousarray(vessels[:, :, ::-1])
    dy, dx = VARIANTS[variant]
    return _shift(roi, -dy, -dx), _shift(vessels, -dy, -dx)


def variant_masks(frames: np.ndarray, roi_ck, vessel_ck, variant: str, *, models=None,
                  dev=None) -> tuple[np.ndarray, np.ndarray]:
    """ROI and vessel masks of ``frames`` (degC) segmented under ``variant``.

    ``variant`` is a key of :data:`VARIANTS` or :data:`AS_SEGMENTED` (no transform); the
    masks are returned in the geometry of ``frames``.
    """
    from irtrepro.vision.infer import predict_masks

    frames = np.asarray(frames, np.float32)
    if variant == AS_SEGMENTED:
        return predict_masks(frames, roi_ck, vessel_ck, models=models, dev=dev)
    pr, pv = predict_masks(augment(frames, variant), roi_ck, vessel_ck, models=models, dev=dev)
    return unaugment(pr, pv, variant)


def sample_frames(times: np.ndarray, every_s: float) -> np.ndarray:
    """Indices of the first frame of every ``every_s`` seconds of ``times`` (s), in order."""
    if not every_s > 0:
        raise OptionError(f"segmentation uncertainty: every_s must be > 0 s, got {every_s}")
    times = np.asarray(times, float)
    if times.size == 0:
        return np.zeros(0, int)
    slot = np.floor((times - np.nanmin(times)) / every_s)
    _, first = np.unique(slot, return_index=True)
    return np.sort(first)


def variant_metrics(frames: np.ndarray, times: np.ndarray, roi_ck, vessel_ck, *,
                    variants: Sequence[str] = DEFAULT_VARIANTS, clock: np.ndarray | None = None,
                    grid: np.ndarray | None = None, models=None, dev=None,
                    truth: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[xr.Dataset, xr.Dataset | None]:
    """Study metrics of a sample of frames under each segmentation.

    Parameters
    ----------
    frames : ndarray (frame, y, x), degC
        The sampled frames (:func:`sample_frames`), all segmented in one call per variant so
        that every variant sees the same batches.
    times : ndarray (frame,), s
        Their times on the recording's clock.
    roi_ck, vessel_ck : Checkpoint
    variants : sequence of str
        Keys of :data:`VARIANTS`; the untransformed segmentation (:data:`AS_SEGMENTED`) is
        always first.
    clock, grid : ndarray, optional
        Session-clock times (s) of the frames and the Study grid: the metrics are placed on
        the grid as the report places a session's (:func:`~irtrepro.features.extract.
        place_on_clock`); without them, per second of the recording's clock.
    models, dev
        Built networks and device (:func:`~irtrepro.vision.infer.predict_masks`).
    truth : (roi, vessels), optional
        Ground-truth masks of the frames: the metrics under them are returned too.

    Returns
    -------
    metrics : Dataset
        :data:`METRICS` on (segmentation, time[, side]); seconds without a sampled frame are
        NaN.
    true_metrics : Dataset or None
        The same under the ground-truth masks (no ``segmentation`` dimension).
    """
    from irtrepro.features.extract import (
        extract_session,
        per_second,
        place_on_clock,
        to_study_vars,
    )

    frames = np.asarray(frames, np.float32)
    times = np.asarray(times, float)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise OptionError(f"segmentation variants {unknown}: expected some of {list(VARIANTS)}")

    def measure(roi, ves):
        feats = extract_session(frames, roi, ves, time=times, per_frame=True)
        sec = place_on_clock(feats, clock, grid) if clock is not None else per_second(feats, grid)
        sv = to_study_vars(sec)
        return sv[[m for m in METRICS if m in sv]]

    names = [AS_SEGMENTED, *variants]
    parts = [measure(*variant_masks(frames, roi_ck, vessel_ck, v, models=models, dev=dev))
             for v in names]
    out = xr.concat(parts, dim="segmentation").assign_coords(segmentation=names)
    true = measure(*truth) if truth is not None else None
    return out, true
