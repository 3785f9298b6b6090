"""Annotation import: LabelMe JSON, COCO JSON and PNG label maps -> a sparse mask store.

A lab draws calf and vessel outlines on a few frames of a recording with an annotation tool.
:func:`read_annotations` reads those files as the tool writes them and returns the *sparse
mask store*: only the annotated frames, each with its frame index in the recording (or its
image file), class codes as :mod:`irtrepro.vision` defines them, and where each label came
from.

The store (an :class:`xarray.Dataset`)
--------------------------------------
- ``roi`` ``(frame, y, x)`` uint8: 0 background, 1 left calf, 2 right calf;
- ``vessels`` ``(frame, y, x)`` uint8: 0 none, 1 vein, 2 perforator;
- ``ignore`` ``(frame, y, x)`` uint8: 1 where a pixel is left out of training and scoring;
- coordinate ``frame`` (int): the frame index in the recording; for loose images
  (``frames="order"``) the position 0, 1, ... of the image in the order given;
- coordinates ``image(frame)`` (the image file name the annotation refers to) and
  ``source(frame)`` (the annotation file); ``time(frame)`` (s) when a recording is given;
- attrs: ``irtrepro_store`` (``"annotation-masks"``), ``format``, ``label_map`` (JSON),
  ``overlap_rule``, ``frame_rule``, ``recording``, and ``shapes``: a JSON list with one record
  per shape / annotation / pixel value read (source file, index, label, class, whether it was
  drawn and why not); :func:`shapes_table` turns it into a DataFrame.

See ``docs/annotations.md`` for the formats, the label map, the overlap rule and frame linking.
"""

from __future__ import annotations

import base64
import difflib
import io
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import xarray as xr

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger, progress_bar
from irtrepro.errors import FormatError, OptionError, ReaderError, check_option
from irtrepro.io.registry import register

__all__ = [
    "CLASSES",
    "FORMATS",
    "OVERLAP_RULE",
    "AnnotationError",
    "FrameReferenceError",
    "ImageSizeError",
    "ShapeError",
    "UnknownLabelError",
    "frame_from_name",
    "open_annotations",
    "read_annotations",
    "read_label_map",
    "shapes_table",
    "write_annotations",
]

#: The project's classes a label map may name, and the layer and code each sets.
CLASSES: dict[str, tuple[str, int]] = {
    "background": ("roi", 0),
    "left_calf": ("roi", 1),
    "right_calf": ("roi", 2),
    "vein": ("vessels", 1),
    "perforator": ("vessels", 2),
    "ignore": ("ignore", 1),
}

#: Format names (also the registry's format names of kind ``thermal_masks``).
FORMATS = ("labelme", "coco", "png-labels")

OVERLAP_RULE = (
    "layers: calf classes write roi, vessel classes write vessels, ignore writes ignore; "
    "within a layer later shapes over earlier (LabelMe shape order, COCO annotation order); "
    "a vessel over a calf keeps roi = calf and sets vessels; a vessel outside every calf "
    "keeps its vessel code with roi 0; 'background' clears roi and vessels under it; "
    "ignore is never cleared; PNG label maps: a vessel pixel takes the roi of the nearest "
    "calf pixel when its vessel region touches a calf"
)

_TRAILING_INT = re.compile(r"(\d+)$")


class AnnotationError(ReaderError):
    """An annotation file cannot be turned into masks; names the file and the shape index.

    Attributes ``path`` and ``index`` (shape, annotation or pixel value; may be ``None``).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 index: int | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.index = index


class UnknownLabelError(AnnotationError):
    """A label (LabelMe label, COCO category name, PNG pixel value) is not in the label map."""


class ShapeError(AnnotationError):
    """A shape cannot be rasterised: too few points, malformed segmentation, unknown type."""


class FrameReferenceError(AnnotationError):
    """An annotation names no frame, or a frame that the recording does not have."""


class ImageSizeError(AnnotationError):
    """An image size disagrees with the recording's (y, x) or with the other frames."""


# --------------------------------------------------------------------------------------------
# label map and frame linking
# --------------------------------------------------------------------------------------------

