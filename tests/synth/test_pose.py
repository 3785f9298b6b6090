"""Synthetic pose generator: shapes, truth, visibility, COCO export, writers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irtrepro.errors import OptionError
from irtrepro.io import read
from irtrepro.io.pose import write_pose_clip
from irtrepro.synth import pose


@pytest.fixture(scope="module")
def run_clip():
    return pose.render_running_clip(170.0, 12.0, n_frames=24, fps=15.0, seed=3, subject_id="S07")


def test_running_clip_shapes_and_pairing(run_clip):
    c = run_clip
    assert c.thermal.shape == (24, 60, 80) and c.thermal.dtype == np.float32
    assert c.rgb.shape == (24, 180, 240, 3)
    assert c.keypoints.shape == (24, 17, 3)
    # seen from behind: nose and eyes are not labelled, ears and limbs are
    assert np.all(c.keypoints[:, :3, 2] == 0) and np.all(c.keypoints[:, :3, :2] == 0)
    assert np.all(c.keypoints[:, 3:, 2] > 0)
    # the person's left is on the image left when seen from behind
    assert np.all(c.keypoints[:, 5, 0] < c.keypoints[:, 6, 0])
    # body warmer than the background under the labelled keypoints (thermal truth is aligned)
    hip = np.round(c.keypoints[:, 11, :2]).astype(int)
    assert np.all(c.thermal[np.arange(24), hip[:, 1], hip[:, 0]] > np.median(c.thermal) + 3)
    # RGB keypoints = thermal keypoints scaled about pixel centres
    np.testing.assert_allclose(c.keypoints_rgb[:, 5, :2], (c.keypoints[:, 5, :2] + 0.5) * 3 - 0.5)


def test_same_seed_same_clip_and_subject_identity():
    a = pose.render_running_clip(160.0, n_frames=3, seed=1, subject_id="S01", rgb=False)
    b = pose.render_running_clip(160.0, n_frames=3, seed=1, subject_id="S01", rgb=False)
    np.testing.assert_array_equal(a.thermal, b.thermal)
    assert pose.make_body("S01") == pose.make_body("S01") != pose.make_body("S02")


def test_cadence_is_planted_in_ankle_motion():
    # stance toggles once per stride: count the left-foot strikes over 10 s at 180 steps/min
    c = pose.render_running_clip(180.0, n_frames=150, fps=15.0, seed=2, rgb=False)
    strikes = np.sum(np.diff(c.stance[:, 0].astype(int)) == 1)
    assert strikes in (14, 15, 16)  # 1.5 strides/s * 10 s
    assert np.all(c.stance[:, 0] != c.stance[:, 1]) or np.any(~c.stance.any(1))  # flight phases


def test_tug_has_all_phases_and_turns():
    c = pose.render_tug_clip(fps=4.0, seed=1, rgb=False)
    assert {"sit", "stand_up", "walk", "turn", "sit_down"} <= set(c.phase)
    # walking towards +x first, then back: hip x goes right then left
    x = np.where(c.keypoints[:, 11, 2] > 0, c.keypoints[:, 11, 0], np.nan)
    walk = np.flatnonzero(c.phase == "walk")
    assert np.nanmax(x) - x[walk[0]] > 20
    assert np.isnan(c.cadence[c.phase == "sit"]).all()


def test_keypoints_outside_frame_are_unlabelled():
    # a camera very close: feet and head leave the 80x60 frame -> v = 0 and (0, 0)
    c = pose.render_running_clip(170.0, n_frames=2, seed=0, rgb=False)
    cam = pose.Camera((0.0, 1.0, -0.9), focal=85.0)
    body = pose.make_body("S01")
    st = pose._gait_state(1, np.array([170.0]), 15.0, run=True, rng=np.random.default_rng(0))
    p3 = pose._joints_3d(body, np.array([[0.0, 0.9, 0.0]]), np.zeros(1), st)
    _, _, kp, _, _ = pose._render_people([body], [p3], [np.zeros(1)], cam, rgb_scale=2,
                                         rng=np.random.default_rng(0), treadmill=False,
                                         render_rgb=False)
    kp = kp[0, 0]
    assert np.any(kp[:, 2] == 0) and np.all(kp[kp[:, 2] == 0, :2] == 0)
    lab = kp[:, 2] > 0
    assert np.all((kp[lab, 0] >= -0.5) & (kp[lab, 0] <= 79.5) & (kp[lab, 1] <= 59.5))
    assert len(c) == 2


def test_bad_cadence():
    with pytest.raises(OptionError, match="cadence"):
        pose.render_running_clip(np.ones(3) * 170, n_frames=4)
    with pytest.raises(OptionError, match="cadence"):
        pose.render_running_clip(-5.0, n_frames=4)


def test_files_go_through_the_readers(tmp_path, run_clip):
    # the clip file and its COCO truth are read by the registry's readers, as a lab's would be
    p = write_pose_clip(tmp_path / "clip.npz", run_clip)
    got = read("pose", p)
    np.testing.assert_array_equal(got["thermal"], run_clip.thermal)
    assert got["fps"] == 15.0 and got["meta"]["subject"] == "S07"
    j = pose.write_coco(tmp_path / "truth.json", run_clip)
    coco = json.loads(j.read_text())
    assert len(coco["images"]) == 24 and len(coco["annotations"]) == 24
    ann = coco["annotations"][0]
    assert len(ann["keypoints"]) == 51 and ann["num_keypoints"] == 14
    assert coco["categories"][0]["keypoints"][15] == "left_ankle"
    assert read("pose_keypoints", j)["annotations"][0]["keypoints"] == ann["keypoints"]
