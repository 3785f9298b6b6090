"""docs/own-study.md, run: every ``bash`` block of the page, in order, on a small lab study.

The page's commands are executed as written, with only the substitutions below (each must be
found on the page, so that an edit of the page cannot silently bypass the test).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "own-study.md"

#: page text -> what the test runs instead (a smaller study, a few training steps)
SUBSTITUTIONS = {
    "irtrepro synth --lab --out lab":
        "irtrepro synth --lab --out lab --subjects 3 --shape 120x160 --annotated-frames 9 "
        "--duration 240 --frame-interval 30",
    'TEST="S03 S04 S05"': 'TEST="S03"',
    'irtrepro -v train-seg "${args[@]}" --out lab/models/unet.pt':
        'irtrepro train-seg "${args[@]}" --out lab/models/unet.pt --steps 60 --batch 4 '
        "--threads 2 --device cpu",
    "irtrepro report --manifest lab/study.yaml --out reports-lab":
        "irtrepro report --manifest lab/study.yaml --out reports-lab --parts vision",
}


def page_script() -> str:
    """The page's bash blocks, joined, with :data:`SUBSTITUTIONS` applied."""
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    script = "\n".join(blocks)
    for old, new in SUBSTITUTIONS.items():
        assert script.count(old) == 1, f"{PAGE.name} no longer contains {old!r} exactly once"
        script = script.replace(old, new)
    return script


def test_page_has_every_step():
    script = page_script()
    for cmd in ("irtrepro synth --lab", "irtrepro annotations import", "irtrepro train-seg",
                "irtrepro segment evaluate", "irtrepro thermal convert", "irtrepro segment ",
                "irtrepro extract", "irtrepro manifest verify", "irtrepro report"):
        assert cmd in script, cmd


@pytest.mark.slow
@pytest.mark.requires_torch
def test_own_study_page_runs(tmp_path):
    pytest.importorskip("segmentation_models_pytorch")
    bindir = Path(sys.executable).parent
    if shutil.which("irtrepro", path=str(bindir)) is None:
        pytest.skip("the irtrepro command is not installed beside this Python")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "2"}
    script = "set -euo pipefail\n" + page_script()
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=1800)
    assert res.returncode == 0, f"stdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-4000:]}"
    # 2. one sparse store per recording, and the COCO import
    assert len(list((tmp_path / "masks").glob("*.zarr"))) == 9
    assert (tmp_path / "masks-coco" / "sub-S01_ses-CON.zarr").is_dir()
    # 3.-4. the model and its evaluation on the test subject only
    assert (tmp_path / "lab" / "models" / "unet.pt").is_file()
    ev = tmp_path / "evaluation"
    for name in ("scores.csv", "scores_by_subject.csv", "metric_errors.csv", "robustness.csv",
                 "evaluation.json", "evaluation.png"):
        assert (ev / name).is_file(), name
    info = json.loads((ev / "evaluation.json").read_text())
    assert info["subjects"] == ["S03"] and "trained_on_evaluated_subjects" not in info
    calves = [r["dice"] for r in info["scores"] if r["name"] in ("left_calf", "right_calf")]
    assert min(calves) > 0.5, calves            # far above an all-background model (0)
    # 5. every session converted, segmented, extracted
    stores = sorted((tmp_path / "lab" / "derivatives" / "zarr").glob("*.zarr"))
    assert len(stores) == 9 and all((s / "roi").is_dir() for s in stores)
    assert len(list((tmp_path / "metrics").glob("*.nc"))) == 9
    # 6. the report used the manifest's model and trained nothing
    rep = tmp_path / "reports-lab"
    assert (rep / "index.html").is_file()
    manifest = json.loads((rep / "manifest.json").read_text())
    assert manifest["failures"] == []
    html = (rep / "index.html").read_text()
    assert "unet.pt" in html and "not trained on this study" in html
