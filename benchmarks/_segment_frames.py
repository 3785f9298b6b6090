"""Cheap structured thermograms for the segmentation benchmark: two warm calves on a cool wall.

Frame ``k`` depends on ``k`` alone (its own random generator), so a recording of any length is
made chunk by chunk (a lazy dask array) and never held in memory whole.
"""

from __future__ import annotations

import numpy as np


def calf_frames(k0: int, k1: int, h: int, w: int, *, veins: bool = False) -> tuple:
    """Frames ``k0..k1`` (degC float32) and their calf labels (0 wall, 1 left, 2 right).

    With ``veins``, also the vessel labels (1 where a vein stripe is, else 0).

    Each calf is an upright ellipse (~12 % of the frame each) at ~33 degC swaying by a few
    pixels, with two warmer vein-like stripes; the wall is ~24 degC with a vertical gradient;
    Gaussian noise 0.05 degC.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= h
    xx /= w
    frames = np.empty((k1 - k0, h, w), np.float32)
    labels = np.zeros((k1 - k0, h, w), np.uint8)
    vessels = np.zeros((k1 - k0, h, w), np.uint8)
    for i, k in enumerate(range(k0, k1)):
        rng = np.random.default_rng(k)
        sway = 0.02 * np.sin(2 * np.pi * k / 40)
        f = 24 + 1.5 * yy + rng.normal(0, 0.05, (h, w)).astype(np.float32)
        for side, cx in ((1, 0.33 + sway), (2, 0.67 + sway)):
            m = ((xx - cx) / 0.11) ** 2 + ((yy - 0.55) / 0.36) ** 2 < 1
            f[m] = 33 + 0.8 * (yy[m] - 0.55)
            vein = m & (np.abs(xx - cx - 0.03 * np.sin(9 * yy)) < 0.006)
            f[vein] += 0.6
            labels[i][m] = side
            vessels[i][vein] = 1
        frames[i] = f
    return (frames, labels, vessels) if veins else (frames, labels)


def lazy_truth(n: int, h: int, w: int, chunk: int = 64):
    """Dask-backed ``(frame, y, x)`` calf and vein labels of :func:`lazy_frames`' frames."""
    import dask
    import dask.array as dsa

    def part(i):
        return [dsa.from_delayed(
            dask.delayed(lambda a, b: calf_frames(a, b, h, w, veins=True)[i])(a, min(a + chunk, n)),
            (min(a + chunk, n) - a, h, w), np.uint8) for a in range(0, n, chunk)]

    return dsa.concatenate(part(1)), dsa.concatenate(part(2))


def lazy_frames(n: int, h: int, w: int, chunk: int = 64):
    """A dask-backed ``(frame, y, x)`` DataArray of :func:`calf_frames` with ``time`` (30 Hz)."""
    import dask
    import dask.array as dsa
    import xarray as xr

    blocks = [dsa.from_delayed(dask.delayed(lambda a, b: calf_frames(a, b, h, w)[0])(a, min(a + chunk, n)),
                               (min(a + chunk, n) - a, h, w), np.float32)
              for a in range(0, n, chunk)]
    data = dsa.concatenate(blocks) if blocks else dsa.zeros((0, h, w), np.float32)
    return xr.DataArray(data, dims=("frame", "y", "x"),
                        coords={"time": ("frame", np.arange(n) / 30.0, {"units": "s"})},
                        attrs={"source": f"<benchmark calves {n}x{h}x{w}>"})


def tiled_frames(source, n: int, chunk: int = 64):
    """``n`` frames cycling through a real recording's frames (lazy; ``time`` at 30 Hz).

    Parameters
    ----------
    source : path
        A recording :func:`irtrepro.io.recording.open_recording` opens (zarr store, SEQ, ...);
        its frames are read once and repeated, so the segmented scene is a thermogram of calves.
    """
    import dask
    import dask.array as dsa
    import xarray as xr

    from irtrepro.io.recording import open_recording

    src = np.asarray(open_recording(source).values, np.float32)
    m, h, w = src.shape

    def block(a: int, b: int) -> np.ndarray:
        return src[np.arange(a, b) % m]

    blocks = [dsa.from_delayed(dask.delayed(block)(a, min(a + chunk, n)),
                               (min(a + chunk, n) - a, h, w), np.float32)
              for a in range(0, n, chunk)]
    return xr.DataArray(dsa.concatenate(blocks), dims=("frame", "y", "x"),
                        coords={"time": ("frame", np.arange(n) / 30.0, {"units": "s"})},
                        attrs={"source": f"<{source} tiled to {n} frames>"})
