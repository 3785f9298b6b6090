"""Annotation files "as a lab would have them", written from ground-truth masks.

The generator's ``roi`` and ``vessels`` masks of a few frames become the files an annotator
would hand over: LabelMe JSON (one file per frame; calves and veins as polygons traced from the
masks, perforators as circles), one COCO JSON file as CVAT's "COCO 1.0" export writes it
(polygons, and masks as crowd RLE with uncompressed counts), and PNG label maps (palette PNGs,
one per frame). They go back through :func:`irtrepro.io.annotations.read_annotations`, the
reader of a lab's files.

Coordinates: LabelMe points are drawn by labelme's converter (PIL ``ImageDraw.polygon``) with
pixel ``(row i, column j)`` centred at ``(x, y) = (j, i)``; COCO polygons are rasterised by
pycocotools with pixel ``(i, j)`` covering ``[j, j + 1) x [i, i + 1)``. The traced outline (the
0.5 iso-line of the mask through pixel centres) is written in each tool's convention, so both
rasterise back to the mask up to boundary pixels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from irtrepro._atomic import atomic_path

__all__ = [
    "COCO_LABELS",
    "LABELME_LABELS",
    "PNG_VALUES",
    "mask_polygons",
    "write_coco",
    "write_label_map",
    "write_label_pngs",
    "write_labelme",
]

#: Tool label of each project class in the LabelMe files (what a lab might type).
LABELME_LABELS = {"left_calf": "L", "right_calf": "R", "vein": "vein", "perforator": "perf"}
#: Category names of the COCO file (CVAT labels).
COCO_LABELS = {"left_calf": "left calf", "right_calf": "right calf", "vein": "vein",
               "perforator": "perforator"}
#: Pixel value of each class in the PNG label maps (vessels drawn over the calves).
PNG_VALUES = {"left_calf": 1, "right_calf": 2, "vein": 3, "perforator": 4}

_LAYERS = (("left_calf", "roi", 1), ("right_calf", "roi", 2), ("vein", "vessels", 1),
           ("perforator", "vessels", 2))


def _simplify(pts: np.ndarray, tol: float) -> np.ndarray:
    """Douglas-Peucker on an open polyline ``(N, 2)``; keeps the end points."""
    if tol <= 0 or len(pts) < 3:
        return pts
    keep = np.zeros(len(pts), bool)
    keep[[0, -1]] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = pts[b] - pts[a]
        rel = pts[a + 1:b] - pts[a]
        norm = float(np.hypot(*seg))
        d = (np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm if norm > 0
             else np.hypot(rel[:, 0], rel[:, 1]))
        k = int(np.argmax(d))
        if d[k] > tol:
            keep[a + 1 + k] = True
            stack += [(a, a + 1 + k), (a + 1 + k, b)]
    return pts[keep]


def mask_polygons(mask: np.ndarray, *, tolerance: float = 0.5, min_area: float = 0.5
                  ) -> list[np.ndarray]:
    """Outer outlines of a binary mask as polygons, ``(x, y)`` with pixel centres at integers.

    Parameters
    ----------
    mask : ndarray of bool, (M, N)
    tolerance : float
        Douglas-Peucker tolerance, pixels (0 keeps every contour vertex).
    min_area : float
        Outlines enclosing less than this (pixels) are dropped.

    Returns
    -------
    list of ndarray (K, 2)
        One open vertex list per connected region (the closing vertex is not repeated);
        holes are not returned (LabelMe and COCO polygons cannot hold them).

    Notes
    -----
    The outline is the 0.5 iso-line of the mask (contourpy, which matplotlib uses): it runs
    half way between pixel centres inside and outside the region.
    """
    import contourpy

    m = np.pad(np.asarray(mask, bool), 1).astype(np.float64)
    out = []
    for line in contourpy.contour_generator(z=m, line_type="Separate").lines(0.5):
        x, y = line[:, 0], line[:, 1]
        area = 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
        if area < min_area:   # holes run the other way round (negative area)
            continue
        ring = line[:-1] if np.allclose(line[0], line[-1]) else line
        # simplify the closed ring as two halves so that the start vertex is not special
        h = len(ring) // 2
        pts = np.concatenate([_simplify(ring[:h + 1], tolerance)[:-1],
                              _simplify(np.vstack([ring[h:], ring[:1]]), tolerance)[:-1]])
        if len(pts) >= 3:
            out.append(pts - 1.0)   # undo the padding
    return out


def _regions(mask: np.ndarray):
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    for k in range(1, n + 1):
        yield lab == k


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _check(roi, vessels, frames):
    roi = np.asarray(roi)
    vessels = np.asarray(vessels)
    if roi.ndim == 2:
        roi, vessels = roi[None], vessels[None]
    frames = list(range(len(roi))) if frames is None else [int(f) for f in frames]
    if roi.shape != vessels.shape or len(frames) != len(roi):
        raise ValueError(f"roi {roi.shape}, vessels {vessels.shape} and {len(frames)} frame "
                         "indices: expected (frame, y, x) masks of one shape, one index each")
    return roi, vessels, frames


def write_labelme(folder: str | os.PathLike, roi: np.ndarray, vessels: np.ndarray,
                  frames: Sequence[int] | None = None, *,
                  labels: Mapping[str, str] = LABELME_LABELS,
                  image_name: str = "frame_{:06d}.png", tolerance: float = 0.5,
                  perforators_as_circles: bool = True) -> list[Path]:
    """One LabelMe (5.x) JSON file per frame, as labelme saves them.

    Parameters
    ----------
    folder : path
        Created if needed; files ``frame_000123.json`` (the image name's stem).
    roi, vessels : ndarray (frame, y, x) uint8
        Ground-truth masks (codes of :mod:`irtrepro.vision`).
    frames : sequence of int, optional
        Frame index of each mask in its recording (default 0, 1, ...); used in the image names.
    labels : mapping
        Tool label of each class (default :data:`LABELME_LABELS`).
    image_name : str
        Format of ``imagePath`` from the frame index.
    tolerance : float
        Polygon simplification, pixels.
    perforators_as_circles : bool
        Perforators as ``circle`` shapes (centre + a point on the rim, radius from the area).

    Returns
    -------
    list of Path
        The files written. Shapes are in the order calves, veins, perforators, so that the
        vessels lie over the calves (LabelMe draws later shapes over earlier).
    """
    roi, vessels, frames = _check(roi, vessels, frames)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r, v, fi in zip(roi, vessels, frames, strict=True):
        shapes = []
        for cls, layer, code in _LAYERS:
            m = (r if layer == "roi" else v) == code
            if cls == "perforator" and perforators_as_circles:
                for reg in _regions(m):
                    yy, xx = np.nonzero(reg)
                    cx, cy = float(xx.mean()), float(yy.mean())
                    # PIL's ellipse box is inclusive: radius of the area less half a pixel
                    rad = max(float(np.sqrt(reg.sum() / np.pi)) - 0.5, 0.5)
                    shapes.append(_shape(labels[cls], [[cx, cy], [cx + rad, cy]], "circle"))
                continue
            for poly in mask_polygons(m, tolerance=tolerance):
                shapes.append(_shape(labels[cls], np.round(poly, 3).tolist(), "polygon"))
        name = image_name.format(fi)
        doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": name,
               "imageData": None, "imageHeight": int(r.shape[0]), "imageWidth": int(r.shape[1])}
        paths.append(_write_text(folder / (Path(name).stem + ".json"),
                                 json.dumps(doc, indent=2)))
    return paths


def _shape(label: str, points, shape_type: str) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None}


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO RLE with a list of counts (column-major runs, starting with zeros), as CVAT writes."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def write_coco(path: str | os.PathLike, roi: np.ndarray, vessels: np.ndarray,
               frames: Sequence[int] | None = None, *,
               labels: Mapping[str, str] = COCO_LABELS,
               image_name: str = "frame_{:06d}.png", rle: Sequence[str] = ("vein",),
               compressed: Sequence[str] = (), tolerance: float = 0.5) -> Path:
    """One COCO instances file for all frames, laid out as CVAT's "COCO 1.0" export.

    Parameters
    ----------
    path : path
        Target ``.json`` (written atomically).
    roi, vessels, frames, image_name, tolerance
        As :func:`write_labelme`.
    labels : mapping
        Category name of each class (default :data:`COCO_LABELS`); category ids 1, 2, ... in
        the order left_calf, right_calf, vein, perforator.
    rle : sequence of str
        Classes written as one crowd mask per frame (``iscrowd: 1``, RLE with uncompressed
        ``counts`` list, as CVAT writes masks); the others as one polygon annotation per
        connected region (``iscrowd: 0``).
    compressed : sequence of str
        Classes among ``rle`` whose counts are written compressed (the pycocotools string).

    Returns
    -------
    Path
    """
    import pycocotools.mask as mask_utils

    roi, vessels, frames = _check(roi, vessels, frames)
    cat_id = {cls: k + 1 for k, (cls, _, _) in enumerate(_LAYERS)}
    doc = {"licenses": [{"name": "", "id": 0, "url": ""}],
           "info": {"contributor": "", "date_created": "", "description": "", "url": "",
                    "version": "", "year": ""},
           "categories": [{"id": cat_id[c], "name": labels[c], "supercategory": ""}
                          for c, _, _ in _LAYERS],
           "images": [], "annotations": []}
    for img_id, (r, v, fi) in enumerate(zip(roi, vessels, frames, strict=True), start=1):
        h, w = r.shape
        doc["images"].append({"id": img_id, "width": int(w), "height": int(h),
                              "file_name": image_name.format(fi), "license": 0,
                              "flickr_url": "", "coco_url": "", "date_captured": 0})
        for cls, layer, code in _LAYERS:
            m = (r if layer == "roi" else v) == code
            if not m.any():
                continue
            if cls in rle:
                enc = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                seg = ({"size": [int(h), int(w)], "counts": enc["counts"].decode("ascii")}
                       if cls in compressed else _uncompressed_rle(m))
                parts = [(seg, enc, 1)]
            else:
                parts = []
                for poly in mask_polygons(m, tolerance=tolerance):
                    flat = np.round(poly + 0.5, 3).ravel().tolist()
                    enc = mask_utils.merge(mask_utils.frPyObjects([flat], int(h), int(w)))
                    parts.append(([flat], enc, 0))
            for seg, enc, crowd in parts:
                doc["annotations"].append({
                    "id": len(doc["annotations"]) + 1, "image_id": img_id,
                    "category_id": cat_id[cls], "segmentation": seg,
                    "area": float(mask_utils.area(enc)),
                    "bbox": [float(b) for b in mask_utils.toBbox(enc)],
                    "iscrowd": crowd, "attributes": {"occluded": False}})
    return _write_text(Path(path), json.dumps(doc))


def write_label_pngs(folder: str | os.PathLike, roi: np.ndarray, vessels: np.ndarray,
                     frames: Sequence[int] | None = None, *,
                     values: Mapping[str, int] = PNG_VALUES,
                     image_name: str = "frame_{:06d}.png") -> list[Path]:
    """One palette PNG label map per frame (pixel value = class, vessels over calves).

    Returns
    -------
    list of Path
        The files written (``image_name`` formatted with the frame index).
    """
    import PIL.Image

    roi, vessels, frames = _check(roi, vessels, frames)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    palette = [0, 0, 0, 220, 60, 60, 60, 60, 220, 60, 200, 60, 240, 200, 40]
    paths = []
    for r, v, fi in zip(roi, vessels, frames, strict=True):
        lab = np.zeros(r.shape, np.uint8)
        for cls, layer, code in _LAYERS:
            lab[(r if layer == "roi" else v) == code] = values[cls]
        im = PIL.Image.fromarray(lab, mode="P")
        im.putpalette(palette + [0] * (768 - len(palette)))
        p = folder / image_name.format(fi)
        with atomic_path(p) as tmp:
            im.save(tmp, format="PNG")
        paths.append(p)
    return paths


def write_label_map(path: str | os.PathLike, mapping: Mapping) -> Path:
    """A label map YAML, one ``tool label: class`` line each (e.g. from :data:`LABELME_LABELS`
    inverted: ``L: left_calf``)."""
    import yaml

    return _write_text(Path(path), yaml.safe_dump(dict(mapping), sort_keys=False,
                                                  allow_unicode=True))
