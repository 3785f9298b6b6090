"""The ``irtrepro`` command.

Each subcommand lives in its own thin module under :mod:`irtrepro.commands` (MNE style): it
defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, parses flags and
calls one public function. Subcommands are discovered, so adding one never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from irtrepro.errors import IrtreproError


def _command_modules():
    import irtrepro.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"irtrepro.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="irtrepro",
        description="Reproducibility studies with deep-learning-assisted infrared thermography.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info with progress bars, -vv debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``irtrepro`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logger = logging.getLogger("irtrepro")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    try:
        return int(args._run(args) or 0)
    except IrtreproError as exc:
        print(f"irtrepro {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
