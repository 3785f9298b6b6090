"""Test-time augmentation of the segmentation (irtrepro.vision.uncertainty)."""

import numpy as np
import pytest

import irtrepro.vision.infer as infer
from irtrepro.errors import OptionError
from irtrepro.vision.uncertainty import (
    AS_SEGMENTED,
    augment,
    sample_frames,
    unaugment,
    variant_metrics,
)

H, W = 60, 80


def _frames(n=6, seed=0):
    """Two calves (31 degC) with a vein stripe (33.5) and a perforator dot (34.5) each."""
    rng = np.random.default_rng(seed)
    f = np.full((n, H, W), 25.0) + rng.normal(0, 0.05, (n, H, W))
    for x0 in (10, 46):
        f[:, 10:50, x0:x0 + 22] = 31 + rng.normal(0, 0.3, (n, 40, 22))
        f[:, 15:45, x0 + 8:x0 + 10] = 33.5
        f[:, 30:33, x0 + 15:x0 + 18] = 34.5
    return f


def _oracle(frames, roi_ck, vessel_ck, **kw):
    """A segmenter that commutes with mirrors and shifts: thresholds, calves by image half."""
    calf = frames > 29
    half = np.arange(frames.shape[2]) < frames.shape[2] // 2
    roi = np.where(calf, np.where(half, 1, 2), 0).astype(np.uint8)
    ves = np.where(calf & (frames > 34), 2, np.where(calf & (frames > 33), 1, 0))
    return roi, ves.astype(np.uint8)


def _fixed(frames, roi_ck, vessel_ck, **kw):
    """A 'segmenter' that ignores its input: the masks of the untransformed frames."""
    return _oracle(np.repeat(_frames(1)[:1], len(frames), 0), None, None)


def test_masks_go_back_to_the_original_geometry_and_calves_swap_on_the_mirror():
    f = _frames(2)
    roi, ves = _oracle(f, None, None)
    for v in ("flip", "shift+1", "shift-1"):
        r, s = unaugment(*_oracle(augment(f, v), None, None), v)
        np.testing.assert_array_equal(r, roi, err_msg=v)   # the calves are off the border
        np.testing.assert_array_equal(s, ves, err_msg=v)
    r_flip = _oracle(augment(f, "flip"), None, None)[0]
    assert set(np.unique(r_flip[:, :, :W // 2])) == {0, 1}  # the right calf now lies left...
    back, _ = unaugment(r_flip, ves, "flip")
    assert (back[:, :, :W // 2] != 2).all()                 # ...and is labelled left again


def test_shift_replicates_edges_instead_of_wrapping():
    a = np.arange(12, dtype=float).reshape(1, 3, 4)
    s = augment(a, "shift+1")
    np.testing.assert_array_equal(s[0, 1:, 1:], a[0, :-1, :-1])
    np.testing.assert_array_equal(s[0, 0], [0, 0, 1, 2])
    with pytest.raises(OptionError, match="expected one of"):
        augment(a, "rotate")


def test_a_segmenter_that_commutes_with_the_transforms_has_no_spread(monkeypatch):
    monkeypatch.setattr(infer, "predict_masks", _oracle)
    f = _frames()
    truth = _oracle(f, None, None)
    m, true = variant_metrics(f, np.arange(len(f), dtype=float), None, None,
                              variants=("flip", "shift+1", "shift-1"), truth=truth)
    assert list(m.segmentation.values) == [AS_SEGMENTED, "flip", "shift+1", "shift-1"]
    for name in ("tnv", "tp", "tv", "tp_entropy"):
        v = m[name].sel(side="both").values
        assert np.isfinite(v).all(), name
        np.testing.assert_allclose(v, np.broadcast_to(v[0], v.shape), atol=1e-6, err_msg=name)
        np.testing.assert_allclose(true[name].sel(side="both").values, v[0], atol=1e-9)


def test_a_segmenter_blind_to_its_input_moves_the_metrics(monkeypatch):
    monkeypatch.setattr(infer, "predict_masks", _fixed)
    f = _frames()
    m, true = variant_metrics(f, np.arange(len(f), dtype=float), None, None,
                              variants=("shift+1",))
    assert true is None
    tp = m["tp"].sel(side="both").values
    assert np.abs(tp[1] - tp[0]).max() > 0.1   # its masks miss the shifted perforators


def test_sample_frames_takes_the_first_frame_of_every_interval():
    t = np.array([-3.0, -1, 0.5, 10, 29.9, 30, 31, 95])
    # intervals of 30 s from the first frame (-3 s): [-3, 27), [27, 57), [57, 87), [87, 117)
    np.testing.assert_array_equal(sample_frames(t, 30), [0, 4, 7])
    assert sample_frames(np.zeros(0), 30).size == 0
    with pytest.raises(OptionError, match="> 0"):
        sample_frames(t, 0)
