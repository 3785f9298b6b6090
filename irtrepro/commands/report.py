"""``irtrepro report``: every figure and table of a study, into reports/ (what `make report` runs)."""

from __future__ import annotations

NAME = "report"
HELP = "generate/verify data, build the Study, train or reuse models, run every analysis"


def add_arguments(parser) -> None:
    parser.add_argument("--manifest", default="data_manifest.yaml",
                        help="study manifest (default: %(default)s)")
    parser.add_argument("--out", default="reports", help="output folder (default: %(default)s)")
    parser.add_argument("--cache", default=None, help="model/result cache (default: data/cache)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and resampling")
    parser.add_argument("--parts", default="vision,breathing,keypoints",
                        help="model parts to run, comma-separated: vision, breathing, keypoints or "
                             "the import name of a module with run_for_report "
                             "(default: %(default)s)")
    parser.add_argument("--keep-going", action="store_true",
                        help="exit 0 with a partial report when a part, analysis or file "
                             "failed (default: exit 1; the report is written either way)")
    parser.add_argument("--settings", default=None, metavar="FILE.yaml",
                        help="keyword settings of each model part, by part (vision, "
                             "breathing, keypoints), e.g. shorter training for a quick check")
    parser.add_argument("--model", default=None, metavar="MODEL.pt",
                        help="segmentation model file (train-seg --annotations): the vision "
                             "part segments with it instead of training, and scores every "
                             "subject with ground-truth masks; wins over the manifest's "
                             "models.segmentation; a model of other classes or input channels "
                             "is refused")


def run(args) -> int:
    from irtrepro.report.run import MODEL_PARTS, run_report

    own = {name.rsplit(".", 1)[-1]: name for name in MODEL_PARTS}
    # the project's parts by their short name; any other module by its import name
    parts = tuple(own.get(p.strip(), p.strip()) for p in args.parts.split(",") if p.strip())
    settings = None
    if args.settings:
        import yaml

        from irtrepro.errors import OptionError

        try:
            settings = yaml.safe_load(open(args.settings)) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise OptionError(f"--settings {args.settings}: cannot read it ({exc})") from exc
        if not isinstance(settings, dict):
            raise OptionError(f"--settings {args.settings}: expected a mapping of part names")
    if args.model:
        settings = dict(settings or {})
        vision = settings.get("vision") or {}
        settings["vision"] = {**vision, "model": args.model}
    from irtrepro.errors import IncompleteError

    try:
        page = run_report(args.manifest, args.out, cache_dir=args.cache, seed=args.seed,
                          parts=parts, settings=settings, keep_going=args.keep_going)
    except IncompleteError as exc:
        print(f"irtrepro report: error: {exc}")
        return 1
    print(f"wrote {page}")
    return 0
