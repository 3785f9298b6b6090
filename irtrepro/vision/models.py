"""U-Net builder, temperature-aware normalisation and checkpoints that describe themselves."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irtrepro._atomic import atomic_path
from irtrepro.errors import ModelError

#: class names per task; the index is the label value
TASK_CLASSES = {"roi": ("background", "left_calf", "right_calf"),
                "vessels": ("none", "vein", "perforator")}

DEFAULT_ENCODER = "resnet18"


@dataclass
class Checkpoint:
    """A trained segmenter and everything needed to use it correctly.

    Attributes
    ----------
    task : str
        ``"roi"`` or ``"vessels"``.
    classes : tuple of str
        Class names; index = label value.
    encoder : str
        smp encoder name.
    encoder_depth : int
    decoder_channels : tuple of int
    downsample : int
        Input is average-pooled by this factor before the network (1 = full resolution).
    upsample : int
        Input is bilinearly enlarged by this factor before the network and the logits are
        average-pooled back (1 = off); gives 1-2 pixel structures (perforators) a full-resolution
        skip connection in a U-Net whose first skip is at half resolution.
    normalisation : dict
        ``{"method": "frame_quantile", "q": 0.9, "scale": 3.0}``: ``(T - quantile_q(frame)) /
        scale`` with T in degC; the shift removes the ambient/absolute level, the scale keeps
        degC meaning.
    data_hash : str
        sha256 of the training frames and labels.
    metrics : dict
        Training/validation metrics (loss curve, validation Dice per class, steps, seconds).
    state_dict : dict
        Network weights.
    """

    task: str
    classes: tuple[str, ...]
    encoder: str = DEFAULT_ENCODER
    encoder_depth: int = 3
    decoder_channels: tuple[int, ...] = (32, 16, 8)
    downsample: int = 1
    upsample: int = 1
    normalisation: dict = field(default_factory=lambda: {"method": "frame_quantile", "q": 0.9,
                                                         "scale": 3.0})
    data_hash: str = ""
    metrics: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    state_dict: Any = None

    def build(self):
        """The network with these weights, in eval mode."""
        model = build_unet(len(self.classes), encoder=self.encoder,
                           encoder_depth=self.encoder_depth,
                           decoder_channels=self.decoder_channels)
        if self.state_dict is not None:
            model.load_state_dict(self.state_dict)
        model.eval()
        return model

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically with torch.save (metadata as plain Python types)."""
        import torch

        meta = asdict(self)
        meta["classes"] = list(self.classes)
        meta["decoder_channels"] = list(self.decoder_channels)
        with atomic_path(path) as tmp:
            torch.save(meta, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, task: str | None = None) -> Checkpoint:
        """Read a checkpoint; ``task`` checks it is the expected kind of model."""
        import torch

        try:
            meta = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds on a damaged file
            raise ModelError(f"{path}: not a readable irtrepro checkpoint: {exc}") from exc
        if not isinstance(meta, dict) or "task" not in meta or "state_dict" not in meta:
            raise ModelError(f"{path}: not an irtrepro checkpoint (no task/state_dict)")
        ck = cls(**{**meta, "classes": tuple(meta["classes"]),
                    "decoder_channels": tuple(meta["decoder_channels"])})
        if task is not None:
            check_checkpoint(ck, task, source=str(path))
        return ck


def check_checkpoint(ck: Checkpoint, task: str, source: str = "<checkpoint>") -> None:
    """Raise :class:`ModelError` if the checkpoint's task, classes or normalisation differ."""
    if ck.task != task or tuple(ck.classes) != TASK_CLASSES[task]:
        raise ModelError(f"{source}: checkpoint is for task {ck.task!r} with classes "
                         f"{list(ck.classes)}; expected {task!r} with {list(TASK_CLASSES[task])}")
    if ck.normalisation.get("method") != "frame_quantile":
        raise ModelError(f"{source}: normalisation {ck.normalisation!r} unknown; expected "
                         "method 'frame_quantile'")


def build_unet(n_classes: int, *, encoder: str = DEFAULT_ENCODER, encoder_depth: int = 3,
               decoder_channels: tuple[int, ...] = (32, 16, 8)):
    """An ``smp.Unet`` with one input channel and random weights (nothing is downloaded).

    The default (resnet18 stem + first two stages, decoder 32/16/8) was chosen by measured
    speed on 2 CPU cores: the full-depth resnet18 U-Net trains ~2x slower for no gain on
    160x120 thermograms, and the mobilenetv3 encoder's depthwise convolutions are slow on CPU.
    """
    import segmentation_models_pytorch as smp

    if len(decoder_channels) != encoder_depth:
        raise ModelError(f"decoder_channels={decoder_channels!r} must have encoder_depth="
                         f"{encoder_depth} entries")
    return smp.Unet(encoder, encoder_weights=None, in_channels=1, classes=n_classes,
                    encoder_depth=encoder_depth, decoder_channels=tuple(decoder_channels))


def normalise(frames: np.ndarray, normalisation: dict) -> np.ndarray:
    """Temperature-aware normalisation of (frame, y, x) degC frames; NaN -> 0 after shifting."""
    q = float(normalisation.get("q", 0.9))
    scale = float(normalisation.get("scale", 3.0))
    f = np.asarray(frames, dtype=np.float32)
    flat = f.reshape(f.shape[0], -1)
    level = np.nanquantile(flat, q, axis=1) if np.isnan(flat).any() else np.quantile(flat, q, axis=1)
    out = (f - level[:, None, None].astype(np.float32)) / scale
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
