"""``irtrepro build``: a file of the manifest that cannot be read fails the command."""

from __future__ import annotations

import pytest

from irtrepro.cli import main
from irtrepro.manifest import load_manifest, sha256_path
from irtrepro.synth.physiology import SynthConfig
from irtrepro.synth.study import GeneratorConfig, generate_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    cfg = GeneratorConfig(physiology=SynthConfig(n_subjects=2, sessions=(("CON", "CON", 1),)),
                          kinds=("hr", "core"))
    return generate_study(root / "data", cfg, manifest_path=root / "study.yaml", n_jobs=1)


def test_build_exits_1_when_a_file_fails_and_0_with_keep_going(study, tmp_path, capsys):
    assert main(["build", "--manifest", str(study), "--out", str(tmp_path / "ok.nc")]) == 0
    hr = load_manifest(study).session("S02", "CON").files["hr"]
    hr.path.write_bytes(b"not a heart-rate export")
    # the checksum is updated so that the failure comes from the reader, not the checksum
    study.write_text(study.read_text().replace(hr.sha256, sha256_path(hr.path)))
    out = tmp_path / "s.nc"
    assert main(["build", "--manifest", str(study), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "FAILED S02/CON hr:" in text and "1 file(s) of the manifest could not be read" in text
    assert out.exists()  # the Study is written, with the failure recorded
    assert main(["build", "--manifest", str(study), "--out", str(out), "--keep-going"]) == 0
