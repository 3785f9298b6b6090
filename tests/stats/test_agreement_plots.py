"""irtrepro.plots.agreement: results in, labelled matplotlib Figure out."""

from __future__ import annotations

import numpy as np
import pytest

from irtrepro.errors import StatsError
from irtrepro.stats import bland_altman, icc, reliability


def test_bland_altman_plot_labels_units():
    from matplotlib.figure import Figure

    from irtrepro.plots import bland_altman_plot

    rng = np.random.default_rng(0)
    x = rng.normal(33, 1, 20)
    res = bland_altman(x, x + rng.normal(0.2, 0.3, 20))
    fig = bland_altman_plot(res, units="degC", measure="TNV", x_name="IRT", y_name="probe",
                            show_regression=True)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "degC" in ax.get_xlabel() and "degC" in ax.get_ylabel()
    assert "IRT" in ax.get_ylabel() and "probe" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 4
    ratio = bland_altman(x, x * 1.01 + rng.normal(0, 0.1, 20), log=True)
    assert "Ratio" in bland_altman_plot(ratio).axes[0].get_ylabel()
    with pytest.raises(StatsError):
        bland_altman_plot({"bias": 1})


def test_icc_forest_plot_from_icc_and_reliability(study_summary):
    from irtrepro.plots import icc_forest_plot

    table = icc(study_summary[["tp"]])
    fig = icc_forest_plot(table, form="ICC(A,1)")
    ax = fig.axes[0]
    assert "ICC(A,1)" in ax.get_xlabel() and "95% CI" in ax.get_xlabel()
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(table.metric.unique())
    fig2 = icc_forest_plot(reliability(study_summary[["tp"]]))
    assert fig2.axes[0].get_ylabel() == "metric"
    with pytest.raises(StatsError, match="no rows with form"):
        icc_forest_plot(table, form="ICC(B,1)")


def test_icc_forest_plot_shows_two_forms_side_by_side(study_summary):
    from irtrepro.plots import icc_forest_plot
    from irtrepro.stats import icc

    table = icc(study_summary[["tp"]])
    fig = icc_forest_plot(table, form=("ICC(A,1)", "ICC(C,1)"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ICC(A,1) (ICC2)",
                                                                  "ICC(C,1) (ICC3)"]
    assert len(ax.get_yticks()) == table.metric.nunique()
    with pytest.raises(StatsError, match="ICC\\(B,1\\)"):
        icc_forest_plot(table, form=("ICC(A,1)", "ICC(B,1)"))


def test_koo_li_reads_the_ci_bounds():
    # Koo & Li (2016) J Chiropr Med 15:155: poor < 0.5, moderate 0.5-0.75, good 0.75-0.9,
    # excellent > 0.9, judged on the 95 % CI; their example: a CI of 0.83-0.94 is "good to
    # excellent"
    from irtrepro.stats import koo_li

    assert koo_li([0.83, 0.62, 0.76, 0.2, np.nan], [0.94, 0.93, 0.89, 0.45, 0.9]) == [
        "good to excellent", "moderate to excellent", "good", "poor", "undefined"]
    assert koo_li(0.5, 0.75) == ["moderate to good"]


def test_icc_forest_plot_when_the_estimate_lies_outside_its_ci(study_summary):
    """ICC(A,1)'s approximate CI can miss its own estimate in small samples (pingouin's did
    in 14 of 2000 random 3x3 designs): the plot draws it, the bar ending at the estimate."""
    from irtrepro.plots import icc_forest_plot

    table = icc(study_summary[["tp"]])
    row = table.index[table["form"] == "ICC(A,1)"][0]
    table.loc[row, "ci_low"] = table.loc[row, "icc"] + 0.05      # estimate below its CI
    fig = icc_forest_plot(table, form="ICC(A,1)")
    segs = [c for c in fig.axes[0].collections if hasattr(c, "get_segments")]
    xs = np.concatenate([np.asarray(s)[:, 0] for c in segs for s in c.get_segments()])
    assert np.isfinite(xs).all()
    assert xs.min() >= min(table.loc[table["form"] == "ICC(A,1)", "icc"].min(),
                           table.loc[table["form"] == "ICC(A,1)", "ci_low"].min()) - 1e-12
