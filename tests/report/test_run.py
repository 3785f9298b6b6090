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
    assert (study_dir / "data" / "study.nc").exists()
    with caplog.at_level(logging.INFO, logger="irtrepro"):
        run_report(study_dir / "study.yaml", out, parts=())
    assert any("reusing study-" in r.getMessage() for r in caplog.records)


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
    page = run_report(copy / "study.yaml", tmp_path / "r", parts=("irtrepro.nonexistent",))
    html = page.read_text()
    top = html[: html.index("Contents")]
    assert "S02/SI hr:" in top
    assert "nonexistent: part not available" in top


def test_part_key_follows_the_code_the_part_uses(monkeypatch):
    # the vision part's result comes through irtrepro.features: an edit there must not
    # reuse a cached part (it did while the key hashed the part's own package only)
    from pathlib import Path

    from irtrepro.report.run import part_key

    k0 = part_key("abc", "irtrepro.vision", 0)
    assert part_key("abc", "irtrepro.vision", 0) == k0
    assert part_key("abd", "irtrepro.vision", 0) != k0
    assert part_key("abc", "irtrepro.vision", 1) != k0
    real = Path.read_bytes

    def edited(self):
        data = real(self)
        return data + b"\n# edited" if self.name == "extract.py" and \
            self.parent.name == "features" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert part_key("abc", "irtrepro.vision", 0) != k0


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


def test_parts_run_side_by_side_in_their_own_processes(study_dir, tmp_path, monkeypatch):
    import os
    import sys

    import pandas as pd
    import xarray as xr

    mods = tmp_path / "mods"
    mods.mkdir()
    for name, src in FAKE_PARTS.items():
        (mods / f"{name}.py").write_text(src)
    monkeypatch.syspath_prepend(str(mods))  # spawned children get the parent's sys.path
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("cache", "study.nc"))
    out = tmp_path / "r"
    page = run_report(copy / "study.yaml", out, parts=tuple(FAKE_PARTS), part_jobs=3)
    html = page.read_text()
    top = html[: html.index("Contents")]
    # each failure is listed with its reason; the working part is in the report
    assert "fakepart_raises: failed with ValueError: planted failure in fakepart_raises" in top
    assert "fakepart_dies: failed with its process ended with exit code 3" in top
    where = pd.read_csv(out / "tables" / "fakepart_ok_where.csv")
    assert where.pid[0] != os.getpid()
    assert where.threads[0] == max(1, (os.cpu_count() or 1) // 3)
    assert str(where.progress[0]) == "False"  # no bars drawn over each other
    study = xr.open_dataset(copy / "data" / "study.nc")
    assert float(study.fake_var.sel(time=1.0).max()) == 7.0
    assert "models: fakepart_ok (process)" in html and "fakepart_ok: work" in html
    # the finished part was cached by its process: a second run reuses it in-process
    assert list((copy / "data" / "cache").glob("part-fakepart_ok-*.pkl"))
    sys.modules.pop("fakepart_ok", None)
    page = run_report(copy / "study.yaml", out, parts=("fakepart_ok",))
    assert pd.read_csv(out / "tables" / "fakepart_ok_where.csv").pid[0] == where.pid[0]


def test_auto_schedule_runs_solo_parts_alone_then_the_rest_side_by_side(study_dir, tmp_path,
                                                                        monkeypatch):
    import os
    import sys

    import pandas as pd

    import irtrepro.report.run as run_mod

    mods = tmp_path / "mods"
    mods.mkdir()
    for name, src in FAKE_PARTS.items():
        (mods / f"{name}.py").write_text(src)
    (mods / "fakepart_ok2.py").write_text(FAKE_PARTS["fakepart_ok"].replace(
        '"fakepart_ok"', '"fakepart_ok2"').replace("fake_var", "fake_var2"))
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.setattr(run_mod, "SOLO_PARTS", ("fakepart_ok",))
    monkeypatch.setattr(run_mod, "_cores", lambda: 2)
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("cache", "study.nc"))
    out = tmp_path / "r"
    parts = ("fakepart_ok", "fakepart_ok2", "fakepart_raises")
    for name in parts:
        sys.modules.pop(name, None)
    page = run_report(copy / "study.yaml", out, parts=parts, part_jobs="auto")
    html = page.read_text()
    solo = pd.read_csv(out / "tables" / "fakepart_ok_where.csv")
    side = pd.read_csv(out / "tables" / "fakepart_ok2_where.csv")
    assert solo.pid[0] == os.getpid()  # the solo part ran here, with the progress setting
    assert side.pid[0] != os.getpid()  # the others in their own processes, 1 thread each
    assert side.threads[0] == 1 and str(side.progress[0]) == "False"
    top = html[: html.index("Contents")]
    assert "fakepart_raises: failed with ValueError: planted failure" in top
    assert "models: side by side (wall)" in html and "models: fakepart_ok2 (process)" in html


@pytest.mark.parametrize("jobs, cores, expect", [
    (None, 2, ([], 1)), (1, 2, ([], 1)), (3, 2, (["v", "b", "k"], 3)), (2, 1, (["v", "b", "k"], 2)),
    ("auto", 2, (["b", "k"], 2)), ("auto", 1, ([], 1)), ("auto", 16, (["b", "k"], 2))])
def test_schedule(jobs, cores, expect, monkeypatch):
    import irtrepro.report.run as run_mod

    monkeypatch.setattr(run_mod, "_cores", lambda: cores)
    fresh = [("irtrepro.vision", "v", None), ("irtrepro.breathing", "b", None),
             ("irtrepro.keypoints", "k", None)]
    side, n = run_mod._schedule(fresh, jobs)
    assert ([t[1] for t in side], n) == expect
    # only the vision part left to compute: nothing to put side by side
    assert run_mod._schedule(fresh[:1], "auto") == ([], 1)
    with pytest.raises(ValueError, match="part_jobs"):
        run_mod._schedule(fresh, 0)


def test_cli_part_jobs(capsys):
    from irtrepro.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["report"]).part_jobs is None
    assert parser.parse_args(["report", "--part-jobs", "auto"]).part_jobs == "auto"
    assert parser.parse_args(["report", "--part-jobs", "3"]).part_jobs == 3
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["report", "--part-jobs", bad])
        assert "expected 'auto' or an integer >= 1" in capsys.readouterr().err
