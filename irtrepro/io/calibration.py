"""Calibration of thermal frames against reference sources in view (two-point correction)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from irtrepro.errors import OptionError
from irtrepro.io.frames import FrameError

__all__ = ["two_point_calibration"]



def _patch_mean(frames: xr.DataArray, patch, name: str) -> xr.DataArray:
    ny, nx = frames.sizes["y"], frames.sizes["x"]
    if isinstance(patch, tuple) and all(isinstance(p, slice) for p in patch):
        sel = frames.isel(y=patch[0], x=patch[1])
        if sel.size == 0:
            raise OptionError(f"{name}={patch!r} selects no pixel of a {ny}x{nx} frame")
        return sel.mean(("y", "x"))
    m = np.asarray(patch, dtype=bool)
    if m.shape != (ny, nx):
        raise OptionError(f"{name}: mask shape {m.shape}; expected the frame shape {(ny, nx)}")
    if not m.any():
        raise OptionError(f"{name}: mask selects no pixel")
    return frames.where(xr.DataArray(m, dims=("y", "x"))).mean(("y", "x"))


def two_point_calibration(frames: xr.DataArray, patch_a, patch_b, t_a: float,
                          t_b: float) -> xr.DataArray:
    """Correct each frame linearly so two reference patches read their known temperatures.

    For every frame, with ``m_a``, ``m_b`` the mean readings of the patches,
    ``T' = t_a + (T - m_a) * (t_b - t_a) / (m_b - m_a)``.

    Parameters
    ----------
    frames : DataArray (frame, y, x), degC
        Lazy arrays stay lazy.
    patch_a, patch_b : (slice, slice) or bool array (y, x)
        Pixels of the two reference sources (e.g. blackbodies) in view.
    t_a, t_b : float
        Their true temperatures, degC; must differ.

    Returns
    -------
    DataArray
        Corrected frames (float32), with per-frame ``calibration_gain`` and
        ``calibration_offset`` coordinates.

    Raises
    ------
    FrameError
        A frame where both patches read the same temperature (checked when computed).
    """
    if t_a == t_b:
        raise OptionError(f"t_a == t_b == {t_a}; the reference temperatures must differ")
    m_a = _patch_mean(frames, patch_a, "patch_a").astype(np.float64)
    m_b = _patch_mean(frames, patch_b, "patch_b").astype(np.float64)
    diff = m_b - m_a
    if not frames.chunks:  # eager: check now and name the frame
        d = np.asarray(diff.values)
        bad = ~(np.abs(d) > 1e-9)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            src = frames.attrs.get("source", "<frames>")
            raise FrameError(f"{src}: frame {i}: the two calibration patches read the same "
                             f"temperature ({float(m_a[i]):.3f} degC); cannot calibrate", src, i)
    gain = (t_b - t_a) / diff
    offset = t_a - m_a * gain
    out = (frames * gain + offset).astype(np.float32)
    out.attrs = dict(frames.attrs)
    out.attrs["calibration"] = f"two-point: patch_a={t_a} degC, patch_b={t_b} degC"
    return out.assign_coords(calibration_gain=gain.astype(np.float32),
                             calibration_offset=offset.astype(np.float32))
