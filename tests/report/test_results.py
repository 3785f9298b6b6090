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
    # the study is named by its manifest and generator seed, not assumed to be the default
    named = render_markdown({**res, "manifest": "/x/fresh/manifest.yaml",
                             "seeds": {"report": 7, "generator": 99}})
    assert "study `manifest.yaml` (synthetic, generator seed 99)" in named
    assert "report seed 7" in named and "/x/fresh" not in named


def test_written_file_and_cli(tmp_path, capsys):
    _tables(tmp_path)
    path = write_results(tmp_path, {"git_commit": "abc"})
    assert json.loads(path.read_text())["commit"] == "abc"
    out = tmp_path / "results.md"
    assert main(["results", str(tmp_path), "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "# Results of `make report`" in text
    # the header quotes the command that rendered it
    assert f"`irtrepro results {tmp_path} --markdown {out}`" in text
    assert main(["results", str(tmp_path / "nowhere")]) == 2


def test_nested_protocol_figures_come_first_with_spread_and_met(tmp_path):
    from irtrepro.report.protocol import summarise_figure

    results = [{"job": {"fold": k, "seed": s},
                "per_subject": {f"S{k}{i}": {"accuracy": 0.90 + 0.01 * i + 0.001 * s}
                                for i in range(3)},
                "pooled": {"accuracy": 0.91 + 0.001 * s}} for k in range(2) for s in range(3)]
    fig = summarise_figure(results, "accuracy", target=">= 0.95")
    ev = {"protocol": "P.", "commit": "def", "seeds": [0, 1, 2], "device": "cpu",
          "models": {"segmentation": {"folds": 2, "complete": True, "jobs_done": 6,
                                      "jobs_planned": 6,
                                      "figures": {"Dice vein": {"units": "1", **fig}}},
                     "breathing": {"folds": 2, "complete": False, "jobs_done": 6,
                                   "jobs_planned": 9,
                                   "figures": {"accuracy": {"units": "1", **fig}}}}}
    _tables(tmp_path)
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(ev))
    res = json.loads(write_results(tmp_path, {"git_commit": "abc"}).read_text())
    first = res["figures"][0]
    assert first["group"] == "nested protocol: breathing" and first["met"] is False
    assert first["value"] == fig["value"] and first["spread"]["ci_low"] == fig["ci_low"]
    assert "incomplete: 6 of 9 jobs" in first["split"]
    # models in a fixed order whatever order the runs wrote them in
    groups = [f["group"] for f in res["figures"] if f["group"].startswith("nested")]
    assert groups == ["nested protocol: breathing", "nested protocol: segmentation"]
    md = render_markdown(res)
    assert "(**not met**)" in md and "## the nested protocol" in md and "P." in md


def test_segmentation_uncertainty_figures_carry_the_stretched_interval(tmp_path):
    t = _tables(tmp_path)
    pd.DataFrame({"metric": ["tp"], "window": ["warmup"], "icc": [0.66],
                  "tta_ci_low": [-0.04], "tta_ci_high": [0.93], "tta_se_widening": [1.001],
                  "error_ci_low": [-0.18], "error_ci_high": [0.92],
                  "error_se_widening": [float("nan")], "segmentation_limited": [True]}
                 ).to_csv(t / "reliability_segmentation_sensitivity.csv", index=False)
    figs = [f for f in collect_results(t, {})["figures"]
            if f["group"] == "segmentation uncertainty"]
    assert len(figs) == 1                      # the NaN widening is left out, not shown as 0
    f = figs[0]
    assert f["value"] == 0.66 and f["spread"]["ci_low"] == -0.04
    assert f["spread"]["se_widening"] == 1.001 and f["spread"]["segmentation_limited"] is True
    assert "augmented" in f["name"]
