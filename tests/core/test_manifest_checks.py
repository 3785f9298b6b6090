"""The manifest is checked before anything runs: keys, reader formats, reader options, lines."""

from __future__ import annotations

import textwrap

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
