"""Metabolic cart (CPET) exports: readers.

Formats (kind ``cpet``):

``cosmed-xlsx``
    COSMED Omnia breath-by-breath export: sheet ``Daten``/``Data``; subject and test
    information as label/value pairs in columns A-H; the data block starts at the column
    labelled ``t`` in row 1, the row after the labels holds units, data follow (``t`` as
    Excel time cells shown ``hh:mm:ss``).
``cortex-xlsx``, ``cortex-xml``
    CORTEX MetaSoft Studio export (xlsx, or Excel-2003 XML): patient/test block on top, then a
    label row (``t``, ``V'O2``, ``HF`` ...), a units row (``V'O2`` often in ``L/min``) and the
    breaths (``t`` as ``h:mm:ss`` or ``hh:mm:ss,z`` text).
``vyntus-txt``
    Vyntus CPX tab-separated export (Swedish/German labels ``Tid``, ``HF``; units row).
``csv``
    Any delimited text with a label row, optional units row, and a ``column_map``.

Every reader returns the DataFrame of :mod:`irtrepro.io.registry`'s contract: ``time`` (s since
the first breath row) and ``vo2``, ``vco2`` (mL/min), ``ve`` (L/min), ``rf`` (min-1), ``vt`` (L),
``hr`` (min-1), ``rer`` where present, with the conversions listed in ``attrs['conversions']``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pandas as pd

from irtrepro.errors import FormatError, OptionError, ReaderError
from irtrepro.io._tabular import (
    EmptyFileError,
    MissingColumnError,
    Table,
    assemble,
    find_column,
    norm_label,
    parse_clock,
    parse_date,
    read_text,
)
from irtrepro.io.registry import register

__all__ = [
    "read_cosmed_xlsx", "read_cortex_xlsx", "read_cortex_xml", "read_vyntus_txt", "read_cpet_csv",
    "CPET_SIGNALS",
]

CPET_SIGNALS = ("vo2", "vco2", "ve", "rf", "vt", "hr", "rer", "t_insp", "t_exp")
_REQUIRED = ("vo2",)
_HEADER_SEARCH_ROWS = 300


# --------------------------------------------------------------------------------------------
# layout helpers shared by the spreadsheet formats
# --------------------------------------------------------------------------------------------
def _blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _is_header(row: list, column_map: dict[str, str] | None = None, *,
               loose: bool = False) -> bool:
    """A label row: a time label and a VO2 label (aliases, or the labels ``column_map`` names).

    ``loose``: a time label and at least two other breath-table labels (VCO2, VE, HR ...), for
    an export whose VO2 column is labelled in a way no alias knows (the column map, or the
    missing-column error that asks for one, takes it from there).
    """
    if find_column(row, "time", column_map) is None:
        return False
    if find_column(row, "vo2", column_map) is not None:
        return True
    return loose and sum(find_column(row, k) is not None
                         for k in ("vco2", "ve", "rf", "vt", "hr", "rer")) >= 2


def _find_header(grid: list[list], rownums: list[int], path: Path,
                 column_map: dict[str, str] | None = None) -> int:
    """Index (into ``grid``) of the label row: a row with a time label and a VO2 label.

    The labels ``column_map`` gives for ``time`` and ``vo2`` count as theirs; failing that, a
    row with a time label and two other breath-table labels is taken (see :func:`_is_header`).
    """
    head = grid[:_HEADER_SEARCH_ROWS]
    for loose in (False, True):
        for i, row in enumerate(head):
            if _is_header(row, column_map, loose=loose):
                return i
    if not any(any(not _blank(v) for v in r) for r in grid):
        raise EmptyFileError(f"{path}: file holds no cells")
    raise MissingColumnError(f"{path}: no label row with a time column (t/Zeit/Tid/Time) and a "
                             f"VO2 column in the first {_HEADER_SEARCH_ROWS} rows; "
                             f"is this a breath-by-breath export? (column_map={{'time': ..., "
                             f"'vo2': ...}} names other labels)")


def _looks_like_units(row: list, jt: int) -> bool:
    """A units row has text (``s``, ``h:mm:ss``, ``min``) or nothing where the time goes."""
    v = row[jt] if jt < len(row) else None
    if v is None:
        # COSMED leaves row 3 empty; a units row needs at least one unit-like string
        return any(isinstance(x, str) and re.search(r"[a-zA-Z/%]", x) for x in row)
    return isinstance(v, str) and not re.fullmatch(r"\s*[\d:.,\s]+\s*", v)


def _table_from_grid(grid: list[list], rownums: list[int], path: Path, *,
                     row_word: str = "row", letters: bool = True,
                     column_map: dict[str, str] | None = None) -> tuple[Table, int, int]:
    """Cut the breath table out of a sheet: labels, units row, data rows from the time column."""
    hi = _find_header(grid, rownums, path, column_map)
    header = grid[hi]
    jt = find_column(header, "time", column_map)
    assert jt is not None
    # the block ends at the first empty label after the time column
    j_end = jt
    while j_end < len(header) and not _blank(header[j_end]):
        j_end += 1
    labels = [str(x).strip() for x in header[jt:j_end]]
    units = None
    k = hi + 1
    if k < len(grid) and _looks_like_units(grid[k][jt:j_end], 0):
        units = [None if _blank(x) else str(x).strip() for x in grid[k][jt:j_end]]
        k += 1
    cells, rows = [], []
    for row, rn in zip(grid[k:], rownums[k:], strict=True):
        block = (list(row[jt:j_end]) + [None] * (j_end - jt))[: j_end - jt]
        if all(_blank(v) for v in block):
            continue  # blank separator rows (COSMED row 3) and trailing empty rows
        cells.append(block)
        rows.append(rn)
    col_names = [f"{lab} (column {_col_letter(jt + j) if letters else jt + j + 1})"
                 for j, lab in enumerate(labels)]
    return Table(labels, units, cells, rows, row_word, col_names), hi, jt


def _col_letter(j: int) -> str:
    s, j = "", j + 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


# metadata labels (normalised) -> attrs key
_META = {
    "geschlecht": "sex", "sex": "sex", "gender": "sex", "kön": "sex",
    "alter": "age", "age": "age", "ålder": "age",
    "größe": "height", "grösse": "height", "height": "height", "längd": "height",
    "gewicht": "body_mass", "weight": "body_mass", "vikt": "body_mass", "bodymass": "body_mass",
    "geburtsdatum": "birth_date", "dateofbirth": "birth_date", "birthdate": "birth_date",
    "id": "id", "id1": "id", "idnummer:": "id", "idnummer": "id", "patientid": "id",
}


def _meta_number(v: object) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = re.search(r"-?\d+(?:[.,]\d+)?", str(v or ""))
    return float(m.group().replace(",", ".")) if m else None


def _subject(pairs: dict[str, object]) -> dict:
    """Subject info from label/value pairs (sex, age in years, height cm, body mass kg)."""
    out: dict = {}
    for key, val in pairs.items():
        attr = _META.get(norm_label(key).rstrip(":")) or _META.get(norm_label(key))
        if attr is None or _blank(val) or (isinstance(val, str) and set(val.strip()) <= {"x"}):
            continue
        if attr in ("age", "height", "body_mass"):
            num = _meta_number(val)
            if num is not None:
                out[attr] = num
        elif attr == "birth_date":
            d = parse_date(val)
            if d is not None:
                out[attr] = d.isoformat()
        elif attr == "sex":
            s = str(val).strip().lower()
            out[attr] = ("M" if s[:1] in ("m", "h") else "F" if s[:1] in ("w", "f", "k")
                         else str(val).strip())
        else:
            out[attr] = str(val).strip()
    return out


def _pairs(grid: list[list], upto_row: int | None = None, upto_col: int | None = None) -> dict:
    """Label/value pairs: a text cell followed by a non-empty cell to its right."""
    pairs: dict[str, object] = {}
    for row in grid[:upto_row]:
        row = row[:upto_col]
        for j in range(len(row) - 1):
            if isinstance(row[j], str) and not _blank(row[j]) and not _blank(row[j + 1]):
                pairs.setdefault(row[j].strip(), row[j + 1])
    return pairs


# --------------------------------------------------------------------------------------------
# xlsx
# --------------------------------------------------------------------------------------------
def _load_sheets(path: Path) -> list[tuple[str, list[list], list[list[str]]]]:
    """All sheets of an xlsx as (name, values, number formats), via openpyxl read-only."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        if path.stat().st_size == 0:
            raise EmptyFileError(f"{path}: file is empty") from exc
        raise FormatError(f"{path}: not a readable xlsx workbook ({exc})") from exc
    try:
        sheets = []
        for ws in wb.worksheets:
            values, formats = [], []
            for row in ws.iter_rows():
                values.append([getattr(c, "value", None) for c in row])
                formats.append([getattr(c, "number_format", "General") for c in row])
            sheets.append((ws.title, values, formats))
        return sheets
    finally:
        wb.close()


