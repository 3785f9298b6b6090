"""Frames + masks -> features on the study grid: per-second median of valid frames.

Work is split into frame chunks; each chunk's features are computed independently
(:func:`irtrepro.features.compute_features`), optionally on a dask.distributed cluster, and
cached to ``cache_dir`` so an interrupted extraction resumes without recomputing finished
chunks. Serial and parallel runs use the same chunks, so their results are identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger, progress_bar
from irtrepro.distributed import open_client, parse_scheduler
from irtrepro.errors import OptionError
from irtrepro.features.core import SIDES
from irtrepro.features.registry import FEATURES, compute_features

__all__ = ["STUDY_VARS", "extract_session", "extract_store", "per_second", "place_on_clock",
           "recording_attrs", "to_study_vars"]

#: Study variable -> (feature, units, long_name)
STUDY_VARS = {
    "tsk_mean": ("calf_mean", "degC", "mean calf skin temperature"),
    "tnv": ("tnv_mean", "degC", "mean temperature of non-vessel calf skin (TNV)"),
    "tp": ("tp_mean", "degC", "mean temperature of cutaneous perforators (TP)"),
    "tv": ("tv_mean", "degC", "mean temperature of superficial veins (TV)"),
    "tp_entropy": ("tp_entropy", "bit", "Shannon entropy of perforator temperatures (0.1 degC bins)"),
    "tnv_entropy": ("tnv_entropy", "bit", "Shannon entropy of TNV temperatures (0.1 degC bins)"),
    "vein_count": ("vein_count", "1", "number of vein connected components"),
    "perforator_count": ("perforator_count", "1", "number of perforator connected components"),
}


def _chunk_features(frames, roi, vessels, time, features, bin_width) -> xr.Dataset:
    return compute_features(np.asarray(frames), np.asarray(roi), np.asarray(vessels),
                            time=np.asarray(time), features=features, bin_width=bin_width)


def _store_chunk(path: str, a: int, b: int, features, bin_width, mask_store: str | None
                 ) -> xr.Dataset:
    """Read frames a:b (and masks) from zarr stores and compute features (runs on workers)."""
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(path)
    mds = open_frame_store(mask_store) if mask_store else ds
    return _chunk_features(ds["frames"][a:b].values, mds["roi"][a:b].values,
                           mds["vessels"][a:b].values, ds["time"][a:b].values, features,
                           bin_width)


def per_second(feats: xr.Dataset, grid: np.ndarray | None = None,
               valid: np.ndarray | None = None) -> xr.Dataset:
    """Median over the valid frames of each second ``[t, t+1)`` of the grid.

    Parameters
    ----------
    feats : Dataset on (time[, side]) per frame
    grid : ndarray, optional
        Study time grid (s, regular 1 s); default every whole second spanned by the frames.
    valid : bool ndarray (time,), optional
        Frames to use; default ``feats["valid"]`` when present, else all.

    Returns
    -------
    Dataset on the grid; seconds with no valid frame are NaN. ``n_frames`` counts the valid
    frames used per second.
    """
    t = feats["time"].values.astype(float)
    if grid is None:
        grid = np.arange(np.floor(t.min()), np.floor(t.max()) + 1) if t.size else np.zeros(0)
    grid = np.asarray(grid, dtype=float)
    if valid is None:
        valid = feats["valid"].values.astype(bool) if "valid" in feats else np.ones(t.size, bool)
    sec = np.floor(t)
    pos = np.searchsorted(grid, sec)
    ok = valid & (pos < grid.size) & (grid[np.minimum(pos, grid.size - 1)] == sec)
    out = {}
    keys = pos[ok]
    order = np.argsort(keys, kind="stable")
    keys_sorted = keys[order]
    uniq, start = np.unique(keys_sorted, return_index=True)
    # one slot per (second, frame within that second), NaN-padded: every second's median in
    # one nanmedian call (a loop over seconds cost ~95 % of extract_session's time)
    counts = np.diff(np.r_[start, keys_sorted.size])
    width = int(counts.max()) if counts.size else 0
    group = np.repeat(np.arange(uniq.size), counts)
    rank = np.arange(keys_sorted.size) - np.repeat(start, counts)
    for name, da in feats.data_vars.items():
        if name.startswith("flag_") or name == "valid":
            continue
        vals = da.values[ok][order].astype(float)
        res = np.full((grid.size, *vals.shape[1:]), np.nan)
        if uniq.size and width == 1:  # one frame per second: the frame is the median
            res[uniq] = vals
        elif uniq.size:
            pad = np.full((uniq.size, width, *vals.shape[1:]), np.nan)
            pad[group, rank] = vals
            with warnings.catch_warnings():
                # an all-NaN column (region absent that second) is NaN, as it should be
                warnings.simplefilter("ignore", RuntimeWarning)
                res[uniq] = np.nanmedian(pad, axis=1)
        out[name] = (da.dims, res, dict(da.attrs))
    n = np.zeros(grid.size)
    np.add.at(n, keys, 1)
    out["n_frames"] = (("time",), n, {"units": "1", "long_name": "valid frames per second"})
    coords = {"time": ("time", grid, {"units": "s"})}
    if "side" in feats.coords:
        coords["side"] = feats["side"].values
    return xr.Dataset(out, coords=coords)


def place_on_clock(metrics: xr.Dataset, times: np.ndarray, grid: np.ndarray) -> xr.Dataset:
    """Metrics of one recording on the Study grid, from their times on the session clock.

    Parameters
    ----------
    metrics : Dataset on (time[, side])
        Per-frame features (:func:`extract_session` with ``per_frame=True``; ``valid`` marks
        the frames used) or per-second medians on the recording's own clock (with
        ``n_frames``, as ``irtrepro extract`` writes them).
    times : ndarray, (time,)
        Session-clock time (s since exercise start) of every row of ``metrics``: of each frame,
        or of the middle of each second of the recording's clock.
    grid : ndarray
        The Study's time grid (s, regular 1 s).

    Returns
    -------
    Dataset on the grid
        Median per grid second ``[t, t+1)`` (:func:`per_second`); ``n_frames`` counts the
        frames behind each second. ``attrs``: ``frames_read`` (frames in ``metrics``),
        ``frames_placed``, ``frames_outside_grid`` (before exercise start or after the grid)
        and ``frames_invalid`` (failed the quality checks, or seconds with no frame).

    Notes
    -----
    Per-second input is re-binned: a second's median lands in the grid second holding its
    middle on the session clock, so a frame can move by up to 1 s against its own time;
    per-frame input is placed exactly.
    """
    # 1 us: a frame stamped on a whole second stays in it whatever the float error of the
    # clock arithmetic (camera stamps are ms)
    times = np.round(np.asarray(times, float), 6)
    if times.shape != (metrics.sizes["time"],):
        raise OptionError(f"place_on_clock: {times.size} times for {metrics.sizes['time']} rows "
                          "of metrics")
    grid = np.asarray(grid, float)
    per_sec = "n_frames" in metrics
    weight = (metrics["n_frames"].values.astype(float) if per_sec
              else np.ones(times.size))
    valid = (weight > 0) if per_sec else (metrics["valid"].values.astype(bool)
                                          if "valid" in metrics else np.ones(times.size, bool))
    feats = metrics.drop_vars("n_frames") if per_sec else metrics
    out = per_second(feats.assign_coords(time=("time", times)), grid, valid=valid)
    sec = np.floor(times)
    pos = np.searchsorted(grid, sec)
    inside = (pos < grid.size) & (grid[np.minimum(pos, grid.size - 1)] == sec)
    n = np.zeros(grid.size)
    np.add.at(n, pos[inside & valid], weight[inside & valid])
    out["n_frames"] = (("time",), n, {"units": "1", "long_name": "valid frames per second"})
    total = float(weight.sum()) if per_sec else float(times.size)
    out.attrs.update({"frames_read": int(total), "frames_placed": int(n.sum()),
                      "frames_outside_grid": int(weight[~inside].sum()),
                      "frames_invalid": int(weight[inside & ~valid].sum())})
    return out


def _cache_key(n: int, shape, chunk: int, features, bin_width, ident: str) -> str:
    return hashlib.sha256(json.dumps([n, list(shape), chunk, features, bin_width, ident])
                          .encode()).hexdigest()[:16]


def _chunk_cache(cache_dir, frames, time, shape, chunk_frames, features, bin_width):
    """The folder of one extraction's finished chunks (``None``: no cache)."""
    if cache_dir is None:
        return None
    n = shape[0]
    ident = f"{getattr(frames, 'attrs', {}).get('store', '')}{float(time[0]) if n else 0}"
    out = Path(cache_dir) / _cache_key(n, shape, chunk_frames, features, bin_width, ident)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run_chunks(tasks: list[tuple[int, int]], compute_one, submit_one, scheduler, cache_dir,
                progress) -> list[xr.Dataset]:
    results: dict[int, xr.Dataset] = {}
    todo = []
    for a, b in tasks:
        f = None if cache_dir is None else Path(cache_dir) / f"chunk_{a:09d}_{b:09d}.nc"
        if f is not None and f.is_file():
            results[a] = xr.load_dataset(f, engine="h5netcdf")
        else:
            todo.append((a, b, f))
    if todo:
        logger.info("extracting %d chunks (%d cached)", len(todo), len(tasks) - len(todo))

    def keep(a, f, ds):
        results[a] = ds
        if f is not None:
            with atomic_path(f) as tmp:
                ds.to_netcdf(tmp, engine="h5netcdf")

    if parse_scheduler(scheduler)[0] == "serial":
        for a, b, f in progress_bar(todo, progress, desc="features"):
            keep(a, f, compute_one(a, b))
    elif todo:
        from distributed import as_completed

        with open_client(scheduler) as client:
            futs = {submit_one(client, a, b): (a, f) for a, b, f in todo}
            try:
                for fut in progress_bar(as_completed(futs), progress, desc="features",
                                        total=len(futs)):
                    a, f = futs[fut]
                    keep(a, f, fut.result())
            finally:
                client.cancel(list(futs))
    return [results[a] for a, _ in tasks]


