"""The headline figures of a report, gathered from its tables into ``results.json``.

Every figure carries where it comes from (the table and row), the split it was measured on,
its spread where the report computes one (``null`` with the reason where it does not: one
split, one seed), the seed and the code commit. ``docs/results.md`` is rendered from this file
(:func:`render_markdown`, ``irtrepro results``), so the README and docs quote one source.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro.report.protocol import finite_or_none as _num

SINGLE = ("not computed: one split, one training seed (the spread over folds and seeds is "
          "`make evaluate`'s, in the nested protocol groups where it has run)")


def _read(tables: Path, name: str) -> pd.DataFrame | None:
    path = tables / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def _fig(group: str, name: str, value, *, source: str, split: str, units: str = "1",
         spread=None, spread_kind: str | None = None, target: str | None = None,
         met: bool | None = None) -> dict:
    return {"group": group, "name": name, "value": _num(value), "units": units,
            "spread": spread, "spread_kind": spread_kind or (None if spread else SINGLE),
            "target": target, "met": met, "split": split, "source": source}


def nested_figures(evaluation: dict) -> list[dict]:
    """The figures of ``make evaluate``'s ``evaluation.json`` (:mod:`irtrepro.report.evaluation`),
    one group per model, each with its SD over folds x seeds and 95 % interval over subjects."""
    figs = []
    for model, m in sorted((evaluation.get("models") or {}).items()):
        # a model's own commit and seeds; files written before entries carried them have
        # only the file's (its last writer's)
        seeds = m.get("seeds") or evaluation.get("seeds") or []
        commit = str(m.get("commit") or evaluation.get("commit"))[:12]
        machine = f"; {', '.join(m['cpu'])}" if m.get("cpu") else ""
        folds = m.get("folds")
        split = (f"{folds if isinstance(folds, str) else f'{folds} outer folds'} x seeds "
                 f"{seeds}; choices on validation subjects of each fold's training subjects")
        if m.get("corpus_seed") is not None:
            split += f"; corpus rendered from seed {m['corpus_seed']}"
        if not m.get("complete"):
            split += f" (incomplete: {m.get('jobs_done')} of {m.get('jobs_planned')} jobs)"
        for name, f in (m.get("figures") or {}).items():
            if f.get("value") is None:
                continue
            figs.append(_fig(
                f"nested protocol: {model}", name, f["value"], units=f.get("units", "1"),
                split=split, source=f"evaluation/evaluation.json (commit {commit}{machine})",
                spread={"sd_folds_seeds": _num(f.get("sd_folds_seeds")),
                        "ci_low": _num(f.get("ci_low")), "ci_high": _num(f.get("ci_high"))},
                spread_kind=(f"SD over {f.get('n_jobs')} jobs (folds x seeds); "
                             f"{f.get('ci_method')}, n = {f.get('n_subjects')}"),
                target=f.get("target"), met=f.get("met")))
    return figs


def collect_results(tables: str | os.PathLike, provenance: dict,
                    evaluation: dict | None = None) -> dict:
    """Headline figures from the CSV tables of a written report.

    Parameters
    ----------
    tables : path-like
        The report's ``tables/`` folder.
    provenance : dict
        The report's provenance block (commit, seeds, timings).
    evaluation : dict, optional
        ``make evaluate``'s summary (``evaluation.json``): its figures come first, in groups
        "nested protocol: <model>".

    Returns
    -------
    dict
        ``figures`` (list of dicts: group, name, value, units, spread, spread_kind, target,
        split, source), ``missing`` (tables that were not there), ``commit``, ``seeds``,
        ``timings_s``.
    """
    tables = Path(tables)
    figs: list[dict] = []
    missing: list[str] = []

    def table(name):
        df = _read(tables, name)
        if df is None:
            missing.append(name)
        return df

    if evaluation:
        figs += nested_figures(evaluation)
    held = "held-out subjects of one subject-wise split"
    seg = table("vision_segmentation_quality")
    if seg is not None:
        targets = {"left_calf": ">= 0.95", "right_calf": ">= 0.95", "vein": ">= 0.75",
                   "perforator": ">= 0.6"}
        for _, r in seg.iterrows():
            figs.append(_fig("segmentation", f"Dice {r['name']}", r["dice"], split=held,
                             source="vision_segmentation_quality.csv",
                             target=targets.get(r["name"])))
    err = table("vision_metric_error")
    if err is not None:
        for _, r in err.iterrows():
            figs.append(_fig("segmentation", f"median abs. error {r['metric']} (U-Net vs truth masks)",
                             r["median_abs_error"], units=str(r.get("units", "")), split=held,
                             source="vision_metric_error.csv",
                             spread={"p95": _num(r["p95_abs_error"])}, spread_kind="p95 over frames"))
    ab = table("breathing_ablation")
    if ab is not None:
        for _, r in ab.iterrows():
            # every row of the ablation: the report's deviations table quotes them
            figs.append(_fig("breathing", f"accuracy {r['method']}", r["accuracy"],
                             split=held + " (frames)", source="breathing_ablation.csv",
                             target=">= 0.95" if r["method"] == "full method" else None))
    rr = table("breathing_rr_error")
    if rr is not None:
        for _, r in rr.iterrows():
            figs.append(_fig("breathing", f"RR MAE vs {r['reference']} ({r['subjects']})",
                             r["mae"], units="min-1", split=str(r["subjects"]),
                             source="breathing_rr_error.csv",
                             spread={"loa_low": _num(r["loa_low"]), "loa_high": _num(r["loa_high"])},
                             spread_kind="95 % limits of agreement (windows overlap)",
                             target="<= 1.5" if "truth" in str(r["reference"]) else None))
    kp = table("keypoints_keypoints_ap")
    if kp is not None:
        for _, r in kp.iterrows():
            for col in ("AP", "AP50", "AP75"):
                spread = ({"min_fold": _num(r["AP_min_fold"])} if col == "AP"
                          and "AP_min_fold" in r else None)
                figs.append(_fig("keypoints", f"{col} {r['model']}", r[col],
                                 split=f"{int(r.get('folds', 0))} folds of held-out subjects",
                                 source="keypoints_keypoints_ap.csv", spread=spread,
                                 spread_kind="lowest fold" if spread else
                                 "per fold in keypoints_keypoints_folds.csv; one training seed"))
    cad = table("keypoints_cadence")
    if cad is not None and {"cadence", "cadence_truth_keypoints"} <= set(cad):
        d = (cad["cadence"] - cad["cadence_truth_keypoints"]).abs()
        figs.append(_fig("keypoints", "cadence MAE (student vs truth keypoints)", d.mean(),
                         units="steps min-1", split="every pose clip of the study",
                         source="keypoints_cadence.csv",
                         spread={"max": _num(d.max()), "n_nan": int(cad["cadence"].isna().sum())},
                         spread_kind="largest error over clips"))
    q = table("cardiopulmonary_questions")
    if q is not None:
        for _, r in q.iterrows():
            figs.append(_fig("planted answers", f"rmcorr {r['x']} ~ {r['y']} ({r['phases']})",
                             r["r"], split="every subject-session",
                             source="cardiopulmonary_questions.csv",
                             spread={"ci_low": _num(r.get("claim_ci_low", r["ci_low"])),
                                     "ci_high": _num(r.get("claim_ci_high", r["ci_high"])),
                                     "classic_ci_low": _num(r["ci_low"]),
                                     "classic_ci_high": _num(r["ci_high"]),
                                     "r_within_min": _num(r.get("r_within_min")),
                                     "r_within_max": _num(r.get("r_within_max"))},
                             spread_kind=(f"{r['claim_ci_method']} CI (the claims' interval); "
                                          f"classic {r['ci_method']} CI (samples "
                                          "autocorrelated: too narrow); range of per-session r")
                             if "claim_ci_method" in r else
                             f"{r['ci_method']} CI (samples autocorrelated: too "
                             "narrow); range of per-session r"))
    ind = table("individual_correlations")
    if ind is not None:
        for _, r in ind.iterrows():
            figs.append(_fig("planted answers", f"r {r['x']} ~ {r['y']}", r["r"],
                             split="subjects", source="individual_correlations.csv",
                             spread={"ci_low": _num(r["ci_low"]), "ci_high": _num(r["ci_high"])},
                             spread_kind=str(r["ci_method"])))
    ch = table("reliability_icc_choice")
    if ch is not None:
        for _, r in ch.iterrows():
            figs.append(_fig("reliability", f"ICC(A,1) {r['metric']} ({r['window']})",
                             r["icc_a1"], split="subjects x sessions",
                             source="reliability_icc_choice.csv",
                             spread={"ci_low": _num(r["ci_low_a1"]), "ci_high": _num(r["ci_high_a1"])},
                             spread_kind=f"{r['ci_level']:.0%} CI ({r['koo_li_a1']})"))
    sens = table("reliability_segmentation_sensitivity")
    if sens is not None:
        for _, r in sens.iterrows():
            for tag, how in (("tta", "augmented segmentations"),
                             ("error", "draws of the measured error")):
                if _num(r[f"{tag}_se_widening"]) is None:
                    continue
                figs.append(_fig(
                    "segmentation uncertainty",
                    f"ICC(A,1) {r['metric']} ({r['window']}) CI under {how}",
                    r["icc"], split="subjects x sessions",
                    source="reliability_segmentation_sensitivity.csv",
                    spread={"ci_low": _num(r[f"{tag}_ci_low"]),
                            "ci_high": _num(r[f"{tag}_ci_high"]),
                            "se_widening": _num(r[f"{tag}_se_widening"]),
                            "segmentation_limited": bool(r["segmentation_limited"])},
                    spread_kind="95 % CI stretched by Rubin's rules over the versions; "
                                "se_widening sqrt(T/W)"))
    return {"commit": provenance.get("git_commit"), "seeds": provenance.get("seeds"),
            "manifest": provenance.get("manifest"),
            "device": provenance.get("device"), "load_average": provenance.get("load_average"),
            "part_settings": provenance.get("part_settings"),
            "timings_s": provenance.get("timings_s"),
            "reused_from_cache": provenance.get("reused_from_cache") or [],
            "figures": figs, "missing": missing,
            "evaluation": None if not evaluation else {
                k: evaluation.get(k) for k in ("protocol", "commit", "seeds", "device")}}


def load_evaluation(out: str | os.PathLike) -> dict | None:
    """``out/evaluation/evaluation.json`` (``make evaluate``'s summary), or None."""
    ev = Path(out) / "evaluation" / "evaluation.json"
    return json.loads(ev.read_text()) if ev.is_file() else None


def write_results(out: str | os.PathLike, provenance: dict, results: dict | None = None
                  ) -> Path:
    """Write ``out/results.json`` and ``out/results.md`` (atomically).

    ``results``: already collected (:func:`collect_results`); default: collected from
    ``out/tables`` and, where ``make evaluate`` has run, ``out/evaluation/evaluation.json``.
    """
    out = Path(out)
    res = results if results is not None else collect_results(
        out / "tables", provenance, load_evaluation(out))
    path = out / "results.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(res, indent=2, default=str) + "\n")
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(render_markdown(res))
    return path


def results_html(results: dict) -> str:
    """The headline figures as an HTML table (the report page's first section)."""
    import html

    rows = []
    for f in results["figures"]:
        spread = ("; ".join(f"{k} {_fmt(v)}" for k, v in f["spread"].items())
                  + f" ({f['spread_kind']})") if f["spread"] else f["spread_kind"]
        target = f["target"] or ""
        if target and f.get("met") is not None:
            target += " (met)" if f["met"] else " (not met)"
        cells = (f["group"], f["name"], _fmt(f["value"]), f["units"], spread, target,
                 f["split"], f["source"])
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                    + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("group", "figure", "value", "units", "spread",
                                               "target", "split", "source"))
    return ('<p class="caption">Headline figures, from results.json (also results.md): each '
            "with its spread and how it was selected; a target counts as met only when the 95 "
            "% interval over subjects clears it (the nested protocol of make evaluate).</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def render_markdown(results: dict, *, command: str | None = None) -> str:
    """``docs/results.md``: one table per group, each figure with spread, split and source.

    ``command``: the command line that rendered it, quoted in the header (default: the
    default study's, ``irtrepro results reports/ --markdown docs/results.md``).
    """
    command = command or "irtrepro results reports/ --markdown docs/results.md"
    manifest, seeds = results.get("manifest"), results.get("seeds") or {}
    study = f"study `{Path(manifest).name}`" if manifest else "study (manifest not recorded)"
    if isinstance(seeds, dict) and seeds.get("generator") is not None:
        study += f" (synthetic, generator seed {seeds['generator']})"
    lines = ["# Results of `make report`", "",
             f"Rendered by `{command}` from the results.json of the {study} (commit "
             f"`{str(results.get('commit'))[:12]}`, report seed "
             f"{seeds.get('report') if isinstance(seeds, dict) else seeds}). Every figure "
             "names the table it comes from; a target counts as met only when the 95 % interval "
             "over subjects clears it (the nested protocol of `make evaluate`), and where no "
             "spread is computed the figure says so.", ""]
    ev = results.get("evaluation")
    if ev:
        lines += ["## the nested protocol (`make evaluate`)", "",
                  f"{ev.get('protocol')} Each model's table names the commit and the machine "
                  "it was measured on (the last digits of a training differ between machines "
                  "whose CPU kernels differ).",
                  ""]
    groups: dict[str, list] = {}
    for f in results["figures"]:
        groups.setdefault(f["group"], []).append(f)
    for g, figs in groups.items():
        lines += [f"## {g}", "", "| figure | value | units | spread | target | split | source |",
                  "|---|---|---|---|---|---|---|"]
        for f in figs:
            spread = ("; ".join(f"{k} {_fmt(v)}" for k, v in f["spread"].items())
                      + f" ({f['spread_kind']})") if f["spread"] else f["spread_kind"]
            name = f["name"].replace("|", "/")
            target = f["target"] or ""
            if target and f.get("met") is not None:
                target += " (met)" if f["met"] else " (**not met**)"
            lines.append(f"| {name} | {_fmt(f['value'])} | {f['units']} | {spread} | "
                         f"{target} | {f['split']} | `{f['source']}` |")
        lines.append("")
    t = results.get("timings_s") or {}
    if t:
        load = results.get("load_average")
        lines += ["## run time of the report (s)", "",
                  f"Machine: {results.get('device') or 'not recorded'}; load average (1, 5, 15 "
                  f"min) at the end of the run: {load if load else 'not recorded'}. Run times "
                  "on a shared machine are upper bounds. A step marked *reused* took its "
                  "results from the cache (`data/cache`): its time is the reuse, not the "
                  "work; `timings_s` in results.json keeps each part's own steps from when "
                  "it was computed.", "", "| step | s |", "|---|---|"]
        reused = set(results.get("reused_from_cache") or [])
        lines += [f"| {k}{' (*reused*)' if k in reused else ''} | {_fmt(v)} |"
                  for k, v in t.items()
                  if not k.startswith(("vision: ", "breathing: ", "keypoints: "))]
        lines.append("")
    if results.get("missing"):
        lines += [f"Tables not in this report: {', '.join(results['missing'])}.", ""]
    return "\n".join(lines)
