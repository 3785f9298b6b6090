"""The reader registry: one reader per (kind, format), picked by name or detected from the file.

Kinds are the manifest's file kinds: the recordings ``thermal``, ``cpet``, ``hr``, ``core``,
``face``, ``pose`` and the annotations ``thermal_masks``, ``face_labels``, ``pose_keypoints``. A
reader is a function ``read(path, **options)``; it returns

- ``cpet``, ``hr``, ``core``: a :class:`pandas.DataFrame` with a float column ``time`` (s since
  the file's own start) and the signal columns in Study units (``vo2``, ``vco2`` mL/min, ``ve``
  L/min, ``rf`` min-1, ``hr`` min-1, ``tcore`` degC). ``df.attrs`` holds ``start_time``
  (timezone-naive local :class:`datetime.datetime` or ``None``), ``source`` (path),
  ``format`` and ``conversions`` (list of human-readable unit conversions applied).
- ``thermal``, ``face``: an :class:`xarray.DataArray` ``(frame, y, x)`` in degC with coordinate
  ``time(frame)`` in s and ``attrs['start_time']``.
- ``thermal_masks``: the sparse mask store of :func:`irtrepro.io.annotations.read_annotations`
  (an :class:`xarray.Dataset` with ``roi``, ``vessels``, ``ignore``); these readers need
  ``labels=`` (the label map).
- ``pose``: a dict with ``thermal`` ``(frame, y, x)`` float32 degC, ``time`` (s), ``fps`` (Hz),
  ``meta`` and, when stored, ``rgb`` (:func:`irtrepro.io.pose.read_pose_clip`).
- ``pose_keypoints``: a validated COCO keypoint dict (:func:`irtrepro.io.pose.read_coco_keypoints`).
- ``face_labels``: a :class:`pandas.DataFrame` with ``frame``, ``time`` (s), ``label``
  (INH/EXH/empty) (:func:`irtrepro.io.face.read_face_labels`).

Readers register themselves with :func:`register` at import of their module; the modules are
listed in :data:`_READER_MODULES` and imported lazily, so ``import irtrepro.io`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from irtrepro.errors import FormatError, OptionError

# Modules that call register(); imported on first use of the registry.
_READER_MODULES = (
    "irtrepro.io.cpet",
    "irtrepro.io.hr",
    "irtrepro.io.core",
    "irtrepro.io.zarr_store",
    "irtrepro.io.thermal_readers",
    "irtrepro.io.flir",
    "irtrepro.io.infratec",
    "irtrepro.io.annotations",
    "irtrepro.io.pose",
    "irtrepro.io.face",
)

KINDS = ("thermal", "cpet", "hr", "core", "face", "pose", "thermal_masks", "face_labels",
         "pose_keypoints")


@dataclass(frozen=True)
class Reader:
    kind: str
    format: str
    func: Callable
    extensions: tuple[str, ...] = ()
    sniff: Callable[[bytes, Path], bool] | None = None
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: Keyword options the reader takes; ``None``: read from the function's signature.
    declared_options: tuple[str, ...] | None = None

    @property
    def options(self) -> tuple[str, ...]:
        """Names of the keyword options this reader takes (besides the path)."""
        if self.declared_options is not None:
            return self.declared_options
        import inspect

        params = list(inspect.signature(self.func).parameters.values())[1:]
        return tuple(p.name for p in params
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    def check_options(self, options, where: str = "") -> None:
        """Raise :class:`OptionError` for an option this reader does not take (did you mean)."""
        import difflib

        known = self.options
        for name in options:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise OptionError(f"{where + ': ' if where else ''}reader {self.format!r} "
                                  f"({self.kind}) takes no option {name!r}{hint} (options: "
                                  f"{', '.join(sorted(known)) or 'none'})")


_REGISTRY: dict[tuple[str, str], Reader] = {}
_loaded = False


def register(kind: str, fmt: str, *, extensions=(), sniff=None, description: str = "",
             aliases=(), options: tuple[str, ...] | None = None) -> Callable:
    """Decorator registering ``func`` as the reader of ``fmt`` files of ``kind``.

    ``sniff(head, path)`` gets the first 4096 bytes and the path and says whether the file is
    of this format (for detection when the manifest gives no format). ``options`` names the
    keyword options of a reader whose signature only says ``**options``.
    """
    if kind not in KINDS:
        raise OptionError(f"kind={kind!r}; expected one of {sorted(KINDS)}")

    def deco(func: Callable) -> Callable:
        reader = Reader(kind, fmt, func, tuple(e.lower() for e in extensions), sniff,
                        description or (func.__doc__ or "").strip().split("\n")[0], tuple(aliases),
                        None if options is None else tuple(options))
        for name in (fmt, *aliases):
            _REGISTRY[(kind, name)] = reader
        return func

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _READER_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a reader module not written yet
            if exc.name != mod:
                raise
    _loaded = True


def formats(kind: str | None = None) -> list[Reader]:
    """All registered readers (of one kind, if given), without alias duplicates."""
    _load()
    seen, out = set(), []
    for (k, _), r in sorted(_REGISTRY.items()):
        if (kind is None or k == kind) and id(r) not in seen:
            seen.add(id(r))
            out.append(r)
    return out


def get_reader(kind: str, fmt: str) -> Reader:
    """The reader of ``fmt`` for ``kind``; raises :class:`OptionError` listing the choices."""
    _load()
    # face sequences are thermal recordings: every thermal reader serves them too.
    key = (kind, fmt)
    if key not in _REGISTRY and kind == "face":
        key = ("thermal", fmt)
    if key not in _REGISTRY:
        choices = sorted(f for (k, f) in _REGISTRY if k in (kind, "thermal" if kind == "face" else kind))
        raise OptionError(f"format={fmt!r} for kind {kind!r}; expected one of {choices}")
    return _REGISTRY[key]


def detect(path: str | os.PathLike, kind: str | None = None) -> str:
    """Detect the format of ``path`` by magic bytes, then by extension.

    Raises :class:`FormatError` naming the file when no reader recognises it.
    """
    _load()
    path = Path(path)
    head = b""
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(4096)
    candidates = [r for r in formats() if kind is None or r.kind == kind
                  or (kind == "face" and r.kind == "thermal")]
    for r in candidates:
        if r.sniff is not None:
            try:
                if r.sniff(head, path):
                    return r.format
            except Exception:  # a sniffer must never break detection of other formats
                continue
    ext = "".join(path.suffixes[-1:]).lower()
    by_ext = [r for r in candidates if ext and ext in r.extensions]
    if len(by_ext) == 1:
        return by_ext[0].format
    what = f"{kind} " if kind else ""
    hint = f" (candidates by extension: {[r.format for r in by_ext]})" if by_ext else ""
    raise FormatError(f"{path}: no {what}reader recognises this file{hint}; "
                      f"give its format explicitly, one of {[r.format for r in candidates]}")


def read(kind: str, path: str | os.PathLike, fmt: str | None = None, **options):
    """Read ``path`` as ``kind`` with the reader of ``fmt`` (detected when ``None``)."""
    if not Path(path).exists():
        raise FormatError(f"{path}: file not found")
    fmt = fmt or detect(path, kind)
    reader = get_reader(kind, fmt)
    reader.check_options(options, str(path))
    return reader.func(path, **options)
