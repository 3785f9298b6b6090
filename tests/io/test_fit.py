"""The FIT encoder: header, CRCs, messages as fitdecode decodes them (CRC checks on)."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct

import fitdecode
import numpy as np
import pandas as pd
import pytest

from irtrepro.errors import FormatError, OptionError
from irtrepro.io.fit import FIT_EPOCH, read_fit_records
from irtrepro.synth.exports.fit import fit_crc, write_fit

START = dt.datetime(2024, 5, 6, 9, 30, 15)


@pytest.fixture
def hr() -> pd.DataFrame:
    df = pd.DataFrame({"time": np.arange(0.0, 120.0), "hr": np.linspace(70, 160, 120)})
    df.loc[10:12, "hr"] = np.nan
    return df


def test_crc_known_value():
    # CRC-16/ARC (poly 0xA001 reflected, init 0) of "123456789" is 0xBB3D; FIT uses this CRC
    assert fit_crc(b"123456789") == 0xBB3D


def test_header_and_trailing_crc(tmp_path, hr):
    raw = write_fit(hr, tmp_path / "a.fit", start_time=START).read_bytes()
    size, proto, profile, data_size, magic, hcrc = struct.unpack("<BBHI4sH", raw[:14])
    assert (size, proto, magic) == (14, 0x20, b".FIT")
    assert hcrc == fit_crc(raw[:12])
    assert data_size == len(raw) - 14 - 2
    assert struct.unpack("<H", raw[-2:])[0] == fit_crc(raw[:-2])
    assert fit_crc(raw) == 0  # a CRC over data + its own CRC vanishes


def test_fitdecode_reads_messages(tmp_path, hr):
    path = write_fit(hr, tmp_path / "a.fit", start_time=START,
                     utc_offset=dt.timedelta(hours=2))
    names, records = [], []
    with fitdecode.FitReader(str(path), check_crc=fitdecode.CrcCheck.RAISE,
                             error_handling=fitdecode.ErrorHandling.RAISE) as fr:
        for frame in fr:
            if isinstance(frame, fitdecode.FitDataMessage):
                names.append(frame.name)
                if frame.name == "record":
                    records.append(frame)
                if frame.name == "file_id":
                    assert frame.get_value("type") == "activity"
                    assert frame.get_value("time_created") == dt.datetime(
                        2024, 5, 6, 7, 30, 15, tzinfo=dt.UTC)
    assert names[0] == "file_id" and names[-1] == "activity"
    assert len(records) == 120
    assert records[0].get_value("timestamp") == dt.datetime(2024, 5, 6, 7, 30, 15, tzinfo=dt.UTC)
    assert records[1].get_value("heart_rate") == 71  # 70 + 90/119 rounded
    assert records[10].get_value("heart_rate") is None  # NaN -> invalid 0xFF


def test_core_temperature_developer_field(tmp_path):
    df = pd.DataFrame({"time": [0.0, 30.0, 60.0], "tcore": [37.1, np.nan, 37.25]})
    path = write_fit(df, tmp_path / "c.fit", start_time=START, fields=("core_temperature",))
    records, offset = read_fit_records(path)
    assert offset == dt.timedelta(0)
    assert [r["timestamp"] for r in records] == [
        dt.datetime(2024, 5, 6, 9, 30, 15, tzinfo=dt.UTC) + dt.timedelta(seconds=s)
        for s in (0, 30, 60)]
    assert records[0]["core_temperature"] == pytest.approx(37.1, abs=1e-5)  # float32
    assert records[1]["core_temperature"] is None
    assert "heart_rate" not in records[0]


def test_deterministic(tmp_path, hr):
    a = write_fit(hr, tmp_path / "a.fit", start_time=START)
    b = write_fit(hr, tmp_path / "b.fit", start_time=START)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_epoch():
    assert FIT_EPOCH.timestamp() == 631065600


def test_corrupt_crc_is_an_error(tmp_path, hr):
    path = write_fit(hr, tmp_path / "a.fit", start_time=START)
    raw = bytearray(path.read_bytes())
    raw[40] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"a\.fit: not a valid FIT file"):
        read_fit_records(path)


def test_writer_rejects_bad_input(tmp_path, hr):
    with pytest.raises(OptionError, match="fields"):
        write_fit(hr, tmp_path / "x.fit", start_time=START, fields=("power",))
    with pytest.raises(OptionError, match="tcore"):
        write_fit(hr, tmp_path / "x.fit", start_time=START, fields=("core_temperature",))
    with pytest.raises(OptionError, match="strictly increasing"):
        write_fit(hr.iloc[::-1], tmp_path / "x.fit", start_time=START)
    assert not (tmp_path / "x.fit").exists()
