"""A trained model file reused: `extract --model`, `report --model`, refusal of a wrong one."""

from __future__ import annotations

import json
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.requires_torch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two subjects with ground-truth masks (the model is trained on them), a third study of
    two subjects with masks and one without, the model file and a wrong-classes copy."""
    from tests.vision.tiny_model import train_tiny_model, write_session, write_wrong_classes

    root = tmp_path_factory.mktemp("use_model")
    train = {s: write_session(root / "train", s, seed=k) for k, s in enumerate(("L01", "L02"))}
    model = root / "lab_unet.pt"
    m = train_tiny_model(model, train)
    study = {"S01": write_session(root / "study", "S01", seed=5),
             "S02": write_session(root / "study", "S02", seed=6),
             "S03": write_session(root / "study", "S03", seed=7, masks=False)}
    bad = write_wrong_classes(model, root / "two_classes.pt")
    return SimpleNamespace(root=root, model=model, m=m, study=study, bad=bad, train=train)


def test_extract_with_model_segments_the_store_first(tiny, tmp_path, capsys):
    from irtrepro.cli import main
    from irtrepro.io.thermal import open_frame_store, write_frames
    from irtrepro.vision.infer import predict_masks

    truth = tiny.study["S03"]["truth"]
    store = write_frames(tmp_path / "rec.zarr", truth["frames"], chunk_frames=4, progress=False)
    out = tmp_path / "x.nc"
    # no masks and no model: the error says both ways out, and nothing is written
    assert main(["extract", str(store), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no 'roi' mask" in err and "irtrepro segment" in err and "--model" in err
    assert not out.exists()
    assert main(["extract", str(store), "--model", str(tiny.model), "--out", str(out),
                 "--per-frame"]) == 0
    ds = open_frame_store(store)
    roi, ves = predict_masks(ds["frames"].values, tiny.m.roi, tiny.m.vessels,
                             dev=torch.device("cpu"))
    np.testing.assert_array_equal(ds["roi"].values, roi)   # the model's masks, in the store
    np.testing.assert_array_equal(ds["vessels"].values, ves)
    import xarray as xr

    from irtrepro.features.extract import extract_session

    # the netCDF holds the metrics of the frames under the model's masks
    expected = extract_session(ds["frames"], roi, ves, per_frame=True)
    with xr.open_dataset(out, engine="h5netcdf") as x:
        assert set(x.data_vars) == set(expected.data_vars)
        np.testing.assert_array_equal(x["calf_area"].sel(side="left").values,
                                      (roi == 1).sum((1, 2)))
        xr.testing.assert_allclose(x["tnv_mean"].load(), expected["tnv_mean"])
        assert np.isfinite(x["tnv_mean"].values).any()


def test_extract_refuses_a_model_of_other_classes_by_name(tiny, tmp_path, capsys):
    from irtrepro.cli import main
    from irtrepro.io.thermal import open_frame_store, write_frames

    truth = tiny.study["S01"]["truth"]
    store = write_frames(tmp_path / "rec.zarr", truth["frames"], chunk_frames=4, progress=False)
    out = tmp_path / "x.nc"
    assert main(["extract", str(store), "--model", str(tiny.bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "two_classes.pt" in err and "'roi.classes'" in err
    assert not out.exists() and "roi" not in open_frame_store(store)
    # --model writes its masks into the store: another mask store alongside is refused
    args = ["extract", str(store), "--model", str(tiny.model), "--masks", str(store)]
    assert main([*args, "--out", str(out)]) == 2
    assert "--masks" in capsys.readouterr().err and not out.exists()


def _manifest(tiny, sessions=None):
    """What the vision part reads of a manifest: sessions with thermal (and mask) files, the
    thermal entry's clock (the stores have no absolute time: ``offset_s``), the grid."""
    def entry(subject, s):
        files = {"thermal": SimpleNamespace(path=s["frames"], format="zarr", sha256=None,
                                            options={"offset_s": 0.0}, where=subject)}
        if s["masks"] is not None:
            files["thermal_masks"] = SimpleNamespace(path=s["masks"])
        return SimpleNamespace(subject=subject, session="CON", files=files, start_time=None,
                               protocol="CON")

    sessions = tiny.study if sessions is None else sessions
    return SimpleNamespace(sessions=[entry(k, s) for k, s in sessions.items()],
                           subjects=[SimpleNamespace(id=k) for k in sessions],
                           protocols={"CON": SimpleNamespace(duration_s=3600.0)}, grid_step=1.0)