def read_label_map(labels: str | os.PathLike | Mapping) -> dict[Any, str]:
    """The label map: tool label -> project class (one of :data:`CLASSES`).

    Parameters
    ----------
    labels : path or mapping
        A YAML file of ``tool label: class`` lines (``L: left_calf``, ``vein: vein``,
        ``__ignore__: ignore``; for PNG label maps the keys are pixel values, ``1: left_calf``)
        or the mapping itself.

    Returns
    -------
    dict
        Keys as given (str, or int for pixel values), values project class names.

    Raises
    ------
    OptionError
        A class that is not one of :data:`CLASSES`, naming the file and the label.
    """
    where = "label map"
    if isinstance(labels, Mapping):
        raw = dict(labels)
    else:
        import yaml

        where = str(labels)
        try:
            raw = yaml.safe_load(Path(labels).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FormatError(f"{labels}: label map not found") from exc
        except yaml.YAMLError as exc:
            raise FormatError(f"{labels}: not a YAML label map: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise FormatError(f"{labels}: expected 'tool label: class' lines, got "
                              f"{type(raw).__name__}")
    out = {}
    for key, cls in raw.items():
        if cls not in CLASSES:
            raise OptionError(f"{where}: label {key!r} maps to {cls!r}; expected one of "
                              f"{list(CLASSES)}")
        out[key] = cls
    return out


def frame_from_name(name: str) -> int | None:
    """The frame index a file name carries: the trailing integer of its stem.

    ``frame_000123.png`` -> 123, ``S01_CON_00123.jpg`` -> 123, ``images\\frame_7.png`` -> 7
    (Windows separators are accepted, as LabelMe writes them); ``calf.png`` -> ``None``.
    """
    stem = PureWindowsPath(str(name)).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    m = _TRAILING_INT.search(stem)
    return int(m.group(1)) if m else None


def _image_name(ref: str) -> str:
    """The file name (no folders) of an image reference, Windows or POSIX separators."""
    return PureWindowsPath(str(ref)).name


# --------------------------------------------------------------------------------------------
# rasterisation (the tools' own conventions)
# --------------------------------------------------------------------------------------------

def _pil_mask(shape: tuple[int, int], draw_fn) -> np.ndarray:
    import PIL.Image
    import PIL.ImageDraw

    img = PIL.Image.fromarray(np.zeros(shape, dtype=np.uint8))
    draw_fn(PIL.ImageDraw.Draw(img))
    return np.array(img, dtype=bool)


def _labelme_shape_mask(shape: tuple[int, int], s: Mapping, path, i: int) -> np.ndarray | str:
    """Mask of one LabelMe shape as labelme's ``shape_to_mask`` draws it, or a skip reason."""
    stype = s.get("shape_type") or "polygon"
    pts = s.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2
                                            for p in pts):
        raise ShapeError(f"{path}: shape {i} ({s.get('label')!r}): points must be a list of "
                         f"[x, y], got {pts!r:.80}", path, i)
    xy = [(float(x), float(y)) for x, y in pts]
    label = s.get("label")
    if stype in ("polygon", "oriented_rectangle"):
        if len(xy) < 3:
            raise ShapeError(f"{path}: shape {i} ({label!r}): {stype} has {len(xy)} points; "
                             "expected at least 3", path, i)
        return _pil_mask(shape, lambda d: d.polygon(xy=xy, outline=1, fill=1))
    if stype == "rectangle":
        if len(xy) != 2:
            raise ShapeError(f"{path}: shape {i} ({label!r}): rectangle has {len(xy)} points; "
                             "expected 2 corners", path, i)
        (x0, y0), (x1, y1) = xy
        box = ((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1)))
        return _pil_mask(shape, lambda d: d.rectangle(box, outline=1, fill=1))
    if stype == "circle":
        if len(xy) != 2:
            raise ShapeError(f"{path}: shape {i} ({label!r}): circle has {len(xy)} points; "
                             "expected centre and a point on the rim", path, i)
        (cx, cy), (px, py) = xy
        r = float(np.hypot(cx - px, cy - py))
        return _pil_mask(shape, lambda d: d.ellipse(((cx - r, cy - r), (cx + r, cy + r)),
                                                     outline=1, fill=1))
    if stype == "mask":
        data = s.get("mask")
        if not isinstance(data, str) or len(xy) != 2:
            raise ShapeError(f"{path}: shape {i} ({label!r}): a mask shape needs a base64 PNG "
                             "'mask' and 2 points (bounding box corners)", path, i)
        import PIL.Image

        crop = np.array(PIL.Image.open(io.BytesIO(base64.b64decode(data)))).astype(bool)
        if crop.ndim == 3:
            crop = crop[..., 0]
        out = np.zeros(shape, bool)
        (x1, y1), (x2, y2) = np.asarray(xy).astype(int)
        target = out[y1:y2 + 1, x1:x2 + 1]
        if target.shape != crop.shape:
            raise ShapeError(f"{path}: shape {i} ({label!r}): mask is {crop.shape[::-1]} "
                             f"(w, h) but its box spans {target.shape[::-1]}", path, i)
        out[y1:y2 + 1, x1:x2 + 1] = crop
        return out
    if stype in ("line", "linestrip", "point", "points"):
        return f"shape_type {stype!r} has no area"
    raise ShapeError(f"{path}: shape {i} ({label!r}): shape_type {stype!r} unknown; expected "
                     "polygon, rectangle, circle, mask (or line, linestrip, point: skipped)",
                     path, i)


