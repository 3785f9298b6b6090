"""End to end: generate -> files on disk -> verify -> readers -> sync -> Study -> save -> open."""

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from irtrepro.cli import main
from irtrepro.errors import ChecksumError
from irtrepro.manifest import load_manifest, verify
from irtrepro.report.pipeline import ensure_files
from irtrepro.study import open_study, save_study
from irtrepro.sync import build_study
from irtrepro.synth.physiology import SynthConfig
from irtrepro.synth.study import GeneratorConfig, generate_study

CFG = GeneratorConfig(
    physiology=SynthConfig(n_subjects=3, sessions=(("CON", "CON", 1), ("SI", "SI", 2))),
    kinds=("cpet", "hr", "core"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    manifest = generate_study(root / "data", CFG, manifest_path=root / "study.yaml", n_jobs=1)
    return root, manifest


def test_files_use_every_rotated_format(demo):
    _, manifest = demo
    m = load_manifest(manifest)
    fmts = {(f.kind, f.format) for f in m.files()}
    assert {("cpet", "cosmed-xlsx"), ("cpet", "cortex-xlsx"), ("cpet", "csv"),
            ("hr", "polar-csv"), ("hr", "fit"), ("core", "core-csv"), ("core", "fit")} <= fmts
    assert all(st == "ok" for _, st in verify(m))


def test_study_matches_generator_signals(demo, tmp_path):
    root, manifest = demo
    ds = build_study(load_manifest(manifest))
    assert json.loads(ds.attrs["missing"]) == []
    save_study(ds, tmp_path / "study.nc")
    back = open_study(tmp_path / "study.nc")
    xr.testing.assert_identical(ds, back)
    truth = xr.open_dataset(root / "data" / "derivatives" / "truth" / "truth.nc")
    # resampling error: breath-to-breath noise (VO2 5 %, VT 8 %) averaged over 5 breaths
    for v, rel_mae in (("vo2", 0.03), ("vco2", 0.03), ("ve", 0.05), ("rf", 0.04), ("vt", 0.05)):
        d = back[v] - truth[v]
        assert float(np.abs(d).mean() / np.abs(truth[v]).mean()) < rel_mae, v
        assert abs(float(d.mean() / truth[v].mean())) < 0.01, v  # no clock shift, no unit slip
        assert float(back[v].isnull().mean()) < 0.01, v
    # HR: 1 s samples rounded to 1 bpm, noise 1.2 bpm; dropouts stay NaN
    d = back.hr - truth.hr
    assert float(np.abs(d).mean()) < 1.5 and abs(float(d.mean())) < 0.3
    # core: 30 s samples, 0.02 degC noise, rounded to 0.01 degC (decimal comma CSV / FIT float)
    d = back.tcore - truth.tcore
    assert float(np.abs(d).mean()) < 0.03
    np.testing.assert_array_equal(back.speed.values, truth.speed.values)
    assert (back.phase.values == truth.phase.values).all()
    np.testing.assert_array_equal(back.viat.values, truth.viat.values)


def test_generator_is_deterministic_and_regenerates_missing_files(demo, tmp_path):
    root, manifest = demo
    # two worker processes: the same bytes as the serial run
    again = generate_study(tmp_path / "data", CFG, manifest_path=tmp_path / "study.yaml",
                           n_jobs=2)
    a, b = load_manifest(manifest), load_manifest(again)
    assert [f.sha256 for f in a.files()] == [f.sha256 for f in b.files()]
    # delete files: ensure_files regenerates them and they match the recorded checksums
    shutil.rmtree(tmp_path / "data" / "sub-S02")
    m = ensure_files(again)
    assert all(st == "ok" for _, st in verify(m))


def test_regenerated_files_must_match_recorded_checksums(demo, tmp_path):
    root, _ = demo
    manifest = generate_study(tmp_path / "data", CFG, manifest_path=tmp_path / "study.yaml")
    # the recorded checksums stay, the generator settings change: regeneration must notice
    manifest.write_text(manifest.read_text().replace("seed: 20261125", "seed: 1"))
    shutil.rmtree(tmp_path / "data" / "sub-S01")
    with pytest.raises(ChecksumError, match="did not reproduce the recorded checksums"):
        ensure_files(manifest)


def test_corrupt_file_is_left_out_with_reason(demo, tmp_path):
    root, manifest = demo
    m = load_manifest(manifest)
    bad = m.session("S01", "CON").files["hr"]
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    target = copy / bad.path.relative_to(root)
    target.write_bytes(target.read_bytes()[:40])  # truncated
    ds = build_study(load_manifest(copy / "study.yaml"))
    missing = json.loads(ds.attrs["missing"])
    assert [(x["subject"], x["session"], x["kind"]) for x in missing] == [("S01", "CON", "hr")]
    assert str(target) in missing[0]["reason"]
    assert bool(ds.hr.sel(subject="S01", session="CON").isnull().all())
    assert bool(ds.hr.sel(subject="S02", session="CON").notnull().any())


def test_cli_build_and_verify(demo, tmp_path, capsys):
    _, manifest = demo
    assert main(["manifest", "verify", str(manifest)]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert main(["build", "--manifest", str(manifest), "--out", str(tmp_path / "s.zarr")]) == 0
    assert "3 subjects x 2 sessions" in capsys.readouterr().out
    assert open_study(tmp_path / "s.zarr").sizes["time"] == 2760
    assert main(["info", "--manifest", str(manifest)]) == 0
    assert "subjects: 3, sessions: 6" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "m.yaml").write_text("subjects: []\n")
    assert main(["manifest", "verify", str(tmp_path / "m.yaml")]) == 2
    assert "subjects: expected a non-empty list" in capsys.readouterr().err
