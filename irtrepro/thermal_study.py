"""Thermal metrics into the Study, on the session clock, with their provenance.

Two roads end here, through the same functions:

- the report's vision part segments every session's frame store and places the per-frame
  metrics on the session clock (:func:`irtrepro.features.extract.place_on_clock`, frame
  times from :func:`irtrepro.clock.camera_times`);
- ``irtrepro build --metrics FILE...`` reads the files ``irtrepro extract`` wrote (per-second
  metrics on the recording's own clock, with its start time in the attributes) and places
  them the same way (:func:`metrics_session`).

Both give :class:`ThermalSession` objects; :func:`thermal_study_vars` turns them into Study
variables on (subject, session, time[, side]) plus per-session provenance variables
(``thermal_source``, ``thermal_sha256``, ``thermal_model``, ``thermal_model_sha256``,
``thermal_frames_*``, ``thermal_clock_*``) and clock rows for ``attrs["clock"]``;
:func:`merge_thermal` adds them to a Study. :func:`check_clocks` runs the clock cross-check
(:func:`irtrepro.clock.check_clock`) of every session against its heart rate.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.errors import IrtreproError, SyncError
from irtrepro.manifest import Manifest, SessionEntry

__all__ = ["ThermalSession", "check_clocks", "merge_thermal", "metrics_session",
           "thermal_session", "thermal_study_vars"]

#: per-session provenance variables: name -> (key in ThermalSession.provenance/clock, units,
#: long_name, kind)
PROVENANCE_VARS = {
    "thermal_source": ("source", "1", "thermal recording (manifest file)", "str"),
    "thermal_sha256": ("sha256", "1", "sha256 of the thermal recording", "str"),
    "thermal_model": ("model", "1", "segmentation model file ('' when none)", "str"),
    "thermal_model_sha256": ("model_sha256", "1", "sha256 of the segmentation model file",
                             "str"),
    "thermal_frames_read": ("frames_read", "1", "thermal frames read", "num"),
    "thermal_frames_placed": ("frames_placed", "1",
                              "thermal frames placed on the Study grid", "num"),
    "thermal_frames_outside_grid": ("frames_outside_grid", "1",
                                    "thermal frames before exercise start or after the grid",
                                    "num"),
    "thermal_frames_invalid": ("frames_invalid", "1",
                               "thermal frames that failed the quality checks", "num"),
    "thermal_frames_damaged": ("frames_damaged", "1",
                               "thermal frames the reader found damaged", "num"),
    "thermal_damaged_reasons": ("damaged_reasons", "1",
                                "damaged thermal frames and why (JSON)", "str"),
    "thermal_clock_origin": ("origin", "1", "where the thermal time origin came from", "str"),
    "thermal_clock_offset_s": ("offset_s", "s", "thermal clock offset added (manifest)", "num"),
    "thermal_clock_drift_ppm": ("drift_ppm", "1e-6",
                                "thermal clock rate correction (manifest)", "num"),
    "thermal_file_start": ("file_start", "1", "first frame's time stamp in the file", "str"),
}


@dataclass(frozen=True)
class ThermalSession:
    """One session's thermal metrics on the Study grid, and where they came from.

    Attributes
    ----------
    subject, session : str
    variables : xarray.Dataset
        Study variables (:data:`irtrepro.features.extract.STUDY_VARS`) on (time[, side]).
    clock : dict
        :meth:`irtrepro.clock.CameraClock.to_dict` (origin, offset_s, drift_ppm, file_start).
    provenance : dict
        source, sha256, model, model_sha256, frames_read / placed / outside_grid / invalid /
        damaged, damaged_reasons.
    """

    subject: str
    session: str
    variables: xr.Dataset
    clock: dict
    provenance: dict = field(default_factory=dict)


def thermal_session(subject: str, session: str, metrics: xr.Dataset, times: np.ndarray,
                    grid: np.ndarray, clock: dict, provenance: dict) -> ThermalSession:
    """Place one recording's metrics on the Study grid and keep its provenance.

    Parameters
    ----------
    metrics : Dataset
        Per-frame features or per-second medians on the recording's clock (see
        :func:`irtrepro.features.extract.place_on_clock`).
    times : ndarray
        Session-clock time (s since exercise start) of each row of ``metrics``.
    grid : ndarray
        The Study's time grid (s).
    clock, provenance : dict
        As in :class:`ThermalSession`; the frame counts of the placement are added.
    """
    from irtrepro.features.extract import place_on_clock, to_study_vars

    placed = place_on_clock(metrics, times, grid)
    prov = dict(provenance)
    for k, v in placed.attrs.items():  # what the recording's own file says comes first
        prov.setdefault(k, v)
    return ThermalSession(subject, session, to_study_vars(placed), dict(clock), prov)


def _provenance_value(ts: ThermalSession, key: str):
    if key in ts.clock:
        return ts.clock[key]
    return ts.provenance.get(key)


def thermal_study_vars(sessions: Sequence[ThermalSession], subjects: Sequence[str],
                       session_order: Sequence[str]) -> xr.Dataset:
    """Study variables of many sessions on (subject, session, time[, side]).

    Parameters
    ----------
    sessions : sequence of ThermalSession
        All on the same grid.
    subjects, session_order : sequence of str
        The Study's subject and session ids (sessions absent here are NaN / ``""``).

    Returns
    -------
    xarray.Dataset
        The metrics, the per-session provenance variables (:data:`PROVENANCE_VARS`) and
        ``attrs["clock"]``: one JSON row per session with stream ``"thermal"``.
    """
    subjects, order = [str(s) for s in subjects], [str(s) for s in session_order]
    if not sessions:
        return xr.Dataset(coords={"subject": subjects, "session": order})
    first = sessions[0].variables
    grid = first["time"].values
    shape = (len(subjects), len(order))
    data: dict[str, np.ndarray] = {}
    for name, da in first.data_vars.items():
        data[name] = np.full(shape + da.shape, np.nan)
    prov = {name: (np.full(shape, "", dtype=object) if kind == "str" else np.full(shape, np.nan))
            for name, (_, _, _, kind) in PROVENANCE_VARS.items()}
    rows = []
    for ts in sessions:
        if ts.subject not in subjects or ts.session not in order:
            raise SyncError(f"thermal metrics of {ts.subject}/{ts.session}: no such subject or "
                            f"session in the Study ({subjects}, {order})")
        i, j = subjects.index(ts.subject), order.index(ts.session)
        if not np.array_equal(ts.variables["time"].values, grid):
            raise SyncError(f"thermal metrics of {ts.subject}/{ts.session}: on another grid")
        for name in data:
            if name in ts.variables:
                data[name][i, j] = ts.variables[name].values
        for name, (key, _, _, kind) in PROVENANCE_VARS.items():
            v = _provenance_value(ts, key)
            if v is None:
                continue
            prov[name][i, j] = (v if isinstance(v, str) else json.dumps(v)) if kind == "str" \
                else float(v)
        rows.append({"subject": ts.subject, "session": ts.session, "stream": "thermal",
                     "file": ts.provenance.get("source"), **ts.clock})
    coords = {"subject": subjects, "session": order, "time": grid}
    if "side" in first.dims:
        coords["side"] = first["side"].values
    ds = xr.Dataset(coords=coords)
    for name, arr in data.items():
        ds[name] = (("subject", "session", *first[name].dims), arr, dict(first[name].attrs))
    for name, (_, units, long_name, kind) in PROVENANCE_VARS.items():
        arr = prov[name].astype(str) if kind == "str" else prov[name]
        ds[name] = (("subject", "session"), arr, {"units": units, "long_name": long_name})
    ds.attrs["clock"] = json.dumps(rows, default=str)
    return ds


def merge_thermal(study: xr.Dataset, sessions: Sequence[ThermalSession]) -> xr.Dataset:
    """The Study with the sessions' thermal metrics, provenance and clock rows added."""
    from irtrepro.study import merge_variables, validate_study

    sv = thermal_study_vars(sessions, study["subject"].values, study["session"].values)
    return validate_study(merge_variables(study, sv))


