import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import StudyError
from irtrepro.study import open_study, save_study, validate_study


def small_study() -> xr.Dataset:
    t = np.arange(0.0, 10.0)
    ds = xr.Dataset(coords={"subject": ["S01", "S02"], "session": ["CON", "SI"], "time": t,
                            "side": ["left", "right", "both"]})
    rng = np.random.default_rng(0)
    ds["hr"] = (("subject", "session", "time"), rng.normal(150, 5, (2, 2, 10)))
    ds["hr"][0, 0, 3] = np.nan
    ds["tnv"] = (("subject", "session", "time", "side"), rng.normal(31, 1, (2, 2, 10, 3)))
    ds["phase"] = (("subject", "session", "time"), np.full((2, 2, 10), "warmup"))
    ds["viat"] = ("subject", [15.0, 16.5])
    for v, u in (("hr", "min-1"), ("tnv", "degC"), ("phase", "1"), ("viat", "km h-1")):
        ds[v].attrs = {"units": u, "long_name": v}
    ds["time"].attrs = {"units": "s"}
    return ds


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_roundtrip(tmp_path, suffix):
    ds = small_study()
    save_study(ds, tmp_path / f"s{suffix}")
    xr.testing.assert_identical(ds, open_study(tmp_path / f"s{suffix}"))


@pytest.mark.parametrize("breaker, message", [
    (lambda ds: ds.drop_dims("session"), "no dimension 'session'"),
    (lambda ds: ds.assign_coords(time=[0, 1, 2, 3, 5, 4, 6, 7, 8, 9.0]),
     "'time' is not strictly increasing at index 5"),
    (lambda ds: ds.assign_coords(time=[0, 1, 2, 3, 4, 5, 6, 7, 8, 10.0]), "not a regular grid"),
    (lambda ds: ds.assign(hr=ds.hr.assign_attrs(units="bpm")),
     "'hr' has units 'bpm'; expected 'min-1'"),
    (lambda ds: ds.assign(tnv=ds.tnv.drop_attrs()), "'tnv' has no 'units'"),
    (lambda ds: ds.assign(hr=ds.hr.where(ds.hr > 150, np.inf)), "'hr' has infinite values"),
    (lambda ds: ds.assign_coords(side=["left", "right", "middle"]), r"'side' has \['middle'\]"),
    (lambda ds: ds.assign_coords(subject=["S01", "S01"]), "'subject' has duplicate ids"),
])
def test_validate_names_the_culprit(breaker, message):
    with pytest.raises(StudyError, match=message):
        validate_study(breaker(small_study()))


def test_failed_save_leaves_no_file(tmp_path):
    bad = small_study().assign(hr=lambda d: d.hr.drop_attrs())
    with pytest.raises(StudyError):
        save_study(bad, tmp_path / "s.nc")
    ds = small_study()
    ds.attrs["unserialisable"] = {"a": object()}  # netCDF attrs cannot hold this
    with pytest.raises((TypeError, ValueError)):
        save_study(ds, tmp_path / "s.nc")
    assert list(tmp_path.iterdir()) == []


def test_accessor_phase_selection():
    ds = small_study()
    ds["phase"][:, :, 5:] = "steady"
    w = ds.irt.phase("warmup")
    assert int(w.hr.notnull().sum()) == int(ds.hr.isel(time=slice(0, 5)).notnull().sum())
    with pytest.raises(ValueError, match="phase='cooldown'; expected one of"):
        ds.irt.phase("cooldown")