def _pick_sheet(path: Path, sheet: str | int | None,
                column_map: dict[str, str] | None = None):
    sheets = _load_sheets(path)
    if sheet is not None:
        names = [s[0] for s in sheets]
        if isinstance(sheet, int):
            if not 0 <= sheet < len(sheets):
                raise OptionError(f"sheet={sheet}; {path} has {len(sheets)} sheets {names}")
            return sheets[sheet]
        if sheet not in names:
            raise OptionError(f"sheet={sheet!r}; expected one of {names} in {path}")
        return sheets[names.index(sheet)]
    for loose in (False, True):  # the first sheet with a breath table
        for s in sheets:
            if any(_is_header(r, column_map, loose=loose) for r in s[1][:_HEADER_SEARCH_ROWS]):
                return s
    return sheets[0]


def _cosmed_start(pairs: dict, formats: dict) -> dt.datetime | None:
    """Start of test from ``Test-Datum``/``Testzeit`` (``Test Date``/``Test Time``).

    COSMED writes the clock time ``hh:mm`` into a cell Excel formats ``mm:ss``: the value
    read back is 00:14:23 for a test at 14:23. A time cell with hour 0 and an ``mm:ss`` format
    is therefore read as hours:minutes (documented in docs/readers.md).
    """
    date = time = None
    for key, val in pairs.items():
        k = norm_label(key)
        if k in ("testdatum", "testdate", "datum", "date"):
            date = parse_date(val)
        elif k in ("testzeit", "testtime", "zeit", "starttime"):
            time = parse_clock(val)
            fmt = formats.get(key, "")
            if (time is not None and isinstance(val, dt.time) and val.hour == 0
                    and "h" not in fmt.lower()):
                time = dt.time(val.minute, val.second)
    if date is None:
        return None
    return dt.datetime.combine(date, time or dt.time(0))


