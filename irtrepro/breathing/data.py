"""Image sets for the breathing classifier: crops from face sequences, labelled image folders.

An :class:`ImageSet` holds RGB-coloured uint8 crops ``(n, rows, cols, 3)`` with their labels
(0 = INH, 1 = EXH) and where each came from (subject, session, time, clip), so that splits can
be made by subject and predictions put back on the session clock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro._logging import logger
from irtrepro.breathing.amt import to_rgb
from irtrepro.breathing.signal import locate_nostrils
from irtrepro.errors import ReaderError

__all__ = ["ImageSet", "face_crops", "session_images", "read_image_folder", "manifest_images",
           "hard_from_labels", "clip_index", "CLASSES", "IMAGE_EXTENSIONS"]

CLASSES = ("INH", "EXH")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class ImageSet:
    """Crops and labels.

    Attributes
    ----------
    images : ndarray (n, rows, cols, 3) uint8
        RGB-coloured thermal crops.
    labels : ndarray (n,) int
        0 INH, 1 EXH, -1 unlabelled.
    meta : pandas.DataFrame
        ``subject``, ``session``, ``time`` (s), ``clip``, ``hard`` (bool), ``source`` per image.
    notes : list of str
        Frames or files left out and why.
    """

    images: np.ndarray
    labels: np.ndarray
    meta: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> ImageSet:
        mask = np.asarray(mask)
        return ImageSet(self.images[mask], self.labels[mask],
                        self.meta[mask].reset_index(drop=True) if mask.dtype == bool
                        else self.meta.iloc[mask].reset_index(drop=True), list(self.notes))

    @staticmethod
    def concat(sets: list[ImageSet]) -> ImageSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            return ImageSet(np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, int),
                            pd.DataFrame(columns=["subject", "session", "time", "clip", "hard",
                                                  "source"]))
        return ImageSet(np.concatenate([s.images for s in sets]),
                        np.concatenate([s.labels for s in sets]),
                        pd.concat([s.meta for s in sets], ignore_index=True),
                        [n for s in sets for n in s.notes])


def face_crops(frames: np.ndarray, *, size: int = 32) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Crop ``size`` x ``size`` windows around the nostril/mouth region of each frame.

    The window is centred on the nostril region of :func:`~irtrepro.breathing.signal.
    locate_nostrils` and shifted to lie inside the frame (a 32 px crop of a 48-row frame
    cannot always be centred); a frame is invalid only when the nostril region itself is not
    found or leaves the frame.

    Returns
    -------
    crops : ndarray (n, size, size) degC (NaN where invalid)
    valid : ndarray (n,) bool
    reason : ndarray (n,) str
    """
    f = np.asarray(frames, dtype=np.float32)
    n, ny, nx = f.shape
    boxes = locate_nostrils(f)
    if size > min(ny, nx):
        raise ReaderError(f"crop size {size} px exceeds the frame ({ny}x{nx} px)")
    cy = np.round(boxes["cy"].to_numpy()).astype(float)
    cx = np.round(boxes["cx"].to_numpy()).astype(float)
    valid = boxes["valid"].to_numpy().copy()
    reason = boxes["reason"].to_numpy().astype(object)
    y0 = np.nan_to_num(cy - size // 2).astype(int)
    x0 = np.nan_to_num(cx - size // 2).astype(int)
    y0c = np.clip(y0, 0, ny - size)
    x0c = np.clip(x0, 0, nx - size)
    iy = y0c[:, None] + np.arange(size)[None]
    ix = x0c[:, None] + np.arange(size)[None]
    crops = f[np.arange(n)[:, None, None], iy[:, :, None], ix[:, None, :]]
    crops[~valid] = np.nan
    return crops, valid, reason.astype(str)


def clip_index(time: np.ndarray) -> np.ndarray:
    """Recording segment of each frame: a new clip after a gap of more than 2 frame periods."""
    t = np.asarray(time, float)
    if len(t) < 2:
        return np.zeros(len(t), np.int64)
    return np.r_[0, np.cumsum(np.diff(t) > 2.0 * np.median(np.diff(t)))]


def hard_from_labels(time: np.ndarray, labels: np.ndarray, clip: np.ndarray | None = None, *,
                     edge: float = 0.15) -> np.ndarray:
    """Frames near a breathing-phase boundary, from the frame labels alone.

    A phase is a run of equal INH/EXH labels; its boundaries lie halfway between the last
    frame of one phase and the first of the next. A frame is *hard* when less than ``edge`` of
    its phase has elapsed or more than ``1 - edge`` (the generator's definition of its
    ``hard`` flag, there from the continuous breath model). Phases cut by the start or end of
    a clip, or by an unlabelled frame, have no known length: their frames are not hard.

    Parameters
    ----------
    time : ndarray (frame,), s
    labels : ndarray of str (frame,)
        "INH", "EXH" or "" (unlabelled).
    clip : ndarray of int (frame,), optional
        Recording segment of each frame; phases never span two clips.

    Returns
    -------
    ndarray of bool (frame,)
    """
    t = np.asarray(time, float)
    lab = np.asarray(labels).astype(str)
    n = len(t)
    clip = np.zeros(n, np.int64) if clip is None else np.asarray(clip)
    hard = np.zeros(n, bool)
    if n == 0:
        return hard
    new = np.r_[True, (lab[1:] != lab[:-1]) | (clip[1:] != clip[:-1])]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n]  # exclusive
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if lab[a] not in ("INH", "EXH") or k == 0 or b == n:
            continue
        prev, nxt = a - 1, b  # neighbouring frames, other phase of the same clip?
        if (clip[prev] != clip[a] or clip[nxt] != clip[a] or lab[prev] not in ("INH", "EXH")
                or lab[nxt] not in ("INH", "EXH")):
            continue
        t0, t1 = 0.5 * (t[prev] + t[a]), 0.5 * (t[b - 1] + t[nxt])
        frac = (t[a:b] - t0) / (t1 - t0)
        hard[a:b] = (frac < edge) | (frac > 1 - edge)
    return hard


def session_images(ds: xr.Dataset | xr.DataArray, labels: np.ndarray | None = None, *,
                   subject: str = "", session: str = "", size: int = 32,
                   source: str = "") -> ImageSet:
    """Crops of one face session as an :class:`ImageSet` (invalid frames left out, in notes).

    ``ds`` is a rendered session (a Dataset with ``frames``, ``label`` and optionally
    ``clip_index``, ``hard``, as the synthetic study's renderer returns) or a frame DataArray ``(frame, y, x)`` with ``time(frame)``; ``labels`` ("INH"/"EXH"/"") default to
    ``ds['label']``.
    """
    da = ds["frames"] if isinstance(ds, xr.Dataset) else ds
    if labels is None:
        labels = (ds["label"].values if isinstance(ds, xr.Dataset) and "label" in ds
                  else np.full(da.sizes["frame"], ""))
    labels = np.asarray(labels).astype(str)
    if len(labels) != da.sizes["frame"]:
        raise ReaderError(f"{source or subject + '/' + session}: {len(labels)} labels for "
                          f"{da.sizes['frame']} frames")
    t = np.asarray(da["time"].values, float)
    clip = (ds["clip_index"].values if isinstance(ds, xr.Dataset) and "clip_index" in ds
            else clip_index(t))
    crops, valid, reason = face_crops(da.values, size=size)
    notes = []
    if (~valid).any():
        bad = np.flatnonzero(~valid)
        notes.append(f"{subject}/{session}: {len(bad)} of {len(valid)} frames left out "
                     f"(first: frame {bad[0]}: {reason[bad[0]]})")
    y = np.select([labels == "INH", labels == "EXH"], [0, 1], -1)
    # without the generator's flag (a label file), the phase boundaries come from the labels
    hard = (ds["hard"].values if isinstance(ds, xr.Dataset) and "hard" in ds
            else hard_from_labels(t, labels, clip))
    meta = pd.DataFrame({"subject": subject, "session": session, "time": t, "clip": clip,
                         "hard": hard, "source": source, "frame": np.arange(len(t))})
    return ImageSet(to_rgb(np.nan_to_num(crops[valid])) if valid.any()
                    else np.zeros((0, size, size, 3), np.uint8),
                    y[valid], meta[valid].reset_index(drop=True), notes)


def read_image_folder(path: str | os.PathLike, *, size: int = 32,
                      subject_from: str = "parent") -> ImageSet:
    """Read a labelled image folder: ``path/INH/*.png`` and ``path/EXH/*.png``.

    Images may be RGB-coloured or grey thermal images (any size; resized to ``size`` x
    ``size``). Grey images are coloured with the same colour map as synthetic crops so both
    kinds meet the pipeline in the same form... only if they are single-channel; RGB images are
    kept as they are.

    Parameters
    ----------
    path : path-like
        Folder with sub-folders ``INH`` and ``EXH`` (case-insensitive).
    size : int
        Output size (px).
    subject_from : {"parent", "prefix"}
        Subject id of an image: ``"prefix"`` takes the file name up to the first ``_`` or
        ``-`` (so that splits can be made by subject); ``"parent"`` uses the folder name.

    Raises
    ------
    ReaderError
        Folder missing, a class folder missing or empty (single-class data set), or an
        unreadable image (naming the file).
    """
    from PIL import Image, UnidentifiedImageError

    from irtrepro.breathing.amt import to_rgb as _colour

    root = Path(path)
    if not root.is_dir():
        raise ReaderError(f"{root}: image folder not found")
    subdirs = {p.name.upper(): p for p in root.iterdir() if p.is_dir()}
    files: dict[str, list[Path]] = {}
    for cls in CLASSES:
        d = subdirs.get(cls)
        files[cls] = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) \
            if d else []
    empty = [c for c in CLASSES if not files[c]]
    if len(empty) == 2:
        raise ReaderError(f"{root}: no images in INH/ or EXH/ (expected {root}/INH/*.png and "
                          f"{root}/EXH/*.png, extensions {list(IMAGE_EXTENSIONS)})")
    if empty:
        raise ReaderError(f"{root}: single-class folder: {empty[0]}/ is missing or empty; "
                          "a classifier needs images of both INH and EXH")
    imgs, labels, subjects, sources = [], [], [], []
    for y, cls in enumerate(CLASSES):
        for p in files[cls]:
            try:
                with Image.open(p) as im:
                    im.load()
                    mode = im.mode
                    if mode in ("L", "I", "I;16", "F"):
                        a = np.asarray(im.convert("F").resize((size, size), Image.BILINEAR))
                        rgb = _colour(a[None])[0]
                    else:
                        rgb = np.asarray(im.convert("RGB").resize((size, size),
                                                                 Image.BILINEAR))
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise ReaderError(f"{p}: unreadable image ({exc})") from exc
            imgs.append(rgb)
            labels.append(y)
            subjects.append(p.stem.replace("-", "_").split("_")[0] if subject_from == "prefix"
                            else root.name)
            sources.append(str(p))
    meta = pd.DataFrame({"subject": subjects, "session": "", "time": np.nan, "clip": -1,
                         "hard": False, "source": sources, "frame": -1})
    logger.info("read %d images from %s (%d INH, %d EXH)", len(labels), root,
                len(files["INH"]), len(files["EXH"]))
    return ImageSet(np.stack(imgs).astype(np.uint8), np.array(labels), meta)


