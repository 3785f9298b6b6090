"""Device readers (and the writers the synthetic study uses), one module per source kind.

Use :func:`read` with a kind and a format name, or let :func:`detect` pick the format.
Annotation files (LabelMe, COCO, PNG label maps) are read by :func:`read_annotations` into a
sparse mask store (:mod:`irtrepro.io.annotations`, loaded on first use).
"""

from irtrepro.io.registry import KINDS, detect, formats, get_reader, read, register

_LAZY = {"read_annotations": "irtrepro.io.annotations",
         "write_annotations": "irtrepro.io.annotations",
         "open_annotations": "irtrepro.io.annotations"}

__all__ = ["KINDS", "detect", "formats", "get_reader", "open_annotations", "read",
           "read_annotations", "register", "write_annotations"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'irtrepro.io' has no attribute {name!r}")
