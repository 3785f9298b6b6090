"""``irtrepro extract``: per-second skin-temperature metrics of a segmented frame store."""

from __future__ import annotations

import argparse
from pathlib import Path

from irtrepro.commands import add_scheduler_argument

NAME = "extract"
HELP = "per-second TNV/TP/TV/calf metrics of segmented zarr frame stores (netCDF out)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path,
                        help="zarr frame store with roi/vessels masks (or give --model)")
    parser.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    parser.add_argument("--model", type=Path, default=None,
                        help="model file (train-seg --annotations): segment the store with it "
                             "first, writing the roi/vessels masks into the store as "
                             "`irtrepro segment --model` does, then extract")
    parser.add_argument("--masks", type=Path,
                        help="separate mask store (default: the store; not with --model)")
    add_scheduler_argument(parser, "the chunks")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep each finished chunk here; a rerun after an interruption "
                             "computes only the chunks missing")
    parser.add_argument("--chunk-frames", type=int, default=256)
    parser.add_argument("--bin-width", type=float, default=0.1, help="entropy bin (degC)")
    parser.add_argument("--per-frame", action="store_true", help="no per-second medians")
    parser.add_argument("--subject", default=None,
                        help="subject id kept in the file (for `irtrepro build --metrics`; "
                             "default: found from a sub-ID_ses-ID file name there)")
    parser.add_argument("--session", default=None, help="session id kept in the file")


def run(args: argparse.Namespace) -> int:
    from irtrepro.distributed import open_client
    from irtrepro.errors import OptionError

    if args.model is not None and args.masks is not None:
        raise OptionError(f"--masks {args.masks} and --model {args.model}: give one; "
                          "--model writes its masks into the store")
    # one client for both steps: a LocalCluster starts once
    with open_client(args.scheduler) as client:
        return _run(args, client)


def _run(args: argparse.Namespace, scheduler) -> int:
    from irtrepro._atomic import atomic_path
    from irtrepro.features.extract import extract_store
    from irtrepro.vision.infer import model_provenance

    given = model_provenance(args.model) if args.model is not None else None
    if args.model is not None:
        from irtrepro.vision.infer import segment_store
        from irtrepro.vision.models import load_models

        roi, ves = load_models(args.model)
        segment_store(args.store, roi, ves, scheduler=scheduler, provenance=given)
        print(f"{args.store}: masks written (model {args.model})")
    prov = masks_model(args.masks or args.store, given)
    ds = extract_store(args.store, mask_store=args.masks, scheduler=scheduler,
                       cache_dir=args.cache_dir, chunk_frames=args.chunk_frames,
                       bin_width=args.bin_width,
                       per_frame=args.per_frame)
    ds.attrs.update(prov)
    for key in ("subject", "session"):
        if getattr(args, key) is not None:
            ds.attrs[key] = str(getattr(args, key))
    with atomic_path(args.out) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    print(f"{args.out}: {len(ds.data_vars)} variables, {ds.sizes['time']} time points")
    return 0


def masks_model(mask_store: Path, given: dict[str, str] | None) -> dict[str, str]:
    """The ``model``/``model_sha256`` attributes of the netCDF: the model file given to
    extract, else the one the mask store records (:func:`irtrepro.vision.infer.mask_provenance`).

    Raises
    ------
    ModelError
        Both known and their sha256 differ: the masks were not written by the given model.
    """
    from irtrepro.errors import ModelError
    from irtrepro.vision.infer import mask_provenance

    recorded = mask_provenance(mask_store)
    if given is None:
        return recorded
    if recorded and recorded["model_sha256"] != given["model_sha256"]:
        raise ModelError(f"{mask_store}: masks written by model {recorded['model']} "
                         f"(sha256 {recorded['model_sha256']}), but --model {given['model']} "
                         f"has sha256 {given['model_sha256']}")
    return given
