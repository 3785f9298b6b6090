"""Thermal frames: the frame model, the zarr frame store, calibration and the simple readers.

One import for the documented names of the thermal modules, each with one job:

- :mod:`irtrepro.io.frames`: the frame model (``(frame, y, x)`` degC DataArray with
  ``time(frame)``), its checks and errors, mask classes, encoding constants;
- :mod:`irtrepro.io.zarr_store`: the zarr frame store (:func:`write_frames`,
  :func:`open_frame_store`, :func:`open_frames`, :func:`write_masks`) and its reader ``zarr``;
- :mod:`irtrepro.io.calibration`: :func:`two_point_calibration`;
- :mod:`irtrepro.io.thermal_readers`: readers ``npy``, ``npz``, ``tiff``, ``flir-jpeg``,
  ``flir-csv``.

The vendor sequence readers live in :mod:`irtrepro.io.flir` and :mod:`irtrepro.io.infratec`.
"""

from __future__ import annotations

from irtrepro.io import thermal_readers  # noqa: F401  (registers the simple readers)
from irtrepro.io.calibration import two_point_calibration
from irtrepro.io.frames import (
    ADD_OFFSET,
    FILL_VALUE,
    MASK_CLASSES,
    PLAUSIBLE_RANGE,
    SCALE_FACTOR,
    DamagedFrameWarning,
    FrameError,
    FrameTimeError,
    check_frame_times,
    check_frames,
    frames_dataarray,
    time_segments,
    warn_damaged,
)
from irtrepro.io.zarr_store import (
    open_frame_store,
    open_frames,
    quantisation_bound,
    write_frames,
    write_masks,
)

__all__ = [
    "ADD_OFFSET",
    "FILL_VALUE",
    "MASK_CLASSES",
    "PLAUSIBLE_RANGE",
    "SCALE_FACTOR",
    "DamagedFrameWarning",
    "FrameError",
    "FrameTimeError",
    "check_frame_times",
    "check_frames",
    "time_segments",
    "frames_dataarray",
    "open_frame_store",
    "open_frames",
    "quantisation_bound",
    "two_point_calibration",
    "warn_damaged",
    "write_frames",
    "write_masks",
]
