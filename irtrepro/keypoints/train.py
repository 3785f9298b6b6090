"""Training and evaluation of the keypoint teacher, the distilled student and the baseline.

Protocol (per fold of a leave-subject-out split):

1. Take a paired corpus (clips of thermal + RGB frames with keypoints: a lab's, or the
   generator's synthetic one); detect the person in each thermal frame
   (:func:`~irtrepro.keypoints.detector.detect_people`) and crop thermal and RGB frames with the
   same window.
2. Of the training subjects' frames a fraction ``label_fraction`` carries keypoint labels (L);
   all their frames (L + U) are paired but unlabelled for the student.
3. **Teacher**: encoder (``teacher``) + classic decoder trained on the RGB crops of L with
   Adaptive Wing on Gaussian heatmaps; then frozen.
4. **Student**: a thermal encoder (``student``) trained on the thermal crops of L + U with
   ``beta * L1(latent) + (1 - beta) * AWing(decoder(z_s), teacher heatmaps on the paired RGB)``;
   the teacher's decoder is frozen and reused. No thermal keypoint label enters.
5. **Baseline**: the same MobileNetV3-Small + decoder trained directly on the thermal crops of
   L with the labels of L (the same labels the teacher had; the held-out subjects' withheld).
6. Evaluate on the held-out subjects' thermal frames: detector -> crop -> model -> sub-pixel
   decoding -> keypoints in thermal pixels -> COCO OKS AP via pycocotools.

All randomness follows ``seed``; torch runs deterministic CPU kernels.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._logging import logger, progress_bar
from irtrepro._threads import torch_threads
from irtrepro.errors import ModelError, OptionError, check_option
from irtrepro.keypoints.decode import decode_heatmaps, gaussian_targets
from irtrepro.keypoints.detector import box_to_crop, crop_images, crop_to_image, detect_people
from irtrepro.keypoints.vocabulary import COCO_SKELETON, KEYPOINT_NAMES, flip_permutation
from irtrepro.splits import subject_folds

__all__ = ["CropSet", "KeypointConfig", "crops_from_clips", "evaluate_by_activity",
           "evaluate_crops", "flip_permutation", "heatmap_targets", "labelled_frames", "load_model",
           "normalise_thermal", "predict_crops", "predict_frames", "run_experiment", "save_model",
           "summarise", "teacher_outputs", "train_student", "train_supervised"]


@dataclass(frozen=True)
class KeypointConfig:
    """Settings of the keypoint experiment.

    The defaults are the *report* configuration sized for 2 CPU cores (crops 64x48, heatmaps
    16x12 with sigma 1, decoder width 64, batch 16 with warm-up + cosine learning rate, teacher
    and baseline 80 epochs, students 12, 4 subjects x 360 frames; see ``docs/keypoints.md`` for the measurements behind
    it); :meth:`published` gives the published 256x192 / 64x48 / 256 setting (batch 50, plateau
    schedule). ``folds=None`` means full leave-one-subject-out. ``flip_augment``: mirror half of
    each training batch (left/right keypoints swapped; for the student the crop is paired with
    the teacher's output on the mirrored RGB crop); measured not to help at the report size, so
    off. ``flip_test``: average the heatmaps of a crop and of its mirror at inference.
    ``corpus_seed``: seed of the synthetic corpus and of which of its frames are labelled
    (``None``: ``seed``, so one number fixes a whole run; set it apart from ``seed`` to train
    and evaluate on a corpus the defaults were never tuned on, with the same training seeds).
    ``min_epoch_share``: early stopping may not end a training before this share of its epochs
    (the heatmap networks sit on a plateau of near-zero output for their first 6-11 epochs,
    where ``patience`` epochs without progress say nothing). Both it and ``patience`` were set
    on the validation subjects of the nested protocol's folds (docs/keypoints.md).
    """

    crop_hw: tuple[int, int] = (64, 48)
    latent_ch: int = 96
    deconv_ch: int = 64
    teacher: str = "cnn"
    student: str = "mobilenetv3"
    n_subjects: int = 4
    frames_per_subject: int = 360
    fps: float = 10.0
    tug_share: float = 0.25
    label_fraction: float = 0.3
    folds: int | None = 2
    beta: float = 0.4
    lr: float = 0.01  # student (published)
    teacher_lr: float = 2e-3
    baseline_lr: float = 2e-3
    batch: int = 16
    max_epochs: int = 12
    teacher_epochs: int = 80
    patience: int = 8
    min_epoch_share: float = 0.25
    schedule: str = "cosine"
    val_fraction: float = 0.1
    min_score: float = 0.15
    flip_augment: bool = False
    flip_test: bool = True
    seed: int = 0
    corpus_seed: int | None = None

    @property
    def data_seed(self) -> int:
        """The seed the corpus is rendered and labelled with (``corpus_seed``, else ``seed``)."""
        return self.seed if self.corpus_seed is None else int(self.corpus_seed)

    @property
    def hm_hw(self) -> tuple[int, int]:
        return (self.crop_hw[0] // 4, self.crop_hw[1] // 4)

    @property
    def sigma(self) -> float:
        """Heatmap Gaussian sigma (heatmap px): 2 at 64x48, scaled with the map, at least 1
        (a narrower Gaussian covers too few heatmap pixels for sub-pixel decoding)."""
        return max(1.0, 2.0 * self.hm_hw[1] / 48)

    @classmethod
    def published(cls, **kw) -> KeypointConfig:
        """The published setting: 256x192 crops, 64x48 heatmaps, 256-channel deconvolutions,
        full leave-one-subject-out."""
        return cls(**{"crop_hw": (256, 192), "deconv_ch": 256, "folds": None, "batch": 50,
                      "schedule": "plateau", **kw})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def labelled_frames(cfg: KeypointConfig, n: int) -> np.ndarray:
    """Which of a corpus's ``n`` frames carry labels: each with probability
    ``cfg.label_fraction``, drawn from ``cfg.data_seed`` (the corpus's seed, not the training
    seed, so every training seed sees the same labels)."""
    return np.random.default_rng(cfg.data_seed + 1).random(int(n)) < cfg.label_fraction


# --------------------------------------------------------------------------------------------
# Corpus -> crops
# --------------------------------------------------------------------------------------------
@dataclass
class CropSet:
    """Crops of a corpus: one row per frame (frames without a detection have ``detected`` False
    and zero crops)."""

    thermal: np.ndarray  # (N, 1, h, w) float16, z-scored per crop
    rgb: np.ndarray  # (N, 3, h, w) uint8
    window: np.ndarray  # (N, 4) cx, cy, w, h thermal px
    detected: np.ndarray  # (N,) bool
    keypoints: np.ndarray  # (N, 17, 3) thermal px truth
    area: np.ndarray
    bbox: np.ndarray
    subject: np.ndarray  # (N,) str
    activity: np.ndarray
    frames: np.ndarray | None = None  # (N, H, W) thermal frames (kept for figures)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.subject)


def normalise_thermal(crops: np.ndarray) -> np.ndarray:
    """Per-crop z-score (the thermal input convention of every thermal model here)."""
    m = crops.mean(axis=(-1, -2, -3), keepdims=True)
    s = crops.std(axis=(-1, -2, -3), keepdims=True)
    return (crops - m) / np.maximum(s, 1e-3)


def crops_from_clips(clips, crop_hw: tuple[int, int], *, keep_frames: bool = False) -> CropSet:
    """Detect, window and crop every frame of ``clips`` (thermal and, when present, RGB)."""
    th_l, rgb_l, win_l, det_l, kp_l, ar_l, bb_l, sub_l, act_l, fr_l = ([] for _ in range(10))
    for c in clips:
        n = len(c)
        win = np.zeros((n, 4))
        det = np.zeros(n, bool)
        for f in range(n):
            d = detect_people(c.thermal[f])
            if d:
                win[f] = box_to_crop(d[0].box, crop_hw)
                det[f] = True
        win[~det] = [40, 30, 60, 80]  # placeholder window, never used for training or results
        th_l.append(normalise_thermal(crop_images(c.thermal, win, crop_hw)).astype(np.float16))
        if c.rgb is not None:
            r = crop_images(c.rgb, win, crop_hw, scale=c.rgb_scale)
            rgb_l.append(np.clip(r * 255 + 0.5, 0, 255).astype(np.uint8))
        win_l.append(win)
        det_l.append(det)
        kp_l.append(c.keypoints)
        ar_l.append(c.area)
        bb_l.append(c.bbox)
        sub_l.append(np.full(n, c.subject, dtype=object))
        act_l.append(np.full(n, c.activity, dtype=object))
        if keep_frames:
            fr_l.append(c.thermal)
    cat = np.concatenate
    return CropSet(thermal=cat(th_l), rgb=cat(rgb_l) if rgb_l else np.zeros((0, 3, *crop_hw), np.uint8),
                   window=cat(win_l), detected=cat(det_l), keypoints=cat(kp_l), area=cat(ar_l),
                   bbox=cat(bb_l), subject=cat(sub_l), activity=cat(act_l),
                   frames=cat(fr_l) if keep_frames else None)


def heatmap_targets(cs: CropSet, idx: np.ndarray, cfg: KeypointConfig) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian targets and keypoint weights of rows ``idx`` (labelled keypoints only)."""
    from irtrepro.keypoints.detector import image_to_crop

    kp = cs.keypoints[idx]
    xy = image_to_crop(kp[..., :2], cs.window[idx], cfg.hm_hw)
    vis = kp[..., 2] > 0
    return gaussian_targets(xy, vis, cfg.hm_hw, cfg.sigma), vis.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Training loops
# --------------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def _flip(t, perm=None):
    """Mirror a (N, C, h, w) tensor along width; with ``perm`` also swap the keypoint channels
    (heatmaps) or entries (N, K weights). Crops and heatmaps share the window-centred grid
    convention of :func:`~irtrepro.keypoints.detector.crop_to_image`, so mirroring the arrays
    mirrors the coordinates exactly."""
    if t.ndim == 4:
        t = t.flip(-1)
    return t if perm is None else t[:, perm]


def _random_flip(idx: np.ndarray, train: bool, on: bool, rng) -> np.ndarray:
    """Boolean mask of the batch rows to mirror (half of them on average; none in validation)."""
    if not (train and on):
        return np.zeros(len(idx), bool)
    return rng.random(len(idx)) < 0.5


def _rgb_input(x_uint8):
    return x_uint8.float() / 255.0 - 0.5


def _fit(params, loss_fn, n: int, *, lr: float, batch: int, max_epochs: int, patience: int,
         val_fraction: float, seed: int, desc: str, progress=None, modules=(),
         schedule: str = "cosine", warmup_epochs: float = 1.0,
         val_rows: np.ndarray | None = None, min_epochs: int = 0) -> dict:
    """Adam on the training rows, validation on a held-out share, best epoch restored.

    ``val_rows``: the validation rows (e.g. the frames of a validation subject), never
    trained on; default a random ``val_fraction`` of the rows (frames of the training clips,
    so near copies of trained neighbours).

    ``schedule="cosine"`` (default): linear warm-up over ``warmup_epochs`` then a per-step cosine
    decay to 2 % of ``lr`` at ``max_epochs`` (few epochs of small batches need every step to
    count; a plateau rule rarely fires in 10 epochs). ``schedule="plateau"``: constant ``lr``
    with ReduceLROnPlateau (x0.5, patience 1), as published. Early stopping after ``patience``
    epochs without a better validation loss in both cases, never before ``min_epochs``.
    ``loss_fn(idx, train: bool) -> loss tensor``. Returns the loss history; the parameters of
    the best validation epoch are restored.
    """
    torch = _torch()
    check_option("schedule", schedule, ("cosine", "plateau"))
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if val_rows is not None:
        is_val = np.zeros(n, bool)
        is_val[np.asarray(val_rows, int)] = True
        val, tr = order[is_val[order]], order[~is_val[order]]
        n_val = len(val)
    else:
        n_val = max(1, int(round(n * val_fraction))) if n > 10 else 0
        val, tr = order[:n_val], order[n_val:]
    opt = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = max(1, sum(1 for s in range(0, len(tr), batch) if len(tr[s:s + batch]) >= 2))
    total = max(1, steps_per_epoch * max_epochs)
    warm = max(1, int(round(steps_per_epoch * warmup_epochs)))

    def _factor(step):
        if step < warm:
            return (step + 1) / warm
        u = min(1.0, (step - warm) / max(1, total - warm))
        return 0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * u))

    if schedule == "cosine":
        step_sched = torch.optim.lr_scheduler.LambdaLR(opt, _factor)
        sched = None
    else:
        step_sched = None
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    best, best_state, bad = np.inf, None, 0
    hist = {"train": [], "val": [], "lr": []}
    for ep in progress_bar(range(max_epochs), progress, desc=desc):
        for m in modules:
            m.train()
        perm = rng.permutation(tr)
        tot = 0.0
        for s in range(0, len(perm), batch):
            idx = perm[s:s + batch]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            loss = loss_fn(idx, True)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step_sched is not None:
                step_sched.step()
            tot += float(loss.detach()) * len(idx)
        hist["train"].append(tot / max(1, len(tr)))
        for m in modules:
            m.eval()
        with torch.no_grad():
            vl = float(np.mean([float(loss_fn(val[s:s + batch], False))
                                for s in range(0, len(val), batch)])) if n_val else hist["train"][-1]
        hist["val"].append(vl)
        hist["lr"].append(opt.param_groups[0]["lr"])
        if sched is not None:
            sched.step(vl)
        if vl < best - 1e-6:
            best, bad = vl, 0
            best_state = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]
        else:
            bad += 1
            if bad >= patience and ep + 1 >= min_epochs:
                break
    if best_state is not None:
        for m, st in zip(modules, best_state, strict=False):
            m.load_state_dict(st)
    for m in modules:
        m.eval()
    return hist


