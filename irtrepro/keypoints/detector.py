"""Person boxes in thermal frames (warm-blob detector) and crops for the keypoint models.

The detector thresholds each frame at ``background + delta_t`` (the background is the frame's
median, robust because a person covers well under half of the frame), cleans the mask with a
binary opening (removes single hot pixels: sensor noise) and closing (joins limbs split by the
cooler clothing), labels connected components and keeps those of at least ``min_area`` pixels
whose height is at least ``min_height`` pixels. One box per component: several people give
several boxes, a frame with no person gives none (never an invented box).

Crops follow the top-down pose convention (ViTPose/SimpleBaseline): the box is centred,
enlarged by ``padding`` (1.25) and widened or heightened to the crop's aspect ratio
(rows:columns = 4:3 for 256x192), then resampled bilinearly to ``crop_hw``. Coordinates use pixel
centres at integers; :func:`crop_to_image` maps crop or heatmap coordinates back to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irtrepro.errors import OptionError


@dataclass(frozen=True)
class Detection:
    """A person box in one frame: ``x, y, w, h`` (thermal px), blob area (px) and peak (degC)."""

    box: tuple[float, float, float, float]
    area: int
    peak: float


def detect_people(frame: np.ndarray, *, delta_t: float = 3.0, min_area: int = 40,
                  min_height: int = 12) -> list[Detection]:
    """Detect warm people in one thermal frame.

    Parameters
    ----------
    frame : ndarray (H, W)
        Temperatures, degC. NaN pixels count as background.
    delta_t : float
        Kelvin above the frame median for a pixel to count as warm.
    min_area, min_height : int
        Smallest blob (pixels) and blob height (rows) kept as a person.

    Returns
    -------
    list of Detection
        Largest first; empty when nobody is there.
    """
    from scipy import ndimage

    frame = np.asarray(frame, float)
    if frame.ndim != 2:
        raise OptionError(f"frame has shape {frame.shape}; expected (rows, columns) in degC")
    if not np.isfinite(frame).any():
        return []
    bg = np.nanmedian(frame)
    warm = np.nan_to_num(frame, nan=bg) > bg + delta_t
    warm = ndimage.binary_opening(warm, structure=np.ones((2, 2)))
    warm = ndimage.binary_closing(warm, structure=np.ones((3, 3)))
    lab, n = ndimage.label(warm)
    out = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        blob = lab[sl] == i
        area = int(blob.sum())
        hgt = sl[0].stop - sl[0].start
        if area < min_area or hgt < min_height:
            continue
        box = (sl[1].start - 0.5, sl[0].start - 0.5, float(sl[1].stop - sl[1].start), float(hgt))
        out.append(Detection(box=box, area=area, peak=float(np.nanmax(frame[sl][blob]))))
    return sorted(out, key=lambda d: -d.area)


def box_to_crop(box, crop_hw: tuple[int, int], *, padding: float = 1.25) -> np.ndarray:
    """Crop window ``(cx, cy, w, h)`` for ``box = (x, y, w, h)`` with the crop's aspect ratio.

    Works on arrays of boxes ``(..., 4)``.
    """
    b = np.asarray(box, float)
    cx, cy = b[..., 0] + b[..., 2] / 2, b[..., 1] + b[..., 3] / 2
    aspect = crop_hw[1] / crop_hw[0]  # width / height of the crop
    w, h = b[..., 2], b[..., 3]
    w2 = np.maximum(w, h * aspect) * padding
    h2 = np.maximum(h, w / aspect) * padding
    return np.stack([cx, cy, w2, h2], -1)


def crop_to_image(xy: np.ndarray, window: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """Map coordinates on a crop/heatmap grid ``grid_hw`` to frame pixels.

    ``xy``: (..., K, 2) in grid pixels (centres at integers); ``window``: (..., 4) ``cx, cy, w,
    h`` from :func:`box_to_crop`.
    """
    win = np.asarray(window, float)[..., None, :]
    gh, gw = grid_hw
    x = win[..., 0] - win[..., 2] / 2 + (xy[..., 0] + 0.5) * win[..., 2] / gw
    y = win[..., 1] - win[..., 3] / 2 + (xy[..., 1] + 0.5) * win[..., 3] / gh
    return np.stack([x, y], -1)


def image_to_crop(xy: np.ndarray, window: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`crop_to_image`."""
    win = np.asarray(window, float)[..., None, :]
    gh, gw = grid_hw
    u = (xy[..., 0] - (win[..., 0] - win[..., 2] / 2)) * gw / win[..., 2] - 0.5
    v = (xy[..., 1] - (win[..., 1] - win[..., 3] / 2)) * gh / win[..., 3] - 0.5
    return np.stack([u, v], -1)


def crop_images(images: np.ndarray, windows: np.ndarray, crop_hw: tuple[int, int], *,
                scale: float = 1.0, fill: str = "border") -> np.ndarray:
    """Bilinear crops of a batch of images.

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, H, W, C)
        Frames; ``windows`` are in the coordinates of a frame ``scale`` times smaller (thermal
        windows on RGB frames: ``scale = rgb_scale``).
    windows : ndarray (N, 4)
        ``cx, cy, w, h`` from :func:`box_to_crop`.
    crop_hw : (int, int)
        Output rows, columns.

    Returns
    -------
    ndarray (N, C, h, w) float32
    """
    import torch
    import torch.nn.functional as F

    im = np.asarray(images, np.float32)
    if im.ndim == 3:
        im = im[..., None]
    n, H, W, _ = im.shape
    win = np.asarray(windows, float).copy()
    win[:, 0] = (win[:, 0] + 0.5) * scale - 0.5
    win[:, 1] = (win[:, 1] + 0.5) * scale - 0.5
    win[:, 2:] *= scale
    ch, cw = crop_hw
    u = (np.arange(cw) + 0.5) / cw - 0.5
    v = (np.arange(ch) + 0.5) / ch - 0.5
    x = win[:, 0, None] + u[None] * win[:, 2, None]  # (N, cw) frame px
    y = win[:, 1, None] + v[None] * win[:, 3, None]
    gx = (2 * x + 1) / W - 1  # grid_sample, align_corners=False
    gy = (2 * y + 1) / H - 1
    grid = np.stack(np.broadcast_arrays(gx[:, None, :], gy[:, :, None]), -1)
    t = torch.from_numpy(np.ascontiguousarray(im.transpose(0, 3, 1, 2)))
    out = F.grid_sample(t, torch.from_numpy(grid.astype(np.float32)), mode="bilinear",
                        padding_mode="border" if fill == "border" else "zeros",
                        align_corners=False)
    return out.numpy()
