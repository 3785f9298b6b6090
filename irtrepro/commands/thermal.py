"""``irtrepro thermal info FILE`` and ``irtrepro thermal convert FILE OUT.zarr``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from irtrepro.commands import add_scheduler_argument

NAME = "thermal"
HELP = "inspect a thermal recording or convert it to the zarr frame store"

_CONSTANTS = (
    "camera_model", "device", "optics", "lens_model", "emissivity", "object_distance_m",
    "reflected_temperature_degC", "atmospheric_temperature_degC", "environment_temperature_degC",
    "path_temperature_degC", "ir_window_temperature_degC", "ir_window_transmission",
    "relative_humidity", "planck_r1", "planck_r2", "planck_b", "planck_f", "planck_o",
    "atmospheric_trans_alpha1", "atmospheric_trans_alpha2", "atmospheric_trans_beta1",
    "atmospheric_trans_beta2", "atmospheric_trans_x", "calibration_range_min_degC",
    "calibration_range_max_degC", "compression", "damaged_frames", "damaged_reasons",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="thermal_command", metavar="ACTION")
    sub.required = True
    info = sub.add_parser("info", help="size, frames, frame rate, time span, camera constants")
    info.add_argument("file", type=Path)
    info.add_argument("--format", help="reader format (default: detected by magic bytes)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    conv = sub.add_parser("convert", help="convert a recording to the project's zarr frame store")
    conv.add_argument("file", type=Path)
    conv.add_argument("out", type=Path, help="target store, e.g. session.zarr (replaced)")
    conv.add_argument("more", type=Path, nargs="*", metavar="FILE OUT",
                      help="further recordings and their stores (with --scheduler: converted "
                           "side by side, one recording per worker)")
    add_scheduler_argument(conv, "one recording per task")
    conv.add_argument("--resume", action="store_true",
                      help="continue an interrupted conversion of the same recording where it "
                           "stopped, instead of starting again")
    conv.add_argument("--format", help="reader format (default: detected)")
    conv.add_argument("--chunk-frames", type=int, default=64, help="frames per zarr chunk")
    conv.add_argument("--emissivity", type=float, help="override (FLIR)")
    conv.add_argument("--reflected-temperature", type=float, help="override, degC (FLIR)")
    conv.add_argument("--distance", type=float, help="object distance override, m (FLIR)")
    conv.add_argument("--fps", type=float, help="frame rate, Hz (npy/tiff/csv stacks)")
    conv.add_argument("--scale", type=float, help="T = value * scale + offset (tiff/npy counts)")
    conv.add_argument("--offset", type=float)
    conv.add_argument("--unit", choices=("degC", "K", "degF"))


def _options(args, **extra) -> dict:
    """Reader options from the command line."""
    opts = dict(extra)
    for name, key in (("emissivity", "emissivity"),
                      ("reflected_temperature", "reflected_temperature"),
                      ("distance", "object_distance"), ("fps", "fps"), ("scale", "scale"),
                      ("offset", "offset"), ("unit", "unit")):
        val = getattr(args, name, None)
        if val is not None:
            opts[key] = val
    return opts


def _open(args, **extra):
    from irtrepro.io import detect, read

    fmt = args.format or detect(args.file, "thermal")
    return fmt, read("thermal", args.file, fmt, **_options(args, **extra))


def summarize(path: Path, fmt: str, da, time_error: str | None = None) -> dict:
    """The facts ``thermal info`` prints, as a dict.

    Frame times that go back or repeat (``time_error``: the reader's message) are shown as
    ``time_segments`` (one per run of increasing times, file frame numbers); ``time_span_s``
    is then ``None``, the span of a file holding several recordings being meaningless.
    """
    from irtrepro.io.thermal import time_segments

    t = np.asarray(da["time"].values, dtype=float)
    fi = da["frame_index"].values if "frame_index" in da.coords else None
    segments = time_segments(t, fi)
    dt = np.diff(t)
    dt = dt[dt > 0] if len(segments) > 1 else dt
    rate = float(1.0 / np.median(dt)) if dt.size and np.median(dt) > 0 else None
    size = (sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir()
            else path.stat().st_size)
    out = {"file": str(path), "format": fmt, "size_bytes": size,
           "frames": int(da.sizes["frame"]), "width": int(da.sizes["x"]),
           "height": int(da.sizes["y"]), "frame_rate_hz": rate,
           "declared_frame_rate_hz": da.attrs.get("frame_rate_hz"),
           "start_time": da.attrs.get("start_time") or None,
           "time_span_s": (float(t[-1] - t[0]) if t.size else 0.0) if len(segments) <= 1
           else None}
    if len(segments) > 1:
        out["time_error"] = time_error
        out["time_segments"] = segments
    out.update({k: da.attrs[k] for k in _CONSTANTS if k in da.attrs})
    return out


def run(args: argparse.Namespace) -> int:
    if args.thermal_command == "info":
        from irtrepro.io.thermal import FrameTimeError

        try:
            fmt, da = _open(args)
            time_error = None
        except FrameTimeError as exc:  # describe the file anyway, segment by segment
            fmt, da = _open(args, check_time=False)
            time_error = str(exc)
        info = summarize(args.file, fmt, da, time_error)
        if args.json:
            print(json.dumps(info, default=str))
        else:
            width = max(len(k) for k in info)
            for k, v in info.items():
                if k == "time_segments":
                    print(f"{k:<{width}}  {len(v)}")
                    for seg in v[:20]:
                        print(f"{'':<{width}}    frames {seg['first_frame']}..{seg['last_frame']}"
                              f" ({seg['n_frames']}), {seg['time_span_s']:.3f} s")
                    if len(v) > 20:
                        print(f"{'':<{width}}    ... {len(v) - 20} more (--json lists all)")
                else:
                    print(f"{k:<{width}}  {v}")
        return 0
    from irtrepro.errors import OptionError
    from irtrepro.io.convert import convert_recordings
    from irtrepro.io.thermal import open_frames

    if len(args.more) % 2:
        raise OptionError(f"thermal convert takes FILE OUT pairs; {args.more[-1]} has no OUT")
    pairs = [(args.file, args.out), *zip(args.more[0::2], args.more[1::2], strict=True)]
    done = convert_recordings(pairs, scheduler=args.scheduler, fmt=args.format,
                              chunk_frames=args.chunk_frames, resume=args.resume,
                              **_options(args))
    for (src, _), (fmt, out) in zip(pairs, done, strict=True):
        print(f"{src} ({fmt}, {open_frames(out).sizes['frame']} frames) -> {out}")
    return 0
