"""The zarr frame store of a manifest's thermal entry: converted once, cached by sha256.

A session's ``thermal`` entry may be any recording a thermal reader opens (FLIR SEQ/CSQ, a
folder of radiometric JPEGs, InfraTec IRB, a TIFF/npy/CSV stack with its scale) or a zarr
frame store. Everything that reads thermal entries for the Study (the report's vision part,
``irtrepro build --metrics``) asks :func:`frame_store` for the entry's store: a zarr entry is
its own store; any other file is converted once, through the same code as ``irtrepro thermal
convert`` (:func:`irtrepro.io.convert.convert_recording`), into ``cache_dir``.

The cached store's name holds the source's sha256 and a hash of the reader, its options and
the reader code, so an edited file, other reader options or a changed reader make a new store,
and an unchanged file is never decoded twice. An interrupted conversion leaves nothing under
the final name: its chunks so far are kept in a hidden ``.<name>.resume`` folder beside it, and
the next call continues from the first chunk not written
(:func:`irtrepro.io.thermal.write_frames` with ``resume=True``); a store under the final name
is complete. The folder's ``progress.json`` records the source's resolved path and sha256: a
conversion resumes only chunks of the same sha256, and once the file has changed the folders
of its earlier versions are removed (:func:`remove_stale_resumes`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from irtrepro._logging import logger
from irtrepro.errors import FormatError
from irtrepro.manifest import SYNC_OPTIONS, FileEntry, sha256_path

__all__ = ["FrameStore", "frame_store", "remove_stale_resumes"]

#: modules whose code decides a converted store's content (besides the reader's own)
_STORE_CODE = ("irtrepro.io.frames", "irtrepro.io.zarr_store", "irtrepro.io.convert")


@dataclass(frozen=True)
class FrameStore:
    """Where a thermal entry's frames are, as a zarr frame store.

    Attributes
    ----------
    path : Path
        The zarr frame store.
    source : Path
        The manifest's file.
    format : str
        Reader of the source (``"zarr"`` for a store).
    sha256 : str
        sha256 of the source (:func:`irtrepro.manifest.sha256_path`).
    converted : bool
        The store was written by this call (False: the entry is a store, or the cached
        conversion was reused).
    """

    path: Path
    source: Path
    format: str
    sha256: str
    converted: bool

    def to_dict(self) -> dict:
        """Plain-type provenance."""
        return {"store": str(self.path), "source": str(self.source), "format": self.format,
                "sha256": self.sha256, "converted": self.converted}


def _reader_options(entry: FileEntry) -> dict:
    return {k: v for k, v in entry.options.items() if k not in SYNC_OPTIONS}


def _code_hash(*modules: str) -> str:
    """sha256 of the modules' source files (a reader fix makes new stores)."""
    import importlib.util

    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        h.update(name.encode())
        if spec is not None and spec.origin:
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()


def _conversion_key(fmt: str, options: dict, chunk_frames: int) -> str:
    from irtrepro.io import registry

    module = registry.get_reader("thermal", fmt).func.__module__
    blob = json.dumps({"format": fmt, "options": options, "chunk_frames": chunk_frames,
                       "code": _code_hash(module, *_STORE_CODE)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def remove_stale_resumes(cache_dir: str | os.PathLike, source: str | os.PathLike,
                         sha256: str) -> list[Path]:
    """Remove the interrupted conversions (``.<name>.resume`` folders) of an earlier version of
    ``source`` from ``cache_dir``.

    A folder is removed when its ``progress.json`` names the same resolved source path and
    another ``source_sha256``: the file changed since, so those chunks can never be resumed
    (the store's name holds the sha256). Folders of other sources, of the same version, or
    without a readable record are left alone.

    Returns
    -------
    list of Path
        The folders removed.
    """
    import shutil

    from irtrepro.io.zarr_store import read_progress

    cache_dir, src = Path(cache_dir), str(Path(source).resolve())
    removed = []
    for folder in sorted(cache_dir.glob(".*.resume")) if cache_dir.is_dir() else ():
        prog = read_progress(folder)
        if prog.get("source") == src and prog.get("source_sha256") not in (None, sha256):
            logger.info("%s: removing %s, an interrupted conversion of an earlier version "
                        "(sha256 %s)", source, folder, prog["source_sha256"])
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def frame_store(entry: FileEntry, cache_dir: str | os.PathLike, *, chunk_frames: int = 64,
                progress: bool | None = None) -> FrameStore:
    """The zarr frame store of a thermal entry, converting (once) where needed.

    Parameters
    ----------
    entry : FileEntry
        The manifest's ``thermal`` entry (its reader options are used; the sync options
        ``offset_s``/``drift_ppm`` are not reader options and do not enter the key).
    cache_dir : path
        Folder of the converted stores (e.g. the report's ``cache/frames``).
    chunk_frames : int
        Frames per zarr chunk of a converted store.
    progress : bool or None
        Progress bar of a conversion.

    Returns
    -------
    FrameStore

    Raises
    ------
    FormatError
        The file is missing or no reader opens it (naming the file and the manifest line).
    """
    from irtrepro.io import registry
    from irtrepro.io.convert import convert_recording
    from irtrepro.io.zarr_store import _is_store, open_frame_store

    src = Path(entry.path)
    if not src.exists():
        raise FormatError(f"{src}: thermal recording not found ({entry.where})")
    fmt = entry.format or registry.detect(src, "thermal")
    if fmt == "zarr" or (_is_store(src) and entry.format is None):
        open_frame_store(src)  # a folder that is no frame store is refused here, by name
        return FrameStore(src, src, "zarr", entry.sha256 or sha256_path(src), False)
    sha = sha256_path(src)
    remove_stale_resumes(cache_dir, src, sha)
    options = _reader_options(entry)
    stem = src.name.split(".")[0] or "recording"
    target = (Path(cache_dir) / f"{stem}-{sha[:16]}-{_conversion_key(fmt, options, chunk_frames)}"
              ".zarr")
    if _is_store(target):
        got = open_frame_store(target)["frames"].attrs.get("source_sha256")
        if got == sha:
            logger.info("%s: reusing its frame store %s", src, target)
            return FrameStore(target, src, fmt, sha, False)
        logger.warning("%s: cached store %s records source sha256 %s, not %s: converting again",
                       src, target, got, sha)
    logger.info("%s: converting (%s) to %s", src, fmt, target)
    convert_recording(src, target, fmt=fmt, chunk_frames=chunk_frames, progress=progress,
                      resume=True, attrs={"source_sha256": sha, "source_format": fmt,
                             "reader_options": json.dumps(options, sort_keys=True,
                                                          default=str)},
                      **options)
    return FrameStore(target, src, fmt, sha, True)
