"""``irtrepro info``: versions, device, and the manifest in use (offline)."""

from __future__ import annotations

NAME = "info"
HELP = "print package versions, compute device and the manifest in use"


def add_arguments(parser) -> None:
    parser.add_argument("--manifest", default="data_manifest.yaml",
                        help="study manifest (default: %(default)s)")


def run(args) -> int:
    from irtrepro.info import sys_info

    print(sys_info(args.manifest))
    return 0
