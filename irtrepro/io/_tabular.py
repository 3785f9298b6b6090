"""Shared machinery of the tabular device readers (metabolic cart, heart rate, core temperature).

Device exports differ in language (German ``HF``, Swedish ``Tid``, English ``HR``), decimal mark
(``0,42`` or ``0.42``), time notation (``hh:mm:ss``, ``mm:ss``, ``hh:mm:ss,z``, seconds, Excel
time cells) and where units live (a units row under the labels, or ``"HR (bpm)"`` in the label).
The readers turn each export into a grid of raw cells plus the spreadsheet/file row number of each
data row; :func:`assemble` does the rest the same way for every format: find the columns by alias
(or the manifest's ``column_map``), parse times, parse numbers, convert units to the Study's and
record what it converted, and raise a :class:`~irtrepro.errors.ReaderError` subclass naming the
file, row and column on any bad cell.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro.errors import ReaderError


# --------------------------------------------------------------------------------------------
# errors: one subclass per kind of bad input, so tests and callers can tell them apart
# --------------------------------------------------------------------------------------------
class EmptyFileError(ReaderError):
    """The file holds no data rows (or no bytes at all)."""


class MissingColumnError(ReaderError, KeyError):
    """A required column is absent (or the column map names a column the file lacks)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class TimeFormatError(ReaderError):
    """A time cell cannot be parsed, or time goes backwards."""


class UnitError(ReaderError):
    """A unit is unknown for its quantity, or the values do not fit the stated unit."""


class ValueFormatError(ReaderError):
    """A cell that should hold a number does not."""


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------
def norm_label(label: object) -> str:
    """Normalise a column label for alias matching.

    Lower-case; drops apostrophes (``V'O2``, ``V’O2``), dots, spaces, underscores, hyphens and
    any parenthesised suffix such as ``(STPD)``, ``(BTPS)`` or ``(bpm)``.
    """
    s = "" if label is None else str(label)
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]", "", s)
    s = s.lower().translate(str.maketrans("", "", "'’`´.·_- \t\r\n"))
    return s


# Study name -> normalised labels seen in real exports (German, English, Swedish, Dutch).
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("t", "time", "tid", "zeit", "tijd", "temps", "heure", "elapsedtime", "timestamp"),
    "vo2": ("vo2", "vo₂", "o2uptake"),
    "vco2": ("vco2", "vco₂"),
    "ve": ("ve", "vex", "minuteventilation", "ventilation"),
    "rf": ("rf", "af", "bf", "br", "fr", "respirationrate", "breathingfrequency", "ttot/min"),
    "vt": ("vt", "vtex", "vte", "tidalvolume", "atemzugvolumen"),
    "hr": ("hr", "hf", "heartrate", "herzfrequenz", "puls", "pulse", "fc"),
    "rer": ("rer", "r", "rq"),
    "t_insp": ("ti", "tin", "tinsp"),
    "t_exp": ("te", "tex", "texp"),
    "tcore": ("tcore", "coretemperature", "coretemp", "temperature", "température",
              "temperatur", "tc", "temp", "gitemperature"),
}

LONG_NAMES = {
    "time": "time", "vo2": "oxygen uptake", "vco2": "carbon dioxide output",
    "ve": "minute ventilation", "rf": "respiratory frequency", "vt": "tidal volume",
    "hr": "heart rate", "rer": "respiratory exchange ratio", "t_insp": "inspiratory time",
    "t_exp": "expiratory time", "tcore": "core temperature",
}


# --------------------------------------------------------------------------------------------
# units
# --------------------------------------------------------------------------------------------
def norm_unit(unit: object) -> str:
    """Normalise a unit string: lower-case, no spaces, no ``(btps)``/``(stpd)`` qualifiers.

    ``None``, ``""``, ``"-"`` and ``"---"`` all become ``""`` (dimensionless or not given).
    """
    if unit is None or (isinstance(unit, float) and math.isnan(unit)):
        return ""
    s = str(unit).strip().lower().replace(" ", "")
    s = re.sub(r"\((btps|stpd|atps)\)", "", s)
    s = s.replace("µ", "u").replace("−", "-").replace("⁻¹", "-1").replace("ˉ¹", "-1")
    if set(s) <= {"-"}:
        return ""
    return s


