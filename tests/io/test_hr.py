"""Heart-rate readers and writers: Polar Flow CSV and FIT."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from irtrepro.errors import FormatError
from irtrepro.io import detect, read
from irtrepro.io._tabular import (
    EmptyFileError,
    MissingColumnError,
    TimeFormatError,
    ValueFormatError,
)
from irtrepro.io.hr import read_hr_fit, read_polar_csv
from irtrepro.synth.exports.fit import write_fit
from irtrepro.synth.exports.hr import write_polar_csv

START = dt.datetime(2024, 5, 6, 9, 30, 15)

POLAR = (
    "Name,Sport,Date,Start time,Duration,Average heart rate (bpm),Height (cm),Weight (kg),\r\n"
    "A B,RUNNING,29-07-2019,18:05:42,00:00:03,101,180,75.5,\r\n"
    "Sample rate,Time,HR (bpm),Speed (km/h),\r\n"
    "1,00:00:00,99,0.0,\r\n"
    ",00:00:01,,0.0,\r\n"
    ",00:00:02,102,1.2,\r\n"
)


@pytest.fixture
def hr() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"time": np.arange(0.0, 300.0), "hr": rng.uniform(60, 185, 300)})
    df.loc[100:104, "hr"] = np.nan  # strap dropout
    return df


def _write(tmp_path, text, name="p.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_polar_hand_made(tmp_path):
    path = _write(tmp_path, POLAR)
    assert detect(path, "hr") == "polar-csv"
    df = read_polar_csv(path)
    assert df.time.tolist() == [0.0, 1.0, 2.0]
    assert df.hr.iloc[0] == 99 and np.isnan(df.hr.iloc[1]) and df.hr.iloc[2] == 102
    assert df.attrs["start_time"] == dt.datetime(2019, 7, 29, 18, 5, 42)
    assert df.attrs["subject"] == {"height": 180.0, "body_mass": 75.5}
    assert df.attrs["sport"] == "RUNNING"


def test_polar_roundtrip_and_bytes(tmp_path, hr):
    a = write_polar_csv(hr, tmp_path / "a.csv", start_time=START, subject={"height": 170})
    b = write_polar_csv(hr, tmp_path / "b.csv", start_time=START, subject={"height": 170})
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    lines = a.read_text().splitlines()
    assert lines[2].startswith("Sample rate,Time,HR (bpm),")
    assert lines[1].split(",")[2:4] == ["06-05-2024", "09:30:15"]
    df = read("hr", a)
    assert df.attrs["start_time"] == START and df.attrs["format"] == "polar-csv"
    np.testing.assert_array_equal(df.time, hr.time)
    np.testing.assert_allclose(df.hr, hr.hr, atol=0.5)  # integer bpm in the file
    assert df.hr.isna().sum() == 5


def test_polar_writer_fills_gaps(tmp_path):
    df = pd.DataFrame({"time": [0.0, 1.0, 4.0], "hr": [80.0, 81.0, 84.0]})
    out = read_polar_csv(write_polar_csv(df, tmp_path / "g.csv", start_time=START))
    assert out.time.tolist() == [0, 1, 2, 3, 4]
    assert out.hr.isna().tolist() == [False, False, True, True, False]


def test_fit_roundtrip(tmp_path, hr):
    path = write_fit(hr, tmp_path / "h.fit", start_time=START, utc_offset=dt.timedelta(hours=2))
    assert detect(path, "hr") == "fit"
    df = read_hr_fit(path)
    assert df.attrs["start_time"] == START  # local time recovered from activity
    assert df.attrs["utc_offset"] == 7200
    np.testing.assert_array_equal(df.time, hr.time)
    np.testing.assert_allclose(df.hr, hr.hr, atol=0.5)
    assert df.hr.isna().sum() == 5


def test_fit_zero_heart_rate_is_missing_with_reason(tmp_path):
    # a watch writes 0 while the strap has no contact, 0xFF (invalid) when it has no value
    df = pd.DataFrame({"time": np.arange(6.0), "hr": [90.0, 0.0, 0.0, np.nan, 95.0, 96.0]})
    out = read_hr_fit(write_fit(df, tmp_path / "z.fit", start_time=START))
    assert out.hr.isna().tolist() == [False, True, True, True, False, False]
    assert not (out.hr == 0).any()
    miss = out.attrs["missing"]["hr"]
    assert miss["n"] == 3
    assert "zero values (records 2, 3) read as missing" in miss["reason"]
    assert "no valid value (record 4)" in miss["reason"]
    assert out.attrs["conversions"] == ["hr: 2 zero values read as missing (records 2, 3)"]
    # a clean file reports nothing
    clean = read_hr_fit(write_fit(df.iloc[4:], tmp_path / "c.fit", start_time=START))
    assert clean.attrs["missing"] == {} and clean.attrs["conversions"] == []


# ---------------------------------------------------------------- bad input
def test_bad_polar_empty(tmp_path):
    with pytest.raises(EmptyFileError, match=r"p\.csv: file is empty"):
        read_polar_csv(_write(tmp_path, ""))
    with pytest.raises(EmptyFileError, match=r"q\.csv: no samples after line 3"):
        read_polar_csv(_write(tmp_path, "\r\n".join(POLAR.split("\r\n")[:3]), "q.csv"))


def test_bad_polar_missing_column(tmp_path):
    with pytest.raises(MissingColumnError, match=r"p\.csv: no 'Sample rate"):
        read_polar_csv(_write(tmp_path, "Time,HR\n00:00:00,80\n"))
    text = POLAR.replace("HR (bpm)", "Heart")
    with pytest.raises(MissingColumnError, match=r"q\.csv: column 'HR \(bpm\)'"):
        read_polar_csv(_write(tmp_path, text, "q.csv"))


def test_bad_polar_time(tmp_path):
    text = POLAR.replace("00:00:01", "0O:00:01")
    with pytest.raises(TimeFormatError, match=r"p\.csv: line 5: column 'Time'.*'0O:00:01'"):
        read_polar_csv(_write(tmp_path, text))


def test_bad_polar_backwards(tmp_path):
    text = POLAR.replace("00:00:02", "00:00:00")
    with pytest.raises(TimeFormatError, match=r"p\.csv: line 6: column 'Time': time goes back"):
        read_polar_csv(_write(tmp_path, text))


def test_bad_polar_non_numeric(tmp_path):
    text = POLAR.replace(",102,", ",1o2,")
    with pytest.raises(ValueFormatError, match=r"p\.csv: line 6: column 'HR \(bpm\)': '1o2'"):
        read_polar_csv(_write(tmp_path, text))


def test_bad_fit(tmp_path):
    with pytest.raises(EmptyFileError, match=r"e\.fit: file is empty"):
        read_hr_fit(_write(tmp_path, "", "e.fit"))
    with pytest.raises(FormatError, match=r"x\.fit: not a valid FIT file"):
        read_hr_fit(_write(tmp_path, "garbage" * 10, "x.fit"))
    core = pd.DataFrame({"time": [0.0, 30.0], "tcore": [37.0, 37.1]})
    path = write_fit(core, tmp_path / "c.fit", start_time=START, fields=("core_temperature",))
    with pytest.raises(MissingColumnError, match=r"c\.fit: no record message has a "
                                                 r"'heart_rate' field"):
        read_hr_fit(path)
