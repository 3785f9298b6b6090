"""results.json: headline figures gathered from a report's tables, rendered as Markdown."""

import json

import pandas as pd

from irtrepro.cli import main
from irtrepro.report.results import SINGLE, collect_results, render_markdown, write_results


def _tables(tmp_path):
    t = tmp_path / "tables"
    t.mkdir()
    pd.DataFrame({"label": [1, 1], "name": ["left_calf", "vein"], "dice": [0.97, 0.61]}
                 ).to_csv(t / "vision_segmentation_quality.csv", index=False)
    pd.DataFrame({"model": ["student m"], "AP": [0.8], "AP50": [0.95], "AP75": [0.7],
                  "AP_min_fold": [0.75], "folds": [2]}).to_csv(t / "keypoints_keypoints_ap.csv",
                                                               index=False)
    return t


def test_figures_carry_value_spread_target_and_source(tmp_path):
    res = collect_results(_tables(tmp_path), {"git_commit": "abc", "seeds": {"report": 3}})
    by = {f["name"]: f for f in res["figures"]}
    assert by["Dice vein"]["value"] == 0.61 and by["Dice vein"]["target"] == ">= 0.75"
    assert by["Dice vein"]["spread"] is None and by["Dice vein"]["spread_kind"] == SINGLE
    ap = by["AP student m"]
    assert ap["spread"] == {"min_fold": 0.75} and ap["split"] == "2 folds of held-out subjects"
    assert "breathing_ablation" in res["missing"]  # absent tables are named, not invented
    md = render_markdown(res)
    assert "| Dice vein | 0.610 |" in md and "`abc`" in md


def test_written_file_and_cli(tmp_path, capsys):
    _tables(tmp_path)
    path = write_results(tmp_path, {"git_commit": "abc"})
    assert json.loads(path.read_text())["commit"] == "abc"
    out = tmp_path / "results.md"
    assert main(["results", str(tmp_path), "--markdown", str(out)]) == 0
    assert "# Results of `make report`" in out.read_text()
    assert main(["results", str(tmp_path / "nowhere")]) == 2
