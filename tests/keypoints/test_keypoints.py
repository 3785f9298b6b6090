"""Keypoint model: losses, OKS/AP, decoding, detector, COCO reader, training, gait."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from irtrepro.errors import OptionError, ReaderError
from irtrepro.synth import pose

torch = pytest.importorskip("torch")

from irtrepro.keypoints import coco, decode, detector, gait, losses, oks  # noqa: E402


# ---------------------------------------------------------------- Adaptive Wing
def test_adaptive_wing_matches_hand_computed_values():
    # small error branch: 14 * ln(1 + 0.3 ** (2.1 - 0.5))
    small = 14 * math.log(1 + 0.3 ** 1.6)
    # large error branch, y = 0, d = 1: A * 1 - C with the published constants
    e = 2.1
    a = 14 * (1 / (1 + 0.5 ** e)) * e * 0.5 ** (e - 1) / 1.0
    c = 0.5 * a - 14 * math.log(1 + 0.5 ** e)
    large = a * 1.0 - c
    pred = torch.tensor([0.2, 1.0]).reshape(1, 2, 1, 1)
    tgt = torch.tensor([0.5, 0.0]).reshape(1, 2, 1, 1)
    got = losses.adaptive_wing(pred, tgt).item()
    assert got == pytest.approx((small + large) / 2, rel=1e-5)
    assert small == pytest.approx(1.9039, abs=1e-3)
    # the two branches meet at d = theta (continuity)
    y = torch.tensor([[[[0.3]]]])
    lo = losses.adaptive_wing(y + 0.5 - 1e-5, y).item()
    hi = losses.adaptive_wing(y + 0.5 + 1e-5, y).item()
    assert lo == pytest.approx(hi, rel=1e-3)
    assert losses.adaptive_wing(y, y).item() == 0.0


# ---------------------------------------------------------------- OKS / AP
def _gt_one(kp, area=400.0):
    return {"images": [{"id": 1}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "keypoints": kp.reshape(-1).tolist(), "area": area,
                             "bbox": [0, 0, 20, 20], "num_keypoints": int((kp[:, 2] > 0).sum())}],
            "categories": [{"id": 1, "name": "person", "keypoints": list(pose.KEYPOINT_NAMES)}]}


def _res(kp):
    return [{"image_id": 1, "category_id": 1, "score": 0.9,
             "keypoints": np.c_[kp[:, :2], np.ones(17)].reshape(-1).tolist()}]


def test_oks_and_ap_perfect_and_shifted():
    rng = np.random.default_rng(0)
    kp = np.c_[rng.uniform(10, 50, (17, 2)), np.full(17, 2.0)]
    kp[:3] = 0  # unlabelled face points do not count
    area = 400.0
    assert oks.oks(kp, kp[:, :2], area) == 1.0
    assert oks.coco_keypoint_ap(_gt_one(kp, area), _res(kp))["AP"] == pytest.approx(1.0)
    # shift every keypoint by d px: OKS = mean_i exp(-d^2 / (2 area (2 sigma_i)^2))
    d = 1.5
    shifted = kp.copy()
    shifted[:, 0] += d
    k = 2 * oks.COCO_SIGMAS[3:]
    expected = float(np.mean(np.exp(-d**2 / (2 * area * k**2))))
    got = oks.oks(kp, shifted[:, :2], area)
    assert got == pytest.approx(expected, rel=1e-9) and got < 1
    # one image, one detection: AP = share of thresholds 0.50:0.05:0.95 that OKS reaches
    thr = np.linspace(0.5, 0.95, 10)
    ap = oks.coco_keypoint_ap(_gt_one(kp, area), _res(shifted))
    assert ap["AP"] == pytest.approx(np.mean(thr <= expected + 1e-12))
    assert ap["AP"] < 1.0
    assert oks.coco_keypoint_ap(_gt_one(kp, area), [])["AP"] == 0.0


# ---------------------------------------------------------------- decoding
def test_subpixel_decoding_recovers_gaussian_centre():
    xy = np.array([[[5.3, 7.6], [8.8, 2.2]]])  # interior (the smoothing biases the last px)
    hm = decode.gaussian_targets(xy, np.ones((1, 2)), (16, 12), sigma=1.0)
    got, score = decode.decode_heatmaps(hm, sigma=1.0)
    np.testing.assert_allclose(got, xy, atol=0.08)
    assert np.all(score > 0.7)
    # an unlabelled keypoint has an empty map
    assert decode.gaussian_targets(xy, np.zeros((1, 2)), (16, 12), 1.0).max() == 0


# ---------------------------------------------------------------- detector and crops
def test_detector_no_person_several_people():
    rng = np.random.default_rng(0)
    empty = 22 + rng.normal(0, 0.15, (60, 80))
    assert detector.detect_people(empty) == []
    assert detector.detect_people(np.full((60, 80), np.nan)) == []
    frame, kp = pose.render_people_frame(["S01", "S02"], [-0.7, 0.7], seed=1)
    dets = detector.detect_people(frame)
    assert len(dets) == 2
    hips = kp[:, 11, 0]
    centres = sorted(d.box[0] + d.box[2] / 2 for d in dets)
    np.testing.assert_allclose(centres, np.sort(hips), atol=4)


def test_crop_window_roundtrip():
    win = detector.box_to_crop(np.array([[10.0, 5.0, 12.0, 40.0]]), (64, 48))
    assert win[0, 3] / win[0, 2] == pytest.approx(64 / 48)
    xy = np.array([[[15.0, 20.0], [3.0, 44.0]]])
    back = detector.crop_to_image(detector.image_to_crop(xy, win, (16, 12)), win, (16, 12))
    np.testing.assert_allclose(back, xy)
    # a crop of a linear ramp samples the ramp at the crop-pixel centres
    img = np.tile(np.arange(80.0), (60, 1))[None]
    c = detector.crop_images(img, np.array([[40.0, 30.0, 16.0, 16.0]]), (4, 4))
    np.testing.assert_allclose(c[0, 0, 0], [34, 38, 42, 46])


def test_mirror_augmentation_is_geometrically_exact():
    from irtrepro.keypoints import train
    from irtrepro.keypoints.vocabulary import KEYPOINT_NAMES

    perm = train.flip_permutation()
    names = [KEYPOINT_NAMES[i] for i in perm]
    assert names[0] == "nose" and names[5] == "right_shoulder" and names[16] == "left_ankle"
    assert np.array_equal(perm[perm], np.arange(17))
    # mirroring a frame and its crop window mirrors the crop array ...
    rng = np.random.default_rng(0)
    img = rng.random((1, 60, 80)).astype(np.float32)
    win = np.array([[30.3, 28.1, 40.0, 53.3]])
    mwin = win.copy()
    mwin[:, 0] = 79 - win[:, 0]
    c = detector.crop_images(img, win, (64, 48))
    cm = detector.crop_images(img[:, :, ::-1].copy(), mwin, (64, 48))
    np.testing.assert_allclose(cm, c[..., ::-1], atol=1e-5)
    # ... and the flipped, channel-swapped target heatmaps are the targets of the mirrored
    # keypoints (left and right exchanged)
    xy = rng.uniform([5, 5], [70, 55], (1, 17, 2))
    vis = np.ones((1, 17))
    t = decode.gaussian_targets(detector.image_to_crop(xy, win, (16, 12)), vis, (16, 12), 1.0)
    mxy = np.stack([79 - xy[..., 0], xy[..., 1]], -1)[:, perm]
    tm = decode.gaussian_targets(detector.image_to_crop(mxy, mwin, (16, 12)), vis, (16, 12), 1.0)
    got = train._flip(torch.from_numpy(t), torch.from_numpy(perm)).numpy()
    np.testing.assert_allclose(got, tm, atol=1e-6)


# ---------------------------------------------------------------- COCO reader
def test_coco_reader_validates(tmp_path):
    clip = pose.render_running_clip(170.0, n_frames=2, seed=0, rgb=False)
    good = pose.write_coco(tmp_path / "g.json", clip)
    data = coco.read_coco_keypoints(good)
    assert len(data["annotations"]) == 2
    raw = json.loads(good.read_text())
    del raw["annotations"][1]["keypoints"]
    (tmp_path / "b.json").write_text(json.dumps(raw))
    with pytest.raises(ReaderError, match=r"b.json: annotations\[1\].*'keypoints'"):
        coco.read_coco_keypoints(tmp_path / "b.json")
    raw = json.loads(good.read_text())
    del raw["categories"]
    (tmp_path / "c.json").write_text(json.dumps(raw))
    with pytest.raises(ReaderError, match="categories"):
        coco.read_coco_keypoints(tmp_path / "c.json")
    raw = json.loads(good.read_text())
    raw["annotations"][0]["keypoints"] = raw["annotations"][0]["keypoints"][:-3]
    (tmp_path / "d.json").write_text(json.dumps(raw))
    with pytest.raises(ReaderError, match="48 values"):
        coco.read_coco_keypoints(tmp_path / "d.json")


# ---------------------------------------------------------------- models and training
def test_published_size_forward_pass():
    from irtrepro.keypoints.models import build_posenet

    for kind, ch in (("mobilenetv3", 1), ("vit", 3)):
        m = build_posenet(kind, in_ch=ch, deconv_ch=256, crop_hw=(256, 192)).eval()
        with torch.no_grad():
            z, hm = m(torch.zeros(1, ch, 256, 192))
        assert z.shape == (1, 96, 16, 12) and hm.shape == (1, 17, 64, 48)


@pytest.fixture(scope="module")
def tiny():
    from irtrepro.keypoints import train

    torch.manual_seed(0)
    cfg = train.KeypointConfig(crop_hw=(64, 48), latent_ch=16, deconv_ch=16, batch=8,
                               val_fraction=0.0, patience=100)
    clips = [pose.render_running_clip(170.0, n_frames=12, seed=1, subject_id="S01")]
    cs = train.crops_from_clips(clips, cfg.crop_hw)
    return train, cfg, cs


def test_few_training_steps_loss_falls(tiny):
    train, cfg, cs = tiny
    idx = np.flatnonzero(cs.detected)
    assert idx.size == len(cs)  # every synthetic frame has its runner detected
    tg, tw = train.heatmap_targets(cs, idx, cfg)
    teacher, h = train.train_supervised("cnn", cs.rgb[idx], tg, tw, cfg, rgb=True, lr=2e-3,
                                        epochs=4, seed=0, progress=False)
    assert h["train"][-1] < h["train"][0]
    z_t, hm_t = train.teacher_outputs(teacher, cs.rgb[idx])
    frozen = [p.detach().clone() for p in teacher.decoder.parameters()]
    student, hs = train.train_student("mobilenetv3", cs.thermal[idx], z_t, hm_t, teacher.decoder,
                                      cfg, beta=0.4, seed=0, progress=False, epochs=4)
    assert hs["train"][-1] < hs["train"][0]
    # the teacher's decoder is not changed by distillation
    for p, q in zip(frozen, student.decoder.parameters(), strict=False):
        assert torch.equal(p, q)


def test_cosine_schedule_warms_up_then_decays():
    from irtrepro.keypoints import train

    w = torch.nn.Parameter(torch.ones(3))
    hist = train._fit([w], lambda idx, tr: (w**2).sum(), 40, lr=0.1, batch=8, max_epochs=5,
                      patience=100, val_fraction=0.0, seed=0, desc="t", progress=False)
    lr = np.array(hist["lr"])
    assert lr[0] == pytest.approx(0.1, rel=0.05)  # warm-up over the first epoch reaches lr
    assert np.all(np.diff(lr) < 0) and lr[-1] == pytest.approx(0.002, rel=0.05)
    pub = train.KeypointConfig.published()
    assert (pub.crop_hw, pub.hm_hw, pub.sigma, pub.schedule) == ((256, 192), (64, 48), 2.0,
                                                                  "plateau")
    assert train.KeypointConfig().sigma == 1.0  # 16x12 maps: sigma floored at 1 heatmap px


def test_early_stopping_waits_out_the_minimum_epochs():
    """A validation loss that first rises (the heatmap plateau) stops a run at ``patience``
    epochs unless ``min_epochs`` holds it; the best epoch is restored either way."""
    from irtrepro.keypoints import train

    w = torch.nn.Parameter(torch.zeros(1))
    # validation loss per epoch: best at epoch 1, worse for 5 epochs, then better for good
    curve = iter([1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.5, 0.4, 0.3, 0.2])
    val_losses = []

    def loss_fn(idx, training):
        if training:
            return (w - 1.0).pow(2).sum()
        v = next(curve)
        val_losses.append(v)
        return torch.tensor(v)

    kw = dict(lr=0.01, batch=40, max_epochs=10, patience=4, val_fraction=0.0, seed=0,
              desc="t", progress=False, modules=(), val_rows=np.arange(40, 80))
    assert len(train._fit([w], loss_fn, 80, **kw)["val"]) == 5
    curve = iter([1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.5, 0.4, 0.3, 0.2])
    hist = train._fit([w], loss_fn, 80, min_epochs=8, **kw)
    assert len(hist["val"]) == 10 and int(np.argmin(hist["val"])) == 9
    assert train._min_epochs(train.KeypointConfig(), 80) == 20
    with pytest.raises(OptionError, match="min_epoch_share"):
        train._min_epochs(train.KeypointConfig(min_epoch_share=1.5), 80)


def test_predict_frames_bad_input(tiny):
    from irtrepro.errors import ModelError
    from irtrepro.keypoints.models import build_posenet

    train, cfg, _ = tiny
    model = build_posenet("mobilenetv3", in_ch=1, latent_ch=16, deconv_ch=16,
                          crop_hw=cfg.crop_hw).eval()
    empty = 21 + np.random.default_rng(0).normal(0, 0.1, (2, 60, 80))
    assert train.predict_frames(model, empty, cfg) == [[], []]  # flagged: nobody, no keypoints
    two, _ = pose.render_people_frame(["S01", "S02"], [-0.7, 0.7], seed=1)
    out = train.predict_frames(model, two, cfg, min_score=0.0)
    assert len(out) == 1 and len(out[0]) == 2
    assert out[0][0]["keypoints"].shape == (17, 3)
    # an untrained model is unsure: with a high threshold its keypoints are NaN, not guessed
    out = train.predict_frames(model, two, cfg, min_score=1e6)
    assert np.isnan(out[0][0]["keypoints"][:, :2]).all()
    with pytest.raises(ModelError, match="frame, y, x"):
        train.predict_frames(model, np.zeros((2, 2, 2, 2)), cfg)


# ---------------------------------------------------------------- gait
def test_cadence_from_true_ankles_within_two_steps():
    for cad in (150.0, 176.0):
        clip = pose.render_running_clip(cad, n_frames=200, fps=15.0, seed=4, rgb=False)
        got = gait.cadence_from_ankles(clip.keypoints, clip.fps)
        assert abs(got["cadence"] - cad) < 2.0, got
    nan = np.full((50, 17, 3), np.nan)
    got = gait.cadence_from_ankles(nan, 15.0)
    assert np.isnan(got["cadence"]) and "frames" in got["reason"]


def test_no_cadence_without_periodic_ankle_motion():
    # a person standing on the belt: keypoint jitter plus a slow sway (0.15 Hz, below the
    # cadence band). The spectrum still has a highest bin; it must not become a cadence.
    fps = 15.0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 150
        t = np.arange(n) / fps
        sway = 2 * np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 6))
        kp = np.full((n, 17, 3), np.nan)
        kp[:, gait.L_ANKLE, 1] = 50 + sway + rng.normal(0, 0.5, n)
        kp[:, gait.R_ANKLE, 1] = 51 + sway + rng.normal(0, 0.5, n)
        got = gait.cadence_from_ankles(kp, fps)
        assert np.isnan(got["cadence"]) and "no periodic ankle motion" in got["reason"], got
        assert got["periodicity"] < 0.3
    # the same clip with running ankles is measured, and periodic
    clip = pose.render_running_clip(170.0, n_frames=150, fps=fps, seed=1, rgb=False)
    got = gait.cadence_from_ankles(clip.keypoints, fps)
    assert got["periodicity"] > 0.9 and got["reason"] == ""


def test_cadence_when_the_model_confuses_the_legs():
    # Both predicted ankles follow the lower foot (what the 80x60 student does): the left-minus-
    # right difference is noise and only their common motion, at the step frequency, is
    # periodic. A difference-only estimator returns a noise peak; the right one the cadence.
    fps, n = 15.0, 120
    t = np.arange(n) / fps
    for seed, cad in ((0, 150.0), (1, 176.0), (2, 190.0)):
        rng = np.random.default_rng(seed)
        ph = rng.uniform(0, 2 * np.pi)
        w = 2 * np.pi * cad / 60  # step frequency, rad/s
        y = 50 + 3 * np.cos(w * t + ph) + 0.8 * np.cos(2 * w * t + 2 * ph)
        kp = np.full((n, 17, 3), np.nan)
        kp[:, gait.L_ANKLE, 1] = y + rng.normal(0, 0.3, n)
        kp[:, gait.R_ANKLE, 1] = y + 1.3 + rng.normal(0, 0.3, n)
        got = gait.cadence_from_ankles(kp, fps)
        assert abs(got["cadence"] - cad) < 2.0, (cad, got)
    # legs tracked but with a strong step-frequency bounce: stride at f, not 2 f or f / 2
    cad = 170.0
    f = cad / 120
    kp = np.full((n, 17, 3), np.nan)
    bounce = 2.0 * np.cos(4 * np.pi * f * t)
    kp[:, gait.L_ANKLE, 1] = 50 + 4 * np.cos(2 * np.pi * f * t) + bounce
    kp[:, gait.R_ANKLE, 1] = 50 - 4 * np.cos(2 * np.pi * f * t) + bounce
    assert abs(gait.cadence_from_ankles(kp, fps)["cadence"] - cad) < 2.0


def test_stance_swing_and_calf_points():
    clip = pose.render_running_clip(170.0, n_frames=150, fps=15.0, seed=5, rgb=False)
    df = gait.stance_swing(clip.keypoints, clip.fps)
    agree = np.mean(df.attrs["stance"] == clip.stance)
    assert agree > 0.7 and (df.n_cycles > 3).all()
    cp = gait.calf_points(clip.keypoints)
    left = cp[cp.side == "left"]
    d_knee = np.hypot(left.calf_x - left.knee_x, left.calf_y - left.knee_y)
    np.testing.assert_allclose(d_knee, left.shank_px / 3)
    assert np.all(np.minimum(left.knee_y, left.ankle_y) <= left.calf_y)
    roi = np.zeros((2, 60, 80), int)
    roi[:, 40:50, 30:36] = 1  # left calf on the image left: correct from behind
    roi[:, 40:50, 40:46] = 2
    kp = clip.keypoints[:2]
    assert gait.check_roi_sides(kp, roi)["ok"].tolist() == [True, True]
    assert gait.check_roi_sides(kp, np.where(roi > 0, 3 - roi, 0))["ok"].tolist() == [False, False]


def test_beta_sweep_table_and_figure(tmp_path):
    # a tiny leave-subjects-out experiment with a beta sweep: one row per (beta, fold), the
    # beta of the student row reuses that very model, and the figure plots the fold means
    import matplotlib

    matplotlib.use("Agg")
    from irtrepro.keypoints import train
    from irtrepro.plots.keypoints import plot_beta_sweep
    from irtrepro.synth import pose_corpus

    cfg = train.KeypointConfig(n_subjects=2, frames_per_subject=16, folds=2, latent_ch=16,
                               deconv_ch=16, batch=8, teacher_epochs=2, max_epochs=2,
                               val_fraction=0.0, patience=100)
    res = pose_corpus.run_experiment(cfg, students=("mobilenetv3",), baseline=False,
                                     betas=(0.0, 0.4, 1.0), progress=False)
    b = res["beta"]
    assert sorted(b.groupby(["beta", "fold"]).size().index.tolist()) == \
        [(x, f) for x in (0.0, 0.4, 1.0) for f in sorted(b["fold"].unique())]
    assert b["fold"].nunique() == 2
    stud = res["table"][res["table"]["model"].str.contains("student")].sort_values("fold")
    same = b[b["beta"] == 0.4].sort_values("fold")
    np.testing.assert_allclose(same["AP"].to_numpy(), stud["AP"].to_numpy())
    assert b[["AP", "AP50", "AP75"]].apply(lambda c: c.between(0, 1)).all().all()
    fig = plot_beta_sweep(b, beta_default=0.4)
    ax = fig.axes[0]
    assert "beta" in ax.get_xlabel() and "AP" in ax.get_ylabel()
    mean_line = [ln for ln in ax.get_lines() if ln.get_label() == "AP"][0]
    np.testing.assert_allclose(mean_line.get_ydata(), b.groupby("beta")["AP"].mean().to_numpy())
    fig.savefig(tmp_path / "beta.png")
    assert (tmp_path / "beta.png").stat().st_size > 1000


def test_folds_in_worker_processes_equal_the_serial_run():
    # two folds trained in two single-threaded processes give the very rows of a serial
    # single-threaded run (each fold has its own seed), and the models come back
    from irtrepro.keypoints import train
    from irtrepro.synth import pose_corpus

    cfg = train.KeypointConfig(n_subjects=2, frames_per_subject=12, folds=2, latent_ch=16,
                               deconv_ch=16, batch=8, teacher_epochs=2, max_epochs=1,
                               val_fraction=0.0, patience=100)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = pose_corpus.run_experiment(cfg, progress=False, keep_models=True)
    finally:
        torch.set_num_threads(threads)
    parallel = train.run_experiment(cfg, progress=False, keep_models=True, workers=2,
                                    corpus=serial["corpus"])
    cols = ["model", "fold", "test_subjects", "AP", "AP50", "AP75", "AR", "params"]
    pd.testing.assert_frame_equal(serial["table"][cols], parallel["table"][cols])
    assert set(parallel["models"]) == {"teacher", "student mobilenetv3", "baseline"}
    assert "folds (parallel, wall)" in parallel["timings"]
