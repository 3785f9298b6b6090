"""The report runner: from a manifest to index.html, listing everything left out, reusing caches."""

import logging
import shutil

import pytest

from irtrepro.manifest import load_manifest
from irtrepro.report.run import run_report
from irtrepro.synth.physiology import SynthConfig
from irtrepro.synth.study import GeneratorConfig, generate_study

CFG = GeneratorConfig(
    physiology=SynthConfig(n_subjects=3, sessions=(("CON", "CON", 1), ("SI", "SI", 2))),
    kinds=("cpet", "hr", "core"))


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    generate_study(root / "data" / "demo", CFG, manifest_path=root / "study.yaml", n_jobs=1)
    return root


def test_report_builds_lists_left_out_and_reuses_cache(study_dir, tmp_path, caplog):
    out = tmp_path / "reports"
    page = run_report(study_dir / "study.yaml", out, parts=())
    html = page.read_text()
    assert (out / "figures" / "time_courses_cardio.png").exists()
    assert (out / "tables" / "reliability_icc.csv").exists()
    # no thermal files in this manifest: said at the top, not silently dropped
    top = html[: html.index("Contents")]
    assert "no skin-temperature metrics" in top
    assert "manifest_sha256" in html and "timings_s" in html
    # the page's first section is results.json's headline figures, also as results.md
    import json

    res = json.loads((out / "results.json").read_text())
    assert res["figures"] and 'id="headline"' in html
    assert html.index('id="headline"') < html.index('id="reliability"')
    first = res["figures"][0]
    assert f"<td>{first['name']}</td>" in html.replace("&gt;", ">").replace("&lt;", "<")
    assert (out / "results.md").read_text().startswith("# Results of `make report`")
    assert (study_dir / "data" / "study.nc").exists()
    with caplog.at_level(logging.INFO, logger="irtrepro"):
        run_report(study_dir / "study.yaml", out, parts=())
    assert any("reusing study-" in r.getMessage() for r in caplog.records)


def test_warm_report_reuses_analyses_and_their_rendered_figures(study_dir, tmp_path,
                                                               monkeypatch):
    import matplotlib.figure

    from irtrepro.report.run import find_analyses

    adir = tmp_path / "analyses"
    shutil.copytree(find_analyses(), adir, ignore=shutil.ignore_patterns("__pycache__"))
    out, cache = tmp_path / "reports", tmp_path / "cache"

    def report():
        return run_report(study_dir / "study.yaml", out, parts=(), cache_dir=cache,
                          analyses_dir=adir)

    report()
    import json

    # a cold run reuses nothing; a warm one says which steps it took from the cache
    assert json.loads((out / "results.json").read_text())["reused_from_cache"] == []
    png = out / "figures" / "time_courses_cardio.png"
    first = png.read_bytes()
    drawn = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, *a, **k: drawn.append(1) or real(self, *a, **k))
    report()
    assert drawn == []                       # same inputs: nothing computed or drawn again
    assert png.read_bytes() == first and (out / "tables" / "reliability_icc.csv").exists()
    reused = json.loads((out / "results.json").read_text())["reused_from_cache"]
    assert "study: read, sync, build" in reused and "analysis: reliability" in reused
    assert "| analysis: reliability (*reused*) |" in (out / "results.md").read_text()
    # a statistician's change to the analyses folder (models.yaml) recomputes them
    (adir / "models.yaml").write_text((adir / "models.yaml").read_text() + "\n# edited\n")
    report()
    assert drawn and png.read_bytes()


def test_corrupt_file_and_missing_session_are_listed(study_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("cache", "study.nc"))
    m = load_manifest(copy / "study.yaml")
    hr = m.session("S02", "SI").files["hr"]
    hr.path.write_bytes(b"not a heart-rate file")
    text = (copy / "study.yaml").read_text()
    # the manifest records the corrupted file's checksum: the failure must come from the reader
    from irtrepro.manifest import sha256_path

    (copy / "study.yaml").write_text(text.replace(hr.sha256, sha256_path(hr.path)))
    from irtrepro.errors import IncompleteError

    with pytest.raises(IncompleteError) as info:
        run_report(copy / "study.yaml", tmp_path / "r", parts=("irtrepro.nonexistent",))
    assert any(f.startswith("S02/SI hr:") for f in info.value.failures)
    html = info.value.output.read_text()
    top = html[: html.index("Contents")]
    assert "S02/SI hr:" in top
    assert "nonexistent: part not available" in top


def test_part_key_follows_the_code_the_part_uses(monkeypatch):
    # the vision part's result comes through irtrepro.features: an edit there must not
    # reuse a cached part (it did while the key hashed the part's own package only)
    from pathlib import Path

    from irtrepro.report.cache import part_key

    k0 = part_key("abc", "irtrepro.report.parts.vision", 0)
    assert part_key("abc", "irtrepro.report.parts.vision", 0) == k0
    assert part_key("abd", "irtrepro.report.parts.vision", 0) != k0
    assert part_key("abc", "irtrepro.report.parts.vision", 1) != k0
    real = Path.read_bytes

    def edited(self):
        data = real(self)
        return data + b"\n# edited" if self.name == "extract.py" and \
            self.parent.name == "features" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert part_key("abc", "irtrepro.report.parts.vision", 0) != k0


