"""Vision: scores on hand-made masks, augmentation, checkpoints, a few training steps."""

from __future__ import annotations

import numpy as np
import pytest

from irtrepro.errors import ModelError
from irtrepro.vision.evaluate import segmentation_scores

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.requires_torch


def test_scores_exact():
    t = np.zeros((1, 4, 4), np.uint8)
    p = np.zeros((1, 4, 4), np.uint8)
    t[0, :2, :2] = 1          # 4 true pixels of class 1
    p[0, :2, :3] = 1          # 6 predicted, 4 correct
    p[0, 3, 3] = 2            # class 2 predicted once, never true
    df = segmentation_scores(t, p, labels={1: "a", 2: "b"}).set_index("name")
    assert df.loc["a", "dice"] == pytest.approx(8 / 10)
    assert df.loc["a", "iou"] == pytest.approx(4 / 6)
    assert df.loc["a", "precision"] == pytest.approx(4 / 6)
    assert df.loc["a", "recall"] == pytest.approx(1.0)
    assert df.loc["b", "dice"] == 0.0 and np.isnan(df.loc["b", "recall"])
    assert (df.loc["a", "n_true"], df.loc["a", "n_pred"]) == (4, 6)
    empty = segmentation_scores(t * 0, p * 0, labels={1: "a"})
    assert np.isnan(empty.dice[0])


def test_flip_swaps_left_and_right():
    from irtrepro.vision.data import augment

    f = torch.zeros(64, 8, 8)
    r = torch.zeros(64, 8, 8, dtype=torch.long)
    r[:, :, :3] = 1            # left calf on the image left
    f[:, :, :3] = 30.0
    v = torch.zeros_like(r)
    rng = np.random.default_rng(0)
    _, r2, _ = augment(rng, f, r, v, strength=0.0)
    # whichever samples flipped: label 1 stays on the left, label 2 only on the right
    assert not (r2[:, :, 5:] == 1).any()
    assert not (r2[:, :, :3] == 2).any()
    assert (r2 == 2).any() and (r2 == 1).any()


def test_checkpoint_roundtrip_and_mismatch(tmp_path):
    from irtrepro.vision.infer import predict_labels
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    ck = Checkpoint(task="roi", classes=TASK_CLASSES["roi"], downsample=2)
    ck.state_dict = ck.build().state_dict()
    path = ck.save(tmp_path / "roi.pt")
    back = Checkpoint.load(path, task="roi")
    frames = np.random.default_rng(0).normal(30, 1, (3, 37, 45)).astype(np.float32)
    a = predict_labels(ck, frames)
    b = predict_labels(back, frames)
    assert a.shape == (3, 37, 45) and a.dtype == np.uint8       # odd sizes padded and cropped
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelError, match="expected 'vessels'"):
        Checkpoint.load(path, task="vessels")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="bad.pt"):
        Checkpoint.load(tmp_path / "bad.pt")


def test_few_training_steps_reduce_loss():
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.train import train_segmenter
    from tests.synth.test_thermogram import make_truth

    F, R, V, S = [], [], [], []
    for s in ("S01", "S02", "S03"):
        ds = render_session(make_truth(40, s), shape=(64, 80), seed=0, frame_interval_s=5)
        F.append(ds.frames.values)
        R.append(ds.roi.values)
        V.append(ds.vessels.values)
        S += [s] * ds.sizes["frame"]
    ck = train_segmenter(np.concatenate(F), np.concatenate(R), np.concatenate(V), S,
                         task="roi", max_steps=30, eval_every=30, batch_size=4,
                         decoder_channels=(16, 8, 4), seed=0, threads=1)
    assert ck.metrics["loss_last"] < 0.8 * ck.metrics["loss_first"]
    assert ck.metrics["val_subjects"] and ck.data_hash
    assert set(ck.metrics["val_dice"]) == {"left_calf", "right_calf"}


