"""Inference precision: conv-BN folding, the bfloat16 networks, what "auto" picks, the store run.

That bfloat16 masks of trained networks match the float32 ones (Dice >= 0.99 per class) is
tested on trained U-Nets in tests/analyses/test_planted_unet_fast.py.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.requires_torch


def _checkpoint(task="roi", seed=0, **kw):
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    torch.manual_seed(seed)
    ck = Checkpoint(task=task, classes=TASK_CLASSES[task], decoder_channels=(8, 8, 4), **kw)
    net = ck.build()
    # batch norms with non-trivial statistics, so that folding them has something to fold
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    ck.state_dict = net.state_dict()
    return ck


def test_folding_batch_norms_keeps_the_logits():
    from irtrepro.vision.precision import fuse_conv_bn

    ck = _checkpoint()
    net = ck.build()
    fused = fuse_conv_bn(net)
    convs_then_bn = [m for m in fused.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not convs_then_bn                      # every BN followed a conv, so none is left
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # original intact
    x = torch.randn(2, 1, 48, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(fused(x).numpy(), net(x).numpy(), atol=1e-4, rtol=1e-4)


def test_bfloat16_network_returns_float32_logits_close_to_the_reference():
    from irtrepro.vision.infer import forward
    from irtrepro.vision.precision import inference_network, network_dtype

    ck = _checkpoint(task="vessels", upsample=2)
    cpu = torch.device("cpu")
    ref, fast = (inference_network(ck, cpu, p) for p in ("float32", "bfloat16"))
    assert network_dtype(ref) == torch.float32 and network_dtype(fast) == torch.bfloat16
    x = torch.randn(3, 30, 44)                    # not a multiple of 8: padded and cropped
    with torch.inference_mode():
        a, b = forward(ref, ck, x), forward(fast, ck, x)
    assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape == (3, 3, 30, 44)
    # bfloat16 keeps 8 significant bits: the logits agree to a few per cent of their range
    assert float((a - b).abs().max()) < 0.05 * float(a.abs().max())
    assert float((a.argmax(1) == b.argmax(1)).float().mean()) > 0.97


def test_auto_follows_the_cpu_flags(monkeypatch):
    from irtrepro.errors import OptionError
    from irtrepro.vision import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert precision.resolve_precision("auto", cpu) == "bfloat16"
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert precision.resolve_precision("auto", cpu) == "float32"
    assert precision.resolve_precision("bfloat16", cpu) == "bfloat16"   # asked: always
    with pytest.raises(OptionError, match="precision='half'"):
        precision.resolve_precision("half", cpu)


def test_segment_store_runs_at_each_precision_and_refuses_an_unknown_one(tmp_path):
    from irtrepro.errors import OptionError
    from irtrepro.io.thermal import open_frame_store, write_frames
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.infer import _fingerprint, predict_masks, segment_store
    from irtrepro.vision.precision import inference_network
    from tests.synth.test_thermogram import make_truth

    ses = render_session(make_truth(8), shape=(48, 64), seed=0, frame_interval_s=1)
    store = write_frames(tmp_path / "s.zarr", ses["frames"], chunk_frames=4, progress=False)
    frames = open_frame_store(store)["frames"].values   # as stored (the store quantises)
    roi, ves = _checkpoint("roi"), _checkpoint("vessels", seed=1, upsample=2)
    # an untrained calf network labels nearly every pixel alike; a bias towards the calves
    # makes calves and boxes appear, so that the vessel network runs too
    roi.state_dict["segmentation_head.0.bias"] += torch.tensor([0.0, 0.02, 0.02])
    with pytest.raises(OptionError, match="precision"):
        segment_store(store, roi, ves, precision="int4", progress=False)
    assert "roi" not in open_frame_store(store)    # nothing written
    for p in ("float32", "bfloat16"):
        segment_store(store, roi, ves, precision=p, progress=False, batch_size=4)
        ds = open_frame_store(store)
        want = predict_masks(frames, roi, ves, precision=p, batch_size=4)
        assert (want[0] > 0).any()
        np.testing.assert_array_equal(ds["roi"].values, want[0])
        np.testing.assert_array_equal(ds["vessels"].values, want[1])
    # a half-done run at one precision is never resumed at the other
    cpu = torch.device("cpu")
    fps = {p: _fingerprint(store, [inference_network(c, cpu, p) for c in (roi, ves)], {})
           for p in ("float32", "bfloat16")}
    assert fps["float32"] != fps["bfloat16"]
