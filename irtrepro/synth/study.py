"""Write the synthetic study to disk in real export formats, with its manifest.

Layout (BIDS-like) under ``out``::

    sub-S01/ses-CON/cpet/sub-S01_ses-CON_cpet.xlsx      COSMED / CORTEX xlsx or CSV
    sub-S01/ses-CON/hr/sub-S01_ses-CON_hr.csv           Polar Flow CSV or FIT
    sub-S01/ses-CON/core/sub-S01_ses-CON_core.csv       e-Celsius-style CSV or FIT
    sub-S01/ses-CON/thermal/sub-S01_ses-CON_thermal.zarr    calf thermograms (zarr frame store)
    sub-S01/ses-CON/face/sub-S01_ses-CON_face.zarr          face clips (zarr frame store)
    sub-S01/ses-CON/pose/...                                low-resolution running clips
    derivatives/truth/truth.nc                          the 1 Hz truth (planted answers in attrs)
    derivatives/truth/sub-S01/ses-CON/...               ground-truth masks, labels, keypoints

Formats rotate over subjects so every reader is exercised. Device clocks start before exercise
(cart 120 s, HR strap 300 s, core sensor 600 s); each file carries its own start time, which
the sync step uses. Every file is written deterministically: the same seed gives the same
bytes, so the manifest's sha256 values are stable (checked by ``irtrepro manifest verify``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro._logging import logger, progress_bar
from irtrepro.manifest import dump_manifest, sha256_path
from irtrepro.synth.physiology import SynthConfig, simulate_breaths, simulate_study

#: Formats the generator rotates through, per kind (index = subject number mod length).
CPET_FORMATS = ("cosmed-xlsx", "cortex-xlsx", "csv")
HR_FORMATS = ("polar-csv", "fit")
CORE_FORMATS = ("core-csv", "fit")
LEAD_S = {"cpet": 120.0, "hr": 300.0, "core": 600.0, "thermal": 30.0}
DEFAULT_KINDS = ("cpet", "hr", "core", "thermal", "face", "pose")


@dataclass
class GeneratorConfig:
    """What to write, on top of the physiology's :class:`SynthConfig`.

    Attributes
    ----------
    physiology : SynthConfig
        Subjects, sessions, seed, planted effects.
    kinds : tuple of str
        File kinds to write (``cpet``, ``hr``, ``core``, ``thermal``, ``face``, ``pose``).
    thermal : dict
        Options of :func:`irtrepro.synth.thermogram.render_session` (``frame_interval_s``,
        ``shape``).
    face : dict
        Options of :func:`irtrepro.synth.face.render_face_session` (``fps``, ``shape``,
        ``clip_s``).
    pose : dict
        Options of the pose clip renderer.
    camera : dict
        Camera settings written to the manifest.
    """

    physiology: SynthConfig = field(default_factory=SynthConfig)
    kinds: tuple[str, ...] = DEFAULT_KINDS
    thermal: dict = field(default_factory=lambda: {"frame_interval_s": 10.0,
                                                   "shape": [120, 160]})
    face: dict = field(default_factory=lambda: {"fps": 8.0, "shape": [48, 64], "clip_s": 30.0})
    pose: dict = field(default_factory=lambda: {"fps": 15.0, "clip_s": 8.0})
    camera: dict = field(default_factory=lambda: {"emissivity": 0.98,
                                                  "reflected_temperature": 22.0,
                                                  "distance": 1.5})

    def to_dict(self) -> dict:
        return {"physiology": self.physiology.to_dict(), "kinds": list(self.kinds),
                "thermal": dict(self.thermal), "face": dict(self.face), "pose": dict(self.pose),
                "camera": dict(self.camera)}

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        d = dict(d)
        phys = SynthConfig.from_dict(d.pop("physiology", {}))
        kinds = tuple(d.pop("kinds", DEFAULT_KINDS))
        return cls(physiology=phys, kinds=kinds, **d)


def session_start(subject_index: int, day: int, order_in_day: int) -> _dt.datetime:
    """Exercise start (local wall clock) of a session: day 2 is a week after day 1."""
    base = _dt.datetime(2026, 3, 2, 9, 0, 0) + _dt.timedelta(days=subject_index)
    return base + _dt.timedelta(days=7 * (day - 1), hours=5 * order_in_day)


def _cpet_frame(breaths: pd.DataFrame, lead: float, dropout: float,
                rng: np.random.Generator) -> pd.DataFrame:
    keep = rng.random(len(breaths)) >= dropout  # breaths the cart lost
    b = breaths.loc[keep]
    return pd.DataFrame({
        "time": b["t_end"].to_numpy() + lead,  # carts stamp a breath at its end
        "vo2": b["vo2"].to_numpy(), "vco2": b["vco2"].to_numpy(), "ve": b["ve"].to_numpy(),
        "rf": b["rf"].to_numpy(), "vt": b["vt"].to_numpy(),
        "rer": (b["vco2"] / b["vo2"]).to_numpy(), "hr": np.round(b["hr"].to_numpy()),
    })


def _hr_frame(ts: xr.Dataset, lead: float, per_hour: float,
              rng: np.random.Generator) -> pd.DataFrame:
    t = ts.time.values
    ok = np.isfinite(ts.hr.values)
    hr = np.round(ts.hr.values[ok] + rng.normal(0, 1.2, ok.sum()))
    t_rec = np.arange(0, t[ok][-1] + lead + 1, 1.0)
    sess = t_rec - lead
    # before exercise: resting HR with noise
    vals = np.where(sess < 0, np.round(ts.hr.values[ok][0] - 20 + rng.normal(0, 2, len(sess))),
                    np.interp(sess, t[ok], hr))
    n_drop = rng.poisson(per_hour * len(t_rec) / 3600.0)
    for _ in range(n_drop):  # strap dropouts: 5-30 s without a value
        a = int(rng.integers(0, len(t_rec)))
        vals[a:a + int(rng.integers(5, 31))] = np.nan
    return pd.DataFrame({"time": t_rec, "hr": vals})


def _core_frame(ts: xr.Dataset, lead: float, rng: np.random.Generator) -> pd.DataFrame:
    t = ts.time.values
    ok = np.isfinite(ts.tcore.values)
    t_rec = np.arange(0, t[ok][-1] + lead + 1, 30.0)  # e-Celsius samples every 30 s
    sess = t_rec - lead
    tc = np.interp(sess, t[ok], ts.tcore.values[ok], left=ts.tcore.values[ok][0])
    return pd.DataFrame({"time": t_rec, "tcore": np.round(tc + rng.normal(0, 0.02, len(tc)),
                                                          2)})


def _write_cpet(fmt: str, df: pd.DataFrame, path: Path, start: _dt.datetime, subj: dict) -> None:
    from irtrepro.synth.exports import cpet

    if fmt == "cosmed-xlsx":
        cpet.write_cosmed_xlsx(df, path, start_time=start, subject=subj)
    elif fmt == "cortex-xlsx":
        cpet.write_cortex_xlsx(df, path, start_time=start, subject=subj)
    else:
        cpet.write_cpet_csv(df, path, start_time=start)


def _write_hr(fmt: str, df: pd.DataFrame, path: Path, start: _dt.datetime) -> None:
    from irtrepro.synth.exports import fit, hr

    if fmt == "polar-csv":
        hr.write_polar_csv(df, path, start_time=start)
    else:
        fit.write_fit(df, path, start_time=start, fields=("heart_rate",))


def _write_core(fmt: str, df: pd.DataFrame, path: Path, start: _dt.datetime) -> None:
    from irtrepro.synth.exports import core, fit

    if fmt == "core-csv":
        core.write_core_csv(df, path, start_time=start)
    else:
        fit.write_fit(df, path, start_time=start, fields=("core_temperature",))


def _write_mask_store(path: Path, masks: xr.Dataset) -> None:
    """Ground-truth masks (roi, vessels) with their frame times, as a small zarr store."""
    from irtrepro._atomic import atomic_path

    ds = masks[["roi", "vessels"]].astype("uint8")
    ds["time"].attrs = {"units": "s", "long_name": "time since exercise start"}
    with atomic_path(path, is_dir=True) as tmp:
        ds.to_zarr(tmp, mode="w", consolidated=False,
                   encoding={"time": {"dtype": "float64"}})


#: Packages whose versions can change the generator's bytes; recorded in the manifest.
GENERATOR_PACKAGES = ("numpy", "scipy", "pandas", "xarray", "zarr", "numcodecs", "openpyxl")


def generator_environment() -> dict[str, str]:
    """Python and the versions of :data:`GENERATOR_PACKAGES` installed now."""
    import platform

    from irtrepro.info import package_version

    return {"python": platform.python_version(),
            **{p: package_version(p) for p in GENERATOR_PACKAGES}}


def generate_study(out: str | os.PathLike, config: GeneratorConfig | None = None, *,
                   manifest_path: str | os.PathLike | None = None,
                   progress: bool | None = None, n_jobs: int | None = None,
                   subjects: list[str] | None = None) -> Path:
    """Simulate the study and write every file and the manifest.

    Parameters
    ----------
    out : path-like
        Folder for the data files (created).
    config : GeneratorConfig, optional
        Defaults: the reference design (11 subjects x 3 sessions), all kinds.
    manifest_path : path-like, optional
        Where to write the manifest (default ``out/manifest.yaml``); file paths in it are
        relative to its folder.
    progress : bool or None
        Progress bar.
    n_jobs : int, optional
        Sessions written in parallel processes (default: the CPU count). The files are
        identical for any ``n_jobs``.
    subjects : list of str, optional
        Write only these subjects' files (and only them in the manifest); the simulation is
        the whole study's, so each file is byte-identical to the full study's. Used to check
        a recorded manifest against a fresh generator quickly.

    Returns
    -------
    Path
        The manifest written.
    """
    cfg = config or GeneratorConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = Path(manifest_path) if manifest_path else out / "manifest.yaml"
    mroot = manifest_path.resolve().parent
    phys = cfg.physiology
    truth = simulate_study(phys)
    truth_dir = out / "derivatives" / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    from irtrepro.study import save_study

    tr = truth.copy()
    tr.attrs.pop("created", None)
    save_study(tr, truth_dir / "truth.nc", validate=False)
    (truth_dir / "truth.json").write_text(json.dumps(json.loads(truth.attrs["truth"]),
                                                     indent=2, sort_keys=True) + "\n")

    def rel(p: Path) -> str:
        return os.path.relpath(p.resolve(), mroot).replace(os.sep, "/")

    subjects_yaml = []
    order = {}
    for _sid, _p, day in phys.sessions:
        order.setdefault(day, []).append(_sid)
    if subjects is not None:
        unknown = sorted(set(subjects) - {str(v) for v in truth.subject.values})
        if unknown:
            from irtrepro.errors import OptionError

            raise OptionError(f"subjects={unknown!r} not in the synthetic study; it has "
                              f"{[str(v) for v in truth.subject.values]}")
    jobs = []
    for i, sub in enumerate(truth.subject.values):
        if subjects is not None and str(sub) not in subjects:
            continue
        subj = {"id": str(sub), "sex": str(truth.sex.values[i]), "age": int(truth.age.values[i]),
                "body_mass": float(truth.body_mass.values[i])}
        for j, (sid, _p, day) in enumerate(phys.sessions):
            ts = _subject_scalars(truth, truth.sel(subject=sub, session=sid), sub)
            jobs.append((cfg, ts, i, j, str(sub), subj,
                         session_start(i, day, order[day].index(sid)), out, mroot))
    entries: dict[str, list] = {}
    n_jobs = max(1, min(int(n_jobs or os.cpu_count() or 1), len(jobs)))
    if n_jobs > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        # sessions are independent (each has its own seeded generator): same bytes in any order
        with cf.ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as pool:
            results = list(progress_bar(pool.map(_write_session, jobs), progress,
                                        desc="synthetic study", total=len(jobs)))
    else:
        results = [_write_session(job) for job in progress_bar(jobs, progress,
                                                               desc="synthetic study")]
    for sub, entry in results:
        entries.setdefault(sub, []).append(entry)
    for i, sub in enumerate(truth.subject.values):
        if str(sub) not in entries:
            continue
        subjects_yaml.append({
            "id": str(sub), "viat": float(truth.viat.values[i]), "age": int(truth.age.values[i]),
            "sex": str(truth.sex.values[i]), "body_mass": float(truth.body_mass.values[i]),
            "sessions": entries[str(sub)]})
    manifest = {
        "study": {"name": "irtrepro-demo",
                  "description": "Synthetic reproducibility study with planted answers "
                                 "(irtrepro.synth); truth in derivatives/truth/."},
        "camera": dict(cfg.camera),
        "grid": {"step_s": 1.0},
        "generator": {"name": "irtrepro.synth", "seed": phys.seed, "out": rel(out),
                      "truth": rel(truth_dir / "truth.nc"), "config": cfg.to_dict(),
                      "environment": generator_environment()},
        "subjects": subjects_yaml,
    }
    dump_manifest(manifest, manifest_path)
    logger.info("synthetic study: %d subject(s), %d session file set(s) -> %s",
                len(subjects_yaml), len(results), manifest_path)
    return manifest_path


def _write_session(job) -> tuple[str, dict]:
    """Write every file of one session; returns (subject, manifest entry)."""
    cfg, ts, i, j, sub, subj, start, out, mroot = job
    phys = cfg.physiology
    sid, pname, day = phys.sessions[j]

    def rel(p: Path) -> str:
        return os.path.relpath(p.resolve(), mroot).replace(os.sep, "/")

    rng = np.random.default_rng([phys.seed, i, j, 7])
    breaths = simulate_breaths(ts, rng)
    base = out / f"sub-{sub}" / f"ses-{sid}"
    stem = f"sub-{sub}_ses-{sid}"
    files: dict[str, dict] = {}
    if "cpet" in cfg.kinds:
        fmt = CPET_FORMATS[i % len(CPET_FORMATS)]
        ext = ".csv" if fmt == "csv" else ".xlsx"
        p = base / "cpet" / f"{stem}_cpet{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        lead = LEAD_S["cpet"]
        _write_cpet(fmt, _cpet_frame(breaths, lead, phys.cart_dropout, rng), p,
                    start - _dt.timedelta(seconds=lead), subj)
        files["cpet"] = {"path": rel(p), "format": fmt}
    if "hr" in cfg.kinds:
        fmt = HR_FORMATS[i % len(HR_FORMATS)]
        p = base / "hr" / f"{stem}_hr{'.csv' if fmt == 'polar-csv' else '.fit'}"
        p.parent.mkdir(parents=True, exist_ok=True)
        lead = LEAD_S["hr"]
        _write_hr(fmt, _hr_frame(ts, lead, phys.hr_dropout_per_hour, rng), p,
                  start - _dt.timedelta(seconds=lead))
        files["hr"] = {"path": rel(p), "format": fmt}
    if "core" in cfg.kinds:
        fmt = CORE_FORMATS[(i + 1) % len(CORE_FORMATS)]
        p = base / "core" / f"{stem}_core{'.csv' if fmt == 'core-csv' else '.fit'}"
        p.parent.mkdir(parents=True, exist_ok=True)
        lead = LEAD_S["core"]
        _write_core(fmt, _core_frame(ts, lead, rng), p, start - _dt.timedelta(seconds=lead))
        files["core"] = {"path": rel(p), "format": fmt}
    if "thermal" in cfg.kinds:
        _thermal(cfg, ts, base, stem, start, files, rel)
    if "face" in cfg.kinds:
        _face(cfg, ts, breaths, base, stem, start, files, rel)
    if "pose" in cfg.kinds:
        _pose(cfg, ts, sub, sid, base, stem, start, files, rel)
    for f in files.values():
        f["sha256"] = sha256_path(mroot / f["path"])
    return sub, {"id": sid, "day": int(day), "protocol": pname,
                 "start_time": start.isoformat(), "files": files}


def _subject_scalars(truth: xr.Dataset, ts: xr.Dataset, sub) -> xr.Dataset:
    ts = ts.copy()
    for k in ("vein_area_fraction", "perforator_area_fraction"):
        ts[k] = truth[k].sel(subject=sub)
    return ts


def _thermal(cfg, ts, base, stem, start, files, rel) -> None:
    from irtrepro.synth.thermogram import render_session

    opts = dict(cfg.thermal)
    if "shape" in opts:
        opts["shape"] = tuple(opts["shape"])
    valid = np.isfinite(ts.tnv.isel(side=0).values)
    tsv = ts.isel(time=valid)
    rendered = render_session(tsv, seed=cfg.physiology.seed,
                              emissivity=cfg.camera.get("emissivity", 0.98),
                              ambient=cfg.camera.get("reflected_temperature", 22.0), **opts)
    _write_frame_store("thermal", rendered["frames"], base, stem, start, files, rel)
    mp = _truth_path(base, f"{stem}_masks.zarr")
    _write_mask_store(mp, rendered)
    files["thermal_masks"] = {"path": rel(mp), "format": "zarr-masks"}


def _truth_path(base: Path, name: str) -> Path:
    """``derivatives/truth/sub-XX/ses-YY/name`` beside the session folder ``base``."""
    p = base.parents[1] / "derivatives" / "truth" / base.parent.name / base.name / name
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _write_frame_store(kind: str, frames: xr.DataArray, base: Path, stem: str,
                       start: _dt.datetime, files: dict, rel) -> None:
    """A recording as the camera software would export it: zarr frame store + start time."""
    from irtrepro.io.zarr_store import write_frames

    frames.attrs["start_time"] = start.isoformat()
    p = base / kind / f"{stem}_{kind}.zarr"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_frames(p, frames)
    files[kind] = {"path": rel(p), "format": "zarr"}


def _face(cfg, ts, breaths, base, stem, start, files, rel) -> None:
    from irtrepro.io.face import write_face_labels
    from irtrepro.synth.face import render_face_session

    opts = dict(cfg.face)
    if "shape" in opts:
        opts["shape"] = tuple(opts["shape"])
    valid = np.isfinite(ts.rf.values)
    ds = render_face_session(ts.isel(time=valid), breaths, seed=cfg.physiology.seed, **opts)
    _write_frame_store("face", ds["frames"], base, stem, start, files, rel)
    lp = _truth_path(base, f"{stem}_face_labels.csv")
    write_face_labels(lp, ds)
    files["face_labels"] = {"path": rel(lp), "format": "csv"}


def _pose(cfg, ts, sub, sid, base, stem, start, files, rel) -> None:
    """One low-resolution running clip per session, in the middle of the main block.

    The clip (80x60 thermal frames, npz as a camera export would be) follows the truth's
    cadence and speed; its ground-truth keypoints go to the derivatives as COCO JSON.
    """
    from irtrepro.io.pose import write_pose_clip
    from irtrepro.synth.pose import render_running_clip, write_coco

    opts = dict(cfg.pose)
    fps = float(opts.get("fps", 15.0))
    clip_s = float(opts.get("clip_s", 8.0))
    t0 = float(opts.get("t0", 1200.0))
    n = int(round(clip_s * fps))
    t = t0 + np.arange(n) / fps
    valid = np.isfinite(ts.cadence.values)
    cadence = np.interp(t, ts.time.values[valid], ts.cadence.values[valid])
    speed = float(np.interp(t0, ts.time.values[valid], ts.speed.values[valid]))
    i = int(sub[1:]) if sub[1:].isdigit() else 0
    clip = render_running_clip(cadence, speed, n_frames=n, fps=fps,
                               seed=int(cfg.physiology.seed % 2**31) + 7919 * i + hash_id(sid),
                               subject_id=str(sub), t0=t0, rgb=False)
    p = base / "pose" / f"{stem}_pose.npz"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_pose_clip(p, clip)
    files["pose"] = {"path": rel(p), "format": "npz"}
    tp = _truth_path(base, f"{stem}_pose_keypoints.json")
    write_coco(tp, clip)
    files["pose_keypoints"] = {"path": rel(tp), "format": "coco"}


def hash_id(text: str) -> int:
    """Small stable integer of a string (``hash`` is salted per process)."""
    import zlib

    return zlib.crc32(text.encode()) % 10007