def extract_session(frames, roi, vessels, *, time=None, grid=None, features=None,
                    bin_width: float = 0.1, chunk_frames: int = 256, scheduler=None,
                    cache_dir: str | os.PathLike | None = None, progress: bool | None = None,
                    per_frame: bool = False) -> xr.Dataset:
    """Features of one session's frames + masks, per second on the study grid.

    Parameters
    ----------
    frames : DataArray (frame, y, x) with ``time(frame)``, or ndarray with ``time=``
        Temperatures (degC); may be dask-backed.
    roi, vessels : array-like (frame, y, x)
    grid : ndarray, optional
        Study time grid (s); default the whole seconds spanned by the frames.
    features : list of str, optional
        Feature names (default all registered).
    chunk_frames : int
        Frames per work unit (also what a resumed run skips).
    scheduler : None, 'local', str, Client or LocalCluster
        ``None`` runs serially; otherwise chunks run on dask.distributed.
    cache_dir : path, optional
        Finished chunks are stored here (one netCDF each) and reused on a rerun.
    per_frame : bool
        Return the per-frame features instead of the per-second medians.
    """
    if time is None:
        if not hasattr(frames, "coords") or "time" not in frames.coords:
            raise OptionError("extract_session: frames without a time coordinate need time=")
        time = frames["time"].values
    fr = frames.data if hasattr(frames, "dims") else frames
    n = fr.shape[0]
    time = np.asarray(time, float)
    features = list(FEATURES) if features is None else list(features)
    if "valid" not in features:
        features = [*features, *[k for k in FEATURES if FEATURES[k][0] == "quality"
                                 and k not in features]]
    roi_a = getattr(roi, "data", roi)
    ves_a = getattr(vessels, "data", vessels)
    tasks = [(a, min(n, a + chunk_frames)) for a in range(0, n, chunk_frames)]
    cache_dir = _chunk_cache(cache_dir, frames, time, fr.shape, chunk_frames, features,
                             bin_width)

    def compute_one(a, b):
        return _chunk_features(fr[a:b], roi_a[a:b], ves_a[a:b], time[a:b], features, bin_width)

    def submit_one(client, a, b):
        return client.submit(_chunk_features, np.asarray(fr[a:b]), np.asarray(roi_a[a:b]),
                             np.asarray(ves_a[a:b]), time[a:b], features, bin_width, pure=False)

    parts = _run_chunks(tasks, compute_one, submit_one, scheduler, cache_dir, progress)
    feats = xr.concat(parts, dim="time") if parts else compute_features(
        np.zeros((0, 1, 1)), np.zeros((0, 1, 1)), np.zeros((0, 1, 1)), features=features)
    return feats if per_frame else per_second(feats, grid)


