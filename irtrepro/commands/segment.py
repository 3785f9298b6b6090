"""``irtrepro segment``: write roi/vessels masks beside the frames of zarr frame stores;
``irtrepro segment evaluate``: score a model against a lab's annotations."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from irtrepro.commands import add_scheduler_argument
from irtrepro.vision.precision import DEFAULT_PRECISION, PRECISIONS

NAME = "segment"
HELP = ("segment calf ROI and vessels in zarr frame stores (masks written into each store); "
        "'segment evaluate MODEL MASKS RECORDING...' scores a model against annotations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stores", type=Path, nargs="+", metavar="STORE",
                        help="zarr frame stores; or 'evaluate MODEL MASKS RECORDING "
                             "[MASKS RECORDING ...]'")
    parser.add_argument("--model", type=Path, default=None,
                        help="one model file (train-seg --annotations) holding both networks")
    parser.add_argument("--roi-model", type=Path, default=None)
    parser.add_argument("--vessel-model", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (on a cluster: per task, default 1)")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="numeric precision of the networks (default auto: bfloat16 where "
                             "the CPU or GPU computes it natively, else float32)")
    add_scheduler_argument(parser, "the chunks")
    parser.add_argument("--chunk", type=int, default=None,
                        help="frames per work unit (rounded up to whole batches and zarr "
                             "chunks; default the smallest such)")
    ev = parser.add_argument_group(
        "segment evaluate MODEL MASKS RECORDING [MASKS RECORDING ...]",
        "per-class Dice/IoU/precision/recall/F1, metric errors and robustness of MODEL on "
        "the annotated frames (MASKS: sparse mask stores from 'annotations import'; "
        "RECORDING: the zarr store, SEQ, CSQ or IRB file each annotates)")
    ev.add_argument("--out", type=Path, default=None,
                    help="folder for scores.csv, scores_by_subject.csv, metric_errors.csv, "
                         "robustness.csv, evaluation.json, evaluation.png")
    ev.add_argument("--subject", action="append", default=[],
                    help="subject of each recording, in order (default: the 'sub-ID' in the "
                         "recording's file name, else its name)")
    ev.add_argument("--robustness-frames", type=int, default=16,
                    help="annotated frames scored under each perturbation (0: none)")
    ev.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")


def _subject_of(path: Path) -> str:
    m = re.search(r"sub-([A-Za-z0-9]+)", path.name)
    return m.group(1) if m else path.stem


def _evaluate(args: argparse.Namespace) -> int:
    from irtrepro.errors import OptionError
    from irtrepro.vision.scoring import evaluate_model, write_evaluation
    from irtrepro.vision.sparse import annotated_recordings

    rest = args.stores[1:]
    if len(rest) < 3 or len(rest) % 2 == 0:
        raise OptionError("segment evaluate takes MODEL then MASKS RECORDING pairs "
                          f"(got {len(rest)} paths)")
    if args.out is None:
        raise OptionError("segment evaluate needs --out FOLDER")
    model, pairs = rest[0], rest[1:]
    masks, recs = pairs[0::2], pairs[1::2]
    subjects = args.subject or [_subject_of(r) for r in recs]
    items = annotated_recordings(masks, recs, subjects)
    ev = evaluate_model(model, items, robustness_frames=args.robustness_frames,
                        threads=args.threads, device=args.device, precision=args.precision)
    out = write_evaluation(ev, args.out)
    s = ev.scores
    print(f"{model}: {ev.info['frames']} annotated frames of {len(recs)} recordings, "
          f"subjects {ev.info['subjects']} -> {out}")
    for row in s.itertuples():
        spread = (f" (subjects {row.subject_mean:.3f} +- {row.subject_sd:.3f}, n={row.n_subjects})"
                  if row.n_subjects > 1 else "")
        print(f"  {row.name:<11} Dice {row.dice:.3f}  IoU {row.iou:.3f}  precision "
              f"{row.precision:.3f}  recall {row.recall:.3f}{spread}")
    return 0


def run(args: argparse.Namespace) -> int:
    if str(args.stores[0]) == "evaluate" and not args.stores[0].exists():
        return _evaluate(args)
    from irtrepro.distributed import open_client
    from irtrepro.vision.infer import model_provenance, segment_store
    from irtrepro.vision.models import load_models

    roi, ves = load_models(args.model, roi=args.roi_model, vessels=args.vessel_model)
    # the masks name the model file, so `extract` and `build --metrics` can report it
    prov = model_provenance(args.model) if args.model is not None else None
    # one client for all the stores: a LocalCluster starts once, not once per store
    with open_client(args.scheduler) as client:
        for p in args.stores:
            segment_store(p, roi, ves, batch_size=args.batch_size, threads=args.threads,
                          chunk=args.chunk, scheduler=client, provenance=prov,
                          precision=args.precision)
            print(f"{p}: masks written")
    return 0