FAKE_PARTS = {
    # a part that works: a table, a Study variable, and where and how it ran
    "fakepart_ok": '''
import os
import numpy as np
import pandas as pd
import torch
import xarray as xr
from irtrepro.report.part import ReportPart


def run_for_report(manifest, cache_dir, *, seed=0, progress=None):
    part = ReportPart("fakepart_ok", "fake")
    part.tables["where"] = (pd.DataFrame({"pid": [os.getpid()],
                                          "threads": [torch.get_num_threads()],
                                          "progress": [repr(progress)]}), "where it ran")
    s = manifest.sessions[0]
    part.study_vars = xr.Dataset({"fake_var": (("subject", "session", "time"),
                                               np.full((1, 1, 3), 7.0),
                                               {"units": "1", "long_name": "fake"})},
                                 coords={"subject": [s.subject], "session": [s.session],
                                         "time": [0.0, 1.0, 2.0]})
    part.timings["work"] = 0.5
    return part
''',
    "fakepart_raises": '''
def run_for_report(manifest, cache_dir, *, seed=0, progress=None):
    raise ValueError("planted failure in fakepart_raises")
''',
    "fakepart_dies": '''
import os


def run_for_report(manifest, cache_dir, *, seed=0, progress=None):
    os._exit(3)  # as if killed (out of memory): no Python exception, no traceback
''',
}


def _fake_parts(tmp_path, monkeypatch):
    import sys

    mods = tmp_path / "mods"
    mods.mkdir()
    for name, src in FAKE_PARTS.items():
        (mods / f"{name}.py").write_text(src)
        sys.modules.pop(name, None)
    monkeypatch.syspath_prepend(str(mods))


def test_failed_parts_are_listed_on_top_and_raise_after_writing(study_dir, tmp_path,
                                                                 monkeypatch):
    import xarray as xr

    from irtrepro.errors import IncompleteError

    _fake_parts(tmp_path, monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("cache", "study.nc"))
    out = tmp_path / "r"
    parts = ("fakepart_ok", "fakepart_raises")
    with pytest.raises(IncompleteError, match="1 step") as info:
        run_report(copy / "study.yaml", out, parts=parts)
    assert info.value.failures == [
        "fakepart_raises: failed with ValueError: planted failure in fakepart_raises"]
    html = (out / "index.html").read_text()
    top = html[: html.index("Contents")]
    assert 'id="failures"' in top and "planted failure in fakepart_raises" in top
    # the working part is in the report and its variable in the Study
    assert (out / "tables" / "fakepart_ok_where.csv").exists()
    study = xr.open_dataset(copy / "data" / "study.nc")
    assert float(study.fake_var.sel(time=1.0).max()) == 7.0
    # keep_going: the same partial report, returned normally
    page = run_report(copy / "study.yaml", out, parts=parts, keep_going=True)
    assert 'id="failures"' in page.read_text()


def test_settings_reach_the_part_and_its_cache_key(study_dir, tmp_path, monkeypatch):
    import pandas as pd

    from irtrepro.errors import OptionError

    src = FAKE_PARTS["fakepart_ok"].replace(
        "def run_for_report(manifest, cache_dir, *, seed=0, progress=None):",
        "def run_for_report(manifest, cache_dir, *, seed=0, progress=None, steps=1):").replace(
        '"progress": [repr(progress)]}', '"progress": [repr(progress)], "steps": [steps]}')
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "fakepart_set.py").write_text(src.replace('"fakepart_ok"', '"fakepart_set"'))
    monkeypatch.syspath_prepend(str(mods))
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("cache", "study.nc"))
    out = tmp_path / "r"
    run_report(copy / "study.yaml", out, parts=("fakepart_set",),
               settings={"fakepart_set": {"steps": 7}})
    assert pd.read_csv(out / "tables" / "fakepart_set_where.csv").steps[0] == 7
    run_report(copy / "study.yaml", out, parts=("fakepart_set",),
               settings={"fakepart_set": {"steps": 3}})
    assert pd.read_csv(out / "tables" / "fakepart_set_where.csv").steps[0] == 3  # not cached
    with pytest.raises(OptionError, match="settings for \\['vison'\\]"):
        run_report(copy / "study.yaml", out, parts=("fakepart_set",), settings={"vison": {}})


def test_cli_report_exit_codes(study_dir, tmp_path, monkeypatch, capsys):
    from irtrepro.cli import main

    _fake_parts(tmp_path, monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("cache", "study.nc"))
    args = ["report", "--manifest", str(copy / "study.yaml"), "--out", str(tmp_path / "r")]
    assert main(args + ["--parts", "fakepart_ok"]) == 0
    assert main(args + ["--parts", "fakepart_ok,fakepart_raises"]) == 1
    assert "planted failure in fakepart_raises" in capsys.readouterr().out
    assert main(args + ["--parts", "fakepart_ok,fakepart_raises", "--keep-going"]) == 0
    settings = tmp_path / "s.yaml"
    settings.write_text("fakepart_ok: {}\n")
    assert main(args + ["--parts", "fakepart_ok", "--settings", str(settings)]) == 0
