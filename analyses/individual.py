"""Individual differences: ΔTNV against vIAT, and the TCORE-TNV gradient by vIAT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.plots.timecourse import scatter_fit
from irtrepro.report.part import ReportPart
from irtrepro.stats import between_subject_corr
from irtrepro.summaries import core_skin_gradient, delta_tnv, one_side, present

NAME = "individual"


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Individual differences: ΔTNV and vIAT")
    if not present(study, ("tnv",)) or "viat" not in study:
        part.notes.append("TNV or vIAT missing: analysis left out")
        return part
    ds = one_side(study)
    dtnv = delta_tnv(ds["tnv"])  # (subject, session)
    per_subject = dtnv.mean("session", skipna=True)
    n_ok = int(np.isfinite(per_subject.values).sum())
    if n_ok < 4:  # e.g. recordings shorter than the 480-600 s window of delta TNV
        part.notes.append(f"ΔTNV available for {n_ok} subject(s) (a correlation with CI needs "
                          ">= 4): analysis left out")
        return part
    rows = [between_subject_corr(per_subject, study["viat"]).assign(
        x="delta_tnv (mean of sessions)", y="viat")]
    for s in study.session.values:
        rows.append(between_subject_corr(dtnv.sel(session=s), study["viat"]).assign(
            x=f"delta_tnv ({s})", y="viat"))
    fig = scatter_fit(study["viat"].values, per_subject.values, labels=study.subject.values,
                      xlabel="vIAT (km/h)", ylabel="ΔTNV, end of warm-up minus onset (degC)",
                      title="ΔTNV against vIAT")
    part.figures["delta_tnv_viat"] = (fig, "ΔTNV (mean TNV 480-600 s minus 0-60 s after exercise "
                                      "onset, mean of sessions) against vIAT, with least-squares "
                                      "line and 95 % confidence band.")
    if present(study, ("tcore",)):
        grad = core_skin_gradient(ds["tcore"], ds["tnv"], ds["phase"]).mean("session")
        rows.append(between_subject_corr(grad, study["viat"]).assign(
            x="tcore - tnv gradient (steady+intervals)", y="viat"))
        fig = scatter_fit(study["viat"].values, grad.values, labels=study.subject.values,
                          xlabel="vIAT (km/h)", ylabel="TCORE - TNV (degC)",
                          title="Core-to-skin gradient against vIAT")
        part.figures["gradient_viat"] = (fig, "Mean TCORE - TNV gradient in the steady and "
                                         "interval phases (mean of sessions) against vIAT.")
    table = pd.concat(rows, ignore_index=True)
    part.tables["correlations"] = (table, "Between-subject Pearson correlations with Fisher-z "
                                   "95 % CIs; n = subjects with both values.")
    values = pd.DataFrame({"subject": study.subject.values, "viat": study["viat"].values,
                           "delta_tnv": per_subject.values})
    part.tables["delta_tnv"] = (values, "Per-subject ΔTNV (degC, mean of sessions) and vIAT "
                                "(km/h).")
    return part


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
