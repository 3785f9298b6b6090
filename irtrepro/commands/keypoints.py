"""``irtrepro keypoints train|predict|evaluate``: thermal keypoint models."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

NAME = "keypoints"
HELP = "train, apply and evaluate the thermal keypoint model (COCO 17 keypoints)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kp_command", metavar="ACTION")
    sub.required = True
    t = sub.add_parser("train", help="render a synthetic paired corpus, train teacher, student "
                       "and baseline leave-subjects-out; save checkpoints and the AP table")
    t.add_argument("--out", type=Path, required=True, help="output folder")
    t.add_argument("--published", action="store_true",
                   help="published setting: 256x192 crops, 64x48 heatmaps, 256-channel deconvs, "
                        "full leave-one-subject-out (slow on CPU)")
    t.add_argument("--subjects", type=int, help="number of synthetic subjects")
    t.add_argument("--frames", type=int, help="frames per subject")
    t.add_argument("--folds", type=int, help="folds (0 = leave-one-subject-out)")
    t.add_argument("--students", default="mobilenetv3",
                   help="comma list of student encoders: mobilenetv3,cnn,vit")
    t.add_argument("--betas", default="", help="comma list of betas for a sweep, e.g. 0,0.4,1")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="folds trained at once, one process and one torch thread each "
                        "(default: min(2, CPU cores))")
    p = sub.add_parser("predict", help="keypoints of every person in a thermal pose clip")
    p.add_argument("model", type=Path, help="student checkpoint (.pt) from 'train'")
    p.add_argument("clip", type=Path, help="pose clip .npz (frame, y, x) degC")
    p.add_argument("--out", type=Path, required=True, help="COCO results JSON to write")
    e = sub.add_parser("evaluate", help="COCO AP of a checkpoint on a clip with COCO truth, and "
                       "cadence from its ankles")
    e.add_argument("model", type=Path)
    e.add_argument("clip", type=Path)
    e.add_argument("truth", type=Path, help="COCO keypoint JSON of the clip's frames")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from irtrepro._atomic import atomic_path
    from irtrepro.keypoints import train as T

    if args.kp_command == "train":
        kw = {"seed": args.seed}
        if args.subjects:
            kw["n_subjects"] = args.subjects
        if args.frames:
            kw["frames_per_subject"] = args.frames
        if args.folds is not None:
            kw["folds"] = None if args.folds == 0 else args.folds
        cfg = T.KeypointConfig.published(**kw) if args.published else T.KeypointConfig(**kw)
        students = tuple(s for s in args.students.split(",") if s)
        betas = tuple(float(b) for b in args.betas.split(",") if b)
        from irtrepro.synth.pose_corpus import run_experiment

        res = run_experiment(cfg, students=students, betas=betas, keep_models=True,
                             workers=args.workers)
        args.out.mkdir(parents=True, exist_ok=True)
        for name, m in res["models"].items():
            kind = "mobilenetv3" if name == "baseline" else (
                cfg.teacher if name == "teacher" else name.split()[-1])
            T.save_model(m, args.out / f"{name.replace(' ', '_')}.pt", kind=kind, cfg=cfg,
                         role="teacher" if name == "teacher" else "thermal")
        summ = T.summarise(res["table"])
        res["table"].to_csv(args.out / "folds.csv", index=False)
        summ.to_csv(args.out / "ap_table.csv", index=False)
        if len(res["beta"]):
            from irtrepro.plots.keypoints import plot_beta_sweep

            res["beta"].to_csv(args.out / "beta_sweep.csv", index=False)
            fig = plot_beta_sweep(res["beta"], beta_default=cfg.beta)
            for ext in ("png", "pdf"):
                with atomic_path(args.out / f"beta_sweep.{ext}") as tmp:
                    fig.savefig(tmp, dpi=150, format=ext)
            print(res["beta"].groupby("beta")[["AP", "AP50", "AP75"]].mean().round(3)
                  .to_string())
        print(summ.to_string(index=False))
        return 0
    from irtrepro.io.pose import read_pose_clip

    model, cfg = T.load_model(args.model)
    clip = read_pose_clip(args.clip)
    pred = T.predict_frames(model, clip["thermal"], cfg)
    if args.kp_command == "predict":
        res = []
        for f, people in enumerate(pred):
            for p in people:
                k = np.nan_to_num(p["keypoints"], nan=0.0)
                res.append({"image_id": f + 1, "category_id": 1, "score": p["score"],
                            "keypoints": k.reshape(-1).tolist(), "time": float(clip["time"][f])})
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(res))
        empty = sum(1 for p in pred if not p)
        print(f"{len(res)} people in {len(pred)} frames; {empty} frames with nobody "
              f"(no keypoints written for them) -> {args.out}")
        return 0
    from irtrepro.keypoints.coco import read_coco_keypoints, to_results
    from irtrepro.keypoints.gait import cadence_from_ankles
    from irtrepro.keypoints.oks import coco_keypoint_ap

    gt = read_coco_keypoints(args.truth)
    ids = [im["id"] for im in gt["images"]]
    if len(ids) != len(pred):
        from irtrepro.errors import ReaderError

        raise ReaderError(f"{args.truth}: {len(ids)} images but {args.clip} has {len(pred)} "
                          "frames; expected one image per frame in order")
    kp = np.full((len(pred), 17, 3), np.nan)
    res = []
    for f, people in enumerate(pred):
        for p in people:
            res += to_results([ids[f]], p["keypoints"][None], [p["score"]])
        if people:
            kp[f] = people[0]["keypoints"]
    ap = coco_keypoint_ap(gt, res)
    cad = cadence_from_ankles(kp, clip["fps"])
    print(json.dumps({**ap, "cadence": cad["cadence"], "cadence_reason": cad["reason"]}))
    return 0