@register("cpet", "cosmed-xlsx", extensions=(".xlsx",),
          sniff=lambda head, path: head[:2] == b"PK" and _xlsx_flavour(path) == "cosmed",
          aliases=("cosmed",))
def read_cosmed_xlsx(path: str | os.PathLike, *, column_map: dict[str, str] | None = None,
                     units: dict[str, str] | None = None, sheet: str | int | None = None
                     ) -> pd.DataFrame:
    """Read a COSMED Omnia breath-by-breath ``.xlsx`` export.

    Parameters
    ----------
    path : path-like
        The export.
    column_map : dict, optional
        Study name -> column label, where the aliases (``t``, ``VO2``, ``Af``, ``HF`` ...) fail.
    units : dict, optional
        Study name -> unit, overriding the units row.
    sheet : str or int, optional
        Sheet to read (default: the first sheet with a breath table, ``Daten``/``Data``).

    Returns
    -------
    pandas.DataFrame
        ``time`` (s), ``vo2``, ``vco2`` (mL/min), ``ve`` (L/min), ``rf`` (min-1), ``vt`` (L),
        ``hr`` (min-1), ``rer``; attrs ``start_time`` (from ``Test-Datum`` + ``Testzeit``),
        ``subject`` (sex, age, height cm, body_mass kg, ...), ``conversions``.
    """
    path = Path(path)
    name, grid, fmts = _pick_sheet(path, sheet, column_map)
    rownums = list(range(1, len(grid) + 1))
    table, hi, jt = _table_from_grid(grid, rownums, path, column_map=column_map)
    pairs = _pairs(grid[: max(hi + 40, 40)], upto_col=jt)
    formats = {}
    for r, frow in zip(grid[:40], fmts[:40], strict=False):
        for j in range(min(jt, len(r)) - 1):
            if isinstance(r[j], str):
                formats.setdefault(r[j].strip(), frow[j + 1] if j + 1 < len(frow) else "")
    return assemble(table, path=path, fmt="cosmed-xlsx", signals=CPET_SIGNALS,
                    required=_REQUIRED, column_map=column_map, units=units,
                    start_time=_cosmed_start(pairs, formats), compute_rer=True,
                    extra_attrs={"subject": _subject(pairs), "sheet": name})


