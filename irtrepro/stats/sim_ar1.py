"""Repeated-measures data with planted AR(1) noise and a known within-unit correlation.

Used to check the coverage of rmcorr intervals (tests and ``benchmarks/sim_rmcorr_coverage.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from irtrepro.errors import StatsError

__all__ = ["simulate_ar1_rm"]


def simulate_ar1_rm(
    n_units: int, n_time: int, n_reps: int, *, r: float, phi: float, seed: int = 0
) -> pd.DataFrame:
    """Long table of ``n_reps`` independent replicate (x, y) pairs of AR(1) series per unit.

    Each unit ``s`` has ``x = a_s + u``, ``y = b_s + v`` with stationary AR(1) noise
    ``u_t = phi u_(t-1) + e_t``, ``v_t = phi v_(t-1) + f_t`` and ``corr(e_t, f_t) = r``; with the
    same ``phi`` on both sides ``corr(u_t, v_t) = r`` exactly, so ``r`` is the true
    within-unit correlation rmcorr estimates. Offsets ``a_s, b_s`` are N(0, 3^2), independent
    of the noise.

    Parameters
    ----------
    n_units, n_time : int
        Units and samples per unit (time order kept).
    n_reps : int
        Replicates, as columns ``x0..``, ``y0..`` (one rmcorr call covers all of them).
    r : float
        True within-unit correlation, in (-1, 1).
    phi : float
        AR(1) coefficient, in [0, 1).
    seed : int

    Returns
    -------
    DataFrame
        Columns ``unit``, ``t`` and ``x{k}``, ``y{k}`` for ``k < n_reps``.
    """
    if not -1 < r < 1 or not 0 <= phi < 1:
        raise StatsError(f"r={r!r}, phi={phi!r}; expected -1 < r < 1 and 0 <= phi < 1")
    if n_units < 2 or n_time < 4 or n_reps < 1:
        raise StatsError(f"n_units={n_units}, n_time={n_time}, n_reps={n_reps}; expected "
                         ">= 2, >= 4, >= 1")
    rng = np.random.default_rng(seed)
    shape = (n_units, n_reps, n_time)
    e = rng.standard_normal(shape)
    f = r * e + np.sqrt(1 - r * r) * rng.standard_normal(shape)
    # a stationary start: the first sample drawn from the marginal, then the recursion
    scale = 1 / np.sqrt(1 - phi * phi)
    e[..., 0] *= scale
    f[..., 0] *= scale
    u = lfilter([1.0], [1.0, -phi], e, axis=-1)
    v = lfilter([1.0], [1.0, -phi], f, axis=-1)
    u += 3 * rng.standard_normal((n_units, n_reps, 1))
    v += 3 * rng.standard_normal((n_units, n_reps, 1))
    cols = {"unit": np.repeat(np.arange(n_units), n_time), "t": np.tile(np.arange(n_time), n_units)}
    for k in range(n_reps):
        cols[f"x{k}"] = u[:, k].ravel()
        cols[f"y{k}"] = v[:, k].ravel()
    return pd.DataFrame(cols)
