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


def log_level(verbose: int = 0, quiet: bool = False) -> int:
    """Level of the ``irtrepro`` logger for ``-v`` counts and ``-q`` (MNE's ``verbose``).

    ``-q``: ERROR; default: WARNING (no progress bars); ``-v``: INFO with progress bars
    (:func:`irtrepro._logging.progress_bar` shows bars at INFO); ``-vv``: DEBUG.
    """
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(int(verbose), logging.DEBUG)


def set_log_level(level: int) -> None:
    """Set the ``irtrepro`` logger's level; add the one stderr handler if it has none."""
    logger = logging.getLogger("irtrepro")
    if not any(getattr(h, "_irtrepro_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._irtrepro_cli = True
        logger.addHandler(handler)
    logger.setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="irtrepro",
        description="Reproducibility studies with deep-learning-assisted infrared thermography.",
    )
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="more output: -v info messages and progress bars, -vv debug "
                           "(default: warnings and errors only, no progress bars)")
    loud.add_argument("-q", "--quiet", action="store_true", help="errors only")
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
    set_log_level(log_level(args.verbose, args.quiet))
    try:
        return int(args._run(args) or 0)
    except IrtreproError as exc:
        print(f"irtrepro {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
