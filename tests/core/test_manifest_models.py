"""The manifest's ``models:`` section: parsed, paths resolved, verified, errors named."""

import textwrap

import pytest

from irtrepro.errors import ChecksumError, ManifestError
from irtrepro.manifest import load_manifest, sha256_path, verify

HEAD = """
study: {name: t}
subjects:
  - id: S01
    viat: 15.0
"""


def _write(tmp_path, models: str):
    p = tmp_path / "study" / "m.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(textwrap.dedent(HEAD) + textwrap.dedent(models))
    return p


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "study" / "models" / "lab_unet.pt"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"weights")
    return p


def test_long_and_short_forms_resolve_against_the_manifest_folder(tmp_path, model_file,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)              # not the manifest's folder
    sha = sha256_path(model_file)
    long = load_manifest(_write(tmp_path, f"""
        models:
          segmentation: {{path: models/lab_unet.pt, sha256: "{sha}"}}
        """))
    fe = long.models["segmentation"]
    assert fe.path == model_file.resolve() and fe.rel == "models/lab_unet.pt"
    assert fe.sha256 == sha and "models.segmentation" in fe.where
    assert [(f.rel, st) for f, st in verify(long)] == [("models/lab_unet.pt", "ok")]
    short = load_manifest(_write(tmp_path, "models:\n  segmentation: models/lab_unet.pt\n"))
    assert short.models["segmentation"].path == model_file.resolve()
    assert short.models["segmentation"].sha256 is None
    assert [st for _, st in verify(short)] == ["no sha256"]
    assert load_manifest(_write(tmp_path, "")).models == {}


def test_missing_file_and_wrong_sha256_name_the_manifest_and_field(tmp_path, model_file):
    m = load_manifest(_write(tmp_path, f"""
        models:
          segmentation: {{path: models/lab_unet.pt, sha256: "{'0' * 64}"}}
        """))
    with pytest.raises(ChecksumError, match=r"m.yaml: 1 file\(s\) failed verification:\n  "
                                            r"m.yaml:8: models.segmentation: sha256 mismatch "
                                            r"\(models/lab_unet.pt\)"):
        verify(m)
    model_file.unlink()
    with pytest.raises(ChecksumError, match=r"models.segmentation: missing "
                                            r"\(models/lab_unet.pt\)"):
        verify(m)
    # only the session files asked for: the model is left alone
    assert verify(m, kinds=("thermal",)) == []


@pytest.mark.parametrize("models, message", [
    ("models:\n  segmentaton: x.pt\n",
     r"m.yaml:7: models.segmentaton: unknown model 'segmentaton'; did you mean "
     r"'segmentation'\?"),
    ("models:\n  keypoints: x.pt\n", r"models.keypoints: unknown model 'keypoints'"),
    ("models:\n  segmentation: {path: x.pt, format: pt}\n",
     r"models.segmentation.format: unknown key 'format'"),
    ("models:\n  segmentation: {sha256: abc}\n",
     r"models.segmentation: expected a path or a mapping with 'path'"),
    ("models:\n  segmentation: {path: x.pt, sha256: abc}\n",
     r"models.segmentation.sha256: expected 64 hex digits"),
    ("models: [x.pt]\n", r"models: expected a mapping of model names"),
])
def test_bad_models_entries_name_the_field(tmp_path, models, message):
    with pytest.raises(ManifestError, match=message):
        load_manifest(_write(tmp_path, models))
