"""Core temperature as an e-Celsius-style CSV, as the generator writes it.

Read back by :func:`irtrepro.io.core.read_core_csv`; FIT files by
:func:`irtrepro.synth.exports.fit.write_fit`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro.errors import OptionError
from irtrepro.io._tabular import fmt_num

__all__ = ["write_core_csv"]


def write_core_csv(df: pd.DataFrame, path: str | os.PathLike, *, start_time: dt.datetime
                   ) -> Path:
    """Write core temperature as an e-Celsius-style CSV (``;``, decimal comma, clock times).

    Parameters
    ----------
    df : pandas.DataFrame
        ``time`` (s since ``start_time``; whole seconds) and ``tcore`` (degC; NaN -> empty).
    path : path-like
        Target; atomic, byte-identical for the same input.
    start_time : datetime
        Wall clock of ``time == 0``.

    Returns
    -------
    Path

    Notes
    -----
    Columns ``Date;Time;Temperature (°C)``, dates ``dd/mm/yyyy``, times ``hh:mm:ss``,
    temperatures to 0.01 degC (the capsule's resolution).
    """
    for c in ("time", "tcore"):
        if c not in df.columns:
            raise OptionError(f"write_core_csv: df lacks column {c!r}; has {list(df.columns)}")
    t = df["time"].to_numpy(float)
    if len(t) and (np.diff(t) <= 0).any():
        raise OptionError("write_core_csv: df['time'] must be strictly increasing")
    tc = df["tcore"].to_numpy(float)
    out = ["Date;Time;Temperature (°C)"]
    for ti, v in zip(t, tc, strict=True):
        stamp = start_time + dt.timedelta(seconds=round(float(ti)))
        out.append(f"{stamp:%d/%m/%Y};{stamp:%H:%M:%S};{fmt_num(v, 2, ',')}")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\r\n".join(out) + "\r\n").encode("utf-8"))
    return path
