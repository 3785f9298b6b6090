"""``irtrepro results``: the headline figures of a written report, as JSON or Markdown."""

from __future__ import annotations

NAME = "results"
HELP = "render a report's results.json (headline figures with spread and source) as Markdown"


def add_arguments(parser) -> None:
    parser.add_argument("reports", nargs="?", default="reports",
                        help="report folder with results.json (default: %(default)s)")
    parser.add_argument("--markdown", default=None, metavar="FILE.md",
                        help="write the Markdown here (default: print it)")


def run(args) -> int:
    import json
    from pathlib import Path

    from irtrepro._atomic import atomic_path
    from irtrepro.errors import OptionError
    from irtrepro.report.results import render_markdown

    path = Path(args.reports) / "results.json"
    if not path.is_file():
        raise OptionError(f"{path}: not found; run `make report` (or irtrepro report) first")
    import shlex

    command = None
    if args.markdown:
        command = shlex.join(["irtrepro", "results", str(args.reports), "--markdown",
                              str(args.markdown)])
    text = render_markdown(json.loads(path.read_text()), command=command)
    if args.markdown:
        with atomic_path(Path(args.markdown)) as tmp:
            tmp.write_text(text)
        print(f"wrote {args.markdown}")
    else:
        print(text)
    return 0
