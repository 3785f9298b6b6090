"""Any thermal recording the readers know -> the zarr frame store: ``irtrepro thermal convert``.

One function, used by the command and by :mod:`irtrepro.recordings` (the manifest's thermal
entries), so that a store converted by hand and one converted by the report are the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["convert_recording"]


def convert_recording(source: str | os.PathLike, out: str | os.PathLike, *,
                      fmt: str | None = None, chunk_frames: int = 64,
                      progress: bool | None = None, attrs: dict[str, Any] | None = None,
                      resume: bool = False, **options) -> tuple[str, Path]:
    """Read a recording with its reader and write it as a zarr frame store, atomically.

    Parameters
    ----------
    source : path
        Camera file or folder (FLIR SEQ/CSQ/JPEG, InfraTec IRB, TIFF/npy/CSV stack, ...).
    out : path
        Target store (replaced; only appears once complete, see
        :func:`irtrepro.io.thermal.write_frames`).
    fmt : str, optional
        Reader format (default: detected from the file's magic bytes).
    chunk_frames : int
        Frames per zarr chunk (and per write: memory is one chunk of frames).
    progress : bool or None
        Progress bar.
    attrs : dict, optional
        Further attributes stored on ``frames`` (e.g. the source's sha256).
    resume : bool
        Continue an interrupted conversion of the same recording where it stopped
        (:func:`~irtrepro.io.thermal.write_frames`).
    **options
        Reader options (``emissivity``, ``fps``, ``scale``, ...).

    Returns
    -------
    fmt, path : (str, Path)
        The reader used and ``out``.
    """
    from irtrepro.io import registry
    from irtrepro.io.zarr_store import write_frames

    fmt = fmt or registry.detect(source, "thermal")
    da = registry.read("thermal", source, fmt, **options)
    if attrs:
        da = da.assign_attrs(**attrs)
    return fmt, write_frames(out, da, chunk_frames=chunk_frames, progress=progress,
                             resume=resume)
