"""Training of the ROI and vessel U-Nets: seeds, subject-wise validation, early stopping."""

from __future__ import annotations

import time
from collections.abc import Sequence

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

#: defaults per task, chosen by measured speed/quality on 2 CPU cores
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


def train_segmenter(frames: np.ndarray, roi: np.ndarray, vessels: np.ndarray,
                    subjects: Sequence[str], *, task: str, encoder: str = DEFAULT_ENCODER,
                    encoder_depth: int = 3, decoder_channels: tuple[int, ...] = (32, 16, 8),
                    downsample: int | None = None, upsample: int | None = None,
                    crop: int | None | str = "default", vessel_focus: float | None = None,
                    batch_size: int | None = None, max_steps: int | None = None,
                    lr: float | None = None, class_weight: Sequence[float] | None = None,
                    eval_every: int | None = None, patience: int = 4,
                    n_val: int | float = 0.25, val_subjects: Sequence[str] | None = None,
                    seed: int = 0, threads: int | None = 2, max_seconds: float | None = None,
                    ) -> Checkpoint:
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
    encoder, encoder_depth, decoder_channels
        smp U-Net settings (``encoder_weights=None`` always).
    downsample : int, optional
        Average-pool factor of the input (default 1 for both tasks).
    upsample : int, optional
        Bilinear enlargement of the input (vessel default 2, ROI 1); see
        :class:`~irtrepro.vision.models.Checkpoint`.
    crop : int or None
        Training window (vessels default 32 px centred on calf pixels; ROI whole frames).
    vessel_focus : float, optional
        Fraction of windows centred on a vessel pixel (vessel default 0.5).
    batch_size, max_steps, lr : optional
        Optimiser settings (AdamW, one-cycle cosine schedule); defaults in TASK_DEFAULTS.
    class_weight : sequence of float, optional
        Cross-entropy weight per class (the loss is weighted cross-entropy + soft Dice).
    eval_every, patience : int
        Validate every ``eval_every`` steps (default per task); stop after ``patience``
        validations without a better mean foreground Dice; the best weights are kept.
    n_val, val_subjects
        Held-out validation subjects (a number/fraction, or the ids).
    seed : int
        Seeds numpy and torch; with ``max_seconds=None`` training is reproducible.
    threads : int
        Torch threads (2 by default: this is a shared 2-core machine).
    max_seconds : float, optional
        Wall-clock cap (stops early; the result then depends on machine speed).

    Returns
    -------
    Checkpoint
        With metrics: ``loss`` (per eval), ``val_dice`` (per class, best), ``steps``,
        ``seconds``, ``train_subjects``, ``val_subjects``.
    """
    import torch
    import torch.nn.functional as F

    check_option("task", task, TASK_CLASSES)
    frames = np.asarray(frames, np.float32)
    roi = np.asarray(roi, np.uint8)
    vessels = np.asarray(vessels, np.uint8)
    check_training_arrays(frames, roi, vessels)
    subjects = np.asarray([str(s) for s in subjects])
    if subjects.shape != (len(frames),):
        raise OptionError(f"subjects has {subjects.size} entries for {len(frames)} frames")
    d = TASK_DEFAULTS[task]
    downsample = d["downsample"] if downsample is None else int(downsample)
    crop = d["crop"] if crop == "default" else crop
    batch_size = batch_size or d["batch_size"]
    max_steps = max_steps or d["max_steps"]
    lr = lr or d["lr"]
    upsample = d["upsample"] if upsample is None else int(upsample)
    vessel_focus = d["vessel_focus"] if vessel_focus is None else float(vessel_focus)
    eval_every = eval_every or d["eval_every"]
    class_weight = tuple(float(c) for c in (class_weight or d["class_weight"]))
    if len(class_weight) != len(TASK_CLASSES[task]):
        raise OptionError(f"class_weight={class_weight!r}; expected one weight per class "
                          f"{list(TASK_CLASSES[task])}")
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

    if threads:
        torch_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = TASK_CLASSES[task]
    settings = dict(encoder=encoder, encoder_depth=encoder_depth,
                    decoder_channels=list(decoder_channels), downsample=downsample,
                    upsample=upsample, crop=crop, vessel_focus=vessel_focus,
                    batch_size=batch_size, max_steps=max_steps, lr=lr,
                    class_weight=list(class_weight), seed=seed,
                    val_subjects=list(val_s))
    ck = Checkpoint(task=task, classes=classes, encoder=encoder, encoder_depth=encoder_depth,
                    decoder_channels=tuple(decoder_channels), downsample=downsample,
                    upsample=upsample,
                    data_hash=data_hash(frames, roi, vessels, repr(sorted(settings.items()))),
                    settings=settings)
    from irtrepro.vision.infer import forward, predict_labels

    model = ck.build()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max_steps,
                                                pct_start=0.15)
    weight = torch.tensor(class_weight)
    target_of = (lambda r, v: r) if task == "roi" else (lambda r, v: v)
    best, best_state, bad_evals, losses, history = -1.0, None, 0, [], []
    t0 = time.perf_counter()
    step = 0
    for step in range(1, max_steps + 1):
        f, r, v = sample_batch(rng, frames, roi, vessels, tr_idx, batch_size, crop,
                               vessel_focus=vessel_focus)
        f, r, v = augment(rng, torch.from_numpy(f), torch.from_numpy(r.astype(np.int64)),
                          torch.from_numpy(v.astype(np.int64)))
        if task == "vessels":
            v = torch.where(r > 0, v, 0)
        q = float(ck.normalisation["q"])
        level = torch.quantile(f.flatten(1), q, dim=1)[:, None, None]
        x = (f - level) / float(ck.normalisation["scale"])
        y = target_of(r, v)
        logits = forward(model, ck, x)
        prob = logits.softmax(1)
        onehot = F.one_hot(y, len(classes)).permute(0, 3, 1, 2).float()
        inter = (prob * onehot).sum((0, 2, 3))[1:]
        denom = (prob + onehot).sum((0, 2, 3))[1:]
        dice_loss = 1 - ((2 * inter + 1) / (denom + 1)).mean()
        loss = F.cross_entropy(logits, y, weight=weight) + dice_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        timeout = max_seconds is not None and time.perf_counter() - t0 > max_seconds
        if step % eval_every == 0 or step == max_steps or timeout:
            model.eval()
            pred = predict_labels(ck, frames[va_idx], model=model, batch_size=16)
            model.train()
            truth = roi[va_idx] if task == "roi" else np.where(roi[va_idx] > 0, vessels[va_idx], 0)
            if task == "vessels":
                pred[roi[va_idx] == 0] = 0
            dice = _dice_per_class(truth, pred, len(classes))
            score = float(np.nanmean(dice))
            history.append({"step": step, "loss": float(np.mean(losses[-eval_every:])),
                            "val_dice": dice.tolist(), "seconds": time.perf_counter() - t0})
            logger.info("train-seg %s step %d loss %.3f val dice %s", task, step,
                        history[-1]["loss"], np.round(dice, 3).tolist())
            if score > best:
                best, bad_evals = score, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad_evals += 1
            if bad_evals >= patience or timeout:
                break
    ck.state_dict = best_state
    best_row = max(history, key=lambda h: np.nanmean(h["val_dice"]))
    ck.metrics = {"history": history, "loss_first": float(np.mean(losses[:10])),
                  "loss_last": float(np.mean(losses[-10:])), "steps": step,
                  "seconds": time.perf_counter() - t0,
                  "val_dice": dict(zip(classes[1:], best_row["val_dice"], strict=True)),
                  "train_subjects": list(train_s), "val_subjects": list(val_s)}
    return ck