_PER_MIN = ("1/min", "/min", "min-1", "min^-1", "bpm", "beats/min", "br/min", "breaths/min",
            "1/minute", "/minute", "b/min")

# Study name -> (Study unit, {normalised unit -> factor to the Study unit}); None = no unit given.
UNITS: dict[str, tuple[str, dict[str, float | Callable]]] = {
    "vo2": ("mL/min", {"ml/min": 1.0, "l/min": 1000.0, "ml/s": 60.0, "l/s": 60000.0}),
    "vco2": ("mL/min", {"ml/min": 1.0, "l/min": 1000.0, "ml/s": 60.0, "l/s": 60000.0}),
    "ve": ("L/min", {"l/min": 1.0, "ml/min": 1e-3, "l/s": 60.0}),
    "rf": ("min-1", dict.fromkeys(_PER_MIN, 1.0) | {"1/s": 60.0, "hz": 60.0}),
    "hr": ("min-1", dict.fromkeys(_PER_MIN, 1.0) | {"1/s": 60.0, "hz": 60.0}),
    "vt": ("L", {"l": 1.0, "ml": 1e-3}),
    "rer": ("1", {"": 1.0, "1": 1.0}),
    "t_insp": ("s", {"s": 1.0, "sec": 1.0, "ms": 1e-3}),
    "t_exp": ("s", {"s": 1.0, "sec": 1.0, "ms": 1e-3}),
    "tcore": ("degC", {"°c": 1.0, "degc": 1.0, "c": 1.0, "celsius": 1.0, "ºc": 1.0,
                       "°f": lambda v: (v - 32.0) * 5.0 / 9.0,
                       "degf": lambda v: (v - 32.0) * 5.0 / 9.0,
                       "k": lambda v: v - 273.15}),
}

# Plausible medians in Study units: catches a unit label that does not match the numbers
# (VO2 labelled mL/min but holding L/min values, a capsule export in Kelvin labelled degC).
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "vo2": (20.0, 10000.0), "vco2": (20.0, 10000.0), "ve": (1.0, 300.0),
    "hr": (20.0, 260.0), "tcore": (30.0, 45.0), "vt": (0.05, 8.0),
}

#: Variables whose zero is not a physiological value: a breath with no O2 uptake, CO2 output,
#: ventilation, frequency or volume, an RER of 0, a heart rate of 0. Carts write 0 for breaths
#: they could not measure (CORTEX) and for heart rate without a strap (COSMED); readers return
#: NaN for them and count them in ``attrs['missing']``.
ZERO_IS_MISSING = ("vo2", "vco2", "ve", "rf", "vt", "rer", "hr")
# Study variables whose column, when absent, is reported in ``attrs['missing']`` and
# ``attrs['conversions']`` (inspiratory/expiratory times are optional extras).
_REPORT_ABSENT = (*ZERO_IS_MISSING, "tcore")

_TIME_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
               "min": 60.0, "minutes": 60.0, "h": 3600.0, "ms": 1e-3}


# --------------------------------------------------------------------------------------------
# cell parsing
# --------------------------------------------------------------------------------------------
_MISSING = {"", "-", "--", "---", "nan", "na", "n/a", "none", "null"}


def _is_missing(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in _MISSING


def to_float(values: Sequence[object], *, path: Path, rows: Sequence[int], column: str,
             row_word: str = "row") -> np.ndarray:
    """Parse a column of cells to float64 (NaN where empty or ``-``).

    Accepts numbers and strings with a dot or comma decimal mark. Any other cell raises
    :class:`ValueFormatError` naming the file, row and column.
    """
    s = pd.Series(list(values), dtype=object)
    out = np.full(len(s), np.nan)
    is_num = s.map(lambda v: isinstance(v, (int, float, np.integer, np.floating))
                   and not isinstance(v, bool)).to_numpy(bool)
    out[is_num] = s[is_num].astype(float).to_numpy()
    rest = ~is_num & ~s.map(_is_missing).to_numpy(bool)
    if rest.any():
        txt = s[rest].astype(str).str.strip().str.replace("\u00a0", "", regex=False)
        # a comma is a decimal mark only when there is no dot; "1,234.5" keeps its dot
        txt = txt.where(txt.str.contains(".", regex=False), txt.str.replace(",", ".", regex=False))
        num = pd.to_numeric(txt, errors="coerce")
        bad = num.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(rest)[np.argmax(bad)])
            raise ValueFormatError(f"{path}: {row_word} {rows[i]}: column {column!r}: "
                                   f"{s.iloc[i]!r} is not a number")
        out[rest] = num.to_numpy(float)
    return out


