"""Fixtures of tests/stats: published data sets and small synthetic studies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def sf1979() -> pd.DataFrame:
    """Shrout & Fleiss (1979) 6 targets x 4 judges, long: target, judge, score."""
    wide = pd.read_csv(DATA / "shrout_fleiss_1979.csv")
    return wide.melt(id_vars="target", var_name="judge", value_name="score")


@pytest.fixture(scope="session")
def pefr() -> pd.DataFrame:
    """Bland & Altman (1986) peak expiratory flow rate (L/min), 17 subjects."""
    return pd.read_csv(DATA / "pefr_bland_altman_1986.csv")


@pytest.fixture(scope="session")
def bland1995() -> pd.DataFrame:
    return pd.read_csv(DATA / "bland1995.csv")


@pytest.fixture(scope="session")
def pastes() -> pd.DataFrame:
    return pd.read_csv(DATA / "pastes.csv", index_col=0)


def _make_cube(n_sub=11, n_ses=3, n_metric=4, seed=0, missing=0.0):
    """Synthetic (metric, subject, session) values with subject and session effects."""
    rng = np.random.default_rng(seed)
    subj = rng.normal(0, 1.0, (n_metric, n_sub, 1))
    sess = rng.normal(0, 0.3, (n_metric, 1, n_ses))
    vals = 30 + subj + sess + rng.normal(0, 0.5, (n_metric, n_sub, n_ses))
    if missing:
        vals[rng.random(vals.shape) < missing] = np.nan
    return vals


@pytest.fixture(scope="session")
def make_cube():
    """Factory of synthetic (metric, subject, session) arrays."""
    return _make_cube


@pytest.fixture
def study_summary():
    """A Study-like phase summary: Dataset with tnv (subject, session, phase, side) and tp."""
    import xarray as xr

    rng = np.random.default_rng(1)
    subjects = [f"S{i:02d}" for i in range(1, 12)]
    sessions = ["CON", "SI", "IS"]
    phases = ["rest", "warmup", "run"]
    sides = ["left", "right"]
    shape = (11, 3, 3, 2)
    tnv = 33 + rng.normal(0, 1, (11, 1, 1, 1)) + rng.normal(0, 0.4, shape)
    tp = 32 + rng.normal(0, 1, (11, 1, 1)) + rng.normal(0, 0.4, (11, 3, 3))
    return xr.Dataset(
        {
            "tnv": (("subject", "session", "phase", "side"), tnv, {"units": "degC"}),
            "tp": (("subject", "session", "phase"), tp, {"units": "degC"}),
            "protocol": (("subject", "session"), np.array([sessions] * 11)),
        },
        coords={"subject": subjects, "session": sessions, "phase": phases, "side": sides},
    )
