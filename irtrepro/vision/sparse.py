"""Training on sparse annotations: a few annotated frames of recordings at camera resolution.

The data are sparse mask stores (:func:`irtrepro.io.annotations.read_annotations`, written by
``irtrepro annotations import``) and the recordings they annotate (a zarr frame store, or any
file the thermal readers of :mod:`irtrepro.io` open: FLIR SEQ/CSQ, InfraTec IRB, ...). Only
the annotated frames are read, one at a time when a batch needs them (a bounded cache keeps
recently used ones), so memory is bounded by the batch and the cache, never by the session.

Training draws random crops at native resolution, excludes ``ignore`` pixels from the loss and
from the validation Dice, and holds out whole subjects (or whole recordings) for validation:
adjacent frames of one recording are near copies, a split by frame would score memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irtrepro._logging import logger, progress_bar
from irtrepro.errors import ModelError, OptionError, check_option
from irtrepro.vision.models import (
    DEFAULT_ENCODER,
    IN_CHANNELS,
    TASK_CLASSES,
    Checkpoint,
    SegmentationModel,
)

__all__ = ["AnnotatedRecording", "SparseFrames", "SparseSettings", "train_sparse",
           "train_model", "sparse_validation_split", "masked_dice"]


@dataclass(frozen=True)
class AnnotatedRecording:
    """One sparse mask store and the recording it annotates.

    Attributes
    ----------
    masks : Path
        Sparse mask store (zarr, from ``irtrepro annotations import``).
    recording : Path
        Zarr frame store or camera file (SEQ, CSQ, IRB, ...) read by :mod:`irtrepro.io`.
    subject : str
        Subject filmed; validation holds out whole subjects. Default: the recording's stem
        (then each recording is its own group).
    """

    masks: Path
    recording: Path
    subject: str = ""


class SparseFrames:
    """Annotated frames of one or more recordings: masks in memory, frames read on demand.

    Parameters
    ----------
    items : sequence of AnnotatedRecording
    cache_mb : float
        Frames kept in memory after their first read (least recently used dropped first),
        MB; 0 reads every frame from its recording each time.

    Attributes
    ----------
    index : list of (int, int)
        ``(recording, position in its mask store)`` of every annotated frame.
    groups : ndarray of str
        Subject of each annotated frame.
    """

    def __init__(self, items: Sequence[AnnotatedRecording], *, cache_mb: float = 256):
        from irtrepro.io.annotations import open_annotations
        from irtrepro.io.recording import open_recording

        if not items:
            raise OptionError("no annotated recordings given")
        self.items = [dataclasses.replace(it, masks=Path(it.masks), recording=Path(it.recording),
                                          subject=str(it.subject or Path(it.recording).stem))
                      for it in items]
        self.masks, self.frames_of, self._src = [], [], []
        self.index, groups = [], []
        for r, it in enumerate(self.items):
            ds = open_annotations(it.masks)
            src = open_recording(it.recording)
            fi = np.asarray(ds["frame"].values, int)
            if fi.size and (fi.min() < 0 or fi.max() >= src.shape[0]):
                bad = int(fi[(fi < 0) | (fi >= src.shape[0])][0])
                raise ModelError(f"{it.masks}: annotated frame {bad} is not in the recording "
                                 f"{it.recording} (frames 0...{src.shape[0] - 1})")
            if tuple(src.shape[1:]) != (ds.sizes["y"], ds.sizes["x"]):
                raise ModelError(f"{it.masks}: masks are {ds.sizes['y']}x{ds.sizes['x']} (h x w)"
                                 f" but the recording {it.recording} is {src.shape[1]}x"
                                 f"{src.shape[2]}")
            self.masks.append({n: np.asarray(ds[n].values, np.uint8)
                               for n in ("roi", "vessels", "ignore")})
            self.frames_of.append(fi)
            self._src.append(src)
            self.index += [(r, k) for k in range(fi.size)]
            groups += [it.subject] * fi.size
        self.groups = np.asarray(groups, dtype=str)
        self.recordings = np.asarray([str(self.items[r].recording) for r, _ in self.index])
        self._cache: OrderedDict = OrderedDict()
        self._budget = float(cache_mb) * 2**20
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.index)

    def frame(self, i: int) -> np.ndarray:
        """Annotated frame ``i`` (degC float32 ``(y, x)``), read from its recording."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        r, k = self.index[i]
        f = np.asarray(self._src[r][int(self.frames_of[r][k])].values, np.float32)
        if self._budget > 0 and f.nbytes <= self._budget:
            self._cache[i] = f
            self._bytes += f.nbytes
            while self._bytes > self._budget:
                _, old = self._cache.popitem(last=False)
                self._bytes -= old.nbytes
        return f

    def labels(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``roi``, ``vessels``, ``ignore`` of annotated frame ``i`` (uint8 ``(y, x)``)."""
        r, k = self.index[i]
        m = self.masks[r]
        return m["roi"][k], m["vessels"][k], m["ignore"][k]

    def shapes(self) -> list[tuple[int, int]]:
        """Distinct frame shapes (rows, columns) of the recordings."""
        return sorted({tuple(m["roi"].shape[1:]) for m in self.masks})

    def data_hash(self, extra: str = "") -> str:
        """sha256 of every annotated frame, its masks and its frame index (read one at a time)."""
        h = hashlib.sha256()
        for i in range(len(self)):
            r, k = self.index[i]
            h.update(f"{self.groups[i]}:{int(self.frames_of[r][k])}".encode())
            for a in (self.frame(i), *self.labels(i)):
                h.update(f"{a.shape}{a.dtype}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
        h.update(extra.encode())
        return h.hexdigest()


def sparse_validation_split(data: SparseFrames, *, split_by: str = "subject",
                            n_val: int | float = 0.25, val: Sequence[str] | None = None,
                            seed: int = 0):
    """Hold out whole subjects (or recordings), never single frames.

    Parameters
    ----------
    data : SparseFrames
    split_by : {"subject", "recording"}
    n_val : int or float
        Number or fraction of groups held out (at least one on each side).
    val : sequence of str, optional
        The held-out subjects / recordings by name (overrides ``n_val``).
    seed : int

    Returns
    -------
    train_groups, val_groups : list of str
    train_idx, val_idx : ndarray of int
        Annotated-frame indices on each side.
    """
    from irtrepro.splits import subject_split

    check_option("split_by", split_by, ("subject", "recording"))
    groups = data.groups if split_by == "subject" else data.recordings
    if val is None:
        train_g, val_g = subject_split(groups, n_test=n_val, seed=seed)
    else:
        val_g = sorted(map(str, val))
        unknown = set(val_g) - set(groups)
        if unknown:
            raise OptionError(f"validation {split_by}s {sorted(unknown)} not in the data "
                              f"({sorted(set(groups))})")
        train_g = sorted(set(groups) - set(val_g))
    tr = np.flatnonzero(np.isin(groups, train_g))
    va = np.flatnonzero(np.isin(groups, val_g))
    if tr.size == 0 or va.size == 0:
        raise OptionError(f"no annotated frames for training {split_by}s {train_g} or "
                          f"validation {val_g}")
    return list(train_g), list(val_g), tr, va


def masked_dice(truth: np.ndarray, pred: np.ndarray, ignore: np.ndarray, n: int) -> np.ndarray:
    """Dice per foreground class 1..n-1 over the pixels with ``ignore == 0`` (NaN: no pixels)."""
    keep = ignore == 0
    out = []
    for c in range(1, n):
        t, p = (truth == c) & keep, (pred == c) & keep
        s = int(t.sum() + p.sum())
        out.append(2 * int((t & p).sum()) / s if s else np.nan)
    return np.array(out, float)


@dataclass(frozen=True)
class SparseSettings:
    """Settings of one sparse training run (per task).

    Attributes
    ----------
    steps, batch, crop, lr
        Optimiser steps, crops per batch, crop side (px of the network's input, i.e. native
        pixels / ``downsample``; clipped to the frame; 0: whole frames), peak learning rate
        (AdamW, one-cycle cosine).
    downsample : int
        Frames are average-pooled by this factor before the network, and its logits are
        upsampled back to native resolution (loss and Dice are at native resolution).
        0: :func:`auto_downsample` of the largest recording (the ROI network), so that the
        network's receptive field spans both calves at any camera resolution.
    focus : float
        Fraction of crops centred on a foreground pixel of the task (calf, or vessel); the
        rest are placed uniformly.
    class_weight : tuple of float
        Cross-entropy weight per class.
    netd : float
        Noise SD of the augmentation, degC.
    augment_strength : float
        Scales the affine, offset and gain ranges (0: flip and noise only).
    eval_every : int
        Steps between validations (the weights with the best mean validation Dice are kept).
    max_val_frames : int
        Validation frames scored (evenly spaced over the held-out frames).
    encoder, encoder_depth, decoder_channels, upsample
        Network (see :class:`~irtrepro.vision.models.Checkpoint`).
    """

    steps: int = 300
    batch: int = 8
    crop: int = 96
    downsample: int = 1
    lr: float = 3e-3
    focus: float = 0.5
    class_weight: tuple[float, ...] = (1.0, 1.0, 1.0)
    netd: float = 0.05
    augment_strength: float = 1.0
    eval_every: int = 50
    max_val_frames: int = 32
    encoder: str = DEFAULT_ENCODER
    encoder_depth: int = 3
    decoder_channels: tuple[int, ...] = (32, 16, 8)
    upsample: int = 1

    def checked(self) -> SparseSettings:
        for name in ("steps", "batch", "eval_every", "max_val_frames", "upsample"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise OptionError(f"{name}={v!r}; expected an integer >= 1")
        for name in ("crop", "downsample"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 0):
                raise OptionError(f"{name}={v!r}; expected an integer >= 0 (0: "
                                  f"{'whole frames' if name == 'crop' else 'automatic'})")
        if self.downsample > 1 and self.upsample > 1:
            raise OptionError("downsample and upsample cannot both exceed 1")
        if not self.lr > 0:
            raise OptionError(f"lr={self.lr!r}; expected a learning rate > 0")
        if not self.netd >= 0:
            raise OptionError(f"netd={self.netd!r}; expected a noise SD >= 0 degC")
        if len(self.class_weight) != 3:
            raise OptionError(f"class_weight={self.class_weight!r}; expected 3 weights")
        return dataclasses.replace(self, decoder_channels=tuple(self.decoder_channels),
                                   class_weight=tuple(float(c) for c in self.class_weight))


#: Long side (px) the ROI network sees after :func:`auto_downsample`: the 160x120 the
#: networks were designed at, where a depth-3 U-Net's receptive field spans a calf.
ROI_INPUT_SIDE = 160


def auto_downsample(shapes: Sequence[tuple[int, int]], side: int = ROI_INPUT_SIDE) -> int:
    """Pooling factor bringing the largest frame's long side to about ``side`` px (>= 1).

    Telling the left from the right calf needs context across the frame; at 640x480 a crop
    of native pixels sees part of one calf only (measured: validation Dice 0.02 left, 0.63
    right after 300 steps of 96-px crops), whereas at 160 px the whole frame is one input.
    """
    longest = max((max(s) for s in shapes), default=side)
    return max(1, int(round(longest / side)))


def _target(task: str, roi: np.ndarray, vessels: np.ndarray) -> np.ndarray:
    """The task's labels; vessels count inside the annotated calves only."""
    return roi if task == "roi" else np.where(roi > 0, vessels, 0).astype(np.uint8)


def _sample(rng, data: SparseFrames, idx: np.ndarray, st: SparseSettings, task: str):
    """One batch of crops: frames (degC), roi, vessels, ignore."""
    f_out, r_out, v_out, i_out = [], [], [], []
    picks = rng.choice(idx, st.batch)
    shapes = [data.labels(int(i))[0].shape for i in picks]
    native = st.crop * st.downsample if st.crop else max(max(s) for s in shapes)
    ch = min(native, *(s[0] for s in shapes))
    cw = min(native, *(s[1] for s in shapes))
    for i in picks:
        f = data.frame(int(i))
        r, v, ig = data.labels(int(i))
        h, w = r.shape
        fg = _target(task, r, v) > 0
        ys, xs = np.nonzero(fg & (ig == 0)) if rng.random() < st.focus else ((), ())
        if len(ys):
            j = rng.integers(len(ys))
            cy, cx = int(ys[j]), int(xs[j])
            y0 = int(np.clip(cy - ch // 2 + rng.integers(-ch // 4, ch // 4 + 1), 0, h - ch))
            x0 = int(np.clip(cx - cw // 2 + rng.integers(-cw // 4, cw // 4 + 1), 0, w - cw))
        else:
            y0, x0 = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        f_out.append(f[sl])
        r_out.append(r[sl])
        v_out.append(v[sl])
        i_out.append(ig[sl])
    return (np.stack(f_out), np.stack(r_out), np.stack(v_out), np.stack(i_out))


def _loss(model, ck, st, task, rng, data, idx, weight, dev):
    """Weighted cross-entropy + soft Dice of one augmented batch, ignore pixels left out."""
    import torch
    import torch.nn.functional as F

    from irtrepro.vision.data import augment_thermal
    from irtrepro.vision.infer import forward

    f, r, v, ig = _sample(rng, data, idx, st, task)
    t = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    f, r, v, ig = augment_thermal(rng, torch.from_numpy(f), t(r), t(v), t(ig), netd=st.netd,
                                  strength=st.augment_strength)
    y = r if task == "roi" else torch.where(r > 0, v, 0)
    valid = (ig == 0)
    q = float(ck.normalisation["q"])
    level = torch.quantile(f.flatten(1), q, dim=1)[:, None, None]
    x = ((f - level) / float(ck.normalisation["scale"])).to(dev)
    y, valid = y.to(dev), valid.to(dev)
    logits = forward(model, ck, x)
    ce = F.cross_entropy(logits, torch.where(valid, y, -100), weight=weight.to(dev),
                         ignore_index=-100, reduction="sum") / valid.sum().clamp(min=1)
    prob = logits.softmax(1) * valid[:, None]
    onehot = F.one_hot(y, len(ck.classes)).permute(0, 3, 1, 2).float() * valid[:, None]
    inter = (prob * onehot).sum((0, 2, 3))[1:]
    denom = (prob + onehot).sum((0, 2, 3))[1:]
    return ce + 1 - ((2 * inter + 1) / (denom + 1)).mean()


def _validate(model, ck, task, data, va, dev) -> np.ndarray:
    """Dice per foreground class over the validation frames (whole frames, ignore left out)."""
    from irtrepro.vision.infer import predict_labels

    model.eval()
    tp = np.zeros(len(ck.classes) - 1)
    tot = np.zeros(len(ck.classes) - 1)
    for i in va:  # one frame at a time: memory of one frame, whatever the validation size
        r, v, ig = data.labels(int(i))
        pred = predict_labels(ck, data.frame(int(i))[None], model=model, batch_size=1,
                              dev=dev)[0]
        truth = _target(task, r, v)
        if task == "vessels":
            pred = np.where(r > 0, pred, 0)
        keep = ig == 0
        for c in range(1, len(ck.classes)):
            t, p = (truth == c) & keep, (pred == c) & keep
            tp[c - 1] += 2 * (t & p).sum()
            tot[c - 1] += t.sum() + p.sum()
    model.train()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, tp / np.where(tot > 0, tot, 1), np.nan)


def train_sparse(data: SparseFrames, *, task: str, settings: SparseSettings | None = None,
                 split=None, seed: int = 0, device: str | None = None,
                 threads: int | None = None, progress: bool | None = None) -> Checkpoint:
    """Train one U-Net (``roi`` or ``vessels``) on sparse annotations.

    Parameters
    ----------
    data : SparseFrames
    task : {"roi", "vessels"}
    settings : SparseSettings, optional
    split : tuple, optional
        A result of :func:`sparse_validation_split` (default: by subject, a quarter held out).
    seed : int
        Seeds numpy and torch (reproducible on CPU).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``; default CUDA when present, else CPU.
    threads : int, optional
        Torch CPU threads.
    progress : bool or None
        Progress bar over the steps (``None``: when the logger shows INFO, ``-v``).

    Returns
    -------
    Checkpoint
        ``metrics``: ``history`` (step, loss, val_dice per class, seconds), ``val_dice`` (best,
        by class name), ``steps``, ``seconds``, ``train_groups``, ``val_groups``, ``device``.
    """
    import torch

    from irtrepro._threads import torch_threads
    from irtrepro.vision.infer import device as pick_device

    check_option("task", task, TASK_CLASSES)
    st = (settings or SparseSettings()).checked()
    if st.downsample == 0:
        st = dataclasses.replace(st, downsample=auto_downsample(data.shapes()))
    train_g, val_g, tr, va = split if split is not None else sparse_validation_split(
        data, seed=seed)
    va = va[np.linspace(0, va.size - 1, min(st.max_val_frames, va.size)).astype(int)]
    if threads:
        torch_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = pick_device(device)
    classes = TASK_CLASSES[task]
    ck = Checkpoint(task=task, classes=classes, encoder=st.encoder,
                    encoder_depth=st.encoder_depth, decoder_channels=st.decoder_channels,
                    upsample=st.upsample, downsample=st.downsample, in_channels=IN_CHANNELS,
                    settings={**dataclasses.asdict(st), "seed": seed, "val_groups": val_g,
                              "decoder_channels": list(st.decoder_channels),
                              "class_weight": list(st.class_weight)})
    model = ck.build().to(dev)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=st.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=st.lr, total_steps=st.steps,
                                                pct_start=0.15)
    weight = torch.tensor(st.class_weight)
    history, losses, best, best_state = [], [], -1.0, None
    t0 = time.perf_counter()
    for step in progress_bar(range(1, st.steps + 1), progress, desc=f"train-seg {task}",
                             total=st.steps):
        loss = _loss(model, ck, st, task, rng, data, tr, weight, dev)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.item()))
        if step % st.eval_every == 0 or step == st.steps:
            dice = _validate(model, ck, task, data, va, dev)
            history.append({"step": step, "loss": float(np.mean(losses[-st.eval_every:])),
                            "val_dice": dice.tolist(), "seconds": time.perf_counter() - t0})
            logger.info("train-seg %s step %d loss %.3f validation Dice %s", task, step,
                        history[-1]["loss"],
                        dict(zip(classes[1:], np.round(dice, 3).tolist(), strict=True)))
            score = float(np.nanmean(dice)) if np.isfinite(dice).any() else -1.0
            if score > best or best_state is None:
                best = score
                best_state = {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}
    ck.state_dict = best_state
    best_row = max(history, key=lambda h: (np.nanmean(h["val_dice"])
                                           if np.isfinite(h["val_dice"]).any() else -1.0))
    ck.metrics = {"history": history, "loss_first": float(np.mean(losses[:10])),
                  "loss_last": float(np.mean(losses[-10:])), "steps": st.steps,
                  "best_step": best_row["step"], "seconds": time.perf_counter() - t0,
                  "val_dice": dict(zip(classes[1:], best_row["val_dice"], strict=True)),
                  "train_groups": list(train_g), "val_groups": list(val_g),
                  "val_frames": int(va.size), "device": str(dev)}
    return ck


#: Per-task defaults on top of :class:`SparseSettings`. The ROI network sees whole frames
#: pooled to ~160 px (left and right calf differ only by where they are in the frame); the
#: vessel network sees native-resolution crops (vessels are a few pixels wide) and, since
#: perforators cover ~1 % of the calf, weights them up.
TASK_SPARSE_DEFAULTS = {"roi": {"crop": 0, "downsample": 0},
                        "vessels": {"class_weight": (1.0, 1.0, 3.0)}}


def train_model(data: SparseFrames, *, split_by: str = "subject", n_val: int | float = 0.25,
                val: Sequence[str] | None = None, seed: int = 0, device: str | None = None,
                threads: int | None = None, progress: bool | None = None,
                **settings) -> SegmentationModel:
    """Train the ROI and the vessel network on sparse annotations; one model with its card.

    Parameters
    ----------
    data : SparseFrames
    split_by, n_val, val
        The validation split (see :func:`sparse_validation_split`); both networks share it.
    seed, device, threads, progress
        As in :func:`train_sparse`.
    **settings
        Fields of :class:`SparseSettings` (``steps``, ``batch``, ``crop``, ``lr``, ``netd``,
        ...), applied to both tasks over :data:`TASK_SPARSE_DEFAULTS`; a value of ``None``
        keeps the task's default. A ``{"roi": ..., "vessels": ...}`` dict as a value sets
        that field per task.

    Returns
    -------
    SegmentationModel
        With a model card (see :class:`~irtrepro.vision.models.SegmentationModel`).
    """
    from irtrepro.vision.data import THERMAL_AUGMENTATIONS

    names = {f.name for f in dataclasses.fields(SparseSettings)}
    settings = {k: v for k, v in settings.items() if v is not None}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise OptionError(f"train_model takes no setting {unknown[0]!r} (settings: "
                          f"{', '.join(sorted(names))})")
    split = sparse_validation_split(data, split_by=split_by, n_val=n_val, val=val, seed=seed)
    cks = {}
    for task in ("roi", "vessels"):
        mine = {k: (v[task] if isinstance(v, dict) and task in v else v)
                for k, v in settings.items()}
        mine = {k: v for k, v in mine.items() if not isinstance(v, dict)}
        st = SparseSettings(**{**TASK_SPARSE_DEFAULTS[task], **mine})
        cks[task] = train_sparse(data, task=task, settings=st, split=split, seed=seed,
                                 device=device, threads=threads, progress=progress)
    h = data.data_hash(repr(sorted(settings.items())) + f"{split_by}{split[1]}{seed}")
    for ck in cks.values():
        ck.data_hash = h
    ref = cks["roi"]
    card = {
        "architecture": {t: {"family": "smp.Unet", "encoder": c.encoder,
                             "encoder_weights": None, "encoder_depth": c.encoder_depth,
                             "decoder_channels": list(c.decoder_channels),
                             "downsample": c.downsample, "upsample": c.upsample}
                         for t, c in cks.items()},
        "classes": {t: list(c.classes) for t, c in cks.items()},
        "in_channels": IN_CHANNELS,
        "input": {"units": "degC", "frame_shapes": [list(s) for s in data.shapes()],
                  "crop_px": {t: c.settings["crop"] for t, c in cks.items()},
                  "downsample": {t: c.downsample for t, c in cks.items()},
                  "inference": "whole frames at native resolution (any size)"},
        "normalisation": {t: dict(c.normalisation) for t, c in cks.items()},
        "data_hash": h,
        "validation": {"split_by": split_by, "val_groups": split[1],
                       "train_groups": split[0],
                       "dice": {t: c.metrics["val_dice"] for t, c in cks.items()},
                       "frames": ref.metrics["val_frames"],
                       "ignore": "ignore pixels left out of loss and Dice"},
        "settings": {t: c.settings for t, c in cks.items()},
        "augmentation": dict(THERMAL_AUGMENTATIONS),
        "training": {"recordings": [str(it.recording) for it in data.items],
                     "annotations": [str(it.masks) for it in data.items],
                     "subjects": sorted(set(data.groups.tolist())),
                     "annotated_frames": len(data), "device": ref.metrics["device"],
                     "seconds": {t: c.metrics["seconds"] for t, c in cks.items()},
                     "seed": seed},
    }
    return SegmentationModel(cks["roi"], cks["vessels"], card)


def annotated_recordings(masks: Sequence[str | os.PathLike],
                         recordings: Sequence[str | os.PathLike],
                         subjects: Sequence[str] | None = None) -> list[AnnotatedRecording]:
    """Pair mask stores with their recordings (and subjects), one to one, in order.

    Raises
    ------
    OptionError
        Lists of different lengths.
    """
    subjects = list(subjects or [])
    if len(masks) != len(recordings) or (subjects and len(subjects) != len(masks)):
        raise OptionError(f"{len(masks)} annotation stores, {len(recordings)} recordings and "
                          f"{len(subjects)} subjects: give one recording (and one subject, if "
                          "any) per annotation store, in the same order")
    return [AnnotatedRecording(Path(m), Path(r), subjects[k] if subjects else "")
            for k, (m, r) in enumerate(zip(masks, recordings, strict=True))]