_BIDS = re.compile(r"sub-([A-Za-z0-9]+)_ses-([A-Za-z0-9]+)")


def _find_session(path: Path, ds: xr.Dataset, manifest: Manifest) -> SessionEntry:
    """The manifest session of an extracted metrics file: its attrs, its name, its source."""
    by_id = {(s.subject, s.session): s for s in manifest.sessions}
    key = (str(ds.attrs.get("subject", "")), str(ds.attrs.get("session", "")))
    how = "its attributes subject/session"
    if not all(key):
        m = _BIDS.search(path.name)
        key, how = ((m.group(1), m.group(2)), "its name (sub-ID_ses-ID)") if m else (None, "")
    if key is None:
        sha = ds.attrs.get("source_sha256")
        hits = [s for s in manifest.sessions if sha and "thermal" in s.files
                and s.files["thermal"].sha256 == sha]
        if len(hits) == 1:
            return hits[0]
        raise SyncError(f"{path}: which session? no subject/session attributes, no "
                        "'sub-ID_ses-ID' in the file name and no thermal entry of "
                        f"{manifest.path} with its source sha256 {sha!r}; name the file "
                        "sub-<subject>_ses-<session>*.nc or pass --subject/--session to extract")
    if key not in by_id:
        raise SyncError(f"{path}: session {key[0]}/{key[1]} (from {how}) is not in "
                        f"{manifest.path}")
    return by_id[key]


