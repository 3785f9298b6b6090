"""The one cache of ``make report``: part results and trained models.

An entry's key is a hash of everything that decides its value: the settings (seed and keyword
settings, with the defaults they fall back on), the data (manifest sha256, training arrays) and
the source code that computes it. Change any of them and the entry is recomputed; an entry
that cannot be read is recomputed, never trusted. Entries are written atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger

__all__ = ["Cache", "cache_key", "part_key", "source_hash"]


def source_hash(*modules: str) -> str:
    """sha256 (16 hex digits) over the source files of the given packages or modules.

    Parameters
    ----------
    *modules : str
        Import names; a package stands for every ``.py`` file below it. A module that cannot
        be found enters the hash as absent.
    """
    h = hashlib.sha256()
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:  # its parent package is missing
            spec = None
        if spec is None or spec.origin is None:
            h.update(f"{name}:absent".encode())
            continue
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _update(h, item: Any) -> None:
    if isinstance(item, np.ndarray):
        a = np.ascontiguousarray(item)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    elif isinstance(item, bytes):
        h.update(item)
    else:
        h.update(json.dumps(item, sort_keys=True, default=str).encode())
    h.update(b"|")


def cache_key(*, settings: Any = None, data: Iterable[Any] = (),
              source: Iterable[str] = ()) -> str:
    """Key (16 hex digits) of a cache entry.

    Parameters
    ----------
    settings : JSON-able, optional
        Seed, keyword settings and the defaults they fall back on.
    data : iterable
        Arrays (shape, dtype and bytes enter the key), bytes, or JSON-able values (a manifest
        sha256, subject ids).
    source : iterable of str
        Packages or modules whose source computes the entry (:func:`source_hash`).
    """
    h = hashlib.sha256()
    _update(h, settings)
    for item in data:
        _update(h, item)
    h.update(source_hash(*source).encode() if source else b"")
    return h.hexdigest()[:16]


def part_key(manifest_sha256: str, name: str, seed: int, settings: dict | None = None) -> str:
    """Key of a report part's result: manifest, seed, settings and the source of the whole
    package.

    A part's result depends on more than its own module (the vision part extracts metrics
    with ``irtrepro.features``, reads frames with ``irtrepro.io``), so any source change
    recomputes the parts; their trained models have their own, narrower keys.
    """
    return cache_key(settings={"seed": seed, "settings": settings or {}},
                     data=(manifest_sha256,), source=("irtrepro", name))


def _pickle_save(value: Any, path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(value, fh)


def _pickle_load(path: Path) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)


class Cache:
    """A folder of cache entries, one file per (name, key).

    Parameters
    ----------
    root : path-like
        The folder (created on first write).

    Examples
    --------
    >>> cache = Cache(tmp)                                            # doctest: +SKIP
    >>> value, reused = cache.get("study", key, lambda: build_study(m))  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, name: str, key: str, suffix: str = ".pkl") -> Path:
        """File of the entry ``name`` with ``key``."""
        return self.root / f"{name}-{key}{suffix}"

    def load(self, name: str, key: str, *, load: Callable[[Path], Any] = _pickle_load,
             suffix: str = ".pkl") -> tuple[Any, bool]:
        """``(value, True)`` of a readable entry, else ``(None, False)`` (a bad file is removed)."""
        path = self.path(name, key, suffix)
        if not path.is_file():
            return None, False
        try:
            value = load(path)
        except Exception:  # a stale or unreadable entry is recomputed, never trusted
            path.unlink(missing_ok=True)
            return None, False
        logger.info("report: reusing %s", path.name)
        return value, True

    def save(self, name: str, key: str, value: Any, *,
             save: Callable[[Any, Path], Any] = _pickle_save, suffix: str = ".pkl") -> Path:
        """Write an entry atomically; returns its path."""
        path = self.path(name, key, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save(value, Path(tmp))
        return path

    def get(self, name: str, key: str, compute: Callable[[], Any], *,
            save: Callable[[Any, Path], Any] = _pickle_save,
            load: Callable[[Path], Any] = _pickle_load, suffix: str = ".pkl"
            ) -> tuple[Any, bool]:
        """The entry's value, computed (and stored) when absent or unreadable.

        Parameters
        ----------
        name, key : str
            What the entry is and its :func:`cache_key`.
        compute : callable
            Makes the value when the entry is absent.
        save, load : callable, optional
            ``save(value, path)`` and ``load(path)``: the value's own file format (e.g. a
            model checkpoint); default pickle.
        suffix : str
            File suffix.

        Returns
        -------
        value, reused : (object, bool)
        """
        value, reused = self.load(name, key, load=load, suffix=suffix)
        if reused:
            return value, True
        value = compute()
        self.save(name, key, value, save=save, suffix=suffix)
        return value, False
