"""Training of the ROI and vessel U-Nets: seeds, subject-wise validation, early stopping."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from irtrepro._logging import logger
from irtrepro._threads import torch_threads
from irtrepro.errors import OptionError, check_option
from irtrepro.splits import subject_split
from irtrepro.vision.data import (
    augment,
    check_training_arrays,
    data_hash,
    sample_batch,
)
from irtrepro.vision.models import DEFAULT_ENCODER, TASK_CLASSES, Checkpoint
from irtrepro.vision.precision import resolve_precision

#: defaults per task, chosen by measured speed/quality on 2 CPU cores (the task-specific fields
#: of :class:`SegmenterSettings`)
TASK_DEFAULTS = {
    # full resolution: at half resolution the calf border is blurred by a pixel, which puts
    # ~80 background pixels per frame into the calves and biases TNV by ~0.2 degC
    "roi": dict(downsample=1, upsample=1, crop=None, max_steps=200, batch_size=12, lr=3e-3,
                class_weight=(1.0, 1.0, 1.0), vessel_focus=0.0, eval_every=50),
    # perforators are 2-4 pixels across at 160x120: the input is enlarged 2x so they get a
    # full-resolution skip connection, and half the windows are centred on a vessel
    "vessels": dict(downsample=1, upsample=2, crop=32, max_steps=700, batch_size=12, lr=3e-3,
                    class_weight=(1.0, 1.0, 3.0), vessel_focus=0.5, eval_every=100),
}


def _dice_per_class(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    d = []
    for c in range(1, n):
        t, p = true == c, pred == c
        s = t.sum() + p.sum()
        d.append(2 * (t & p).sum() / s if s else np.nan)
    return np.array(d)


@dataclass(frozen=True)
class SegmenterSettings:
    """Model and optimiser settings of one U-Net training run (what decides the weights).

    :meth:`for_task` fills the task's defaults (:data:`TASK_DEFAULTS`) and applies overrides;
    every field can be overridden by name in :func:`train_segmenter`.

    Attributes
    ----------
    encoder, encoder_depth, decoder_channels
        smp U-Net settings (``encoder_weights=None`` always).
    downsample : int
        Average-pool factor of the input.
    upsample : int
        Bilinear enlargement of the input; see :class:`~irtrepro.vision.models.Checkpoint`.
    crop : int or None
        Training window, px (``None``: whole frames); vessel crops centre on calf pixels.
    vessel_focus : float
        Fraction of windows centred on a vessel pixel.
    batch_size, max_steps, lr
        AdamW with a one-cycle cosine schedule peaking at ``lr``.
    class_weight : tuple of float
        Cross-entropy weight per class (the loss is weighted cross-entropy + soft Dice).
    eval_every, patience : int
        Validate every ``eval_every`` steps; stop after ``patience`` validations without a
        better mean foreground Dice (the best weights are kept).
    precision : {"float32", "bfloat16", "auto"}
        Precision of the training steps: ``"bfloat16"`` runs each step's forward pass under
        ``torch.autocast`` in bfloat16 (weights, gradients, loss and optimiser stay float32;
        validation runs in float32); ``"auto"`` picks it where the device computes bfloat16
        natively (:func:`irtrepro.vision.precision.resolve_precision`). Default float32:
        bfloat16 steps ran 1.6x faster on an AMX CPU, but over 3 seeds the held-out
        perforator Dice was 0.535 +- 0.078 against 0.555 +- 0.030 (docs/thermal_pipeline.md),
        so it is not the default. The precision used is recorded in the checkpoint's settings.
    """

    encoder: str = DEFAULT_ENCODER
    encoder_depth: int = 3
    decoder_channels: tuple[int, ...] = (32, 16, 8)
    downsample: int = 1
    upsample: int = 1
    crop: int | None = None
    vessel_focus: float = 0.0
    batch_size: int = 12
    max_steps: int = 200
    lr: float = 3e-3
    class_weight: tuple[float, ...] = (1.0, 1.0, 1.0)
    eval_every: int = 50
    patience: int = 4
    precision: str = "float32"

    @classmethod
    def for_task(cls, task: str, **overrides) -> SegmenterSettings:
        """The defaults of ``task`` (:data:`TASK_DEFAULTS`, read now) with ``overrides``.

        Raises
        ------
        OptionError
            An unknown setting (with a did-you-mean), a step count, batch size or learning
            rate that is not positive, or one class weight per class missing.
        """
        import difflib

        check_option("task", task, TASK_CLASSES)
        names = [f.name for f in dataclasses.fields(cls)]
        for name in overrides:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise OptionError(f"train_segmenter takes no setting {name!r}{hint} "
                                  f"(settings: {', '.join(names)})")
        d = {**TASK_DEFAULTS[task], **overrides}
        s = cls(**{k: v for k, v in d.items() if k in names})
        s = dataclasses.replace(
            s, downsample=int(s.downsample), upsample=int(s.upsample),
            vessel_focus=float(s.vessel_focus), decoder_channels=tuple(s.decoder_channels),
            class_weight=tuple(float(c) for c in s.class_weight))
        for name in ("batch_size", "max_steps", "eval_every", "downsample", "upsample"):
            if not getattr(s, name) >= 1:
                raise OptionError(f"{name}={getattr(s, name)!r}; expected an integer >= 1")
        if not s.lr > 0:
            raise OptionError(f"lr={s.lr!r}; expected a learning rate > 0")
        resolve_precision(s.precision, "cpu")  # an unknown name is an OptionError here
        if len(s.class_weight) != len(TASK_CLASSES[task]):
            raise OptionError(f"class_weight={s.class_weight!r}; expected one weight per class "
                              f"{list(TASK_CLASSES[task])}")
        return s


def train_segmenter(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray,
                    subjects: Sequence[str], *, task: str,
                    settings: SegmenterSettings | None = None,
                    n_val: int | float = 0.25, val_subjects: Sequence[str] | None = None,
                    seed: int = 0, threads: int | None = 2, max_seconds: float | None = None,
                    **overrides) -> Checkpoint:
    """Train one U-Net from scratch on frames (degC) with ground-truth masks.

    Parameters
    ----------
    frames : ndarray (frame, y, x), degC
    roi, vessels : ndarray (frame, y, x), uint8
        Ground truth; the vessel task also uses ``roi`` (crops centred on calf pixels,
        ambient augmentation outside the calves).
    subjects : sequence of str, length frame
        Subject of each frame; validation holds out whole subjects.
    task : {"roi", "vessels"}
    settings : SegmenterSettings, optional
        Model and optimiser settings; default :meth:`SegmenterSettings.for_task` of ``task``.
    n_val, val_subjects
        Held-out validation subjects (a number/fraction, or the ids).
    seed : int
        Seeds numpy and torch; with ``max_seconds=None`` training is reproducible.
    threads : int
        Torch threads (default 2; see :func:`irtrepro._threads.torch_threads`).
    max_seconds : float, optional
        Wall-clock cap (stops early; the result then depends on machine speed).
    **overrides
        Fields of :class:`SegmenterSettings` replacing the task default (or ``settings``),
        e.g. ``max_steps=150, eval_every=50``.

    Returns
    -------
    Checkpoint
        With metrics: ``loss`` (per eval), ``val_dice`` (per class, best), ``steps``,
        ``seconds``, ``train_subjects``, ``val_subjects``.
    """
    import torch

    if settings is None:
        st = SegmenterSettings.for_task(task, **overrides)
    else:
        st = SegmenterSettings.for_task(task, **{**dataclasses.asdict(settings), **overrides})
    frames = np.asarray(frames, np.float32)
    roi = np.asarray(roi, np.uint8)
    vessels = np.asarray(vessels, np.uint8)
    check_training_arrays(frames, roi, vessels)
    subjects = np.asarray([str(s) for s in subjects])
    if subjects.shape != (len(frames),):
        raise OptionError(f"subjects has {subjects.size} entries for {len(frames)} frames")
    train_s, val_s, tr_idx, va_idx = _validation_split(subjects, n_val, val_subjects, seed)

    if threads:
        torch_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = TASK_CLASSES[task]
    precision = resolve_precision(st.precision, torch.device("cpu"))
    record = dict(encoder=st.encoder, encoder_depth=st.encoder_depth,
                  decoder_channels=list(st.decoder_channels), downsample=st.downsample,
                  upsample=st.upsample, crop=st.crop, vessel_focus=st.vessel_focus,
                  batch_size=st.batch_size, max_steps=st.max_steps, lr=st.lr,
                  class_weight=list(st.class_weight), seed=seed,
                  val_subjects=list(val_s), precision=precision)
    ck = Checkpoint(task=task, classes=classes, encoder=st.encoder,
                    encoder_depth=st.encoder_depth, decoder_channels=st.decoder_channels,
                    downsample=st.downsample, upsample=st.upsample,
                    data_hash=data_hash(frames, roi, vessels, repr(sorted(record.items()))),
                    settings=record)
    model = ck.build()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=st.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=st.lr, total_steps=st.max_steps,
                                                pct_start=0.15)
    weight = torch.tensor(st.class_weight)
    best, best_state, bad_evals, losses, history = -1.0, None, 0, [], []
    t0 = time.perf_counter()
    step = 0
    for step in range(1, st.max_steps + 1):
        loss = _batch_loss(model, ck, st, task, rng, frames, roi, vessels, tr_idx, weight,
                           bfloat16=precision == "bfloat16")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        timeout = max_seconds is not None and time.perf_counter() - t0 > max_seconds
        if step % st.eval_every == 0 or step == st.max_steps or timeout:
            dice = _validation_dice(model, ck, task, frames, roi, vessels, va_idx)
            score = float(np.nanmean(dice))
            history.append({"step": step, "loss": float(np.mean(losses[-st.eval_every:])),
                            "val_dice": dice.tolist(), "seconds": time.perf_counter() - t0})
            logger.info("train-seg %s step %d loss %.3f val dice %s", task, step,
                        history[-1]["loss"], np.round(dice, 3).tolist())
            if score > best:
                best, bad_evals = score, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad_evals += 1
            if bad_evals >= st.patience or timeout:
                break
    ck.state_dict = best_state
    best_row = max(history, key=lambda h: np.nanmean(h["val_dice"]))
    ck.metrics = {"history": history, "loss_first": float(np.mean(losses[:10])),
                  "loss_last": float(np.mean(losses[-10:])), "steps": step,
                  "seconds": time.perf_counter() - t0,
                  "val_dice": dict(zip(classes[1:], best_row["val_dice"], strict=True)),
                  "train_subjects": list(train_s), "val_subjects": list(val_s)}
    return ck


def _validation_split(subjects: np.ndarray, n_val, val_subjects, seed: int):
    """Train and validation subjects and frame indices (at most 48 validation frames, evenly
    spaced)."""
    if val_subjects is None:
        train_s, val_s = subject_split(subjects, n_test=n_val, seed=seed)
    else:
        val_s = sorted(map(str, val_subjects))
        train_s = sorted(set(subjects) - set(val_s))
    tr_idx = np.flatnonzero(np.isin(subjects, train_s))
    va_idx = np.flatnonzero(np.isin(subjects, val_s))
    if tr_idx.size == 0 or va_idx.size == 0:
        raise OptionError(f"no frames for train subjects {train_s} or validation {val_s}")
    va_idx = va_idx[np.linspace(0, va_idx.size - 1, min(48, va_idx.size)).astype(int)]
    return train_s, val_s, tr_idx, va_idx


def _batch_loss(model, ck: Checkpoint, st: SegmenterSettings, task: str, rng, frames, roi,
                vessels, tr_idx: np.ndarray, weight, bfloat16: bool = False):
    """Weighted cross-entropy + soft Dice of one augmented training batch (the network's
    forward pass under bfloat16 autocast with ``bfloat16``; augmentation and loss in
    float32)."""
    import torch
    import torch.nn.functional as F

    from irtrepro.vision.infer import forward

    f, r, v = sample_batch(rng, frames, roi, vessels, tr_idx, st.batch_size, st.crop,
                           vessel_focus=st.vessel_focus)
    f, r, v = augment(rng, torch.from_numpy(f), torch.from_numpy(r.astype(np.int64)),
                      torch.from_numpy(v.astype(np.int64)))
    if task == "vessels":
        v = torch.where(r > 0, v, 0)
    q = float(ck.normalisation["q"])
    level = torch.quantile(f.flatten(1), q, dim=1)[:, None, None]
    x = (f - level) / float(ck.normalisation["scale"])
    y = r if task == "roi" else v
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
        logits = forward(model, ck, x)
    prob = logits.softmax(1)
    onehot = F.one_hot(y, len(ck.classes)).permute(0, 3, 1, 2).float()
    inter = (prob * onehot).sum((0, 2, 3))[1:]
    denom = (prob + onehot).sum((0, 2, 3))[1:]
    dice_loss = 1 - ((2 * inter + 1) / (denom + 1)).mean()
    return F.cross_entropy(logits, y, weight=weight) + dice_loss


def _validation_dice(model, ck: Checkpoint, task: str, frames, roi, vessels,
                     va_idx: np.ndarray) -> np.ndarray:
    """Dice per foreground class on the validation frames (vessels judged inside the calves)."""
    from irtrepro.vision.infer import predict_labels

    model.eval()
    pred = predict_labels(ck, frames[va_idx], model=model, batch_size=16)
    model.train()
    truth = roi[va_idx] if task == "roi" else np.where(roi[va_idx] > 0, vessels[va_idx], 0)
    if task == "vessels":
        pred[roi[va_idx] == 0] = 0
    return _dice_per_class(truth, pred, len(ck.classes))
