"""``irtrepro manifest``: check a manifest (``verify``) or its synthetic generator (``regenerate``)."""

from __future__ import annotations

NAME = "manifest"
HELP = "check a study manifest (structure, files, checksums) or regenerate its synthetic files"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    v = sub.add_parser("verify", help="validate the manifest and every file's sha256",
                       description="validate the manifest (keys, formats, reader options) and "
                                   "every file's sha256")
    v.add_argument("manifest", nargs="?", default="data_manifest.yaml",
                   help="manifest (default: %(default)s)")
    r = sub.add_parser("regenerate",
                       help="rerun a synthetic study's generator and compare with the checksums",
                       description="rerun the generator of a synthetic study (a manifest with a "
                                   "'generator' section) and compare every new file with the "
                                   "recorded sha256; exit 1 when any differs")
    r.add_argument("manifest", nargs="?", default="data_manifest.yaml",
                   help="manifest (default: %(default)s)")
    r.add_argument("--subjects", default=None,
                   help="comma-separated subject ids to regenerate (default: all)")
    r.add_argument("--out", default=None,
                   help="data folder to write (default: a temporary folder, removed after)")
    r.add_argument("--record", action="store_true",
                   help="regenerate the whole study in place and rewrite the manifest with "
                        "the new checksums and this environment's versions")


def run(args) -> int:
    if args.action == "verify":
        return _verify(args)
    return _regenerate(args)


def _verify(args) -> int:
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


def _regenerate(args) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from irtrepro.manifest import load_manifest
    from irtrepro.report.pipeline import mismatch_message, record, regenerate

    m = load_manifest(args.manifest)
    if args.record:
        out = record(m)
        print(f"recorded {m.path} (files in {out})")
        return 0
    subjects = [s.strip() for s in args.subjects.split(",")] if args.subjects else None
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="irtrepro-regen-"))
    try:
        diff = regenerate(m, out, subjects=subjects)
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    n = sum(len(s.files) for s in m.sessions if subjects is None or s.subject in subjects)
    if diff:
        print(mismatch_message(m, diff))
        return 1
    print(f"{m.path}: {n} regenerated file(s) match the recorded sha256"
          + (f" (subjects {', '.join(subjects)})" if subjects else ""))
    return 0