def _min_epochs(cfg: KeypointConfig, epochs: int) -> int:
    if not 0.0 <= cfg.min_epoch_share <= 1.0:
        raise OptionError(f"min_epoch_share={cfg.min_epoch_share}; expected a share in [0, 1]")
    return int(np.ceil(cfg.min_epoch_share * epochs))


def train_supervised(kind: str, x: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                     cfg: KeypointConfig, *, rgb: bool, lr: float, epochs: int, seed: int,
                     progress=None, desc: str = "train", val_rows: np.ndarray | None = None):
    """Train encoder ``kind`` + classic decoder on crops ``x`` with Adaptive Wing.

    ``val_rows``: rows of ``x`` for early stopping only (default a random share).
    Returns the model (eval mode) and the loss history.
    """
    torch = _torch()
    from irtrepro.keypoints.losses import adaptive_wing
    from irtrepro.keypoints.models import build_posenet

    torch.manual_seed(seed)
    model = build_posenet(kind, in_ch=3 if rgb else 1, latent_ch=cfg.latent_ch,
                          deconv_ch=cfg.deconv_ch, crop_hw=cfg.crop_hw)
    X = torch.from_numpy(x)
    T = torch.from_numpy(targets)
    W = torch.from_numpy(weights)
    perm = torch.from_numpy(flip_permutation())
    frng = np.random.default_rng(seed + 7)

    def loss_fn(idx, train):
        xb = _rgb_input(X[idx]) if rgb else X[idx].float()
        tb, wb = T[idx], W[idx]
        fl = _random_flip(idx, train, cfg.flip_augment, frng)
        if fl.any():  # mirrored crops with mirrored, left/right-swapped targets
            f = torch.from_numpy(fl)
            xb, tb, wb = xb.clone(), tb.clone(), wb.clone()
            xb[f], tb[f], wb[f] = _flip(xb[f]), _flip(tb[f], perm), _flip(wb[f], perm)
        _, hm = model(xb)
        return adaptive_wing(hm, tb, weight=wb)

    hist = _fit(list(model.parameters()), loss_fn, len(x), lr=lr, batch=cfg.batch,
                max_epochs=epochs, patience=cfg.patience, val_fraction=cfg.val_fraction,
                schedule=cfg.schedule, seed=seed, desc=desc, progress=progress, modules=[model],
                val_rows=val_rows, min_epochs=_min_epochs(cfg, epochs))
    return model, hist