_CLOCK = re.compile(r"^\s*(-?)(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d*)?)\s*$")


def to_seconds(values: Sequence[object], *, path: Path, rows: Sequence[int], column: str,
               unit: str = "", row_word: str = "row") -> np.ndarray:
    """Parse a column of time cells to seconds (float64).

    Cells may be :class:`datetime.time` / :class:`datetime.timedelta` (Excel time cells),
    strings ``h:mm:ss``, ``hh:mm:ss,z``, ``mm:ss`` (two fields are minutes and seconds), or
    numbers in ``unit`` (``s``, ``min``, ``ms``, ``h``; seconds when not given). Empty or
    unparseable cells raise :class:`TimeFormatError` naming the file, row and column.
    """
    factor = _TIME_UNITS.get(norm_unit(unit), 1.0)
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, dt.datetime):
            sec = v.hour * 3600 + v.minute * 60 + v.second + v.microsecond * 1e-6
        elif isinstance(v, dt.time):
            sec = v.hour * 3600 + v.minute * 60 + v.second + v.microsecond * 1e-6
        elif isinstance(v, dt.timedelta):
            sec = v.total_seconds()
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            sec = float(v) * factor
        elif isinstance(v, str) and (m := _CLOCK.match(v)):
            sign, h, mnt, s = m.groups()
            sec = int(h or 0) * 3600 + int(mnt) * 60 + float(s.replace(",", "."))
            sec = -sec if sign else sec
        elif isinstance(v, str) and re.fullmatch(r"\s*-?\d+(?:[.,]\d*)?\s*", v):
            sec = float(v.replace(",", ".")) * factor
        else:
            raise TimeFormatError(f"{path}: {row_word} {rows[i]}: column {column!r}: cannot read "
                                  f"time {v!r}; expected hh:mm:ss, mm:ss or a number of seconds")
        if not math.isfinite(sec):
            raise TimeFormatError(f"{path}: {row_word} {rows[i]}: column {column!r}: "
                                  f"time {v!r} is not finite")
        out[i] = sec
    return out


def check_time_order(t: np.ndarray, *, path: Path, rows: Sequence[int], column: str,
                     row_word: str = "row") -> None:
    """Raise :class:`TimeFormatError` at the first row where time goes backwards.

    Equal consecutive times are allowed: exports round breath times to 1 s or 0.1 s.
    """
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise TimeFormatError(f"{path}: {row_word} {rows[i]}: column {column!r}: time goes "
                              f"backwards ({t[i - 1]:g} s then {t[i]:g} s)")


def unit_in_label(label: object) -> str | None:
    """The unit in a label such as ``"HR (bpm)"`` or ``"VO2 [L/min]"``, else ``None``."""
    m = re.search(r"[(\[]([^)\]]*)[)\]]\s*$", "" if label is None else str(label))
    if not m:
        return None
    u = m.group(1)
    return None if norm_unit(u) in ("btps", "stpd", "atps", "est") else u


# --------------------------------------------------------------------------------------------
# the common assembly step
# --------------------------------------------------------------------------------------------
@dataclass
class Table:
    """Raw cells of one export after the format-specific layout has been peeled off.

    Attributes
    ----------
    labels : list of str
        Column labels, as in the file.
    units : list of str or None, or None
        The units row (``None`` where the export has none).
    cells : list of list
        Data rows (raw cell values: str, float, int, ``datetime.time`` ...).
    rows : list of int
        The file line / spreadsheet row number of each data row (1-based), for messages.
    row_word : str
        ``"row"`` for spreadsheets, ``"line"`` for text files.
    col_names : list of str or None
        How to name each column in messages (e.g. ``"VO2" (column N)``); defaults to labels.
    """

    labels: list[str]
    units: list[str | None] | None
    cells: list[list]
    rows: list[int]
    row_word: str = "row"
    col_names: list[str] | None = None


