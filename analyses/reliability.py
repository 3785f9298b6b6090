"""Test-retest reliability of every metric across sessions and days.

Summaries per session: the onset window (first 60 s, before the skin responds) and each phase
mean. ICCs (all six forms, F-based CIs as psych::ICC; ICC(A,.) with Satterthwaite df), SEM,
MDC95, typical error, CV%; Bland-Altman of day 1 against day 2.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from irtrepro.errors import StatsError
from irtrepro.plots import bland_altman_plot, icc_forest_plot
from irtrepro.report.part import ReportPart
from irtrepro.stats import bland_altman, icc, reliability
from irtrepro.summaries import CARDIO_SIGNALS, THERMAL_METRICS, present, summary_table

NAME = "reliability"
#: Windows identical in every protocol, where sessions are true repeats.
REPEAT_WINDOWS = ("onset", "warmup", "recovery")


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Test-retest reliability")
    metrics = present(study, (*THERMAL_METRICS, *CARDIO_SIGNALS))
    if not present(study, THERMAL_METRICS):
        part.notes.append("no skin-temperature metrics: reliability of cardiopulmonary "
                          "signals only")
    long = summary_table(study, metrics)
    long = long[long.window.isin(REPEAT_WINDOWS)]
    wide = long.melt(id_vars=["subject", "session", "window"], var_name="metric")
    wide = wide.assign(metric=wide.metric + "@" + wide.window).pivot_table(
        index=["subject", "session"], columns="metric", values="value").reset_index()
    names = [c for c in wide.columns if "@" in c]
    icc_table = icc(wide, "subject", "session", names, errors="warn")
    icc_table[["metric", "window"]] = icc_table.metric.str.split("@", expand=True)
    part.tables["icc"] = (icc_table, "ICCs of per-session summaries across all sessions "
                          "(McGraw & Wong forms with Shrout & Fleiss names; F-based 95 % CIs as "
                          "psych::ICC; ICC(A,.) with Satterthwaite df). Windows: onset = first "
                          "60 s; warmup and recovery phase means (identical in every protocol).")
    rel = reliability(wide, "subject", "session", names, n_boot=200, seed=seed, errors="warn")
    part.tables["reliability"] = (rel, "Reliability per metric and window: SEM as sqrt(MSE) and "
                                  "as SD*sqrt(1-ICC(C,1)), MDC95 = 1.96*sqrt(2)*SEM, typical error "
                                  "(SD of differences / sqrt 2) with chi-square CI, change in mean "
                                  "with t CI, CV% from log-transformed data (Hopkins), 200 subject-"
                                  "level bootstrap resamples (seeded).")
    sub = icc_table.assign(metric=icc_table.metric + " (" + icc_table.window + ")")
    fig = icc_forest_plot(sub, form="ICC(C,1)")
    part.figures["icc_forest"] = (fig, "ICC(C,1) with 95 % CI per metric and window; reference "
                                  "lines at 0.5, 0.75, 0.9 (poor/moderate/good/excellent).")
    # Bland-Altman: day 1 against day 2 (first session of each day), warm-up phase means
    if "day" in study:
        day = study["day"].isel(subject=0).to_series() if study["day"].ndim == 2 \
            else study["day"].to_series()
        d1 = [s for s, d in day.items() if d == 1][:1]
        d2 = [s for s, d in day.items() if d == 2][:1]
        for m in [x for x in ("tnv", "tp", "hr") if x in metrics]:
            if not (d1 and d2):
                break
            w = long[long.window == "warmup"].pivot(index="subject", columns="session", values=m)
            x, y = w[d1[0]].to_numpy(), w[d2[0]].to_numpy()
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