def _cortex_start(pairs: dict) -> dt.datetime | None:
    for key, val in pairs.items():
        if norm_label(key) in ("startzeit", "starttime", "teststart", "start", "testdate",
                                "datum", "date", "testdatum"):
            if isinstance(val, dt.datetime):
                return val
            m = re.fullmatch(r"\s*(\S+)\s+(\d{1,2}:\d{2}(?::\d{2})?)\s*", str(val))
            if m and (d := parse_date(m.group(1))) and (t := parse_clock(m.group(2))):
                return dt.datetime.combine(d, t)
            if (d := parse_date(val)) is not None:
                return dt.datetime.combine(d, dt.time(0))
    return None


@register("cpet", "cortex-xlsx", extensions=(".xlsx",),
          sniff=lambda head, path: head[:2] == b"PK" and _xlsx_flavour(path) == "cortex",
          aliases=("cortex", "metasoft-xlsx"))
def read_cortex_xlsx(path: str | os.PathLike, *, column_map: dict[str, str] | None = None,
                     units: dict[str, str] | None = None, sheet: str | int | None = None
                     ) -> pd.DataFrame:
    """Read a CORTEX MetaSoft Studio ``.xlsx`` breath-by-breath export (English or German).

    Parameters and returns as :func:`read_cosmed_xlsx`; ``start_time`` comes from the test
    block (``Startzeit``/``Start time``) when present, else ``None``.
    """
    path = Path(path)
    name, grid, _ = _pick_sheet(path, sheet, column_map)
    rownums = list(range(1, len(grid) + 1))
    table, hi, _ = _table_from_grid(grid, rownums, path, column_map=column_map)
    pairs = _pairs(grid[:hi])
    return assemble(table, path=path, fmt="cortex-xlsx", signals=CPET_SIGNALS,
                    required=_REQUIRED, column_map=column_map, units=units,
                    start_time=_cortex_start(pairs), compute_rer=True,
                    extra_attrs={"subject": _subject(pairs), "sheet": name})


def _xlsx_flavour(path: Path) -> str | None:
    """``cosmed`` when the time label sits right of a metadata block in row 1, else ``cortex``."""
    try:
        _, grid, _ = _pick_sheet(Path(path), None)
        hi = _find_header(grid, list(range(1, len(grid) + 1)), Path(path))
    except ReaderError:
        return None
    jt = find_column(grid[hi], "time")
    return "cosmed" if hi == 0 and jt and jt > 0 else "cortex"


# --------------------------------------------------------------------------------------------
# Excel-2003 XML (CORTEX MetaSoft)
# --------------------------------------------------------------------------------------------
_SS = "{urn:schemas-microsoft-com:office:spreadsheet}"


