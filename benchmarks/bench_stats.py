"""Benchmark of irtrepro.stats against pingouin loops (prints figures, asserts no time).

1. ICC + SEM + MDC for 276 metrics x 11 subjects x 3 sessions: one ``reliability`` call (six
   ICC forms with CIs, SEM, MDC, typical error, CV, change in mean) and one ``icc`` call,
   versus a Python loop of ``pingouin.intraclass_corr`` over the metrics (its six ICCs with
   CIs; pingouin has no SEM or MDC).
2. rmcorr over 276 (x, y) pairs: one ``rmcorr`` call versus a loop of ``pingouin.rm_corr``.

Before any timing, both sides are checked to agree to 1e-10 on several metrics and pairs
(pingouin's CI rounding switched off for the check). Each side then runs the same number of
times on the same data, interleaved (ours, pingouin, ours, pingouin, ...) so that a change of
machine load hits both; the figure is the best of ``REPEAT`` runs of each side. Timings on a
shared machine are noisy: compare the ratio between runs, not a single run's milliseconds.

Run: ``python benchmarks/bench_stats.py`` (``make bench``).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

N_METRICS, N_SUBJECTS, N_SESSIONS = 276, 11, 3
N_OBS = 20  # rmcorr: observations per subject
REPEAT = 5
CHECK = (0, 7, 100, 275)  # metrics and pairs checked against pingouin
RTOL = 1e-10


def _interleaved(sides: dict, repeat: int = REPEAT) -> dict[str, float]:
    """Best wall time (s) of each callable, run in turn ``repeat`` times each."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def _machine() -> str:
    import numpy

    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # numpy without a dict config: say so rather than guess
        blas = "unknown"
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"machine: {cores} cores ({usable} usable), numpy {numpy.__version__} BLAS {blas}, "
            f"OMP_NUM_THREADS={threads}; load average (1, 5, 15 min): {load}")


def _quiet(fn):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return run


def _check_icc(pg, da, frames, reliability, icc) -> None:
    """Ours equals pingouin on metrics CHECK: ICC, F, df, p, CI; SEM and MDC from its ANOVA."""
    from scipy import stats as st

    table = icc(da)
    rel = reliability(da)
    old = pg.options.get("round.column.CI95")
    pg.options["round.column.CI95"] = None
    try:
        for i in CHECK:
            label = f"m{i:03d}"
            ref = _quiet(lambda i=i: pg.intraclass_corr(frames[i], "subject", "session",
                                                       "value"))()
            ours = table[table.metric == label].set_index("form").loc[ref.Type]
            for a, b in (("icc", "ICC"), ("f", "F"), ("df1", "df1"), ("df2", "df2"),
                         ("p", "pval")):
                np.testing.assert_allclose(ours[a].to_numpy(float), ref[b].to_numpy(float),
                                           rtol=RTOL, err_msg=f"{label} {a}")
            ci = np.vstack(ref.CI95.to_numpy())
            np.testing.assert_allclose(ours.ci_low, ci[:, 0], rtol=RTOL, err_msg=label)
            np.testing.assert_allclose(ours.ci_high, ci[:, 1], rtol=RTOL, err_msg=label)
            aov = _quiet(lambda i=i: pg.anova(data=frames[i], dv="value",
                                              between=["subject", "session"], ss_type=2))()
            sem = np.sqrt(aov.at[2, "MS"])
            mine = rel[rel.metric == label].set_index(["statistic", "term"]).estimate
            np.testing.assert_allclose(mine[("sem", "sqrt(MSE)")], sem, rtol=RTOL)
            np.testing.assert_allclose(mine[("mdc95", "1.96*sqrt(2)*SEM")],
                                       st.norm.ppf(0.975) * np.sqrt(2) * sem, rtol=RTOL)
    finally:
        pg.options["round.column.CI95"] = old


def _check_rmcorr(pg, df, xcols, ycols, rmcorr) -> None:
    """Ours equals pingouin on pairs CHECK: r, df, p; the CI against pingouin's own formula.

    ``rm_corr`` rounds its CI to 2 decimals inside ``compute_esci``; the CI is checked
    against ``compute_esci`` at full precision with pingouin's ``n = df + 2``.
    """
    ours = rmcorr(df, "subject", xcols, ycols)
    for j in CHECK:
        ref = _quiet(lambda j=j: pg.rm_corr(df, xcols[j], ycols[j], "subject"))().iloc[0]
        ci = pg.compute_esci(stat=ref.r, nx=ref.dof + 2, eftype="pearson", decimals=17)
        row = ours.iloc[j]
        np.testing.assert_allclose([row.r, row.df, row.p, row.ci_low, row.ci_high],
                                   [ref.r, ref.dof, ref.pval, *ci], rtol=RTOL,
                                   err_msg=f"pair {j}")
        np.testing.assert_allclose([row.ci_low, row.ci_high], ref.CI95, atol=0.005)


