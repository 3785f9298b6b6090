"""Segmentation speed and peak memory at camera resolution: prints figures, asserts nothing.

Usage: ``python benchmarks/bench_segment.py [--quick] [--threads 2] [--short 1000 --long 4000]
[--parts 1 2 3 4] [--length-size 640x480] [--model MODEL.pt] [--precision auto]``

Every measured case runs in its own child process, and its peak memory is that child's peak
resident set (``getrusage(RUSAGE_SELF).ru_maxrss``), imports and models included.

1. Frames/s and peak RSS of :func:`irtrepro.vision.infer.segment_store` (chunked: read, calf
   box, vessel model on the boxes, masks written chunk by chunk) at 160x120, 640x480 and
   1024x768: the PyTorch float32 reference and the fast path (``--precision``, default
   ``auto``: bfloat16 where the CPU computes it natively; :mod:`irtrepro.vision.precision`)
   on the same store in the same run, with the ratio and the fast masks' Dice per class
   against the reference's. Above 160x120 also in the camera configuration that
   ``train-seg --annotations`` builds for that size (the calf network on frames pooled to
   ~160 px, the vessel network at native resolution; the same weights).
2. Memory growth with session length: the same at 640x480 (``--length-size``) for a
   ``--short`` and a ``--long`` recording (both at least one 64-frame zarr chunk long, so
   both are segmented in equal steps); and the reference measured in the same run -- the
   eager, unchunked path (all frames in memory, :func:`predict_masks` with ``batch_size``
   frames per pass whatever their size, the masks written afterwards) on the short recording
   -- with the ratios against it.
3. The same two recordings through the report's session pass
   (:func:`irtrepro.vision.pipeline.segment_sessions`: segment, extract every feature, score
   against the true masks of the synthetic frames -- or, with ``--frames-from``, the store's
   masks, if any --, the clock check's camera signal), chunk by chunk.
4. Where the time goes at 640x480: read, calf (ROI) network, vessel network on the boxes,
   mask write, per frame.

Models: with ``--model``, a model file as ``irtrepro train-seg --annotations`` writes it (e.g.
trained on the 640x480 lab study: the ROI network pooled to ~160 px, the vessel network at
native resolution). Without it, the default architectures of
``irtrepro.vision.train.TASK_DEFAULTS`` (designed for 160x120: the vessel network enlarges its
input 2x, which at 640x480 makes it the cost). The calf model is
trained for a few steps at 160x120 on the benchmark's own frames (so the calf boxes, which set
the vessel model's work, are roughly where the calves are; at larger sizes it over-segments and
the boxes come out wider than the calves -- printed beside the results), and so is the vessel
model (100 steps on the frames' vein stripes). Frames: two warm ellipses on a cool wall
(:mod:`_segment_frames`), written with :func:`irtrepro.io.zarr_store.write_frames`.
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

SIZES = {"160x120": (120, 160), "640x480": (480, 640), "1024x768": (768, 1024)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _models(work: Path, threads: int) -> tuple[Path, Path]:
    """Few-step calf and vessel models (default architectures), saved once."""
    from _segment_frames import calf_frames

    from irtrepro.vision.train import train_segmenter

    roi_p, ves_p = work / "roi.pt", work / "vessels.pt"
    if not roi_p.is_file():
        f, r = calf_frames(0, 48, 120, 160)
        ck = train_segmenter(f, r, np.zeros_like(r), [f"s{i % 4}" for i in range(48)], task="roi",
                             max_steps=80, eval_every=80, batch_size=4, seed=0, threads=threads)
        ck.save(roi_p)
        print(f"calf model: 80 steps at 160x120, validation Dice {ck.metrics.get('val_dice')}")
    if not ves_p.is_file():
        f, r, v = calf_frames(0, 48, 120, 160, veins=True)
        ck = train_segmenter(f, r, v, [f"s{i % 4}" for i in range(48)], task="vessels",
                             max_steps=100, eval_every=100, batch_size=4, seed=0,
                             threads=threads)
        ck.save(ves_p)
        print(f"vessel model: 100 steps at 160x120, validation Dice {ck.metrics.get('val_dice')}")
    return roi_p, ves_p


def _camera_models(work: Path, models: tuple, shape: tuple[int, int]) -> tuple[Path, Path]:
    """What ``train-seg --annotations`` builds for frames of ``shape``: the calf network on
    frames pooled to ~160 px (:func:`~irtrepro.vision.sparse.auto_downsample`; the same
    weights, trained at 160x120), the vessel network at native resolution (no enlarging)."""
    from irtrepro.vision.models import Checkpoint
    from irtrepro.vision.sparse import auto_downsample

    k = auto_downsample([shape])
    roi_p, ves_p = work / f"roi-pool{k}.pt", work / "vessels-native.pt"
    if not roi_p.is_file():
        ck = Checkpoint.load(models[0], task="roi")
        ck.downsample = k
        ck.save(roi_p)
    if not ves_p.is_file():
        ck = Checkpoint.load(models[1], task="vessels")
        ck.upsample = 1
        ck.save(ves_p)
    return roi_p, ves_p


def _masks(store: Path) -> dict:
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(store)
    return {k: np.asarray(ds[k].values) for k in ("roi", "vessels")}


def _dice_per_class(ref: dict, got: dict) -> str:
    """Dice of each class of ``got`` against ``ref`` (left/right calf, vein, perforator)."""
    out = []
    for name, c, label in (("roi", 1, "left"), ("roi", 2, "right"), ("vessels", 1, "vein"),
                           ("vessels", 2, "perforator")):
        a, b = ref[name] == c, got[name] == c
        s = a.sum() + b.sum()
        out.append(f"{label} {2 * (a & b).sum() / s:.4f}" if s else f"{label} -")
    return ", ".join(out)


SOURCE: Path | None = None   # --frames-from: a real recording tiled to length


def _store(work: Path, n: int, h: int, w: int) -> Path:
    from _segment_frames import lazy_frames, tiled_frames

    from irtrepro.io.zarr_store import write_frames

    if SOURCE is not None:
        from irtrepro.io.recording import open_recording

        sh = open_recording(SOURCE).shape[1:]
        if tuple(sh) != (h, w):
            return None
        p = work / f"{SOURCE.stem}-{n}.zarr"
        if not p.is_dir():
            write_frames(p, tiled_frames(SOURCE, n), chunk_frames=64, progress=False)
        return p
    p = work / f"calves-{n}x{w}x{h}.zarr"
    if not p.is_dir():
        write_frames(p, lazy_frames(n, h, w), chunk_frames=64, progress=False)
    return p


# ---------------------------------------------------------------- child process: one case
def _child(mode: str, store: str, roi_p: str, ves_p: str, threads: int, batch: int,
           precision: str) -> dict:
    import torch

    from irtrepro._threads import torch_threads
    from irtrepro.io.thermal import open_frame_store, write_masks
    from irtrepro.vision.infer import (
        _calf_boxes,
        effective_batch,
        predict_labels,
        predict_masks,
        segment_store,
    )
    from irtrepro.vision.models import Checkpoint
    from irtrepro.vision.precision import inference_network, resolve_precision

    torch_threads(threads)
    cpu = torch.device("cpu")
    if ves_p == "-":                     # one model file holding both networks
        from irtrepro.vision.models import load_models

        roi_ck, ves_ck = load_models(roi_p)
    else:
        roi_ck = Checkpoint.load(roi_p, task="roi")
        ves_ck = Checkpoint.load(ves_p, task="vessels")
    ds = open_frame_store(store)
    n, h, w = ds["frames"].shape
    precision = resolve_precision(precision, cpu)
    out: dict = {"frames": n, "h": h, "w": w, "threads": threads, "precision": precision}
    b = effective_batch(batch, (h, w))
    out["batch"] = b
    models = tuple(inference_network(ck, cpu, precision) for ck in (roi_ck, ves_ck))
    warm = np.asarray(ds["frames"][:b].values)      # one batch: oneDNN warm-up, no extra peak
    predict_masks(warm, roi_ck, ves_ck, batch_size=b, models=models, dev=cpu)
    del warm
    out["rss_ready_mb"] = _rss_mb()
    t0 = time.perf_counter()
    if mode == "chunked":
        segment_store(store, roi_ck, ves_ck, batch_size=batch, threads=threads, progress=False,
                      resume=False, dev=cpu, precision=precision)
    elif mode == "eager":
        frames = np.asarray(ds["frames"].values)
        r, v = predict_masks(frames, roi_ck, ves_ck, batch_size=batch, models=models, dev=cpu,
                             max_pixels=None)
        write_masks(store, roi=r, vessels=v, progress=False)
        out["batch"] = batch
    elif mode == "session":
        # the report's pass: segment, extract, score against the store's masks, clock signal
        from irtrepro.vision.pipeline import Session, segment_sessions

        masks = store if "roi" in ds else None
        seg = segment_sessions([Session("B01", "A", Path(store), masks and Path(store))],
                               roi_ck, ves_ck, held=["B01"], models=models, progress=False,
                               signals=True)
        if seg.notes:
            raise RuntimeError(seg.notes)
        out["scored"] = bool(seg.counts)
    elif mode == "profile":
        t = {"read": 0.0, "roi": 0.0, "vessels": 0.0, "write": 0.0}
        box = []
        import zarr

        scratch = tempfile.mkdtemp(prefix="masks.", dir=Path(store).parent)
        z = {k: zarr.open_array(f"{scratch}/{k}", mode="w", shape=(n, h, w), chunks=(64, h, w),
                                dtype="u1") for k in ("roi", "vessels")}
        for s in range(0, n, 64):
            ta = time.perf_counter()
            f = np.asarray(ds["frames"][s:s + 64].values)
            tb = time.perf_counter()
            r = predict_labels(roi_ck, f, model=models[0], batch_size=b, dev=cpu)
            tc = time.perf_counter()
            _, v = predict_masks(f, roi_ck, ves_ck, batch_size=b, models=models, dev=cpu)
            td = time.perf_counter()
            z["roi"][s:s + 64] = r
            z["vessels"][s:s + 64] = v
            te = time.perf_counter()
            # predict_masks runs the calf model again: the vessel part is its time less the calf's
            t["read"] += tb - ta
            t["roi"] += tc - tb
            t["vessels"] += (td - tc) - (tc - tb)
            t["write"] += te - td
            for k in range(0, len(r), b):
                bx, size = _calf_boxes(r[k:k + b], 4)
                box.append((len(bx), int(size[0]), int(size[1])))
        out["profile_s_per_frame"] = {k: v / n for k, v in t.items()}
        nb = np.array(box)
        out["boxes_per_batch"] = float(nb[:, 0].mean())
        out["box_hw_mean"] = [float(nb[:, 1].mean()), float(nb[:, 2].mean())]
    out["seconds"] = time.perf_counter() - t0
    out["fps"] = n / out["seconds"]
    out["peak_rss_mb"] = _rss_mb()
    return out


PRECISION = "auto"  # --precision: the fast path measured against float32


def _run_child(mode: str, store: Path, models: tuple, threads: int, batch: int,
               precision: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--child", mode, str(store), str(models[0]), str(models[1]),
           "--threads", str(threads), "--batch", str(batch),
           "--precision", precision or PRECISION]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"{mode} {store}: child failed\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small recordings: 64/16/8 frames per size, 64 vs 256 frames at 640x480")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per child (default 1)")
    ap.add_argument("--batch", type=int, default=32, help="batch_size passed (default 32)")
    ap.add_argument("--short", type=int, default=None, help="frames of the short 640x480 recording")
    ap.add_argument("--long", type=int, default=None, help="frames of the long 640x480 recording")
    ap.add_argument("--speed-frames", type=int, nargs=3, default=None,
                    metavar=("N160", "N640", "N1024"),
                    help="frames per size for the speed table (0: skip that size)")
    ap.add_argument("--work", type=Path, default=None, help="folder for stores and models")
    ap.add_argument("--frames-from", type=Path, default=None,
                    help="a 640x480 recording whose frames are tiled to each length "
                         "(default: synthetic ellipses at every size)")
    ap.add_argument("--skip-speed", action="store_true", help="skip the per-size table")
    ap.add_argument("--skip-length", action="store_true",
                    help="skip the session-length, session-pass and profile parts (2-4)")
    ap.add_argument("--length-size", choices=list(SIZES), default="640x480",
                    help="frame size of the short and long recordings (parts 2-4)")
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3, 4],
                    help="which numbered parts to run (default: all)")
    ap.add_argument("--model", type=Path, default=None,
                    help="model file (train-seg --annotations) instead of the default networks")
    ap.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                    help="the fast path, measured against float32 in part 1 and used in "
                         "parts 2-4 (default auto)")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "STORE", "ROI", "VES"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(_child(*a.child, a.threads, a.batch, a.precision)))
        return 0
    global PRECISION
    PRECISION = a.precision
    short = a.short or (64 if a.quick else 1000)
    long = a.long or (256 if a.quick else 4000)
    speed = a.speed_frames or ((64, 16, 8) if a.quick else (256, 64, 32))
    tmp = None
    if a.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_segment.")
        a.work = Path(tmp.name)
    a.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"torch threads {a.threads} per case; batch_size {a.batch}")
    global SOURCE
    SOURCE = a.frames_from
    if a.model is not None:
        models = (a.model.resolve(), "-")
        print(f"models: {a.model}")
    else:
        models = _models(a.work, a.threads)
    parts = set(a.parts) - ({1} if a.skip_speed else set())
    parts -= {2, 3, 4} if a.skip_length else set()
    rows = []
    if 1 in parts:
        print("\n1. chunked segment_store, per size")
    for (name, (h, w)), n in zip(SIZES.items(), speed, strict=True):
        if 1 not in parts:
            break
        if n == 0:
            continue
        store = _store(a.work, n, h, w)
        if store is None:
            print(f"  {name:>9}: skipped (--frames-from is another size)")
            continue
        configs = [("default networks", models)]
        if a.model is None and (h, w) != (120, 160):
            configs.append(("camera configuration", _camera_models(a.work, models, (h, w))))
        for label, mods in configs:
            ref = _run_child("chunked", store, mods, a.threads, a.batch, "float32")
            ref_masks = _masks(store)
            r = _run_child("chunked", store, mods, a.threads, a.batch)
            dice = _dice_per_class(ref_masks, _masks(store))
            rows.append((name, label, ref, r))
            print(f"  {name:>9} {label}: float32 (reference) {ref['fps']:7.2f} frames/s, peak "
                  f"RSS {ref['peak_rss_mb']:5.0f} MB; {r['precision']} {r['fps']:7.2f} frames/s, "
                  f"peak RSS {r['peak_rss_mb']:5.0f} MB; x{r['fps'] / ref['fps']:.2f}; Dice "
                  f"against float32 {dice}  ({n} frames, batch {r['batch']})")
    if parts & {2, 3, 4}:
        h, w = SIZES[a.length_size]
        s_store, l_store = _store(a.work, short, h, w), _store(a.work, long, h, w)
    if 2 in parts:
        _length_part(a, short, long, s_store, l_store, models)
    if 3 in parts:
        _session_part(a, short, long, s_store, l_store, models)
    if 4 in parts:
        _profile_part(a, s_store, models)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


def _length_part(a, short, long, s_store, l_store, models) -> None:
    print(f"\n2. {a.length_size}: memory with session length ({short} vs {long} frames)")
    if short < 64:  # a store shorter than its 64-frame zarr chunk is segmented in shorter steps
        print(f"  note: {short} frames < one 64-frame chunk; the steps differ, so does the peak")
    ref = _run_child("eager", s_store, models, a.threads, a.batch)
    rs = _run_child("chunked", s_store, models, a.threads, a.batch)
    rl = _run_child("chunked", l_store, models, a.threads, a.batch)
    for label, r in (("reference: eager, unchunked", ref), (f"chunked, {short} frames", rs),
                     (f"chunked, {long} frames", rl)):
        print(f"  {label:>28}: {r['fps']:6.2f} frames/s  peak RSS {r['peak_rss_mb']:7.0f} MB  "
              f"(x{r['fps'] / ref['fps']:.2f} speed, x{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f} "
              "peak RSS of the reference)")
    growth = 100 * (rl["peak_rss_mb"] / rs["peak_rss_mb"] - 1)
    above_s = rs["peak_rss_mb"] - rs["rss_ready_mb"]
    above_l = rl["peak_rss_mb"] - rl["rss_ready_mb"]
    # at small frames the peak can be the ready process itself (models and one warm batch)
    above = (f"{100 * (above_l / above_s - 1):+.1f} %" if above_s > 0
             else f"{above_l:.0f} MB above it for {long} frames, 0 for {short}")
    print(f"  peak RSS growth {short} -> {long} frames: {growth:+.1f} % "
          f"(above the ready process: {above})")


def _with_truth(store: Path, n: int) -> None:
    """Give a synthetic store its true calf and vein masks, so the session pass scores it
    against them (part 2 leaves predicted masks in the store; they are replaced)."""
    from _segment_frames import lazy_truth

    from irtrepro.io.thermal import open_frame_store, write_masks

    if SOURCE is not None:
        return
    h, w = open_frame_store(store)["frames"].shape[1:]
    roi, vessels = lazy_truth(n, h, w)
    write_masks(store, roi=roi, vessels=vessels, progress=False)


def _session_part(a, short, long, s_store, l_store, models) -> None:
    _with_truth(s_store, short)
    _with_truth(l_store, long)
    print(f"\n3. {a.length_size}: the report's session pass (segment, extract, score, "
          "clock signal; "
          f"{short} vs {long} frames)")
    ss = _run_child("session", s_store, models, a.threads, a.batch)
    sl = _run_child("session", l_store, models, a.threads, a.batch)
    for n_, r in ((short, ss), (long, sl)):
        print(f"  {n_:>6} frames: {r['fps']:6.2f} frames/s  peak RSS {r['peak_rss_mb']:7.0f} MB"
              f"  (scored against masks: {r['scored']})")
    print(f"  peak RSS growth {short} -> {long} frames: "
          f"{100 * (sl['peak_rss_mb'] / ss['peak_rss_mb'] - 1):+.1f} %")


def _profile_part(a, s_store, models) -> None:
    print(f"\n4. {a.length_size}: where the time goes (s per frame)")
    p = _run_child("profile", s_store, models, a.threads, a.batch)
    tot = sum(p["profile_s_per_frame"].values())
    for k, v in p["profile_s_per_frame"].items():
        print(f"  {k:>8}: {1e3 * v:8.1f} ms/frame  ({100 * v / tot:4.1f} %)")
    print(f"  calf boxes per batch of {p['batch']}: {p['boxes_per_batch']:.1f}, mean box "
          f"{p['box_hw_mean'][0]:.0f}x{p['box_hw_mean'][1]:.0f} px (h x w; the true calves "
          f"~{0.72 * 480 + 8:.0f}x{0.22 * 640 + 8:.0f} px with the margin)")


if __name__ == "__main__":
    sys.exit(main())
