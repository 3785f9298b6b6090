"""Annotation import: LabelMe, COCO, PNG label maps -> sparse mask store.

Reference rasterisations come from the tools themselves: pycocotools (installed), and labelme's
``labelme/utils/shape.py`` (``shape_to_mask``, ``shapes_to_label``) loaded on its own from an
installed labelme (``pip install --target DIR --no-deps labelme``; give ``DIR`` in
``IRTREPRO_LABELME_REF`` or put it on ``sys.path``). labelme's package ``__init__`` needs Qt and
onnxruntime, so only that file is loaded; the tests skip when it is absent. The labelme example
check reads labelme's own ``examples/instance_segmentation`` folder (its LabelMe files and the
``SegmentationClassNpy`` arrays its ``labelme2voc.py`` wrote) from ``IRTREPRO_LABELME_EXAMPLES``;
nothing of labelme is copied into this repository.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from irtrepro.errors import FormatError, OptionError
from irtrepro.io.annotations import (
    FrameReferenceError,
    ImageSizeError,
    ShapeError,
    UnknownLabelError,
    frame_from_name,
    open_annotations,
    read_annotations,
    read_label_map,
    shapes_table,
    write_annotations,
)

MAP = {"L": "left_calf", "R": "right_calf", "vein": "vein", "perf": "perforator",
       "__ignore__": "ignore", "_background_": "background"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _shape(label, points, shape_type="polygon", **extra):
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None, **extra}


def _labelme(path: Path, shapes, h=20, w=30, image="frame_000005.png") -> Path:
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image,
           "imageData": None, "imageHeight": h, "imageWidth": w}
    path.write_text(json.dumps(doc))
    return path


def _recording(path: Path, n=10, h=20, w=30) -> Path:
    import xarray as xr

    from irtrepro.io.thermal import write_frames

    frames = xr.DataArray(np.full((n, h, w), 30.0, np.float32), dims=("frame", "y", "x"),
                          coords={"time": ("frame", np.arange(n) * 0.5)})
    return write_frames(path, frames)


def _boundary(truth: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood in the truth holds more than one class."""
    from scipy import ndimage

    out = np.zeros(truth.shape, bool)
    for k in range(len(truth)):
        out[k] = ndimage.maximum_filter(truth[k], 3) != ndimage.minimum_filter(truth[k], 3)
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def labelme_shape():
    """labelme's own ``labelme/utils/shape.py``, loaded without the rest of the package."""
    roots = [os.environ.get("IRTREPRO_LABELME_REF", ""), *sys.path]
    for root in filter(None, roots):
        f = Path(root) / "labelme" / "utils" / "shape.py"
        if f.is_file():
            break
    else:
        pytest.skip("labelme is not installed (pip install --target DIR --no-deps labelme, "
                    "then IRTREPRO_LABELME_REF=DIR); no labelme reference to compare with")
    saved = {k: sys.modules.get(k) for k in ("labelme", "labelme._label_file")}
    pkg = types.ModuleType("labelme")
    pkg.__path__ = []
    stub = types.ModuleType("labelme._label_file")
    stub.ShapeDict = dict      # only a type hint in shape.py
    sys.modules.update({"labelme": pkg, "labelme._label_file": stub})
    try:
        spec = importlib.util.spec_from_file_location("_labelme_shape_ref", f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mod


@pytest.fixture(scope="module")
def truth_masks():
    """Ground-truth roi/vessels of 3 generator frames (120 x 160)."""
    from irtrepro.synth.thermogram import render_session
    from tests.synth.test_thermogram import make_truth

    ds = render_session(make_truth(20), shape=(120, 160), seed=0, frame_interval_s=5)
    return ds


# --------------------------------------------------------------------------------------------
# label map and frame names
# --------------------------------------------------------------------------------------------

def test_label_map_yaml_and_bad_class(tmp_path):
    p = tmp_path / "labels.yaml"
    p.write_text("L: left_calf\nR: right_calf\nvein: vein\n1: perforator\n")
    assert read_label_map(p) == {"L": "left_calf", "R": "right_calf", "vein": "vein",
                                 1: "perforator"}
    p.write_text("L: left_calf\nS: skin\n")
    with pytest.raises(OptionError, match=r"labels.yaml: label 'S' maps to 'skin'"):
        read_label_map(p)


def test_frame_from_name():
    assert frame_from_name("frame_000123.png") == 123
    assert frame_from_name("S01_CON_00123.jpg") == 123
    assert frame_from_name("images\\frame_7.PNG") == 7        # LabelMe on Windows
    assert frame_from_name("upload/1/8f2a3b1c-frame_000042.png") == 42   # Label Studio
    assert frame_from_name("calf.png") is None


# --------------------------------------------------------------------------------------------
# LabelMe
# --------------------------------------------------------------------------------------------

def test_labelme_shapes_overlap_rule_and_sources(tmp_path):
    shapes = [
        _shape("L", [[1, 1], [12, 1], [12, 18], [1, 18]]),           # 0 left calf polygon
        _shape("R", [[15, 1], [28, 18]], "rectangle"),               # 1 right calf rectangle
        _shape("vein", [[3, 4], [10, 4], [10, 6], [3, 6]]),           # 2 vein inside L
        _shape("perf", [[21, 10], [23, 10]], "circle"),              # 3 perforator in R (r=2)
        _shape("vein", [[13, 0], [14, 0], [14, 3]]),                  # 4 vein outside calves
        _shape("vein", [[2, 15], [9, 15]], "line"),                  # 5 line: skipped
        _shape("__ignore__", [[1, 16], [5, 16], [5, 18], [1, 18]]),   # 6 ignore in L
        _shape("_background_", [[25, 1], [28, 1], [28, 3], [25, 3]]),  # 7 hole in R
    ]
    f = _labelme(tmp_path / "frame_000005.json", shapes)
    ds = read_annotations(f, labels=MAP, recording=_recording(tmp_path / "rec.zarr"))
    assert ds.frame.values.tolist() == [5] and ds.time.values.tolist() == [2.5]
    assert ds.image.values.tolist() == ["frame_000005.png"]
    assert ds.source.values.tolist() == [str(f)]
    roi, ves, ign = (ds[n].values[0] for n in ("roi", "vessels", "ignore"))
    assert roi[10, 5] == 1 and roi[10, 20] == 2 and roi[10, 0] == 0
    assert roi[5, 5] == 1 and ves[5, 5] == 1          # vein over calf: roi stays the calf
    assert ves[10, 22] == 2 and roi[10, 22] == 2
    assert ves[1, 14] == 1 and roi[1, 14] == 0        # vessel outside calves keeps its code
    assert ves[15, 5] == 0                            # the line drew nothing
    assert ign[17, 3] == 1 and roi[17, 3] == 1        # ignore is a layer of its own
    assert roi[2, 26] == 0 and roi[5, 26] == 2        # background cleared part of R
    tab = shapes_table(ds)
    assert tab["index"].tolist() == list(range(8))
    assert (tab["source"] == str(f)).all()
    line = tab.set_index("index").loc[5]
    assert not line.drawn and "no area" in line.note
    assert ds.attrs["format"] == "labelme" and "later shapes over earlier" in ds.attrs["overlap_rule"]
    assert json.loads(ds.attrs["label_map"])["L"] == "left_calf"


def test_labelme_later_shape_over_earlier(tmp_path):
    shapes = [_shape("L", [[0, 0], [29, 19]], "rectangle"),
              _shape("R", [[10, 0], [29, 19]], "rectangle")]
    ds = read_annotations(_labelme(tmp_path / "a.json", shapes), labels=MAP)
    assert ds.roi.values[0, 5, 5] == 1 and ds.roi.values[0, 5, 15] == 2
    # loose images: frame is the position, image the file named by imagePath
    assert ds.frame.values.tolist() == [0] and "time" not in ds.coords


def test_labelme_mask_shape(tmp_path, labelme_shape):
    import PIL.Image

    crop = np.zeros((4, 6), bool)
    crop[1:3, 1:5] = True
    buf = io.BytesIO()
    PIL.Image.fromarray(crop).save(buf, format="PNG")
    s = _shape("L", [[10, 5], [15, 8]], "mask", mask=base64.b64encode(buf.getvalue()).decode())
    ds = read_annotations(_labelme(tmp_path / "m.json", [s]), labels=MAP)
    # labelme's shapes_to_label places the crop at [y1:y2+1, x1:x2+1]
    ref = dict(s, mask=crop)
    cls, _ = labelme_shape.shapes_to_label((20, 30), [ref], {"L": 1})
    np.testing.assert_array_equal(ds.roi.values[0], cls)


def test_labelme_agrees_with_labelme_shape_to_mask(tmp_path, labelme_shape, truth_masks):
    from irtrepro.synth.annotations import LABELME_LABELS, write_labelme

    frames = [0, 2, 3]
    roi = truth_masks.roi.values[frames]
    ves = truth_masks.vessels.values[frames]
    files = write_labelme(tmp_path / "lm", roi, ves, frames)
    # hand-made shapes of every area type, overlapping, fractional coordinates
    extra = [_shape("L", [[3.4, 2.2], [40.7, 5.1], [35.2, 60.9], [6.6, 50.3]]),
             _shape("R", [[50.5, 10.5], [90.2, 70.7]], "rectangle"),
             _shape("vein", [[20.3, 30.6], [27.9, 33.1]], "circle"),
             _shape("perf", [[60, 40], [70, 40], [70, 50], [60, 50]], "oriented_rectangle")]
    files.append(_labelme(tmp_path / "lm" / "frame_000009.json", extra, 120, 160,
                          "frame_000009.png"))
    ds = read_annotations(tmp_path / "lm", labels={v: k for k, v in LABELME_LABELS.items()})
    n_bad = 0
    for k, f in enumerate(files):
        doc = json.loads(f.read_text())
        ref = {"roi": np.zeros((120, 160), np.uint8), "vessels": np.zeros((120, 160), np.uint8)}
        for s in doc["shapes"]:   # labelme2voc: cls[mask] = id, later over earlier
            layer, code = {"L": ("roi", 1), "R": ("roi", 2), "vein": ("vessels", 1),
                           "perf": ("vessels", 2)}[s["label"]]
            m = labelme_shape.shape_to_mask((120, 160), s["points"], s["shape_type"])
            ref[layer][m] = code
        n_bad += int((ds.roi.values[k] != ref["roi"]).sum())
        n_bad += int((ds.vessels.values[k] != ref["vessels"]).sum())
    assert n_bad == 0     # same PIL calls as labelme: identical pixels


def test_labelme_examples_match_labelme2voc(tmp_path):
    root = os.environ.get("IRTREPRO_LABELME_EXAMPLES")
    if not root or not (Path(root) / "data_annotated").is_dir():
        pytest.skip("IRTREPRO_LABELME_EXAMPLES is not set to labelme's "
                    "examples/instance_segmentation folder")
    root = Path(root)
    names = (root / "labels.txt").read_text().split("\n")
    ids = {n.strip(): i - 1 for i, n in enumerate(names) if n.strip()}
    # the layered rule equals labelme's single label image when all classes share the roi
    # layer: person -> left_calf, every other object -> right_calf
    lmap = {n: ("ignore" if n == "__ignore__" else "background" if n == "_background_"
                else "left_calf" if n == "person" else "right_calf") for n in ids}
    files = sorted((root / "data_annotated").glob("*.json"))
    assert len(files) == 3
    total_bad = 0
    for f in files:     # the example images differ in size: one store each
        ds = read_annotations(f, labels=lmap)
        cls = np.load(root / "data_dataset_voc" / "SegmentationClassNpy" / (f.stem + ".npy"))
        expected = np.where(cls == ids["person"], 1, np.where(cls > 0, 2, 0))
        scored = (cls != -1) & (ds.ignore.values[0] == 0)
        total_bad += int((ds.roi.values[0][scored] != expected[scored]).sum())
        # labelme's -1 is the ignore region not drawn over by a later shape; ours keeps it all
        assert (ds.ignore.values[0][cls == -1] == 1).all()
    # 1 pixel of 544,000: (290, 104) of 2011_000006, where labelme's own shapes_to_label run
    # today (Pillow >= 10) also differs from the array labelme2voc wrote into its repository
    assert total_bad <= 1


# --------------------------------------------------------------------------------------------
# COCO
# --------------------------------------------------------------------------------------------

def _coco(path: Path, anns, images=None, cats=None) -> Path:
    images = images or [{"id": 1, "width": 30, "height": 20, "file_name": "frame_000004.png"}]
    cats = cats or [{"id": 1, "name": "left calf"}, {"id": 2, "name": "right calf"},
                    {"id": 3, "name": "vein"}, {"id": 4, "name": "perforator"}]
    for k, a in enumerate(anns):
        a.setdefault("id", k + 1)
        a.setdefault("image_id", 1)
        a.setdefault("iscrowd", 0)
    path.write_text(json.dumps({"images": images, "categories": cats, "annotations": anns}))
    return path


COCO_MAP = {"left calf": "left_calf", "right calf": "right_calf", "vein": "vein",
            "perforator": "perforator"}


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
def test_coco_agrees_with_pycocotools(tmp_path, truth_masks):
    from pycocotools.coco import COCO

    from irtrepro.synth.annotations import COCO_LABELS, write_coco

    frames = [1, 2, 3]
    roi = truth_masks.roi.values[frames]
    ves = truth_masks.vessels.values[frames]
    f = write_coco(tmp_path / "coco.json", roi, ves, frames, rle=("vein", "perforator"),
                   compressed=("perforator",))
    doc = json.loads(f.read_text())
    kinds = {(a["iscrowd"], type(a["segmentation"]).__name__,
              type(a["segmentation"].get("counts")).__name__ if isinstance(
                  a["segmentation"], dict) else "") for a in doc["annotations"]}
    assert kinds == {(0, "list", ""), (1, "dict", "list"), (1, "dict", "str")}
    ds = read_annotations(f, labels={v: k for k, v in COCO_LABELS.items()})
    assert ds.frame.values.tolist() == [0, 1, 2]       # no recording: loose images in order
    assert ds.image.values.tolist() == [f"frame_{i:06d}.png" for i in frames]
    coco = COCO(str(f))
    layer = {1: ("roi", 1), 2: ("roi", 2), 3: ("vessels", 1), 4: ("vessels", 2)}
    n_bad = 0
    for k, img in enumerate(coco.loadImgs(coco.getImgIds())):
        ref = {"roi": np.zeros((120, 160), np.uint8), "vessels": np.zeros((120, 160), np.uint8)}
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            name, code = layer[ann["category_id"]]
            ref[name][coco.annToMask(ann).astype(bool)] = code
        n_bad += int((ds.roi.values[k] != ref["roi"]).sum())
        n_bad += int((ds.vessels.values[k] != ref["vessels"]).sum())
    assert n_bad == 0


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
def test_coco_order_crowd_bbox_only_and_empty_images(tmp_path):
    import pycocotools.mask as mask_utils

    from irtrepro.synth.annotations import _uncompressed_rle

    m = np.zeros((20, 30), bool)
    m[5:10, 2:8] = True
    anns = [{"category_id": 1, "segmentation": [[0, 0, 30, 0, 30, 20, 0, 20]]},   # all L
            {"category_id": 2, "segmentation": [[15, 0, 30, 0, 30, 20, 15, 20]]},  # R over L
            {"category_id": 3, "segmentation": _uncompressed_rle(m), "iscrowd": 1},
            {"category_id": 4, "segmentation": [], "bbox": [0, 0, 3, 3]}]          # box only
    images = [{"id": 1, "width": 30, "height": 20, "file_name": "frame_000004.png"},
              {"id": 2, "width": 30, "height": 20, "file_name": "frame_000006.png"}]
    f = _coco(tmp_path / "c.json", anns, images)
    ds = read_annotations(f, labels=COCO_MAP, frames="name")
    assert ds.frame.values.tolist() == [4]             # image 2 has no annotation: left out
    roi, ves = ds.roi.values[0], ds.vessels.values[0]
    assert roi[10, 5] == 1 and roi[10, 20] == 2
    np.testing.assert_array_equal(ves == 1, mask_utils.decode(
        mask_utils.frPyObjects(_uncompressed_rle(m), 20, 30)).astype(bool))
    assert np.array_equal(ves == 1, m) and not (ves == 2).any()
    tab = shapes_table(ds).set_index("index")
    assert tab.loc[2, "iscrowd"] == 1 and tab.loc[2, "shape_type"] == "rle"
    assert not tab.loc[3, "drawn"] and "bounding box" in tab.loc[3, "note"]
    kept = read_annotations(f, labels=COCO_MAP, frames="name", keep_empty=True)
    assert kept.frame.values.tolist() == [4, 6] and kept.roi.values[1].max() == 0


def test_coco_label_studio_layout(tmp_path):
    # Label Studio's COCO export: category ids from 0, file_name with the upload folder and
    # a hash prefix, rectangles as empty segmentation with a bbox
    cats = [{"id": 0, "name": "L"}, {"id": 1, "name": "R"}]
    images = [{"width": 30, "height": 20, "id": 0,
               "file_name": "images/8f2a3b1c-frame_000003.png"}]
    anns = [{"image_id": 0, "category_id": 0, "segmentation": [[1, 1, 12, 1, 12, 18, 1, 18]],
             "bbox": [1, 1, 11, 17], "ignore": 0, "area": 187.0},
            {"image_id": 0, "category_id": 1, "segmentation": [], "bbox": [15, 1, 13, 17],
             "ignore": 0, "area": 221.0}]
    f = _coco(tmp_path / "result.json", anns, images, cats)
    ds = read_annotations(f, labels=MAP, recording=_recording(tmp_path / "r.zarr"))
    assert ds.frame.values.tolist() == [3] and ds.image.values.tolist() == [
        "8f2a3b1c-frame_000003.png"]
    assert ds.roi.values[0, 5, 5] == 1 and not (ds.roi.values == 2).any()


# --------------------------------------------------------------------------------------------
# PNG label maps
# --------------------------------------------------------------------------------------------

def _png(path: Path, arr: np.ndarray, mode: str = "P") -> Path:
    import PIL.Image

    im = PIL.Image.fromarray(arr.astype(np.uint8), mode="L")
    if mode == "P":
        im = im.convert("P")
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 756)
        im = PIL.Image.fromarray(arr.astype(np.uint8), mode="P")
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 756)
    elif mode == "RGB":
        im = im.convert("RGB")
    im.save(path)
    return path