def test_segment_store_writes_masks_and_extract_store_reads_them(tmp_path):
    from irtrepro.features.extract import extract_store
    from irtrepro.io.thermal import open_frame_store, write_frames
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.infer import segment_store
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint
    from tests.synth.test_thermogram import make_truth

    ds = render_session(make_truth(30), shape=(48, 64), seed=0, frame_interval_s=2)
    store = write_frames(tmp_path / "s.zarr", ds["frames"], chunk_frames=4)
    cks = []
    for task, ds_ in (("roi", 2), ("vessels", 1)):
        ck = Checkpoint(task=task, classes=TASK_CLASSES[task], downsample=ds_)
        ck.state_dict = ck.build().state_dict()
        cks.append(ck)
    segment_store(store, *cks, batch_size=5, threads=1, progress=False)
    out = open_frame_store(store)
    assert out["roi"].shape == ds["frames"].shape and out["roi"].dtype == np.uint8
    # vessels only inside the predicted calves
    assert not ((out["vessels"].values > 0) & (out["roi"].values == 0)).any()
    feats = extract_store(store, chunk_frames=4, per_frame=True, features=["calf_area"])
    np.testing.assert_array_equal(feats.calf_area.sel(side="left").values,
                                  (out["roi"].values == 1).sum((1, 2)))


def test_upsampled_model_returns_input_resolution():
    from irtrepro.vision.infer import predict_labels
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    ck = Checkpoint(task="vessels", classes=TASK_CLASSES["vessels"], upsample=2,
                    decoder_channels=(8, 8, 4))
    ck.state_dict = ck.build().state_dict()
    frames = np.random.default_rng(1).normal(30, 1, (2, 21, 27)).astype(np.float32)
    assert predict_labels(ck, frames).shape == (2, 21, 27)


def test_vessel_focus_centres_crops_on_vessels():
    from irtrepro.vision.data import sample_batch

    n, h, w = 4, 40, 40
    roi = np.zeros((n, h, w), np.uint8)
    roi[:, 5:35, 5:35] = 1
    ves = np.zeros_like(roi)
    ves[:, 30, 30] = 2                     # one perforator pixel per frame, near a corner
    frames = np.zeros((n, h, w), np.float32)
    rng = np.random.default_rng(0)
    _, _, v = sample_batch(rng, frames, roi, ves, np.arange(n), 16, 8, vessel_focus=1.0)
    assert (v == 2).any((1, 2)).all()      # every window holds the perforator
    _, _, v0 = sample_batch(rng, frames, roi, ves, np.arange(n), 16, 8, vessel_focus=0.0)
    assert not (v0 == 2).any((1, 2)).all()


def test_calf_boxes_cover_each_calf_with_one_size():
    from irtrepro.vision.infer import _calf_boxes

    roi = np.zeros((3, 50, 60), np.uint8)
    roi[0, 10:30, 5:15] = 1
    roi[0, 12:40, 40:52] = 2
    roi[1, 0:20, 45:60] = 2                # touches the frame border
    boxes, (bh, bw) = _calf_boxes(roi, margin=3)
    assert (bh, bw) == (28 + 6, 15 + 6)
    assert {(k, s) for k, s, _, _ in boxes} == {(0, 1), (0, 2), (1, 2)}
    for k, side, y0, x0 in boxes:
        assert 0 <= y0 <= 50 - bh and 0 <= x0 <= 60 - bw
        inside = np.zeros((50, 60), bool)
        inside[y0:y0 + bh, x0:x0 + bw] = True
        assert not ((roi[k] == side) & ~inside).any()


def test_box_inference_matches_whole_frame_inference(monkeypatch):
    """Calf boxes are cut, normalised and pasted back exactly: with a pointwise stand-in
    for the networks (receptive field one pixel) box and whole-frame inference agree."""
    import irtrepro.vision.infer as inf
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint
    from tests.synth.test_thermogram import make_truth

    ds = render_session(make_truth(20), shape=(96, 128), seed=0, frame_interval_s=2)
    f, roi_true = ds.frames.values, ds.roi.values

    def pointwise(model, ck, x):   # logits from the normalised pixel value alone
        if ck.task == "roi":        # one batch of all frames: the true calves stand in
            lab = torch.from_numpy(roi_true).long()
        else:
            lab = (x > -0.1).long() + (x > 0.2).long()
        return torch.nn.functional.one_hot(lab, 3).permute(0, 3, 1, 2).float()

    monkeypatch.setattr(inf, "forward", pointwise)
    cks = [Checkpoint(task=t, classes=TASK_CLASSES[t]) for t in ("roi", "vessels")]
    r, v = inf.predict_masks(f, *cks, batch_size=len(f), models=(None, None), margin=4)
    full = inf.predict_labels(cks[1], f, model=object())
    full[roi_true == 0] = 0
    np.testing.assert_array_equal(r, roi_true)
    np.testing.assert_array_equal(v, full)
    assert (v > 0).any() and (v == 0).any()


