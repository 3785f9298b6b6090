"""Serial vs dask.distributed ``segment_store`` / ``extract_store``: time, peak memory, equality.

Usage: ``python benchmarks/bench_distributed.py [--frames 256 1024] [--size 160x120]
[--workers 2]``; prints one JSON line per case and asserts nothing.

Every case runs in its own child process. Peak memory is ``getrusage(RUSAGE_SELF).ru_maxrss``
of that child (the client; imports and models included) and, on the cluster, of each worker
process (asked of the workers at the end, so each worker's peak over the whole case). The
cluster is a LocalCluster of ``--workers`` single-threaded processes, started inside the case
(its start-up time is reported apart). Networks: the small untrained architectures of
``tests/vision/test_infer_chunked.py`` (cost, not quality, is measured); frames: two warm
calves on a cool wall (:mod:`_segment_frames`), 64-frame zarr chunks. ``equal`` says whether
the cluster's masks (or metrics) equal the serial run's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _case(step: str, store: Path, workers: int) -> dict:
    import torch

    from irtrepro.features.extract import extract_store
    from irtrepro.vision.infer import segment_store
    from tests.vision.test_infer_chunked import _checkpoints

    torch.set_num_threads(1)
    cks = _checkpoints(0)
    out: dict = {"step": step, "workers": workers, "store": store.name}
    cluster = client = None
    if workers:
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
        out["cluster_start_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    if step == "segment":
        segment_store(store, *cks, batch_size=32, threads=1, progress=False,
                      dev=torch.device("cpu"), scheduler=client)
    else:
        ds = extract_store(store, chunk_frames=256, scheduler=client)
        ds.to_netcdf(store.with_suffix(f".{workers}.nc"), engine="h5netcdf")
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    out["client_peak_mb"] = round(_rss_mb(), 1)
    if client is not None:
        peaks = client.run(_rss_mb)
        out["worker_peak_mb"] = sorted(round(v, 1) for v in peaks.values())
        client.close()
        cluster.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # child: step store workers
    a = ap.parse_args()
    if a.case:
        print(json.dumps(_case(a.case[0], Path(a.case[1]), int(a.case[2]))))
        return
    from _segment_frames import lazy_frames

    from irtrepro.io.thermal import open_frame_store
    from irtrepro.io.zarr_store import write_frames

    w, h = (int(v) for v in a.size.split("x"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(json.dumps({"load_avg_1min": os.getloadavg()[0], "cores": os.cpu_count()}))
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.frames:
            stores = {k: Path(tmp) / f"n{n}_{k}.zarr" for k in (0, a.workers)}
            for s in stores.values():
                write_frames(s, lazy_frames(n, h, w), chunk_frames=64)
            for step in ("segment", "extract"):
                for k, s in stores.items():
                    r = subprocess.run([sys.executable, __file__, "--case", step, str(s),
                                        str(k)], env=env, capture_output=True, text=True,
                                       check=True)
                    row = json.loads(r.stdout.strip().splitlines()[-1])
                    row.update(frames=n, size=a.size, load_avg_1min=os.getloadavg()[0])
                    if k:
                        if step == "segment":
                            x, y = (open_frame_store(stores[j]) for j in (0, k))
                            row["equal"] = bool(
                                np.array_equal(x["roi"].values, y["roi"].values)
                                and np.array_equal(x["vessels"].values, y["vessels"].values))
                        else:
                            import xarray as xr

                            x, y = (xr.load_dataset(stores[j].with_suffix(f".{j}.nc"))
                                    for j in (0, k))
                            x.attrs, y.attrs = {}, {}  # the store paths differ
                            row["equal"] = bool(x.identical(y))
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
