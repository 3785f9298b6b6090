"""FIT (Flexible and Interoperable Data Transfer) activity files, decoded with fitdecode.

Watches, chest-strap apps and the CORE sensor record heart rate and core temperature as FIT
``record`` messages; :func:`read_fit_records` decodes them (CRCs checked) and
:func:`records_to_frame` turns them into the reader contract's frame. The kind-specific readers
are :func:`irtrepro.io.hr.read_hr_fit` and :func:`irtrepro.io.core.read_core_fit`. Timestamps
count seconds from :data:`FIT_EPOCH` (UTC); the ``activity`` message's ``local_timestamp`` gives
the local wall clock. See the FIT protocol description (Garmin FIT SDK, "Flexible &
Interoperable Data Transfer (FIT) Protocol").
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro.errors import FormatError
from irtrepro.io._tabular import ZERO_IS_MISSING, EmptyFileError, TimeFormatError, _rows_text

__all__ = ["FIT_EPOCH", "fit_seconds", "read_fit_records", "records_to_frame"]

#: FIT timestamps count seconds from this instant (UTC).
FIT_EPOCH = dt.datetime(1989, 12, 31, tzinfo=dt.UTC)


def fit_seconds(t: dt.datetime) -> int:
    """Whole seconds of the aware datetime ``t`` since :data:`FIT_EPOCH`."""
    return int(round((t - FIT_EPOCH).total_seconds()))


def read_fit_records(path: str | os.PathLike) -> tuple[list[dict], dt.timedelta | None]:
    """Decode the ``record`` messages of a FIT file with fitdecode, CRCs checked.

    Returns
    -------
    records : list of dict
        One dict per record message: field name -> value (``None`` for invalid), developer
        fields under their declared names, ``timestamp`` as an aware UTC datetime.
    utc_offset : timedelta or None
        Local time minus UTC from the ``activity`` message, if the file has one.
    """
    import fitdecode

    path = Path(path)
    if path.stat().st_size == 0:
        raise EmptyFileError(f"{path}: file is empty")
    records, offset = [], None
    try:
        with fitdecode.FitReader(str(path), check_crc=fitdecode.CrcCheck.RAISE,
                                 error_handling=fitdecode.ErrorHandling.RAISE) as fr:
            for frame in fr:
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                if frame.name == "record":
                    records.append({f.name: f.value for f in frame.fields})
                elif frame.name == "activity":
                    ts, lts = _get(frame, "timestamp"), _get(frame, "local_timestamp")
                    if isinstance(ts, dt.datetime) and lts is not None:
                        lts_s = (lts if isinstance(lts, (int, float))
                                 else fit_seconds(lts if lts.tzinfo else
                                                   lts.replace(tzinfo=dt.UTC)))
                        offset = dt.timedelta(seconds=int(lts_s) - fit_seconds(ts))
    except fitdecode.FitError as exc:
        raise FormatError(f"{path}: not a valid FIT file ({exc})") from exc
    return records, offset


def _get(frame, name: str):
    try:
        return frame.get_value(name)
    except KeyError:
        return None


def records_to_frame(records: list[dict], value_of: dict[str, Callable[[dict], float]], *, path: Path,
                     fmt: str, offset: dt.timedelta | None) -> pd.DataFrame:
    """Turn decoded records into the reader contract's frame.

    ``value_of`` maps a Study column to a function record -> float (NaN when absent or
    invalid). ``time`` counts seconds from the first record; ``start_time`` is that record's
    local time (UTC shifted by the activity's offset; UTC when the file has none). Zeros of
    the :data:`~irtrepro.io._tabular.ZERO_IS_MISSING` variables (a heart rate of 0: no strap
    signal) are read as NaN; they and the invalid values are counted, with the record
    numbers (1-based), in ``attrs['missing']`` (zeros also in ``attrs['conversions']``).
    """
    recs = [r for r in records if isinstance(r.get("timestamp"), dt.datetime)]
    if not recs:
        raise EmptyFileError(f"{path}: no record messages with a timestamp")
    ts = np.array([fit_seconds(r["timestamp"]) for r in recs], dtype=float)
    back = np.flatnonzero(np.diff(ts) < 0)
    if back.size:
        raise TimeFormatError(f"{path}: record {int(back[0]) + 2}: timestamp goes backwards")
    out = {"time": ts - ts[0]}
    conversions: list[str] = []
    missing: dict[str, dict] = {}
    for col, fn in value_of.items():
        v = np.array([fn(r) for r in recs], dtype=float)
        zero = v == 0 if col in ZERO_IS_MISSING else np.zeros(v.shape, bool)
        parts = []
        if zero.any():
            where = _rows_text((np.flatnonzero(zero) + 1).tolist(), "record")
            conversions.append(f"{col}: {int(zero.sum())} zero values read as missing ({where})")
            parts.append(f"zero values ({where}) read as missing: not a physiological value")
        if np.isnan(v).any():
            where = _rows_text((np.flatnonzero(np.isnan(v)) + 1).tolist(), "record")
            parts.append(f"no valid value ({where}): field absent or FIT invalid marker")
        if parts:
            missing[col] = {"n": int((zero | np.isnan(v)).sum()), "reason": "; ".join(parts)}
        out[col] = np.where(zero, np.nan, v)
    df = pd.DataFrame(out)
    start = recs[0]["timestamp"] + (offset or dt.timedelta(0))
    df.attrs.update({"start_time": start.replace(tzinfo=None), "source": str(path),
                     "format": fmt, "conversions": conversions, "missing": missing,
                     "utc_offset": None if offset is None else offset.total_seconds()})
    return df

