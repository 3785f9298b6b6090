"""Auxiliary features: camera respiratory rate against the cart's, cadence from keypoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.plots import bland_altman_plot
from irtrepro.report.part import ReportPart
from irtrepro.stats import bland_altman
from irtrepro.summaries import present

NAME = "auxiliary"


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Auxiliary features: breathing and cadence from thermal cameras")
    if present(study, ("rf_irt", "rf")) == ["rf_irt", "rf"]:
        both = study[["rf_irt", "rf"]].to_dataframe().dropna()
        # one pair per subject-session-phase: the samples are autocorrelated within a clip
        both = both.join(study["phase"].to_series()).reset_index()
        pairs = both.groupby(["subject", "session", "phase"])[["rf_irt", "rf"]].mean()
        ba = bland_altman(pairs["rf_irt"].to_numpy(), pairs["rf"].to_numpy(), loa_ci="exact")
        part.tables["rf_agreement"] = (ba.to_frame().assign(n_pairs=len(pairs)),
                                       "Camera respiratory rate (rf_irt) minus cart breathing "
                                       "frequency (1/min), one pair per subject, session and phase "
                                       "(means over the recorded clips); exact CIs.")
        part.figures["rf_bland_altman"] = (bland_altman_plot(ba, units="1/min",
                                                             measure="respiratory rate",
                                                             x_name="camera", y_name="cart"),
                                           "Bland-Altman of camera against cart respiratory rate.")
    else:
        part.notes.append("no camera respiratory rate (rf_irt) in the Study")
    if present(study, ("cadence",)):
        c = study["cadence"].to_dataframe().dropna()
        c = c.join(study["speed"].to_series()).reset_index()
        summ = c.groupby(["subject", "session"]).agg(cadence=("cadence", "mean"),
                                                     speed=("speed", "mean"),
                                                     n=("cadence", "size")).reset_index()
        r = np.corrcoef(summ.cadence, summ.speed)[0, 1] if len(summ) > 2 else np.nan
        part.tables["cadence"] = (summ.assign(r_cadence_speed=r),
                                  "Cadence from keypoints (steps/min) per subject and session, "
                                  "with the treadmill speed (km/h) at the clips.")
    else:
        part.notes.append("no cadence from keypoints in the Study")
    if not part.tables:
        part.tables["status"] = (pd.DataFrame({"feature": ["rf_irt", "cadence"],
                                               "available": [False, False]}),
                                 "Auxiliary features available in the Study.")
    return part


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
