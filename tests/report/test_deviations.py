"""The report's deviations table: in step with docs/deviations.md, filled from results.json."""

import json
import re
from pathlib import Path

import pytest

from irtrepro.report.deviations import DEVIATIONS, deviations_html, evidence

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deviations.md"


def _doc_parts() -> dict[str, set[str]]:
    """First cells of each model's table in docs/deviations.md, by model section."""
    parts, model = {}, None
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            model = next((m for m in ("breathing", "keypoints", "segmentation")
                          if m in line.lower()), None)
        elif model and line.startswith("| ") and not line.startswith(("| part", "|---")):
            parts.setdefault(model, set()).add(line.split("|")[1].strip())
    return parts


def test_every_part_is_a_row_of_the_docs_table_and_back():
    docs = _doc_parts()
    ours = {}
    for d in DEVIATIONS:
        ours.setdefault(d.model, set()).add(d.part)
    assert ours == docs


def _fig(group, name, value, **spread):
    return {"group": group, "name": name, "value": value, "spread": spread or None}


def test_this_run_column_holds_only_this_runs_figures():
    results = {"figures": [
        _fig("keypoints", "AP student mobilenetv3 (thermal, distilled)", 0.798),
        _fig("keypoints", "AP50 student mobilenetv3 (thermal, distilled)", 0.984),
        _fig("keypoints", "AP baseline mobilenetv3 (thermal, supervised on L)", 0.721),
        _fig("nested protocol: keypoints", "AP student", 0.679, ci_low=0.612, ci_high=0.746),
        _fig("breathing", "accuracy + AMT", 0.970),
        _fig("breathing", "accuracy + KD", 0.946),
        _fig("breathing", "accuracy full method", 0.971),
        _fig("breathing", "accuracy full method, pooled feature scaling", 0.965),
    ]}
    row = {d.part: d for d in DEVIATIONS}
    names = [f["name"] for f in evidence(row["distillation"], results)]
    # the AP50 row is not the AP row; the nested figure comes with its interval
    assert names == ["AP student mobilenetv3 (thermal, distilled)",
                     "AP baseline mobilenetv3 (thermal, supervised on L)", "AP student"]
    assert [f["value"] for f in evidence(row["KD-FT"], results)] == [0.970, 0.946]
    ens = [f["name"] for f in evidence(row["ensemble"], results)]
    assert ens == ["accuracy full method"]  # not the pooled-scaling variant
    page = deviations_html(results)
    assert "AP student: 0.679 (95 % CI 0.612-0.746) [nested]" in page
    assert "accuracy + KD: 0.946 [this split]" in page
    # parts no run measures say so, and nothing measured elsewhere appears
    assert page.count("not measured in this run") >= 5
    assert "0.806" not in page and "0.990" not in page
    for model in ("breathing", "keypoints", "segmentation"):
        assert f"<h4>{model}</h4>" in page


@pytest.mark.parametrize("results", [{}, {"figures": []}])
def test_no_results_no_figures(results):
    page = deviations_html(results)
    assert page.count("not measured in this run") == len(DEVIATIONS)
    assert not re.search(r"\d\.\d{3}", page)


def test_report_results_json_names_match_the_patterns(tmp_path):
    """The patterns match the names collect_results writes (from the report's own tables)."""
    import pandas as pd

    from irtrepro.report.results import collect_results

    t = tmp_path / "tables"
    t.mkdir()
    pd.DataFrame({"method": ["signal baseline (ROI slope)", "plain CNN",
                             "transfer learning, no preprocessing", "standard fine-tuning",
                             "+ AMT", "+ KD", "full method",
                             "full method, pooled feature scaling",
                             "full method + AdaBN (per subject)"],
                  "accuracy": [0.69, 0.91, 0.86, 0.97, 0.97, 0.95, 0.97, 0.96, 0.97]}
                 ).to_csv(t / "breathing_ablation.csv", index=False)
    pd.DataFrame({"model": ["teacher (cnn, RGB frames)",
                            "constant pose (mean of the labelled training heatmaps)",
                            "student mobilenetv3 (thermal, distilled)",
                            "baseline mobilenetv3 (thermal, supervised on L)"],
                  "AP": [0.2, 0.44, 0.8, 0.72], "AP50": [0.5, 0.6, 0.98, 0.96],
                  "AP75": [0.1, 0.57, 0.79, 0.71], "AP_min_fold": [0.1, 0.4, 0.75, 0.6],
                  "folds": [2, 2, 2, 2]}).to_csv(t / "keypoints_keypoints_ap.csv", index=False)
    res = json.loads(json.dumps(collect_results(t, {})))
    # every row that names a single-split figure of these models finds one (the nested
    # figures come from evaluation.json, absent here)
    for d in DEVIATIONS:
        if d.model in ("breathing", "keypoints") and any(
                not g.startswith("nested") for g, _ in d.evidence):
            assert any(not f["group"].startswith("nested") for f in evidence(d, res)), d.part
