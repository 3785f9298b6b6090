"""Heart-rate exports: Polar Flow CSV and FIT; readers.

``polar-csv``
    Polar Flow's "Export session" CSV: line 1 the summary labels (``Name,Sport,Date,Start
    time,Duration,...``), line 2 their values (``Date`` as ``dd-mm-yyyy``, ``Start time`` as
    ``hh:mm:ss``), line 3 the sample labels ``Sample rate,Time,HR (bpm),Speed (km/h),...``,
    then one line per second (``Time`` as ``hh:mm:ss``; ``Sample rate`` only on the first).
    Every line ends with a comma, as Polar writes it.
``fit``
    FIT activity files (watches, chest-strap apps): ``record`` messages' ``timestamp`` and
    ``heart_rate``; decoded with fitdecode, CRCs checked.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro.errors import OptionError
from irtrepro.io._tabular import (
    EmptyFileError,
    MissingColumnError,
    Table,
    assemble,
    norm_label,
    parse_clock,
    parse_date,
    read_text,
)
from irtrepro.io.fit import read_fit_records, records_to_frame
from irtrepro.io.registry import register

__all__ = ["read_polar_csv", "read_hr_fit"]

@register("hr", "polar-csv", extensions=(".csv",),
          sniff=lambda head, path: b"Sample rate" in head and b"HR (bpm)" in head,
          aliases=("polar",))
def read_polar_csv(path: str | os.PathLike, *, column_map: dict[str, str] | None = None
                   ) -> pd.DataFrame:
    """Read a Polar Flow session CSV.

    Parameters
    ----------
    path : path-like
        The export.
    column_map : dict, optional
        Study name -> column label of the sample table (default ``Time``, ``HR (bpm)``).

    Returns
    -------
    pandas.DataFrame
        ``time`` (s since the session start), ``hr`` (min-1; empty cells are NaN);
        attrs ``start_time`` (``Date`` + ``Start time``), ``subject`` (height cm, body_mass kg,
        hr_max, hr_rest, vo2max where filled), ``sport``, ``conversions``.
    """
    path = Path(path)
    text = read_text(path)
    lines = list(csv.reader(io.StringIO(text)))
    # the sample table starts at the line whose first field is "Sample rate"
    k = next((i for i, r in enumerate(lines) if r and norm_label(r[0]) == "samplerate"), None)
    if k is None:
        raise MissingColumnError(f"{path}: no 'Sample rate,Time,HR (bpm),...' line; "
                                 "not a Polar Flow session CSV")
    start, attrs = None, {}
    if k >= 2:
        summary = dict(zip((c.strip() for c in lines[0]), lines[1], strict=False))
        date, clock = parse_date(summary.get("Date")), parse_clock(summary.get("Start time"))
        if summary.get("Date") and date is None:
            raise OptionError(f"{path}: line 2: column 'Date': cannot read {summary['Date']!r}; "
                              "expected dd-mm-yyyy")
        if date is not None:
            start = dt.datetime.combine(date, clock or dt.time(0))
        subj = {}
        for label, key in (("Height (cm)", "height"), ("Weight (kg)", "body_mass"),
                           ("HR max", "hr_max"), ("HR sit", "hr_rest"), ("VO2max", "vo2max")):
            try:
                subj[key] = float(summary[label])
            except (KeyError, ValueError):
                continue
        attrs = {"subject": subj, "sport": summary.get("Sport", "").strip() or None}
    labels = [c.strip() for c in lines[k]]
    cells, rows = [], []
    for n, row in enumerate(lines[k + 1:], start=k + 2):
        if any(c.strip() for c in row):
            cells.append(row)
            rows.append(n)
    if not cells:
        raise EmptyFileError(f"{path}: no samples after line {k + 1}")
    cmap = {"time": "Time", "hr": "HR (bpm)"} | dict(column_map or {})
    table = Table(labels, None, cells, rows, "line")
    return assemble(table, path=path, fmt="polar-csv", signals=("hr",), required=("hr",),
                    column_map=cmap, start_time=start, extra_attrs=attrs)


def _hr_of(rec: dict) -> float:
    # 0 is kept here so that records_to_frame counts it as a zero (no strap signal) apart from
    # the invalid marker 0xFF; both end as NaN
    v = rec.get("heart_rate")
    return float(v) if isinstance(v, (int, float)) and v != 255 else np.nan


@register("hr", "fit", extensions=(".fit",), sniff=lambda head, path: head[8:12] == b".FIT")
def read_hr_fit(path: str | os.PathLike, *, column_map: dict[str, str] | None = None
                ) -> pd.DataFrame:
    """Read heart rate from a FIT file's ``record`` messages.

    Parameters
    ----------
    path : path-like
    column_map : dict, optional
        ``{"hr": "<field name>"}`` to read another record field (default ``heart_rate``).

    Returns
    -------
    pandas.DataFrame
        ``time`` (s since the first record), ``hr`` (min-1; invalid/0 -> NaN, counted with
        their record numbers in ``attrs['missing']``). ``start_time`` is the first record's
        local time when the file has an ``activity`` message with ``local_timestamp``, else
        its UTC time (naive).
    """
    path = Path(path)
    field = (column_map or {}).get("hr", "heart_rate")
    records, offset = read_fit_records(path)
    if records and not any(field in r for r in records):
        raise MissingColumnError(f"{path}: no record message has a {field!r} field")
    return records_to_frame(records, {"hr": lambda r: _hr_of({"heart_rate": r.get(field)})},
                            path=path, fmt="fit", offset=offset)
