"""Any thermal recording the readers know -> the zarr frame store: ``irtrepro thermal convert``.

One function, used by the command and by :mod:`irtrepro.recordings` (the manifest's thermal
entries), so that a store converted by hand and one converted by the report are the same.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["convert_recording", "convert_recordings"]


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


def _convert_one(source: str, out: str, kwargs: dict) -> tuple[str, Path]:
    """One recording on a worker (module level, so that it pickles by reference)."""
    return convert_recording(source, out, **kwargs)


def convert_recordings(pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]], *,
                       scheduler: Any = None, **kwargs) -> list[tuple[str, Path]]:
    """:func:`convert_recording` of several recordings, on dask.distributed workers if asked.

    Parameters
    ----------
    pairs : sequence of (source, out)
        Recordings and their target stores.
    scheduler : None, str, Client or cluster
        ``None``: one after the other, here. Otherwise one task per recording
        (:func:`irtrepro.distributed.open_client`): a camera file is decoded in order from its
        start (its frames are found by walking the file), so the unit of parallel work is the
        recording, and each worker streams its recording through in bounded memory, one zarr
        chunk at a time. Sources and targets must be on storage every worker sees.
    **kwargs
        Of :func:`convert_recording` (``fmt``, ``chunk_frames``, ``resume``, reader options);
        the same for every recording.

    Returns
    -------
    list of (fmt, Path)
        In the order of ``pairs``.

    Raises
    ------
    Exception
        The first recording's error (in the order of ``pairs``) after every other recording
        was converted; the others are logged. With ``resume=True`` a rerun continues each
        unfinished store where it stopped.
    """
    from irtrepro._logging import logger
    from irtrepro.distributed import open_client, parse_scheduler

    pairs = [(str(a), str(b)) for a, b in pairs]
    if parse_scheduler(scheduler)[0] == "serial":
        return [convert_recording(a, b, **kwargs) for a, b in pairs]
    kwargs = {**kwargs, "progress": False}  # bars of several workers would interleave
    results: list = [None] * len(pairs)
    errors: list = [None] * len(pairs)
    with open_client(scheduler) as client:
        futs = [client.submit(_convert_one, a, b, kwargs, pure=False) for a, b in pairs]
        for i, fut in enumerate(futs):
            try:
                results[i] = fut.result()
            except Exception as exc:  # the others still finish; the first error is raised
                errors[i] = exc
                logger.error("%s: conversion failed: %s", pairs[i][0], exc)
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
