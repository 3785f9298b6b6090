"""Thermal pipeline throughput: inference, metric extraction, frame -> metrics; peak memory.

Prints figures; asserts nothing. Run: ``python benchmarks/bench_thermal_pipeline.py``.
Threads: torch uses 2 (the machine's cores); numbers depend on machine load.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import resource
import time

import numpy as np
import xarray as xr


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


def main() -> None:
    import torch

    from irtrepro.features import compute_features
    from irtrepro.features.extract import extract_session
    from irtrepro.synth.thermogram import render_session
    from irtrepro.vision.infer import predict_masks
    from irtrepro.vision.models import TASK_CLASSES, Checkpoint

    torch.set_num_threads(2)
    roi_ck = Checkpoint(task="roi", classes=TASK_CLASSES["roi"], downsample=2)
    ves_ck = Checkpoint(task="vessels", classes=TASK_CLASSES["vessels"])
    roi_ck.state_dict = roi_ck.build().state_dict()
    ves_ck.state_dict = ves_ck.build().state_dict()
    models = (roi_ck.build(), ves_ck.build())
    print(f"torch threads {torch.get_num_threads()}, device cpu")
    for shape, n_feat, n_inf in (((120, 160), 512, 64), ((480, 640), 64, 8)):
        ds = render_session(truth(n_feat * 5), shape=shape, seed=0, frame_interval_s=5)
        f, r, v = ds.frames.values, ds.roi.values, ds.vessels.values
        fps_feat = rate(lambda f=f, r=r, v=v: compute_features(f, r, v), len(f))
        fi = f[:n_inf]
        fps_inf = rate(lambda fi=fi: predict_masks(fi, roi_ck, ves_ck, models=models), n_inf)

        def whole(fi=fi):
            pr, pv = predict_masks(fi, roi_ck, ves_ck, models=models)
            compute_features(fi, pr, pv)
        fps_all = rate(whole, n_inf)
        print(f"{shape[1]}x{shape[0]}: metric extraction {fps_feat:8.0f} frames/s | inference "
              f"{fps_inf:6.1f} frames/s | frame -> metrics {fps_all:6.1f} frames/s")
        if shape == (120, 160):
            prof = cProfile.Profile()
            prof.enable()
            compute_features(f, r, v)
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(6)
            print("where the metric time goes (160x120):")
            print("\n".join(line for line in s.getvalue().splitlines()[6:16] if line.strip()))
    # peak memory of a 10^4-frame session streamed through extraction (dask-backed frames)
    import dask.array as da

    ds = render_session(truth(500 * 5), seed=1, frame_interval_s=5)
    reps = 20
    frames = da.concatenate([da.from_array(ds.frames.values, chunks=(256, 120, 160))] * reps)
    roi = da.concatenate([da.from_array(ds.roi.values, chunks=(256, 120, 160))] * reps)
    ves = da.concatenate([da.from_array(ds.vessels.values, chunks=(256, 120, 160))] * reps)
    t = np.arange(frames.shape[0]) * 0.2
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = extract_session(frames, roi, ves, time=t, chunk_frames=256)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"10^4-frame session ({frames.shape[0]} frames 160x120, chunks of 256): extraction "
          f"{frames.shape[0] / dt:.0f} frames/s, {out.sizes['time']} seconds out; peak RSS "
          f"{after:.0f} MiB (before {before:.0f} MiB; frames themselves would be "
          f"{frames.nbytes / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
