"""Chunked, resumable segmentation of a frame store (``segment_store``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _checkpoints(seed: int):
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    torch.manual_seed(seed)
    cks = []
    for task, up in (("roi", 1), ("vessels", 2)):
        ck = Checkpoint(task=task, classes=TASK_CLASSES[task], upsample=up,
                        decoder_channels=(8, 8, 4))
        ck.state_dict = ck.build().state_dict()
        cks.append(ck)
    # untrained networks label (nearly) every pixel alike; a bias towards the calves on the
    # warm pixels makes both calves and boxes of several sizes appear
    net = cks[0].state_dict
    net["segmentation_head.0.bias"] += torch.tensor([0.0, 0.02, 0.02])
    return cks


@pytest.fixture(scope="module")
def session():
    from irtrepro.synth.thermogram import render_session
    from tests.synth.test_thermogram import make_truth

    return render_session(make_truth(46), shape=(48, 64), seed=0, frame_interval_s=1)


def _store(tmp_path, session, name="s.zarr"):
    from irtrepro.io.thermal import write_frames

    return write_frames(tmp_path / name, session["frames"], chunk_frames=4)


def _masks(store):
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(store)
    return ds["roi"].values, ds["vessels"].values


def test_chunked_masks_equal_one_call_on_the_whole_recording(tmp_path, session):
    from irtrepro.io.thermal import open_frames
    from irtrepro.vision.infer import predict_masks, segment_store

    cks = _checkpoints(0)
    store = _store(tmp_path, session)
    frames = open_frames(store).values
    r0, v0 = predict_masks(frames, *cks, batch_size=3, dev=torch.device("cpu"))
    # the test means something only if calves and vessels were found, in boxes of several sizes
    assert {1, 2} <= set(np.unique(r0)) and (v0 > 0).any()
    for chunk in (1, 12, 30, len(frames)):
        segment_store(store, *cks, batch_size=3, threads=1, progress=False, chunk=chunk)
        r, v = _masks(store)
        np.testing.assert_array_equal(r, r0)
        np.testing.assert_array_equal(v, v0)
    assert not (tmp_path / ".s.zarr.segment.part").exists()


def test_each_step_holds_one_chunk_and_batches_stay_aligned(tmp_path, session, monkeypatch):
    import irtrepro.vision.infer as inf

    seen = []
    real = inf.predict_masks

    def spy(block, *a, **k):
        seen.append((len(block), k["batch_size"]))
        return real(block, *a, **k)

    monkeypatch.setattr(inf, "predict_masks", spy)
    store = _store(tmp_path, session)
    # batch 3, zarr chunk 4: steps are multiples of 12 frames; 46 frames -> 12, 12, 12, 10
    inf.segment_store(store, *_checkpoints(0), batch_size=3, threads=1, progress=False, chunk=5)
    assert seen == [(12, 3), (12, 3), (12, 3), (10, 3)]


def test_effective_batch_caps_pixels_per_forward_pass():
    from irtrepro.errors import OptionError
    from irtrepro.vision.infer import effective_batch

    assert effective_batch(32, (120, 160)) == 32
    assert effective_batch(32, (480, 640)) == 2
    assert effective_batch(32, (768, 1024)) == 1
    assert effective_batch(32, (768, 1024), None) == 32
    with pytest.raises(OptionError):
        effective_batch(0, (120, 160))


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_only_the_missing_chunks(tmp_path, session, monkeypatch):
    import irtrepro.vision.infer as inf

    cks = _checkpoints(0)
    ref = _store(tmp_path, session, "ref.zarr")
    inf.segment_store(ref, *cks, batch_size=3, threads=1, progress=False, chunk=12)
    r0, v0 = _masks(ref)

    real, calls = inf.predict_masks, []

    def failing(block, *a, **k):
        calls.append(len(block))
        if len(calls) == 3:
            raise _Stop
        return real(block, *a, **k)

    monkeypatch.setattr(inf, "predict_masks", failing)
    store = _store(tmp_path, session)
    with pytest.raises(_Stop):
        inf.segment_store(store, *cks, batch_size=3, threads=1, progress=False, chunk=12)
    assert (tmp_path / ".s.zarr.segment.part").is_dir()
    assert "roi" not in __import__("os").listdir(store)   # nothing half-done in the store
    calls.clear()
    inf.segment_store(store, *cks, batch_size=3, threads=1, progress=False, chunk=12)
    assert calls == [12, 10]                               # chunks 1 and 2 were kept
    r, v = _masks(store)
    np.testing.assert_array_equal(r, r0)
    np.testing.assert_array_equal(v, v0)


@pytest.mark.parametrize("change", ["weights", "frames", "chunk", "no-resume"])
def test_partial_run_of_other_inputs_is_not_resumed(tmp_path, session, monkeypatch, change):
    import irtrepro.vision.infer as inf

    real, calls = inf.predict_masks, []

    def failing(block, *a, **k):
        calls.append(len(block))
        if len(calls) == 2:
            raise _Stop
        return real(block, *a, **k)

    monkeypatch.setattr(inf, "predict_masks", failing)
    store = _store(tmp_path, session)
    with pytest.raises(_Stop):
        inf.segment_store(store, *_checkpoints(0), batch_size=3, threads=1, progress=False,
                          chunk=12)
    calls.clear()

    def counting(block, *a, **k):
        calls.append(len(block))
        return real(block, *a, **k)

    monkeypatch.setattr(inf, "predict_masks", counting)
    cks, opts = _checkpoints(0), {"chunk": 12}
    if change == "weights":
        cks = _checkpoints(1)
    elif change == "frames":          # the store rewritten with other frames
        other = session.copy()
        other["frames"] = session["frames"] + 0.5
        _store(tmp_path, other)
    elif change == "chunk":
        opts["chunk"] = 24
    else:
        opts["resume"] = False
    inf.segment_store(store, *cks, batch_size=3, threads=1, progress=False, **opts)
    assert sum(calls) == 46                                # every frame segmented again