def teacher_outputs(teacher, rgb: np.ndarray, batch: int = 100, *,
                    flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Latents and heatmaps of the frozen teacher on RGB crops (float32 arrays); ``flip``: on
    the mirrored crops."""
    torch = _torch()
    teacher.eval()
    zs, hs = [], []
    with torch.no_grad():
        for s in range(0, len(rgb), batch):
            xb = _rgb_input(torch.from_numpy(rgb[s:s + batch]))
            z, h = teacher(xb.flip(-1) if flip else xb)
            zs.append(z.numpy())
            hs.append(h.numpy())
    return np.concatenate(zs), np.concatenate(hs)


def train_student(kind: str, x_thermal: np.ndarray, z_t: np.ndarray, hm_t: np.ndarray, decoder,
                  cfg: KeypointConfig, *, beta: float, seed: int, progress=None,
                  epochs: int | None = None, flipped: tuple[np.ndarray, np.ndarray] | None = None,
                  val_rows: np.ndarray | None = None):
    """Distil a thermal encoder into the teacher's latent space (decoder frozen).

    ``val_rows``: rows for early stopping only (default a random share).

    Loss ``beta * L1(z_s, z_t) + (1 - beta) * AWing(decoder(z_s), clip(hm_t, 0, 1))``.
    ``flipped``: the teacher's latents and heatmaps on the *mirrored* RGB crops; when given (and
    ``cfg.flip_augment``), half of each batch is the mirrored thermal crop paired with them (a
    mirrored pair is still a pair: no label enters).
    """
    torch = _torch()
    import copy

    from irtrepro.keypoints.losses import adaptive_wing
    from irtrepro.keypoints.models import PoseNet, build_encoder

    check_option("student", kind, ("vit", "cnn", "mobilenetv3"))
    if not 0.0 <= beta <= 1.0:
        raise OptionError(f"beta={beta}; expected a value in [0, 1]")
    torch.manual_seed(seed)
    enc = build_encoder(kind, in_ch=1, latent_ch=cfg.latent_ch, crop_hw=cfg.crop_hw)
    dec = copy.deepcopy(decoder).eval()
    for p in dec.parameters():
        p.requires_grad_(False)
    X = torch.from_numpy(x_thermal)
    Z = torch.from_numpy(z_t)
    H = torch.from_numpy(np.clip(hm_t, 0, 1))
    use_flip = flipped is not None and cfg.flip_augment
    if use_flip:
        Zf = torch.from_numpy(flipped[0])
        Hf = torch.from_numpy(np.clip(flipped[1], 0, 1))
    frng = np.random.default_rng(seed + 11)

    def loss_fn(idx, train):
        xb, zt, ht = X[idx].float(), Z[idx], H[idx]
        fl = _random_flip(idx, train, use_flip, frng)
        if fl.any():
            f = torch.from_numpy(fl)
            xb, zt, ht = xb.clone(), zt.clone(), ht.clone()
            xb[f], zt[f], ht[f] = _flip(xb[f]), Zf[idx[fl]], Hf[idx[fl]]
        z = enc(xb)
        loss = 0.0
        if beta > 0:
            loss = loss + beta * (z - zt).abs().mean()
        if beta < 1:
            loss = loss + (1 - beta) * adaptive_wing(dec(z), ht)
        return loss

    hist = _fit(list(enc.parameters()), loss_fn, len(x_thermal), lr=cfg.lr, batch=cfg.batch,
                max_epochs=epochs or cfg.max_epochs, patience=cfg.patience,
                val_fraction=cfg.val_fraction, schedule=cfg.schedule, seed=seed,
                desc=f"student {kind}", progress=progress, modules=[enc], val_rows=val_rows,
                min_epochs=_min_epochs(cfg, epochs or cfg.max_epochs))
    model = PoseNet(enc, dec).eval()
    return model, hist


# --------------------------------------------------------------------------------------------
# Prediction and evaluation
# --------------------------------------------------------------------------------------------
def predict_crops(model, x: np.ndarray, cfg: KeypointConfig, *, rgb: bool = False,
                  batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap-decoded keypoints on crops: ``xy`` (N, 17, 2) heatmap px and scores (N, 17).

    With ``cfg.flip_test`` the heatmaps are the mean of the crop's and of its mirror's
    (mirrored back, left/right channels swapped), as in SimpleBaseline/ViTPose testing.
    """
    torch = _torch()
    model.eval()
    hms = []
    perm = torch.from_numpy(flip_permutation())
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = torch.from_numpy(x[s:s + batch])
            xb = _rgb_input(xb) if rgb else xb.float()
            hm = model(xb)[1]
            if cfg.flip_test:
                hm = 0.5 * (hm + _flip(model(xb.flip(-1))[1], perm))
            hms.append(hm.numpy())
    hm = np.concatenate(hms) if hms else np.zeros((0, 17, *cfg.hm_hw))
    return decode_heatmaps(hm, sigma=cfg.sigma)


