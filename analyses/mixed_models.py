"""Mixed models of skin temperature by phase and protocol (declared in irtrepro.stats.models).

Each declared :class:`~irtrepro.stats.ModelSpec` is fitted to phase means per subject and
session; add your own spec to ``SPECS`` (or a YAML file, see the README) and rerun.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xarray as xr

from irtrepro.report.part import ReportPart
from irtrepro.stats import compare, default_specs, load_specs
from irtrepro.summaries import THERMAL_METRICS, one_side, phase_means, present

NAME = "mixed_models"
#: The study's default models plus every entry of analyses/models.yaml (add yours there).
SPECS = default_specs() + load_specs(Path(__file__).with_name("models.yaml"))


def phase_mean_table(study: xr.Dataset) -> pd.DataFrame:
    """Long table: subject, session, protocol, day, phase, speed and skin metrics."""
    vs = present(study, ("speed", *THERMAL_METRICS))
    pm = phase_means(one_side(study)[vs], study["phase"]).to_dataframe().reset_index()
    meta = xr.Dataset({k: study[k] if "subject" in study[k].dims
                       else study[k].expand_dims(subject=study.subject)
                       for k in ("protocol", "day")})
    ses = meta.to_dataframe().reset_index()
    out = pm.merge(ses, on=["subject", "session"], how="left").dropna(subset=vs)
    # category order sets the reference levels of the treatment contrasts: warm-up and CON
    for col, first in (("phase", ["warmup", "steady", "intervals", "recovery"]),
                       ("protocol", ["CON", "SI", "IS"])):
        levels = [v for v in first if v in set(out[col])]
        levels += sorted(set(out[col]) - set(levels))
        out[col] = pd.Categorical(out[col], categories=levels)
    return out


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Mixed models")
    if not present(study, ("tnv",)):
        part.notes.append("no TNV in the Study: mixed models left out")
        return part
    data = phase_mean_table(study)
    fits = {}
    for spec in SPECS:
        try:
            res = spec.fit(data)
        except Exception as exc:  # report and carry on with the other models
            part.notes.append(f"model {spec.name} failed: {type(exc).__name__}: {exc}")
            continue
        fits[spec.name] = res
        part.tables[f"{spec.name}_fixed"] = (res.fixed, f"{spec.name}: {spec.description}. "
                                             f"Fixed effects ({spec.formula}, groups "
                                             f"{spec.groups}; REML={spec.reml}): t tests and 95 % "
                                             "t CIs with Satterthwaite df (as lmerTest); "
                                             "converged: " + str(res.converged) + ".")
        part.tables[f"{spec.name}_random"] = (res.random, f"{spec.name}: variance components.")
        for w in res.warnings:
            part.notes.append(f"model {spec.name}: {w}")
    summary = pd.DataFrame([{"model": n, "llf": r.llf, "aic": r.aic, "bic": r.bic,
                             "icc": r.icc, "r2_marginal": r.r2_marginal,
                             "r2_conditional": r.r2_conditional, "converged": r.converged}
                            for n, r in fits.items()])
    part.tables["summary"] = (summary, "Fit statistics: log-likelihood, AIC, BIC (REML fits "
                              "compare only models with the same fixed part), ICC, Nakagawa "
                              "marginal and conditional R2.")
    names = list(fits)
    if len(names) >= 2:
        part.tables["comparison"] = (compare(fits[names[0]], fits[names[1]]),
                                     f"Likelihood-ratio test {names[0]} vs {names[1]} "
                                     "(refitted by ML where needed); p_mixture: 50:50 "
                                     "chi-square mixture for a random effect tested on the "
                                     "boundary (Self & Liang 1987).")
    return part


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
