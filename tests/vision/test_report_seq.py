"""The report's vision part on a manifest whose thermal entries are FLIR SEQ files: each file
converted once into the frames cache, its metrics placed on the camera's own clock, with the
source, model and clock of every session in the Study variables."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.requires_torch
STEPS = 150


def test_vision_part_reads_seq_entries_through_the_frames_cache(tmp_path, monkeypatch):
    import pandas as pd

    import irtrepro.io.convert as conv
    import irtrepro.vision.evaluate as ev
    from irtrepro.manifest import load_manifest, sha256_path
    from irtrepro.report.parts.vision import run_for_report
    from irtrepro.synth.lab import LabConfig, generate_lab_study
    from irtrepro.synth.physiology import SynthConfig
    from tests.vision.tiny_model import train_tiny_model, write_session

    monkeypatch.setattr(ev, "robustness_table", lambda *a, **k: pd.DataFrame())
    model = tmp_path / "unet.pt"
    train_tiny_model(model, {s: write_session(tmp_path / "train", s, seed=k)
                             for k, s in enumerate(("L01", "L02"))})
    cfg = LabConfig(physiology=SynthConfig(n_subjects=2, sessions=(("CON", "CON", 1),)),
                    shape=(48, 64), frame_interval_s=30.0, duration_s=240.0, lead_s=60.0,
                    annotated_per_subject=0, kinds=("hr",))
    m = load_manifest(generate_lab_study(tmp_path / "lab", cfg, n_jobs=1))
    assert {s.files["thermal"].format for s in m.sessions} == {"flir-seq"}
    frames = tmp_path / "frames"
    part = run_for_report(m, tmp_path / "cache", model=model, n_workers=1, progress=False,
                          frames_cache=frames)
    assert not [n for n in part.notes if "failed" in n or "left out" in n], part.notes
    stores = sorted(frames.glob("*.zarr"))
    assert len(stores) == 2
    for s in m.sessions:
        assert any(s.files["thermal"].sha256[:16] in p.name for p in stores)
    sv = part.study_vars
    assert "tp" in sv and set(sv.subject.values) == {"S01", "S02"}
    for s in m.sessions:
        one = sv.sel(subject=s.subject, session=s.session)
        assert str(one.thermal_source.values) == str(s.files["thermal"].path)
        assert str(one.thermal_sha256.values) == s.files["thermal"].sha256
        assert str(one.thermal_model_sha256.values) == sha256_path(model)
        assert str(one.thermal_clock_origin.values) == "file timestamps"
        # 11 frames from true -60 s every 30 s; the camera's +47 s puts the first at -13 s,
        # before exercise start, and the other 10 on the grid
        assert int(one.thermal_frames_read) == 11
        assert int(one.thermal_frames_outside_grid) == 1
        assert int(one.thermal_frames_placed) + int(one.thermal_frames_invalid) == 10
    assert {r["stream"] for r in json.loads(sv.attrs["clock"])} == {"thermal"}
    check = part.tables["clock_check"][0]
    assert list(check.subject) == ["S01", "S02"] and (check.origin == "file timestamps").all()
    # a second run decodes nothing
    monkeypatch.setattr(conv, "convert_recording",
                        lambda *a, **k: pytest.fail("a SEQ file was converted twice"))
    again = run_for_report(m, tmp_path / "cache", model=model, n_workers=1, progress=False,
                           frames_cache=frames)
    assert int(again.study_vars.thermal_frames_read.sel(subject="S01", session="CON")) == 11


@pytest.mark.slow
# 300 s of exercise filmed: no session reaches the recovery phase, whose ICCs are NaN
@pytest.mark.filterwarnings("ignore:the ICC cannot be computed:irtrepro.errors.IrtreproWarning")
def test_report_runs_on_a_seq_manifest(tmp_path):
    """``make report`` on SEQ entries: no step fails, every stream's clock is in the Study,
    and the Study holds thermal metrics from the model's masks."""
    import numpy as np

    from irtrepro.report.run import run_report
    from irtrepro.study import open_study
    from irtrepro.synth.lab import LabConfig, generate_lab_study
    from irtrepro.synth.physiology import SynthConfig
    from tests.vision.tiny_model import train_tiny_model, write_session

    model = tmp_path / "unet.pt"
    # enough steps for masks that pass the frame checks (3 steps: every frame invalid)
    train_tiny_model(model, {s: write_session(tmp_path / "train", s, seed=k)
                             for k, s in enumerate(("L01", "L02"))}, steps=STEPS)
    cfg = LabConfig(physiology=SynthConfig(n_subjects=3, sessions=(("CON", "CON", 1),
                                                                    ("SI", "SI", 2))),
                    shape=(48, 64), frame_interval_s=30.0, duration_s=300.0, lead_s=60.0,
                    annotated_per_subject=0)
    mp = generate_lab_study(tmp_path / "lab", cfg, n_jobs=1)
    run_report(mp, tmp_path / "out", cache_dir=tmp_path / "cache",
               study_path=tmp_path / "study.nc", parts=("irtrepro.report.parts.vision",),
               settings={"vision": {"model": str(model), "n_workers": 1}})
    info = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert info["failures"] == []
    st = open_study(tmp_path / "study.nc")
    assert {r["stream"] for r in json.loads(st.attrs["clock"])} == {"cpet", "hr", "core",
                                                                   "thermal"}
    assert (st.thermal_clock_origin.values == "file timestamps").all()
    assert (st.thermal_frames_read.values == 13).all()
    assert (tmp_path / "out" / "tables" / "vision_clock_check.csv").is_file()
    placed = st.thermal_frames_placed.values
    assert (placed > 0).all(), placed
    # every session has skin temperature on the session clock (TNV: the calves less the
    # vessels; the tiny model finds calves, not the few-pixel perforators that TP needs)
    tnv = st["tnv"].transpose("subject", "session", ...).values.reshape(placed.size, -1)
    assert np.isfinite(tnv).any(axis=1).all()


