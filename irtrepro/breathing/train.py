"""Training of the BreathAI pipeline, every stage switchable (:class:`BreathConfig`).

Stages (in the order the full method applies them)
--------------------------------------------------
1. ``balance``: class balancing by resampling (the minority class is oversampled with
   replacement to the size of the majority class, then ``max_train`` images are drawn).
2. ``grey``: grey-scale conversion of the RGB-coloured images (1 channel instead of 3).
3. ``amt``: adaptive multi-thresholding, ``amt_k`` thresholded copies as extra channels.
4. ``pretrain``: the network starts from weights pretrained by this project on the source task
   (self-supervised rotation prediction, 4 classes, on the training images without labels).
5. ``finetune``: ``"head"`` trains only the classifier on frozen features (transfer learning
   without fine-tuning), ``"full"`` all layers at once, ``"gradual"`` unfreezes one stage at a
   time from the head down to the stem over the first ``unfreeze_frac`` (default 0.2, i.e.
   within the first of 5 epochs) of training (gradual unfreezing).
6. ``kd``: knowledge distillation: a ``teacher_arch`` network is fine-tuned first (grey/AMT as
   configured, full fine-tuning), then the ``arch`` student learns from
   ``alpha * T^2 * KL(p_teacher(T) || p_student(T)) + (1 - alpha) * CE``.
7. ``contrastive``: adds ``beta * contrastive`` on L2-normalised embeddings: same-class pairs
   pulled together (d^2), INH-EXH pairs pushed beyond ``margin`` (max(0, margin - d)^2).
8. ``ensemble``: deep features of the trained network into an SVM (RBF) and a random forest,
   probabilities combined with a weight chosen on leave-one-training-subject-out fits of the
   SVM/RF (default, the network sees every training subject) or, with
   ``ensemble_holdout > 0``, on training subjects held out of the network.
9. ``adapt_bn`` (not a stage of the published method; its own ablation row): at prediction the
   BatchNorm statistics are re-estimated on the unlabelled images of each new subject
   (``groups`` of :func:`predict_proba`; AdaBN, Li et al. 2018) before the features go to the
   head or the ensemble. Training is unchanged. It targets the per-subject decision offset
   found on validation subjects (docs/breathing.md).
10. ``flip_test`` (prediction only, every learned row, default on): P(EXH) is the mean over
   the image and its left-right mirror (training already flips at random). Chosen on
   validation subjects (docs/breathing.md).
11. ``group_scaling`` (with ``ensemble``; default on): the deep features reach the SVM/RF
   standardised per group (a subject in training; at prediction the ``groups`` of
   :func:`predict_proba`, by default all images given, e.g. one recording) instead of with the
   training set's pooled mean and SD. Training fits both ensembles, so the choice is made at
   prediction. Groups of fewer than :data:`~irtrepro.breathing.ensemble.MIN_GROUP` images
   fall back to the pooled ensemble (logged). Chosen on validation subjects against the
   per-subject decision offset (docs/breathing.md, "Feature scaling per recording").
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from irtrepro._logging import logger
from irtrepro.breathing.amt import network_input
from irtrepro.breathing.data import ImageSet
from irtrepro.errors import ModelError, OptionError, check_option

__all__ = ["BreathConfig", "BreathModel", "train", "predict_proba", "pretrain_rotation",
           "ABLATION", "same_training", "adapt_batchnorm"]


@dataclass(frozen=True)
class BreathConfig:
    """Switches and sizes of the pipeline (defaults: the full method)."""

    arch: str = "target"
    grey: bool = True
    amt: bool = True
    amt_k: int = 2
    pretrain: bool = True
    finetune: str = "gradual"
    unfreeze_frac: float = 0.2
    kd: bool = True
    teacher_arch: str = "source"
    temperature: float = 4.0
    alpha: float = 0.5
    contrastive: bool = True
    margin: float = 1.0
    beta: float = 0.5
    ensemble: bool = True
    ensemble_holdout: float = 0.0
    balance: bool = True
    adapt_bn: bool = False
    flip_test: bool = True
    group_scaling: bool = True
    size: int = 32
    epochs: int = 5
    pretrain_epochs: int = 2
    batch_size: int = 64
    lr: float = 2e-3
    max_train: int = 2400
    seed: int = 0

    def __post_init__(self) -> None:
        check_option("finetune", self.finetune, ("head", "full", "gradual"))
        check_option("arch", self.arch, ("cnn", "source", "target"))
        if self.finetune == "head" and not self.pretrain:
            raise OptionError("finetune='head' needs pretrain=True (frozen random features)")

    @property
    def in_chans(self) -> int:
        return (1 if self.grey else 3) + (self.amt_k if self.amt else 0)


# The published ablation rows (BreathAI), in order; each adds one stage to the row above
# from "standard fine-tuning" on.
ABLATION: dict[str, BreathConfig] = {
    "plain CNN": BreathConfig(arch="cnn", grey=False, amt=False, pretrain=False,
                              finetune="full", kd=False, contrastive=False, ensemble=False),
    "transfer learning, no preprocessing": BreathConfig(
        arch="source", grey=False, amt=False, finetune="head", kd=False, contrastive=False,
        ensemble=False),
    "standard fine-tuning": BreathConfig(arch="source", amt=False, finetune="full", kd=False,
                                         contrastive=False, ensemble=False),
    "+ AMT": BreathConfig(arch="source", finetune="full", kd=False, contrastive=False,
                          ensemble=False),
    "+ KD": BreathConfig(finetune="full", contrastive=False, ensemble=False),
    "full method": BreathConfig(),
    # the same network and training with the ensemble on features scaled by the pooled training
    # statistics instead of per recording (the choice of docs/breathing.md, made visible)
    "full method, pooled feature scaling": BreathConfig(group_scaling=False),
    # not in the published ablation: the full-method network with per-subject BatchNorm
    # statistics at prediction (same training; chosen on validation subjects, docs/breathing.md)
    "full method + AdaBN (per subject)": BreathConfig(adapt_bn=True),
}


def same_training(a: BreathConfig, b: BreathConfig) -> bool:
    """True when two settings train the same model (they differ only in how it predicts:
    ``adapt_bn``, ``flip_test``, ``group_scaling``)."""
    def trained(c: BreathConfig) -> BreathConfig:
        return replace(c, adapt_bn=False, flip_test=True, group_scaling=True)

    return trained(a) == trained(b)


@dataclass
class BreathModel:
    """A trained classifier: network state, settings, optional SVM/RF ensembles.

    ``ensemble`` takes features scaled with the pooled training statistics,
    ``group_ensemble`` features standardised per group (``config.group_scaling``).
    """

    config: BreathConfig
    state: dict
    ensemble: Any = None
    history: dict = field(default_factory=dict)
    classes: tuple[str, ...] = ("INH", "EXH")
    group_ensemble: Any = None

    def network(self):
        from irtrepro.breathing.models import build_model

        net = build_model(self.config.arch, self.config.in_chans)
        try:
            net.load_state_dict(self.state)
        except RuntimeError as exc:
            raise ModelError(f"checkpoint does not match arch={self.config.arch!r} with "
                             f"{self.config.in_chans} input channels: {exc}") from exc
        net.eval()
        return net

    def save(self, path) -> None:
        import pickle

        from irtrepro._atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            pickle.dump({"config": asdict(self.config), "state": self.state,
                         "ensemble": self.ensemble, "history": self.history,
                         "classes": self.classes, "group_ensemble": self.group_ensemble}, fh)

    @classmethod
    def load(cls, path) -> BreathModel:
        import pickle

        try:
            with open(path, "rb") as fh:
                d = pickle.load(fh)
            return cls(BreathConfig(**d["config"]), d["state"], d["ensemble"], d["history"],
                       tuple(d["classes"]), d.get("group_ensemble"))
        except (OSError, KeyError, TypeError, pickle.UnpicklingError, EOFError) as exc:
            raise ModelError(f"{path}: not a breathing model checkpoint ({exc})") from exc


def _torch():
    import torch

    return torch


def _balanced_indices(y: np.ndarray, cfg: BreathConfig, rng: np.random.Generator) -> np.ndarray:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ModelError(f"training set has only class {classes.tolist()}; need INH and EXH")
    if cfg.balance:
        per = min(counts.max(), cfg.max_train // len(classes))
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per,
                                         replace=per > (y == c).sum()) for c in classes])
    else:
        idx = rng.choice(len(y), min(len(y), cfg.max_train), replace=False)
    return rng.permutation(idx)


def _augment(x, rng: np.random.Generator):
    """Random shifts (+-2 px, edge-padded) and horizontal flips: faces are left-right symmetric
    and the crop centre jitters with head motion."""
    torch = _torch()
    n = x.shape[0]
    pad = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    dy, dx = rng.integers(0, 5, 2)
    x = pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
    flip = torch.from_numpy(rng.random(n) < 0.5)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def _contrastive(emb, y, margin: float):
    torch = _torch()
    z = torch.nn.functional.normalize(emb, dim=1)
    d = torch.cdist(z, z)
    same = (y[:, None] == y[None, :]).float()
    off = 1.0 - torch.eye(len(y))
    loss = same * d ** 2 + (1 - same) * torch.clamp(margin - d, min=0) ** 2
    return (loss * off).sum() / off.sum()


def loss_terms(net, xb, yb, cfg: BreathConfig, teacher=None) -> dict:
    """The loss of one batch split into its terms (``ce``, ``kd``, ``contrastive``, ``total``)."""
    torch = _torch()
    F = torch.nn.functional
    emb = net.embed(xb)
    logits = net.head(emb)
    ce = F.cross_entropy(logits, yb)
    terms = {"ce": ce}
    total = ce
    if cfg.kd and teacher is not None:
        with torch.no_grad():
            t_logits = teacher(xb)
        T = cfg.temperature
        kl = F.kl_div(F.log_softmax(logits / T, 1), F.softmax(t_logits / T, 1),
                      reduction="batchmean") * T * T
        terms["kd"] = kl
        total = cfg.alpha * kl + (1 - cfg.alpha) * ce
    if cfg.contrastive:
        c = _contrastive(emb, yb, cfg.margin)
        terms["contrastive"] = c
        total = total + cfg.beta * c
    terms["total"] = total
    return terms


def _set_trainable(net, cfg: BreathConfig, frac: float) -> int:
    """Freeze/unfreeze per the fine-tuning mode; returns the number of trainable stages.

    ``frac`` is the fraction of training done. Gradual unfreezing opens the head first and one
    more stage (head -> stem) at equal steps over the first ``cfg.unfreeze_frac`` of
    training, so that the whole network trains for the rest (with few epochs, one stage per
    epoch would leave the stem frozen almost to the end).
    """
    stages = net.stages()
    if cfg.finetune == "full" or not cfg.pretrain:
        n = len(stages)
    elif cfg.finetune == "head":
        n = 1
    else:
        opened = frac / max(cfg.unfreeze_frac, 1e-9) * len(stages)
        n = min(len(stages), 1 + int(opened + 1e-9))
    for i, ps in enumerate(stages):
        for p in ps:
            p.requires_grad_(i < n)
    return n


def pretrain_rotation(images: np.ndarray, arch: str, cfg: BreathConfig,
                      progress: bool | None = None) -> dict:
    """Source task: self-supervised rotation prediction (0/90/180/270 degrees, 4 classes).

    Trained on the network inputs of the training images, without their INH/EXH labels
    (Gidaris et al. 2018). Returns the body's state dict (the 4-class head is dropped).
    """
    torch = _torch()
    from irtrepro.breathing.models import build_model

    rng = np.random.default_rng([cfg.seed, 1])
    torch.manual_seed(cfg.seed)
    net = build_model(arch, images.shape[1], n_classes=4)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    x_all = torch.from_numpy(images)
    net.train()
    loss = torch.tensor(float("nan"))
    for _ in range(cfg.pretrain_epochs):
        order = rng.permutation(len(x_all))
        for a in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            xb = x_all[order[a:a + cfg.batch_size]]
            k = torch.from_numpy(rng.integers(0, 4, len(xb)))
            xb = torch.stack([torch.rot90(xi, int(ki), (1, 2)) for xi, ki in zip(xb, k,
                                                                              strict=True)])
            loss = torch.nn.functional.cross_entropy(net(xb), k)
            opt.zero_grad()
            loss.backward()
            opt.step()
    logger.debug("rotation pretraining of %s: last loss %.3f", arch, float(loss.detach()))
    return {k: v for k, v in net.state_dict().items() if not k.startswith("head.")}


def _fit_network(x: np.ndarray, y: np.ndarray, cfg: BreathConfig, arch: str,
                 teacher=None, progress: bool | None = None) -> tuple[Any, dict]:
    torch = _torch()
    from irtrepro._logging import progress_bar
    from irtrepro.breathing.models import build_model

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 2])
    net = build_model(arch, x.shape[1])
    if cfg.pretrain:
        body = pretrain_rotation(x, arch, cfg, progress)
        net.load_state_dict(body, strict=False)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    hist: dict[str, list[float]] = {"loss": [], "trainable_stages": []}
    n_batches = max(1, len(xt) // cfg.batch_size)
    for epoch in progress_bar(range(cfg.epochs), progress, desc=f"train {arch}"):
        net.train()
        if cfg.finetune == "head" and cfg.pretrain:
            net.body.eval()  # frozen features: keep BatchNorm statistics of the source task
        order = rng.permutation(len(xt))
        losses = []
        n_start = None  # trainable stages at the first step of the epoch
        for a in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            frac = (epoch + a / cfg.batch_size / n_batches) / cfg.epochs
            n_tr = _set_trainable(net, cfg, frac)
            n_start = n_tr if n_start is None else n_start
            b = order[a:a + cfg.batch_size]
            xb = _augment(xt[b], rng)
            terms = loss_terms(net, xb, yt[b], cfg, teacher)
            opt.zero_grad()
            terms["total"].backward()
            opt.step()
            losses.append(float(terms["total"].detach()))
        sched.step()
        hist["loss"].append(float(np.mean(losses)))
        hist["trainable_stages"].append(n_start)
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return net, hist


def _embed(net, x: np.ndarray, batch: int = 512) -> np.ndarray:
    torch = _torch()
    with torch.no_grad():
        return np.concatenate([net.embed(torch.from_numpy(x[a:a + batch])).numpy()
                               for a in range(0, len(x), batch)])


def _features(net, images: np.ndarray, cfg: BreathConfig, chunk: int = 4096) -> np.ndarray:
    """Deep features of RGB images, preprocessed in chunks (the network input of a whole
    training set would hold every AMT channel in float32 at once)."""
    return np.concatenate([_embed(net, network_input(images[a:a + chunk], grey=cfg.grey,
                                                     amt=cfg.amt, amt_k=cfg.amt_k))
                           for a in range(0, len(images), chunk)])


def _logits(net, x: np.ndarray, batch: int = 512) -> np.ndarray:
    torch = _torch()
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[a:a + batch])).numpy()
                               for a in range(0, len(x), batch)])


def train(data: ImageSet, cfg: BreathConfig | None = None, *, teacher: BreathModel | None = None,
          progress: bool | None = None) -> BreathModel:
    """Train the pipeline configured by ``cfg`` on ``data``.

    Parameters
    ----------
    data : ImageSet
        Labelled training images (labels 0 INH / 1 EXH; unlabelled -1 are ignored).
    cfg : BreathConfig
        Switches; default the full method.
    teacher : BreathModel, optional
        Trained teacher for ``cfg.kd`` (must take the same inputs); trained here if ``None``.

    Raises
    ------
    ModelError
        Fewer than two classes, or a teacher whose inputs differ.
    """
    torch = _torch()
    cfg = cfg or BreathConfig()
    t0 = time.perf_counter()
    lab = data.labels >= 0
    if lab.sum() == 0:
        raise ModelError("no labelled images to train on")
    data = data.subset(lab)
    rng = np.random.default_rng([cfg.seed, 0])
    # ensemble_holdout > 0: hold that fraction of the training subjects (or images, with < 3
    # subjects) out of the network for the ensemble weight; 0: the network sees every training
    # subject and the weight comes from leave-one-subject-out fits of the SVM/RF on its features
    subs = np.unique(data.meta["subject"].astype(str))
    hold = cfg.ensemble_holdout if cfg.ensemble else 0.0
    if hold > 0 and len(subs) >= 3:
        val_subs = rng.choice(subs, max(1, int(round(hold * len(subs)))), replace=False)
        is_val = data.meta["subject"].astype(str).isin(val_subs).to_numpy()
    elif hold > 0:
        is_val = rng.random(len(data)) < hold
    else:
        is_val = np.zeros(len(data), bool)
    fit_set = data.subset(~is_val)
    idx = _balanced_indices(fit_set.labels, cfg, rng)
    x = network_input(fit_set.images[idx], grey=cfg.grey, amt=cfg.amt, amt_k=cfg.amt_k)
    y = fit_set.labels[idx]
    teacher_net = None
    if cfg.kd:
        if teacher is None:
            tcfg = replace(cfg, arch=cfg.teacher_arch, kd=False, contrastive=False,
                           ensemble=False, finetune="full")
            teacher = train(data, tcfg, progress=progress)
        if teacher.config.in_chans != cfg.in_chans or (teacher.config.grey, teacher.config.amt) \
                != (cfg.grey, cfg.amt):
            raise ModelError(f"teacher takes {teacher.config.in_chans} channels (grey="
                             f"{teacher.config.grey}, amt={teacher.config.amt}); the student "
                             f"{cfg.in_chans} (grey={cfg.grey}, amt={cfg.amt})")
        teacher_net = teacher.network()
    net, hist = _fit_network(x, y, cfg, cfg.arch, teacher_net, progress)
    ens = group_ens = None
    if cfg.ensemble:
        from irtrepro.breathing.ensemble import fit_ensemble, standardise_groups

        subjects = fit_set.meta["subject"].astype(str).to_numpy()
        # per-subject statistics come from every frame of the subject (its natural phase
        # mix, as a recording has at prediction), not from the balanced draw
        f_group = standardise_groups(_features(net, fit_set.images, cfg), subjects)[idx]
        if is_val.any():
            xv = network_input(data.images[is_val], grey=cfg.grey, amt=cfg.amt,
                               amt_k=cfg.amt_k)
            fv = _embed(net, xv)
            ens = fit_ensemble(_embed(net, x), y, fv, data.labels[is_val], seed=cfg.seed)
            fv_group = standardise_groups(
                fv, data.meta["subject"].astype(str).to_numpy()[is_val])
            group_ens = fit_ensemble(f_group, y, fv_group, data.labels[is_val],
                                     seed=cfg.seed, scaling="group")
        else:
            ens = fit_ensemble(_embed(net, x), y, groups=subjects[idx], seed=cfg.seed)
            group_ens = fit_ensemble(f_group, y, groups=subjects[idx], seed=cfg.seed,
                                     scaling="group")
        hist["ensemble_weight_svm"] = ens.weight
        hist["group_ensemble_weight_svm"] = group_ens.weight
    hist["train_seconds"] = time.perf_counter() - t0
    hist["n_train"] = int(len(y))
    state = copy.deepcopy(net.state_dict())
    del torch
    return BreathModel(cfg, state, ens, hist, group_ensemble=group_ens)


def adapt_batchnorm(net, x: np.ndarray, batch: int = 256):
    """Copy of ``net`` with every BatchNorm's running mean/variance re-estimated on ``x``
    (cumulative average over the batches; weights untouched; AdaBN, Li et al. 2018)."""
    torch = _torch()
    net = copy.deepcopy(net)
    for mod in net.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None
    net.train()
    with torch.no_grad():
        for a in range(0, len(x), batch):
            net(torch.from_numpy(x[a:a + batch]))
    net.eval()
    return net


def predict_proba(model: BreathModel, images: np.ndarray, groups=None) -> np.ndarray:
    """P(EXH) per image ``(n,)`` from RGB uint8 images ``(n, rows, cols, 3)``.

    ``groups`` (one label per image, e.g. the subject or recording; default: all images are
    one group) are the units of the per-group steps: ``model.config.adapt_bn`` re-estimates
    the BatchNorm statistics per group, and ``model.config.group_scaling`` standardises the
    ensemble's features per group. A group should be a recording of several breaths (both
    phases); groups of fewer than :data:`~irtrepro.breathing.ensemble.MIN_GROUP` images are
    classified with the pooled ensemble (logged).
    """
    cfg = model.config
    if len(images) == 0:
        return np.zeros(0)
    if images.shape[1:3] != (cfg.size, cfg.size):
        raise ModelError(f"images are {images.shape[1]}x{images.shape[2]} px; the model was "
                         f"trained on {cfg.size}x{cfg.size}")
    g = np.zeros(len(images), int) if groups is None else np.asarray(groups)
    if len(g) != len(images):
        raise ModelError(f"{len(g)} group labels for {len(images)} images")
    _log_scaling(model, g)
    x = network_input(images, grey=cfg.grey, amt=cfg.amt, amt_k=cfg.amt_k)
    net = model.network()
    if cfg.adapt_bn:
        p = np.full(len(x), np.nan)
        for k in np.unique(g):
            m = g == k
            p[m] = _proba(model, adapt_batchnorm(net, x[m]), x[m], g[m])
        return p
    return _proba(model, net, x, g)


def _in_large_group(g: np.ndarray) -> np.ndarray:
    """True for images whose group is large enough for its own feature statistics."""
    from irtrepro.breathing.ensemble import MIN_GROUP

    _, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    return counts[inv] >= MIN_GROUP


def _log_scaling(model: BreathModel, g: np.ndarray) -> None:
    from irtrepro.breathing.ensemble import MIN_GROUP

    if model.ensemble is None or not model.config.group_scaling:
        return
    if model.group_ensemble is None:
        logger.warning("breathing: the checkpoint has no per-group ensemble (trained before "
                       "group_scaling); its features are scaled with pooled statistics")
        return
    small = ~_in_large_group(g)
    if small.any():
        logger.warning("breathing: %d of %d images are in groups of < %d images, too few for "
                       "their own feature statistics; classified with pooled feature scaling",
                       int(small.sum()), len(g), MIN_GROUP)


def _proba(model: BreathModel, net, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    if model.config.flip_test:
        # faces are left-right symmetric and training flips them: the mean over the image and
        # its mirror halves the mirror-asymmetric part of the prediction noise
        mirror = np.ascontiguousarray(x[..., ::-1])
        return 0.5 * (_proba_view(model, net, x, g) + _proba_view(model, net, mirror, g))
    return _proba_view(model, net, x, g)


def _proba_view(model: BreathModel, net, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """P(EXH) of one view of the images: the ensemble on the features, else the head."""
    if model.ensemble is not None:
        return _ensemble_proba(model, _embed(net, x), g)
    z = _logits(net, x)
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p[:, 1] / p.sum(1)


def _ensemble_proba(model: BreathModel, feats: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-group scaled ensemble for groups with enough images, the pooled one otherwise."""
    if not model.config.group_scaling or model.group_ensemble is None:
        return model.ensemble.predict_proba(feats)
    big = _in_large_group(g)
    p = np.empty(len(feats))
    if big.any():
        p[big] = model.group_ensemble.predict_proba(feats[big], g[big])
    if (~big).any():
        p[~big] = model.ensemble.predict_proba(feats[~big])
    return p
