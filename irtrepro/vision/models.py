"""U-Net builder, temperature-aware normalisation and checkpoints that describe themselves."""

from __future__ import annotations

import dataclasses
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
    in_channels : int
        Input channels of the network (1: one temperature image); files written before this
        field existed load as 1.
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
    in_channels: int = 1
    state_dict: Any = None

    def build(self):
        """The network with these weights, in eval mode."""
        if self.in_channels != 1:
            raise ModelError(f"checkpoint has in_channels={self.in_channels}; the thermal "
                             "models take 1 channel (degC)")
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

        meta = _plain({k: v for k, v in asdict(dataclasses.replace(self, state_dict=None)).items()
                       if k != "state_dict"})
        meta["state_dict"] = self.state_dict
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
        if isinstance(meta, dict) and meta.get("format") == MODEL_FORMAT:
            raise ModelError(f"{path}: a model file with both networks, not a one-task "
                             "checkpoint; load it with SegmentationModel.load (--model)")
        if not isinstance(meta, dict) or "task" not in meta or "state_dict" not in meta:
            raise ModelError(f"{path}: not an irtrepro checkpoint (no task/state_dict)")
        if meta.get("in_channels", IN_CHANNELS) != IN_CHANNELS:
            raise ModelError(f"{path}: field 'in_channels' is {meta['in_channels']!r}; "
                             f"expected {IN_CHANNELS} (degC)")
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


# --------------------------------------------------------------------------------------------
# one model file: the ROI and vessel networks with a model card
# --------------------------------------------------------------------------------------------

def _plain(obj):
    """Plain Python types (what ``torch.load(weights_only=True)`` accepts) of nested metadata."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


#: ``format`` value of a model file (the key that tells it from a one-task checkpoint)
MODEL_FORMAT = "irtrepro-segmentation-model"
MODEL_VERSION = 1
#: input channels the thermal models take: one temperature image in degC
IN_CHANNELS = 1


@dataclass
class SegmentationModel:
    """The ROI and the vessel network in one file, with a model card.

    Attributes
    ----------
    roi, vessels : Checkpoint
    card : dict
        The model card: ``architecture`` (per task: encoder, depth, decoder channels,
        downsample, upsample), ``classes`` (per task), ``in_channels``, ``input``
        (``crop_px`` trained on, ``frame_shape`` of the training recordings, ``units``
        degC), ``normalisation`` (per task), ``data_hash`` (sha256 of the annotations and
        frames trained on), ``validation`` (Dice per class per task, validation subjects /
        recordings, ``split_by``), ``settings`` (steps, batch, lr, seed, augmentation),
        ``training`` (recordings, subjects, frames, seconds, device).
    """

    roi: Checkpoint
    vessels: Checkpoint
    card: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the one file atomically (torch.save of plain Python types)."""
        import torch

        for task, ck in (("roi", self.roi), ("vessels", self.vessels)):
            check_checkpoint(ck, task, source=f"{path} ({task})")
        meta = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "card": _plain(self.card)}
        for task, ck in (("roi", self.roi), ("vessels", self.vessels)):
            state = ck.state_dict
            d = _plain({k: v for k, v in asdict(dataclasses.replace(ck, state_dict=None)).items()
                        if k != "state_dict"})
            d["state_dict"] = state
            meta[task] = d
        with atomic_path(path) as tmp:
            torch.save(meta, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SegmentationModel:
        """Read a model file; refuse one of other classes or input channels.

        Raises
        ------
        ModelError
            Not a model file, or a field that disagrees with what :mod:`irtrepro.vision`
            segments: the message names the file and the field (``roi.classes``,
            ``vessels.in_channels``, ``card.in_channels``, ...).
        """
        import torch

        try:
            meta = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds on a damaged file
            raise ModelError(f"{path}: not a readable irtrepro model file: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
            hint = (" (a one-task checkpoint: give it as --roi-model/--vessel-model)"
                    if isinstance(meta, dict) and "task" in meta else "")
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ModelError(f"{path}: field 'format' is {found!r}; expected "
                             f"{MODEL_FORMAT!r}{hint}")
        card = meta.get("card") or {}
        if card.get("in_channels", IN_CHANNELS) != IN_CHANNELS:
            raise ModelError(f"{path}: field 'card.in_channels' is {card['in_channels']!r}; "
                             f"the thermal models take {IN_CHANNELS} (degC)")
        cks = []
        for task in ("roi", "vessels"):
            d = meta.get(task)
            if not isinstance(d, dict) or "state_dict" not in d:
                raise ModelError(f"{path}: field {task!r} missing or holds no network")
            if tuple(d.get("classes", ())) != TASK_CLASSES[task]:
                raise ModelError(f"{path}: field '{task}.classes' is {d.get('classes')!r}; "
                                 f"expected {list(TASK_CLASSES[task])}")
            if d.get("in_channels", IN_CHANNELS) != IN_CHANNELS:
                raise ModelError(f"{path}: field '{task}.in_channels' is "
                                 f"{d['in_channels']!r}; expected {IN_CHANNELS} (degC)")
            if d.get("task") != task:
                raise ModelError(f"{path}: field '{task}.task' is {d.get('task')!r}; "
                                 f"expected {task!r}")
            ck = Checkpoint(**{**d, "classes": tuple(d["classes"]),
                               "decoder_channels": tuple(d["decoder_channels"])})
            check_checkpoint(ck, task, source=f"{path} ({task})")
            cks.append(ck)
        return cls(cks[0], cks[1], card)


def load_models(model: str | os.PathLike | None = None, *,
                roi: str | os.PathLike | None = None,
                vessels: str | os.PathLike | None = None) -> tuple[Checkpoint, Checkpoint]:
    """The ROI and vessel checkpoints from one model file or from two one-task files.

    Parameters
    ----------
    model : path, optional
        A :class:`SegmentationModel` file.
    roi, vessels : path, optional
        One-task checkpoints (``roi.pt``, ``vessels.pt``); used when ``model`` is not given.

    Raises
    ------
    ModelError
        Both or neither given, or a file of the wrong kind (see :meth:`SegmentationModel.load`).
    """
    if model is not None:
        if roi is not None or vessels is not None:
            raise ModelError(f"{model}: give either one model file or the two one-task "
                             "checkpoints, not both")
        m = SegmentationModel.load(model)
        return m.roi, m.vessels
    if roi is None or vessels is None:
        raise ModelError("no model: give a model file (--model) or both --roi-model and "
                         "--vessel-model")
    return Checkpoint.load(roi, task="roi"), Checkpoint.load(vessels, task="vessels")
