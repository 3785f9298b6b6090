"""Core-temperature readers and writers: e-Celsius-style CSV and FIT."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from irtrepro.io import detect, read
from irtrepro.io._tabular import (
    EmptyFileError,
    MissingColumnError,
    TimeFormatError,
    UnitError,
    ValueFormatError,
)
from irtrepro.io.core import read_core_csv, read_core_fit
from irtrepro.synth.exports.core import write_core_csv
from irtrepro.synth.exports.fit import write_fit

START = dt.datetime(2024, 5, 6, 23, 50, 0)  # crosses midnight after 10 min


@pytest.fixture
def tcore() -> pd.DataFrame:
    df = pd.DataFrame({"time": np.arange(0.0, 46 * 60, 30.0)})
    df["tcore"] = 37.0 + 1.6 * df.time / df.time.iloc[-1]
    df.loc[7, "tcore"] = np.nan  # lost capsule packet
    return df


def _write(tmp_path, text, name="c.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_csv_roundtrip_and_bytes(tmp_path, tcore):
    a = write_core_csv(tcore, tmp_path / "a.csv", start_time=START)
    b = write_core_csv(tcore, tmp_path / "b.csv", start_time=START)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert a.read_text(encoding="utf-8").splitlines()[1] == "06/05/2024;23:50:00;37,00"
    assert detect(a, "core") == "core-csv"
    df = read("core", a)
    assert df.attrs["start_time"] == START
    np.testing.assert_array_equal(df.time, tcore.time)  # across midnight, via the Date column
    np.testing.assert_allclose(df.tcore, tcore.tcore, atol=0.005)  # 0.01 degC in the file
    assert df.tcore.isna().sum() == 1


def test_csv_configurable_columns_and_fahrenheit(tmp_path):
    path = _write(tmp_path, "Elapsed (min),Capsule\n0,98.6\n0.5,99.5\n")
    df = read_core_csv(path, time_column="Elapsed (min)", value_column="Capsule",
                       units={"tcore": "°F"})
    assert df.time.tolist() == [0.0, 30.0]
    assert df.tcore.tolist() == pytest.approx([37.0, 37.5])
    assert "tcore: °F -> degC" in df.attrs["conversions"]
    assert df.attrs["start_time"] is None


def test_fit_roundtrip(tmp_path, tcore):
    path = write_fit(tcore, tmp_path / "c.fit", start_time=START, fields=("core_temperature",))
    assert detect(path, "core") == "fit"
    df = read_core_fit(path)
    assert df.attrs["start_time"] == START
    np.testing.assert_array_equal(df.time, tcore.time)
    np.testing.assert_allclose(df.tcore, tcore.tcore, atol=1e-5)  # float32
    assert df.tcore.isna().sum() == 1


def test_fit_with_hr_and_core(tmp_path, tcore):
    both = tcore.assign(hr=120.0)
    path = write_fit(both, tmp_path / "b.fit", start_time=START,
                     fields=("heart_rate", "core_temperature"))
    assert read("hr", path).hr.eq(120).all()
    np.testing.assert_allclose(read("core", path).tcore, tcore.tcore, atol=1e-5)


# ---------------------------------------------------------------- bad input
def test_bad_empty(tmp_path):
    with pytest.raises(EmptyFileError, match=r"c\.csv: file is empty"):
        read_core_csv(_write(tmp_path, ""))
    with pytest.raises(EmptyFileError, match=r"d\.csv: no data rows"):
        read_core_csv(_write(tmp_path, "Date;Time;Temperature (°C)\r\n", "d.csv"))


def test_bad_missing_column(tmp_path):
    with pytest.raises(MissingColumnError, match=r"c\.csv: no header line .*Capsule"):
        read_core_csv(_write(tmp_path, "Time;Temp\n0;37\n"), value_column="Capsule")


def test_bad_time(tmp_path):
    text = "Date;Time;Temperature (°C)\n06/05/2024;10:00:00;37,0\n06/05/2024;10:00:3O;37,1\n"
    with pytest.raises(TimeFormatError, match=r"c\.csv: line 3: column 'Time'.*'10:00:3O'"):
        read_core_csv(_write(tmp_path, text))


def test_bad_time_backwards(tmp_path):
    text = ("Date;Time;Temperature (°C)\n06/05/2024;10:00:00;37,0\n"
            "06/05/2024;10:00:30;37,1\n06/05/2024;10:00:10;37,1\n")
    with pytest.raises(TimeFormatError, match=r"c\.csv: line 4: column 'Time'.*backwards"):
        read_core_csv(_write(tmp_path, text))


def test_bad_unit(tmp_path):
    with pytest.raises(UnitError, match=r"c\.csv: column 'Temperature \(°F\)'.*median tcore"):
        # Fahrenheit values labelled as such convert fine; labelled degC they do not fit
        read_core_csv(_write(tmp_path, "Time;Temperature (°C)\n0;98,6\n30;99,0\n"
                             .replace("(°C)", "(°F)").replace("98,6", "9,86")))
    with pytest.raises(UnitError, match=r"d\.csv: column 'Temp \(mK\)'.*unknown unit 'mK'"):
        read_core_csv(_write(tmp_path, "Time;Temp (mK)\n0;37\n", "d.csv"))


def test_bad_non_numeric(tmp_path):
    text = "Date;Time;Temperature (°C)\n06/05/2024;10:00:00;37,0\n06/05/2024;10:00:30;hot\n"
    with pytest.raises(ValueFormatError, match=r"c\.csv: line 3: column 'Temperature \(°C\)'"
                                               r": 'hot' is not a number"):
        read_core_csv(_write(tmp_path, text))


def test_bad_fit_without_core(tmp_path):
    hr = pd.DataFrame({"time": [0.0, 1.0], "hr": [80.0, 81.0]})
    path = write_fit(hr, tmp_path / "h.fit", start_time=START)
    with pytest.raises(MissingColumnError, match=r"h\.fit: no record message has a core"):
        read_core_fit(path)
