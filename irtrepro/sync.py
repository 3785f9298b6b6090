"""Put every stream on one session clock and assemble the Study.

Session clock: seconds since exercise start (the manifest's session ``start_time``). A file's
own clock is shifted by ``file start_time - session start_time`` (plus the manifest option
``offset_s``, for files whose clock is off or that carry no start time).

Resampling to the study grid (default 1 s):

- **breath-by-breath** cart data: a centred rolling mean over ``breath_window`` breaths
  (default 5; breath noise falls by about sqrt(5)), then linear interpolation at the grid times.
  Grid points farther than ``max_gap_s`` (default 15 s) from a breath on either side are NaN:
  dropped breaths are not invented.
- **regular samples** (HR at 1 Hz, core temperature every 30 s): linear interpolation, NaN across
  gaps longer than ``max_gap_s`` (HR 5 s, core 90 s).

Nothing is extrapolated before the first or after the last sample.
"""

from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro._logging import logger, progress_bar
from irtrepro.errors import IrtreproError, SyncError
from irtrepro.manifest import SYNC_OPTIONS, FileEntry, Manifest, SessionEntry

#: Resampling settings per kind: (method, max_gap_s).
RESAMPLE = {"cpet": ("breaths", 15.0), "hr": ("linear", 5.0), "core": ("linear", 90.0)}
CPET_VARS = ("vo2", "vco2", "ve", "rf", "vt", "rer")

_ATTRS = {
    "speed": ("km h-1", "treadmill speed (protocol)"),
    "phase": ("1", "protocol phase"),
    "hr": ("min-1", "heart rate"),
    "vo2": ("mL min-1", "oxygen uptake"),
    "vco2": ("mL min-1", "carbon dioxide output"),
    "ve": ("L min-1", "minute ventilation"),
    "rf": ("min-1", "breathing frequency (cart)"),
    "vt": ("L", "tidal volume"),
    "rer": ("1", "respiratory exchange ratio"),
    "tcore": ("degC", "core body temperature"),
    "viat": ("km h-1", "speed at the individual anaerobic threshold"),
    "age": ("year", "age"),
    "sex": ("1", "sex"),
    "body_mass": ("kg", "body mass"),
    "protocol": ("1", "running protocol"),
    "day": ("1", "test day"),
    "start_time": ("1", "exercise start (local wall clock, ISO 8601)"),
}


def study_grid(manifest: Manifest) -> np.ndarray:
    """Study time grid (s): 0 to the longest protocol used, step ``manifest.grid_step``."""
    used = {s.protocol for s in manifest.sessions}
    dur = max(manifest.protocols[p].duration_s for p in used)
    return np.arange(0.0, dur, manifest.grid_step)


def stream_clock(df: pd.DataFrame, entry: FileEntry, session: SessionEntry) -> dict:
    """Where a tabular stream's time origin comes from, and the shift onto the session clock.

    Returns
    -------
    dict
        ``origin`` (``"file start time"``: the file's own start time against the session's,
        plus ``offset_s`` if given; ``"offset_s"``: the manifest's offset alone), ``offset_s``
        (s, 0 when not given), ``drift_ppm`` (always 0: tabular streams are only shifted),
        ``file_start`` (ISO 8601 or None) and ``shift_s`` (s added to the file's ``time``).

    Raises
    ------
    SyncError
        ``drift_ppm`` given (thermal recordings only), or no start time and no ``offset_s``.
    """
    if "drift_ppm" in entry.options:
        # a shift cannot undo a rate error; only thermal frames are re-timed (irtrepro.clock)
        raise SyncError(f"{entry.path}: 'drift_ppm' in {entry.where} is applied to thermal "
                        "recordings only (irtrepro.clock.camera_times); remove it here")
    offset = float(entry.options.get("offset_s", 0.0))
    start = df.attrs.get("start_time")
    if start is not None and session.start_time is not None:
        if isinstance(start, str):
            start = _dt.datetime.fromisoformat(start)
        a, b = start, session.start_time
        if (a.tzinfo is None) != (b.tzinfo is None):  # compare wall clocks
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        return {"origin": "file start time", "offset_s": offset, "drift_ppm": 0.0,
                "file_start": start.isoformat(), "shift_s": (a - b).total_seconds() + offset}
    if "offset_s" not in entry.options:
        raise SyncError(f"{entry.path}: the file has no start time of its own; give "
                        f"'offset_s' (file start minus exercise start, s) in {entry.where}")
    return {"origin": "offset_s", "offset_s": offset, "drift_ppm": 0.0, "file_start": None,
            "shift_s": offset}