def _xml_grid(path: Path) -> tuple[list[list], list[int]]:
    """Cells of the first worksheet of an Excel-2003 XML workbook, honouring ``ss:Index``."""
    if path.stat().st_size == 0:
        raise EmptyFileError(f"{path}: file is empty")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise FormatError(f"{path}: not well-formed XML ({exc})") from exc
    ws = root.find(f"{_SS}Worksheet")
    if ws is None:
        raise FormatError(f"{path}: no <Worksheet> in this Excel-2003 XML file")
    grid, rownums, r = [], [], 0
    for row in ws.iter(f"{_SS}Row"):
        r = int(row.get(f"{_SS}Index", r + 1))
        cells: list = []
        for cell in row.findall(f"{_SS}Cell"):
            j = int(cell.get(f"{_SS}Index", len(cells) + 1)) - 1
            cells.extend([None] * (j - len(cells)))
            data = cell.find(f"{_SS}Data")
            val: object = None
            if data is not None and data.text is not None:
                typ = data.get(f"{_SS}Type", "String")
                if typ == "Number":
                    try:
                        val = float(data.text)
                    except ValueError:
                        val = data.text  # reported with its row by the number parser
                elif typ == "DateTime":
                    try:
                        val = dt.datetime.fromisoformat(data.text)
                    except ValueError:
                        val = data.text
                else:
                    val = data.text
            cells.append(val)
        grid.append(cells)
        rownums.append(r)
    return grid, rownums


@register("cpet", "cortex-xml", extensions=(".xml",),
          sniff=lambda head, path: b"urn:schemas-microsoft-com:office:spreadsheet" in head,
          aliases=("metasoft-xml",))
