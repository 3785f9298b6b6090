"""Manifest validation: every error names the YAML path (and line)."""

import textwrap

import pytest

from irtrepro.errors import ChecksumError, ManifestError
from irtrepro.manifest import load_manifest, sha256_path, verify


def _write(tmp_path, body: str):
    p = tmp_path / "m.yaml"
    p.write_text(textwrap.dedent(body))
    return p


GOOD = """
study: {name: t}
subjects:
  - id: S01
    viat: 15.0
    sessions:
      - id: CON
        day: 1
        protocol: CON
        start_time: "2026-03-02T09:00:00"
        files:
          hr: {path: hr.csv, format: polar-csv, sha256: SHA}
"""


def test_good_manifest_loads_and_verifies(tmp_path):
    (tmp_path / "hr.csv").write_text("x\n")
    p = _write(tmp_path, GOOD.replace("SHA", sha256_path(tmp_path / "hr.csv")))
    m = load_manifest(p)
    assert [s.session for s in m.sessions] == ["CON"]
    fe = m.sessions[0].files["hr"]
    assert fe.path == (tmp_path / "hr.csv").resolve() and fe.format == "polar-csv"
    assert [st for _, st in verify(m)] == ["ok"]


def test_checksum_mismatch_and_missing_file_name_the_yaml_path(tmp_path):
    (tmp_path / "hr.csv").write_text("x\n")
    m = load_manifest(_write(tmp_path, GOOD.replace("SHA", "\"" + "0" * 64 + "\"")))
    with pytest.raises(ChecksumError, match=r"m.yaml:12: subjects\[0\].sessions\[0\].files.hr: "
                                            r"sha256 mismatch"):
        verify(m)
    (tmp_path / "hr.csv").unlink()
    with pytest.raises(ChecksumError, match=r"files.hr: missing \(hr.csv\)"):
        verify(m)


@pytest.mark.parametrize("edit, message", [
    (("protocol: CON", "protocol: FAST"), r"sessions\[0\].protocol: unknown protocol 'FAST'"),
    (("viat: 15.0", "viat: -3"), r"subjects\[0\].viat: expected a positive number"),
    (("viat: 15.0", "viat: fast"), r"subjects\[0\].viat: expected a positive number"),
    (("hr: {", "ecg: {"), r"files.ecg: unknown file kind 'ecg'"),
    (('"2026-03-02T09:00:00"', "tomorrow"), r"start_time: 'tomorrow' is not an ISO 8601"),
])
def test_structural_errors(tmp_path, edit, message):
    p = _write(tmp_path, GOOD.replace("SHA", "a" * 64).replace(*edit))
    with pytest.raises(ManifestError, match=message):
        load_manifest(p)


def test_duplicate_subject_and_session_are_reported_together(tmp_path):
    body = GOOD.replace("SHA", "a" * 64) + """
  - id: S01
    viat: 14.0
    sessions:
      - {id: SI, protocol: SI}
      - {id: SI, protocol: SI}
"""
    with pytest.raises(ManifestError) as info:
        load_manifest(_write(tmp_path, body))
    msg = str(info.value)
    assert "2 problem(s)" in msg
    assert "subjects[1].id: duplicate subject id 'S01'" in msg
    assert "session 'SI' listed twice for subject 'S01'" in msg


def test_files_outside_a_subject_are_rejected(tmp_path):
    body = GOOD.replace("SHA", "a" * 64) + "files:\n  S99: {path: x.csv}\n"
    with pytest.raises(ManifestError, match="files must be listed under subjects"):
        load_manifest(_write(tmp_path, body))


def test_folder_checksum_is_order_independent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, names in ((a, ["x", "y/z"]), (b, ["y/z", "x"])):
        for n in names:
            (d / n).parent.mkdir(parents=True, exist_ok=True)
            (d / n).write_text(n)
    assert sha256_path(a) == sha256_path(b)
    (b / "x").write_text("changed")
    assert sha256_path(a) != sha256_path(b)


def test_unquoted_numeric_sha256_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match=r"files.hr.sha256: expected 64 hex digits"):
        load_manifest(_write(tmp_path, GOOD.replace("SHA", "0" * 64)))