def test_png_label_maps_palette_and_index(tmp_path):
    a = np.zeros((20, 30), np.uint8)
    a[2:18, 2:12] = 1
    a[2:18, 15:28] = 2
    a[5:8, 4:10] = 3            # vein inside the left calf
    a[0, 12:15] = 3             # vein touching no calf
    a[10, 20] = 255             # labelme2voc writes its -1 (ignore) as 255
    (tmp_path / "png").mkdir()
    _png(tmp_path / "png" / "frame_000002.png", a, "P")
    _png(tmp_path / "png" / "frame_000007.png", a, "L")
    lmap = {1: "left_calf", 2: "right_calf", 3: "vein", 255: "ignore"}
    ds = read_annotations(tmp_path / "png", labels=lmap, recording=_recording(tmp_path / "r.zarr"))
    assert ds.frame.values.tolist() == [2, 7]
    for k in range(2):
        roi, ves, ign = ds.roi.values[k], ds.vessels.values[k], ds.ignore.values[k]
        assert roi[6, 6] == 1 and ves[6, 6] == 1     # vein pixel takes its calf's roi
        assert roi[0, 13] == 0 and ves[0, 13] == 1 and roi[1, 13] == 0
        assert ign[10, 20] == 1 and ign.sum() == 1
        assert (roi == 2).sum() == 16 * 13 - 1
    with pytest.raises(UnknownLabelError, match=r"frame_000002.png: pixel value 3: label 3 "):
        read_annotations(tmp_path / "png", labels={1: "left_calf", 2: "right_calf",
                                                   255: "ignore"})
    _png(tmp_path / "rgb.png", a, "RGB")
    with pytest.raises(FormatError, match=r"rgb.png: PNG mode 'RGB'"):
        read_annotations(tmp_path / "rgb.png", labels=lmap)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