def find_column(labels: Sequence[object], name: str,
                column_map: dict[str, str] | None = None) -> int | None:
    """Index of the column of Study variable ``name``: the mapped label, else the first alias.

    With ``column_map`` holding ``name``, only that label counts (compared as written, then
    normalised as :func:`norm_label` does); the aliases are not tried.
    """
    if column_map and name in column_map:
        return find_label(labels, column_map[name])
    normed = [norm_label(x) for x in labels]
    for alias in ALIASES.get(name, (name,)):
        if alias in normed:
            return normed.index(alias)
    return None


def find_label(labels: Sequence[object], want: object) -> int | None:
    """Index of the label ``want`` (exact after stripping, then case/spacing-insensitive)."""
    for j, lab in enumerate(labels):
        if lab is not None and str(lab).strip() == str(want).strip():
            return j
    if norm_label(want):
        for j, lab in enumerate(labels):
            if norm_label(lab) == norm_label(want):
                return j
    return None


def assemble(table: Table, *, path: Path, fmt: str, signals: Sequence[str],
             required: Sequence[str], column_map: dict[str, str] | None = None,
             units: dict[str, str] | None = None, time_unit: str | None = None,
             start_time: dt.datetime | None = None, extra_attrs: dict | None = None,
             compute_rer: bool = False) -> pd.DataFrame:
    """Turn a :class:`Table` into the reader contract's DataFrame.

    Parameters
    ----------
    table : Table
        Labels, optional units row and data cells.
    path, fmt : Path, str
        The file (for messages and ``attrs['source']``) and the format name.
    signals : sequence of str
        Study variables to look for, in output order (``time`` is always first).
    required : sequence of str
        Those that must be present; a missing one raises :class:`MissingColumnError`.
    column_map : dict, optional
        Study name -> file column label, overriding the aliases.
    units : dict, optional
        Study name -> unit, overriding (or standing in for) the file's units.
    time_unit : str, optional
        Unit of numeric time cells when the file does not say (``s`` by default).
    start_time : datetime, optional
        Wall-clock start of the recording, stored in ``attrs['start_time']``.
    extra_attrs : dict, optional
        Further attrs (``subject`` ...).
    compute_rer : bool
        Compute ``rer = vco2 / vo2`` when the file has no RER column.

    Returns
    -------
    pandas.DataFrame
        Float columns ``time`` (s since the file's own start, as its time column states) and
        the signals found.
    """
    column_map = dict(column_map or {})
    units = {k: v for k, v in (units or {}).items()}
    if not table.cells:
        raise EmptyFileError(f"{path}: no data rows (format {fmt!r})")
    ncol = max(len(table.labels), *(len(r) for r in table.cells))
    labels = list(table.labels) + [None] * (ncol - len(table.labels))
    names = list(table.col_names or labels) + [None] * (ncol - len(table.col_names or labels))
    names = [n if n is not None else f"column {j + 1}" for j, n in enumerate(names)]
    file_units = list(table.units or []) + [None] * (ncol - len(table.units or []))
    grid = [list(r) + [None] * (ncol - len(r)) for r in table.cells]
    rows, rw = table.rows, table.row_word

    unknown = set(column_map) - set(ALIASES)
    if unknown:
        raise ReaderError(f"{path}: column_map has unknown Study names {sorted(unknown)}; "
                          f"expected some of {sorted(ALIASES)}")

    def locate(name: str) -> int | None:
        j = find_column(labels, name, column_map)
        if j is None and name in column_map:
            raise MissingColumnError(f"{path}: column {column_map[name]!r} "
                                     f"(column_map[{name!r}]) not found; columns are "
                                     f"{[x for x in labels if x is not None]}")
        return j

    jt = locate("time")
    if jt is None:
        raise MissingColumnError(f"{path}: no time column (looked for {list(ALIASES['time'])}); "
                                 f"columns are {[x for x in labels if x is not None]}; "
                                 f"give column_map={{'time': ...}}")
    t_unit = units.get("time") or file_units[jt] or unit_in_label(labels[jt]) or time_unit or ""
    time = to_seconds([r[jt] for r in grid], path=path, rows=rows, column=names[jt],
                      unit=str(t_unit), row_word=rw)
    check_time_order(time, path=path, rows=rows, column=names[jt], row_word=rw)
    # kept as the file states it (s since the test's own start): the first breath of a COSMED
    # export is at 00:00:30 when the test started 30 s before it, and sync needs that offset
    out: dict[str, np.ndarray] = {"time": time}
    conversions: list[str] = []
    missing: dict[str, dict] = {}
    absent: list[str] = []
    for name in signals:
        j = locate(name)
        if j is None:
            if name in required:
                raise MissingColumnError(
                    f"{path}: required column for {name!r} ({LONG_NAMES.get(name, name)}) not "
                    f"found (looked for {list(ALIASES[name])}); columns are "
                    f"{[x for x in labels if x is not None]}; give column_map={{{name!r}: ...}}")
            absent.append(name)
            continue
        values = to_float([r[j] for r in grid], path=path, rows=rows, column=names[j],
                          row_word=rw)
        zero = values == 0
        if name in ZERO_IS_MISSING and zero.any():
            # a cart writes 0 for a breath it could not measure (and for heart rate when no
            # strap is paired); no breath has zero uptake, ventilation or heart rate
            where = _rows_text([rows[i] for i in np.flatnonzero(zero)], rw)
            conversions.append(f"{name}: {int(zero.sum())} zero values read as missing "
                               f"({where})")
            missing[name] = {"n": int(zero.sum()), "reason": f"zero values ({where}) read as "
                             "missing: not a physiological value"}
            values = np.where(zero, np.nan, values)
        out[name] = _convert(name, values, units.get(name) or file_units[j]
                             or unit_in_label(labels[j]), path=path, column=names[j],
                             conversions=conversions)
    if compute_rer and "rer" not in out and "vo2" in out and "vco2" in out:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["rer"] = np.where(out["vo2"] > 0, out["vco2"] / out["vo2"], np.nan)
        conversions.append("rer: computed as vco2 / vo2")
    for name in absent:
        if name in out or name not in _REPORT_ABSENT:  # computed (rer), or an optional extra
            continue
        reason = (f"no column found (looked for {list(ALIASES.get(name, (name,)))}); "
                  f"give column_map={{{name!r}: ...}} if the file has it under another label")
        conversions.append(f"{name}: {reason}")
        missing[name] = {"n": len(time), "reason": reason}
    df = pd.DataFrame(out)
    df.attrs.update({"start_time": start_time, "source": str(path), "format": fmt,
                     "conversions": conversions, "missing": missing, "units": {
                         k: ("s" if k == "time" else UNITS[k][0]) for k in df.columns}})
    if extra_attrs:
        df.attrs.update(extra_attrs)
    return df


