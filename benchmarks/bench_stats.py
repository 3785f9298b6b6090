"""Benchmark of irtrepro.stats against pingouin loops (prints figures, asserts nothing).

1. ICC + SEM for 276 metrics x 11 subjects x 3 sessions: one ``reliability`` call (every ICC
   form, SEM, MDC, typical error, CV, change in mean) and one ``icc`` call, versus a Python
   loop of ``pingouin.intraclass_corr`` over the metrics (ICCs only).
2. rmcorr over 276 (x, y) pairs: one ``rmcorr`` call versus a loop of ``pingouin.rm_corr``.

Run: ``python benchmarks/bench_stats.py`` (``make bench``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

N_METRICS, N_SUBJECTS, N_SESSIONS = 276, 11, 3


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import pingouin as pg

    from irtrepro.stats import icc, reliability, rmcorr

    rng = np.random.default_rng(0)
    vals = (30 + rng.normal(0, 1, (N_METRICS, N_SUBJECTS, 1))
            + rng.normal(0, 0.3, (N_METRICS, 1, N_SESSIONS))
            + rng.normal(0, 0.5, (N_METRICS, N_SUBJECTS, N_SESSIONS)))
    da = xr.DataArray(vals, dims=("metric", "subject", "session"),
                      coords={"metric": [f"m{i:03d}" for i in range(N_METRICS)],
                              "subject": [f"S{i:02d}" for i in range(N_SUBJECTS)],
                              "session": ["CON", "SI", "IS"]})
    long = da.to_dataframe("value").reset_index()
    frames = [g for _, g in long.groupby("metric", sort=False)]

    def pg_loop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for g in frames:
                pg.intraclass_corr(g, "subject", "session", "value")

    t_rel = _best(lambda: reliability(da), 5)
    t_icc = _best(lambda: icc(da), 5)
    t_pg = _best(pg_loop, 1)
    # same numbers
    ours = icc(da)
    ref = pg.intraclass_corr(frames[7], "subject", "session", "value")
    np.testing.assert_allclose(ours[ours.metric == "m007"].icc, ref.ICC, rtol=1e-10)

    print(f"ICC + SEM, {N_METRICS} metrics x {N_SUBJECTS} subjects x {N_SESSIONS} sessions")
    print(f"  irtrepro.stats.reliability (one call, ICCs+SEM+MDC+TE+CV): {t_rel * 1e3:9.1f} ms")
    print(f"  irtrepro.stats.icc         (one call, six ICCs + CIs):     {t_icc * 1e3:9.1f} ms")
    print(f"  pingouin.intraclass_corr loop ({N_METRICS} calls):            {t_pg * 1e3:9.1f} ms")
    print(f"  ratio pingouin loop / reliability: {t_pg / t_rel:7.1f}x")
    print(f"  ratio pingouin loop / icc:         {t_pg / t_icc:7.1f}x")

    # rmcorr over 276 pairs: 11 subjects x 20 observations
    n_obs = 20
    subj = np.repeat(np.arange(N_SUBJECTS), n_obs)
    base = rng.normal(size=(N_SUBJECTS * n_obs, 1))
    xs = base + rng.normal(0, 1, (len(subj), N_METRICS)) + rng.normal(0, 2, (N_SUBJECTS, 1))[subj]
    ys = 0.5 * base + rng.normal(0, 1, (len(subj), N_METRICS))
    df = pd.DataFrame(np.hstack([xs, ys]), columns=[f"x{i}" for i in range(N_METRICS)]
                      + [f"y{i}" for i in range(N_METRICS)])
    df["subject"] = subj
    xcols = [f"x{i}" for i in range(N_METRICS)]
    ycols = [f"y{i}" for i in range(N_METRICS)]

    def pg_rm():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b in zip(xcols, ycols, strict=True):
                pg.rm_corr(df, a, b, "subject")

    t_rm = _best(lambda: rmcorr(df, "subject", xcols, ycols), 5)
    t_pgrm = _best(pg_rm, 1)
    ours = rmcorr(df, "subject", xcols[:1], ycols[:1]).r.iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abs(ours - pg.rm_corr(df, xcols[0], ycols[0], "subject").r.iloc[0]) < 1e-10
    print(f"rmcorr, {N_METRICS} pairs x {len(df)} observations ({N_SUBJECTS} subjects)")
    print(f"  irtrepro.stats.rmcorr (one call): {t_rm * 1e3:9.1f} ms")
    print(f"  pingouin.rm_corr loop ({N_METRICS} calls): {t_pgrm * 1e3:9.1f} ms")
    print(f"  ratio pingouin loop / rmcorr: {t_pgrm / t_rm:7.1f}x")


if __name__ == "__main__":
    main()
