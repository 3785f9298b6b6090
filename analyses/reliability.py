"""Test-retest reliability of every metric across sessions and days.

Summaries per session: the onset window (first 60 s, before the skin responds) and each phase
mean. ICCs (all six forms, F-based CIs as psych::ICC; ICC(A,.) with Satterthwaite df), SEM,
MDC95, typical error, CV%; Bland-Altman of day 1 against day 2.

Headline ICC: ICC(A,1) (two-way random, absolute agreement, single measurement). Sessions are
repeats on different days, and a shift between days (skin temperature on another day, camera
set-up) is measurement error for test-retest, so absolute agreement is the form that answers
"does a second session give the same value" (Koo & Li 2016; Weir 2005). ICC(C,1) (consistency)
ignores that shift and is shown beside it; a gap between the two measures the systematic
session effect. Each CI is read with Koo & Li's bands applied to its bounds.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from irtrepro.errors import StatsError
from irtrepro.plots import bland_altman_plot, icc_forest_plot
from irtrepro.report.part import ReportPart
from irtrepro.stats import bland_altman, icc, koo_li, reliability
from irtrepro.summaries import CARDIO_SIGNALS, ONSET_WINDOW, THERMAL_METRICS, present

NAME = "reliability"
#: Windows identical in every protocol, where sessions are true repeats: the first minute of
#: exercise (before the skin responds) and the warm-up and recovery phases.
REPEAT_WINDOWS = {"onset": ONSET_WINDOW, "warmup": "warmup", "recovery": "recovery"}
#: Headline form and its reason (stated in every caption that shows it).
HEADLINE = "ICC(A,1)"
HEADLINE_REASON = ("ICC(A,1) (absolute agreement) is the headline: sessions are repeats on "
                   "different days, and a systematic shift between days is measurement error "
                   "for test-retest reliability (Koo & Li 2016; Weir 2005); ICC(C,1) "
                   "(consistency, ignores that shift) is shown beside it")


def by_window(table):
    """A stats table of a window summary with ``metric`` the variable and its ``window``.

    :func:`irtrepro.stats.icc` labels each metric ``"tnv/onset"`` and adds ``variable`` and
    ``window`` columns; the report's tables name the variable ``metric`` beside ``window``.
    """
    table = table.drop(columns="metric").rename(columns={"variable": "metric"})
    first = ["metric", "window"]
    return table[first + [c for c in table.columns if c not in first]]


def icc_choice_table(icc_table):
    """ICC(A,1) and ICC(C,1) side by side per metric and window, with Koo & Li readings."""
    out = None
    for form, tag in (("ICC(A,1)", "a1"), ("ICC(C,1)", "c1")):
        rows = icc_table[icc_table.form == form]
        part = rows[["metric", "window", "icc", "ci_low", "ci_high"]].rename(columns={
            "icc": f"icc_{tag}", "ci_low": f"ci_low_{tag}", "ci_high": f"ci_high_{tag}"})
        part[f"koo_li_{tag}"] = koo_li(rows.ci_low, rows.ci_high)
        out = part if out is None else out.merge(part, on=["metric", "window"])
    out["headline"] = HEADLINE
    out["ci_level"] = icc_table.ci_level.iloc[0] if len(icc_table) else 0.95
    return out.reset_index(drop=True)


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Test-retest reliability")
    metrics = present(study, (*THERMAL_METRICS, *CARDIO_SIGNALS))
    if not present(study, THERMAL_METRICS):
        part.notes.append("no skin-temperature metrics: reliability of cardiopulmonary "
                          "signals only")
    summary = study.irt.summary(REPEAT_WINDOWS, metrics, side="both")
    summary = summary.drop_vars("window_definition")
    icc_table = by_window(icc(summary, errors="warn"))
    part.tables["icc"] = (icc_table, "ICCs of per-session summaries across all sessions "
                          "(McGraw & Wong forms with Shrout & Fleiss names; F-based 95 % CIs as "
                          "psych::ICC; ICC(A,.) with Satterthwaite df). Windows: onset = first "
                          "60 s; warmup and recovery phase means (identical in every protocol). "
                          + HEADLINE_REASON + ".")
    part.tables["icc_choice"] = (icc_choice_table(icc_table), "ICC(A,1) and ICC(C,1) per metric "
                                 "and window with 95 % CIs and the Koo & Li (2016) reading of "
                                 "each CI from its bounds (poor < 0.5, moderate 0.5-0.75, good "
                                 "0.75-0.9, excellent > 0.9; e.g. 'moderate to excellent'). "
                                 + HEADLINE_REASON + ".")
    rel = by_window(reliability(summary, n_boot=200, seed=seed, errors="warn",
                                sem_form=HEADLINE))
    part.tables["reliability"] = (rel, "Reliability per metric and window: SEM as sqrt(MSE) and "
                                  "as SD*sqrt(1-ICC(A,1)) (the headline form), MDC95 = 1.96*sqrt(2)*SEM, typical error "
                                  "(SD of differences / sqrt 2) with chi-square CI, change in mean "
                                  "with t CI, CV% from log-transformed data (Hopkins), 200 subject-"
                                  "level bootstrap resamples (seeded).")
    sub = icc_table.assign(metric=icc_table.metric + " (" + icc_table.window + ")")
    fig = icc_forest_plot(sub, form=("ICC(A,1)", "ICC(C,1)"))
    part.figures["icc_forest"] = (fig, "ICC(A,1) (filled) and ICC(C,1) (open) with 95 % CIs per "
                                  "metric and window; reference lines at 0.5, 0.75, 0.9 (Koo & "
                                  "Li 2016: poor/moderate/good/excellent). "
                                  + HEADLINE_REASON + ".")
    # Bland-Altman: day 1 against day 2 (first session of each day), warm-up phase means
    if "day" in study:
        day = study["day"].isel(subject=0).to_series() if study["day"].ndim == 2 \
            else study["day"].to_series()
        d1 = [s for s, d in day.items() if d == 1][:1]
        d2 = [s for s, d in day.items() if d == 2][:1]
        for m in [x for x in ("tnv", "tp", "hr") if x in metrics]:
            if not (d1 and d2):
                break
            w = summary[m].sel(window="warmup")
            x, y = w.sel(session=d1[0]).values, w.sel(session=d2[0]).values
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 3:
                part.notes.append(f"Bland-Altman {m}: fewer than 3 subjects with both days")
                continue
            try:
                ba = bland_altman(x[ok], y[ok], loa_ci="exact")
            except StatsError as exc:
                part.notes.append(f"Bland-Altman {m}: {exc}")
                continue
            units = study[m].attrs.get("units", "")
            fig = bland_altman_plot(ba, units=units, measure=f"{m} warm-up mean",
                                    x_name=f"day 1 ({d1[0]})", y_name=f"day 2 ({d2[0]})")
            part.figures[f"bland_altman_{m}"] = (fig, f"Bland-Altman of the warm-up mean of {m} "
                                                 f"({units}), day 1 ({d1[0]}) minus day 2 "
                                                 f"({d2[0]}): bias and 95 % limits (1.96 SD) "
                                                 "with exact CIs.")
            part.tables[f"bland_altman_{m}"] = (ba.to_frame().assign(metric=m, window="warmup"),
                                                f"Bland-Altman statistics of {m}, warm-up.")
    return part


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
