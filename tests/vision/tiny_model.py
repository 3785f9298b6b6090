"""A tiny synthetic thermal study and a model file trained on it for a few steps (test helper).

Small enough for seconds on 2 CPU cores: 48x64 frames, 12 per session, a U-Net with a
(8, 8, 4) decoder trained for 3 steps per task. The model is poor; the tests that use it check
what is done with a model file, not how well it segments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SHAPE = (48, 64)
N_FRAMES = 12


def write_session(root: Path, subject: str, *, masks: bool = True, seed: int = 0) -> dict:
    """A frame store (``frames``) and, if ``masks``, a ground-truth mask store (``masks``)."""
    from irtrepro.io.thermal import write_frames
    from irtrepro.synth.thermogram import render_session
    from tests.synth.test_thermogram import make_truth

    ds = render_session(make_truth(N_FRAMES * 2, subject), shape=SHAPE, seed=seed,
                        frame_interval_s=2)
    root.mkdir(parents=True, exist_ok=True)
    out = {"frames": write_frames(root / f"{subject}.zarr", ds["frames"], chunk_frames=4,
                                  progress=False), "truth": ds, "masks": None}
    if masks:
        path = root / f"{subject}_masks.zarr"
        ds[["roi", "vessels"]].astype("uint8").to_zarr(path, mode="w", consolidated=False)
        out["masks"] = path
    return out


def train_tiny_model(path: Path, sessions: dict, *, steps: int = 3):
    """Train both networks for ``steps`` steps on ``{subject: write_session(...)}``; save a
    model file (3 steps: a poor model, for tests of what is done with a file).

    Returns
    -------
    SegmentationModel
    """
    from irtrepro.vision.models import SegmentationModel
    from irtrepro.vision.train import train_segmenter

    torch.manual_seed(0)
    F = np.concatenate([s["truth"].frames.values for s in sessions.values()])
    R = np.concatenate([s["truth"].roi.values for s in sessions.values()]).astype(np.uint8)
    V = np.concatenate([s["truth"].vessels.values for s in sessions.values()]).astype(np.uint8)
    S = [k for k, s in sessions.items() for _ in range(s["truth"].sizes["frame"])]
    cks = {task: train_segmenter(F, R, V, S, task=task, max_steps=steps,
                                 eval_every=steps,
                                 batch_size=2, decoder_channels=(8, 8, 4), seed=0, threads=1)
           for task in ("roi", "vessels")}
    card = {"in_channels": 1, "data_hash": cks["roi"].data_hash,
            "classes": {t: list(c.classes) for t, c in cks.items()},
            "validation": {"dice": {t: c.metrics["val_dice"] for t, c in cks.items()}},
            "training": {"subjects": sorted(sessions)}}
    m = SegmentationModel(cks["roi"], cks["vessels"], card)
    m.save(path)
    return m


def write_wrong_classes(model_path: Path, out: Path) -> Path:
    """A copy of a model file whose ROI network claims other classes."""
    meta = torch.load(model_path, map_location="cpu", weights_only=True)
    meta["roi"]["classes"] = ["background", "calf"]
    torch.save(meta, out)
    return out