def predict_frames(model, frames: np.ndarray, cfg: KeypointConfig, *, all_people: bool = True,
                   min_score: float | None = None) -> list[list[dict]]:
    """Keypoints of every person detected in thermal ``frames`` (n, H, W) degC.

    Returns
    -------
    list (per frame) of list (per person) of dict
        ``keypoints`` (17, 3): ``x, y`` thermal px and the heatmap score; keypoints scoring
        below ``min_score`` are NaN (not found, never guessed). ``score`` (mean keypoint score),
        ``box``. A frame with nobody gives an empty list.
    """
    frames = np.asarray(frames, float)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3:
        raise ModelError(f"frames have shape {frames.shape}; expected (frame, y, x) in degC")
    thr = cfg.min_score if min_score is None else min_score
    rows, wins, boxes = [], [], []
    for f in range(len(frames)):
        dets = detect_people(frames[f])
        for d in (dets if all_people else dets[:1]):
            rows.append(f)
            wins.append(box_to_crop(d.box, cfg.crop_hw))
            boxes.append(d.box)
    out: list[list[dict]] = [[] for _ in range(len(frames))]
    if not rows:
        return out
    wins = np.array(wins)
    crops = normalise_thermal(crop_images(frames[rows], wins, cfg.crop_hw)).astype(np.float32)
    xy, sc = predict_crops(model, crops, cfg)
    pts = crop_to_image(xy, wins, cfg.hm_hw)
    for r, f in enumerate(rows):
        kp = np.concatenate([pts[r], sc[r][:, None]], 1)
        kp[sc[r] < thr, :2] = np.nan
        out[f].append({"keypoints": kp, "score": float(sc[r].mean()), "box": boxes[r]})
    return out


