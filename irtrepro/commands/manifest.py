"""``irtrepro manifest verify``: check every file of a manifest against its sha256."""

from __future__ import annotations

NAME = "manifest"
HELP = "check a study manifest (structure, files, checksums)"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    v = sub.add_parser("verify", help="validate the manifest and every file's sha256",
                       description="validate the manifest and every file's sha256")
    v.add_argument("manifest", nargs="?", default="data_manifest.yaml",
                   help="manifest (default: %(default)s)")


def run(args) -> int:
    from irtrepro.manifest import load_manifest, verify

    m = load_manifest(args.manifest)
    results = verify(m, raise_on_error=False)
    bad = 0
    for fe, status in results:
        if status != "ok":
            bad += status != "no sha256"
            print(f"{status:16s} {fe.where} ({fe.rel})")
    print(f"{m.path}: {len(results)} file(s), {len(results) - bad} ok, {bad} failed")
    return 1 if bad else 0
