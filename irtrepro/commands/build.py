"""``irtrepro build``: manifest -> readers -> sync -> Study file."""

from __future__ import annotations

NAME = "build"
HELP = "build the Study dataset (netCDF or zarr) from the manifest's files"


def add_arguments(parser) -> None:
    parser.add_argument("--manifest", default="data_manifest.yaml",
                        help="study manifest (default: %(default)s)")
    parser.add_argument("--out", default="data/study.nc",
                        help="Study file, .nc or .zarr (default: %(default)s)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on the first unreadable file instead of leaving it out")


def run(args) -> int:
    import json

    from irtrepro.pipeline import ensure_files
    from irtrepro.study import save_study
    from irtrepro.sync import build_study

    m = ensure_files(args.manifest)
    ds = build_study(m, strict=args.strict)
    path = save_study(ds, args.out)
    missing = json.loads(ds.attrs["missing"])
    print(f"wrote {path}: {ds.sizes['subject']} subjects x {ds.sizes['session']} sessions x "
          f"{ds.sizes['time']} s, variables {sorted(ds.data_vars)}")
    for m_ in missing:
        print(f"  left out {m_['subject']}/{m_['session']} {m_['kind']}: {m_['reason']}")
    return 0
