"""Brute-force check of the small-sample df of :func:`irtrepro.stats.fit_mixed`.

Simulates a random-intercept model with few, unequal groups and a between-group covariate
whose true effect is 0, fits each data set once, and prints the rejection rate of the 5 % test
of that effect with Wald (normal), Satterthwaite and Kenward-Roger inference, and the mean df.
A calibrated test rejects 5 % (Monte Carlo SE about 1 % with 500 data sets).

    python benchmarks/sim_mixed_df.py [n_sim] [seed]
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from scipy import stats as st

from irtrepro.stats import fit_mixed
from irtrepro.stats._lmm_inference import LmmDesign


def main(n_sim: int = 500, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    sizes = np.array([2, 3, 3, 4, 5, 6, 8, 9])  # 8 subjects, unbalanced
    g = np.repeat(np.arange(len(sizes)), sizes)
    xb = rng.normal(size=len(sizes))[g]  # between-subject covariate (true slope 0)
    xw = rng.normal(size=len(g))  # within-subject covariate (true slope 0.5)
    rej = {"wald": 0, "satterthwaite": 0, "kenward-roger": 0}
    dfs = {"satterthwaite": [], "kenward-roger": []}
    done = 0
    for _ in range(n_sim):
        y = 1.0 * rng.normal(size=len(sizes))[g] + 0.5 * xw + rng.normal(size=len(g))
        df = pd.DataFrame({"y": y, "xb": xb, "xw": xw, "subject": g})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = fit_mixed("y ~ xb + xw", df, groups="subject", df_method="wald")
        if not m.converged or any("singular" in w for w in m.warnings):
            continue
        done += 1
        des = LmmDesign.from_statsmodels(m.model, "subject")
        c = np.array([[0.0, 1.0, 0.0]])
        est = m.fixed.estimate.iloc[1]
        rej["wald"] += abs(m.fixed.z.iloc[1]) > st.norm.ppf(0.975)
        d_s, v_s = des.satterthwaite(c)
        rej["satterthwaite"] += abs(est / np.sqrt(v_s[0])) > st.t.ppf(0.975, d_s[0])
        d_k, v_k, _ = des.kenward_roger(c)
        rej["kenward-roger"] += abs(est / np.sqrt(v_k[0])) > st.t.ppf(0.975, d_k[0])
        dfs["satterthwaite"].append(d_s[0])
        dfs["kenward-roger"].append(d_k[0])
    print(f"{done} non-singular fits of {n_sim} (8 subjects, sizes {sizes.tolist()})")
    for k, v in rej.items():
        extra = f", mean df {np.mean(dfs[k]):.2f}" if k in dfs else ""
        print(f"{k:>14}: rejection rate {v / done:.3f} (nominal 0.05){extra}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