def test_model_cache_key_follows_defaults_and_settings(monkeypatch):
    """A changed training default must not reuse models trained under the old one."""
    from irtrepro.report.parts.vision import model_key
    from irtrepro.vision import train

    f = np.zeros((2, 8, 8), np.float32)
    r = np.zeros((2, 8, 8), np.uint8)
    k0 = model_key(f, r, r, seed=0, settings={})
    assert model_key(f, r, r, seed=0, settings={}) == k0
    assert model_key(f, r, r, seed=1, settings={}) != k0
    assert model_key(f, r, r, seed=0, settings={"roi": {"max_steps": 5}}) != k0
    patched = {k: dict(v) for k, v in train.TASK_DEFAULTS.items()}
    patched["vessels"]["max_steps"] += 1
    monkeypatch.setattr(train, "TASK_DEFAULTS", patched)
    assert model_key(f, r, r, seed=0, settings={}) != k0


def test_sessions_segmented_in_worker_processes_match_in_process(tmp_path):
    from irtrepro.io.thermal import write_frames
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint
    from irtrepro.vision.pipeline import segmented
    from tests.synth.test_thermogram import make_truth

    paths = []
    for k, s in enumerate(("S01", "S02", "S03")):
        ds = render_session(make_truth(12, s), shape=(48, 64), seed=k, frame_interval_s=2)
        paths.append(str(write_frames(tmp_path / f"{s}.zarr", ds["frames"], progress=False)))
    torch.manual_seed(0)
    cks = []
    for task in ("roi", "vessels"):
        ck = Checkpoint(task=task, classes=TASK_CLASSES[task], decoder_channels=(8, 8, 4))
        ck.state_dict = ck.build().state_dict()
        cks.append(ck)
    models = tuple(ck.build() for ck in cks)
    one = list(segmented(paths, *cks, models, 1))
    two = list(segmented(paths, *cks, models, 2))
    assert [e for _, _, e in one] == [None] * 3
    for (r1, v1, _), (r2, v2, _) in zip(one, two, strict=True):
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(v1, v2)
    bad = list(segmented([str(tmp_path / "missing.zarr")], *cks, models, 1))
    assert bad[0][0] is None and "missing.zarr" in bad[0][2]


def test_metric_error_table_compares_error_with_within_session_variation():
    from irtrepro.vision.evaluate import ERROR_METRICS, metric_error_table

    rows = [{"metric": "tp_entropy", "errors": np.array([0.1, 0.2, 0.3]), "sd": np.array([0.2])},
            {"metric": "tp_entropy", "errors": np.array([0.4]), "sd": np.array([0.1, 0.3])},
            {"metric": "calf_mean", "errors": np.array([0.01, 0.03]), "sd": np.array([0.5])}]
    t = metric_error_table(rows).set_index("metric")
    assert list(t.index) == list(ERROR_METRICS)
    e = t.loc["tp_entropy"]
    assert e.median_abs_error == pytest.approx(0.25)          # median of 0.1 .. 0.4
    assert e.within_session_sd == pytest.approx(0.2)          # median of 0.2, 0.1, 0.3
    assert e.error_to_sd == pytest.approx(1.25)
    assert e.n == 4
    assert t.loc["calf_mean"].error_to_sd == pytest.approx(0.04)
    # a metric without any value is NaN, not 0
    assert np.isnan(t.loc["tv_mean"].median_abs_error) and np.isnan(t.loc["tv_mean"].error_to_sd)

