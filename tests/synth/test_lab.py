"""The lab-shaped study: SEQ files through the manifest's reader, a planted camera clock,
sparse LabelMe/COCO annotations that import onto the recording's frames."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from scipy import ndimage

from irtrepro.errors import OptionError
from irtrepro.io import read, read_annotations
from irtrepro.io.zarr_store import open_frame_store
from irtrepro.manifest import load_manifest, verify
from irtrepro.synth.lab import LabConfig, generate_lab_study
from irtrepro.synth.physiology import SynthConfig

CFG = LabConfig(physiology=SynthConfig(n_subjects=2, sessions=(("CON", "CON", 1),
                                                                ("SI", "SI", 2))),
                shape=(60, 80), frame_interval_s=60.0, duration_s=180.0, lead_s=60.0,
                clock_offset_s=47.0, clock_drift_ppm=400.0, annotated_per_subject=5,
                kinds=("hr",))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    path = generate_lab_study(out, CFG, n_jobs=1)
    truth = json.loads((out / "derivatives" / "truth" / "lab.json").read_text())
    return load_manifest(path), truth, out


def test_manifest_thermal_entries_are_seq_files(lab):
    m, truth, _ = lab
    verify(m)
    assert m.generator["name"] == "irtrepro.synth.lab"
    assert m.generator["config"]["clock_offset_s"] == 47.0   # what was planted, said
    assert len(m.sessions) == 4
    for s in m.sessions:
        assert set(s.files) == {"hr", "thermal"}
        fe = s.files["thermal"]
        assert fe.format == "flir-seq" and fe.path.suffix == ".seq"
        da = read("thermal", fe.path, fe.format, **fe.options)
        assert da.shape[1:] == (60, 80)
        # frames every 60 s from 60 s before the treadmill to 180 s into exercise
        assert da.sizes["frame"] == 5


def test_planted_camera_clock_is_in_the_files(lab):
    m, truth, _ = lab
    tz = dt.timezone(dt.timedelta(minutes=truth["camera_clock"]["utc_offset_minutes"]))
    for s, st in zip(m.sessions, truth["sessions"], strict=True):
        assert (st["subject"], st["session"]) == (s.subject, s.session)
        da = read("thermal", s.files["thermal"].path, "flir-seq")
        t_true = np.asarray(st["frame_time_true_s"])
        np.testing.assert_array_equal(t_true, [-60, 0, 60, 120, 180])
        # the file's own clock: exercise start + true time + 47 s + 400 ppm of elapsed time
        start = dt.datetime.fromisoformat(da.attrs["start_time"])
        exercise = s.start_time.replace(tzinfo=tz)
        first = (start - exercise).total_seconds()
        assert first == pytest.approx(-60 + 47.0, abs=5e-4)
        expected = (t_true - t_true[0]) * (1 + 400e-6)
        np.testing.assert_allclose(da.time.values, expected, atol=5e-4 + 1e-9)
        # drift is visible: the last frame is 0.096 s later than the true clock says
        assert da.time.values[-1] - (t_true[-1] - t_true[0]) == pytest.approx(0.096, abs=1e-3)


def _boundary(codes: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds more than one class."""
    return ndimage.maximum_filter(codes, 3) != ndimage.minimum_filter(codes, 3)


@pytest.mark.parametrize("tool", ["labelme", "coco"])
def test_annotations_import_onto_the_recording(lab, tool):
    m, truth, out = lab
    labels = out / truth["labels"]
    per_subject: dict[str, int] = {}
    for s, st in zip(m.sessions, truth["sessions"], strict=True):
        per_subject[s.subject] = per_subject.get(s.subject, 0) + len(st["annotated_frames"])
        if not st["annotated_frames"]:
            continue
        ds = read_annotations(out / st[tool], labels=labels, frames="name")
        np.testing.assert_array_equal(ds.frame.values, st["annotated_frames"])
        da = read("thermal", s.files["thermal"].path, "flir-seq")
        assert set(ds.frame.values) <= set(da.frame_index.values.tolist())
        assert (ds.sizes["y"], ds.sizes["x"]) == da.shape[1:]
        gt = open_frame_store(out / st["masks"]).isel(frame=ds.frame.values)
        for layer in ("roi", "vessels"):
            a, b = ds[layer].values, gt[layer].values
            wrong = a != b
            assert wrong.mean() < 0.02, (tool, layer, wrong.mean())
            # every disagreement is a boundary pixel of the generator's mask
            edges = np.stack([_boundary(f) for f in b])
            assert not (wrong & ~edges).any(), (tool, layer)
        assert (ds.roi.values == 1).any() and (ds.vessels.values == 1).any()
    assert per_subject == {"S01": 5, "S02": 5}


def test_regenerates_byte_identical_for_one_subject(lab, tmp_path):
    from irtrepro.report.pipeline import regenerate

    m, _, _ = lab
    assert regenerate(m, tmp_path / "again", subjects=["S02"]) == []


def test_too_many_annotated_frames_is_named(tmp_path):
    cfg = LabConfig(physiology=CFG.physiology, shape=(40, 40), duration_s=60.0,
                    annotated_per_subject=99, kinds=())
    with pytest.raises(OptionError, match="annotated_per_subject=99 but subject S01 has only 6"):
        generate_lab_study(tmp_path, cfg, n_jobs=1)


def test_cli_writes_a_lab_study(tmp_path, capsys):
    from irtrepro.cli import main

    out = tmp_path / "lab"
    assert main(["synth", "--lab", "--out", str(out), "--subjects", "2", "--shape", "40x48",
                 "--duration", "60", "--annotated-frames", "3", "--kinds", "", "--jobs",
                 "1"]) == 0
    m = load_manifest(out / "manifest.yaml")
    assert {s.files["thermal"].format for s in m.sessions} == {"flir-seq"}
    cfg = m.generator["config"]
    assert (cfg["clock_offset_s"], cfg["clock_drift_ppm"], cfg["shape"]) == (47.0, 30.0, [40, 48])
    truth = json.loads((out / "derivatives" / "truth" / "lab.json").read_text())
    assert sum(len(s["annotated_frames"]) for s in truth["sessions"]) == 6
