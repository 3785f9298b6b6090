"""Face label files through the reader registry (irtrepro.io.face)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irtrepro.errors import ReaderError
from irtrepro.io import detect, get_reader, read
from irtrepro.io.face import read_face_labels, write_face_labels


def _labelled(n=5):
    return xr.Dataset({"label": ("frame", np.array(["INH", "INH", "EXH", "", "EXH"][:n]))},
                      coords={"time": ("frame", np.arange(n) / 8.0)})


def test_face_labels_through_the_registry(tmp_path):
    p = write_face_labels(tmp_path / "labels.csv", _labelled())
    assert p.read_text().splitlines()[:2] == ["frame,time,label", "0,0.0,INH"]
    assert get_reader("face_labels", "csv").func is read_face_labels
    assert detect(p, "face_labels") == "csv"
    df = read("face_labels", p)
    assert list(df.columns) == ["frame", "time", "label"]
    assert df["label"].tolist() == ["INH", "INH", "EXH", "", "EXH"]
    np.testing.assert_allclose(df["time"], np.arange(5) / 8.0)


def test_face_labels_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("frame,time,label\n0,0.0,INH\n1,0.125,HOLD\n")
    with pytest.raises(ReaderError, match=r"bad.csv:3: label 'HOLD'"):
        read("face_labels", p, "csv")
    p.write_text("frame,label\n0,INH\n")
    with pytest.raises(ReaderError, match=r"bad.csv: missing columns \['time'\]"):
        read_face_labels(p)
    with pytest.raises(ReaderError, match="not found"):
        read_face_labels(tmp_path / "none.csv")
