"""Scoring a model against sparse annotations: ``irtrepro segment evaluate``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.vision.test_train_seg_sparse import ANNOTATED, SUBJECTS, TINY, _data, study  # noqa: F401

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.requires_torch


@pytest.fixture(scope="module")
def model_file(study, tmp_path_factory):  # noqa: F811
    from irtrepro.vision.sparse import train_model

    m = train_model(_data(study, subjects=SUBJECTS[:2]), val=["S02"], seed=0, threads=1,
                    device="cpu", steps=60, eval_every=30, lr=5e-3, **TINY)
    return m.save(tmp_path_factory.mktemp("model") / "model.pt")


def _items(study, subjects):  # noqa: F811
    from irtrepro.vision.sparse import AnnotatedRecording

    return [AnnotatedRecording(study[s]["masks"], study[s]["recording"], s) for s in subjects]


def test_scores_from_counts_definitions():
    from irtrepro.vision.scoring import scores_from_counts

    s = scores_from_counts([30, 0, 0], [40, 0, 10], [50, 0, 0])
    np.testing.assert_allclose(s["dice"][0], 60 / 90)
    np.testing.assert_allclose(s["iou"][0], 30 / 60)
    np.testing.assert_allclose([s["precision"][0], s["recall"][0]], [30 / 50, 30 / 40])
    assert np.isnan(s["dice"][1])                     # absent from both: NaN, never 0 or 1
    assert s["dice"][2] == 0 and np.isnan(s["precision"][2])


def test_pooled_scores_equal_an_independent_count_with_ignore_left_out(study, model_file):  # noqa: F811
    """The pooled table equals segmentation_scores on the non-ignored pixels of every frame,
    with predictions made independently here, after planting ignore pixels."""
    from irtrepro.vision.evaluate import ROI_LABELS, VESSEL_LABELS, segmentation_scores
    from irtrepro.vision.infer import predict_masks
    from irtrepro.vision.models import SegmentationModel
    from irtrepro.vision.scoring import evaluate_model
    from irtrepro.vision.sparse import SparseFrames

    items = _items(study, ["S03"])
    data = SparseFrames(items, cache_mb=0)
    m = SegmentationModel.load(model_file)
    f = np.stack([data.frame(i) for i in range(len(data))])
    tr, tv, ig = (np.stack([data.labels(i)[j] for i in range(len(data))]) for j in range(3))
    pr, pv = predict_masks(f, m.roi, m.vessels, dev=torch.device("cpu"), batch_size=4)
    ev = evaluate_model(model_file, items, robustness_frames=0, threads=1, device="cpu")
    keep = ig == 0
    ref = pd.concat([segmentation_scores(tr[keep], pr[keep], labels=ROI_LABELS),
                     segmentation_scores(np.where(tr > 0, tv, 0)[keep], pv[keep],
                                         labels=VESSEL_LABELS)], ignore_index=True)
    for col in ("dice", "iou", "precision", "recall", "n_true", "n_pred"):
        np.testing.assert_allclose(ev.scores[col].to_numpy(float), ref[col].to_numpy(float),
                                   rtol=1e-12, err_msg=col)
    # the held-out subject is segmented far better than an all-background prediction (Dice 0)
    calves = ev.scores.set_index("name").loc[["left_calf", "right_calf"], "dice"]
    assert (calves > 0.6).all(), calves                  # measured: 0.81, 0.80
    assert ev.info["frames"] == len(ANNOTATED) and ev.info["subjects"] == ["S03"]
    assert "trained_on_evaluated_subjects" not in ev.info


def test_ignore_pixels_change_the_counts(study, model_file, tmp_path):  # noqa: F811
    """Marking the whole left half of every frame ignore removes its pixels from the counts."""
    import xarray as xr

    from irtrepro.io.annotations import open_annotations, write_annotations
    from irtrepro.vision.scoring import evaluate_model
    from irtrepro.vision.sparse import AnnotatedRecording

    ds = open_annotations(study["S03"]["masks"]).load()
    ig = np.zeros(ds["ignore"].shape, np.uint8)
    ig[:, :, :80] = 1
    ds2 = ds.copy()
    ds2["ignore"] = xr.DataArray(ig, dims=ds["ignore"].dims, attrs=ds["ignore"].attrs)
    masks = write_annotations(tmp_path / "ign.zarr", ds2)
    ev = evaluate_model(model_file, [AnnotatedRecording(masks, study["S03"]["recording"],
                                                        "S03")], robustness_frames=0,
                        threads=1, device="cpu")
    roi = ds["roi"].values
    n_left = int(((roi == 1) & (ig == 0)).sum())
    n_right = int(((roi == 2) & (ig == 0)).sum())
    got = ev.scores.set_index("name")["n_true"]
    assert got["left_calf"] == n_left and got["right_calf"] == n_right
    assert n_left < (roi == 1).sum()                 # the planted ignore did remove pixels


def test_perturbations_do_what_they_say():
    from irtrepro.vision.evaluate import PERTURBATIONS, perturb

    rng = np.random.default_rng(0)
    f = rng.normal(30, 1, (2, 12, 16)).astype(np.float32)
    r = np.zeros(f.shape, np.uint8)
    r[:, 3:9, 4:8] = 1
    v = np.zeros_like(r)
    g, *_ = perturb(f, r, v, "offset_degC", 0.5, rng)
    np.testing.assert_allclose(g - f, 0.5, atol=1e-5)
    g, *_ = perturb(f, r, v, "contrast", 1.1, rng)
    med = np.median(f.reshape(2, -1), axis=1)[:, None, None]
    np.testing.assert_allclose(g - med, 1.1 * (f - med), atol=1e-4)
    g, *_ = perturb(f, r, v, "ambient_offset_degC", 3.0, rng)
    assert np.allclose(g[r == 1], f[r == 1]) and np.allclose(g[r == 0] - f[r == 0], 3.0)
    assert {"noise_sd_degC", "blur_sigma_px", "offset_degC", "contrast"} <= set(PERTURBATIONS)
    assert PERTURBATIONS["offset_degC"] == [-0.5, 0.5]
    assert PERTURBATIONS["contrast"] == [0.9, 1.1]


def test_cli_segment_evaluate_writes_tables_figure_and_strict_json(study, model_file,  # noqa: F811
                                                                   tmp_path, caplog):
    from irtrepro.cli import main

    out = tmp_path / "eval"
    args = ["segment", "evaluate", str(model_file)]
    for s in ("S01", "S03"):
        args += [str(study[s]["masks"]), str(study[s]["recording"])]
    args += ["--out", str(out), "--subject", "S01", "--subject", "S03",
             "--robustness-frames", "4", "--threads", "1", "--device", "cpu"]
    with caplog.at_level("WARNING", logger="irtrepro"):
        assert main(args) == 0
    for name in ("scores.csv", "scores_by_subject.csv", "metric_errors.csv", "robustness.csv",
                 "evaluation.json", "evaluation.png"):
        assert (out / name).is_file(), name
    info = json.loads((out / "evaluation.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert info["trained_on_evaluated_subjects"] == ["S01"]   # S01 was a training subject
    assert "not held-out" in caplog.text
    assert len(info["model_sha256"]) == 64 and info["frames"] == 2 * len(ANNOTATED)
    sc = pd.read_csv(out / "scores.csv")
    assert list(sc["name"]) == ["left_calf", "right_calf", "vein", "perforator"]
    assert (sc["n_subjects"] == 2).all() and sc["subject_sd"].notna().all()
    by_dice = pd.read_csv(out / "scores_by_subject.csv").pivot(index="subject", columns="name",
                                                               values="dice")
    d = by_dice["left_calf"].to_numpy()               # t(0.975, 1 df) = 12.706
    half = 12.706205 * d.std(ddof=1) / np.sqrt(2)
    row = sc.set_index("name").loc["left_calf"]
    np.testing.assert_allclose([row.subject_ci95_low, row.subject_ci95_high],
                               [d.mean() - half, d.mean() + half], rtol=1e-6)
    by = pd.read_csv(out / "scores_by_subject.csv")
    assert set(by["subject"]) == {"S01", "S03"}
    me = pd.read_csv(out / "metric_errors.csv")
    assert set(me["metric"]) >= {"calf_mean", "tnv_mean", "tp_mean", "tv_mean"}
    assert np.isfinite(me.set_index("metric").loc["calf_mean", "median_abs_error"])
    rob = pd.read_csv(out / "robustness.csv")
    assert {"offset_degC", "contrast", "noise_sd_degC", "blur_sigma_px"} <= set(
        rob["perturbation"])
    # a wrong number of paths and a missing --out are named errors (exit code 2)
    assert main(["segment", "evaluate", str(model_file), str(study["S01"]["masks"])]) == 2
    assert main(["segment", "evaluate", str(model_file), str(study["S01"]["masks"]),
                 str(study["S01"]["recording"])]) == 2