def clock_offset(df: pd.DataFrame, entry: FileEntry, session: SessionEntry) -> float:
    """Seconds to add to a file's ``time`` to put it on the session clock."""
    return stream_clock(df, entry, session)["shift_s"]


def _gap_mask(t_samples: np.ndarray, grid: np.ndarray, max_gap_s: float) -> np.ndarray:
    """True where a grid time has a sample within the allowed gap on both sides."""
    idx = np.searchsorted(t_samples, grid, side="right")
    left = np.where(idx > 0, t_samples[np.maximum(idx - 1, 0)], -np.inf)
    right = np.where(idx < len(t_samples), t_samples[np.minimum(idx, len(t_samples) - 1)],
                     np.inf)
    exact = np.isclose(left, grid)
    return exact | ((right - left) <= max_gap_s)


def resample_linear(t: np.ndarray, y: np.ndarray, grid: np.ndarray,
                    max_gap_s: float) -> np.ndarray:
    """Linear interpolation of samples ``(t, y)`` at ``grid``; NaN across gaps > ``max_gap_s``.

    NaN samples count as gaps. Nothing is extrapolated.
    """
    t = np.asarray(t, float)
    y = np.asarray(y, float)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    out = np.full(grid.shape, np.nan)
    if t.size < 2:
        return out
    inside = (grid >= t[0]) & (grid <= t[-1]) & _gap_mask(t, grid, max_gap_s)
    out[inside] = np.interp(grid[inside], t, y)
    return out


def resample_breaths(df: pd.DataFrame, grid: np.ndarray, columns=CPET_VARS, *,
                     breath_window: int = 5, max_gap_s: float = 15.0) -> dict[str, np.ndarray]:
    """Breath-by-breath columns on the grid: rolling mean over breaths, then interpolation."""
    out = {}
    t = df["time"].to_numpy(float)
    for c in columns:
        if c not in df:
            continue
        sm = df[c].rolling(breath_window, center=True, min_periods=1).mean().to_numpy(float)
        out[c] = resample_linear(t, sm, grid, max_gap_s)
    return out


def _read(entry: FileEntry):
    from irtrepro.io import read

    opts = {k: v for k, v in entry.options.items() if k not in SYNC_OPTIONS}
    return read(entry.kind, entry.path, entry.format, **opts)


