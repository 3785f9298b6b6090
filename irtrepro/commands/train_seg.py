"""``irtrepro train-seg``: train the ROI and vessel U-Nets on the thermal sessions of a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "train-seg"
HELP = "train the calf ROI and vessel segmentation U-Nets (from scratch, CPU or CUDA)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="study manifest with thermal + thermal_masks")
    parser.add_argument("--out", type=Path, required=True, help="folder for roi.pt, vessels.pt")
    parser.add_argument("--encoder", default="resnet18", help="smp encoder (no weights loaded)")
    parser.add_argument("--max-frames", type=int, default=2400, help="training frames sampled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    from irtrepro.manifest import load_manifest
    from irtrepro.vision.pipeline import Session, training_arrays
    from irtrepro.vision.train import train_segmenter

    man = load_manifest(args.manifest)
    sessions = [Session(e.subject, e.session, e.files["thermal"].path,
                        e.files["thermal_masks"].path)
                for e in man.sessions if {"thermal", "thermal_masks"} <= set(e.files)]
    F, R, V, S = training_arrays(sessions, args.max_frames, None)
    args.out.mkdir(parents=True, exist_ok=True)
    for task in ("roi", "vessels"):
        ck = train_segmenter(F, R, V, S, task=task, encoder=args.encoder, seed=args.seed,
                             threads=args.threads)
        ck.save(args.out / f"{task}.pt")
        print(f"{task}: validation Dice {ck.metrics['val_dice']} -> {args.out / f'{task}.pt'}")
    return 0
