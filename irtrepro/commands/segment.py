"""``irtrepro segment``: write roi/vessels masks beside the frames of zarr frame stores."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "segment"
HELP = "segment calf ROI and vessels in zarr frame stores (masks written into each store)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stores", type=Path, nargs="+", help="zarr frame stores")
    parser.add_argument("--model", type=Path, default=None,
                        help="one model file (train-seg --annotations) holding both networks")
    parser.add_argument("--roi-model", type=Path, default=None)
    parser.add_argument("--vessel-model", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    from irtrepro.vision.infer import segment_store
    from irtrepro.vision.models import load_models

    roi, ves = load_models(args.model, roi=args.roi_model, vessels=args.vessel_model)
    for p in args.stores:
        segment_store(p, roi, ves, batch_size=args.batch_size, threads=args.threads)
        print(f"{p}: masks written")
    return 0
