"""The manifest is checked before anything runs: keys, reader formats, reader options, lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import ManifestError, OptionError
from irtrepro.manifest import load_manifest, sha256_path

HEAD = """\
study: {name: lab}
subjects:
  - id: P01
    viat: 15.2
    sessions:
      - id: CON
        day: 1
        protocol: CON
        start_time: "2026-03-02T09:00:00"
        files:
"""


def _write(tmp_path, text: str):
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, line, message", [
    # top-level typo: 'protcol' passed and the default protocols were used
    ("study: {name: lab}\nprotcol: my_protocols.yaml\nsubjects: [{id: P01, viat: 15}]\n", 2,
     "protcol: unknown key 'protcol'; did you mean 'protocols'?"),
    # subject typo: 'agee' passed and the Study had no age
    ("study: {name: lab}\nsubjects:\n  - id: P01\n    viat: 15\n    agee: 31\n", 5,
     "subjects[0].agee: unknown key 'agee'; did you mean 'age'?"),
    # a session key
    (HEAD.replace("        day: 1\n", "        dya: 1\n") + "          hr: {path: hr.csv}\n", 7,
     "subjects[0].sessions[0].dya: unknown key 'dya'; did you mean 'day'?"),
    # camera settings
    ("study: {name: lab}\ncamera: {emisivity: 0.98}\nsubjects: [{id: P01, viat: 15}]\n", 2,
     "camera.emisivity: unknown key 'emisivity'; did you mean 'emissivity'?"),
    # an unknown reader format: 'polar-cvs' passed verify and the HR was left out silently
    (HEAD + "          hr: {path: hr.csv, format: polar-cvs}\n", 11,
     "files.hr.format: unknown hr format 'polar-cvs'; did you mean 'polar-csv'?"),
    # an option the reader does not take: 'ofset_s' ended in a raw TypeError from build
    (HEAD + "          core: {path: core.csv, format: core-csv, ofset_s: -600}\n", 11,
     "files.core.ofset_s: reader 'core-csv' takes no option 'ofset_s'; did you mean "
     "'offset_s'?"),
    # an option of another reader
    (HEAD + "          thermal:\n            path: run.seq\n            format: flir-seq\n"
     "            emisivity: 0.97\n", 14,
     "files.thermal.emisivity: reader 'flir-seq' takes no option 'emisivity'; did you mean "
     "'emissivity'?"),
    # an unknown file kind
    (HEAD + "          heart: {path: hr.csv}\n", 11,
     "files.heart: unknown file kind 'heart'"),
])
def test_mistakes_are_named_with_their_line(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    text = str(info.value)
    assert f"study.yaml:{line}: " in text
    assert message in text


def test_every_mistake_is_reported_at_once(tmp_path):
    path = _write(tmp_path, HEAD.replace("protocol: CON", "protocl: CON")
                  + "          hr: {path: hr.csv, format: polar-cvs}\n"
                  + "          core: {path: core.csv, format: core-csv, ofset_s: -600}\n")
    with pytest.raises(ManifestError, match="3 problem") as info:
        load_manifest(path)
    assert "protocl" in str(info.value) and "polar-cvs" in str(info.value)


def test_valid_options_and_formats_pass(tmp_path):
    path = _write(tmp_path, HEAD
                  + "          core: {path: core.csv, format: core-csv, offset_s: -600}\n"
                  + "          cpet: {path: c.xlsx, format: cosmed, column_map: {vo2: VO2}}\n"
                  + "          thermal: {path: run.seq, format: flir-seq, emissivity: 0.97}\n"
                  + "          pose: {path: pose.npz, format: npz}\n")
    m = load_manifest(path)
    assert m.session("P01", "CON").files["core"].options == {"offset_s": -600}


def test_cli_verify_exits_2_and_names_the_line(tmp_path, capsys):
    from irtrepro.cli import main

    path = _write(tmp_path, HEAD + "          hr: {path: hr.csv, format: polar-cvs}\n")
    assert main(["manifest", "verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert "study.yaml:11:" in err and "did you mean 'polar-csv'?" in err


def test_registry_read_refuses_an_option_by_name(tmp_path):
    from irtrepro.io import read

    f = tmp_path / "hr.csv"
    f.write_text("x")
    with pytest.raises(OptionError, match="takes no option 'colum_map'; did you mean "
                                          "'column_map'"):
        read("hr", f, "polar-csv", colum_map={})


def _store(path, values, **encoding):
    ds = xr.Dataset({"frames": (("frame", "y", "x"), values, {"units": "degC"})},
                    coords={"time": ("frame", np.arange(len(values), dtype=float))})
    ds.to_zarr(path, mode="w", consolidated=False, zarr_format=3,
               encoding={"frames": encoding} if encoding else None)
    return path


def test_zarr_store_hash_follows_content_not_codec(tmp_path):
    import zarr.codecs

    v = np.arange(2 * 3 * 4, dtype="uint16").reshape(2, 3, 4)
    a = sha256_path(_store(tmp_path / "a.zarr", v))
    b = sha256_path(_store(tmp_path / "b.zarr", v, compressors=[zarr.codecs.BloscCodec()],
                           chunks=(1, 3, 4)))
    assert a == b  # same data and attributes, other codec and chunks
    w = v.copy()
    w[1, 2, 3] += 1
    assert sha256_path(_store(tmp_path / "c.zarr", w)) != a  # one value differs
    # attributes are content too
    p = _store(tmp_path / "d.zarr", v)
    import zarr

    zarr.open_group(str(p), mode="r+")["frames"].attrs["units"] = "K"
    assert sha256_path(p) != a


def test_checksum_cache_reads_a_file_once_and_again_when_it_changes(tmp_path, monkeypatch):
    import os

    from irtrepro import manifest as mf
    from irtrepro.errors import ChecksumError

    data = tmp_path / "hr.csv"
    data.write_text("time,hr\n0,60\n")
    store = _store(tmp_path / "frames.zarr", np.zeros((2, 3, 4), "uint16"))
    path = _write(tmp_path, HEAD + f"          hr: {{path: hr.csv, sha256: {sha256_path(data)}}}\n"
                  f"          thermal: {{path: frames.zarr, sha256: {sha256_path(store)}}}\n")
    reads = []
    real = mf.sha256_path
    monkeypatch.setattr(mf, "sha256_path", lambda p: reads.append(Path(p).name) or real(p))
    cache = tmp_path / "cache" / "checksums.json"
    m = load_manifest(path)
    reads.clear()
    assert [st for _, st in mf.verify(m, cache=cache)] == ["ok", "ok"]
    assert sorted(reads) == ["frames.zarr", "hr.csv"]
    reads.clear()
    assert [st for _, st in mf.verify(m, cache=cache)] == ["ok", "ok"]
    assert reads == []                                    # unchanged: nothing read again
    # the file rewritten with other bytes (and a later mtime): hashed again, and caught
    data.write_text("time,hr\n0,61\n")
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        mf.verify(m, cache=cache)
    assert reads == ["hr.csv"]
    # a value in the zarr store changed: its chunk file changed, so the store is hashed again
    import zarr

    zarr.open_group(str(store), mode="r+")["frames"][0, 0, 0] = 7
    reads.clear()
    results = dict((fe.kind, s) for fe, s in mf.verify(m, cache=cache, raise_on_error=False))
    assert results["thermal"] == "sha256 mismatch" and "frames.zarr" in reads
    # an unreadable cache file is ignored, not trusted
    cache.write_text("{not json")
    reads.clear()
    mf.verify(m, cache=cache, raise_on_error=False)
    assert sorted(reads) == ["frames.zarr", "hr.csv"]