def test_report_vision_part_with_a_model_trains_nothing_and_scores_every_truth_subject(
        tiny, tmp_path, monkeypatch):
    import irtrepro.report.parts.vision as part_mod
    import irtrepro.vision.pipeline as pipe
    from irtrepro.manifest import sha256_path

    def never(*a, **k):
        raise AssertionError("trained or keyed a model although a model file was given")

    for mod, name in ((pipe, "train_models"), (pipe, "training_arrays"),
                      (part_mod, "model_key")):
        monkeypatch.setattr(mod, name, never)
    part = part_mod.run_for_report(_manifest(tiny), tmp_path / "cache", n_workers=1,
                                   progress=False, model=tiny.model)
    named = (f"model lab_unet.pt (card data_hash {tiny.m.card['data_hash'][:12]}), "
             "not trained on this study")
    for table in ("segmentation_quality", "metric_error", "robustness"):
        assert named in part.tables[table][1], table
    assert "held-out subjects ['S01', 'S02']" in part.tables["segmentation_quality"][1]
    # pooled over every frame of both truth subjects: all their pixels are counted
    q = part.tables["segmentation_quality"][0].set_index(["model", "name"])
    n_roi = sum(int((tiny.study[s]["truth"].roi.values == 1).sum()) for s in ("S01", "S02"))
    assert q.loc[("roi", "left_calf"), "n_true"] == n_roi
    notes = " ".join(part.notes)
    assert "lab_unet.pt" in notes and sha256_path(tiny.model) in notes
    assert "['L01', 'L02']" in notes and "validation Dice" in notes
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pt"))
    # the session without masks is segmented and its metrics extracted too (the 3-step
    # model's calves fail the frame-validity checks, so the values themselves are NaN)
    sv = part.study_vars
    assert set(sv.subject.values) == {"S01", "S02", "S03"} and "tnv" in sv
    assert not any("failed" in n for n in part.notes)
    assert json.loads(sv.attrs["vision_models"])["model"] == "lab_unet.pt"
    # the segmentation-uncertainty pass: every session re-segmented at sampled seconds, and
    # the truth subjects measured under their masks too
    seg = sv["tnv_seg"]
    assert list(seg.segmentation.values) == ["as segmented", "flip", "shift+1", "ground truth"]
    assert seg.dims == ("subject", "session", "segmentation", "time")
    assert "segmentation_uncertainty" in part.tables
    assert part.timings["segmentation_uncertainty"] > 0
    # per session: the model file and its hash, the source and the clock it was placed by
    one = sv.sel(subject="S03", session="CON")
    assert str(one.thermal_model.values) == str(tiny.model)
    assert str(one.thermal_model_sha256.values) == sha256_path(tiny.model)
    assert str(one.thermal_sha256.values) == sha256_path(tiny.study["S03"]["frames"])
    assert str(one.thermal_clock_origin.values) == "offset_s"
    assert float(one.thermal_frames_read) == tiny.study["S03"]["truth"].sizes["frame"]
    rows = {(r["subject"], r["stream"]) for r in json.loads(sv.attrs["clock"])}
    assert rows == {("S01", "thermal"), ("S02", "thermal"), ("S03", "thermal")}
    # the clock check: a row per session, here with nothing to check against
    check = part.tables["clock_check"][0]
    assert len(check) == 3 and set(check.reason) == {"no hr file to check against"}


def _tiny_manifest(tmp_path, models: str = "") -> str:
    p = tmp_path / "m.yaml"
    p.write_text(textwrap.dedent("""
        study: {name: t}
        subjects:
          - id: S01
            viat: 15.0
        """) + models)
    return str(p)


def test_report_refuses_a_model_of_other_classes_by_name(tiny, tmp_path, capsys):
    from irtrepro.cli import main

    args = ["report", "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c")]
    assert main([*args, "--manifest", _tiny_manifest(tmp_path), "--model", str(tiny.bad)]) == 2
    err = capsys.readouterr().err
    assert "two_classes.pt" in err and "'roi.classes'" in err
    assert not (tmp_path / "r" / "index.html").exists()
    # the same file named by the manifest is refused the same way
    man = _tiny_manifest(tmp_path, f"models:\n  segmentation: {tiny.bad}\n")
    assert main([*args, "--manifest", man]) == 2
    assert "'roi.classes'" in capsys.readouterr().err


def test_model_option_wins_over_the_manifest(tiny, tmp_path):
    from irtrepro.manifest import load_manifest, sha256_path
    from irtrepro.report.run import MODEL_PARTS, _segmentation_model

    m = load_manifest(_tiny_manifest(tmp_path, f"models:\n  segmentation: {tiny.bad}\n"))
    got = _segmentation_model(m, {"vision": {"model": str(tiny.model)}}, MODEL_PARTS)
    assert got == {"path": str(tiny.model.resolve()), "sha256": sha256_path(tiny.model),
                   "from": "--model"}
    assert _segmentation_model(m, {}, ("irtrepro.report.parts.breathing",)) is None
    assert _segmentation_model(load_manifest(_tiny_manifest(tmp_path)), {}, MODEL_PARTS) is None


