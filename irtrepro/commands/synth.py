"""``irtrepro synth``: write a synthetic study (files in real export formats + manifest)."""

from __future__ import annotations

NAME = "synth"
HELP = "generate a synthetic study with planted answers (files + manifest)"


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="data/demo", help="data folder (default: %(default)s)")
    parser.add_argument("--manifest", default=None,
                        help="manifest to write (default: OUT/manifest.yaml)")
    parser.add_argument("--subjects", type=int, default=None,
                        help="number of subjects (default: 11; 8 with --lab)")
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the whole study")
    parser.add_argument("--kinds", default=None,
                        help="comma-separated file kinds to write (default: cpet,hr,core,"
                             "thermal,face,pose; with --lab the non-camera kinds cpet,hr,core)")
    parser.add_argument("--frame-interval", type=float, default=None,
                        help="seconds between calf thermograms (default: 10; 60 with --lab)")
    parser.add_argument("--shape", default=None,
                        help="thermogram rows x columns (default: 120x160; 480x640 with --lab)")
    lab = parser.add_argument_group(
        "lab-shaped study (--lab): FLIR SEQ files with an offset camera clock and sparse "
        "LabelMe/COCO annotations")
    lab.add_argument("--lab", action="store_true",
                     help="write the camera part as a lab has it (irtrepro.synth.lab)")
    lab.add_argument("--annotated-frames", type=int, default=25,
                     help="frames annotated per subject (default: %(default)s)")
    lab.add_argument("--duration", type=float, default=600.0,
                     help="seconds of exercise the camera records; 0: the whole session "
                          "(default: %(default)s)")
    lab.add_argument("--lead", type=float, default=60.0,
                     help="seconds the camera records before the treadmill starts "
                          "(default: %(default)s)")
    lab.add_argument("--clock-offset", type=float, default=47.0,
                     help="camera clock minus true clock, s (default: %(default)s)")
    lab.add_argument("--clock-drift", type=float, default=30.0,
                     help="camera clock drift, ppm (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="sessions written in parallel (default: the CPU count)")


def _shape(text: str) -> list[int]:
    from irtrepro.errors import OptionError

    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--shape {text!r}; expected ROWSxCOLUMNS, e.g. 480x640") from None
    return [rows, cols]


def run(args) -> int:
    from irtrepro.synth.physiology import SynthConfig

    if args.lab:
        from irtrepro.synth.lab import LabConfig, generate_lab_study

        kinds = "cpet,hr,core" if args.kinds is None else args.kinds
        n = 8 if args.subjects is None else args.subjects
        cfg = LabConfig(physiology=SynthConfig(n_subjects=n, seed=args.seed),
                        shape=tuple(_shape(args.shape or "480x640")),
                        frame_interval_s=(60.0 if args.frame_interval is None
                                          else args.frame_interval),
                        duration_s=args.duration or None, lead_s=args.lead,
                        clock_offset_s=args.clock_offset, clock_drift_ppm=args.clock_drift,
                        annotated_per_subject=args.annotated_frames,
                        kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()))
        path = generate_lab_study(args.out, cfg, manifest_path=args.manifest, n_jobs=args.jobs)
        print(f"wrote {path}")
        return 0
    from irtrepro.synth.study import GeneratorConfig, generate_study

    kinds = "cpet,hr,core,thermal,face,pose" if args.kinds is None else args.kinds
    n = 11 if args.subjects is None else args.subjects
    cfg = GeneratorConfig(physiology=SynthConfig(n_subjects=n, seed=args.seed),
                          kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
                          thermal={"frame_interval_s": (10.0 if args.frame_interval is None
                                                       else args.frame_interval),
                                   "shape": _shape(args.shape or "120x160")})
    path = generate_study(args.out, cfg, manifest_path=args.manifest, n_jobs=args.jobs)
    print(f"wrote {path}")
    return 0