def main() -> None:
    import pingouin as pg

    from irtrepro.stats import icc, reliability, rmcorr

    print(_machine())
    rng = np.random.default_rng(0)
    vals = (30 + rng.normal(0, 1, (N_METRICS, N_SUBJECTS, 1))
            + rng.normal(0, 0.3, (N_METRICS, 1, N_SESSIONS))
            + rng.normal(0, 0.5, (N_METRICS, N_SUBJECTS, N_SESSIONS)))
    da = xr.DataArray(vals, dims=("metric", "subject", "session"),
                      coords={"metric": [f"m{i:03d}" for i in range(N_METRICS)],
                              "subject": [f"S{i:02d}" for i in range(N_SUBJECTS)],
                              "session": ["CON", "SI", "IS"]})
    # pingouin gets its natural input, one long table per metric, split before timing
    long = da.to_dataframe("value").reset_index()
    frames = [g for _, g in long.groupby("metric", sort=False)]

    def pg_icc_loop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for g in frames:
                pg.intraclass_corr(g, "subject", "session", "value")

    _check_icc(pg, da, frames, reliability, icc)
    best = _interleaved({"reliability": lambda: reliability(da), "pingouin": pg_icc_loop,
                         "icc": lambda: icc(da)})
    t_pg = best["pingouin"]
    print(f"ICC + SEM + MDC, {N_METRICS} metrics x {N_SUBJECTS} subjects x {N_SESSIONS} "
          f"sessions (best of {REPEAT} each, interleaved; equal to pingouin to {RTOL:g} on "
          f"metrics {list(CHECK)})")
    print(f"  irtrepro.stats.reliability (one call: 6 ICCs + CIs, SEM, MDC, TE, CV, change): "
          f"{best['reliability'] * 1e3:8.2f} ms")
    print(f"  irtrepro.stats.icc         (one call: 6 ICCs + CIs):                          "
          f"{best['icc'] * 1e3:8.2f} ms")
    print(f"  pingouin.intraclass_corr loop ({N_METRICS} calls: 6 ICCs + CIs each):          "
          f"{t_pg * 1e3:8.2f} ms")
    print(f"  ratio pingouin loop / reliability: {t_pg / best['reliability']:7.1f}x")
    print(f"  ratio pingouin loop / icc:         {t_pg / best['icc']:7.1f}x")

    subj = np.repeat(np.arange(N_SUBJECTS), N_OBS)
    base = rng.normal(size=(N_SUBJECTS * N_OBS, 1))
    xs = base + rng.normal(0, 1, (len(subj), N_METRICS)) + rng.normal(0, 2, (N_SUBJECTS, 1))[subj]
    ys = 0.5 * base + rng.normal(0, 1, (len(subj), N_METRICS))
    xcols = [f"x{i}" for i in range(N_METRICS)]
    ycols = [f"y{i}" for i in range(N_METRICS)]
    df = pd.DataFrame(np.hstack([xs, ys]), columns=xcols + ycols)
    df["subject"] = subj

    def pg_rm_loop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b in zip(xcols, ycols, strict=True):
                pg.rm_corr(df, a, b, "subject")

    _check_rmcorr(pg, df, xcols, ycols, rmcorr)
    best = _interleaved({"rmcorr": lambda: rmcorr(df, "subject", xcols, ycols),
                         "pingouin": pg_rm_loop})
    print(f"rmcorr, {N_METRICS} pairs x {len(df)} observations ({N_SUBJECTS} subjects) "
          f"(best of {REPEAT} each, interleaved; equal to pingouin to {RTOL:g} on pairs "
          f"{list(CHECK)})")
    print(f"  irtrepro.stats.rmcorr (one call):      {best['rmcorr'] * 1e3:8.2f} ms")
    print(f"  pingouin.rm_corr loop ({N_METRICS} calls):    {best['pingouin'] * 1e3:8.2f} ms")
    print(f"  ratio pingouin loop / rmcorr: {best['pingouin'] / best['rmcorr']:7.1f}x")


if __name__ == "__main__":
    main()
