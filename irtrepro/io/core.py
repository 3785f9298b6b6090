"""Core temperature: e-Celsius-style CSV and the CORE sensor's FIT field; readers.

``core-csv``
    A delimited export with a time column and a temperature column, both configurable
    (``time_column``, ``value_column``, optional ``date_column``). The generator's writer
    (``write_core_csv`` of the synthetic study's exports) produces what the e-Celsius viewer's
    export looks like in French/European locale (no real file was available
    to the project; this is our reading of it): ``;`` separated, decimal comma, columns
    ``Date;Time;Temperature (°C)`` with ``dd/mm/yyyy`` and ``hh:mm:ss`` clock times, one line
    per capsule sample (30 s). Clock times become seconds since the first sample (midnight
    roll-over handled with the date column, or by assuming it when time steps back > 12 h).
``fit`` (kind ``core``)
    FIT ``record`` messages carrying core temperature. We read, in order: a developer field
    named ``core_temperature`` (what the CORE sensor's Connect IQ data field writes, float °C;
    also what the synthetic study's FIT writer writes), a native record field
    ``core_temperature``, or record field 139 (FIT SDK 21.x ``record.core_temperature``,
    uint16, scale 100, which fitdecode 0.11 does not yet name and returns as ``unknown_139``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro.io._tabular import (
    EmptyFileError,
    MissingColumnError,
    Table,
    TimeFormatError,
    assemble,
    find_column,
    parse_clock,
    parse_date,
    read_text,
    to_seconds,
)
from irtrepro.io.cpet import _sniff_sep
from irtrepro.io.fit import read_fit_records, records_to_frame
from irtrepro.io.registry import register

__all__ = ["read_core_csv", "read_core_fit"]


@register("core", "core-csv", extensions=(".csv", ".txt"), aliases=("e-celsius", "csv"))
def read_core_csv(path: str | os.PathLike, *, column_map: dict[str, str] | None = None,
                  time_column: str | None = None, value_column: str | None = None,
                  date_column: str | None = None, units: dict[str, str] | None = None,
                  sep: str | None = None, time_unit: str = "s") -> pd.DataFrame:
    """Read core temperature from a delimited text export.

    Parameters
    ----------
    path : path-like
    column_map : dict, optional
        ``{"time": ..., "tcore": ...}``; ``time_column``/``value_column`` are shorthands.
    time_column, value_column : str, optional
        Labels of the time and temperature columns (default: found by alias, e.g. ``Time``/
        ``Heure``/``Zeit`` and ``Temperature (°C)``/``Tcore``).
    date_column : str, optional
        Label of a date column (``dd/mm/yyyy``); default ``Date`` if present.
    units : dict, optional
        ``{"tcore": "°F"}`` when the file does not say (degC assumed, plausibility checked).
    sep : str, optional
        Delimiter (sniffed when ``None``).
    time_unit : str
        Unit of numeric time cells (``s`` or ``min``).

    Returns
    -------
    pandas.DataFrame
        ``time`` (s since the first sample when times are clock times, else as the file says),
        ``tcore`` (degC); attrs ``start_time`` (date + first clock time when both exist).
    """
    path = Path(path)
    text = read_text(path)
    sep = sep or _sniff_sep(text)
    lines = list(csv.reader(io.StringIO(text), delimiter=sep))
    cmap = dict(column_map or {})
    if time_column:
        cmap["time"] = time_column
    if value_column:
        cmap["tcore"] = value_column
    # header: first line holding the mapped labels, else one with time and temperature aliases
    hi = None
    for i, row in enumerate(lines[:100]):
        labels = [c.strip() for c in row]
        has_t = cmap.get("time") in labels if "time" in cmap else find_column(labels, "time") is not None
        has_v = (cmap.get("tcore") in labels if "tcore" in cmap
                 else find_column(labels, "tcore") is not None)
        if has_t and has_v:
            hi = i
            break
    if hi is None:
        raise MissingColumnError(f"{path}: no header line with a time column "
                                 f"({cmap.get('time', 'Time/Heure/Zeit')}) and a temperature "
                                 f"column ({cmap.get('tcore', 'Temperature/Tcore')})")
    labels = [c.strip() for c in lines[hi]]
    cells, rows = [], []
    for n, row in enumerate(lines[hi + 1:], start=hi + 2):
        if any(c.strip() for c in row):
            cells.append(row)
            rows.append(n)
    if not cells:
        raise EmptyFileError(f"{path}: no data rows after line {hi + 1}")
    if date_column is not None and date_column not in labels:
        raise MissingColumnError(f"{path}: date column {date_column!r} not found; "
                                 f"columns are {labels}")
    jt = labels.index(cmap["time"]) if "time" in cmap else find_column(labels, "time")
    jd = labels.index(date_column or "Date") if (date_column or "Date") in labels else None
    first = cells[0][jt].strip() if jt < len(cells[0]) else ""
    start, note = None, None
    if re.fullmatch(r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?", first):
        # clock times of day: seconds since the first sample, across midnight
        sec = to_seconds([r[jt] if jt < len(r) else None for r in cells], path=path, rows=rows,
                         column=labels[jt], row_word="line")
        if jd is not None:
            days = []
            for r, n in zip(cells, rows, strict=True):
                d = parse_date(r[jd] if jd < len(r) else None)
                if d is None:
                    raise TimeFormatError(f"{path}: line {n}: column {labels[jd]!r}: cannot read "
                                          f"date {r[jd] if jd < len(r) else ''!r}; "
                                          "expected dd/mm/yyyy")
                days.append(d.toordinal())
            sec = sec + (np.asarray(days, float) - days[0]) * 86400.0
            start = dt.datetime.combine(dt.date.fromordinal(days[0]), parse_clock(first))
        else:
            # no date: a step back of more than 12 h is taken as passing midnight
            sec = sec + 86400.0 * np.concatenate([[0], np.cumsum(np.diff(sec) < -43200)])
        sec = sec - sec[0]
        cells = [list(r) for r in cells]
        for r, v in zip(cells, sec, strict=True):
            r[jt] = float(v)
        note = "time: clock time of day -> s since the first sample"
    table = Table(labels, None, cells, rows, "line")
    df = assemble(table, path=path, fmt="core-csv", signals=("tcore",), required=("tcore",),
                  column_map=cmap, units=units, time_unit=time_unit, start_time=start)
    if note:
        df.attrs["conversions"].insert(0, note)
    return df


def _tcore_of(rec: dict) -> float:
    for key in ("core_temperature", "Core Temperature", "core_temp"):
        v = rec.get(key)
        if v is not None:
            return float(v) if np.isfinite(v) else np.nan
    v = rec.get("unknown_139")
    if isinstance(v, (int, float)) and v != 0xFFFF:
        return float(v) / 100.0  # FIT SDK record.core_temperature: uint16, scale 100, degC
    return np.nan


@register("core", "fit", extensions=(".fit",), sniff=lambda head, path: head[8:12] == b".FIT")
def read_core_fit(path: str | os.PathLike, *, column_map: dict[str, str] | None = None
                  ) -> pd.DataFrame:
    """Read core temperature from a FIT file's records (see module docstring for the field).

    Returns
    -------
    pandas.DataFrame
        ``time`` (s since the first record), ``tcore`` (degC; invalid -> NaN).
    """
    path = Path(path)
    field = (column_map or {}).get("tcore")
    records, offset = read_fit_records(path)
    if field is not None:
        def get(r: dict) -> float:
            v = r.get(field)
            return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else np.nan
    else:
        get = _tcore_of
    known = (field,) if field else ("core_temperature", "Core Temperature", "core_temp",
                                    "unknown_139")
    if records and not any(k in r for r in records for k in known):
        raise MissingColumnError(f"{path}: no record message has a core temperature field "
                                 f"(looked for {list(known)})")
    df = records_to_frame(records, {"tcore": get}, path=path, fmt="fit", offset=offset)
    v = df["tcore"].to_numpy()
    if np.isfinite(v).any() and not 30 <= np.nanmedian(v) <= 45:
        from irtrepro.io._tabular import UnitError

        raise UnitError(f"{path}: median core temperature {np.nanmedian(v):g} is outside "
                        "30..45 degC; is the field in degC?")
    return df