def evaluate_crops(model, cs: CropSet, idx: np.ndarray, cfg: KeypointConfig, *,
                   rgb: bool = False) -> dict:
    """COCO AP / AP50 / AP75 of ``model`` on rows ``idx`` (frames without detection = misses)."""
    from irtrepro.keypoints.coco import to_results
    from irtrepro.keypoints.oks import coco_keypoint_ap

    idx = np.asarray(idx)
    gt = {"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "person", "keypoints": list(KEYPOINT_NAMES), "skeleton": COCO_SKELETON}]}
    for j, i in enumerate(idx):
        gt["images"].append({"id": j + 1})
        kp = cs.keypoints[i]
        if np.any(kp[:, 2] > 0):
            gt["annotations"].append({"id": j + 1, "image_id": j + 1, "category_id": 1,
                                      "keypoints": kp.reshape(-1).tolist(), "iscrowd": 0,
                                      "area": float(cs.area[i]), "bbox": cs.bbox[i].tolist(),
                                      "num_keypoints": int(np.sum(kp[:, 2] > 0))})
    det = idx[cs.detected[idx]]
    x = cs.rgb[det] if rgb else cs.thermal[det]
    xy, sc = predict_crops(model, x, cfg, rgb=rgb)
    pts = crop_to_image(xy, cs.window[det], cfg.hm_hw)
    pos = {i: j for j, i in enumerate(idx)}
    res = to_results([pos[i] + 1 for i in det], pts, sc.mean(1))
    return coco_keypoint_ap(gt, res)


def evaluate_by_activity(model, cs: CropSet, idx: np.ndarray, cfg: KeypointConfig, *,
                         rgb: bool = False) -> dict:
    """:func:`evaluate_crops` on rows ``idx`` plus ``AP_run`` / ``AP_tug``: the AP of the running
    (seen from behind) and of the Timed Up and Go (side view, smaller person) frames alone."""
    idx = np.asarray(idx)
    out = evaluate_crops(model, cs, idx, cfg, rgb=rgb)
    for act in ("run", "tug"):
        sub = idx[cs.activity[idx] == act]
        out[f"AP_{act}"] = evaluate_crops(model, cs, sub, cfg, rgb=rgb)["AP"] if len(sub) else np.nan
    return out


#: the floor row of every fold: the mean training pose in each detection window
CONSTANT_POSE = "constant pose (mean of the labelled training heatmaps)"


def _constant_pose_ap(targets: np.ndarray, corpus: CropSet, test: np.ndarray,
                      cfg: KeypointConfig) -> dict:
    """AP of :class:`~irtrepro.keypoints.models.ConstantPose` of the labelled frames'
    heatmap ``targets``."""
    from irtrepro.keypoints.models import ConstantPose

    return evaluate_by_activity(ConstantPose(_torch().from_numpy(targets)), corpus, test, cfg)


def _run_fold(fi: int, test_subj, corpus: CropSet, labelled: np.ndarray, cfg: KeypointConfig,
              students, baseline: bool, betas, keep_models: bool, progress,
              val_subjects=()) -> dict:
    """One fold of :func:`run_experiment`: teacher, students, beta sweep, baseline.

    ``val_subjects``: training subjects whose frames only decide early stopping (teacher,
    students and baseline); none: a random share of the training frames does.
    """
    from irtrepro.keypoints.models import count_flops, count_params

    timings: dict[str, float] = {}
    rows, brows, hist, models = [], [], {}, {}
    shape1 = (1, 1, *cfg.crop_hw)
    test = np.flatnonzero(np.isin(corpus.subject, test_subj))
    train = np.flatnonzero(~np.isin(corpus.subject, test_subj) & corpus.detected)
    lab = train[labelled[train]]
    val_lab = val_paired = None
    if len(val_subjects):
        val_lab = np.flatnonzero(np.isin(corpus.subject[lab], val_subjects))
        val_paired = np.flatnonzero(np.isin(corpus.subject[train], val_subjects))
    info = {"fold": fi, "test_subjects": ",".join(test_subj), "n_labelled": len(lab),
            "n_paired": len(train), "n_test": len(test),
            "validation_subjects": ",".join(val_subjects)}
    t = time.perf_counter()
    tg, tw = heatmap_targets(corpus, lab, cfg)
    teacher, h = train_supervised(cfg.teacher, corpus.rgb[lab], tg, tw, cfg, rgb=True,
                                  lr=cfg.teacher_lr, epochs=cfg.teacher_epochs,
                                  seed=cfg.seed + fi, progress=progress, desc="teacher",
                                  val_rows=val_lab)
    timings[f"teacher f{fi}"] = time.perf_counter() - t
    hist[f"teacher f{fi}"] = h
    ap = evaluate_by_activity(teacher, corpus, test, cfg, rgb=True)
    rows.append({"model": f"teacher ({cfg.teacher}, RGB frames)", **info, **ap,
                 "params": count_params(teacher),
                 "flops": count_flops(teacher, (1, 3, *cfg.crop_hw))})
    fit_tg = tg if val_lab is None else np.delete(tg, val_lab, axis=0)
    rows.append({"model": CONSTANT_POSE, **info,
                 **_constant_pose_ap(fit_tg, corpus, test, cfg), "params": 0, "flops": 0})
    z_t, hm_t = teacher_outputs(teacher, corpus.rgb[train])
    flipped = teacher_outputs(teacher, corpus.rgb[train], flip=True) if cfg.flip_augment else None
    xt = corpus.thermal[train]
    for kind in students:
        t = time.perf_counter()
        st, h = train_student(kind, xt, z_t, hm_t, teacher.decoder, cfg, beta=cfg.beta,
                              seed=cfg.seed + fi, progress=progress, flipped=flipped,
                              val_rows=val_paired)
        timings[f"student {kind} f{fi}"] = time.perf_counter() - t
        hist[f"student {kind} f{fi}"] = h
        ap = evaluate_by_activity(st, corpus, test, cfg)
        rows.append({"model": f"student {kind} (thermal, distilled)", **info, **ap,
                     "params": count_params(st), "flops": count_flops(st, shape1)})
        if keep_models:
            models[f"student {kind}"] = st
    for beta in betas:
        same = [r for r in rows if r["model"] == f"student {cfg.student} (thermal, distilled)"]
        if beta == cfg.beta and same:  # the student row above is this very model (same seed)
            brows.append({"beta": beta, **info, **{k: same[0][k] for k in
                                                   ("AP", "AP50", "AP75", "AR", "AP_run",
                                                    "AP_tug", "n_gt", "n_det")}})
            continue
        t = time.perf_counter()
        st, _ = train_student(cfg.student, xt, z_t, hm_t, teacher.decoder, cfg, beta=beta,
                              seed=cfg.seed + fi, progress=progress, flipped=flipped,
                              val_rows=val_paired)
        timings[f"beta {beta} f{fi}"] = time.perf_counter() - t
        brows.append({"beta": beta, **info, **evaluate_by_activity(st, corpus, test, cfg)})
    if baseline:
        t = time.perf_counter()
        # the teacher's targets: the same labelled frames (train_supervised copies before flipping)
        bl, h = train_supervised("mobilenetv3", corpus.thermal[lab], tg, tw, cfg, rgb=False,
                                 lr=cfg.baseline_lr, epochs=cfg.teacher_epochs,
                                 seed=cfg.seed + fi, progress=progress, desc="baseline",
                                 val_rows=val_lab)
        timings[f"baseline f{fi}"] = time.perf_counter() - t
        hist[f"baseline f{fi}"] = h
        ap = evaluate_by_activity(bl, corpus, test, cfg)
        rows.append({"model": "baseline mobilenetv3 (thermal, supervised on L)", **info,
                     **ap, "params": count_params(bl), "flops": count_flops(bl, shape1)})
        if keep_models:
            models["baseline"] = bl
    if keep_models:
        models["teacher"] = teacher
    logger.info("keypoints fold %d: %s", fi, pd.DataFrame(rows)[
        ["model", "AP", "AP50", "AP75"]].to_string(index=False))
    return {"rows": rows, "brows": brows, "timings": timings, "history": hist, "models": models}


def _fold_worker(args: tuple) -> dict:
    """:func:`_run_fold` in a worker process, with one torch thread."""
    torch_threads(1)
    return _run_fold(*args)


def run_experiment(cfg: KeypointConfig = KeypointConfig(), *, corpus, students=("mobilenetv3",),
                   baseline: bool = True, betas=(), progress=None, keep_models: bool = False,
                   workers: int = 1) -> dict:
    """Leave-subject-out experiment: teacher, students, baseline, optional beta sweep.

    Parameters
    ----------
    cfg : KeypointConfig
        Model, training and split settings (its corpus fields are the corpus maker's business).
    corpus : CropSet or sequence of clips
        The paired frames: a :class:`CropSet` (:func:`crops_from_clips` with
        ``keep_frames=True``) or clips as :func:`crops_from_clips` takes them (each with
        ``thermal``, ``rgb``, ``keypoints``, ``area``, ``bbox``, ``subject``, ``activity``,
        ``rgb_scale``). Subjects are held out in the order they first appear. The generator's
        ``pose_corpus.run_experiment`` renders a synthetic corpus and calls this on it.
    workers : int
        Processes that train folds at the same time, each with one torch thread. With 1 (the
        default) the folds run here, one after the other, with the caller's torch threads.
        The small models of the default size use two CPU threads poorly, so on 2 cores two
        single-threaded folds at once finish sooner than two 2-thread folds in a row (see
        ``docs/keypoints.md``).
        Results equal a one-thread run in this process (each fold has its own seed).

    Returns
    -------
    dict
        ``table`` (one row per model and fold: model, fold, test subjects, AP, AP50, AP75, AR,
        params, flops), ``beta`` (beta, fold, AP ...), ``timings``, ``corpus`` (the CropSet),
        ``models`` (last fold's models when ``keep_models``), ``history``.
    """
    timings: dict[str, float] = {}
    if not isinstance(corpus, CropSet):
        t0 = time.perf_counter()
        corpus = crops_from_clips(corpus, cfg.crop_hw, keep_frames=True)
        timings["crop"] = time.perf_counter() - t0
    subjects = list(dict.fromkeys(corpus.subject.tolist()))
    labelled = labelled_frames(cfg, len(corpus))
    folds = list(enumerate(subject_folds(subjects, cfg.folds)))
    last = folds[-1][0]  # only the last fold's models are returned, so only it keeps them
    if workers > 1 and len(folds) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the workers need no frames, only crops; spawn: fork after torch's OpenMP init can hang
        slim = dataclasses.replace(corpus, frames=None)
        jobs = [(fi, ts, slim, labelled, cfg, tuple(students), baseline, tuple(betas),
                 keep_models and fi == last, False) for fi, ts in folds]
        t = time.perf_counter()
        with ProcessPoolExecutor(min(workers, len(folds)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(progress_bar(pool.map(_fold_worker, jobs), progress,
                                        desc=f"keypoint folds ({min(workers, len(folds))} "
                                             "processes)", total=len(jobs)))
        timings["folds (parallel, wall)"] = time.perf_counter() - t
    else:
        results = [_run_fold(fi, ts, corpus, labelled, cfg, tuple(students), baseline,
                             tuple(betas), keep_models and fi == last, progress)
                   for fi, ts in folds]
    rows, brows, hist, models = [], [], {}, {}
    for r in results:
        rows += r["rows"]
        brows += r["brows"]
        timings.update(r["timings"])
        hist.update(r["history"])
        models.update(r["models"])
    return {"table": pd.DataFrame(rows), "beta": pd.DataFrame(brows), "timings": timings,
            "corpus": corpus, "models": models, "history": hist, "config": cfg}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over folds per model: AP, AP50, AP75, AR (and AP_run, AP_tug when present), the
    minimum AP over folds, params, GFLOPs."""
    if table.empty:
        return table
    g = table.groupby("model", sort=False)
    out = g[[c for c in ("AP", "AP50", "AP75", "AR", "AP_run", "AP_tug") if c in table]].mean()
    out["AP_min_fold"] = g["AP"].min()
    out["params"] = g["params"].first()
    out["gflops"] = g["flops"].first() / 1e9
    out["folds"] = g.size()
    return out.reset_index()


def save_model(model, path: str | Path, *, kind: str, cfg: KeypointConfig, role: str) -> Path:
    """Save a model checkpoint (state dict + config + encoder kind), atomically."""
    torch = _torch()
    from irtrepro._atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "kind": kind, "role": role,
                    "config": cfg.to_dict()}, tmp)
    return path


def load_model(path: str | Path):
    """Load a checkpoint written by :func:`save_model`; returns ``(model, cfg)``."""
    torch = _torch()
    from irtrepro.keypoints.models import build_posenet

    path = Path(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        d = dict(ck["config"])
        d["crop_hw"] = tuple(d["crop_hw"])
        cfg = KeypointConfig(**d)
        model = build_posenet(ck["kind"], in_ch=3 if ck["role"] == "teacher" else 1,
                              latent_ch=cfg.latent_ch, deconv_ch=cfg.deconv_ch,
                              crop_hw=cfg.crop_hw)
        model.load_state_dict(ck["state_dict"])
    except (OSError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelError(f"{path}: not a keypoint checkpoint of irtrepro ({exc})") from exc
    return model.eval(), cfg
