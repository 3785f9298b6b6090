"""Metric extraction throughput against a plain numpy per-region loop; peak memory vs length.

Prints figures; asserts nothing. Run: ``python benchmarks/bench_extract.py`` (``--quick`` for
fewer frames). For each frame size (160x120, 640x480, 1024x768) it times, in the same run and
on the same synthetic frames and masks (best of ``--repeat``):

- the region statistics (all 44 region features) by :func:`irtrepro.features.compute_features`
  (the histogram path), by its exact sort path (``exact=True``), and by the plain numpy loop
  :func:`irtrepro.features.reference.reference_region_stats`, with the ratios;
- every registered feature (regions, connected components, quality flags).

Peak resident memory of extracting a 1,000- and a 4,000-frame 160x120 session streamed from a
zarr store on disk (:func:`irtrepro.features.extract.extract_store`) is measured in fresh
subprocesses. Numpy runs single-threaded; figures depend on machine load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def frames(shape: tuple[int, int], n_render: int, reps: int, seed: int = 0):
    """``n_render`` rendered frames (+ masks) repeated ``reps`` times, as float32 / uint8."""
    from irtrepro.synth.thermogram import render_session

    ds = render_session(truth(n_render * 5), shape=shape, seed=seed, frame_interval_s=5)
    f = np.tile(ds.frames.values.astype(np.float32), (reps, 1, 1))
    r = np.tile(ds.roi.values.astype(np.uint8), (reps, 1, 1))
    v = np.tile(ds.vessels.values.astype(np.uint8), (reps, 1, 1))
    return f, r, v


def rate(fn, n: int, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(store: str) -> None:
    """Run in a fresh process: stream a store through extraction, print peak RSS."""
    from irtrepro.features.extract import extract_store
    from irtrepro.io.thermal import open_frame_store

    n = open_frame_store(store)["frames"].shape[0]
    before = _hwm_mib()
    t0 = time.perf_counter()
    extract_store(store, chunk_frames=256)
    dt = time.perf_counter() - t0
    print(f"  {n:5d} frames: peak RSS {_hwm_mib():6.0f} MiB (after imports {before:.0f} MiB), "
          f"{dt:.1f} s incl. reading the store ({n / dt:.0f} frames/s)")


def memory(n_frames: list[int]) -> None:
    import dask.array as da

    from irtrepro.io.thermal import frames_dataarray, write_frames

    f, r, v = frames((120, 160), 250, 1, seed=1)
    print("peak memory, 160x120 session streamed from a zarr store (fresh process each):")
    for n in n_frames:
        reps = -(-n // len(f))
        chunks = (64, 120, 160)
        arrs = [da.concatenate([da.from_array(a, chunks=chunks)] * reps)[:n] for a in (f, r, v)]
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "session.zarr"
            write_frames(store, frames_dataarray(arrs[0], np.arange(n) * 0.2),
                         masks={"roi": arrs[1], "vessels": arrs[2]}, progress=False)
            subprocess.run([sys.executable, __file__, "--memory-child", str(store)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames (noisier figures)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="160x120,640x480,1024x768",
                    help="frame sizes WxH to time, comma-separated (default all three)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    from irtrepro.features import compute_features, feature_names
    from irtrepro.features.reference import reference_region_stats

    region = feature_names("region")
    q = 4 if args.quick else 1
    # (shape, rendered frames, repeats for the fast paths, frames for the plain loop)
    sizes = (((120, 160), 128, 8 // q, 64 // q), ((480, 640), 16, 4 // q, 8 // q),
             ((768, 1024), 8, max(1, 4 // q), 4 // q))
    wanted = {tuple(int(x) for x in s.split("x"))[::-1] for s in args.sizes.split(",")}
    print(f"numpy {np.__version__}; best of {args.repeat}; frames/s (higher is better)")
    for shape, n_render, reps, n_loop in (s for s in sizes if s[0] in wanted):
        f, r, v = frames(shape, n_render, reps)
        n = len(f)
        m = n_loop
        fast = rate(lambda f=f, r=r, v=v: compute_features(f, r, v, features=region), n,
                    args.repeat)
        exact = rate(lambda f=f, r=r, v=v: compute_features(f, r, v, features=region,
                                                            exact=True), n, args.repeat)
        loop = rate(lambda f=f, r=r, v=v, m=m: reference_region_stats(f[:m], r[:m], v[:m]), m,
                    args.repeat)
        every = rate(lambda f=f, r=r, v=v: compute_features(f, r, v), n, args.repeat)
        calf = (r > 0).mean()
        print(f"{shape[1]}x{shape[0]} ({n} frames, calves {100 * calf:.0f} % of the frame):")
        print(f"  region statistics: histogram {fast:8.0f} | exact sort {exact:8.0f} | plain "
              f"numpy loop {loop:6.1f}  -> histogram / loop x{fast / loop:.0f}, "
              f"histogram / sort x{fast / exact:.1f}")
        print(f"  every feature (regions + components + quality flags) at {shape[1]}x{shape[0]}: "
              f"{every:8.0f} frames/s  -> every feature / plain numpy region loop "
              f"x{every / loop:.0f}")
    if not args.no_memory:
        memory([1000, 4000])


if __name__ == "__main__":
    main()
