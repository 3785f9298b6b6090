"""Time courses: mean ± SD over subjects of speed, HR, VO2, TCORE and skin metrics per protocol."""

from __future__ import annotations

import xarray as xr

from irtrepro.plots.timecourse import time_course_figure
from irtrepro.report.part import ReportPart
from irtrepro.summaries import CARDIO_SIGNALS, THERMAL_METRICS, one_side, phase_means, present

NAME = "time_courses"


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Time courses per protocol")
    cardio = present(study, ("speed", "hr", "vo2", "tcore"))
    thermal = present(study, THERMAL_METRICS)
    if not thermal:
        part.notes.append("no skin-temperature metrics in the Study: thermal panels left out")
    for name, vs in (("cardio", cardio), ("skin", thermal)):
        if vs:
            fig = time_course_figure(study, vs, band="sd")
            part.figures[name] = (fig, f"Mean ± SD over subjects (n = {study.sizes['subject']}) "
                                       f"of {', '.join(vs)} per session/protocol; thermal "
                                       "metrics for both calves; phases shaded.")
    vs = present(study, ("speed", *CARDIO_SIGNALS, *THERMAL_METRICS))
    pm = phase_means(one_side(study)[vs], study["phase"])
    mean = pm.mean("subject").to_dataframe().add_suffix("_mean")
    sd = pm.std("subject", ddof=1).to_dataframe().add_suffix("_sd")
    table = mean.join(sd).dropna(how="all").reset_index()  # no row for phases a protocol lacks
    table = table[["session", "phase"] + [c for v in vs for c in (f"{v}_mean", f"{v}_sd")]]
    part.tables["phase_means"] = (table, "Phase means per session: mean and SD over subjects "
                                         "of each subject's time average within the phase "
                                         "(units as in the Study: speed km/h, HR 1/min, VO2 "
                                         "mL/min, temperatures degC, entropy bits).")
    return part


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