def test_report_vision_part_without_a_model_still_trains(tiny, tmp_path, monkeypatch):
    """The default path is unchanged: it trains (here 3 steps) on the training subjects and
    its captions name them."""
    import pandas as pd

    import irtrepro.report.parts.vision as part_mod
    import irtrepro.vision.evaluate as ev

    # the perturbed re-segmentation is not what this test is about, and costs seconds
    monkeypatch.setattr(ev, "robustness_table", lambda *a, **k: pd.DataFrame())

    tiny_net = {"max_steps": 3, "eval_every": 3, "batch_size": 2, "decoder_channels": (8, 8, 4)}
    # three subjects to train on (one of them validates), one held out
    sessions = {**tiny.train, **{k: tiny.study[k] for k in ("S01", "S02")}}
    part = part_mod.run_for_report(_manifest(tiny, sessions), tmp_path / "cache", n_workers=1,
                                   progress=False, n_heldout=1, max_train_frames=12,
                                   settings={"roi": tiny_net, "vessels": tiny_net})
    cap = part.tables["segmentation_quality"][1]
    held = json.loads(part.study_vars.attrs["vision_models"])["held_out"]
    train = sorted(set(sessions) - set(held))
    assert cap == (f"Per-class pixel scores pooled over all frames of the held-out subjects "
                   f"{held} (models trained on {train}); Dice = F1.")
    assert "not trained on this study" not in part.tables["metric_error"][1]
    assert part.tables["robustness"][1].endswith("(masks scaled alike).")
    assert any((tmp_path / "cache").rglob("*.pt"))          # the trained models are cached


def test_segment_records_its_model_for_extract_and_build(tiny, tmp_path, capsys):
    from irtrepro.cli import main
    from irtrepro.commands.extract import masks_model
    from irtrepro.errors import ModelError
    from irtrepro.io.thermal import open_frame_store, write_masks
    from irtrepro.manifest import load_manifest, sha256_path
    from irtrepro.recordings import frame_store
    from irtrepro.study import open_study
    from irtrepro.synth.lab import LabConfig, generate_lab_study
    from irtrepro.synth.physiology import SynthConfig
    from irtrepro.vision.infer import mask_provenance, model_provenance

    cfg = LabConfig(physiology=SynthConfig(n_subjects=1, sessions=(("CON", "CON", 1),)),
                    shape=(32, 32), frame_interval_s=30.0, duration_s=240.0, lead_s=60.0,
                    annotated_per_subject=0, kinds=("hr",))
    mpath = generate_lab_study(tmp_path / "lab", cfg, n_jobs=1)
    fs = frame_store(load_manifest(mpath).sessions[0].files["thermal"], tmp_path / "frames")
    sha = sha256_path(tiny.model)
    assert main(["segment", str(fs.path), "--model", str(tiny.model)]) == 0
    assert mask_provenance(fs.path) == {"model": str(tiny.model), "model_sha256": sha}
    out = tmp_path / "metrics" / "sub-S01_ses-CON.nc"
    assert main(["extract", str(fs.path), "--out", str(out)]) == 0
    x = xr.load_dataset(out, engine="h5netcdf")
    assert (x.attrs["model"], x.attrs["model_sha256"]) == (str(tiny.model), sha)
    target = tmp_path / "study.nc"
    assert main(["build", "--manifest", str(mpath), "--out", str(target),
                 "--metrics", str(out)]) == 0
    st = open_study(target)
    assert str(st.thermal_model_sha256.sel(subject="S01", session="CON").values) == sha
    # masks of another model than the one given to extract: refused, both named
    other = model_provenance(tiny.bad)
    with pytest.raises(ModelError) as exc:
        masks_model(fs.path, other)
    for part in (str(tiny.model), sha, str(tiny.bad), other["model_sha256"]):
        assert part in str(exc.value)
    assert masks_model(fs.path, model_provenance(tiny.model))["model_sha256"] == sha
    # a mask rewritten without a record: the masks' model is unknown, the netCDF names none
    write_masks(fs.path, roi=open_frame_store(fs.path)["roi"].values)
    assert mask_provenance(fs.path) == {} and masks_model(fs.path, other) == other
    assert main(["extract", str(fs.path), "--out", str(out)]) == 0
    assert "model_sha256" not in xr.load_dataset(out, engine="h5netcdf").attrs
