"""Frame labels of face recordings (breathing phase): CSV ``frame,time,label``.

One row per frame of the face recording it labels, in frame order: ``frame`` (int, 0-based),
``time`` (s, on the recording's clock) and ``label`` (``INH``, ``EXH`` or empty for an
unlabelled frame). The face frames themselves are thermal recordings, read by the thermal
readers (kind ``face``).

Reader registered here: kind ``face_labels`` format ``csv`` (:func:`read_face_labels`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro.errors import ReaderError
from irtrepro.io.registry import register

__all__ = ["LABELS", "read_face_labels", "write_face_labels"]

#: Breathing phase labels, in class order (0 = inhalation, 1 = exhalation).
LABELS = ("INH", "EXH")


def write_face_labels(path: str | os.PathLike, ds) -> Path:
    """Write the frame labels of a face session as CSV ``frame,time,label`` (atomically).

    Parameters
    ----------
    path : path-like
        Target CSV file.
    ds : xarray.Dataset
        ``label`` (str) and ``time`` (s) on ``frame``, e.g. a rendered synthetic face
        session. Times are written to 1e-6 s.
    """
    path = Path(path)
    df = pd.DataFrame({"frame": np.arange(ds.sizes["frame"]),
                       "time": np.round(ds["time"].values.astype(float), 6),
                       "label": ds["label"].values.astype(str)})
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def _sniff_face_labels(head: bytes, path: Path) -> bool:
    return head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip().lower() == b"frame,time,label"


@register("face_labels", "csv", extensions=(".csv",), sniff=_sniff_face_labels)
def read_face_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``frame,time,label`` CSV (labels INH/EXH, empty for unlabelled frames).

    Returns
    -------
    pandas.DataFrame
        Columns ``frame`` (int), ``time`` (float, s) and ``label`` (upper-case str).

    Raises
    ------
    ReaderError
        Missing file or columns, or a label other than INH/EXH/empty (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: face label file not found")
    try:
        df = pd.read_csv(path, keep_default_na=False, dtype={"label": str})
    except Exception as exc:  # pandas raises several types on malformed CSV
        raise ReaderError(f"{path}: not a readable CSV ({exc})") from exc
    missing = {"frame", "time", "label"} - set(df.columns)
    if missing:
        raise ReaderError(f"{path}: missing columns {sorted(missing)}; expected frame,time,label")
    df["label"] = df["label"].str.strip().str.upper()
    bad = ~df["label"].isin(["INH", "EXH", ""])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ReaderError(f"{path}:{i + 2}: label {df['label'].iloc[i]!r}; expected INH or EXH")
    df["frame"] = df["frame"].astype(int)
    df["time"] = df["time"].astype(float)
    return df[["frame", "time", "label"]]
