"""A lab-shaped synthetic study: the camera part as a lab has it.

Where :func:`irtrepro.synth.study.generate_study` writes the generator's own zarr stores with
a mask for every frame, :func:`generate_lab_study` writes what a lab that films its runners
with a FLIR camera hands over:

- one **FLIR SEQ** file per session at camera resolution (640x480 by default), raw 16-bit
  counts with the camera's constants and an absolute time stamp on every frame;
- a **camera clock that is off**: the camera is started ``lead_s`` before the treadmill and its
  clock runs ``clock_offset_s`` ahead of the true (cart) clock, drifting by
  ``clock_drift_ppm``. Nothing corrects this in the files or the manifest's file entries --
  the planted values are in the manifest's ``generator.config`` and in
  ``derivatives/truth/lab.json``, for a sync step to recover;
- **sparse annotations** of ``annotated_per_subject`` frames per subject (spread evenly over
  the subject's sessions), as LabelMe JSON (one folder per session) and one COCO JSON per
  session (CVAT's layout), with one label map YAML for both;
- the cart, HR strap and core sensor files of each session (the generator's own writers), so
  the Study can be built.

Layout under ``out``::

    sub-S01/ses-CON/thermal/sub-S01_ses-CON_thermal.seq
    sub-S01/ses-CON/{cpet,hr,core}/...
    annotations/labels.yaml
    annotations/labelme/sub-S01_ses-CON/frame_000012.json ...
    annotations/coco/sub-S01_ses-CON.json
    derivatives/truth/truth.nc, truth.json     the 1 Hz physiology truth
    derivatives/truth/lab.json                 planted clock, frame times, annotation index
    derivatives/truth/sub-S01/ses-CON/sub-S01_ses-CON_masks.zarr   masks of every frame

The camera clock: a frame taken at true session time ``t`` (s since exercise start) is stamped
``start_time + t + clock_offset_s + clock_drift_ppm * 1e-6 * (t - t_first)`` on the camera's
local clock (``utc_offset_minutes`` east of UTC), to the file's 1 ms.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from irtrepro._logging import logger, progress_bar
from irtrepro.errors import OptionError
from irtrepro.manifest import dump_manifest, sha256_path
from irtrepro.synth.physiology import SynthConfig, simulate_study

__all__ = ["LabConfig", "LAB_LABELS", "generate_lab_study", "lab_frame_times"]

GENERATOR_NAME = "irtrepro.synth.lab"

#: The label map of the lab's annotations: LabelMe labels and COCO category names.
LAB_LABELS = {"L": "left_calf", "R": "right_calf", "vein": "vein", "perf": "perforator",
              "left calf": "left_calf", "right calf": "right_calf",
              "perforator": "perforator"}


@dataclass
class LabConfig:
    """Settings of the lab-shaped study.

    Attributes
    ----------
    physiology : SynthConfig
        Subjects, sessions, seed, planted effects (default 8 subjects).
    shape : (int, int)
        Camera frame (rows, columns).
    frame_interval_s : float
        Seconds between recorded frames.
    duration_s : float or None
        Seconds of exercise recorded by the camera (None: the whole session).
    lead_s : float
        Seconds the camera records before the treadmill starts (those frames show the runner
        standing: the first exercise second's skin temperatures, cadence 0).
    clock_offset_s : float
        Camera clock minus the true clock at the first frame, s.
    clock_drift_ppm : float
        Camera clock rate error, parts per million (positive: the camera clock runs fast).
    utc_offset_minutes : int
        The camera's (and the lab's) local time zone, minutes east of UTC.
    annotated_per_subject : int
        Frames annotated per subject, spread evenly over all its sessions' frames.
    camera : dict
        Emissivity, reflected temperature (degC) and distance (m) set on the camera.
    kinds : tuple of str
        Non-camera files written per session (``cpet``, ``hr``, ``core``).
    """

    physiology: SynthConfig = field(default_factory=lambda: SynthConfig(n_subjects=8))
    shape: tuple[int, int] = (480, 640)
    frame_interval_s: float = 60.0
    duration_s: float | None = 600.0
    lead_s: float = 60.0
    clock_offset_s: float = 47.0
    clock_drift_ppm: float = 30.0
    utc_offset_minutes: int = 60
    annotated_per_subject: int = 25
    camera: dict = field(default_factory=lambda: {"emissivity": 0.98,
                                                  "reflected_temperature": 22.0,
                                                  "distance": 1.5})
    kinds: tuple[str, ...] = ("cpet", "hr", "core")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["physiology"] = self.physiology.to_dict()
        d["shape"] = list(self.shape)
        d["kinds"] = list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LabConfig:
        d = dict(d)
        phys = SynthConfig.from_dict(d.pop("physiology", {"n_subjects": 8}))
        for k in ("shape", "kinds"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(physiology=phys, **d)


def lab_frame_times(truth_end_s: float, cfg: LabConfig) -> np.ndarray:
    """True session times (s since exercise start) of a session's frames.

    ``truth_end_s`` is the session's last time with thermal truth; frames run from
    ``-lead_s`` every ``frame_interval_s`` to ``min(duration_s, truth_end_s)``.
    """
    end = truth_end_s if cfg.duration_s is None else min(float(cfg.duration_s), truth_end_s)
    return np.arange(-float(cfg.lead_s), end + 1e-9, float(cfg.frame_interval_s))


def _check(cfg: LabConfig) -> None:
    if not cfg.frame_interval_s > 0:
        raise OptionError(f"frame_interval_s={cfg.frame_interval_s!r}; expected > 0 s")
    if cfg.lead_s < 0:
        raise OptionError(f"lead_s={cfg.lead_s!r}; expected >= 0 s")
    if cfg.duration_s is not None and not cfg.duration_s > 0:
        raise OptionError(f"duration_s={cfg.duration_s!r}; expected > 0 s or None")
    for name in ("frame_interval_s", "lead_s"):
        v = float(getattr(cfg, name))
        if v != round(v):
            raise OptionError(f"{name}={v!r}; expected whole seconds (the truth is on a 1 s "
                              "grid)")
    if cfg.annotated_per_subject < 0:
        raise OptionError(f"annotated_per_subject={cfg.annotated_per_subject!r}; expected >= 0")


def _aware(start: _dt.datetime, cfg: LabConfig) -> _dt.datetime:
    return start.replace(tzinfo=_dt.timezone(_dt.timedelta(minutes=int(cfg.utc_offset_minutes))))


def _pad_before_exercise(ts: xr.Dataset, lead_s: float) -> xr.Dataset:
    """The truth with ``lead_s`` seconds before its first time: standing still (cadence 0),
    the skin at its first values."""
    t = ts.time.values.astype(float)
    if lead_s <= 0:
        return ts
    pre = np.arange(t[0] - lead_s, t[0], 1.0)
    out = ts.reindex(time=np.concatenate([pre, t]), method="bfill")
    out["cadence"] = out["cadence"].where(out.time >= t[0], 0.0)
    return out


def generate_lab_study(out: str | os.PathLike, config: LabConfig | None = None, *,
                       manifest_path: str | os.PathLike | None = None,
                       progress: bool | None = None, n_jobs: int | None = None,
                       subjects: list[str] | None = None) -> Path:
    """Simulate the study and write it the way a lab has it (SEQ files, sparse annotations).

    Parameters
    ----------
    out : path-like
        Data folder (created).
    config : LabConfig, optional
        Default: 8 subjects x 3 sessions, 640x480 frames every 60 s over the first 600 s of
        exercise plus 60 s before it, camera clock +47 s and +30 ppm, 25 annotated frames per
        subject.
    manifest_path : path-like, optional
        Default ``out/manifest.yaml``; paths in it are relative to its folder.
    progress : bool or None
        Progress bar.
    n_jobs : int, optional
        Sessions written in parallel processes (default: the CPU count); the files are
        identical for any ``n_jobs``.
    subjects : list of str, optional
        Write only these subjects (files byte-identical to the full study's).

    Returns
    -------
    Path
        The manifest written. Its thermal entries are ``flir-seq`` files; ``generator.config``
        holds the planted clock offset and drift.
    """
    from irtrepro.study import save_study
    from irtrepro.synth.annotations import write_label_map
    from irtrepro.synth.study import (
        GeneratorConfig,
        _subject_scalars,
        generator_environment,
        session_start,
    )

    cfg = config or LabConfig()
    _check(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = Path(manifest_path) if manifest_path else out / "manifest.yaml"
    mroot = manifest_path.resolve().parent
    phys = cfg.physiology
    truth = simulate_study(phys)
    truth_dir = out / "derivatives" / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    tr = truth.copy()
    tr.attrs.pop("created", None)
    save_study(tr, truth_dir / "truth.nc", validate=False)
    (truth_dir / "truth.json").write_text(json.dumps(json.loads(truth.attrs["truth"]),
                                                     indent=2, sort_keys=True) + "\n")
    labels_path = write_label_map(out / "annotations" / "labels.yaml", LAB_LABELS)

    def rel(p: Path) -> str:
        return os.path.relpath(p.resolve(), mroot).replace(os.sep, "/")

    all_ids = [str(v) for v in truth.subject.values]
    if subjects is not None:
        unknown = sorted(set(subjects) - set(all_ids))
        if unknown:
            raise OptionError(f"subjects={unknown!r} not in the synthetic study; it has {all_ids}")
    order: dict[int, list[str]] = {}
    for _sid, _p, day in phys.sessions:
        order.setdefault(day, []).append(_sid)
    other = GeneratorConfig(physiology=phys, kinds=tuple(cfg.kinds), camera=dict(cfg.camera))
    jobs = []
    for i, sub in enumerate(all_ids):
        if subjects is not None and sub not in subjects:
            continue
        subj = {"id": sub, "sex": str(truth.sex.values[i]), "age": int(truth.age.values[i]),
                "body_mass": float(truth.body_mass.values[i])}
        per_session = []
        for j, (sid, _p, _day) in enumerate(phys.sessions):
            ts = _subject_scalars(truth, truth.sel(subject=sub, session=sid), sub)
            valid = np.isfinite(ts.tnv.isel(side=0).values)
            per_session.append((j, sid, ts, lab_frame_times(float(ts.time.values[valid][-1]),
                                                            cfg)))
        total = sum(len(p[3]) for p in per_session)
        k = int(cfg.annotated_per_subject)
        if k > total:
            raise OptionError(f"annotated_per_subject={k} but subject {sub} has only {total} "
                              f"frames ({len(per_session)} sessions); record more frames "
                              "(duration_s, frame_interval_s) or annotate fewer")
        chosen = set(np.unique(np.round(np.linspace(0, total - 1, k)).astype(int)).tolist()) \
            if k else set()
        first = 0
        for j, sid, ts, times in per_session:
            ann = sorted(c - first for c in chosen if first <= c < first + len(times))
            first += len(times)
            day = phys.sessions[j][2]
            jobs.append((cfg, other, ts, i, j, sub, subj,
                         session_start(i, day, order[day].index(sid)), out, mroot, times, ann))
    n_jobs = max(1, min(int(n_jobs or os.cpu_count() or 1), len(jobs)))
    if n_jobs > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as pool:
            results = list(progress_bar(pool.map(_write_lab_session, jobs), progress,
                                        desc="lab study", total=len(jobs)))
    else:
        results = [_write_lab_session(job) for job in progress_bar(jobs, progress,
                                                                   desc="lab study")]
    entries: dict[str, list] = {}
    sessions_truth = []
    for sub, entry, st in results:
        entries.setdefault(sub, []).append(entry)
        sessions_truth.append(st)
    subjects_yaml = []
    for i, sub in enumerate(all_ids):
        if sub not in entries:
            continue
        subjects_yaml.append({
            "id": sub, "viat": float(truth.viat.values[i]), "age": int(truth.age.values[i]),
            "sex": str(truth.sex.values[i]), "body_mass": float(truth.body_mass.values[i]),
            "sessions": entries[sub]})
    lab_truth = {
        "camera_clock": {
            "offset_s": float(cfg.clock_offset_s), "drift_ppm": float(cfg.clock_drift_ppm),
            "lead_s": float(cfg.lead_s), "utc_offset_minutes": int(cfg.utc_offset_minutes),
            "definition": "camera stamp = session start_time + t + offset_s + drift_ppm * 1e-6 "
                          "* (t - t of the first frame), t = true s since exercise start"},
        "labels": rel(labels_path),
        "sessions": sessions_truth,
    }
    (truth_dir / "lab.json").write_text(json.dumps(lab_truth, indent=1) + "\n")
    manifest = {
        "study": {"name": "irtrepro-lab-demo",
                  "description": "Synthetic study written as a lab has it: FLIR SEQ files with "
                                 "an offset camera clock, sparse LabelMe/COCO annotations in "
                                 "annotations/ (irtrepro.synth.lab); planted clock in "
                                 "generator.config and derivatives/truth/lab.json."},
        "camera": dict(cfg.camera),
        "grid": {"step_s": 1.0},
        "generator": {"name": GENERATOR_NAME, "seed": phys.seed, "out": rel(out),
                      "truth": rel(truth_dir / "truth.nc"), "config": cfg.to_dict(),
                      "environment": generator_environment()},
        "subjects": subjects_yaml,
    }
    dump_manifest(manifest, manifest_path)
    logger.info("lab study: %d subject(s), %d session(s) -> %s", len(subjects_yaml),
                len(results), manifest_path)
    return manifest_path


def _write_lab_session(job) -> tuple[str, dict, dict]:
    """Write one session (SEQ, annotations, masks, other devices); (subject, entry, truth)."""
    from irtrepro.synth.annotations import write_coco, write_labelme
    from irtrepro.synth.exports.flir import write_flir_seq
    from irtrepro.synth.study import _truth_path, _write_mask_store, _write_session
    from irtrepro.synth.thermogram import render_session

    cfg, other, ts, i, j, sub, subj, start, out, mroot, times, ann = job
    sid = cfg.physiology.sessions[j][0]

    def rel(p: Path) -> str:
        return os.path.relpath(p.resolve(), mroot).replace(os.sep, "/")

    _, entry = _write_session((other, ts, i, j, sub, subj, start, out, mroot))
    valid = np.isfinite(ts.tnv.isel(side=0).values)
    tsv = _pad_before_exercise(ts.isel(time=valid), float(cfg.lead_s))
    tsv = tsv.sel(time=slice(times[0], times[-1]))
    rendered = render_session(tsv, seed=cfg.physiology.seed, shape=tuple(cfg.shape),
                              frame_interval_s=float(cfg.frame_interval_s),
                              emissivity=cfg.camera.get("emissivity", 0.98),
                              ambient=cfg.camera.get("reflected_temperature", 22.0))
    t_true = rendered.time.values.astype(float)
    if not np.allclose(t_true, times):
        raise AssertionError("lab frame times disagree with the renderer's")  # a bug, not input
    t_cam = t_true + cfg.clock_offset_s + cfg.clock_drift_ppm * 1e-6 * (t_true - t_true[0])
    base = out / f"sub-{sub}" / f"ses-{sid}"
    stem = f"sub-{sub}_ses-{sid}"
    seq = base / "thermal" / f"{stem}_thermal.seq"
    seq.parent.mkdir(parents=True, exist_ok=True)
    aware = _aware(start, cfg)
    write_flir_seq(seq, rendered["frames"].values, t_cam, start_time=aware,
                   emissivity=cfg.camera.get("emissivity", 0.98),
                   reflected_temperature=cfg.camera.get("reflected_temperature", 22.0),
                   atmospheric_temperature=cfg.camera.get("reflected_temperature", 22.0),
                   object_distance=cfg.camera.get("distance", 1.5))
    files = dict(entry["files"])
    files["thermal"] = {"path": rel(seq), "format": "flir-seq", "sha256": sha256_path(seq)}
    entry["files"] = files
    masks = _truth_path(base, f"{stem}_masks.zarr")
    _write_mask_store(masks, rendered)
    ann_root = out / "annotations"
    lm = ann_root / "labelme" / stem
    coco = ann_root / "coco" / f"{stem}.json"
    if ann:
        roi = rendered["roi"].values[ann]
        ves = rendered["vessels"].values[ann]
        write_labelme(lm, roi, ves, ann)
        coco.parent.mkdir(parents=True, exist_ok=True)
        write_coco(coco, roi, ves, ann)
    first_cam = aware + _dt.timedelta(seconds=float(np.round(t_cam[0], 3)))
    truth = {"subject": sub, "session": sid, "thermal": rel(seq), "masks": rel(masks),
             "labelme": rel(lm) if ann else None, "coco": rel(coco) if ann else None,
             "annotated_frames": [int(a) for a in ann],
             "exercise_start": aware.isoformat(),
             "first_frame_camera_clock": first_cam.isoformat(timespec="milliseconds"),
             "frame_time_true_s": [float(v) for v in t_true],
             "frame_time_camera_s": [round(float(v), 3) for v in t_cam]}
    return sub, entry, truth