def _rows_text(rows: Sequence[int], row_word: str, limit: int = 10) -> str:
    """``"rows 96, 287"`` (the first ``limit``, then how many more)."""
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{row_word}{'s' if len(rows) > 1 else ''} {shown}{more}"


def _convert(name: str, values: np.ndarray, unit: str | None, *, path: Path, column: str,
             conversions: list[str]) -> np.ndarray:
    """Convert ``values`` from ``unit`` to the Study unit of ``name``; check plausibility."""
    study_unit, table = UNITS[name]
    u = norm_unit(unit)
    if unit is None and "" in table:  # dimensionless (RER): nothing to say
        factor: float | Callable = 1.0
    elif unit is None or (u == "" and "" not in table):
        # no unit in the file: assume Study units, but still check plausibility below
        factor = 1.0
        conversions.append(f"{name}: no unit in file, assumed {study_unit}")
    elif u in table:
        factor = table[u]
    else:
        raise UnitError(f"{path}: column {column!r}: unknown unit {unit!r} for {name} "
                        f"({LONG_NAMES.get(name, name)}); expected one of "
                        f"{sorted(k for k in table if k)} (converted to {study_unit})")
    if callable(factor):
        values = factor(values)
        conversions.append(f"{name}: {unit} -> {study_unit}")
    elif factor != 1.0:
        values = values * factor
        conversions.append(f"{name}: {unit} -> {study_unit} (x{factor:g})")
    if name in PLAUSIBLE and np.isfinite(values).any():
        lo, hi = PLAUSIBLE[name]
        med = float(np.nanmedian(values))
        if not lo <= med <= hi:
            raise UnitError(f"{path}: column {column!r}: median {name} is {med:g} {study_unit} "
                            f"after conversion from {unit!r}, outside the plausible "
                            f"{lo:g}..{hi:g} {study_unit}; is the unit right?")
    return values.astype(float)