def assemble_session(manifest: Manifest, session: SessionEntry, grid: np.ndarray, *,
                     clocks: list[dict] | None = None
                     ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Signals of one session on the grid, and the list of what was missing and why.

    ``clocks``, when given, receives one row per stream read: subject, session, stream and
    its clock (:func:`stream_clock`).
    """
    sub = next(s for s in manifest.subjects if s.id == session.subject)
    proto = manifest.protocols[session.protocol]
    out: dict[str, np.ndarray] = {
        "speed": np.where(grid < proto.duration_s, proto.speed(grid, sub.viat), np.nan),
        "phase": proto.phase(grid).astype(object),
    }
    missing: list[dict] = []
    for kind, (method, gap) in RESAMPLE.items():
        entry = session.files.get(kind)
        if entry is None:
            missing.append({"subject": session.subject, "session": session.session,
                            "kind": kind, "reason": "no file listed in the manifest"})
            continue
        try:
            df = _read(entry)
            clock = stream_clock(df, entry, session)
            shift = clock["shift_s"]
        except IrtreproError as exc:
            missing.append({"subject": session.subject, "session": session.session,
                            "kind": kind, "reason": str(exc), "failed": True})
            logger.warning("%s/%s: %s left out: %s", session.subject, session.session, kind, exc)
            continue
        if clocks is not None:
            clocks.append({"subject": session.subject, "session": session.session,
                           "stream": kind, "file": str(entry.path), **clock})
        df = df.assign(time=df["time"].to_numpy(float) + shift)
        if method == "breaths":
            if "rer" not in df and {"vo2", "vco2"} <= set(df):
                df = df.assign(rer=df["vco2"] / df["vo2"])
            out.update(resample_breaths(df, grid, max_gap_s=gap))
        else:
            col = {"hr": "hr", "core": "tcore"}[kind]
            if col not in df:
                raise SyncError(f"{entry.path}: reader returned no {col!r} column")
            out[col] = resample_linear(df["time"].to_numpy(), df[col].to_numpy(), grid, gap)
    return out, missing


def build_study(manifest: Manifest, *, progress: bool | None = None,
                strict: bool = False) -> xr.Dataset:
    """Read every session's files, put them on the study grid and return the Study.

    Parameters
    ----------
    manifest : Manifest
        Loaded with :func:`irtrepro.manifest.load_manifest` (verify files first).
    progress : bool or None
        Progress bar (``None``: when the ``irtrepro`` logger is at INFO).
    strict : bool
        Raise on the first unreadable file instead of recording it as missing.

    Returns
    -------
    xarray.Dataset
        dims subject, session, time; ``attrs["missing"]`` is a JSON list of every
        (subject, session, kind) left out and why; ``attrs["clock"]`` a JSON list of where
        each stream's time origin came from (:func:`stream_clock`: subject, session, stream,
        file, origin, offset_s, drift_ppm, file_start, shift_s). Missing values are NaN.
    """
    from irtrepro.study import provenance, validate_study

    grid = study_grid(manifest)
    subjects = [s.id for s in manifest.subjects]
    sessions = list(dict.fromkeys(s.session for s in manifest.sessions))
    ns, nj, nt = len(subjects), len(sessions), len(grid)
    names = ["speed", "hr", *CPET_VARS, "tcore"]
    data = {k: np.full((ns, nj, nt), np.nan) for k in names}
    phase = np.full((ns, nj, nt), "", dtype=object)
    protocol = np.full((ns, nj), "", dtype=object)
    day = np.full((ns, nj), np.nan)
    start = np.full((ns, nj), "", dtype=object)
    missing: list[dict] = []
    clocks: list[dict] = []
    for ses in progress_bar(manifest.sessions, progress, desc="build study"):
        i, j = subjects.index(ses.subject), sessions.index(ses.session)
        sig, miss = assemble_session(manifest, ses, grid, clocks=clocks)
        if strict and miss:
            raise SyncError("; ".join(f"{m['subject']}/{m['session']} {m['kind']}: "
                                      f"{m['reason']}" for m in miss))
        missing.extend(miss)
        for k, v in sig.items():
            if k == "phase":
                phase[i, j] = v
            else:
                data[k][i, j] = v
        protocol[i, j] = ses.protocol
        day[i, j] = ses.day if ses.day is not None else np.nan
        start[i, j] = ses.start_time.isoformat() if ses.start_time else ""
    listed = {(s.subject, s.session) for s in manifest.sessions}
    for s in subjects:
        for j in sessions:
            if (s, j) not in listed:
                missing.append({"subject": s, "session": j, "kind": "session",
                                "reason": "session not in the manifest"})
    ds = xr.Dataset(coords={"subject": np.array(subjects), "session": np.array(sessions),
                            "time": grid})
    ds["time"].attrs = {"units": "s", "long_name": "time since exercise start"}
    for k in names:
        ds[k] = (("subject", "session", "time"), data[k])
    ds["phase"] = (("subject", "session", "time"), phase.astype(str))
    ds["protocol"] = (("subject", "session"), protocol.astype(str))
    ds["day"] = (("subject", "session"), day)
    ds["start_time"] = (("subject", "session"), start.astype(str))
    ds["viat"] = ("subject", np.array([s.viat for s in manifest.subjects]))
    for key in ("age", "sex", "body_mass"):
        vals = [s.attrs.get(key) for s in manifest.subjects]
        if any(v is not None for v in vals):
            if key == "sex":
                ds[key] = ("subject", np.array([str(v) if v is not None else "" for v in vals]))
            else:
                ds[key] = ("subject", np.array([np.nan if v is None else float(v)
                                                for v in vals]))
    for k, (units, long_name) in _ATTRS.items():
        if k in ds:
            ds[k].attrs = {"units": units, "long_name": long_name}
    seeds = {"generator": (manifest.generator or {}).get("seed")} if manifest.generator else {}
    ds.attrs.update(provenance(manifest.sha256, seeds, study=manifest.name,
                               manifest=str(manifest.path)))
    ds.attrs["missing"] = json.dumps(missing)
    ds.attrs["clock"] = json.dumps(clocks)
    ds.attrs["resampling"] = json.dumps({k: {"method": m, "max_gap_s": g}
                                         for k, (m, g) in RESAMPLE.items()} |
                                        {"breath_window": 5, "grid_step_s": manifest.grid_step})
    return validate_study(ds)
