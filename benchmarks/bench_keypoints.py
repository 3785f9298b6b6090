"""Keypoint benchmark: the full comparison table (baseline, ViT-like / CNN / MobileNetV3-Small
students), a beta sweep and cadence from held-out thermal running clips. Prints figures only.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_keypoints.py [--published] [--threads N]

``--published`` runs the published 256x192 setting (slow on CPU). ``--out DIR`` also writes
``ap_table.csv``, ``folds.csv``, ``beta_sweep.csv`` and the beta-sweep figure
``beta_sweep.png``/``.pdf`` there. ``--study MANIFEST`` also
measures cadence on the study's pose clips (student of the last fold) against the generator's
truth cadence (``generator.truth`` netCDF of a synthetic study). Torch uses ``--threads``
threads (default: ``OMP_NUM_THREADS``, else 2). The beta sweep reuses the MobileNetV3-Small
student row for beta = ``KeypointConfig.beta`` (the same model, same seed).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd
import torch

from irtrepro.keypoints import train as T
from irtrepro.keypoints.gait import cadence_from_ankles
from irtrepro.synth.pose import render_running_clip
from irtrepro.synth.pose_corpus import run_experiment

BETAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def study_cadence(manifest_path: str, model, cfg) -> None:
    """Cadence of every pose clip of a synthetic study: student and truth keypoints vs truth."""
    import xarray as xr

    from irtrepro.manifest import load_manifest
    from irtrepro.report.parts.keypoints import _cadence

    man = load_manifest(manifest_path)
    cad, notes = _cadence(man, model, cfg)
    with xr.open_dataset(man.root / man.generator["truth"]) as truth:
        tc = truth["cadence"].load()
    cad["truth"] = [float(tc.sel(subject=r.subject, session=r.session)
                          .sel(time=slice(r.t_start, r.t_end)).mean())
                    for r in cad.itertuples()]
    for col in ("cadence", "cadence_truth_keypoints"):
        err = (cad[col] - cad["truth"]).abs()
        print(f"study cadence from {col}: {int((err <= 2).sum())}/{len(err)} clips within 2 "
              f"steps/min, {int((err > 10).sum())} off by > 10, MAE {err.mean():.2f} steps/min")
    print(*notes, sep="\n")


def main() -> None:
    threads = int(os.environ.get("OMP_NUM_THREADS", 2))
    if "--threads" in sys.argv:
        threads = int(sys.argv[sys.argv.index("--threads") + 1])
    torch.set_num_threads(threads)
    pd.set_option("display.width", 200)
    cfg = T.KeypointConfig.published() if "--published" in sys.argv else T.KeypointConfig()
    t0, c0 = time.perf_counter(), time.process_time()
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1
    res = run_experiment(cfg, students=("mobilenetv3", "cnn", "vit"), betas=BETAS,
                         keep_models=True, workers=workers)
    print(cfg)
    print(T.summarise(res["table"]).round(3).to_string(index=False))
    print(res["table"][["model", "fold", "AP", "AP50", "AP75", "AP_run", "AP_tug"]]
          .round(3).to_string(index=False))
    if "--out" in sys.argv:
        from pathlib import Path

        import matplotlib

        matplotlib.use("Agg")
        from irtrepro.plots.keypoints import plot_beta_sweep

        out = Path(sys.argv[sys.argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        T.summarise(res["table"]).to_csv(out / "ap_table.csv", index=False)
        res["table"].to_csv(out / "folds.csv", index=False)
        if len(res["beta"]):
            res["beta"].to_csv(out / "beta_sweep.csv", index=False)
            fig = plot_beta_sweep(res["beta"], beta_default=cfg.beta)
            for ext in ("png", "pdf"):
                fig.savefig(out / f"beta_sweep.{ext}", dpi=150)
    if len(res["beta"]):
        print(res["beta"].groupby("beta")[["AP", "AP50", "AP75", "AP_run", "AP_tug"]].mean()
              .round(3).to_string())
    student = res["models"]["student mobilenetv3"]
    errs = []
    for k, cad in enumerate((150.0, 165.0, 180.0)):
        clip = render_running_clip(cad, 12.0, n_frames=300, fps=15.0, seed=100 + k,
                                   subject_id=f"B{k}", rgb=False)
        pred = T.predict_frames(student, clip.thermal, cfg, all_people=False)
        kp = np.stack([p[0]["keypoints"] if p else np.full((17, 3), np.nan) for p in pred])
        est = cadence_from_ankles(kp, clip.fps)["cadence"]
        errs.append(est - cad)
        print(f"cadence truth {cad:.1f}  estimated {est:.2f} steps/min")
    print(f"max |cadence error| {np.nanmax(np.abs(errs)):.2f} steps/min")
    if "--study" in sys.argv:
        study_cadence(sys.argv[sys.argv.index("--study") + 1], student, cfg)
    print({k: round(v, 1) for k, v in res["timings"].items()},
          f"total {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} CPU-s, "
          f"{threads} thread(s)")


if __name__ == "__main__":
    main()
