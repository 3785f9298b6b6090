"""Thermal pipeline throughput: inference, metric extraction, frame -> metrics; peak memory.

Prints figures; asserts nothing. Run: ``python benchmarks/bench_thermal_pipeline.py``
(``--roi-model``/``--vessel-model`` checkpoints; by default the newest trained ones under
``data/cache/models/vision``, else untrained networks of the default architecture, which cost
the same per pixel but give the vessel model random calf boxes).

Threads: torch uses 2 (the machine's cores); figures depend on machine load.
Peak memory of a 10^4-frame session is measured in a fresh subprocess that streams the
frames and masks from a zarr store on disk through :func:`irtrepro.features.extract_store`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]


def truth(n: int) -> xr.Dataset:
    t = np.arange(n, dtype=float)
    two = lambda a: np.stack([a, a + 0.1], 1)  # noqa: E731
    return xr.Dataset({"tnv": (("time", "side"), two(31.5 + 0 * t)),
                       "tv": (("time", "side"), two(32.5 + 0 * t)),
                       "tp": (("time", "side"), two(33.0 + 0 * t)),
                       "tnv_sd": (("time", "side"), two(0.4 + 0 * t)),
                       "tv_sd": (("time", "side"), two(0.3 + 0 * t)),
                       "tp_sd": (("time", "side"), two(0.3 + 0 * t)),
                       "cadence": (("time",), 168 + 0 * t)},
                      coords={"time": t, "side": ["left", "right"], "subject": "B01",
                              "session": "A"})


def rate(fn, n: int, repeat: int = 2) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def checkpoints(roi_path: str | None, ves_path: str | None):
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    found = {}
    for task, given in (("roi", roi_path), ("vessels", ves_path)):
        path = Path(given) if given else None
        if path is None:
            cands = sorted((ROOT / "data" / "cache" / "models" / "vision").rglob(f"{task}_*.pt"),
                           key=lambda p: p.stat().st_mtime)
            path = cands[-1] if cands else None
        if path is not None:
            found[task] = (Checkpoint.load(path, task=task), str(path))
        else:
            ck = Checkpoint(task=task, classes=TASK_CLASSES[task],
                            upsample=2 if task == "vessels" else 1)
            ck.state_dict = ck.build().state_dict()
            found[task] = (ck, "untrained (default architecture)")
    return found


def _hwm_mib() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited
    from the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(store: str) -> None:
    """Run in a fresh process: stream a store through extraction, print peak RSS."""
    from irtrepro.features.extract import extract_store
    from irtrepro.io.thermal import open_frame_store

    n = open_frame_store(store)["frames"].shape[0]
    before = _hwm_mib()
    t0 = time.perf_counter()
    out = extract_store(store, chunk_frames=256)
    dt = time.perf_counter() - t0
    peak = _hwm_mib()
    print(f"  extraction {dt:.1f} s ({n / dt:.0f} frames/s), {out.sizes['time']} seconds out; "
          f"peak RSS {peak:.0f} MiB (after imports {before:.0f} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roi-model")
    ap.add_argument("--vessel-model")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    ap.add_argument("--memory-only", action="store_true", help="only the 10^4-frame memory run")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    import dask.array as da
    import torch

    from irtrepro.features import compute_features
    from irtrepro.io.thermal import frames_dataarray, write_frames
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.infer import predict_labels, predict_masks

    torch.set_num_threads(2)
    cks = checkpoints(args.roi_model, args.vessel_model)
    roi_ck, ves_ck = cks["roi"][0], cks["vessels"][0]
    models = tuple(ck.build().to(memory_format=torch.channels_last) for ck in (roi_ck, ves_ck))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu")
    for task in ("roi", "vessels"):
        ck = cks[task][0]
        print(f"  {task}: {cks[task][1]} (encoder {ck.encoder}, downsample {ck.downsample}, "
              f"upsample {getattr(ck, 'upsample', 1)})")
    for shape, n_feat, n_inf in (() if args.memory_only else
                                 (((120, 160), 1024, 96), ((480, 640), 64, 8))):
        ds = render_session(truth(n_feat * 5), shape=shape, seed=0, frame_interval_s=5)
        f, r, v = ds.frames.values, ds.roi.values, ds.vessels.values
        fps_feat = rate(lambda f=f, r=r, v=v: compute_features(f, r, v), len(f))
        fi = f[:n_inf]
        fps_roi = rate(lambda fi=fi: predict_labels(roi_ck, fi, model=models[0]), n_inf)
        fps_inf = rate(lambda fi=fi: predict_masks(fi, roi_ck, ves_ck, models=models), n_inf)

        def whole(fi=fi):
            pr, pv = predict_masks(fi, roi_ck, ves_ck, models=models)
            compute_features(fi, pr, pv)
        fps_all = rate(whole, n_inf)
        torch.set_num_threads(1)
        fps_inf1 = rate(lambda fi=fi: predict_masks(fi, roi_ck, ves_ck, models=models), n_inf)
        torch.set_num_threads(2)
        print(f"{shape[1]}x{shape[0]}: metric extraction {fps_feat:7.0f} frames/s | inference "
              f"(ROI + vessels) {fps_inf:6.1f} frames/s (ROI alone {fps_roi:6.1f}) | frame -> "
              f"metrics {fps_all:6.1f} frames/s; inference with 1 thread {fps_inf1:6.1f} "
              f"frames/s (x2 processes = what make report uses on 2 cores)")
        if shape == (120, 160):
            for fam, names in (("region statistics", ["tnv_mean"]),
                               ("connected components", ["vein_count"]),
                               ("quality flags", ["valid"])):
                fps = rate(lambda f=f, r=r, v=v, names=names:
                           compute_features(f, r, v, features=names), len(f))
                print(f"  {fam:22s} alone {fps:7.0f} frames/s")
            prof = cProfile.Profile()
            prof.enable()
            compute_features(f, r, v)
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(8)
            print("where the metric time goes (160x120, tottime):")
            print("\n".join(line for line in s.getvalue().splitlines()[6:18] if line.strip()))
    # a 10^4-frame session on disk (500 rendered frames repeated), streamed in a fresh process
    ds = render_session(truth(500 * 5), seed=1, frame_interval_s=5)
    reps = 20
    chunks = (64, 120, 160)
    frames = da.concatenate([da.from_array(ds.frames.values, chunks=chunks)] * reps)
    roi = da.concatenate([da.from_array(ds.roi.values, chunks=chunks)] * reps)
    ves = da.concatenate([da.from_array(ds.vessels.values, chunks=chunks)] * reps)
    t = np.arange(frames.shape[0]) * 0.2
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "session.zarr"
        write_frames(store, frames_dataarray(frames, t), masks={"roi": roi, "vessels": ves},
                     progress=False)
        print(f"10^4-frame session ({frames.shape[0]} frames 160x120 on disk; in memory the "
              f"frames alone would take {frames.nbytes / 2**20:.0f} MiB as float32):")
        subprocess.run([sys.executable, __file__, "--memory-child", str(store)], check=True)


if __name__ == "__main__":
    main()
