"""Files of the synthetic study: a subset of subjects is byte-identical, text floats are fixed."""

from __future__ import annotations

import json

import yaml

from irtrepro.manifest import sha256_path
from irtrepro.synth.physiology import SynthConfig
from irtrepro.synth.study import GeneratorConfig, generate_study

CFG = GeneratorConfig(physiology=SynthConfig(n_subjects=2, sessions=(("CON", "CON", 1),)),
                      kinds=("hr", "core", "pose"), pose={"fps": 10.0, "clip_s": 2.0})


def _files(manifest):
    data = yaml.safe_load(manifest.read_text())
    return {(s["id"], ses["id"], k): f for s in data["subjects"] for ses in s["sessions"]
            for k, f in ses["files"].items()}, data


def test_subset_of_subjects_gives_the_same_bytes(tmp_path):
    full, data = _files(generate_study(tmp_path / "a", CFG, n_jobs=1))
    part, sub = _files(generate_study(tmp_path / "b", CFG, n_jobs=1, subjects=["S02"]))
    assert [s["id"] for s in sub["subjects"]] == ["S02"]
    assert set(part) == {k for k in full if k[0] == "S02"}
    for key, f in part.items():
        assert f["sha256"] == full[key]["sha256"], key
        assert sha256_path(tmp_path / "b" / f["path"]) == f["sha256"]
    # the environment that wrote the files is recorded for a later mismatch message
    assert set(data["generator"]["environment"]) >= {"python", "numpy", "scipy", "zarr"}


def test_coco_truth_floats_have_fixed_decimals(tmp_path):
    files, _ = _files(generate_study(tmp_path, CFG, n_jobs=1, subjects=["S01"]))
    coco = json.loads((tmp_path / files[("S01", "CON", "pose_keypoints")]["path"]).read_text())
    assert coco["annotations"]
    for ann in coco["annotations"]:
        for v in ann["keypoints"] + ann["bbox"] + [ann["area"]]:
            assert round(v, 3) == v
        assert round(ann["time"], 6) == ann["time"]
    # the area was a long float sum before: it must still carry sub-pixel information
    assert any(a["area"] != round(a["area"]) for a in coco["annotations"])


def test_regenerate_detects_a_changed_checksum_and_record_rewrites_it(tmp_path, capsys):
    from irtrepro.cli import main

    manifest = tmp_path / "study.yaml"
    cfg = GeneratorConfig(physiology=SynthConfig(n_subjects=2, sessions=(("CON", "CON", 1),)),
                          kinds=("hr", "core"))
    generate_study(tmp_path / "data", cfg, manifest_path=manifest, n_jobs=1)
    files, _ = _files(manifest)
    sha = files[("S01", "CON", "hr")]["sha256"]
    manifest.write_text(manifest.read_text().replace(sha, "a" * 64))
    assert main(["manifest", "regenerate", str(manifest), "--subjects", "S01"]) == 1
    out = capsys.readouterr().out
    assert "subjects[0].sessions[0].files.hr: regenerated file differs" in out
    assert "installed versions are the recorded ones" in out
    assert main(["manifest", "regenerate", str(manifest), "--record"]) == 0
    assert _files(manifest)[0][("S01", "CON", "hr")]["sha256"] == sha
    assert main(["manifest", "verify", str(manifest)]) == 0
