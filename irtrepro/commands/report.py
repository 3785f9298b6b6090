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
                        help="model parts to run, comma-separated (default: %(default)s)")
    parser.add_argument("--part-jobs", type=_part_jobs, default=None, metavar="N|auto",
                        help="model parts not cached yet side by side in their own processes: "
                             "'auto' runs the U-Nets alone, then breathing and keypoints side "
                             "by side; N: every part, N at a time (default: one after the "
                             "other; side by side did not pay on 2 cores)")


def _part_jobs(text: str) -> int | str:
    import argparse

    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or an integer >= 1")
    return n


def run(args) -> int:
    from irtrepro.report.run import run_report

    parts = tuple(f"irtrepro.{p.strip()}" for p in args.parts.split(",") if p.strip())
    page = run_report(args.manifest, args.out, cache_dir=args.cache, seed=args.seed, parts=parts,
                      part_jobs=args.part_jobs)
    print(f"wrote {page}")
    return 0
