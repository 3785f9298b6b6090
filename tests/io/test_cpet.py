"""Metabolic-cart readers and writers: real exports, round trips, determinism, bad input."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import openpyxl
import pandas as pd
import pytest

from irtrepro.errors import ReaderError
from irtrepro.io import detect, read
from irtrepro.io._tabular import (
    EmptyFileError,
    MissingColumnError,
    TimeFormatError,
    UnitError,
    ValueFormatError,
)
from irtrepro.io.cpet import (
    read_cortex_xlsx,
    read_cortex_xml,
    read_cosmed_xlsx,
    read_cpet_csv,
    read_vyntus_txt,
)
from irtrepro.synth.exports.cpet import write_cortex_xlsx, write_cosmed_xlsx, write_cpet_csv

START = dt.datetime(2024, 5, 6, 9, 30, 15)
SUBJECT = {"id": "S01", "sex": "F", "age": 27, "height": 168.0, "body_mass": 59.5}


@pytest.fixture
def breaths() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 40
    t = np.round(np.cumsum(rng.uniform(1.5, 3.5, n)), 3)
    df = pd.DataFrame({"time": t, "vo2": rng.uniform(400, 3500, n),
                       "vco2": rng.uniform(350, 3600, n), "ve": rng.uniform(10, 120, n),
                       "rf": rng.uniform(14, 50, n), "vt": rng.uniform(0.5, 3.0, n),
                       "hr": rng.uniform(60, 190, n)})
    df["rer"] = df.vco2 / df.vo2
    df.loc[5, "hr"] = np.nan  # strap dropout
    df.loc[9, "vo2"] = np.nan  # dropped breath value
    return df


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- real exports (read in place)
def test_cosmed_real(real_exports):
    path = real_exports / "cosmed_omnia.xlsx"
    assert detect(path, "cpet") == "cosmed-xlsx"
    df = read_cosmed_xlsx(path)
    assert len(df) == 10  # rows 4..13 of sheet Daten
    assert df.time.tolist() == [30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0]
    first = df.iloc[0]
    assert first.vo2 == pytest.approx(506.1618208)  # mL/min already
    assert first.vco2 == pytest.approx(440.9817142)
    assert first.rf == pytest.approx(34.9) and first.vt == pytest.approx(0.556)
    assert first.ve == pytest.approx(19.4) and first.rer == pytest.approx(0.87)
    assert df.vo2.iloc[-1] == pytest.approx(2707.7314704)
    assert df.hr.isna().all()  # HF column is all 0: no strap, read as missing, never 0
    assert any("zero values read as missing" in c for c in df.attrs["conversions"])
    # Test-Datum 11042015, Testzeit shown 14:23 (mm:ss cell) -> 14:23 clock time
    assert df.attrs["start_time"] == dt.datetime(2015, 4, 11, 14, 23)
    assert df.attrs["subject"] == {"sex": "M", "age": 45.0, "height": 179.0,
                                   "body_mass": 67.1, "birth_date": "1987-01-13"}
    assert df.attrs["format"] == "cosmed-xlsx" and df.attrs["source"] == str(path)


def test_cortex_xml_real(real_exports):
    path = real_exports / "cortex_metasoft.xml"
    assert detect(path, "cpet") == "cortex-xml"
    df = read_cortex_xml(path)
    assert len(df) == 13  # spreadsheet rows 54..66
    assert df.time.iloc[0] == 9.0 and df.time.iloc[-1] == 70.0  # 0:00:09 .. 0:01:10
    # V'O2 in L/min in the file: 0.117052380441247 L/min -> mL/min
    assert df.vo2.iloc[0] == pytest.approx(117.052380441247)
    assert df.vco2.iloc[0] == pytest.approx(120.985138144411)
    assert df.hr.iloc[0] == 53 and df.rf.iloc[0] == pytest.approx(12.76)
    assert df.vt.iloc[0] == pytest.approx(0.513) and df.ve.iloc[0] == pytest.approx(6.54588)
    assert df.rer.iloc[0] == pytest.approx(1.03359827188768)
    assert "vo2: L/min -> mL/min (x1000)" in df.attrs["conversions"]
    assert df.attrs["start_time"] == dt.datetime(2019, 4, 19, 2, 49)
    assert df.attrs["subject"]["height"] == 178.0
    assert df.attrs["subject"]["body_mass"] == 74.8  # "74,8kg"
    assert df.attrs["subject"]["sex"] == "M"


def test_cortex_xlsx_real(real_exports):
    path = real_exports / "cortex_metasoft_step.xlsx"
    assert detect(path, "cpet") == "cortex-xlsx"
    df = read_cortex_xlsx(path)
    assert len(df) == 792  # rows 55..846
    assert df.time.iloc[0] == pytest.approx(4.8)  # "00:00:04,8"
    assert df.time.iloc[-1] == pytest.approx(29 * 60 + 16.0)  # "00:29:16,0"
    assert df.vo2.iloc[0] == pytest.approx(298.0)  # 0.298 l/min
    assert df.vo2.iloc[-1] == pytest.approx(3041.0)
    assert df.hr.iloc[0] == 73 and df.rf.iloc[0] == pytest.approx(18.5)
    assert df.ve.iloc[0] == pytest.approx(13.3) and df.rer.iloc[0] == pytest.approx(0.83)
    assert "vo2: l/min -> mL/min (x1000)" in df.attrs["conversions"]
    assert df.attrs["start_time"] is None  # the export's patient block is anonymised
    assert (np.diff(df.time) >= 0).all()


def test_vyntus_real(real_exports):
    path = real_exports / "vyntus.txt"
    assert detect(path, "cpet") == "vyntus-txt"
    df = read_vyntus_txt(path)
    assert len(df) == 7
    assert df.time.tolist() == [56.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0]  # mm:ss
    assert df.vo2.tolist()[:3] == [321.0, 971.0, 1717.0]
    assert df.hr.iloc[0] == 78 and df.rf.iloc[0] == pytest.approx(17.8)
    assert df.vt.iloc[0] == pytest.approx(1.536)  # VTex
    assert df.rer.iloc[0] == pytest.approx(0.83)
    assert df.attrs["subject"] == {"id": "BT2096"} and df.attrs["start_time"] is None


# ---------------------------------------------------------------- writers: round trip, bytes
@pytest.mark.parametrize("writer, fmt, tol", [
    (write_cosmed_xlsx, "cosmed-xlsx",
     {"time": 5e-4, "vo2": 5e-3, "vco2": 5e-3, "ve": 0.05, "rf": 0.05, "vt": 5e-4,
      "hr": 0.5, "rer": 5e-3}),
    (write_cortex_xlsx, "cortex-xlsx",
     {"time": 0.05, "vo2": 0.5, "vco2": 0.5, "ve": 0.05, "rf": 0.05, "vt": 5e-3,
      "hr": 0.5, "rer": 5e-3}),
    (write_cpet_csv, "csv",
     {"time": 5e-4, "vo2": 0.05, "vco2": 0.05, "ve": 5e-3, "rf": 0.05, "vt": 5e-4,
      "hr": 0.5, "rer": 5e-4}),
])
def test_writer_roundtrip_and_bytes(tmp_path, breaths, writer, fmt, tol):
    ext = ".csv" if fmt == "csv" else ".xlsx"
    a, b = tmp_path / f"a{ext}", tmp_path / f"b{ext}"
    kwargs = {} if fmt == "csv" else {"subject": SUBJECT}
    writer(breaths, a, start_time=START, **kwargs)
    writer(breaths, b, start_time=START, **kwargs)
    assert sha(a) == sha(b)
    assert detect(a, "cpet") == fmt
    df = read("cpet", a, fmt)
    assert len(df) == len(breaths)
    assert df.attrs["start_time"] == START
    for col, t in tol.items():
        expected, actual = breaths[col].to_numpy(), df[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=col)
        np.testing.assert_allclose(actual, expected, atol=t * 1.0001, rtol=0, err_msg=col)
    assert not list(tmp_path.glob(".*part"))  # no temporary left behind


def test_xlsx_bytes_do_not_depend_on_the_clock(tmp_path, breaths, monkeypatch):
    """xlsx embeds creation/modification times: the writer pins them."""
    a = write_cosmed_xlsx(breaths, tmp_path / "a.xlsx", start_time=START)
    import time
    import types

    import openpyxl.writer.excel as xl

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2031, 1, 1, 12, 0, 0, tzinfo=tz)

    # openpyxl stamps docProps with datetime.datetime.now(); zipfile stamps entries with
    # time.localtime(): move both clocks years ahead
    monkeypatch.setattr(xl, "datetime", types.SimpleNamespace(datetime=Later,
                                                              timezone=dt.timezone))
    monkeypatch.setattr(time, "localtime", lambda *a: time.gmtime(1924992000))
    b = write_cosmed_xlsx(breaths, tmp_path / "b.xlsx", start_time=START)
    assert sha(a) == sha(b)
    wb = openpyxl.load_workbook(a)
    assert wb.properties.modified.year == 2000


def test_cosmed_writer_layout(tmp_path, breaths):
    path = write_cosmed_xlsx(breaths, tmp_path / "c.xlsx", start_time=START, subject=SUBJECT)
    ws = openpyxl.load_workbook(path)["Daten"]
    assert [ws.cell(1, j).value for j in range(10, 18)] == [
        "t", "Af", "VT", "VE", "VO2", "VCO2", "R", "HF"]
    assert ws.cell(2, 14).value == "mL/min" and ws.cell(3, 10).value is None
    assert ws.cell(4, 10).number_format == "hh:mm:ss"
    assert ws.cell(1, 5).value == 6052024 and ws.cell(2, 5).value == dt.time(9, 30, 15)
    assert ws.cell(4 + 5, 17).value is None  # NaN HR -> empty cell
    df = read_cosmed_xlsx(path)
    assert df.attrs["subject"]["sex"] == "F" and df.attrs["subject"]["body_mass"] == 59.5


def test_generic_csv_with_column_map_and_units(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("Zeit;Sauerstoff;CO2;Puls\nmin;L/min;L/min;1/min\n"
                    "0,5;1,20;1,00;110\n1,0;1,50;1,30;\n", encoding="utf-8")
    df = read_cpet_csv(path, column_map={"time": "Zeit", "vo2": "Sauerstoff",
                                         "vco2": "CO2", "hr": "Puls"})
    assert df.time.tolist() == [30.0, 60.0]
    assert df.vo2.tolist() == [1200.0, 1500.0]
    assert np.isnan(df.hr.iloc[1])
    assert df.rer.tolist() == pytest.approx([1000 / 1200, 1300 / 1500])
    assert "rer: computed as vco2 / vo2" in df.attrs["conversions"]
    assert "vo2: L/min -> mL/min (x1000)" in df.attrs["conversions"]


def test_generic_csv_partial_column_map(tmp_path):
    """Only VO2 mapped: the time column is still found by its alias (Zeit)."""
    path = tmp_path / "lab.csv"
    path.write_text("Zeit,O2abs (mL/min)\n0,300\n2.5,320\n", encoding="utf-8")
    df = read_cpet_csv(path, column_map={"vo2": "O2abs (mL/min)"})
    assert df.time.tolist() == [0.0, 2.5] and df.vo2.tolist() == [300.0, 320.0]


# ---------------------------------------------------------------- bad input
def _csv(tmp_path, text: str, name: str = "bad.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_HEAD = "t,VO2,VCO2,HF\ns,mL/min,mL/min,bpm\n"


def test_bad_missing_column(tmp_path):
    path = _csv(tmp_path, "t,VCO2,HF\ns,mL/min,bpm\n1,300,90\n")
    # the label row is found by its time and two other breath labels; the error names vo2
    with pytest.raises(MissingColumnError, match=r"bad\.csv: required column for 'vo2'.*"
                                                 r"column_map"):
        read_cpet_csv(path)
    path = _csv(tmp_path, GOOD_HEAD + "1,300,250,90\n", "ok.csv")
    with pytest.raises(MissingColumnError, match=r"ok\.csv: column\(s\) \['Sauerstoff'\] from "
                                             r"column_map not found.*'VCO2'"):
        read_cpet_csv(path, column_map={"vo2": "Sauerstoff"})


def test_bad_time(tmp_path):
    path = _csv(tmp_path, GOOD_HEAD + "1,300,250,90\n2:xx,310,260,91\n")
    with pytest.raises(TimeFormatError, match=r"bad\.csv: line 4: column 't \(column 1\)'.*'2:xx'"):
        read_cpet_csv(path)


def test_bad_time_backwards(tmp_path):
    path = _csv(tmp_path, GOOD_HEAD + "1,300,250,90\n5,310,260,91\n4,320,270,92\n")
    with pytest.raises(TimeFormatError, match=r"bad\.csv: line 5: .*backwards"):
        read_cpet_csv(path)


def test_bad_unknown_unit(tmp_path):
    path = _csv(tmp_path, "t,VO2,VCO2\ns,gallons/min,mL/min\n1,300,250\n")
    with pytest.raises(UnitError, match=r"bad\.csv: column 'VO2 \(column 2\)': unknown unit "
                                         r"'gallons/min'"):
        read_cpet_csv(path)


def test_bad_wrong_unit(tmp_path):
    """L/min values labelled mL/min are caught by the plausibility check."""
    path = _csv(tmp_path, GOOD_HEAD + "1,0.31,0.25,90\n2,0.35,0.30,91\n")
    with pytest.raises(UnitError, match=r"bad\.csv: column 'VO2.*median vo2 is 0\.33.*mL/min"):
        read_cpet_csv(path)


def test_bad_empty(tmp_path):
    with pytest.raises(EmptyFileError, match=r"empty\.csv: file is empty"):
        read_cpet_csv(_csv(tmp_path, "", "empty.csv"))
    with pytest.raises(EmptyFileError, match=r"head\.csv: no data rows"):
        read_cpet_csv(_csv(tmp_path, GOOD_HEAD, "head.csv"))
    empty_xlsx = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(empty_xlsx)
    with pytest.raises(EmptyFileError, match="empty.xlsx"):
        read_cosmed_xlsx(empty_xlsx)


def test_bad_non_numeric(tmp_path):
    path = _csv(tmp_path, GOOD_HEAD + "1,300,250,90\n2,abc,260,91\n")
    with pytest.raises(ValueFormatError, match=r"bad\.csv: line 4: column 'VO2 \(column 2\)'"
                                               r": 'abc' is not a number"):
        read_cpet_csv(path)


def test_bad_non_numeric_xlsx_names_row_and_column(tmp_path, breaths):
    path = write_cosmed_xlsx(breaths, tmp_path / "c.xlsx", start_time=START)
    wb = openpyxl.load_workbook(path)
    wb["Daten"].cell(7, 14, "n.a.x")  # VO2 column N, row 7
    wb.save(path)
    with pytest.raises(ValueFormatError, match=r"c\.xlsx: row 7: column 'VO2 \(column N\)'"):
        read_cosmed_xlsx(path)


def test_bad_not_xlsx(tmp_path):
    path = _csv(tmp_path, "not a zip", "x.xlsx")
    with pytest.raises(ReaderError, match=r"x\.xlsx: not a readable xlsx"):
        read_cosmed_xlsx(path)


def test_bad_xml(tmp_path):
    path = _csv(tmp_path, "<Workbook><oops", "x.xml")
    with pytest.raises(ReaderError, match=r"x\.xml: not well-formed XML"):
        read_cortex_xml(path)


# ------------------------------------------- edge cases of real exports (modified in tmp_path)
def _cosmed_copy(real_exports, tmp_path, name, edit):
    """The real COSMED export with ``edit(ws)`` applied to sheet Daten, saved in tmp_path."""
    wb = openpyxl.load_workbook(real_exports / "cosmed_omnia.xlsx")
    ws = wb["Daten"]
    assert ws["N1"].value == "VO2" and ws["U1"].value == "HF"  # the cells the edits touch
    edit(ws)
    out = tmp_path / name
    wb.save(out)
    return out


def test_cosmed_renamed_vo2_column_map_rescues_it(real_exports, tmp_path):
    path = _cosmed_copy(real_exports, tmp_path, "renamed.xlsx",
                        lambda ws: ws.__setitem__("N1", "O2-Aufnahme"))
    # the layout is still recognised (time + other breath labels), detection too ...
    assert detect(path, "cpet") == "cosmed-xlsx"
    # ... and the error asks for the column map
    with pytest.raises(MissingColumnError, match=r"renamed\.xlsx: required column for 'vo2'.*"
                                                 r"give column_map=\{'vo2': \.\.\.\}"):
        read_cosmed_xlsx(path)
    df = read("cpet", path, column_map={"vo2": "O2-Aufnahme"})  # format detected
    ref = read_cosmed_xlsx(real_exports / "cosmed_omnia.xlsx")
    np.testing.assert_array_equal(df.vo2.to_numpy(), ref.vo2.to_numpy())
    np.testing.assert_array_equal(df.time.to_numpy(), ref.time.to_numpy())
    assert df.attrs["start_time"] == ref.attrs["start_time"]
    # case and spacing of the mapped label do not matter
    df2 = read_cosmed_xlsx(path, column_map={"vo2": "o2-aufnahme "})
    np.testing.assert_array_equal(df2.vo2.to_numpy(), ref.vo2.to_numpy())
    with pytest.raises(MissingColumnError, match=r"'VO2abs' \(column_map\['vo2'\]\) not found"):
        read_cosmed_xlsx(path, column_map={"vo2": "VO2abs"})


def test_cosmed_renamed_or_deleted_hr_is_reported(real_exports, tmp_path):
    renamed = _cosmed_copy(real_exports, tmp_path, "hr_renamed.xlsx",
                           lambda ws: ws.__setitem__("U1", "Herzrate"))
    df = read_cosmed_xlsx(renamed)
    assert "hr" not in df.columns
    assert df.attrs["missing"]["hr"]["n"] == 10
    assert "no column found" in df.attrs["missing"]["hr"]["reason"]
    assert any(c.startswith("hr: no column found") and "column_map={'hr'" in c
               for c in df.attrs["conversions"])
    # mapped: read, and its zeros (no strap paired) are missing with their count
    df = read_cosmed_xlsx(renamed, column_map={"hr": "Herzrate"})
    assert df.hr.isna().all()
    assert df.attrs["missing"]["hr"]["n"] == 10
    assert "zero values (rows 4, 5, 6" in df.attrs["missing"]["hr"]["reason"]

    deleted = _cosmed_copy(real_exports, tmp_path, "hr_deleted.xlsx",
                           lambda ws: ws.delete_cols(21))  # column U, HF
    df = read("cpet", deleted)
    assert "hr" not in df.columns and df.attrs["missing"]["hr"]["n"] == 10
    assert len(df) == 10 and df.vo2.iloc[0] == pytest.approx(506.1618208)


def test_manifest_column_map_reaches_the_reader(real_exports, tmp_path):
    from irtrepro.manifest import load_manifest
    from irtrepro.sync import assemble_session, study_grid

    _cosmed_copy(real_exports, tmp_path, "renamed.xlsx",
                 lambda ws: ws.__setitem__("N1", "O2-Aufnahme"))
    (tmp_path / "m.yaml").write_text(
        "study: {name: t}\n"
        "subjects:\n"
        "  - id: S01\n"
        "    viat: 15.0\n"
        "    sessions:\n"
        "      - id: CON\n"
        "        protocol: CON\n"
        "        start_time: \"2015-04-11T14:23:00\"\n"
        "        files:\n"
        "          cpet: {path: renamed.xlsx, column_map: {vo2: O2-Aufnahme}}\n")
    m = load_manifest(tmp_path / "m.yaml")
    assert m.sessions[0].files["cpet"].options == {"column_map": {"vo2": "O2-Aufnahme"}}
    grid = study_grid(m)
    out, missing = assemble_session(m, m.sessions[0], grid)
    assert [x["kind"] for x in missing] == ["hr", "core"]  # no cpet problem
    vo2 = out["vo2"]
    assert np.isfinite(vo2).sum() > 60  # breaths 30..120 s on the 1 s grid
    assert np.nanmax(vo2) == pytest.approx(2707.7314704, rel=0.2)


def test_cortex_zero_breaths_are_missing_not_zero(real_exports):
    """Two breaths of the CORTEX step export (rows 96, 287) hold V'O2 = V'CO2 = R = 0."""
    from irtrepro.io._tabular import ZERO_IS_MISSING

    df = read_cortex_xlsx(real_exports / "cortex_metasoft_step.xlsx")
    assert len(df) == 792
    for name in ZERO_IS_MISSING:
        assert not (df[name] == 0).any(), name
    for name in ("vo2", "vco2", "rer"):
        assert df.attrs["missing"][name]["n"] == 2
        assert "rows 96, 287" in df.attrs["missing"][name]["reason"]
        assert f"{name}: 2 zero values read as missing (rows 96, 287)" in df.attrs["conversions"]
    assert sum(v["n"] for v in df.attrs["missing"].values()) == 6
    zero_rows = [96 - 55, 287 - 55]  # data start at spreadsheet row 55
    assert df.loc[zero_rows, ["vo2", "vco2", "rer"]].isna().all().all()
    # the rest of those breaths is kept as read
    assert df.loc[zero_rows, "vt"].tolist() == [0.17, 0.17]
    assert df.loc[zero_rows, "hr"].tolist() == [93.0, 112.0]
    assert int(df.vo2.isna().sum()) == 2


def test_zero_values_in_generic_csv(tmp_path):
    p = tmp_path / "z.csv"
    p.write_text("Time (s),VO2 (mL/min),VE (L/min),RER,HR (bpm)\n"
                 "1,500,20,0.8,0\n2,0,0,0,120\n3,600,22,0.9,121\n")
    df = read_cpet_csv(p)
    assert df.vo2.isna().tolist() == [False, True, False]
    assert df.hr.isna().tolist() == [True, False, False]
    assert {k: v["n"] for k, v in df.attrs["missing"].items()} == {
        "vo2": 1, "ve": 1, "rer": 1, "hr": 1, "vco2": 3, "rf": 3, "vt": 3}
    assert "line 3" in df.attrs["missing"]["vo2"]["reason"]
