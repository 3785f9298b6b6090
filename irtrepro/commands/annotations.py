"""``irtrepro annotations import SRC... --labels MAP.yaml --out MASKS.zarr [--recording REC]``."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "annotations"
HELP = "import LabelMe / COCO / PNG label-map annotations into a sparse mask store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="annotations_command", metavar="ACTION")
    sub.required = True
    imp = sub.add_parser("import", help="annotation files -> sparse mask store (zarr)")
    imp.add_argument("src", type=Path, nargs="+",
                     help="annotation files or folders (LabelMe JSON, COCO JSON, PNG maps)")
    imp.add_argument("--labels", type=Path, required=True,
                     help="label map YAML, one 'tool label: class' line each")
    imp.add_argument("--out", type=Path, required=True, help="target store, e.g. masks.zarr")
    imp.add_argument("--recording", type=Path,
                     help="the recording the frames belong to: zarr frame store, SEQ, CSQ or IRB "
                          "file (checks frame indices and image size)")
    imp.add_argument("--frames", default=None,
                     help="'name' (trailing integer of the image file name), 'order' (loose "
                          "images), or a YAML file 'image file name: frame index'")
    imp.add_argument("--format", choices=("labelme", "coco", "png-labels"),
                     help="default: detected from the files")
    imp.add_argument("--keep-empty", action="store_true",
                     help="keep COCO images without annotations (as background frames)")


def _frames(value: str | None):
    if value is None or value in ("name", "order"):
        return value
    import yaml

    from irtrepro.errors import FormatError

    path = Path(value)
    if not path.is_file():
        raise FormatError(f"--frames {value!r}: expected 'name', 'order' or a YAML file")
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(mapping, dict):
        raise FormatError(f"{path}: expected 'image file name: frame index' lines")
    return {str(k): int(v) for k, v in mapping.items()}


def run(args: argparse.Namespace) -> int:
    from irtrepro.io.annotations import read_annotations, shapes_table, write_annotations

    ds = read_annotations(args.src, labels=args.labels, frames=_frames(args.frames),
                          recording=args.recording, format=args.format,
                          keep_empty=args.keep_empty)
    out = write_annotations(args.out, ds)
    tab = shapes_table(ds)
    skipped = int((~tab["drawn"].astype(bool)).sum()) if len(tab) else 0
    print(f"{len(args.src)} source(s) ({ds.attrs['format']}): {ds.sizes['frame']} frames, "
          f"{len(tab)} shapes ({skipped} skipped) -> {out}")
    for _, row in tab[~tab["drawn"].astype(bool)].iterrows() if skipped else ():
        print(f"  skipped {row['source']} #{row['index']} ({row['label']}): {row['note']}")
    return 0
