"""analyses/reliability.py: summaries on a ``window`` dim; tables keep ``metric`` + ``window``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import irtrepro as irt
from irtrepro.report.run import find_analyses, load_analysis
from irtrepro.stats import icc
from irtrepro.summaries import one_side


@pytest.fixture(scope="module")
def part():
    study = irt.example_study(8, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study, load_analysis("reliability", find_analyses()).run(study, seed=0)


def test_tables_have_metric_and_window_columns(part):
    _, p = part
    for key in ("icc", "reliability", "icc_choice"):
        table = p.tables[key][0]
        assert list(table.columns[:2]) == ["metric", "window"], key
        assert set(table.metric) == {"hr", "tnv"}, key
        assert not table.metric.str.contains("@|/").any(), key
        assert set(table.window) == {"onset", "warmup", "recovery"}, key


def test_icc_numbers_equal_a_hand_built_long_table(part):
    study, p = part
    table = p.tables["icc"][0].set_index(["metric", "window", "form"])
    ds = one_side(study)
    tnv = ds.tnv.where((ds.time >= 0) & (ds.time < 60)).mean("time")
    hr = ds.hr.where(ds.phase == "recovery").mean("time")
    for (metric, window), da in {("tnv", "onset"): tnv, ("hr", "recovery"): hr}.items():
        long = da.to_dataframe("y").reset_index()
        expected = icc(long, "subject", "session", "y").set_index("form")
        actual = table.xs((metric, window), level=["metric", "window"])
        for col in ("icc", "ci_low", "ci_high", "f", "p"):
            np.testing.assert_allclose(actual[col], expected.loc[actual.index, col], rtol=1e-12)


def test_reliability_table_has_units_and_session_order(part):
    _, p = part
    rel = p.tables["reliability"][0]
    assert (rel.loc[rel.metric == "tnv", "units"] == "degC").all()
    terms = rel.loc[rel.statistic == "change_in_mean", "term"].unique().tolist()
    assert terms == ["ses-2 - ses-1"]