#: Date formats tried by :func:`parse_date` after ISO ``yyyy-mm-dd``, by day-month order.
DATE_FORMATS = {
    True: ("%d.%m.%Y", "%d-%m-%Y", "%d/%m/%Y", "%d%m%Y", "%d.%m.%y", "%d/%m/%y"),
    False: ("%m/%d/%Y", "%m-%d-%Y", "%m.%d.%Y", "%m%d%Y", "%m/%d/%y", "%m.%d.%y"),
}


def parse_date(text: object, *, dayfirst: bool = True) -> dt.date | None:
    """Parse a date cell; ``None`` when it is not a date.

    ISO ``yyyy-mm-dd`` is always understood. Other dates are read day first (``dd.mm.yyyy``,
    ``dd-mm-yyyy``, ``dd/mm/yyyy``, ``ddmmyyyy``, ``dd.mm.yy``, ``dd/mm/yy``: European
    exports) or, with ``dayfirst=False``, month first (``mm/dd/yyyy`` and the same
    separators: US exports). An ambiguous ``03/04/2026`` is 3 April day first and March 4
    month first; nothing is guessed from the values.

    Examples
    --------
    >>> parse_date("03/04/2026")
    datetime.date(2026, 4, 3)
    >>> parse_date("03/04/2026", dayfirst=False)
    datetime.date(2026, 3, 4)
    >>> parse_date("13/04/2026", dayfirst=False) is None
    True
    """
    if text is None:
        return None
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    s = str(text).strip()
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        s = f"{int(text):08d}"
    for fmt_ in ("%Y-%m-%d", *DATE_FORMATS[bool(dayfirst)]):
        try:
            return dt.datetime.strptime(s, fmt_).date()
        except ValueError:
            continue
    return None


def parse_clock(text: object) -> dt.time | None:
    """Parse a wall-clock time ``hh:mm`` or ``hh:mm:ss`` (or pass a :class:`datetime.time`)."""
    if isinstance(text, dt.datetime):
        return text.time()
    if isinstance(text, dt.time):
        return text
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*", str(text or ""))
    if not m:
        return None
    h, mi, s, frac = m.groups()
    us = int(round(float(f"0.{frac}") * 1e6)) if frac else 0
    return dt.time(int(h), int(mi), int(s or 0), min(us, 999999))


def read_text(path: Path) -> str:
    """Read a text export: UTF-8 (with or without BOM), else cp1252 (old Windows exports)."""
    raw = path.read_bytes()
    if not raw.strip():
        raise EmptyFileError(f"{path}: file is empty")
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ReaderError(f"{path}: cannot decode text")  # pragma: no cover - latin-1 never fails


def fmt_num(x: float, decimals: int, decimal: str = ".") -> str:
    """Format a float with fixed decimals for writers; NaN becomes an empty cell."""
    if x is None or not np.isfinite(x):
        return ""
    s = f"{x:.{decimals}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]  # no "-0.0": byte-identical output whatever the sign of tiny noise
    return s.replace(".", decimal) if decimal != "." else s


def hms(seconds: float, decimals: int = 0, decimal: str = ".") -> str:
    """Format seconds as ``hh:mm:ss`` (with ``decimals`` fractional digits)."""
    scale = 10 ** decimals
    total = int(round(seconds * scale))
    whole, frac = divmod(total, scale)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    out = f"{h:02d}:{m:02d}:{s:02d}"
    return out + f"{decimal}{frac:0{decimals}d}" if decimals else out