def _coco_mask(ann: Mapping, h: int, w: int, path, i: int) -> np.ndarray | str:
    """Mask of one COCO annotation as pycocotools' ``annToMask`` decodes it, or a skip reason."""
    import pycocotools.mask as mask_utils

    seg = ann.get("segmentation")
    if seg is None or (isinstance(seg, list) and len(seg) == 0):
        return "no segmentation (bounding box only)"
    if isinstance(seg, list):
        polys = []
        for k, p in enumerate(seg):
            if not isinstance(p, list) or len(p) % 2:
                raise ShapeError(f"{path}: annotation {i} (id {ann.get('id')}): polygon {k} "
                                 "must be a flat list [x1, y1, x2, y2, ...]", path, i)
            if len(p) < 6:
                raise ShapeError(f"{path}: annotation {i} (id {ann.get('id')}): polygon {k} "
                                 f"has {len(p) // 2} points; expected at least 3", path, i)
            polys.append([float(v) for v in p])
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    elif isinstance(seg, Mapping) and "counts" in seg and "size" in seg:
        size = [int(v) for v in seg["size"]]
        if size != [h, w]:
            raise ImageSizeError(f"{path}: annotation {i} (id {ann.get('id')}): RLE size "
                                 f"{size} (h, w) but its image is [{h}, {w}]", path, i)
        counts = seg["counts"]
        if isinstance(counts, list):
            if sum(int(c) for c in counts) != h * w:
                raise ShapeError(f"{path}: annotation {i} (id {ann.get('id')}): uncompressed "
                                 f"RLE counts sum to {sum(counts)}, expected h*w = {h * w}",
                                 path, i)
            rle = mask_utils.frPyObjects({"size": size, "counts": counts}, h, w)
        else:
            rle = {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
    else:
        raise ShapeError(f"{path}: annotation {i} (id {ann.get('id')}): segmentation is neither "
                         "polygons nor RLE {'size', 'counts'}", path, i)
    try:
        with warnings.catch_warnings():   # pycocotools' decode under numpy 2 (not ours)
            warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't",
                                    category=DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except Exception as exc:  # pycocotools raises bare errors on corrupt counts
        raise ShapeError(f"{path}: annotation {i} (id {ann.get('id')}): cannot decode RLE: "
                         f"{exc}", path, i) from exc


# --------------------------------------------------------------------------------------------
# the per-frame canvas
# --------------------------------------------------------------------------------------------

class _Canvas:
    """roi, vessels and ignore of one frame, painted shape by shape (the overlap rule)."""

    def __init__(self, shape: tuple[int, int]):
        self.roi = np.zeros(shape, np.uint8)
        self.vessels = np.zeros(shape, np.uint8)
        self.ignore = np.zeros(shape, np.uint8)

    def paint(self, cls: str, mask: np.ndarray) -> None:
        layer, code = CLASSES[cls]
        if cls == "background":
            self.roi[mask] = 0
            self.vessels[mask] = 0
        else:
            getattr(self, layer)[mask] = code


def _lookup(label, lmap: Mapping, path, i: int, what: str) -> str:
    if label in lmap:
        return lmap[label]
    if isinstance(label, str) and not any(isinstance(k, str) and k == label for k in lmap):
        close = difflib.get_close_matches(label, [str(k) for k in lmap], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    else:
        hint = ""
    raise UnknownLabelError(f"{path}: {what} {i}: label {label!r} is not in the label map "
                            f"{sorted(map(str, lmap))}{hint}", path, i)


# --------------------------------------------------------------------------------------------
# readers of one file: -> list of frame records
# --------------------------------------------------------------------------------------------

def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not a JSON annotation file: {exc}") from exc


def _labelme_size(path: Path, d: Mapping) -> tuple[int, int]:
    h, w = d.get("imageHeight"), d.get("imageWidth")
    if isinstance(h, int) and isinstance(w, int):
        return h, w
    import PIL.Image

    if d.get("imageData"):
        with PIL.Image.open(io.BytesIO(base64.b64decode(d["imageData"]))) as im:
            return im.height, im.width
    img = path.parent / PureWindowsPath(str(d.get("imagePath", ""))).as_posix()
    if img.is_file():
        with PIL.Image.open(img) as im:
            return im.height, im.width
    raise ImageSizeError(f"{path}: no imageHeight/imageWidth, no imageData and no image file "
                         f"{img}; the image size is unknown", path)


def _read_labelme_file(path: Path, lmap: Mapping) -> list[dict]:
    d = _load_json(path)
    if not isinstance(d, Mapping) or "shapes" not in d:
        raise FormatError(f"{path}: not a LabelMe file (no 'shapes')")
    h, w = _labelme_size(path, d)
    canvas = _Canvas((h, w))
    log = []
    for i, s in enumerate(d["shapes"]):
        label = s.get("label")
        cls = _lookup(label, lmap, path, i, "shape")
        res = _labelme_shape_mask((h, w), s, path, i)
        rec = {"source": str(path), "index": i, "label": label, "class": cls,
               "shape_type": s.get("shape_type") or "polygon", "drawn": not isinstance(res, str),
               "note": res if isinstance(res, str) else ""}
        if not isinstance(res, str):
            canvas.paint(cls, res)
        log.append(rec)
    ref = str(d.get("imagePath") or path.with_suffix(".png").name)
    return [{"image": _image_name(ref), "ref": ref, "source": str(path), "shape": (h, w),
             "canvas": canvas, "log": log, "n": len(d["shapes"])}]


def _read_coco_file(path: Path, lmap: Mapping, keep_empty: bool) -> list[dict]:
    d = _load_json(path)
    if not isinstance(d, Mapping) or "images" not in d or "annotations" not in d:
        raise FormatError(f"{path}: not a COCO file (needs 'images' and 'annotations')")
    cats = {c["id"]: c.get("name") for c in d.get("categories", [])}
    images = {}
    for img in d["images"]:
        images[img["id"]] = img
    by_image: dict[Any, list[tuple[int, Mapping]]] = {k: [] for k in images}
    for i, ann in enumerate(d["annotations"]):
        if ann.get("image_id") not in images:
            raise FrameReferenceError(f"{path}: annotation {i} (id {ann.get('id')}): image_id "
                                      f"{ann.get('image_id')!r} is not in 'images'", path, i)
        by_image[ann["image_id"]].append((i, ann))
    out = []
    for img_id, img in images.items():
        anns = by_image[img_id]
        if not anns and not keep_empty:
            continue
        h, w = img.get("height"), img.get("width")
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise ImageSizeError(f"{path}: image id {img_id} ({img.get('file_name')!r}) has no "
                                 f"height/width (got {h!r}, {w!r})", path)
        canvas = _Canvas((h, w))
        log = []
        for i, ann in anns:   # annotation order: later over earlier
            cid = ann.get("category_id")
            if cid not in cats:
                raise UnknownLabelError(f"{path}: annotation {i} (id {ann.get('id')}): "
                                        f"category_id {cid!r} is not in 'categories'", path, i)
            cls = _lookup(cats[cid], lmap, path, i, "annotation")
            res = _coco_mask(ann, h, w, path, i)
            seg = ann.get("segmentation")
            kind = "rle" if isinstance(seg, Mapping) else "polygon"
            log.append({"source": str(path), "index": i, "label": cats[cid], "class": cls,
                        "shape_type": kind, "iscrowd": int(ann.get("iscrowd", 0) or 0),
                        "drawn": not isinstance(res, str),
                        "note": res if isinstance(res, str) else ""})
            if not isinstance(res, str):
                canvas.paint(cls, res)
        ref = str(img.get("file_name", ""))
        out.append({"image": _image_name(ref), "ref": ref, "source": str(path),
                    "shape": (h, w), "canvas": canvas, "log": log, "n": len(anns)})
    return out


def _read_png_file(path: Path, lmap: Mapping) -> list[dict]:
    import PIL.Image

    try:
        with PIL.Image.open(path) as im:
            mode = im.mode
            arr = np.array(im)
    except (OSError, PIL.UnidentifiedImageError) as exc:
        raise FormatError(f"{path}: not a PNG label map: {exc}") from exc
    if arr.ndim != 2 or mode not in ("P", "L", "I", "I;16", "1"):
        raise FormatError(f"{path}: PNG mode {mode!r} {arr.shape}; expected a single-channel "
                          "index or palette PNG (one class value per pixel)")
    lmap_int = {}
    for k, v in lmap.items():
        try:
            lmap_int[int(k)] = v
        except (TypeError, ValueError) as exc:
            raise OptionError(f"label map key {k!r}: PNG label maps need integer pixel "
                              "values as keys (e.g. '1: left_calf')") from exc
    lmap_int.setdefault(0, "background")
    h, w = arr.shape
    canvas = _Canvas((h, w))
    log = []
    values = np.unique(arr)
    for v in values.tolist():
        cls = _lookup(int(v), lmap_int, path, int(v), "pixel value")
        canvas.paint(cls, arr == v)
        log.append({"source": str(path), "index": int(v), "label": int(v), "class": cls,
                    "shape_type": "pixels", "drawn": True, "note": ""})
    _assign_vessel_roi(canvas)
    return [{"image": path.name, "ref": path.name, "source": str(path), "shape": (h, w),
             "canvas": canvas, "log": log, "n": int((values != 0).sum())}]


def _assign_vessel_roi(canvas: _Canvas) -> None:
    """PNG maps hold one class per pixel: give vessel pixels the roi of their calf.

    A vessel region (8-connected) that touches a calf pixel takes, pixel by pixel, the roi of
    the nearest calf pixel; a region touching no calf keeps roi 0.
    """
    ves = canvas.vessels > 0
    calf = canvas.roi > 0
    if not ves.any() or not calf.any():
        return
    from scipy import ndimage

    lab, n = ndimage.label(ves, structure=np.ones((3, 3), bool))
    near = ndimage.binary_dilation(calf, structure=np.ones((3, 3), bool))
    touching = np.unique(lab[near & ves])
    take = np.isin(lab, touching[touching > 0])
    _, (iy, ix) = ndimage.distance_transform_edt(~calf, return_indices=True)
    canvas.roi[take] = canvas.roi[iy[take], ix[take]]


# --------------------------------------------------------------------------------------------
# format detection
# --------------------------------------------------------------------------------------------

def _json_kind(path: Path) -> str | None:
    try:
        head = path.read_bytes()[:65536].decode("utf-8", "ignore")
    except OSError:
        return None
    if '"shapes"' in head and ('"imagePath"' in head or '"version"' in head):
        return "labelme"
    if '"images"' in head or '"annotations"' in head:
        return "coco"
    return None


def _expand(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.is_file() and q.suffix.lower() in (".json", ".png"))
            if not found:
                raise FormatError(f"{p}: folder holds no .json or .png annotation files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FormatError(f"{p}: annotation file not found")
    return out


def _detect(files: Sequence[Path]) -> str:
    kinds = set()
    for f in files:
        if f.suffix.lower() == ".png":
            kinds.add("png-labels")
        else:
            k = _json_kind(f)
            if k is None:
                raise FormatError(f"{f}: neither a LabelMe nor a COCO JSON file; give format=")
            kinds.add(k)
    if len(kinds) != 1:
        raise OptionError(f"annotation files mix formats {sorted(kinds)}; import one format "
                          "at a time")
    return kinds.pop()


# --------------------------------------------------------------------------------------------
# the public reader
# --------------------------------------------------------------------------------------------

def _recording_grid(recording) -> tuple[np.ndarray, tuple[int, int], np.ndarray | None, str]:
    from irtrepro.io.recording import open_recording
    from irtrepro.io.zarr_store import _is_store, open_frame_store

    if Path(recording).is_dir() and _is_store(Path(recording)):
        ds = open_frame_store(recording)   # a frame store, or a mask store (no frames)
        arr = ds["frames"] if "frames" in ds else next(ds[n] for n in ("roi", "vessels")
                                                       if n in ds)
    else:                                  # a camera file: its header, no frame decoded
        arr = open_recording(recording)
    n, ny, nx = arr.shape
    time = np.asarray(arr["time"].values, float) if "time" in arr.coords else None
    return np.arange(n), (int(ny), int(nx)), time, str(recording)


def read_annotations(
    path_or_paths: str | os.PathLike | Sequence[str | os.PathLike],
    labels: str | os.PathLike | Mapping,
    frames: Mapping[str, int] | str | None = None,
    recording: str | os.PathLike | None = None,
    *,
    format: str | None = None,
    keep_empty: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Read annotation files into the sparse mask store of the annotated frames.

    Parameters
    ----------
    path_or_paths : path or sequence of paths
        Annotation files, or folders of them (a folder is read in file-name order): LabelMe
        JSON (one per image), COCO JSON (one per task, many images), or PNG label maps (one per
        frame). All files of one call share one format.
    labels : path or mapping
        The label map, ``tool label: class`` (see :func:`read_label_map`). For PNG label maps
        the keys are pixel values; an unmapped 0 is background.
    frames : mapping, ``"name"``, ``"order"`` or None
        How each annotated image is linked to a frame of the recording:

        - a mapping ``{image file name: frame index}`` (the name as the annotation writes it,
          or its base name);
        - ``"name"``: the trailing integer of the image file name's stem
          (``frame_000123.png`` -> 123, see :func:`frame_from_name`);
        - ``"order"``: loose images, one frame per image in the order read (``frame`` is then
          the position 0, 1, ..., and ``image`` names the file);
        - ``None`` (default): ``"name"`` when ``recording`` is given, else ``"order"``.
    recording : path, optional
        The recording the annotations belong to: a zarr frame store or a camera file (FLIR
        SEQ/CSQ, InfraTec IRB, ...; only its header and frame times are read). Each frame
        index must exist there and
        each image must have the recording's (y, x) size; the store then also carries the
        frames' ``time``.
    format : {"labelme", "coco", "png-labels"}, optional
        Default: detected from the files (``.png`` -> png-labels; JSON with ``shapes`` ->
        labelme; with ``images``/``annotations`` -> coco).
    keep_empty : bool
        Keep COCO images that have no annotation (CVAT lists every frame of a task) as frames
        of background; by default they are left out.
    progress : bool or None
        Progress bar over the files.

    Returns
    -------
    xarray.Dataset
        ``roi``, ``vessels``, ``ignore`` uint8 ``(frame, y, x)``; coordinates ``frame`` (int),
        ``image(frame)``, ``source(frame)`` and, with a recording, ``time(frame)`` in s; attrs
        as described in :mod:`irtrepro.io.annotations`. Frames are sorted by frame index
        (``"order"``: in the order read).

    Raises
    ------
    UnknownLabelError
        A label not in the label map (file, shape/annotation index or pixel value).
    ShapeError
        A polygon with fewer than 3 points, a malformed segmentation or shape.
    FrameReferenceError
        An image name without a frame index, a frame the recording lacks, a frame annotated
        twice.
    ImageSizeError
        An image size other than the recording's, or frames of different sizes.

    Examples
    --------
    >>> ds = read_annotations("labelme/", labels="labels.yaml",
    ...                       recording="sub-01_ses-CON_thermal.zarr")  # doctest: +SKIP
    >>> ds.roi.sel(frame=120)                                          # doctest: +SKIP
    """
    lmap = read_label_map(labels)
    files = _expand(path_or_paths)
    fmt = format or _detect(files)
    check_option("format", fmt, FORMATS)
    if isinstance(frames, str):
        check_option("frames", frames, ("name", "order"))
    rule = frames if isinstance(frames, str) else (
        "mapping" if isinstance(frames, Mapping) else ("name" if recording else "order"))
    grid = _recording_grid(recording) if recording is not None else None

    records: list[dict] = []
    for f in progress_bar(files, progress, desc="reading annotations", total=len(files)):
        if fmt == "labelme":
            records += _read_labelme_file(f, lmap)
        elif fmt == "coco":
            records += _read_coco_file(f, lmap, keep_empty)
        else:
            records += _read_png_file(f, lmap)
    if not records:
        raise AnnotationError(f"{files[0]}: no annotated frames found in {len(files)} file(s)",
                              files[0])

    # frame indices
    index = []
    for k, r in enumerate(records):
        if rule == "order":
            index.append(k)
            continue
        if rule == "mapping":
            fi = frames.get(r["ref"], frames.get(r["image"]))
            if fi is None:
                raise FrameReferenceError(f"{r['source']}: image {r['ref']!r} is not in the "
                                          f"frames= mapping ({len(frames)} entries)", r["source"])
        else:
            fi = frame_from_name(r["ref"])
            if fi is None:
                raise FrameReferenceError(f"{r['source']}: image {r['ref']!r} has no trailing "
                                          "frame number (expected e.g. frame_000123.png); give "
                                          "frames= a mapping or 'order'", r["source"])
        index.append(int(fi))
    if rule != "order":
        seen: dict[int, str] = {}
        for fi, r in zip(index, records, strict=True):
            if fi in seen:
                raise FrameReferenceError(f"{r['source']}: frame {fi} ({r['ref']!r}) is "
                                          f"annotated twice (also in {seen[fi]})", r["source"])
            seen[fi] = f"{r['source']} ({r['ref']!r})"

    # sizes and the recording
    shape0 = records[0]["shape"]
    for fi, r in zip(index, records, strict=True):
        if grid is not None:
            n_rec, rshape, _, rpath = grid
            if fi < 0 or fi >= n_rec.size:
                raise FrameReferenceError(f"{r['source']}: image {r['ref']!r} -> frame {fi}, "
                                          f"but the recording {rpath} has frames 0..."
                                          f"{n_rec.size - 1}", r["source"])
            if tuple(r["shape"]) != rshape:
                raise ImageSizeError(f"{r['source']}: image {r['ref']!r} (frame {fi}) is "
                                     f"{r['shape'][0]}x{r['shape'][1]} (h x w) but the recording "
                                     f"{rpath} is {rshape[0]}x{rshape[1]}", r["source"])
        elif tuple(r["shape"]) != tuple(shape0):
            raise ImageSizeError(f"{r['source']}: image {r['ref']!r} is {r['shape'][0]}x"
                                 f"{r['shape'][1]} (h x w) but {records[0]['ref']!r} is "
                                 f"{shape0[0]}x{shape0[1]}; one store holds one frame size",
                                 r["source"])

    order = np.argsort(index, kind="stable") if rule != "order" else np.arange(len(index))
    recs = [records[k] for k in order]
    idx = np.asarray([index[k] for k in order], dtype=np.int64)
    shapes_log = []
    for fi, r in zip(idx.tolist(), recs, strict=True):
        for row in r["log"]:
            shapes_log.append({"frame": fi, "image": r["image"], **row})
    flags = {name: (list(codes), " ".join(codes.values())) for name, codes in (
        ("roi", {0: "background", 1: "left_calf", 2: "right_calf"}),
        ("vessels", {0: "none", 1: "vein", 2: "perforator"}),
        ("ignore", {0: "scored", 1: "ignored"}))}
    data = {}
    for name in ("roi", "vessels", "ignore"):
        data[name] = (("frame", "y", "x"),
                      np.stack([getattr(r["canvas"], name) for r in recs]),
                      {"long_name": f"{name} mask", "flag_values": flags[name][0],
                       "flag_meanings": flags[name][1]})
    coords: dict[str, Any] = {
        "frame": ("frame", idx, {"long_name": "frame index in the recording" if rule != "order"
                                 else "position of the image in the order read"}),
        "image": ("frame", np.asarray([r["image"] for r in recs], dtype=str),
                  {"long_name": "image file the annotation refers to"}),
        "source": ("frame", np.asarray([r["source"] for r in recs], dtype=str),
                   {"long_name": "annotation file"}),
    }
    if grid is not None and grid[2] is not None:
        coords["time"] = ("frame", grid[2][idx], {"units": "s",
                                                  "long_name": "time of the frame in the recording"})
    ds = xr.Dataset(data, coords=coords, attrs={
        "irtrepro_store": "annotation-masks",
        "format": fmt,
        "label_map": json.dumps({str(k): v for k, v in lmap.items()}),
        "overlap_rule": OVERLAP_RULE,
        "frame_rule": {"name": "trailing integer of the image file name's stem",
                       "order": "loose images, one frame per image in the order read",
                       "mapping": "explicit {image file name: frame index} mapping"}[rule],
        "recording": "" if recording is None else str(recording),
        "shapes": json.dumps(shapes_log),
    })
    n_skip = sum(not s["drawn"] for s in shapes_log)
    logger.info("read %d annotated frames (%s, %d shapes, %d skipped) from %d file(s)",
                len(recs), fmt, len(shapes_log), n_skip, len(files))
    return ds


def shapes_table(ds: xr.Dataset):
    """One row per shape / annotation / pixel value read: where each label came from.

    Columns frame, image, source, index (shape or annotation index in its file, or the pixel
    value), label (as the tool wrote it), class, shape_type, drawn (False: skipped), note (why
    skipped), and for COCO iscrowd.
    """
    import pandas as pd

    return pd.DataFrame(json.loads(ds.attrs.get("shapes", "[]")))


def write_annotations(path: str | os.PathLike, ds: xr.Dataset) -> Path:
    """Write a sparse mask store (from :func:`read_annotations`) to zarr, atomically.

    Returns
    -------
    Path
        ``path`` (replaced if it exists; never left half-written).
    """
    path = Path(path)
    enc = {n: {"dtype": "uint8", "_FillValue": None,
               "chunks": (1, ds.sizes["y"], ds.sizes["x"])} for n in ("roi", "vessels", "ignore")}
    enc["frame"] = {"dtype": "int64"}
    if "time" in ds.coords:
        enc["time"] = {"dtype": "float64"}
    out = ds.copy()
    for c in ("image", "source"):   # variable-length strings (fixed-width unicode is not core)
        out.coords[c] = out[c].astype(object)
    with atomic_path(path, is_dir=True) as tmp:
        out.to_zarr(tmp, mode="w", consolidated=False, encoding=enc, zarr_format=3)
    logger.info("wrote %d annotated frames to %s", ds.sizes["frame"], path)
    return path


def open_annotations(path: str | os.PathLike) -> xr.Dataset:
    """Open a sparse mask store written by :func:`write_annotations` (loaded into memory)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise FormatError(f"{path}: not a zarr mask store (no zarr.json)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        ds = xr.open_zarr(path, consolidated=False).load()
    if ds.attrs.get("irtrepro_store") != "annotation-masks":
        raise FormatError(f"{path}: not an annotation mask store (irtrepro_store="
                          f"{ds.attrs.get('irtrepro_store')!r})")
    for c in ("image", "source"):
        ds.coords[c] = ("frame", np.asarray(ds[c].values.tolist(), dtype=str), ds[c].attrs)
    return ds.astype({n: np.uint8 for n in ("roi", "vessels", "ignore")})


# --------------------------------------------------------------------------------------------
# registry: kind thermal_masks (the manifest's annotation kind)
# --------------------------------------------------------------------------------------------

def _sniff_labelme(head: bytes, path: Path) -> bool:
    if path.is_dir():
        js = sorted(path.glob("*.json"))
        return bool(js) and _json_kind(js[0]) == "labelme"
    return path.suffix.lower() == ".json" and b'"shapes"' in head


def _sniff_coco(head: bytes, path: Path) -> bool:
    return (path.is_file() and path.suffix.lower() == ".json" and b'"shapes"' not in head
            and (b'"images"' in head or b'"annotations"' in head))


def _sniff_png_labels(head: bytes, path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("*.png")) and not any(path.glob("*.json"))
    return head.startswith(b"\x89PNG")


#: Keyword options the registered annotation readers pass on to read_annotations.
_READER_OPTIONS = ("labels", "frames", "recording", "keep_empty", "progress")


def _reader(fmt: str):
    def read(path, **options):
        return read_annotations(path, format=fmt, **options)
    read.__doc__ = f"{fmt} annotations -> sparse mask store (see read_annotations)"
    return read


register("thermal_masks", "labelme", extensions=(".json",), sniff=_sniff_labelme,
         description="LabelMe JSON (polygon, rectangle, circle, mask shapes)",
         options=_READER_OPTIONS)(_reader("labelme"))
register("thermal_masks", "coco", extensions=(), sniff=_sniff_coco,
         description="COCO instances JSON (polygons, RLE; CVAT, Label Studio)",
         options=_READER_OPTIONS)(_reader("coco"))
register("thermal_masks", "png-labels", extensions=(".png",), sniff=_sniff_png_labels,
         description="index or palette PNG label maps, one per frame",
         options=_READER_OPTIONS)(_reader("png-labels"))
