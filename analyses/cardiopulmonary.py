"""Skin temperature against the cardiopulmonary response.

TP against HR and VO2 in intervals and recovery; TP entropy against TCORE in the warm-up; TNV
against TCORE. Per-subject correlations (range over subjects, Fisher-z pooled) and the
repeated-measures correlation; a heatmap of every metric x signal pair with Holm control.

Samples are 1 s apart and strongly autocorrelated, so the classic rmcorr interval (every sample
independent) is far too narrow. The study's claims rest on the subject-session (cluster)
bootstrap interval, reported beside the classic one, a moving-block bootstrap and a Bretherton
effective-n interval (:func:`irtrepro.stats.rmcorr_intervals`).
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from irtrepro.errors import StatsError
from irtrepro.plots.timecourse import heatmap
from irtrepro.report.part import ReportPart
from irtrepro.stats import p_adjust, rmcorr_intervals, windowed_corr
from irtrepro.stats.rmcorr_ci import ci_columns
from irtrepro.summaries import CARDIO_SIGNALS, THERMAL_METRICS, one_side, present

NAME = "cardiopulmonary"
#: The questions of the reference study: (metric, signal, phases).
QUESTIONS = (("tp", "hr", ("intervals", "recovery")), ("tp", "vo2", ("intervals", "recovery")),
             ("tp_entropy", "tcore", ("warmup",)), ("tnv", "tcore", ("warmup", "steady")))
#: Bootstrap draws of the question table (4 pairs, vectorised: well under a second) and of the
#: heatmap grid (cluster bootstrap only; the Monte Carlo error of a 95 % percentile bound at
#: 1000 draws is about 0.01 in r, below the digits the report shows).
N_BOOT = 1000
#: The interval the study's claims rest on.
CLAIM_CI = "cluster_boot"


def _long(study: xr.Dataset, names, phases) -> pd.DataFrame:
    ds = one_side(study)[list(names) + ["phase"]]
    df = ds.to_dataframe().reset_index()
    df = df[df.phase.isin(phases)].dropna(subset=list(names))
    # one unit of repeated measures = one subject's session
    df["unit"] = df["subject"].astype(str) + "/" + df["session"].astype(str)
    # time order within a unit: the block bootstrap and lag-1 autocorrelations rely on it
    return df.sort_values(["unit", "time"], kind="stable").reset_index(drop=True)


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Skin temperature and the cardiopulmonary response")
    thermal = present(study, THERMAL_METRICS)
    signals = present(study, CARDIO_SIGNALS)
    if not thermal:
        part.notes.append("no skin-temperature metrics in the Study: analysis left out")
        return part
    rows, per_subject = [], []
    for metric, signal, phases in QUESTIONS:
        if metric not in thermal or signal not in signals:
            part.notes.append(f"{metric} vs {signal}: variable missing")
            continue
        df = _long(study, (metric, signal), phases)
        # each subject-session is a unit: sessions carry their own offsets (day effects)
        try:
            rm = rmcorr_intervals(df, "unit", metric, signal, n_boot=N_BOOT,
                                  seed=seed).assign(phases="+".join(phases))
            wc = windowed_corr(df, "unit", metric, signal)
        except StatsError as exc:  # too few samples for this question: said, not a crash
            part.notes.append(f"{metric} vs {signal} ({'+'.join(phases)}): left out: {exc}")
            continue
        ps = wc.per_subject.assign(metric=metric, signal=signal, phases="+".join(phases))
        per_subject.append(ps)
        pooled = wc.pooled.iloc[0]
        rows.append(rm.assign(r_within_pooled=pooled["r"], r_within_min=pooled["r_min"],
                              r_within_max=pooled["r_max"], n_units=pooled["n_subjects"]))
    if rows:
        table = pd.concat(rows, ignore_index=True)
        lo, hi = ci_columns(CLAIM_CI, table["ci_level"].iloc[0])
        table["claim_ci_low"], table["claim_ci_high"] = table[lo], table[hi]
        table["claim_ci_method"] = (f"{CLAIM_CI}: percentile bootstrap over subject-sessions, "
                                    f"n_boot={N_BOOT}")
        part.tables["questions"] = (table, "Repeated-measures correlation (rmcorr, each "
                                    "subject-session a unit) and per-session within-subject "
                                    "Pearson r (Fisher-z pooled, with the range over "
                                    "subject-sessions) for the study's questions, in the phases "
                                    "named. The 1-s samples are autocorrelated, so the classic "
                                    "interval (ci_low/ci_high, Fisher z with n_eff = df + 2) and "
                                    "p are far too narrow; the study's claims rest on the "
                                    "subject-session cluster bootstrap (claim_ci_low/high = "
                                    "cluster_boot_ci95_*). Beside it: a moving-block bootstrap "
                                    "within sessions (block_boot_*, AR(1) plug-in block length, "
                                    "known to under-cover somewhat) and the Bretherton "
                                    "effective-n interval (neff_*, df_eff, p_neff).")
        part.tables["per_subject"] = (pd.concat(per_subject, ignore_index=True),
                                      "Per subject-session correlations behind the table above.")
    # every metric x signal pair, all exercise phases, Holm and BH across the grid
    df = _long(study, thermal + signals, ("warmup", "steady", "intervals", "recovery"))
    xs = [m for m in thermal for _ in signals]
    ys = [s for _ in thermal for s in signals]
    grid = rmcorr_intervals(df, "unit", xs, ys, methods=["cluster_boot", "neff"],
                            n_boot=N_BOOT, seed=seed, errors="warn")
    grid["p_holm"] = p_adjust(grid["p"].to_numpy(), "holm")
    grid["p_bh"] = p_adjust(grid["p"].to_numpy(), "bh")
    grid["significant_holm"] = grid["p_holm"] < 0.05
    grid["p_neff_holm"] = p_adjust(grid["p_neff"].to_numpy(), "holm")
    grid["significant_neff_holm"] = grid["p_neff_holm"] < 0.05
    part.tables["heatmap"] = (grid, "Repeated-measures correlation of every skin metric with "
                              "every cardiopulmonary signal over all exercise phases; p adjusted "
                              "by Holm (family-wise) and Benjamini-Hochberg (FDR). p and the "
                              "classic CI treat autocorrelated 1-s samples as independent and "
                              "are far too optimistic; read the subject-session cluster "
                              "bootstrap CI (cluster_boot_ci95_*) and the effective-n p "
                              "(p_neff, p_neff_holm).")
    fig = heatmap(grid, row="x", col="y", value="r", mark="significant_neff_holm",
                  title="rmcorr r, * Holm-adjusted effective-n p < 0.05")
    part.figures["heatmap"] = (fig, "Repeated-measures correlation r of skin metrics (rows) with "
                               "cardiopulmonary signals (columns); * Holm-adjusted p < 0.05 "
                               "with the Bretherton effective sample size (the classic p "
                               "treats autocorrelated samples as independent).")
    if "tp" in thermal and "hr" in signals:
        import matplotlib.pyplot as plt

        d = _long(study, ("tp", "hr"), ("intervals", "recovery"))
        fig, ax = plt.subplots(figsize=(5, 4))
        for _i, (_, g) in enumerate(d.groupby("subject")):
            ax.plot(g.hr, g.tp, ".", ms=2, alpha=0.5)
        ax.set_xlabel("heart rate (1/min)")
        ax.set_ylabel("TP, perforator skin temperature (degC)")
        ax.set_title("TP against HR in intervals and recovery (colour = subject)", fontsize=9)
        fig.tight_layout()
        part.figures["tp_hr"] = (fig, "TP against HR, all samples of the intervals and recovery "
                                 "phases; one colour per subject.")
    return part


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
