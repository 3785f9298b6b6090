"""BreathAI pipeline: losses fall, each ablation switch changes what it claims, CLI, bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from irtrepro.breathing.data import ImageSet  # noqa: E402
from irtrepro.breathing.evaluate import (  # noqa: E402
    agreement,
    classification_metrics,
    true_rate_from_labels,
)
from irtrepro.breathing.models import build_model  # noqa: E402
from irtrepro.breathing.train import (  # noqa: E402
    ABLATION,
    BreathConfig,
    BreathModel,
    _balanced_indices,
    _set_trainable,
    loss_terms,
    predict_proba,
    train,
)
from irtrepro.errors import ModelError, OptionError  # noqa: E402

pytestmark = pytest.mark.requires_torch
TINY = dict(size=16, epochs=3, pretrain_epochs=1, batch_size=16, max_train=96, lr=3e-3)


def _toy(n: int = 120, seed: int = 0) -> ImageSet:
    """16x16 RGB images: EXH has a warm (bright) blob in the lower half, INH a dark one."""
    from irtrepro.breathing.amt import to_rgb

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = rng.normal(30, 0.3, (n, 16, 16))
    t[:, 9:13, 5:11] += np.where(y == 1, 2.0, -2.0)[:, None, None]
    meta = pd.DataFrame({"subject": [f"S{i % 4}" for i in range(n)], "session": "a",
                         "time": np.arange(n) / 8.0, "clip": 0, "hard": False, "source": "",
                         "frame": np.arange(n)})
    return ImageSet(to_rgb(t), y, meta)


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    return _toy()


def test_plain_cnn_loss_falls_and_learns(toy):
    cfg = replace(ABLATION["plain CNN"], **{**TINY, "epochs": 4})
    m = train(toy, cfg)
    assert m.history["loss"][-1] < 0.7 * m.history["loss"][0]
    test = _toy(60, seed=1)
    assert ((predict_proba(m, test.images) > 0.5) == test.labels).mean() > 0.8


def test_kd_adds_kl_term_and_contrastive_adds_its_term():
    x = torch.randn(8, 3, 16, 16)
    y = torch.tensor([0, 1] * 4)
    net = build_model("target", 3)
    teacher = build_model("source", 3).eval()
    plain = loss_terms(net, x, y, BreathConfig(kd=False, contrastive=False), None)
    kd = loss_terms(net, x, y, BreathConfig(kd=True, contrastive=False), teacher)
    both = loss_terms(net, x, y, BreathConfig(kd=True, contrastive=True), teacher)
    assert set(plain) == {"ce", "total"}
    assert "kd" in kd and float(kd["kd"]) >= 0
    assert float(kd["total"]) == pytest.approx(0.5 * float(kd["kd"]) + 0.5 * float(kd["ce"]),
                                               rel=1e-5)
    assert float(both["total"]) == pytest.approx(float(kd["total"]) +
                                                 0.5 * float(both["contrastive"]), rel=1e-5)


def test_contrastive_loss_prefers_separated_classes():
    from irtrepro.breathing.train import _contrastive

    y = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[1.0, 0], [1, 0.01], [-1, 0], [-1, 0.01]])
    mixed = torch.tensor([[1.0, 0], [-1, 0], [1, 0.01], [-1, 0.01]])
    assert float(_contrastive(apart, y, 1.0)) < float(_contrastive(mixed, y, 1.0))


def test_gradual_unfreezing_opens_one_stage_at_a_time():
    net = build_model("target", 3)
    cfg = BreathConfig(finetune="gradual")
    n_stages = len(net.stages())
    # stage k opens at k / n_stages of the first unfreeze_frac of training
    fracs = np.arange(n_stages + 2) * cfg.unfreeze_frac / n_stages
    counts = [_set_trainable(net, cfg, f) for f in fracs]
    assert counts == list(range(1, n_stages + 1)) + [n_stages, n_stages]
    _set_trainable(net, cfg, 0)
    assert all(p.requires_grad for p in net.head.parameters())
    assert not any(p.requires_grad for p in net.stages()[-1])  # stem frozen at epoch 0
    assert _set_trainable(net, BreathConfig(finetune="full"), 0) == n_stages


def test_head_only_finetuning_keeps_the_body(toy):
    cfg = replace(ABLATION["transfer learning, no preprocessing"], **{**TINY, "epochs": 1})
    m = train(toy, cfg)
    net = m.network()
    # the body equals the rotation-pretrained body: retrain pretraining with the same seed
    from irtrepro.breathing.amt import network_input
    from irtrepro.breathing.train import pretrain_rotation

    rng = np.random.default_rng([cfg.seed, 0])
    idx = _balanced_indices(toy.labels, cfg, rng)
    body = pretrain_rotation(network_input(toy.images[idx], grey=False), "source", cfg)
    key = next(k for k in body if k.endswith("conv1.weight"))
    assert torch.allclose(net.state_dict()[key], body[key])
    assert m.history["trainable_stages"] == [1]


def test_full_method_uses_every_stage(toy):
    cfg = replace(BreathConfig(), **TINY)
    m = train(toy, cfg)
    assert m.ensemble is not None and 0.0 <= m.ensemble.weight <= 1.0
    assert m.config.in_chans == 1 + cfg.amt_k
    # trainable stages at the start of each epoch: only the head at first, all by the end
    st = m.history["trainable_stages"]
    assert st == sorted(st) and st[0] < 5 and st[-1] == 5
    p = predict_proba(m, _toy(20, seed=2).images)
    assert p.shape == (20,) and np.all((p >= 0) & (p <= 1))


def test_balancing_resamples_to_equal_classes():
    y = np.array([0] * 90 + [1] * 10)
    rng = np.random.default_rng(0)
    idx = _balanced_indices(y, BreathConfig(max_train=100), rng)
    assert (y[idx] == 0).sum() == (y[idx] == 1).sum() == 50
    idx = _balanced_indices(y, BreathConfig(max_train=100, balance=False), rng)
    assert (y[idx] == 1).sum() == 10


def test_ablation_rows_differ_as_published():
    a = ABLATION
    assert a["plain CNN"].arch == "cnn" and not a["plain CNN"].pretrain
    assert a["transfer learning, no preprocessing"].finetune == "head"
    assert not a["transfer learning, no preprocessing"].grey
    assert a["standard fine-tuning"].grey and not a["standard fine-tuning"].amt
    assert a["+ AMT"].amt and not a["+ AMT"].kd
    assert a["+ KD"].kd and a["+ KD"].arch == "target" and not a["+ KD"].contrastive
    full = a["full method"]
    assert full.kd and full.contrastive and full.ensemble and full.finetune == "gradual"
    assert not any(c.adapt_bn for n, c in a.items() if n != "full method + AdaBN (per subject)")
    pooled = a["full method, pooled feature scaling"]
    assert full.group_scaling and not pooled.group_scaling
    assert replace(pooled, group_scaling=True) == full


def test_bad_training_input(toy):
    one = toy.subset(toy.labels == 1)
    with pytest.raises(ModelError, match="only class"):
        train(one, replace(ABLATION["plain CNN"], **TINY))
    with pytest.raises(OptionError, match="finetune"):
        BreathConfig(finetune="sometimes")
    m = train(toy, replace(ABLATION["plain CNN"], **{**TINY, "epochs": 1}))
    with pytest.raises(ModelError, match="16x16"):
        predict_proba(m, np.zeros((2, 32, 32, 3), np.uint8))


def test_checkpoint_roundtrip(toy, tmp_path):
    m = train(toy, replace(ABLATION["plain CNN"], **{**TINY, "epochs": 1}))
    m.save(tmp_path / "m.pkl")
    m2 = BreathModel.load(tmp_path / "m.pkl")
    np.testing.assert_allclose(predict_proba(m, toy.images[:5]),
                               predict_proba(m2, toy.images[:5]), rtol=1e-5)
    (tmp_path / "bad.pkl").write_bytes(b"junk")
    with pytest.raises(ModelError, match="bad.pkl"):
        BreathModel.load(tmp_path / "bad.pkl")


def test_metrics_on_hand_made_counts():
    m = classification_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 1, 1)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert np.isnan(classification_metrics([0, 0], [0, 0])["precision"])


def test_true_rate_from_labels():
    t = np.arange(0, 20, 0.125)
    lab = np.where((t % 2.0) < 0.8, "INH", "EXH")  # 2 s breaths = 30 min-1
    rf = true_rate_from_labels(t, lab)
    assert np.nanmax(np.abs(rf - 30.0)) < 0.01
    assert np.isnan(rf[0])  # before the first complete breath


def test_agreement_reports_method():
    a = agreement(np.array([10.0, 12, 14, 16]), np.array([10.0, 11, 15, 15]))
    assert a["mae"] == pytest.approx(0.75) and a["n"] == 4
    assert "bland_altman" in a["method"] or "1.96" in a["method"]
    assert np.isnan(agreement(np.array([1.0]), np.array([np.nan]))["bias"])


def test_ensemble_weight_from_validation_or_left_out_subjects():
    from irtrepro.breathing.ensemble import WEIGHT_GRID, fit_ensemble

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 160)
    x = rng.normal(0, 1, (160, 4)) + y[:, None] * 1.5
    groups = np.repeat(["S1", "S2", "S3", "S4"], 40)
    loso = fit_ensemble(x, y, groups=groups, n_trees=20)
    assert loso.weight in WEIGHT_GRID
    assert ((loso.predict_proba(x) > 0.5) == y).mean() > 0.8
    # without validation data or groups the weight is the neutral 0.5
    assert fit_ensemble(x, y, n_trees=20).weight == 0.5
    val = fit_ensemble(x[:120], y[:120], x[120:], y[120:], n_trees=20)
    assert val.weight in WEIGHT_GRID


def test_full_method_network_sees_every_training_subject(toy):
    cfg = replace(BreathConfig(), **{**TINY, "epochs": 1, "max_train": 1000}, kd=False,
                  contrastive=False, pretrain=False, finetune="full")
    m = train(toy, cfg)
    assert m.history["n_train"] == 2 * np.bincount(toy.labels).max()
    held = train(toy, replace(cfg, ensemble_holdout=0.25))
    assert held.history["n_train"] < m.history["n_train"]


def test_validation_uses_training_subjects_only(toy):
    from irtrepro.breathing.evaluate import validate_ablation

    rows = {"plain CNN": replace(ABLATION["plain CNN"], **{**TINY, "epochs": 1})}
    train_part = toy.subset(toy.meta["subject"].isin(["S0", "S1", "S2"]).to_numpy())
    res = validate_ablation(train_part, rows=rows, folds=(0, 1))
    per_fold = res[res["fold"] != "mean"]
    assert len(per_fold) == 2 and set(res["fold"]) == {"0", "1", "mean"}
    val = {s for v in per_fold["validation_subjects"] for s in v.split()}
    assert val <= {"S0", "S1", "S2"}  # S3 (the outer held-out subject) is never used
    assert per_fold["n"].sum() == sum((train_part.meta["subject"] == s).sum() for s in
                                      per_fold["validation_subjects"])


def test_adabn_row_changes_only_prediction(toy):
    from irtrepro.breathing.train import adapt_batchnorm, same_training

    full, ada = ABLATION["full method"], ABLATION["full method + AdaBN (per subject)"]
    assert ada.adapt_bn and not full.adapt_bn and same_training(full, ada)
    assert list(ABLATION)[-3:] == ["full method", "full method, pooled feature scaling",
                                   "full method + AdaBN (per subject)"]
    cfg = replace(ABLATION["plain CNN"], **{**TINY, "epochs": 1})
    m = train(toy, cfg)
    ada_m = BreathModel(replace(cfg, adapt_bn=True), m.state, m.ensemble, m.history)
    x = toy.images[:40]
    # BatchNorm statistics re-estimated on a brighter group: predictions change, weights not
    shifted = np.clip(x.astype(int) + 40, 0, 255).astype(np.uint8)
    p0, p1 = predict_proba(m, shifted), predict_proba(ada_m, shifted)
    assert not np.allclose(p0, p1)
    net = m.network()
    adapted = adapt_batchnorm(net, np.random.default_rng(0).normal(size=(8, 3, 16, 16))
                              .astype(np.float32))
    for (k, a), b in zip(net.state_dict().items(), adapted.state_dict().values(), strict=True):
        if "weight" in k or "bias" in k:
            assert torch.equal(a, b)
    # per-group adaptation: each group is predicted as if alone
    g = np.repeat(["A", "B"], 20)
    pg = predict_proba(ada_m, x, groups=g)
    np.testing.assert_allclose(pg[:20], predict_proba(ada_m, x[:20]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="group labels"):
        predict_proba(ada_m, x, groups=g[:5])


def test_flip_test_is_the_mean_over_image_and_mirror(toy):
    from irtrepro.breathing.train import same_training

    assert all(cfg.flip_test for cfg in ABLATION.values())  # every learned row, by default
    cfg = replace(ABLATION["plain CNN"], **{**TINY, "epochs": 1}, flip_test=False)
    assert same_training(cfg, replace(cfg, flip_test=True))
    m = train(toy, cfg)
    flip = BreathModel(replace(cfg, flip_test=True), m.state, m.ensemble, m.history)
    x = toy.images[:40]
    p, p_mirror = predict_proba(m, x), predict_proba(m, np.ascontiguousarray(x[:, :, ::-1]))
    assert not np.allclose(p, p_mirror)  # the noise is not mirror-symmetric: the views differ
    np.testing.assert_allclose(predict_proba(flip, x), 0.5 * (p + p_mirror), rtol=1e-5,
                               atol=1e-6)
    # with AdaBN the statistics come from the group's own images, then both views predicted
    ada = BreathModel(replace(cfg, adapt_bn=True, flip_test=True), m.state, m.ensemble,
                      m.history)
    assert predict_proba(ada, x).shape == (40,)


def _offset_features(subjects, seed):
    """Deep-feature stand-ins: the class moves feature 0 by 1.5 SD; every subject adds its own
    offset of -2.5 to 2.5 to all features (the per-face shift of docs/breathing.md)."""
    rng = np.random.default_rng(seed)
    x, y, g = [], [], []
    for s in subjects:
        ys = (rng.random(200) < 0.55).astype(int)
        f = rng.normal(0, 1, (200, 4))
        f[:, 0] += 1.5 * ys
        x.append(f + rng.uniform(-2.5, 2.5, 4))
        y.append(ys)
        g += [s] * 200
    return np.concatenate(x), np.concatenate(y), np.array(g)


def test_group_scaling_removes_a_per_subject_feature_offset():
    from irtrepro.breathing.ensemble import fit_ensemble, standardise_groups

    x, y, g = _offset_features([f"S{i}" for i in range(6)], seed=0)
    xt, yt, gt = _offset_features(["T1", "T2", "T3", "T4"], seed=1)
    pooled = fit_ensemble(x, y, groups=g, n_trees=50)
    grouped = fit_ensemble(standardise_groups(x, g), y, groups=g, n_trees=50,
                           scaling="group")
    acc_pooled = ((pooled.predict_proba(xt) > 0.5) == yt).mean()
    acc_group = ((grouped.predict_proba(xt, gt) > 0.5) == yt).mean()
    # 1.5 SD between the classes: ~0.77 is the best any threshold can do without offsets
    assert acc_group > 0.72 and acc_group > acc_pooled + 0.08
    # a group's prediction does not depend on its offset or on a positive rescaling
    moved = xt * np.array([2.0, 0.5, 1.0, 3.0]) + np.where(gt == "T1", 7.0, -3.0)[:, None]
    np.testing.assert_allclose(grouped.predict_proba(moved, gt), grouped.predict_proba(xt, gt),
                               atol=1e-9)
    z = standardise_groups(xt, gt)
    for k in np.unique(gt):
        np.testing.assert_allclose(z[gt == k].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(z[gt == k].std(0), 1, atol=1e-12)
    with pytest.raises(OptionError, match="scaling"):
        fit_ensemble(x, y, scaling="per subject")


def test_full_method_group_scaling_and_its_fallback(toy, tmp_path, caplog):
    from irtrepro.breathing.ensemble import MIN_GROUP
    from irtrepro.breathing.train import same_training

    cfg = replace(BreathConfig(), **{**TINY, "epochs": 1}, kd=False, pretrain=False,
                  finetune="full")
    assert same_training(cfg, replace(cfg, group_scaling=False))
    m = train(toy, cfg)
    assert m.ensemble.scaling == "pooled" and m.group_ensemble.scaling == "group"
    assert {"ensemble_weight_svm", "group_ensemble_weight_svm"} <= set(m.history)
    pooled = replace(m, config=replace(cfg, group_scaling=False))
    x = toy.images
    p_group, p_pooled = predict_proba(m, x), predict_proba(pooled, x)
    assert len(x) >= MIN_GROUP and not np.allclose(p_group, p_pooled)
    # a group too small for its own statistics falls back to the pooled ensemble (logged);
    # a large one is predicted as if alone
    g = np.where(np.arange(len(x)) < len(x) - 10, "big", "small")
    with caplog.at_level("WARNING", logger="irtrepro"):
        p = predict_proba(m, x, groups=g)
    assert "10 of 120 images" in caplog.text
    np.testing.assert_allclose(p[g == "small"], p_pooled[g == "small"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(p[g == "big"], predict_proba(m, x[g == "big"]), rtol=1e-6,
                               atol=1e-9)
    # the checkpoint keeps both ensembles; one written before group scaling loads as pooled
    m.save(tmp_path / "m.pkl")
    np.testing.assert_allclose(predict_proba(BreathModel.load(tmp_path / "m.pkl"), x), p_group,
                               rtol=1e-6, atol=1e-9)
    import pickle
    from dataclasses import asdict

    old = {"config": asdict(cfg), "state": m.state, "ensemble": m.ensemble,
           "history": m.history, "classes": m.classes}
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(old))
    caplog.clear()
    with caplog.at_level("WARNING", logger="irtrepro"):
        p_old = predict_proba(BreathModel.load(tmp_path / "old.pkl"), x)
    np.testing.assert_allclose(p_old, p_pooled, rtol=1e-6, atol=1e-9)
    assert "no per-group ensemble" in caplog.text


def test_cli_train_and_predict_on_an_image_folder(tmp_path, capsys):
    """``irtrepro breathing train`` then ``predict`` on a folder laid out as the published
    data set (INH/, EXH/ of grey thermal images), two subjects by file-name prefix."""
    from PIL import Image

    from irtrepro.cli import main

    rng = np.random.default_rng(3)
    for cls, sign in (("INH", -1.0), ("EXH", 1.0)):
        (tmp_path / "faces" / cls).mkdir(parents=True)
        for i in range(60):
            t = rng.normal(30, 0.3, (32, 32))
            t[18:26, 10:22] += 2.0 * sign
            Image.fromarray(((t - 25) * 25).clip(0, 255).astype(np.uint8)).save(
                tmp_path / "faces" / cls / f"S{i % 2}_{i:03d}.png")
    model = tmp_path / "m.pkl"
    assert main(["breathing", "train", str(tmp_path / "faces"), "--out", str(model),
                 "--epochs", "1"]) == 0
    assert "wrote" in capsys.readouterr().out and model.is_file()
    m = BreathModel.load(model)
    assert m.config.group_scaling and m.group_ensemble is not None
    out = tmp_path / "pred.csv"
    assert main(["breathing", "predict", str(model), str(tmp_path / "faces"), "--out",
                 str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 120 and list(df.columns) == ["file", "label", "p_exh", "pred"]
    assert df["p_exh"].between(0, 1).all() and set(df["pred"]) <= {"INH", "EXH"}
    # the folder is one group of 120 images (>= MIN_GROUP): scaled per group, not pooled
    from irtrepro.breathing.data import read_image_folder

    imgs = read_image_folder(tmp_path / "faces").images
    np.testing.assert_allclose(df["p_exh"], predict_proba(m, imgs), rtol=1e-6, atol=1e-9)
    assert not np.allclose(df["p_exh"], predict_proba(
        replace(m, config=replace(m.config, group_scaling=False)), imgs))
    acc = float(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    assert acc > 0.9  # a 2 degC blob is easy: the pipeline learned it in one epoch