def extract_store(path: str | os.PathLike, *, mask_store: str | os.PathLike | None = None,
                  **kwargs) -> xr.Dataset:
    """:func:`extract_session` of a zarr frame store (masks in it or in ``mask_store``).

    With a dask scheduler the workers read their own chunks from the store (nothing large
    travels through the client). The result's ``attrs`` keep the recording's start time and
    provenance (:func:`recording_attrs`), so that ``irtrepro build --metrics`` can place it on
    the session clock.
    """
    from irtrepro.io.thermal import open_frame_store

    out = _extract_store(path, mask_store=mask_store, **kwargs)
    out.attrs.update(recording_attrs(open_frame_store(path)["frames"]))
    return out


def _extract_store(path, *, mask_store=None, **kwargs) -> xr.Dataset:
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(path)
    mds = open_frame_store(mask_store) if mask_store else ds
    for k in ("roi", "vessels"):
        if k not in mds:
            raise OptionError(f"{mask_store or path}: frame store has no {k!r} mask; run "
                              "`irtrepro segment` first, or give `irtrepro extract` a "
                              "segmentation model (--model MODEL.pt)")
    scheduler = kwargs.get("scheduler")
    if parse_scheduler(scheduler)[0] == "serial":
        return extract_session(ds["frames"], mds["roi"], mds["vessels"], **kwargs)
    features = kwargs.get("features")
    features = list(FEATURES) if features is None else list(features)
    if "valid" not in features:  # as extract_session: the quality checks always run
        features = [*features, *[k for k in FEATURES if FEATURES[k][0] == "quality"
                                 and k not in features]]
    kwargs["features"] = features

    def submit(client, a, b, _f=None):
        return client.submit(_store_chunk, str(path), a, b, features,
                             kwargs.get("bin_width", 0.1),
                             None if mask_store is None else str(mask_store), pure=False)

    # reuse extract_session's bookkeeping with a store-reading submit function
    import irtrepro.features.extract as me

    n = ds["frames"].shape[0]
    chunk = kwargs.get("chunk_frames", 256)
    tasks = [(a, min(n, a + chunk)) for a in range(0, n, chunk)]
    cache = _chunk_cache(kwargs.get("cache_dir"), ds["frames"], ds["time"].values,
                         ds["frames"].shape, chunk, features, kwargs.get("bin_width", 0.1))
    parts = me._run_chunks(tasks, None, submit, scheduler, cache, kwargs.get("progress"))
    feats = xr.concat(parts, dim="time")
    return feats if kwargs.get("per_frame") else per_second(feats, kwargs.get("grid"))