def test_unknown_label_names_file_and_shape(tmp_path):
    shapes = [_shape("L", [[1, 1], [5, 1], [5, 5]]), _shape("Vein", [[1, 1], [5, 1], [5, 5]])]
    f = _labelme(tmp_path / "frame_000001.json", shapes)
    with pytest.raises(UnknownLabelError,
                       match=r"frame_000001.json: shape 1: label 'Vein' is not in the label map"
                             r".*did you mean 'vein'"):
        read_annotations(f, labels=MAP)
    c = _coco(tmp_path / "c.json", [{"category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]]},
                                    {"category_id": 9, "segmentation": [[1, 1, 5, 1, 5, 5]]}])
    with pytest.raises(UnknownLabelError, match=r"c.json: annotation 1 \(id 2\): category_id 9"):
        read_annotations(c, labels=COCO_MAP)
    c = _coco(tmp_path / "c.json", [{"category_id": 2, "segmentation": [[1, 1, 5, 1, 5, 5]]}],
              cats=[{"id": 2, "name": "calf"}])
    with pytest.raises(UnknownLabelError, match=r"c.json: annotation 0: label 'calf'"):
        read_annotations(c, labels=COCO_MAP)


def test_polygon_with_fewer_than_three_points(tmp_path):
    f = _labelme(tmp_path / "frame_000001.json",
                 [_shape("L", [[1, 1], [5, 1], [5, 5]]), _shape("R", [[1, 1], [5, 1]])])
    with pytest.raises(ShapeError, match=r"frame_000001.json: shape 1 \('R'\): polygon has 2 "
                                         r"points; expected at least 3"):
        read_annotations(f, labels=MAP)
    # pycocotools would read a 4-number polygon as a bounding box: refused, named
    c = _coco(tmp_path / "c.json", [{"category_id": 1, "segmentation": [[1, 1, 5, 1]]}])
    with pytest.raises(ShapeError, match=r"c.json: annotation 0 \(id 1\): polygon 0 has 2 points"):
        read_annotations(c, labels=COCO_MAP)


def test_frame_not_in_recording(tmp_path):
    rec = _recording(tmp_path / "r.zarr", n=10)
    f = _labelme(tmp_path / "frame_000012.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 image="frame_000012.png")
    with pytest.raises(FrameReferenceError, match=r"frame_000012.json: image 'frame_000012.png'"
                                                  r" -> frame 12, but the recording .*r.zarr "
                                                  r"has frames 0...9"):
        read_annotations(f, labels=MAP, recording=rec)
    g = _labelme(tmp_path / "calf.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 image="calf.png")
    with pytest.raises(FrameReferenceError, match=r"calf.json: image 'calf.png' has no trailing"):
        read_annotations(g, labels=MAP, recording=rec)
    # an explicit mapping links it; a name missing from the mapping is named
    ds = read_annotations(g, labels=MAP, recording=rec, frames={"calf.png": 4})
    assert ds.frame.values.tolist() == [4]
    with pytest.raises(FrameReferenceError, match=r"frame_000012.json: image 'frame_000012.png'"
                                                  r" is not in the frames= mapping"):
        read_annotations([g, f], labels=MAP, frames={"calf.png": 4})
    h = _labelme(tmp_path / "other.json", [_shape("R", [[1, 1], [5, 1], [5, 5]])],
                 image="frame_4.png")
    with pytest.raises(FrameReferenceError, match=r"other.json: frame 4 .* annotated twice"):
        read_annotations([g, h], labels=MAP, frames={"calf.png": 4, "frame_4.png": 4})


def test_image_size_disagrees_with_recording(tmp_path):
    rec = _recording(tmp_path / "r.zarr", n=10, h=20, w=30)
    f = _labelme(tmp_path / "frame_000003.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 h=24, w=32, image="frame_000003.png")
    with pytest.raises(ImageSizeError, match=r"frame_000003.json: image 'frame_000003.png' "
                                             r"\(frame 3\) is 24x32 \(h x w\) but the recording"
                                             r" .*r.zarr is 20x30"):
        read_annotations(f, labels=MAP, recording=rec)
    g = _labelme(tmp_path / "frame_000004.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 image="frame_000004.png")
    with pytest.raises(ImageSizeError, match=r"one store holds one frame size"):
        read_annotations([g, f], labels=MAP)


# --------------------------------------------------------------------------------------------
# round trip from the generator's masks, store, CLI, registry
# --------------------------------------------------------------------------------------------

def test_round_trip_generator_masks(tmp_path, truth_masks):
    from irtrepro.io.thermal import write_frames
    from irtrepro.synth.annotations import (
        COCO_LABELS,
        LABELME_LABELS,
        PNG_VALUES,
        write_coco,
        write_label_map,
        write_label_pngs,
        write_labelme,
    )

    frames = [0, 2, 3]
    roi = truth_masks.roi.values[frames]
    ves = truth_masks.vessels.values[frames]
    rec = write_frames(tmp_path / "rec.zarr", truth_masks["frames"])
    inv = lambda m: {v: k for k, v in m.items()}  # noqa: E731
    write_labelme(tmp_path / "lm", roi, ves, frames)
    write_coco(tmp_path / "coco.json", roi, ves, frames)
    write_label_pngs(tmp_path / "png", roi, ves, frames)
    write_label_map(tmp_path / "lm.yaml", inv(LABELME_LABELS))
    # Dice floors: calves 0.97 (LabelMe: labelme draws each outline's pixels too) / 0.99 (COCO);
    # thin veins and 4-13 px perforators lose most to the boundary in LabelMe (measured 0.80,
    # 0.71); every disagreeing pixel lies on a truth boundary
    floors = {"labelme": (0.97, 0.75, 0.65), "coco": (0.99, 0.99, 0.88),
              "png-labels": (1.0, 1.0, 1.0)}
    edge_r, edge_v = _boundary(roi), _boundary(ves)
    for fmt, src, lmap in (("labelme", tmp_path / "lm", tmp_path / "lm.yaml"),
                           ("coco", tmp_path / "coco.json", inv(COCO_LABELS)),
                           ("png-labels", tmp_path / "png", inv(PNG_VALUES))):
        ds = read_annotations(src, labels=lmap, recording=rec)
        assert ds.attrs["format"] == fmt and ds.frame.values.tolist() == frames
        np.testing.assert_array_equal(ds.time.values, truth_masks.time.values[frames])
        r, v = ds.roi.values, ds.vessels.values
        calf = min(_dice(r == k, roi == k) for k in (1, 2))
        vein, perf = _dice(v == 1, ves == 1), _dice(v == 2, ves == 2)
        assert calf >= floors[fmt][0] and vein >= floors[fmt][1] and perf >= floors[fmt][2], (
            fmt, calf, vein, perf)
        assert not ((r != roi) & ~edge_r).any(), fmt
        assert not ((v != ves) & ~edge_v).any(), fmt
        assert ds.ignore.values.sum() == 0


def test_store_round_trip(tmp_path):
    import xarray as xr

    shapes = [_shape("L", [[1, 1], [12, 1], [12, 18], [1, 18]]),
              _shape("vein", [[3, 4], [10, 4], [10, 6], [3, 6]])]
    f = _labelme(tmp_path / "frame_000005.json", shapes)
    ds = read_annotations(f, labels=MAP, recording=_recording(tmp_path / "rec.zarr"))
    out = write_annotations(tmp_path / "masks.zarr", ds)
    back = open_annotations(out)
    xr.testing.assert_identical(back[["roi", "vessels", "ignore"]],
                                ds[["roi", "vessels", "ignore"]])
    assert back.attrs == ds.attrs
    assert not list(tmp_path.glob(".masks.zarr*"))     # no temporary left behind
    with pytest.raises(FormatError, match="rec.zarr: not an annotation mask store"):
        open_annotations(tmp_path / "rec.zarr")


def test_cli_import(tmp_path, capsys):
    from irtrepro.cli import main

    rec = _recording(tmp_path / "rec.zarr")
    (tmp_path / "lm").mkdir()
    _labelme(tmp_path / "lm" / "frame_000005.json",
             [_shape("L", [[1, 1], [12, 1], [12, 18], [1, 18]]),
              _shape("perf", [[2, 2]], "point")])
    (tmp_path / "map.yaml").write_text("L: left_calf\nperf: perforator\n")
    rc = main(["annotations", "import", str(tmp_path / "lm"), "--labels",
               str(tmp_path / "map.yaml"), "--out", str(tmp_path / "m.zarr"),
               "--recording", str(rec)])
    text = capsys.readouterr().out
    assert rc == 0 and "1 frames, 2 shapes (1 skipped)" in text and "no area" in text
    assert open_annotations(tmp_path / "m.zarr").frame.values.tolist() == [5]
    (tmp_path / "frames.yaml").write_text("frame_000005.png: 8\n")
    rc = main(["annotations", "import", str(tmp_path / "lm"), "--labels",
               str(tmp_path / "map.yaml"), "--out", str(tmp_path / "m.zarr"),
               "--frames", str(tmp_path / "frames.yaml")])
    assert rc == 0 and open_annotations(tmp_path / "m.zarr").frame.values.tolist() == [8]
    (tmp_path / "map.yaml").write_text("L: left_calf\n")
    rc = main(["annotations", "import", str(tmp_path / "lm"), "--labels",
               str(tmp_path / "map.yaml"), "--out", str(tmp_path / "m2.zarr")])
    assert rc == 2 and "label 'perf' is not in the label map" in capsys.readouterr().err
    assert not (tmp_path / "m2.zarr").exists()


def test_registry_kind_thermal_masks(tmp_path):
    from irtrepro.io import detect, read

    (tmp_path / "lm").mkdir()
    _labelme(tmp_path / "lm" / "frame_000005.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])])
    assert detect(tmp_path / "lm", "thermal_masks") == "labelme"
    c = _coco(tmp_path / "c.json", [{"category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]]}])
    assert detect(c, "thermal_masks") == "coco"
    ds = read("thermal_masks", tmp_path / "lm", labels=MAP, frames="name")
    assert ds.frame.values.tolist() == [5]


def test_recording_may_be_a_flir_seq_file(tmp_path):
    """A camera file links frames as a zarr store does: frame count, size and frame times
    come from its header, and a frame it lacks or a wrong size is named."""
    import datetime as dt

    from irtrepro.synth.exports.flir import write_flir_seq

    times = np.array([0.0, 0.5, 1.25, 2.0])
    seq = write_flir_seq(tmp_path / "rec.seq", np.full((4, 20, 30), 31.0, np.float32), times,
                         start_time=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    f = _labelme(tmp_path / "frame_000002.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 image="frame_000002.png")
    ds = read_annotations(f, labels=MAP, recording=seq)
    assert ds.frame.values.tolist() == [2]
    np.testing.assert_allclose(ds["time"].values, [1.25], atol=1e-3)
    assert ds.attrs["recording"] == str(seq)
    g = _labelme(tmp_path / "frame_000007.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 image="frame_000007.png")
    with pytest.raises(FrameReferenceError, match=r"frame 7, but the recording .*rec.seq "
                                                  r"has frames 0...3"):
        read_annotations(g, labels=MAP, recording=seq)
    h = _labelme(tmp_path / "frame_000001.json", [_shape("L", [[1, 1], [5, 1], [5, 5]])],
                 h=24, w=32, image="frame_000001.png")
    with pytest.raises(ImageSizeError, match=r"rec.seq is 20x30"):
        read_annotations(h, labels=MAP, recording=seq)
