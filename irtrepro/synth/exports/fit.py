"""A small FIT (Flexible and Interoperable Data Transfer) encoder: the generator's FIT files.

The encoder writes what a watch or a CORE sensor app writes for a recording of heart rate or
core temperature, and nothing more:

- a 14-byte file header: size 14, protocol 2.0, profile version, data size, ``".FIT"``, and the
  CRC-16 of the first 12 bytes;
- ``file_id`` (global message 0: type activity, manufacturer development, time_created);
- for core temperature, ``developer_data_id`` (207) and ``field_description`` (206) declaring a
  developer field ``core_temperature`` (float32, ``°C``), as the CORE sensor's Connect IQ data
  field records it;
- one ``record`` (20) per sample: ``timestamp`` (s since the FIT epoch
  1989-12-31T00:00:00 UTC, :data:`irtrepro.io.fit.FIT_EPOCH`), ``heart_rate`` (uint8, bpm;
  0xFF = invalid) and/or the developer field (NaN = invalid);
- ``activity`` (34) with ``timestamp`` and ``local_timestamp``, so a reader can recover the
  local wall-clock start;
- the CRC-16 of everything before it.

Read back by :func:`irtrepro.io.fit.read_fit_records` (fitdecode).

All multi-byte values are little-endian (architecture 0). See the FIT protocol description
(Garmin FIT SDK, "Flexible & Interoperable Data Transfer (FIT) Protocol") for the layout.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro.errors import OptionError
from irtrepro.io.fit import fit_seconds

__all__ = ["FIT_FIELDS", "fit_crc", "write_fit"]

PROFILE_VERSION = 2132  # 21.32: any 2.x reader accepts it; developer fields need protocol 2.0

_CRC_TABLE = (0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
              0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400)


def fit_crc(data: bytes, crc: int = 0) -> int:
    """The FIT CRC-16 of ``data`` (nibble-table algorithm of the FIT SDK)."""
    for byte in data:
        tmp = _CRC_TABLE[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ _CRC_TABLE[byte & 0xF]
        tmp = _CRC_TABLE[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ _CRC_TABLE[(byte >> 4) & 0xF]
    return crc


# base types: (id, struct code, invalid value)
_ENUM = (0x00, "B", 0xFF)
_UINT8 = (0x02, "B", 0xFF)
_UINT16 = (0x84, "H", 0xFFFF)
_UINT32 = (0x86, "I", 0xFFFFFFFF)
_UINT32Z = (0x8C, "I", 0)
_FLOAT32 = (0x88, "f", None)
_BYTE = (0x0D, "B", 0xFF)
_STRING = 0x07

#: FIT field name -> Study column written into records
FIT_FIELDS = {"heart_rate": "hr", "core_temperature": "tcore"}


class _Encoder:
    """Accumulates definition and data messages; :meth:`finish` adds header and CRC."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.defs: dict[int, tuple] = {}

    def define(self, local: int, global_num: int, fields: Sequence[tuple[int, int, int]],
               dev_fields: Sequence[tuple[int, int, int]] = ()) -> None:
        """Definition message: fields as (field number, size in bytes, base type id)."""
        header = 0x40 | (0x20 if dev_fields else 0) | local
        out = struct.pack("<BBBHB", header, 0, 0, global_num, len(fields))
        for num, size, base in fields:
            out += struct.pack("<BBB", num, size, base)
        if dev_fields:
            out += struct.pack("<B", len(dev_fields))
            for num, size, index in dev_fields:
                out += struct.pack("<BBB", num, size, index)
        self.body += out
        self.defs[local] = (fields, dev_fields)

    def data(self, local: int, payload: bytes) -> None:
        self.body += struct.pack("<B", local) + payload

    def finish(self) -> bytes:
        header = struct.pack("<BBHI4s", 14, 0x20, PROFILE_VERSION, len(self.body), b".FIT")
        header += struct.pack("<H", fit_crc(header))
        out = header + bytes(self.body)
        return out + struct.pack("<H", fit_crc(out))


def _string(text: str, size: int) -> bytes:
    raw = text.encode("utf-8")[: size - 1]
    return raw + b"\x00" * (size - len(raw))