def read_cortex_xml(path: str | os.PathLike, *, column_map: dict[str, str] | None = None,
                    units: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a CORTEX MetaSoft Studio Excel-2003 XML export (German or English).

    Rows are numbered as the spreadsheet shows them (``ss:Index`` gaps honoured). Parameters
    and returns as :func:`read_cortex_xlsx`.
    """
    path = Path(path)
    grid, rownums = _xml_grid(path)
    table, hi, _ = _table_from_grid(grid, rownums, path, column_map=column_map)
    pairs = _pairs(grid[:hi])
    return assemble(table, path=path, fmt="cortex-xml", signals=CPET_SIGNALS,
                    required=_REQUIRED, column_map=column_map, units=units,
                    start_time=_cortex_start(pairs), compute_rer=True,
                    extra_attrs={"subject": _subject(pairs)})


# --------------------------------------------------------------------------------------------
# delimited text (Vyntus CPX, generic CSV)
# --------------------------------------------------------------------------------------------
def _split_lines(text: str, sep: str) -> list[list[str]]:
    import csv

    return [row for row in csv.reader(io.StringIO(text), delimiter=sep)]


def _sniff_sep(text: str) -> str:
    """Delimiter: tab, semicolon or comma, whichever splits the label lines most."""
    lines = [ln for ln in text.splitlines()[:30] if ln.strip()]
    best = max(("\t", ";", ","), key=lambda s: sum(ln.count(s) for ln in lines))
    return best


def _text_table(path: Path, *, sep: str | None, comment: str = "#",
                column_map: dict[str, str] | None = None) -> tuple[Table, int, list[list]]:
    text = read_text(path)
    body = [ln for ln in text.splitlines()]
    sep = sep or _sniff_sep("\n".join(ln for ln in body if not ln.startswith(comment)))
    grid = _split_lines(text, sep)
    # comment lines (# start_time=...) are kept out of the layout search but keep line numbers
    clean = [[] if (r and r[0].startswith(comment)) else r for r in grid]
    table, hi, _ = _table_from_grid(clean, list(range(1, len(clean) + 1)), path,
                                    row_word="line", letters=False, column_map=column_map)
    return table, hi, grid


@register("cpet", "vyntus-txt", extensions=(".txt",),
          sniff=lambda head, path: bool(re.search(rb"(?m)^(Tid|Zeit|Time|t)\t.*V'?O2", head)),
          aliases=("vyntus",))
def read_vyntus_txt(path: str | os.PathLike, *, column_map: dict[str, str] | None = None,
                    units: dict[str, str] | None = None, sep: str = "\t") -> pd.DataFrame:
    """Read a Vyntus CPX tab-separated export (``Tid``/``Zeit`` as ``mm:ss``, units row).

    ``attrs['subject']['id']`` comes from the ``ID-nummer:`` line; the export has no date,
    so ``start_time`` is ``None``. Other parameters as :func:`read_cosmed_xlsx`.
    """
    path = Path(path)
    table, hi, grid = _text_table(path, sep=sep, column_map=column_map)
    return assemble(table, path=path, fmt="vyntus-txt", signals=CPET_SIGNALS,
                    required=_REQUIRED, column_map=column_map, units=units, start_time=None,
                    compute_rer=True, extra_attrs={"subject": _subject(_pairs(grid[:hi]))})


@register("cpet", "csv", extensions=(".csv",), aliases=("generic-csv",))
def read_cpet_csv(path: str | os.PathLike, *, column_map: dict[str, str] | None = None,
                  units: dict[str, str] | None = None, sep: str | None = None,
                  time_unit: str = "s", start_time: dt.datetime | str | None = None
                  ) -> pd.DataFrame:
    """Read breath-by-breath data from a delimited text file with a column map.

    The file has a label row (found by its time and VO2 labels, or the ``column_map``), an
    optional units row, then one breath per line. Units come from the units row, from the
    label (``"VO2 (L/min)"``) or from ``units``; without any, Study units are assumed and the
    values are checked for plausibility. A leading comment line ``# start_time=<ISO 8601>``
    (as the synthetic study's CSV writer writes) sets ``attrs['start_time']``.

    Parameters
    ----------
    path : path-like
    column_map : dict, optional
        Study name -> column label, e.g. ``{"time": "Zeit", "vo2": "VO2abs"}``.
    units : dict, optional
        Study name -> unit (``{"vo2": "L/min"}``).
    sep : str, optional
        Delimiter (sniffed from tab, ``;``, ``,`` when ``None``).
    time_unit : str
        Unit of numeric time cells when neither units row nor label says (``s`` or ``min``).
    start_time : datetime or ISO string, optional
        Start of the recording, when the file does not carry one.
    """
    path = Path(path)
    text_head = read_text(path)[:4096]
    if column_map and ("time" in column_map or "vo2" in column_map):
        table, hi, grid = _text_table_mapped(path, sep=sep, column_map=column_map)
    else:
        table, hi, grid = _text_table(path, sep=sep)
    m = re.search(r"(?m)^#\s*start_time\s*[=:]\s*(\S+)", text_head)
    if start_time is None and m:
        start_time = m.group(1)
    if isinstance(start_time, str):
        try:
            start_time = dt.datetime.fromisoformat(start_time)
        except ValueError as exc:
            raise ReaderError(f"{path}: start_time {start_time!r} is not ISO 8601") from exc
    return assemble(table, path=path, fmt="csv", signals=CPET_SIGNALS, required=_REQUIRED,
                    column_map=column_map, units=units, time_unit=time_unit,
                    start_time=start_time, compute_rer=True)


def _text_table_mapped(path: Path, *, sep: str | None, column_map: dict[str, str]):
    """Like :func:`_text_table`, but the label row is the one holding the mapped labels."""
    text = read_text(path)
    sep = sep or _sniff_sep("\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))
    grid = _split_lines(text, sep)
    want = {str(column_map[k]).strip() for k in ("time", "vo2") if k in column_map}
    need = [k for k in ("time", "vo2") if k not in column_map]  # still found by alias
    i = 0
    for i, row in enumerate(grid[:_HEADER_SEARCH_ROWS]):  # noqa: B007 - i used after the loop
        if want <= {c.strip() for c in row} and all(find_column(row, k) is not None
                                                    for k in need):
            break
    else:
        first = next((r for r in grid if r and not r[0].startswith("#")), [])
        raise MissingColumnError(f"{path}: column(s) {sorted(want)} from column_map not found on "
                                 f"any line" + (f" with a {need[0]} column" if need else "")
                                 + f"; the first line's columns are {[c.strip() for c in first]}")
    header = [c.strip() for c in grid[i]]
    jt = (header.index(str(column_map["time"]).strip()) if "time" in column_map
          else find_column(header, "time"))
    k, units = i + 1, None
    if k < len(grid) and _looks_like_units(grid[k], jt):
        units, k = [c.strip() or None for c in grid[k]], k + 1
    cells, rows = [], []
    for n, row in enumerate(grid[k:], start=k + 1):
        if row and not all(_blank(c) for c in row) and not row[0].startswith("#"):
            cells.append(row)
            rows.append(n)
    return Table(header, units, cells, rows, "line"), i, grid
