"""``irtrepro breathing train|predict|evaluate``: the breathing phase classifier and RR."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "breathing"
HELP = "train, apply and evaluate the INH/EXH breathing classifier (BreathAI) and camera RR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    tr = sub.add_parser("train", help="train on a labelled image folder (INH/, EXH/) or the "
                        "face sessions of a manifest")
    tr.add_argument("data", type=Path, help="image folder with INH/ and EXH/, or a manifest")
    tr.add_argument("--out", type=Path, required=True, help="model file to write (.pkl)")
    tr.add_argument("--row", default="full method",
                    help="ablation row to train (default 'full method')")
    tr.add_argument("--epochs", type=int, default=None, help="training epochs")
    tr.add_argument("--seed", type=int, default=0)
    pr = sub.add_parser("predict", help="label images of a folder (or INH/EXH sub-folders)")
    pr.add_argument("model", type=Path)
    pr.add_argument("data", type=Path, help="image folder with INH/ and EXH/")
    pr.add_argument("--out", type=Path, help="CSV of predictions (default: print)")
    ev = sub.add_parser("evaluate", help="ablation table on held-out subjects of a manifest "
                        "and camera RR errors")
    ev.add_argument("manifest", type=Path)
    ev.add_argument("--cache", type=Path, default=Path("data/cache"))
    ev.add_argument("--out", type=Path, help="folder for the tables (CSV)")
    ev.add_argument("--seed", type=int, default=0)


def _load_data(path: Path):
    from irtrepro.breathing.data import manifest_images, read_image_folder

    if path.is_dir():
        return read_image_folder(path, subject_from="prefix")
    from irtrepro.manifest import load_manifest

    return manifest_images(load_manifest(path))[0]


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import numpy as np
    import pandas as pd

    from irtrepro.errors import check_option

    if args.action == "train":
        from irtrepro.breathing.train import ABLATION, train

        check_option("row", args.row, tuple(ABLATION))
        cfg = replace(ABLATION[args.row], seed=args.seed)
        if args.epochs:
            cfg = replace(cfg, epochs=args.epochs)
        model = train(_load_data(args.data), cfg)
        model.save(args.out)
        print(f"wrote {args.out} ({args.row}, {model.history['n_train']} images, "
              f"{model.history['train_seconds']:.0f} s)")
        return 0
    if args.action == "predict":
        from irtrepro.breathing.data import read_image_folder
        from irtrepro.breathing.evaluate import classification_metrics
        from irtrepro.breathing.train import BreathModel, predict_proba

        model = BreathModel.load(args.model)
        data = read_image_folder(args.data, size=model.config.size)
        # one group per subject (file-name prefix or folder name) for the per-group steps
        p = predict_proba(model, data.images, groups=data.meta["subject"].to_numpy())
        df = pd.DataFrame({"file": data.meta["source"], "label": np.array(["INH", "EXH"])[
            data.labels], "p_exh": p, "pred": np.where(p > 0.5, "EXH", "INH")})
        if args.out:
            from irtrepro._atomic import atomic_path

            with atomic_path(args.out) as tmp:
                df.to_csv(tmp, index=False)
        else:
            print(df.to_string(index=False))
        m = classification_metrics(data.labels, p > 0.5)
        print(f"accuracy {m['accuracy']:.3f}  F1 {m['f1']:.3f}  (n={m['n']})")
        return 0
    from irtrepro.manifest import load_manifest
    from irtrepro.report.parts.breathing import run_for_report

    part = run_for_report(load_manifest(args.manifest), args.cache, seed=args.seed)
    for name, (df, caption) in part.tables.items():
        print(f"== {name}: {caption}\n{df.to_string(index=False)}\n")
        if args.out:
            from irtrepro._atomic import atomic_path

            args.out.mkdir(parents=True, exist_ok=True)
            with atomic_path(args.out / f"breathing_{name}.csv") as tmp:
                df.to_csv(tmp, index=False)
    for note in part.notes:
        print(f"note: {note}")
    return 0
