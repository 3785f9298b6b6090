"""Training data: batches, augmentation (in degC, before normalisation)."""

from __future__ import annotations

import hashlib

import numpy as np

from irtrepro.errors import ModelError


def data_hash(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray, extra: str = "") -> str:
    """sha256 of training arrays (shape, dtype and bytes) plus a settings string."""
    h = hashlib.sha256()
    for a in (frames, roi, vessels):
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    h.update(extra.encode())
    return h.hexdigest()


def check_training_arrays(frames, roi, vessels) -> None:
    """Shapes and label values of training data; names the first bad frame."""
    if frames.ndim != 3 or roi.shape != frames.shape or vessels.shape != frames.shape:
        raise ModelError(f"training frames {frames.shape}, roi {roi.shape}, vessels "
                         f"{vessels.shape}: expected three (frame, y, x) arrays of one shape")
    for name, m in (("roi", roi), ("vessels", vessels)):
        bad = (m.reshape(len(m), -1) > 2).any(1)
        if bad.any():
            raise ModelError(f"training {name} has labels > 2 at frame {int(np.argmax(bad))}")
    nonfinite = ~np.isfinite(frames.reshape(len(frames), -1)).all(1)
    if nonfinite.any():
        raise ModelError(f"training frame {int(np.argmax(nonfinite))} has NaN/inf pixels")


