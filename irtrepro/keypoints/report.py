"""The keypoint part of ``make report``: :func:`run_for_report`."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro._logging import logger

#: What the default report trains (sized for 2 CPU cores; see docs/keypoints.md). The full
#: table (ViT-like and CNN students) and the beta sweep run with ``students``/``betas`` set, e.g.
#: from ``benchmarks/bench_keypoints.py --out`` or ``irtrepro keypoints train --students
#: mobilenetv3,cnn,vit --betas 0,0.2,0.4,0.6,0.8,1``. ``run_for_report`` reads these two at call
#: time, so a script can set them before ``irtrepro.report`` runs.
REPORT_STUDENTS: tuple[str, ...] = ("mobilenetv3",)
REPORT_BETAS: tuple[float, ...] = ()


BETA_CAPTION = ("Held-out thermal AP of the MobileNetV3-Small student against beta in "
                "beta*L1(latent) + (1-beta)*AWing(heatmaps) (COCO OKS AP, pycocotools); mean "
                "over folds (lines), each fold (faint dots); dashed: the published beta.")


def plot_beta_sweep(beta: pd.DataFrame, *, beta_default: float | None = 0.4):
    """Figure of a beta sweep: AP / AP50 / AP75 against beta (fold means and single folds).

    Parameters
    ----------
    beta : pandas.DataFrame
        One row per (beta, fold) with ``AP``, ``AP50``, ``AP75``: the ``beta`` table of
        :func:`irtrepro.keypoints.train.run_experiment`.
    beta_default : float, optional
        Marked by a dashed line (the setting of the other rows).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    m = beta.groupby("beta")[["AP", "AP50", "AP75"]].mean().reset_index()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for col, c in (("AP", "C0"), ("AP50", "C1"), ("AP75", "C2")):
        ax.plot(beta["beta"], beta[col], ".", color=c, alpha=0.3, ms=5)
        ax.plot(m["beta"], m[col], "o-", color=c, label=col)
    if beta_default is not None:
        ax.axvline(beta_default, color="k", ls="--", lw=0.8)
    ax.set_xlabel("beta, weight of the latent L1 term (1)")
    ax.set_ylabel("held-out thermal AP (1)")
    ax.set_xlim(-0.05, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _experiment_cached(cfg, cache_dir: Path, students, betas, progress, workers: int = 1):
    from irtrepro.synth import pose_corpus as train

    src = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")) + [Path(__file__).parents[1] / "synth" / "pose.py"]:
        src.update(f.read_bytes())
    key = hashlib.sha256(json.dumps([cfg.to_dict(), list(students), list(betas),
                                     src.hexdigest()], sort_keys=True, default=str).encode()
                         ).hexdigest()[:16]
    path = Path(cache_dir) / f"keypoints-{key}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh), True
        except Exception:  # unreadable cache: recompute, never trust
            path.unlink(missing_ok=True)
    res = train.run_experiment(cfg, students=students, baseline=True, betas=betas,
                               progress=progress, keep_models=True, workers=workers)
    cs = res["corpus"]
    keep = np.flatnonzero(np.isin(cs.subject, sorted(set(cs.subject))[-1:]))[:200:25]
    small = {k: res[k] for k in ("table", "beta", "timings", "history", "config")}
    small["models"] = res["models"]
    small["examples"] = {"frames": cs.frames[keep], "keypoints": cs.keypoints[keep]}
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(small, fh)
    return small, False


def _cadence_for_sessions(manifest, model, cfg, progress):
    """Cadence per session and time from the manifest's pose clips; truth keypoints compared."""
    from irtrepro.keypoints.gait import cadence_from_ankles
    from irtrepro.keypoints.train import predict_frames
    from irtrepro.synth.pose import read_pose_clip

    rows, notes = [], []
    for s in manifest.sessions:
        files = [f for f in s.files.values() if f.kind == "pose"]
        truth = [f for f in s.files.values() if f.kind == "pose_keypoints"]
        for fe in files:
            try:
                clip = read_pose_clip(fe.path)
            except Exception as exc:  # a bad file is reported and left out
                notes.append(f"{s.subject}/{s.session}: {fe.path.name} unreadable ({exc})")
                continue
            pred = predict_frames(model, clip["thermal"], cfg, all_people=False)
            kp = np.full((len(pred), 17, 3), np.nan)
            for i, people in enumerate(pred):
                if people:
                    kp[i] = people[0]["keypoints"]
            fps = clip["fps"]
            est = cadence_from_ankles(kp, fps)
            t_true = np.nan
            for tf in truth:
                try:
                    from irtrepro.keypoints.coco import annotations_array, read_coco_keypoints

                    gt = read_coco_keypoints(tf.path)
                    k, _ = annotations_array(gt)
                    if len(k) == len(kp):
                        kk = np.where(k[..., 2:3] > 0, k, np.nan)
                        t_true = cadence_from_ankles(kk, fps)["cadence"]
                except Exception as exc:
                    notes.append(f"{s.subject}/{s.session}: truth {tf.path.name}: {exc}")
            rows.append({"subject": s.subject, "session": s.session, "file": fe.path.name,
                         "t_start": float(clip["time"][0]), "t_end": float(clip["time"][-1]),
                         "n_frames": len(kp),
                         "frames_with_person": int(sum(bool(p) for p in pred)),
                         "cadence": est["cadence"], "cadence_truth_keypoints": t_true,
                         "periodicity": est["periodicity"], "reason": est["reason"]})
    return pd.DataFrame(rows), notes


def run_for_report(manifest, cache_dir: Path, *, seed: int = 0, progress=None, config=None,
                   students=None, betas=None):
    """Train or reuse the keypoint models, evaluate held-out subjects, measure cadence.

    Parameters
    ----------
    students, betas : sequence, optional
        Student encoders to compare and betas to sweep; None reads the module's
        ``REPORT_STUDENTS`` / ``REPORT_BETAS`` at call time (MobileNetV3-Small only, no sweep).

    Returns
    -------
    irtrepro.report.part.ReportPart
        Tables ``keypoints_ap`` (AP/AP50/AP75 per model, mean over folds, params, GFLOPs),
        ``keypoints_folds``, ``cadence``; figures ``keypoints_examples`` and (when computed)
        ``keypoints_beta``; ``study_vars`` with ``cadence`` (steps/min) on (subject, session,
        time) where pose clips exist, NaN elsewhere.
    """
    import torch
    import xarray as xr

    from irtrepro.keypoints.train import KeypointConfig, summarise
    from irtrepro.report.part import ReportPart

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    if isinstance(config, dict):
        config = KeypointConfig(**{"seed": seed, **config})
    cfg = config or KeypointConfig(seed=seed)
    students = REPORT_STUDENTS if students is None else students
    betas = REPORT_BETAS if betas is None else betas
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # folds in parallel single-threaded processes: 1.5x faster on 2 cores than 2 threads
    workers = min(2, os.cpu_count() or 1)
    res, reused = _experiment_cached(cfg, Path(cache_dir), tuple(students), tuple(betas), progress,
                                     workers)
    timings["train+evaluate" + (" (cached)" if reused else "")] = time.perf_counter() - t0
    part = ReportPart(name="keypoints", title="Keypoints in 80x60 thermal frames and cadence")
    summ = summarise(res["table"])
    cap = (f"COCO keypoint AP/AP50/AP75 (pycocotools, OKS with the 17 COCO sigmas) on the thermal "
           f"frames of held-out synthetic subjects ({'leave-one-subject-out' if cfg.folds is None else f'{cfg.folds}-fold leave-subjects-out'}, "
           f"{cfg.n_subjects} subjects, {cfg.frames_per_subject} frames each, "
           f"{cfg.label_fraction:.0%} labelled). Teacher on RGB-like frames; students distilled "
           f"on paired frames without thermal labels (beta={cfg.beta}); baseline trained on the "
           f"thermal frames with the labels the teacher had. Crops {cfg.crop_hw[0]}x{cfg.crop_hw[1]}, "
           f"heatmaps {cfg.hm_hw[0]}x{cfg.hm_hw[1]}, deconv width {cfg.deconv_ch} (published: "
           f"256x192, 64x48, 256); teacher/baseline {cfg.teacher_epochs} epochs, students "
           f"{cfg.max_epochs}; flip test {'on' if cfg.flip_test else 'off'}. AP_run / AP_tug: "
           f"the running (from behind) and Timed Up and Go (side view) frames alone. FLOPs by "
           f"torch FlopCounterMode, one crop.")
    part.tables["keypoints_ap"] = (summ, cap)
    part.tables["keypoints_folds"] = (res["table"], "Per-fold results of the table above.")
    if len(res["beta"]):
        fig = plot_beta_sweep(res["beta"], beta_default=cfg.beta)
        part.figures["keypoints_beta"] = (fig, BETA_CAPTION)
        part.tables["keypoints_beta"] = (res["beta"], "beta sweep, per fold.")
    model = res["models"].get(f"student {cfg.student}")
    ex = res.get("examples")
    if model is not None and ex is not None and len(ex["frames"]):
        import matplotlib.pyplot as plt

        from irtrepro.keypoints.train import predict_frames
        from irtrepro.synth.pose import COCO_SKELETON

        pred = predict_frames(model, ex["frames"], cfg, all_people=False)
        n = min(6, len(pred))
        fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.2))
        for ax, fr, p, g in zip(np.atleast_1d(axes), ex["frames"], pred, ex["keypoints"], strict=False):
            ax.imshow(fr, cmap="inferno")
            lab = g[:, 2] > 0
            ax.plot(g[lab, 0], g[lab, 1], "c+", ms=4)
            if p:
                k = p[0]["keypoints"]
                for a, bb in COCO_SKELETON:
                    ax.plot(k[[a - 1, bb - 1], 0], k[[a - 1, bb - 1], 1], "w-", lw=0.8)
            ax.axis("off")
        fig.tight_layout()
        part.figures["keypoints_examples"] = (fig, "Held-out thermal frames (80x60): student "
                                              "skeleton (white), truth (cyan +).")
    # cadence on the study's pose clips
    study_vars = None
    if model is not None:
        t = time.perf_counter()
        cad, notes = _cadence_for_sessions(manifest, model, cfg, progress)
        part.notes += notes
        timings["cadence"] = time.perf_counter() - t
        if len(cad):
            part.tables["cadence"] = (cad, "Cadence (steps/min) per pose clip from the student's "
                                      "ankle trajectories; cadence_truth_keypoints uses the "
                                      "ground-truth keypoints of the same clip.")
            subjects = sorted({s.subject for s in manifest.sessions})
            sessions = sorted({s.session for s in manifest.sessions})
            times = np.unique(np.concatenate([np.arange(np.floor(r.t_start), np.floor(r.t_end) + 1)
                                              for r in cad.itertuples()]))
            arr = np.full((len(subjects), len(sessions), len(times)), np.nan)
            for r in cad.itertuples():
                sel = (times >= np.floor(r.t_start)) & (times <= np.floor(r.t_end))
                arr[subjects.index(r.subject), sessions.index(r.session), sel] = r.cadence
            study_vars = xr.Dataset(
                {"cadence": (("subject", "session", "time"), arr,
                             {"units": "min-1", "long_name": "running cadence (steps/min) from "
                              "thermal keypoints",
                              "missing": "NaN where no pose clip covers the time or no "
                                         "periodic ankle motion was found"})},
                coords={"subject": subjects, "session": sessions, "time": times})
        else:
            part.notes.append("keypoints: no 'pose' files in the manifest; cadence not measured")
    part.study_vars = study_vars
    part.timings = {k: round(v, 2) for k, v in {**timings, **res["timings"]}.items()}
    if reused:
        logger.info("keypoints: reused cached models")
    return part
