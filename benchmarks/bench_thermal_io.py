"""Thermal I/O throughput and memory: prints figures, asserts nothing about time.

Usage: ``python benchmarks/bench_thermal_io.py [--shared DIR] [--repeat-long 100]``

1. Frames per second reading (decode to degC, all frames computed) and converting (read +
   write to the zarr frame store) for each format: FLIR SEQ, CSQ, radiometric JPEG, InfraTec
   IRB, and npy/tiff/csv/zarr stacks made from the SEQ's frames.
2. Peak memory while converting a SEQ recording ``--repeat-long`` times longer than the sample
   (its FFF frames concatenated into a temporary file), compared with converting the sample
   itself: with streaming, the peak must not grow with the length. Python-heap peaks from
   tracemalloc (numpy buffers included) and the process's peak RSS growth.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from irtrepro.io import flir, read  # noqa: E402
from irtrepro.io.thermal import write_frames  # noqa: E402


def _rate(fn, n_frames: int, min_time: float = 1.0) -> float:
    fn()  # warm up (imports, index cache)
    t0, reps = time.perf_counter(), 0
    while True:
        fn()
        reps += 1
        el = time.perf_counter() - t0
        if el >= min_time:
            return reps * n_frames / el


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "real-exports")
    ap.add_argument("--repeat-long", type=int, default=100)
    args = ap.parse_args()
    R = args.shared
    tmp = Path(tempfile.mkdtemp(prefix="bench_thermal_"))
    seq_da = read("thermal", R / "flir_SampleSEQ.seq")
    vals = seq_da.values
    np.save(tmp / "s.npy", vals)
    import tifffile

    tifffile.imwrite(tmp / "s.tif", np.round((vals + 273.15) * 100).astype(np.uint16))
    with open(tmp / "s.csv", "w") as fh:
        for i, f in enumerate(vals):
            fh.write(f"Frame {i + 1}\n")
            np.savetxt(fh, f, fmt="%.3f", delimiter=",")
    write_frames(tmp / "s.zarr", seq_da)
    cases = [
        ("flir-seq", R / "flir_SampleSEQ.seq", {}),
        ("flir-csq", R / "flir_SampleCSQ.csq", {}),
        ("flir-jpeg", R / "flir_IR_2412.jpg", {}),
        ("infratec-irb", R / "infratec_image_1024x768.irb", {}),
        ("npy", tmp / "s.npy", {"fps": 30.0}),
        ("tiff", tmp / "s.tif", {"fps": 30.0, "scale": 0.01, "offset": 0.0, "unit": "K"}),
        ("flir-csv", tmp / "s.csv", {"fps": 30.0}),
        ("zarr", tmp / "s.zarr", {}),
    ]
    print(f"{'format':<14}{'frame':>11}{'frames':>8}{'read fr/s':>12}{'convert fr/s':>14}")
    for fmt, path, opts in cases:
        da = read("thermal", path, fmt, **opts)
        n = da.sizes["frame"]

        def rd(path=path, fmt=fmt, opts=opts):
            return read("thermal", path, fmt, **opts).values

        def cv(path=path, fmt=fmt, opts=opts):
            write_frames(tmp / "out.zarr", read("thermal", path, fmt, **opts))

        print(f"{fmt:<14}{da.sizes['x']:>5}x{da.sizes['y']:<5}{n:>8}{_rate(rd, n):>12.1f}"
              f"{_rate(cv, n):>14.1f}", flush=True)

    # --- memory while converting a long recording ------------------------------------------
    data = (R / "flir_SampleSEQ.seq").read_bytes()
    runs = [("sample", R / "flir_SampleSEQ.seq")]
    for k in (args.repeat_long, 3 * args.repeat_long):
        long_seq = tmp / f"long{k}.seq"
        with open(long_seq, "wb") as fh:
            for _ in range(k):
                fh.write(data)
        n_long = 2 * k
        print(f"\n{k}x recording: {n_long} frames 640x480 ({long_seq.stat().st_size / 1e6:.0f} MB"
              f" on disk, {n_long * 640 * 480 * 4 / 1e6:.0f} MB as float32)")
        runs.append((f"{k}x longer", long_seq))
    for label, path in runs:
        for chunk in (64,):
            gc.collect()
            flir._CACHE.clear()
            rss0 = _rss_mb()
            tracemalloc.start()
            t0 = time.perf_counter()
            write_frames(tmp / "long.zarr", read("thermal", path), chunk_frames=chunk,
                         progress=False)
            el = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            nf = read("thermal", path).sizes["frame"]
            print(f"  convert {label:<18} chunk_frames={chunk}: {nf / el:7.1f} frames/s, "
                  f"peak traced {peak / 1e6:7.1f} MB, peak RSS growth "
                  f"{_rss_mb() - rss0:7.1f} MB")
    print(f"\n(temporary files in {tmp}; removed)")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
