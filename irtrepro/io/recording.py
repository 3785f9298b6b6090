"""Open any thermal recording lazily: a zarr frame store or a camera file the readers know."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

__all__ = ["open_recording"]


def open_recording(path: str | os.PathLike, fmt: str | None = None) -> xr.DataArray:
    """The frames of a recording as a lazy ``(frame, y, x)`` DataArray in degC with ``time``.

    Parameters
    ----------
    path : path
        A zarr frame store (:func:`irtrepro.io.thermal.write_frames`) or any file or folder a
        thermal reader of :mod:`irtrepro.io` opens (FLIR SEQ/CSQ/JPEG, InfraTec IRB, ...).
    fmt : str, optional
        Reader format (default: detected from the file's magic bytes).

    Notes
    -----
    Camera files are opened one frame per chunk, so that reading a few frames of a long
    recording (annotated frames, a training batch) decodes only those frames.
    """
    from irtrepro.io import registry
    from irtrepro.io.zarr_store import _is_store, open_frame_store

    path = Path(path)
    if path.is_dir() and _is_store(path) and fmt in (None, "zarr"):
        return open_frame_store(path)["frames"]
    fmt = fmt or registry.detect(path, "thermal")
    options = {}
    if "chunk_frames" in (registry.get_reader("thermal", fmt).options or ()):
        options["chunk_frames"] = 1
    return registry.read("thermal", path, fmt=fmt, **options)
