"""Summaries of Study time series: window means, ΔTNV, phase means, window summaries."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import irtrepro as irt
from irtrepro.errors import StudyError
from irtrepro.summaries import (
    core_skin_gradient,
    delta_tnv,
    one_side,
    phase_means,
    phase_order,
    present,
    summary_table,
    window_mean,
    window_summary,
)


def _series(values, name="tnv"):
    return xr.DataArray(np.asarray(values, float), dims="time",
                        coords={"time": np.arange(len(values), dtype=float)}, name=name)


def test_window_mean_is_half_open_and_skips_nan():
    da = _series([1, 2, np.nan, 4, 100])
    assert window_mean(da, 0, 4).item() == pytest.approx((1 + 2 + 4) / 3)


def test_delta_tnv_is_drop_minus_onset():
    da = _series([2.0] * 5 + [1.0] * 5)
    out = delta_tnv(da, onset=(0, 5), drop=(5, 10))
    assert out.item() == -1.0
    assert out.attrs["units"] == "degC"


def test_phase_means_and_order():
    phase = xr.DataArray(np.array(["b", "b", "a", "a", ""]), dims="time")
    ds = xr.Dataset({"hr": ("time", [1.0, 3.0, 10.0, 20.0, 99.0], {"units": "min-1"})})
    pm = phase_means(ds, phase)
    assert pm.hr.sel(phase="b").item() == 2.0 and pm.hr.sel(phase="a").item() == 15.0
    assert pm.hr.attrs["units"] == "min-1"
    assert phase_order(phase) == ["b", "a"]  # first appearance, empty label dropped


def test_phase_means_needs_a_phase():
    with pytest.raises(StudyError, match="no 'phase' variable"):
        phase_means(xr.Dataset({"hr": ("time", [1.0])}))


def test_core_skin_gradient_over_selected_phases():
    phase = xr.DataArray(np.array(["warmup", "steady", "steady"]), dims="time")
    out = core_skin_gradient(_series([37.0, 38.0, 38.0]), _series([33.0, 32.0, 31.0]), phase)
    assert out.item() == pytest.approx(6.5)


def test_present_and_one_side():
    ds = irt.example_study()
    ds["tp"] = ds["tnv"] * np.nan
    assert present(ds, ("tnv", "tp", "hr", "absent")) == ["tnv", "hr"]
    left = one_side(ds, "left")
    assert "side" not in left.dims
    xr.testing.assert_identical(left.tnv, ds.tnv.sel(side="left", drop=True))


def test_window_summary_matches_summary_table():
    ds = irt.example_study()
    table = summary_table(ds, ["hr", "tnv"]).set_index(["subject", "session", "window"])
    s = window_summary(one_side(ds), {"onset": (0, 60), "steady": "steady"}, ["hr", "tnv"])
    for window in ("onset", "steady"):
        for v in ("hr", "tnv"):
            expected = table.xs(window, level="window")[v].to_xarray()
            np.testing.assert_allclose(s[v].sel(window=window).transpose("subject", "session"),
                                       expected.transpose("subject", "session"), rtol=1e-12)


def test_window_summary_needs_time():
    with pytest.raises(StudyError, match="no 'time' dimension"):
        window_summary(irt.example_study().irt.phase_means())