def write_fit(df: pd.DataFrame, path: str | os.PathLike, *, start_time: dt.datetime,
              fields: Sequence[str] = ("heart_rate",), utc_offset: dt.timedelta | None = None,
              serial_number: int = 1) -> Path:
    """Write samples as a FIT activity file (records of heart rate and/or core temperature).

    Parameters
    ----------
    df : pandas.DataFrame
        ``time`` (s since ``start_time``; rounded to whole seconds, as FIT record timestamps
        are) and ``hr`` (min-1) for ``heart_rate``, ``tcore`` (degC) for ``core_temperature``.
        NaN is written as the FIT invalid value.
    path : path-like
        Target, written atomically; the same input gives byte-identical files.
    start_time : datetime
        Wall-clock start. Naive datetimes are local time at ``utc_offset`` from UTC;
        aware ones are converted.
    fields : sequence of str
        ``"heart_rate"`` (record field 3, uint8 bpm) and/or ``"core_temperature"`` (developer
        field, float32 degC; see module docstring).
    utc_offset : timedelta, optional
        Local time minus UTC for naive ``start_time`` (default 0).
    serial_number : int
        file_id serial number (``uint32z``; must not be 0).

    Returns
    -------
    Path
        The written file.
    """
    unknown = [f for f in fields if f not in FIT_FIELDS]
    if unknown or not fields:
        raise OptionError(f"fields={list(fields)!r}; expected some of {sorted(FIT_FIELDS)}")
    need = ["time"] + [FIT_FIELDS[f] for f in fields]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise OptionError(f"write_fit: df lacks columns {missing}; has {list(df.columns)}")
    secs = np.round(df["time"].to_numpy(float)).astype(np.int64)
    if len(secs) and ((np.diff(secs) <= 0).any() or secs[0] < 0):
        raise OptionError("write_fit: df['time'] rounded to whole seconds must be >= 0 and "
                          "strictly increasing (FIT records carry 1 s timestamps)")
    offset = utc_offset or dt.timedelta(0)
    if start_time.tzinfo is None:
        start_utc = (start_time - offset).replace(tzinfo=dt.UTC)
        local = start_time
    else:
        start_utc = start_time.astimezone(dt.UTC)
        local = start_time.replace(tzinfo=None)
        offset = start_time.utcoffset() or dt.timedelta(0)
    t0 = fit_seconds(start_utc)

    enc = _Encoder()
    # file_id: type=4 activity, manufacturer=255 development, product=0, serial, time_created
    enc.define(0, 0, [(0, 1, _ENUM[0]), (1, 2, _UINT16[0]), (2, 2, _UINT16[0]),
                      (3, 4, _UINT32Z[0]), (4, 4, _UINT32[0])])
    enc.data(0, struct.pack("<BHHII", 4, 255, 0, serial_number, t0))
    dev = []
    if "core_temperature" in fields:
        # developer_data_id: developer_data_index 0, application_id 16 bytes
        enc.define(1, 207, [(1, 16, _BYTE[0]), (3, 1, _UINT8[0])])
        enc.data(1, b"irtrepro-coretmp"[:16].ljust(16, b"\x00") + struct.pack("<B", 0))
        # field_description: index 0, field number 0, float32, name, units
        enc.define(2, 206, [(0, 1, _UINT8[0]), (1, 1, _UINT8[0]), (2, 1, _UINT8[0]),
                            (3, 32, _STRING), (8, 16, _STRING)])
        enc.data(2, struct.pack("<BBB", 0, 0, _FLOAT32[0]) + _string("core_temperature", 32)
                 + _string("°C", 16))
        dev = [(0, 4, 0)]
    rec_fields = [(253, 4, _UINT32[0])]
    if "heart_rate" in fields:
        rec_fields.append((3, 1, _UINT8[0]))
    enc.define(3, 20, rec_fields, dev)
    hr = df["hr"].to_numpy(float) if "heart_rate" in fields else None
    tc = df["tcore"].to_numpy(float) if "core_temperature" in fields else None
    for i, s in enumerate(secs):
        payload = struct.pack("<I", t0 + int(s))
        if hr is not None:
            v = hr[i]
            payload += struct.pack("<B", int(round(v)) if np.isfinite(v) and 0 <= v < 255
                                   else 0xFF)
        if tc is not None:
            v = tc[i]
            # FIT's float32 invalid value is all bits set
            payload += (struct.pack("<f", float(v)) if np.isfinite(v) else b"\xff\xff\xff\xff")
        enc.data(3, payload)
    # activity: timestamp, total_timer_time (ms), num_sessions, type manual, event activity,
    # event_type stop, local_timestamp
    end = t0 + (int(secs[-1]) if len(secs) else 0)
    enc.define(4, 34, [(253, 4, _UINT32[0]), (0, 4, _UINT32[0]), (1, 2, _UINT16[0]),
                       (2, 1, _ENUM[0]), (3, 1, _ENUM[0]), (4, 1, _ENUM[0]),
                       (5, 4, _UINT32[0])])
    local_end = end + int(offset.total_seconds())
    enc.data(4, struct.pack("<IIHBBBI", end, 1000 * (end - t0), 1, 0, 26, 1, local_end))
    del local  # the local start follows from local_timestamp - timestamp
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(enc.finish())
    return path
