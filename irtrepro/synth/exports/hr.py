"""Heart rate as a Polar Flow session CSV (1 s samples), as the generator writes it.

Read back by :func:`irtrepro.io.hr.read_polar_csv`; FIT files by
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
from irtrepro.io._tabular import hms

__all__ = ["write_polar_csv"]

_POLAR_SUMMARY = ("Name", "Sport", "Date", "Start time", "Duration", "Total distance (km)",
                  "Average heart rate (bpm)", "Average speed (km/h)", "Max speed (km/h)",
                  "Average pace (min/km)", "Max pace (min/km)", "Calories",
                  "Fat percentage of calories(%)", "Average cadence (rpm)",
                  "Average stride length (cm)", "Running index", "Training load",
                  "Ascent (m)", "Descent (m)", "Average power (W)", "Max power (W)", "Notes",
                  "Height (cm)", "Weight (kg)", "HR max", "HR sit", "VO2max")
_POLAR_SAMPLES = ("Sample rate", "Time", "HR (bpm)", "Speed (km/h)", "Pace (min/km)",
                  "Cadence", "Altitude (m)", "Stride length (m)", "Distances (m)",
                  "Temperatures (C)", "Power (W)")


def write_polar_csv(df: pd.DataFrame, path: str | os.PathLike, *, start_time: dt.datetime,
                    sport: str = "RUNNING", name: str = "irtrepro synthetic",
                    subject: dict | None = None) -> Path:
    """Write heart rate as a Polar Flow session CSV (1 s samples).

    Parameters
    ----------
    df : pandas.DataFrame
        ``time`` (s since ``start_time``; whole seconds, strictly increasing) and ``hr``
        (min-1, NaN for strap dropouts -> empty cell). Gaps in time are filled with empty
        samples so that every second has a line, as in real exports.
    path : path-like
        Target; written atomically, byte-identical for the same input.
    start_time : datetime
        Session start (``Date`` ``dd-mm-yyyy``, ``Start time`` ``hh:mm:ss``).
    sport, name : str
        Summary fields.
    subject : dict, optional
        ``height`` (cm), ``body_mass`` (kg), ``hr_max``, ``hr_rest``, ``vo2max``.

    Returns
    -------
    Path
    """
    for c in ("time", "hr"):
        if c not in df.columns:
            raise OptionError(f"write_polar_csv: df lacks column {c!r}; has {list(df.columns)}")
    t = df["time"].to_numpy(float)
    secs = np.round(t).astype(np.int64)
    if len(secs) == 0 or secs[0] < 0 or (np.diff(secs) <= 0).any() or np.abs(t - secs).max() > 1e-6:
        raise OptionError("write_polar_csv: df['time'] must be whole seconds >= 0, strictly "
                          "increasing (Polar Flow samples at 1 s)")
    n = int(secs[-1]) + 1
    hr = np.full(n, np.nan)
    hr[secs] = df["hr"].to_numpy(float)
    subject = dict(subject or {})
    dur = hms(float(secs[-1]))
    mean_hr = np.nanmean(hr) if np.isfinite(hr).any() else np.nan
    summary = {"Name": name, "Sport": sport, "Date": start_time.strftime("%d-%m-%Y"),
               "Start time": start_time.strftime("%H:%M:%S"), "Duration": dur,
               "Average heart rate (bpm)": "" if np.isnan(mean_hr) else f"{mean_hr:.0f}",
               "Height (cm)": _num(subject.get("height")),
               "Weight (kg)": _num(subject.get("body_mass")),
               "HR max": _num(subject.get("hr_max")), "HR sit": _num(subject.get("hr_rest")),
               "VO2max": _num(subject.get("vo2max"))}
    out = [",".join(_POLAR_SUMMARY) + ",",
           ",".join(str(summary.get(k, "")) for k in _POLAR_SUMMARY) + ",",
           ",".join(_POLAR_SAMPLES) + ","]
    blanks = "," * (len(_POLAR_SAMPLES) - 3)
    for i in range(n):
        v = hr[i]
        out.append(f"{'1' if i == 0 else ''},{hms(i)},"
                   f"{'' if not np.isfinite(v) else int(round(v))},{blanks}")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\r\n".join(out) + "\r\n").encode("utf-8"))
    return path


def _num(v) -> str:
    return "" if v is None else f"{float(v):g}"
