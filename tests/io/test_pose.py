"""Pose clip files and COCO keypoint files through the reader registry (irtrepro.io.pose)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from irtrepro.errors import ReaderError
from irtrepro.io import detect, get_reader, read
from irtrepro.io.pose import (
    read_coco_keypoints,
    read_pose_clip,
    write_coco_keypoints,
    write_pose_clip,
)


def _clip(n=3, rgb=False):
    # the writer takes any object with a clip's attributes; no renderer needed
    th = np.linspace(20, 34, n * 6 * 8, dtype=np.float32).reshape(n, 6, 8)
    return SimpleNamespace(thermal=th, time=10.0 + np.arange(n) / 5.0, fps=5.0, subject="L01",
                           activity="run", rgb_scale=2, attrs={"view": "behind"},
                           rgb=np.full((n, 12, 16, 3), 0.5, np.float32) if rgb else None)


def _coco():
    kp = np.zeros((17, 3))
    kp[5:] = [4.0, 3.0, 2]
    return {"images": [{"id": 1}], "categories": [{"id": 1, "name": "person",
                                                   "keypoints": [f"k{i}" for i in range(17)]}],
            "annotations": [{"id": 1, "image_id": 1, "keypoints": kp.reshape(-1).tolist(),
                             "bbox": [0.0, 0.0, 4.0, 5.0]}]}


def test_pose_clip_through_the_registry(tmp_path):
    clip = _clip(rgb=True)
    p = write_pose_clip(tmp_path / "c.npz", clip, include_rgb=True)
    assert get_reader("pose", "npz").func is read_pose_clip
    assert detect(p, "pose") == "npz"
    got = read("pose", p)
    np.testing.assert_array_equal(got["thermal"], clip.thermal)
    np.testing.assert_allclose(got["time"], clip.time)
    assert got["fps"] == 5.0 and got["meta"] == {"subject": "L01", "activity": "run", "fps": 5.0,
                                                 "units": "degC", "rgb_scale": 2,
                                                 "view": "behind"}
    np.testing.assert_allclose(got["rgb"], 128 / 255)


def test_pose_clip_errors_name_the_file(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ReaderError, match="bad.npz"):
        read("pose", tmp_path / "bad.npz", "npz")
    np.savez(tmp_path / "short.npz", thermal=np.zeros((2, 3, 4)), meta=np.array("{}"))
    with pytest.raises(ReaderError, match="short.npz: pose clip lacks the array 'time'"):
        read("pose", tmp_path / "short.npz", "npz")
    np.savez(tmp_path / "flat.npz", thermal=np.zeros((3, 4)), time=np.arange(3.0),
             meta=np.array("{}"))
    with pytest.raises(ReaderError, match=r"flat.npz: 'thermal' has shape \(3, 4\)"):
        read("pose", tmp_path / "flat.npz", "npz")


def test_coco_keypoints_through_the_registry(tmp_path):
    p = write_coco_keypoints(tmp_path / "k.json", _coco())
    assert get_reader("pose_keypoints", "coco").func is read_coco_keypoints
    assert detect(p, "pose_keypoints") == "coco"
    got = read("pose_keypoints", p)
    a = got["annotations"][0]
    assert a["area"] == 20.0 and a["num_keypoints"] == 12 and a["iscrowd"] == 0
    assert got["irtrepro_notes"] == ["annotations[0]: area taken from bbox"]


def test_coco_keypoints_errors_name_the_entry(tmp_path):
    bad = _coco()
    bad["annotations"][0]["keypoints"][2] = 3
    p = write_coco_keypoints(tmp_path / "v.json", bad)
    with pytest.raises(ReaderError, match=r"v.json: annotations\[0\] \(id 1\): visibility"):
        read("pose_keypoints", p)
    bad = _coco()
    del bad["annotations"][0]["bbox"]
    p = write_coco_keypoints(tmp_path / "s.json", bad)
    with pytest.raises(ReaderError, match="lacks both 'area' and 'bbox'"):
        read("pose_keypoints", p)


def test_coco_keypoint_writer_is_deterministic(tmp_path):
    a = write_coco_keypoints(tmp_path / "a.json", _coco()).read_bytes()
    b = write_coco_keypoints(tmp_path / "b.json", _coco()).read_bytes()
    assert a == b == json.dumps(_coco()).encode()
