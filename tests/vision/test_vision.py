"""Vision: scores on hand-made masks, augmentation, checkpoints, a few training steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

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


def _session_stores(tmp_path, n_seconds=24, subjects=("S01", "S02", "S03")):
    from irtrepro.io.thermal import write_frames, write_masks
    from irtrepro.synth.thermogram import render_session
    from tests.synth.test_thermogram import make_truth

    paths = []
    for k, s in enumerate(subjects):
        ds = render_session(make_truth(n_seconds, s), shape=(48, 64), seed=k,
                            frame_interval_s=2)
        p = write_frames(tmp_path / f"{s}.zarr", ds["frames"], progress=False)
        write_masks(p, roi=ds["roi"], vessels=ds["vessels"], progress=False)
        paths.append(str(p))
    return paths


def _untrained_checkpoints():
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    torch.manual_seed(0)
    cks = []
    for task in ("roi", "vessels"):
        ck = Checkpoint(task=task, classes=TASK_CLASSES[task], decoder_channels=(8, 8, 4))
        ck.state_dict = ck.build().state_dict()
        cks.append(ck)
    return cks


def _assert_same_result(a, b, rtol=0.0):
    assert a.error is None and b.error is None
    xr.testing.assert_identical(a.features, b.features)
    assert a.frame_counts == b.frame_counts
    assert a.counts.keys() == b.counts.keys()
    for k in a.counts:
        np.testing.assert_array_equal(a.counts[k], b.counts[k])
    assert len(a.metric_errors) == len(b.metric_errors)
    for ra, rb in zip(a.metric_errors, b.metric_errors, strict=True):
        assert ra["metric"] == rb["metric"]
        np.testing.assert_allclose(ra["errors"], rb["errors"], rtol=rtol, atol=0)
        np.testing.assert_allclose(ra["sd"], rb["sd"], rtol=rtol, atol=0)
    for xa, xb in ((a.picked, b.picked), (a.example, b.example)):
        assert (xa is None) == (xb is None)
        for u, v in zip(xa or (), xb or (), strict=True):
            np.testing.assert_array_equal(u, v)
    assert (a.signal is None) == (b.signal is None)
    if a.signal is not None:
        np.testing.assert_array_equal(a.signal, b.signal)


def test_sessions_processed_in_worker_processes_match_in_process(tmp_path):
    from irtrepro.vision.pipeline import SessionJob, session_results

    paths = _session_stores(tmp_path)
    cks = _untrained_checkpoints()
    models = tuple(ck.build() for ck in cks)
    jobs = [SessionJob(paths[0]), SessionJob(paths[1], masks=paths[1], picks=(0, 5, 11),
                                             example=True, signal=True),
            SessionJob(paths[2], signal=True)]
    one = list(session_results(jobs, *cks, models, 1))
    two = list(session_results(jobs, *cks, models, 2))
    assert [r.error for r in one] == [None] * 3
    assert one[1].counts and one[1].metric_errors and one[1].picked[0].shape[0] == 3
    assert one[0].signal is None and one[2].signal.shape == (12,)
    for r1, r2 in zip(one, two, strict=True):
        _assert_same_result(r1, r2)
    bad = list(session_results([SessionJob(str(tmp_path / "missing.zarr"))], *cks, models, 1))
    assert bad[0].features is None and "missing.zarr" in bad[0].error


def test_session_pass_does_not_depend_on_its_chunk_length(tmp_path):
    # chunks of one inference batch (32 frames at 48x64) against the whole session at once:
    # masks, pooled counts, Study variables, picks and signal agree exactly; the region means
    # behind the metric errors are summed over a crop box that depends on the frames in the
    # call, so they agree to float rounding (~1e-14 degC), not bit for bit
    from irtrepro.io.thermal import open_frame_store
    from irtrepro.vision.evaluate import (
        ROI_LABELS,
        VESSEL_LABELS,
        metric_errors,
        scores_from_counts,
        segmentation_scores,
    )
    from irtrepro.vision.infer import predict_masks
    from irtrepro.vision.pipeline import SessionJob, process_session

    (path,) = _session_stores(tmp_path, n_seconds=140, subjects=("S01",))
    cks = _untrained_checkpoints()
    models = tuple(ck.build() for ck in cks)
    job = dict(masks=path, picks=(3, 40, 69), example=True, signal=True)
    small = process_session(SessionJob(path, chunk=1, **job), *cks, models)
    whole = process_session(SessionJob(path, chunk=10_000, **job), *cks, models)
    _assert_same_result(small, whole, rtol=1e-12)
    # and equal to scoring the whole session's arrays at once
    ds = open_frame_store(path)
    f, gr, gv = ds["frames"].values, ds["roi"].values, ds["vessels"].values
    pr, pv = predict_masks(f, *cks, models=models)
    pd.testing.assert_frame_equal(
        scores_from_counts(small.counts["roi"], labels=ROI_LABELS),
        segmentation_scores(gr, pr, labels=ROI_LABELS))
    pd.testing.assert_frame_equal(
        scores_from_counts(small.counts["vessels"], labels=VESSEL_LABELS),
        segmentation_scores(np.where(gr > 0, gv, 0), pv, labels=VESSEL_LABELS))
    ref = metric_errors(f, pr, pv, gr, gv)
    assert [r["metric"] for r in ref] == [r["metric"] for r in small.metric_errors]
    for r, s in zip(ref, small.metric_errors, strict=True):
        np.testing.assert_allclose(r["errors"], s["errors"], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(small.picked[0], f[[3, 40, 69]])
    np.testing.assert_array_equal(small.example[0], f[35])


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