def sample_batch(rng: np.random.Generator, frames: np.ndarray, roi: np.ndarray,
                 vessels: np.ndarray, idx: np.ndarray, batch: int, crop: int | None,
                 *, vessel_focus: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``batch`` frames from ``idx``; with ``crop``, square windows centred on calf pixels.

    With ``vessel_focus`` > 0, that fraction of the windows is centred on a vessel pixel
    instead (perforators cover ~1 % of the calf; random windows rarely hold one).
    """
    pick = rng.choice(idx, batch)
    if crop is None:
        return frames[pick], roi[pick], vessels[pick]
    n, h, w = frames.shape
    ch, cw = min(crop, h), min(crop, w)
    out = np.empty((batch, ch, cw), np.float32)
    r_out = np.empty((batch, ch, cw), np.uint8)
    v_out = np.empty((batch, ch, cw), np.uint8)
    for b, k in enumerate(pick):   # one small copy per sample; the batch is tiny
        ys, xs = np.nonzero(roi[k])
        if vessel_focus and rng.random() < vessel_focus:
            vy, vx = np.nonzero((vessels[k] > 0) & (roi[k] > 0))
            if vy.size:
                ys, xs = vy, vx
        if ys.size:
            j = rng.integers(ys.size)
            cy, cx = ys[j], xs[j]
        else:
            cy, cx = rng.integers(h), rng.integers(w)
        y0 = int(np.clip(cy - ch // 2, 0, h - ch))
        x0 = int(np.clip(cx - cw // 2, 0, w - cw))
        out[b] = frames[k, y0:y0 + ch, x0:x0 + cw]
        r_out[b] = roi[k, y0:y0 + ch, x0:x0 + cw]
        v_out[b] = vessels[k, y0:y0 + ch, x0:x0 + cw]
    return out, r_out, v_out


def augment(rng: np.random.Generator, frames, roi, vessels, *, strength: float = 1.0):
    """Augment a torch batch (B, H, W) in degC; returns new (frames, roi, vessels) tensors.

    - horizontal flip (p=0.5) that swaps the left/right calf labels (roi 1 <-> 2);
    - rotation (+-6 deg) and scale (0.9-1.1) with a small shift, nearest for labels;
    - ambient offset (-3..+3 degC) on pixels outside the calves;
    - contrast (0.8-1.25 about the frame median);
    - sensor noise (SD 0-0.08 degC).
    """
    import torch
    import torch.nn.functional as F

    b = frames.shape[0]
    f = frames.clone()
    r = roi.clone()
    v = vessels.clone()
    flip = torch.from_numpy(rng.random(b) < 0.5)
    if flip.any():
        f[flip] = f[flip].flip(-1)
        rf = r[flip].flip(-1)
        r[flip] = torch.where(rf == 1, 2, torch.where(rf == 2, 1, rf)).to(r.dtype)
        v[flip] = v[flip].flip(-1)
    ang = np.deg2rad(rng.uniform(-6, 6, b) * strength)
    sc = 1 + rng.uniform(-0.1, 0.1, b) * strength
    sh = rng.uniform(-0.05, 0.05, (b, 2)) * strength
    theta = np.zeros((b, 2, 3), np.float32)
    theta[:, 0, 0] = np.cos(ang) / sc
    theta[:, 0, 1] = -np.sin(ang) / sc
    theta[:, 1, 0] = np.sin(ang) / sc
    theta[:, 1, 1] = np.cos(ang) / sc
    theta[:, :, 2] = sh
    grid = F.affine_grid(torch.from_numpy(theta), (b, 1, *f.shape[1:]), align_corners=False)
    fill = f.flatten(1).median(1).values[:, None, None]
    f = F.grid_sample((f - fill)[:, None], grid, mode="bilinear", padding_mode="border",
                      align_corners=False)[:, 0] + fill
    lab = torch.stack([r, v], 1).float()
    lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    r, v = lab[:, 0].round().to(torch.long), lab[:, 1].round().to(torch.long)
    amb = torch.from_numpy(rng.uniform(-3, 3, b).astype(np.float32) * strength)[:, None, None]
    f = torch.where(r == 0, f + amb, f)
    med = f.flatten(1).median(1).values[:, None, None]
    con = torch.from_numpy(rng.uniform(0.8, 1.25, b).astype(np.float32))[:, None, None]
    f = med + (f - med) * con
    sd = torch.from_numpy(rng.uniform(0, 0.08, b).astype(np.float32) * strength)[:, None, None]
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    f = f + sd * torch.randn(f.shape, generator=gen)
    return f, r, v


#: Augmentations of :func:`augment_thermal` and why each fits a thermogram (the model card
#: records this text).
THERMAL_AUGMENTATIONS = {
    "flip": "left<->right flip (p=0.5) with left/right calf labels swapped: a runner filmed "
            "from behind is mirror-symmetric, the label names follow the anatomy",
    "affine": "rotation +-5 deg, scale 0.95-1.05, shift +-3 %: camera height, distance and "
              "stance vary between sessions; pixels brought in from outside the crop are "
              "marked ignore",
    "offset": "whole-frame offset -1..+1 degC: reflected/ambient temperature error of a "
              "radiometric camera",
    "gain": "contrast 0.95-1.05 about the crop median: an emissivity error of about +-5 % "
            "scales temperature differences against the reflected temperature",
    "noise": "white noise of SD = NETD (degC), the camera's noise-equivalent temperature "
             "difference",
}


def augment_thermal(rng: np.random.Generator, frames, roi, vessels, ignore, *,
                    netd: float = 0.05, strength: float = 1.0):
    """Augment a torch batch ``(B, H, W)`` in degC with labels and an ignore mask.

    See :data:`THERMAL_AUGMENTATIONS` for what is applied and why.

    Parameters
    ----------
    rng : numpy.random.Generator
    frames : torch.Tensor (B, H, W), degC
    roi, vessels, ignore : torch.Tensor (B, H, W), integer
    netd : float
        Camera NETD, degC: the SD of the added noise.
    strength : float
        Scales the affine, offset and gain ranges (0: flip and noise only).

    Returns
    -------
    frames, roi, vessels, ignore : torch.Tensor
        ``ignore`` is 1 also where the affine brought in pixels from outside the crop.
    """
    import torch
    import torch.nn.functional as F

    b = frames.shape[0]
    f, r, v, ig = frames.clone(), roi.clone(), vessels.clone(), ignore.clone()
    flip = torch.from_numpy(rng.random(b) < 0.5)
    if flip.any():
        f[flip] = f[flip].flip(-1)
        rf = r[flip].flip(-1)
        r[flip] = torch.where(rf == 1, 2, torch.where(rf == 2, 1, rf)).to(r.dtype)
        v[flip] = v[flip].flip(-1)
        ig[flip] = ig[flip].flip(-1)
    if strength > 0:
        ang = np.deg2rad(rng.uniform(-5, 5, b) * strength)
        sc = 1 + rng.uniform(-0.05, 0.05, b) * strength
        sh = rng.uniform(-0.03, 0.03, (b, 2)) * strength
        theta = np.zeros((b, 2, 3), np.float32)
        theta[:, 0, 0] = np.cos(ang) / sc
        theta[:, 0, 1] = -np.sin(ang) / sc
        theta[:, 1, 0] = np.sin(ang) / sc
        theta[:, 1, 1] = np.cos(ang) / sc
        theta[:, :, 2] = sh
        grid = F.affine_grid(torch.from_numpy(theta), (b, 1, *f.shape[1:]), align_corners=False)
        fill = f.flatten(1).median(1).values[:, None, None]
        f = F.grid_sample((f - fill)[:, None], grid, mode="bilinear", padding_mode="border",
                          align_corners=False)[:, 0] + fill
        inside = torch.ones_like(f)
        lab = torch.stack([r.float(), v.float(), ig.float(), inside], 1)
        lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros",
                            align_corners=False).round().to(torch.long)
        r, v = lab[:, 0], lab[:, 1]
        ig = torch.where(lab[:, 3] == 0, 1, lab[:, 2])
        off = rng.uniform(-1, 1, b) * strength
        gain = 1 + rng.uniform(-0.05, 0.05, b) * strength
        med = f.flatten(1).median(1).values[:, None, None]
        f = (med + (f - med) * torch.from_numpy(gain.astype(np.float32))[:, None, None]
             + torch.from_numpy(off.astype(np.float32))[:, None, None])
    if netd > 0:
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        f = f + float(netd) * torch.randn(f.shape, generator=gen)
    return f, r, v, ig
