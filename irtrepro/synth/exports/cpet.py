"""Metabolic cart exports as the carts write them: COSMED Omnia xlsx, CORTEX xlsx, plain CSV.

The synthetic study writes its breath-by-breath data with these; the readers of
:mod:`irtrepro.io.cpet` read them back like a lab's exports. Every writer is atomic and
deterministic: the same data give the same bytes on every run and machine.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro.errors import OptionError
from irtrepro.io._tabular import fmt_num, hms

__all__ = ["FIXED_STAMP", "write_cortex_xlsx", "write_cosmed_xlsx", "write_cpet_csv"]

# Writers stamp xlsx files with this fixed date (clearly not "now") so that the same data give
# byte-identical files on every run and machine.
FIXED_STAMP = dt.datetime(2000, 1, 1, 0, 0, 0)


def _check_df(df: pd.DataFrame, needed: Sequence[str], what: str) -> pd.DataFrame:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise OptionError(f"{what}: df lacks columns {missing}; has {list(df.columns)}")
    t = df["time"].to_numpy(float)
    if len(t) and (not np.isfinite(t).all() or (np.diff(t) < 0).any() or t[0] < 0):
        raise OptionError(f"{what}: df['time'] must be finite, >= 0 and non-decreasing")
    return df


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(float) if name in df.columns else np.full(len(df), np.nan)


def _save_deterministic_xlsx(wb, path: Path) -> None:
    """Save an openpyxl workbook byte-identically from run to run and machine to machine.

    openpyxl stamps ``docProps/core.xml`` with the current time and the zip entries with the
    local time of writing; both are pinned to :data:`FIXED_STAMP`, entries are stored in a
    fixed order with fixed permissions. Entries are *stored*, not deflated: deflate output
    depends on the zlib build (zlib vs zlib-ng), which would break machine-to-machine
    checksum stability; Excel and openpyxl read stored entries alike.
    """
    wb.properties.creator = "irtrepro"
    wb.properties.lastModifiedBy = "irtrepro"
    wb.properties.created = FIXED_STAMP
    wb.properties.modified = FIXED_STAMP
    buf = io.BytesIO()
    wb.save(buf)
    stamp = FIXED_STAMP.strftime("%Y-%m-%dT%H:%M:%SZ")
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(tmp, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename == "docProps/core.xml":
                    # openpyxl sets modified to "now" on save, whatever the properties say
                    data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)",
                                  rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
                zi = zipfile.ZipInfo(info.filename, date_time=FIXED_STAMP.timetuple()[:6])
                zi.compress_type = zipfile.ZIP_STORED
                zi.external_attr = 0o644 << 16
                zi.create_system = 0
                zout.writestr(zi, data)


def _excel_time(seconds: float) -> dt.time:
    if not 0 <= seconds < 86400:
        raise OptionError(f"time {seconds} s does not fit an Excel time cell (0..86400 s)")
    us = int(round(seconds * 1000)) * 1000  # ms resolution, as the exports show
    return (dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=us)).time()


# (label, unit, Study column, factor from Study unit, decimals) as COSMED Omnia writes them
_COSMED_COLS = (
    ("t", "s", "time", None, None),
    ("Af", "1/min", "rf", 1.0, 1),
    ("VT", "L(btps)", "vt", 1.0, 3),
    ("VE", "L/min", "ve", 1.0, 1),
    ("VO2", "mL/min", "vo2", 1.0, 2),
    ("VCO2", "mL/min", "vco2", 1.0, 2),
    ("R", "---", "rer", 1.0, 2),
    ("HF", "bpm", "hr", 1.0, 0),
)


def write_cosmed_xlsx(df: pd.DataFrame, path: str | os.PathLike, *, start_time: dt.datetime,
                      subject: dict | None = None) -> Path:
    """Write breath-by-breath data as a COSMED Omnia-style ``.xlsx`` export.

    Layout as the real export: sheet ``Daten``; label/value pairs (``ID1``, ``Nachname``,
    ``Geschlecht``, ``Alter``, ``Größe (cm)``, ``Gewicht (kg)``; ``Test-Datum`` as ddmmyyyy,
    ``Testzeit`` as a ``hh:mm:ss`` time cell) in columns A-E; the data block from column J:
    labels in row 1, units in row 2, empty row 3, breaths from row 4, ``t`` as an Excel time
    cell shown ``hh:mm:ss`` (ms resolution). Values are rounded as COSMED does: VO2/VCO2
    0.01 mL/min, VE 0.1 L/min, Af 0.1 min-1, VT 0.001 L, R 0.01, HF 1 min-1. NaN -> empty cell.

    Parameters
    ----------
    df : pandas.DataFrame
        ``time`` (s since test start) and any of ``vo2``, ``vco2`` (mL/min), ``ve`` (L/min),
        ``rf`` (min-1), ``vt`` (L), ``rer``, ``hr`` (min-1).
    path : path-like
        Target; written atomically and byte-identically for the same input.
    start_time : datetime
        Wall-clock start of the test (``Test-Datum`` + ``Testzeit``).
    subject : dict, optional
        ``id``, ``sex`` ("M"/"F"), ``age`` (years), ``height`` (cm), ``body_mass`` (kg).

    Returns
    -------
    Path
        The written file.
    """
    import openpyxl

    df = _check_df(df, ("time", "vo2"), "write_cosmed_xlsx")
    subject = dict(subject or {})
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Daten"
    sex = {"M": "Männlich", "F": "Weiblich"}.get(str(subject.get("sex", "")).upper(),
                                                    subject.get("sex"))
    meta_left = [("ID1", subject.get("id")), ("Nachname", None), ("Vorname", None),
                 ("Geschlecht", sex), ("Alter", subject.get("age")),
                 ("Größe (cm)", subject.get("height")), ("Gewicht (kg)", subject.get("body_mass"))]
    for i, (k, v) in enumerate(meta_left, start=1):
        ws.cell(i, 1, k)
        if v is not None:
            ws.cell(i, 2, v)
    ws.cell(1, 4, "Test-Datum")
    ws.cell(1, 5, int(start_time.strftime("%d%m%Y")))
    ws.cell(2, 4, "Testzeit")
    c = ws.cell(2, 5, start_time.time().replace(microsecond=0))
    c.number_format = "hh:mm:ss"
    t = df["time"].to_numpy(float)
    ws.cell(3, 4, "Testdauer")
    c = ws.cell(3, 5, _excel_time(float(t[-1]) if len(t) else 0.0))
    c.number_format = "hh:mm:ss"
    cols = [spec for spec in _COSMED_COLS if spec[2] == "time" or spec[2] in df.columns]
    for j, (label, unit, *_rest) in enumerate(cols, start=10):
        ws.cell(1, j, label)
        ws.cell(2, j, unit)
    data = {name: _col(df, name) for _, _, name, _, _ in cols if name != "time"}
    for i in range(len(df)):
        r = 4 + i
        c = ws.cell(r, 10, _excel_time(float(t[i])))
        c.number_format = "hh:mm:ss"
        for j, (_, _, name, factor, dec) in enumerate(cols[1:], start=11):
            v = data[name][i]
            if np.isfinite(v):
                v = round(float(v) * factor, dec)
                ws.cell(r, j, int(v) if dec == 0 else v)
    path = Path(path)
    _save_deterministic_xlsx(wb, path)
    return path


# CORTEX MetaSoft (English) writes V'O2 and V'CO2 in l/min, times as "hh:mm:ss,z" text
_CORTEX_COLS = (
    ("t", "hh:mm:ss.z", "time", None, None),
    ("VT", "l", "vt", 1.0, 2),
    ("AF", "1/min", "rf", 1.0, 1),
    ("V'E (BTPS)", "l/min", "ve", 1.0, 1),
    ("V'O2 (STPD)", "l/min", "vo2", 1e-3, 3),
    ("V'CO2", "l/min", "vco2", 1e-3, 3),
    ("R", "", "rer", 1.0, 2),
    ("HF", "1/min", "hr", 1.0, 0),
)


def write_cortex_xlsx(df: pd.DataFrame, path: str | os.PathLike, *, start_time: dt.datetime,
                      subject: dict | None = None) -> Path:
    """Write breath-by-breath data as a CORTEX MetaSoft Studio-style ``.xlsx`` (English).

    A patient/test block (``Sex``, ``Age``, ``Height``, ``Weight``, ``Start time``) on top,
    then the label row (``t``, ``VT``, ``AF``, ``V'E (BTPS)``, ``V'O2 (STPD)``, ``V'CO2``,
    ``R``, ``HF``), the units row (``V'O2``/``V'CO2`` in ``l/min``, 0.001 l/min resolution)
    and one breath per row with ``t`` as ``hh:mm:ss,z`` text. Parameters as
    :func:`write_cosmed_xlsx`.
    """
    import openpyxl

    df = _check_df(df, ("time", "vo2"), "write_cortex_xlsx")
    subject = dict(subject or {})
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    meta = [("Patient", None), ("ID", subject.get("id")), ("Sex", subject.get("sex")),
            ("Age", subject.get("age")),
            ("Height", f"{subject['height']:g} cm" if "height" in subject else None),
            ("Weight", f"{subject['body_mass']:g} kg" if "body_mass" in subject else None),
            (None, None), ("Test", None),
            ("Start time", start_time.strftime("%d.%m.%Y %H:%M:%S"))]
    for i, (k, v) in enumerate(meta, start=2):
        if k is not None:
            ws.cell(i, 1, k)
        if v is not None:
            ws.cell(i, 2, v)
    hr0 = len(meta) + 4
    cols = [spec for spec in _CORTEX_COLS if spec[2] == "time" or spec[2] in df.columns]
    for j, (label, unit, *_rest) in enumerate(cols, start=1):
        ws.cell(hr0, j, label)
        ws.cell(hr0 + 1, j, unit)
    t = df["time"].to_numpy(float)
    data = {name: _col(df, name) for _, _, name, _, _ in cols if name != "time"}
    for i in range(len(df)):
        r = hr0 + 2 + i
        ws.cell(r, 1, hms(float(t[i]), 1, ","))
        for j, (_, _, name, factor, dec) in enumerate(cols[1:], start=2):
            v = data[name][i]
            # CORTEX writes "-" where a value is missing
            ws.cell(r, j, (int(round(v * factor)) if dec == 0 else round(float(v) * factor, dec))
                    if np.isfinite(v) else "-")
    path = Path(path)
    _save_deterministic_xlsx(wb, path)
    return path


_CSV_COLS = (("time", "Time (s)", 1), ("vo2", "VO2 (mL/min)", 1), ("vco2", "VCO2 (mL/min)", 1),
             ("ve", "VE (L/min)", 2), ("rf", "RF (1/min)", 1), ("vt", "VT (L)", 3),
             ("hr", "HR (bpm)", 0), ("rer", "RER", 3))


def write_cpet_csv(df: pd.DataFrame, path: str | os.PathLike, *,
                   start_time: dt.datetime | None = None) -> Path:
    """Write breath-by-breath data as a plain CSV (comma, dot decimal, units in the labels).

    First line ``# start_time=<ISO 8601>`` when given, then ``Time (s),VO2 (mL/min),...``;
    time to 0.001 s, VO2/VCO2 to 0.1 mL/min, VE 0.01 L/min, RF 0.1 min-1, VT 0.001 L, HR 1,
    RER 0.001; NaN -> empty field. Read back with :func:`irtrepro.io.cpet.read_cpet_csv` (no column map needed).
    """
    df = _check_df(df, ("time", "vo2"), "write_cpet_csv")
    cols = [c for c in _CSV_COLS if c[0] in df.columns]
    lines = []
    if start_time is not None:
        lines.append(f"# start_time={start_time.isoformat()}")
    lines.append(",".join(c[1] for c in cols))
    arrays = [_col(df, c[0]) for c in cols]
    decs = [3 if c[0] == "time" else c[2] for c in cols]
    for i in range(len(df)):
        lines.append(",".join(fmt_num(a[i], d) for a, d in zip(arrays, decs, strict=True)))
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path
