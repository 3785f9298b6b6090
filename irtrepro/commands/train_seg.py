"""``irtrepro train-seg``: train the ROI and vessel U-Nets on the thermal sessions of a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "train-seg"
HELP = "train the calf ROI and vessel segmentation U-Nets (from scratch, CPU or CUDA)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, nargs="?", default=None,
                        help="study manifest with thermal + thermal_masks (full mask stores)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for roi.pt, vessels.pt (manifest); model file (annotations)")
    parser.add_argument("--annotations", type=Path, action="append", default=[],
                        help="sparse mask store (annotations import); repeat, one per recording")
    parser.add_argument("--recording", type=Path, action="append", default=[],
                        help="the recording each --annotations store annotates (zarr, SEQ, "
                             "CSQ, IRB), in the same order")
    parser.add_argument("--subject", action="append", default=[],
                        help="subject of each recording (validation holds out whole subjects; "
                             "default: each recording its own group)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=None,
                        help="training crop side, px of the network input (--annotations "
                             "default: whole frames for the ROI network, 96 for the vessel "
                             "network; manifest default 96)")
    parser.add_argument("--downsample", type=int, default=None,
                        help="pool frames by this factor before the network (--annotations "
                             "default: the ROI network to ~160 px wide, vessels 1; 0: auto)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--netd", type=float, default=0.05, help="augmentation noise SD, degC")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--encoder", default="resnet18", help="smp encoder (no weights loaded)")
    parser.add_argument("--max-frames", type=int, default=2400, help="training frames sampled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    from irtrepro.manifest import load_manifest
    from irtrepro.vision.pipeline import Session, training_arrays
    from irtrepro.vision.train import train_segmenter

    if args.annotations:
        return _run_sparse(args)
    if args.manifest is None:
        from irtrepro.errors import OptionError

        raise OptionError("train-seg needs a manifest or --annotations/--recording pairs")
    from irtrepro.recordings import frame_store

    man = load_manifest(args.manifest)
    # a camera file is converted once into the manifest's derivatives/frames (by sha256)
    cache = Path(man.path).resolve().parent / "derivatives" / "frames"
    sessions = [Session(e.subject, e.session, frame_store(e.files["thermal"], cache).path,
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


def _run_sparse(args: argparse.Namespace) -> int:
    from irtrepro.vision.sparse import SparseFrames, annotated_recordings, train_model

    data = SparseFrames(annotated_recordings(args.annotations, args.recording, args.subject))
    split_by = "subject" if args.subject else "recording"
    model = train_model(data, split_by=split_by, seed=args.seed, device=args.device,
                        threads=args.threads, steps=args.steps, batch=args.batch,
                        crop=args.crop, downsample=args.downsample, lr=args.lr,
                        netd=args.netd, encoder=args.encoder)
    path = model.save(args.out)
    print(f"validation Dice {model.card['validation']['dice']} "
          f"({split_by}s {model.card['validation']['val_groups']}) -> {path}")
    return 0
