"""``irtrepro synth``: write a synthetic study (files in real export formats + manifest)."""

from __future__ import annotations

NAME = "synth"
HELP = "generate a synthetic study with planted answers (files + manifest)"


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="data/demo", help="data folder (default: %(default)s)")
    parser.add_argument("--manifest", default=None,
                        help="manifest to write (default: OUT/manifest.yaml)")
    parser.add_argument("--subjects", type=int, default=11, help="number of subjects")
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the whole study")
    parser.add_argument("--kinds", default="cpet,hr,core,thermal,face,pose",
                        help="comma-separated file kinds to write (default: %(default)s)")
    parser.add_argument("--frame-interval", type=float, default=10.0,
                        help="seconds between calf thermograms (default: %(default)s)")
    parser.add_argument("--shape", default="120x160", help="thermogram rows x columns")


def run(args) -> int:
    from irtrepro.synth.physiology import SynthConfig
    from irtrepro.synth.study import GeneratorConfig, generate_study

    rows, cols = (int(v) for v in args.shape.lower().split("x"))
    cfg = GeneratorConfig(physiology=SynthConfig(n_subjects=args.subjects, seed=args.seed),
                          kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
                          thermal={"frame_interval_s": args.frame_interval,
                                   "shape": [rows, cols]})
    path = generate_study(args.out, cfg, manifest_path=args.manifest)
    print(f"wrote {path}")
    return 0
