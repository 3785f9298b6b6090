"""The front door: ``import irtrepro as irt``, open/save, lazy subpackages, the ``.irt`` accessor."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import irtrepro as irt
from irtrepro.errors import OptionError, StatsError, StudyError
from irtrepro.stats import icc


@pytest.fixture(scope="module")
def study():
    return irt.example_study()


def test_import_and_open_study_never_import_torch():
    code = ("import irtrepro as irt, sys; irt.open_study; irt.save_study; irt.example_study()"
            ".irt.summary(); irt.summaries; irt.stats; assert 'torch' not in sys.modules, "
            "'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_subpackages_are_attributes():
    import irtrepro.summaries

    assert irt.summaries is irtrepro.summaries
    assert irt.stats.icc is icc
    assert "summaries" in dir(irt) and "open_study" in dir(irt)
    with pytest.raises(AttributeError, match="no attribute 'nope'; subpackages are"):
        irt.nope  # noqa: B018


def test_accessor_registered_by_import_irtrepro():
    code = ("import irtrepro, xarray as xr; ds = xr.Dataset(); "
            "assert callable(ds.irt.summary) and callable(ds.irt.icc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_open_roundtrip(tmp_path, study, suffix):
    path = irt.save_study(study, tmp_path / f"s{suffix}")
    xr.testing.assert_identical(irt.open_study(path), study)


def test_open_study_names_a_missing_file(tmp_path):
    with pytest.raises(StudyError, match="no such Study file"):
        irt.open_study(tmp_path / "absent.nc")


def test_phase_means_dims_order_and_values(study):
    pm = study.irt.phase_means(["hr", "tnv"])
    assert pm.tnv.dims == ("subject", "session", "phase", "side")
    assert pm.phase.values.tolist() == ["warmup", "steady", "recovery"]
    hr = study.hr.sel(subject="S02", session="ses-2").values
    expected = hr[120:300].mean()  # steady: 120-299 s
    assert pm.hr.sel(subject="S02", session="ses-2", phase="steady").item() == pytest.approx(
        expected, rel=1e-12)
    assert pm.hr.attrs["units"] == "min-1"


def test_summary_time_and_phase_windows(study):
    s = study.irt.summary({"first": (0, 30), "steady": "steady"}, ["hr", "tnv"], side="left")
    assert s.hr.dims == ("subject", "session", "window")
    assert "side" not in s.dims
    assert s.window_definition.values.tolist() == ["0-30 s", "phase steady"]
    tnv = study.tnv.sel(subject="S03", session="ses-1", side="left").values
    assert s.tnv.sel(subject="S03", session="ses-1", window="first").item() == pytest.approx(
        tnv[:30].mean(), rel=1e-12)
    assert s.tnv.attrs["units"] == "degC"


def test_summary_default_windows_are_onset_then_phases(study):
    s = study.irt.summary()
    assert s.window.values.tolist() == ["onset", "warmup", "steady", "recovery"]
    assert set(s.data_vars) == {"speed", "hr", "tnv"}


@pytest.mark.parametrize("windows,match", [
    ({"x": "sprint"}, "phase 'sprint' is not in the Study"),
    ({"x": (60, 0)}, "start 60 s is not before stop 0 s"),
    ({"x": 5}, "expected a phase label or a"),
])
def test_summary_bad_windows_name_the_culprit(study, windows, match):
    with pytest.raises(StudyError, match=match):
        study.irt.summary(windows)


def test_summary_bad_variable_and_side(study):
    with pytest.raises(StudyError, match=r"\['rer'\] are not numeric Study variables"):
        study.irt.summary(variables=["rer"])
    with pytest.raises(OptionError, match="side='top'"):
        study.irt.summary(side="top")


def test_accessor_icc_equals_stats_icc_on_summary(study):
    actual = study.irt.icc(["steady"], ["hr"])
    expected = icc(study.irt.summary(["steady"], ["hr"], side="both"))
    assert actual.equals(expected)
    assert actual.metric.unique().tolist() == ["hr/steady"]
    # a summary (no time dim) goes straight to stats.icc
    pm = study.irt.phase_means(["hr"])
    assert len(pm.irt.icc()) == 6 * 3


def test_stats_refuse_a_time_dimension(study):
    with pytest.raises(StatsError, match="variable 'hr' of the Dataset has dimension 'time'; "
                       r"summarise first, e.g. ds.irt.phase_means\(\)"):
        icc(study[["hr"]])
    with pytest.raises(StatsError, match="has dimension 'time'"):
        icc(study.hr)
    from irtrepro.stats import reliability

    with pytest.raises(StatsError, match=r"variables \['hr', 'tnv'\]"):
        reliability(study[["hr", "tnv"]])


def test_plot_session_returns_a_figure(study):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = study.irt.plot_session("S01", "ses-2", variables=["hr", "tnv"])
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        axes = fig.axes
        assert len(axes) == 2
        line = axes[0].get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), study.time.values / 60)
        np.testing.assert_allclose(line.get_ydata(), study.hr.sel(subject="S01",
                                                                  session="ses-2").values)
        assert "heart rate (min-1)" == axes[0].get_ylabel()
    finally:
        plt.close(fig)
    with pytest.raises(StudyError, match=r"subject='S99' is not in the Study"):
        study.irt.plot_session("S99", "ses-1")


def test_example_study_is_valid_and_seeded():
    a, b = irt.example_study(seed=3), irt.example_study(seed=3)
    xr.testing.assert_identical(a, b)
    assert not a.hr.equals(irt.example_study(seed=4).hr)
    irt.validate_study(a)