def metrics_session(path: str | os.PathLike, manifest: Manifest,
                    grid: np.ndarray) -> ThermalSession:
    """An ``irtrepro extract`` file placed on its session's clock.

    The session is found from the file's ``subject``/``session`` attributes, else a
    ``sub-ID_ses-ID`` in its name, else the source sha256 of a manifest thermal entry. The
    times come from the file's ``start_time`` (the recording's first frame) and the session's
    thermal entry's ``offset_s``/``drift_ppm`` (:func:`irtrepro.clock.camera_times`); a
    per-second file's seconds are placed by their middle (see
    :func:`irtrepro.features.extract.place_on_clock`).

    Raises
    ------
    SyncError
        No session found, no thermal entry in it, or no absolute time and no ``offset_s``.
    """
    from irtrepro.clock import camera_times

    path = Path(path)
    ds = xr.load_dataset(path, engine="h5netcdf")
    ses = _find_session(path, ds, manifest)
    entry = ses.files.get("thermal")
    if entry is None:
        raise SyncError(f"{path}: session {ses.subject}/{ses.session} has no thermal entry in "
                        f"{manifest.path}; its offset_s/drift_ppm are read from it")
    rel = ds["time"].values.astype(float) + (0.5 if "n_frames" in ds else 0.0)
    stub = xr.DataArray(np.zeros(rel.size), dims="frame", coords={"time": ("frame", rel)},
                        attrs={"start_time": ds.attrs.get("start_time", "")})
    try:
        clock = camera_times(stub, entry, ses)
    except SyncError as exc:
        raise SyncError(f"{path}: {exc}") from None
    prov = {k: ds.attrs.get(k) for k in ("model", "model_sha256", "frames_read",
                                         "frames_damaged", "damaged_reasons")
            if ds.attrs.get(k) not in (None, "")}
    prov["source"] = str(ds.attrs.get("source") or entry.path)
    prov["sha256"] = str(ds.attrs.get("source_sha256") or entry.sha256 or "")
    prov["metrics_file"] = str(path)
    if "n_frames" in ds and "frames_read" in prov:  # per second: valid frames only
        prov["frames_invalid"] = int(prov["frames_read"]) - int(ds["n_frames"].values.sum())
    return thermal_session(ses.subject, ses.session, ds, clock.time, grid, clock.to_dict(),
                           prov)


def _reference_hr(session: SessionEntry) -> tuple[np.ndarray, np.ndarray]:
    from irtrepro.sync import _read, stream_clock

    entry = session.files["hr"]
    df = _read(entry)
    shift = stream_clock(df, entry, session)["shift_s"]
    return df["time"].to_numpy(float) + shift, df["hr"].to_numpy(float)


def check_clocks(manifest: Manifest, stores: dict[tuple[str, str], str | os.PathLike], *,
                 tolerance_s: float = 5.0, warn: bool = True,
                 signals: dict | None = None) -> pd.DataFrame:
    """The camera clock cross-check of every session with a frame store and heart rate.

    Parameters
    ----------
    manifest : Manifest
    stores : dict
        ``{(subject, session): frame store}``.
    tolerance_s : float
        Largest lag accepted, s (:func:`irtrepro.clock.check_clock`, which warns above it).
    warn : bool
        Issue :class:`irtrepro.clock.ClockWarning` per disagreeing session (False: only the
        ``irtrepro`` logger's warning and the table say it, e.g. for the report's notes).
    signals : dict, optional
        ``{(subject, session): ndarray}`` camera signals already computed
        (:func:`irtrepro.clock.frame_signal`, e.g. in the report's segmentation pass): those
        recordings are not read again.

    Returns
    -------
    DataFrame
        One row per session: subject, session, lag_s, r, tolerance_s, agrees (True / False /
        None when unmeasurable), reason, origin, offset_s, drift_ppm, file_start.
    """
    import warnings

    from irtrepro.clock import ClockWarning, check_clock
    from irtrepro.io.zarr_store import open_frames

    rows = []
    for ses in manifest.sessions:
        key = (ses.subject, ses.session)
        if key not in stores:
            continue
        base = {"subject": ses.subject, "session": ses.session, "lag_s": np.nan, "r": np.nan,
                "tolerance_s": float(tolerance_s), "agrees": None}
        if "hr" not in ses.files:
            rows.append({**base, "reason": "no hr file to check against"})
            continue
        try:
            with warnings.catch_warnings():
                if not warn:
                    warnings.simplefilter("ignore", ClockWarning)
                out = check_clock(open_frames(stores[key]), ses.files["thermal"], ses,
                                  _reference_hr(ses), tolerance_s=tolerance_s,
                                  signal=(signals or {}).get(key))
        except IrtreproError as exc:
            rows.append({**base, "reason": f"not checked: {exc}"})
            continue
        rows.append({"subject": ses.subject, "session": ses.session, **out})
    cols = ["subject", "session", "lag_s", "r", "tolerance_s", "agrees", "reason", "origin",
            "offset_s", "drift_ppm", "file_start"]
    return pd.DataFrame(rows).reindex(columns=cols)