def recording_attrs(frames: xr.DataArray) -> dict[str, Any]:
    """What an extracted metrics file keeps of its recording (netCDF-safe attribute values).

    ``start_time`` (the first frame's absolute time, ISO 8601, ``""`` when the file has none),
    ``time_origin``, ``source``, ``source_sha256``, ``source_format``, ``store``,
    ``frames_read``, ``frames_damaged`` and ``damaged_reasons`` (JSON ``{frame: reason}``).
    """
    a = frames.attrs
    damaged = [int(v) for v in (a.get("damaged_frames") or [])]
    reasons = list(a.get("damaged_reasons") or [""] * len(damaged))
    return {
        "start_time": str(a.get("start_time") or ""),
        "time_origin": "time: s since the first frame, whose absolute time is start_time",
        "source": str(a.get("source") or a.get("store") or ""),
        "source_sha256": str(a.get("source_sha256") or ""),
        "source_format": str(a.get("source_format") or a.get("format") or ""),
        "store": str(a.get("store") or ""),
        "frames_read": int(frames.shape[0]),
        "frames_damaged": len(damaged),
        "damaged_reasons": json.dumps({str(k): str(r) for k, r in
                                       zip(damaged, reasons, strict=False)}),
    }


def to_study_vars(per_sec: xr.Dataset) -> xr.Dataset:
    """Rename per-second features to the Study variables (:data:`STUDY_VARS`), with attrs."""
    out = {}
    for name, (feat, units, long_name) in STUDY_VARS.items():
        if feat in per_sec:
            da = per_sec[feat].copy()
            da.attrs = {"units": units, "long_name": long_name}
            out[name] = da
    ds = xr.Dataset(out)
    if "side" in ds.dims:
        ds = ds.assign_coords(side=list(SIDES))
    return ds