def manifest_images(manifest, *, size: int = 32, progress: bool | None = None
                    ) -> tuple[ImageSet, dict[tuple[str, str], xr.DataArray]]:
    """Crops of every session with ``face`` and ``face_labels`` files in a manifest.

    Returns the labelled :class:`ImageSet` and the frame arrays by (subject, session) (for the
    signal baseline). Sessions without face files are skipped and named in the notes.
    """
    from irtrepro._logging import progress_bar
    from irtrepro.io.registry import read

    sets, frames, notes = [], {}, []
    for entry in progress_bar(manifest.sessions, progress, desc="face sessions"):
        files = entry.files
        if "face" not in files:
            notes.append(f"{entry.subject}/{entry.session}: no face file")
            continue
        fe = files["face"]
        da = read("face", fe.path, fe.format, **(fe.options or {}))
        frames[(entry.subject, entry.session)] = da
        labels = None
        if "face_labels" in files:
            fl = files["face_labels"]
            lab = read("face_labels", fl.path, fl.format, **(fl.options or {}))
            if len(lab) != da.sizes["frame"]:
                raise ReaderError(f"{files['face_labels'].path}: {len(lab)} labels for "
                                  f"{da.sizes['frame']} frames in {fe.path}")
            labels = lab["label"].to_numpy()
        s = session_images(da, labels, subject=entry.subject, session=entry.session,
                           size=size, source=str(fe.path))
        sets.append(s)
    out = ImageSet.concat(sets)
    out.notes.extend(notes)
    return out, frames
