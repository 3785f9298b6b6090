"""Keypoint benchmark: the full comparison table (baseline, ViT-like / CNN / MobileNetV3-Small
students), a beta sweep and cadence from held-out thermal running clips. Prints figures only.

Usage: ``python benchmarks/bench_keypoints.py [--published]`` (the published 256x192 setting is
slow on CPU).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from irtrepro.keypoints import train as T
from irtrepro.keypoints.gait import cadence_from_ankles
from irtrepro.synth.pose import render_running_clip


def main() -> None:
    torch.set_num_threads(2)
    cfg = T.KeypointConfig.published() if "--published" in sys.argv else T.KeypointConfig()
    t0 = time.perf_counter()
    res = T.run_experiment(cfg, students=("mobilenetv3", "cnn", "vit"),
                           betas=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0), keep_models=True)
    print(T.summarise(res["table"]).to_string(index=False))
    if len(res["beta"]):
        print(res["beta"].groupby("beta")[["AP", "AP50", "AP75"]].mean().to_string())
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
    print({k: round(v, 1) for k, v in res["timings"].items()},
          f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
