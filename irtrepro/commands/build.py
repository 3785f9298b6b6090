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
                        help="stop at the first unreadable file (default: read every file, "
                             "write the Study, then exit 1 listing the files that failed)")
    parser.add_argument("--keep-going", action="store_true",
                        help="exit 0 when files failed and were left out of the Study")
    parser.add_argument("--metrics", nargs="+", default=[], metavar="FILE",
                        help="`irtrepro extract` files (or folders of *.nc) to merge into the "
                             "Study on the session clock: each file's recording start time "
                             "plus its session's thermal offset_s/drift_ppm")


def run(args) -> int:
    import json

    from irtrepro.report.pipeline import ensure_files
    from irtrepro.study import save_study
    from irtrepro.sync import build_study

    m = ensure_files(args.manifest)
    ds = build_study(m, strict=args.strict)
    if args.metrics:
        from pathlib import Path

        from irtrepro.thermal_study import merge_thermal, metrics_session

        files = [f for p in map(Path, args.metrics)
                 for f in (sorted(p.glob("*.nc")) if p.is_dir() else [p])]
        sessions = [metrics_session(f, m, ds["time"].values) for f in files]
        ds = merge_thermal(ds, sessions)
        for ts in sessions:
            p_ = ts.provenance
            print(f"  thermal {ts.subject}/{ts.session}: {p_.get('metrics_file')} "
                  f"({ts.clock['origin']}, offset_s={ts.clock['offset_s']:g}, "
                  f"drift_ppm={ts.clock['drift_ppm']:g}); frames read "
                  f"{p_.get('frames_read')}, placed {p_.get('frames_placed')}, outside the "
                  f"grid {p_.get('frames_outside_grid')}")
    path = save_study(ds, args.out)
    missing = json.loads(ds.attrs["missing"])
    print(f"wrote {path}: {ds.sizes['subject']} subjects x {ds.sizes['session']} sessions x "
          f"{ds.sizes['time']} s, variables {sorted(ds.data_vars)}")
    for m_ in missing:
        what = "FAILED" if m_.get("failed") else "left out"
        print(f"  {what} {m_['subject']}/{m_['session']} {m_['kind']}: {m_['reason']}")
    failed = [m_ for m_ in missing if m_.get("failed")]
    if failed and not args.keep_going:
        print(f"irtrepro build: error: {len(failed)} file(s) of the manifest could not be read "
              "and were left out of the Study (--keep-going accepts that)")
        return 1
    return 0
