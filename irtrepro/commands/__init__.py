"""Subcommands of the ``irtrepro`` CLI, one thin module each (see :mod:`irtrepro.cli`)."""

from __future__ import annotations


def add_scheduler_argument(parser, what: str) -> None:
    """The ``--scheduler ADDRESS`` option, read by :func:`irtrepro.distributed.open_client`.

    ``what`` says what runs on the workers (e.g. "the chunks").
    """
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"run {what} on dask.distributed: 'local' or 'local:N' (a "
                             "LocalCluster of N workers, default 2), tcp://HOST:PORT, or a "
                             "scheduler file (*.json); default serial (docs/cluster.md)")