def test_vision_part_on_two_workers_equals_serial(tmp_path, monkeypatch):
    """``vision: {scheduler: local:2}``: the same Study variables and tables as a serial run."""
    import pandas as pd
    import xarray as xr

    import irtrepro.vision.evaluate as ev
    from irtrepro.manifest import load_manifest
    from irtrepro.report.parts.vision import run_for_report
    from irtrepro.synth.lab import LabConfig, generate_lab_study
    from irtrepro.synth.physiology import SynthConfig
    from tests.vision.tiny_model import train_tiny_model, write_session

    monkeypatch.setattr(ev, "robustness_table", lambda *a, **k: pd.DataFrame())
    model = tmp_path / "unet.pt"
    train_tiny_model(model, {s: write_session(tmp_path / "train", s, seed=k)
                             for k, s in enumerate(("L01", "L02"))}, steps=STEPS)
    cfg = LabConfig(physiology=SynthConfig(n_subjects=2, sessions=(("CON", "CON", 1),)),
                    shape=(48, 64), frame_interval_s=30.0, duration_s=240.0, lead_s=60.0,
                    annotated_per_subject=0, kinds=("hr",))
    m = load_manifest(generate_lab_study(tmp_path / "lab", cfg, n_jobs=1))
    runs = {s: run_for_report(m, tmp_path / f"cache-{k}", model=model, n_workers=1,
                              progress=False, frames_cache=tmp_path / "frames", scheduler=s)
            for k, s in enumerate((None, "local:2"))}
    serial, par = runs[None], runs["local:2"]
    assert int(serial.study_vars.thermal_frames_placed.sum()) > 0
    xr.testing.assert_identical(serial.study_vars, par.study_vars)
    pd.testing.assert_frame_equal(serial.tables["clock_check"][0], par.tables["clock_check"][0])
