"""Preprocessing (grey, AMT) and the labelled image folder reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from irtrepro.breathing.amt import multi_otsu, network_input, to_grey, to_rgb
from irtrepro.breathing.data import read_image_folder, session_images
from irtrepro.errors import ReaderError
from irtrepro.synth.face import demo_breaths, demo_truth_session, render_face_session


def test_multi_otsu_separates_three_levels():
    rng = np.random.default_rng(0)
    img = np.concatenate([np.full(300, 0.1), np.full(300, 0.5), np.full(400, 0.9)])
    img = (img + rng.normal(0, 0.02, img.size)).reshape(1, 40, 25)
    t = multi_otsu(img, 2)[0]
    assert 0.15 < t[0] < 0.45 and 0.55 < t[1] < 0.85


@pytest.mark.parametrize(("grey", "amt", "k", "channels"),
                         [(False, False, 2, 3), (True, False, 2, 1), (True, True, 2, 3),
                          (True, True, 3, 4), (False, True, 2, 5)])
def test_switches_change_input_channels(grey, amt, k, channels):
    rgb = to_rgb(np.random.default_rng(1).normal(30, 2, (4, 16, 16)))
    x = network_input(rgb, grey=grey, amt=amt, amt_k=k)
    assert x.shape == (4, channels, 16, 16)
    if amt:  # the extra channels are binary copies (two values after centring)
        assert set(np.unique(x[:, -k:])) <= {-1.0, 1.0}


def test_grey_keeps_temperature_order():
    ramp = np.tile(np.linspace(20, 35, 16), (1, 16, 1))
    g = to_grey(to_rgb(ramp))[0, 0]
    assert np.all(np.diff(g) >= -1e-6) and g[-1] > g[0] + 0.5


def _write(folder, name, arr, mode):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(folder / name)


def test_read_image_folder_rgb_and_grey(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path / "INH", "s1_0.png", rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), "RGB")
    _write(tmp_path / "EXH", "s2_0.png", rng.integers(0, 255, (40, 50), dtype=np.uint8), "L")
    s = read_image_folder(tmp_path, size=32, subject_from="prefix")
    assert s.images.shape == (2, 32, 32, 3) and s.images.dtype == np.uint8
    assert s.labels.tolist() == [0, 1]
    assert s.meta["subject"].tolist() == ["s1", "s2"]


def test_bad_folders(tmp_path):
    with pytest.raises(ReaderError, match="not found"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "INH").mkdir()
    (tmp_path / "EXH").mkdir()
    with pytest.raises(ReaderError, match="no images"):
        read_image_folder(tmp_path)
    _write(tmp_path / "INH", "a.png", np.zeros((8, 8), np.uint8), "L")
    with pytest.raises(ReaderError, match="single-class.*EXH"):
        read_image_folder(tmp_path)
    (tmp_path / "EXH" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ReaderError, match=r"broken.png: unreadable image"):
        read_image_folder(tmp_path)


def test_session_images_crops_and_labels():
    truth = demo_truth_session("S01", "CON", phases=(("rest", 0.0, 30.0),))
    ds = render_face_session(truth, demo_breaths(truth), seed=0)
    s = session_images(ds, subject="S01", session="CON", size=32)
    assert s.images.shape == (ds.sizes["frame"], 32, 32, 3)
    expected = np.where(ds["label"].values == "EXH", 1, 0)
    assert (s.labels == expected).all()
    assert (s.meta["subject"] == "S01").all()


def test_hard_frames_from_labels_agree_with_the_generator():
    """A label file has no hard flag: it is derived from the labels' phase boundaries and
    agrees with the generator's flag (from the continuous breath model) on most frames."""
    from irtrepro.breathing.data import hard_from_labels

    truth = demo_truth_session("S01", "CON", phases=(("rest", 0.0, 60.0),))
    ds = render_face_session(truth, demo_breaths(truth), seed=0)
    lab, t, clip = ds["label"].values, ds["time"].values, ds["clip_index"].values
    got = hard_from_labels(t, lab, clip)
    want = ds["hard"].values
    # the first and last phase of a clip have no known length: never hard
    first = np.flatnonzero(lab != lab[0])[0]
    assert not got[:first].any()
    inner = np.arange(len(lab)) >= first
    agree = (got == want)[inner & (lab != "")].mean()
    assert agree > 0.9, agree
    assert 0.2 < got[inner].mean() < 0.4  # 30 % of a phase's length is near a boundary
    # session_images uses it when the dataset carries no flag (a label file)
    s = session_images(ds.drop_vars("hard"), subject="S01", session="CON")
    np.testing.assert_array_equal(s.meta["hard"].to_numpy(), got)
    # an unlabelled frame cuts the phase: its neighbours' phases are of unknown length
    lab2 = lab.copy()
    k = np.flatnonzero(inner)[len(lab) // 2]
    lab2[k] = ""
    got2 = hard_from_labels(t, lab2, clip)
    run = lab == lab[k]
    a = k
    while a > 0 and lab[a - 1] == lab[k]:
        a -= 1
    assert not got2[a:k + 1].any() and run[k]
