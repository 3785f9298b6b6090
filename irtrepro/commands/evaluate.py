"""``irtrepro evaluate``: the nested protocol (outer folds x seeds) of every model."""

from __future__ import annotations

NAME = "evaluate"
HELP = ("nested subject-wise evaluation of the models (outer folds x training seeds, choices "
        "on validation subjects): reports/evaluation/evaluation.json, cached and resumable")


def add_arguments(parser) -> None:
    parser.add_argument("--manifest", default="data_manifest.yaml",
                        help="study manifest (default: %(default)s)")
    parser.add_argument("--out", default="reports/evaluation",
                        help="folder of evaluation.json and its job cache (default: "
                             "%(default)s)")
    parser.add_argument("--models", default="breathing,keypoints,segmentation",
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--seeds", default="0,1,2",
                        help="training seeds, comma-separated (default: %(default)s)")
    parser.add_argument("--folds", default=None, metavar="MODEL=K,...",
                        help="outer folds per model, e.g. breathing=5,segmentation=3; 'loso' "
                             "for leave one subject out (default: breathing=3, keypoints=loso, "
                             "segmentation=3)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new job after this long; rerun to resume")
    parser.add_argument("--workers", type=int, default=None,
                        help="jobs at the same time, one torch thread each (default: cores)")
    parser.add_argument("--keypoint-corpus-seed", type=int, default=None, metavar="N",
                        help="render the keypoints' synthetic corpus from seed N, subjects the "
                             "defaults were never tuned on (default: the report's corpus)")
    parser.add_argument("--frames-cache", default="data/cache/frames",
                        help="where camera files are converted to frame stores (default: "
                             "%(default)s, shared with the report)")


def _folds(text: str | None) -> dict:
    from irtrepro.errors import OptionError

    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, _, k = item.partition("=")
        k = k.strip().lower()
        if not k or not (k == "loso" or k.isdigit()):
            raise OptionError(f"--folds {text!r}: expected MODEL=K or MODEL=loso, got {item!r}")
        out[name.strip()] = None if k == "loso" else int(k)
    return out


def run(args) -> int:
    from irtrepro.errors import OptionError
    from irtrepro.report.evaluation import run_evaluation
    from irtrepro.report.pipeline import ensure_files

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as exc:
        raise OptionError(f"--seeds {args.seeds!r}: expected integers, comma-separated") from exc
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    manifest = ensure_files(args.manifest)
    path = run_evaluation(manifest, args.out, models=models, seeds=seeds,
                          folds=_folds(args.folds), workers=args.workers,
                          max_seconds=None if args.max_minutes is None
                          else 60 * args.max_minutes, frames_cache=args.frames_cache,
                          keypoint_corpus_seed=args.keypoint_corpus_seed)
    import json

    summary = json.loads(path.read_text())
    for name in models:
        m = summary["models"][name]
        print(f"{name}: {m['jobs_done']} of {m['jobs_planned']} jobs"
              + ("" if m["complete"] else f" (pending: {', '.join(m['pending'])})"))
        for fig, f in m["figures"].items():
            if f["value"] is None:
                continue
            ci = (f"95% CI {f['ci_low']:.3f} to {f['ci_high']:.3f}" if f["ci_low"] is not None
                  else "no CI")
            sd = f"{f['sd_folds_seeds']:.3f}" if f["sd_folds_seeds"] is not None else "-"
            met = "" if f["met"] is None else f"; target {f['target']} " + (
                "met" if f["met"] else "NOT met")
            print(f"  {fig}: {f['value']:.3f} (SD over folds x seeds {sd}; {ci}){met}")
    print(f"wrote {path}")
    return 0 if all(summary["models"][n]["complete"] for n in models) else 3
