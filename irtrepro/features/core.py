"""Vectorised skin-temperature features of thermal frames given ROI and vessel masks.

All statistics of a block of frames are computed at once, with no Python loop over frames,
pixels or regions. Region statistics come from one pass over each block into fixed-bin
histograms per (frame, side, vessel label) (:mod:`irtrepro.features.histstats`), or, exactly,
from ONE sort of the skin pixels per block (each pixel offset by ``group_id * 1000`` degC, so
one float64 sort orders the groups and the values within them). Connected components of
veins, perforators and each calf come from the row runs of the whole stack
(:func:`irtrepro.features.runlabel.label_runs`, 8-connected within a frame).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from irtrepro.errors import OptionError, ReaderError
from irtrepro.features.histstats import hist_region_stats
from irtrepro.features.runlabel import Runs, label_runs_of_values

__all__ = [
    "REGIONS", "SIDES", "STATS", "PERCENTILES", "FeatureContext", "region_stats",
    "component_stats", "quality_flags",
]

SIDES = ("left", "right", "both")
#: region name -> vessel labels it contains (calf: all of them)
REGIONS = {"calf": (0, 1, 2), "tnv": (0,), "tv": (1,), "tp": (2,)}
PERCENTILES = (5, 25, 75, 95)
STATS = ("mean", "median", "sd", "min", "max", *(f"p{q}" for q in PERCENTILES), "area",
         "entropy")
_QUANTILES = {"median": 0.5, "min": 0.0, "max": 1.0, **{f"p{q}": q / 100 for q in PERCENTILES}}
_OFFSET = 1000.0  # degC between groups in the single sort; far above any plausible range


class MaskMismatchError(ReaderError):
    """Masks do not match the frames (shape, labels)."""


def crop_to_calves(f: np.ndarray, r: np.ndarray, v: np.ndarray, margin: int = 2):
    """Views of the arrays cut to the calves' bounding box over all frames (plus ``margin``).

    Every feature is a function of the calf pixels and their immediate neighbours (the
    sharpness looks one pixel across the border), so the rest of the frame is dead weight:
    cutting it first halves the work of the whole-frame steps (labelling, differences).
    """
    # the frame-wise maximum first: one contiguous pass, then only a (y, x) image to scan
    calf = (r.max(0) > 0) if r.shape[0] else np.zeros(r.shape[1:], bool)
    rows, cols = np.flatnonzero(calf.any(1)), np.flatnonzero(calf.any(0))
    if rows.size == 0:
        return f, r, v
    y0, y1 = max(0, rows[0] - margin), min(f.shape[1], rows[-1] + 1 + margin)
    x0, x1 = max(0, cols[0] - margin), min(f.shape[2], cols[-1] + 1 + margin)
    return tuple(np.ascontiguousarray(a[:, y0:y1, x0:x1]) for a in (f, r, v))


def _as_arrays(frames, roi, vessels, source: str = "<array>"):
    f = np.asarray(frames)
    r = np.asarray(roi)
    v = np.asarray(vessels)
    if f.ndim == 2:
        f, r, v = f[None], r[None], v[None]
    if f.ndim != 3:
        raise MaskMismatchError(f"{source}: frames must be (frame, y, x), got shape {f.shape}")
    if r.shape != f.shape or v.shape != f.shape:
        raise MaskMismatchError(f"{source}: masks roi {r.shape} / vessels {v.shape} do not match "
                                f"frames {f.shape}")
    for name, m, hi in (("roi", r, 2), ("vessels", v, 2)):
        if m.size and ((m.dtype.kind != "u" and m.min() < 0) or m.max() > hi):
            bad = int(np.argmax((m.reshape(m.shape[0], -1) > hi).any(1)
                                | (m.reshape(m.shape[0], -1) < 0).any(1)))
            raise MaskMismatchError(f"{source}: {name} has labels outside 0..{hi} "
                                    f"(first at frame {bad})")
    return f, r, v


@dataclass
class FeatureContext:
    """Frames and masks of a batch, plus settings, handed to each feature family.

    Attributes
    ----------
    frames : ndarray (frame, y, x), degC
    roi, vessels : ndarray (frame, y, x), int
    bin_width : float
        Histogram bin width for entropies and the histogram order statistics (degC).
    cache : dict
        Results families share (e.g. the region statistics).
    frame_shape : (int, int), optional
        Shape (y, x) of the original frames when ``frames`` is a crop around the calves
        (area fractions refer to the whole frame); default ``frames.shape[1:]``.
    exact : bool
        Order statistics (min, max, median, percentiles) from one sort per block, exact,
        instead of from the fixed-bin histograms (within one ``bin_width``, several times
        faster); see :func:`region_stats`.
    """

    frames: np.ndarray
    roi: np.ndarray
    vessels: np.ndarray
    bin_width: float = 0.1
    cache: dict = field(default_factory=dict)
    frame_shape: tuple[int, int] | None = None
    exact: bool = False

    def __post_init__(self):
        if self.frame_shape is None:
            self.frame_shape = tuple(self.frames.shape[1:])

    @property
    def n_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def calf(self) -> np.ndarray:
        """``roi > 0``, computed once and shared by the feature families that need it."""
        if "calf" not in self.cache:
            self.cache["calf"] = self.roi > 0
        return self.cache["calf"]


def region_stats(ctx: FeatureContext, block: int | None = None) -> dict[str, np.ndarray]:
    """Per-frame statistics of each region and side.

    Returns
    -------
    dict
        ``{f"{region}_{stat}": ndarray (frame, 3)}`` for regions calf, tnv, tv, tp, stats
        mean, median, sd (population, ddof=0), min, max, p5/p25/p75/p95 (linear
        interpolation, numpy's default), area (pixels) and entropy (bits of the histogram
        with bins ``[k*bin_width, (k+1)*bin_width)``); sides left, right, both. Empty regions
        give NaN (area 0). Non-finite pixels are ignored (the quality flags report them).

    Notes
    -----
    Frames are processed ``block`` at a time (bounded memory; default about 2^20 pixels per
    block for the histogram path, 256 frames for the exact one). By default each block is
    read once into fixed-bin histograms per (frame, side, vessel label)
    (:func:`irtrepro.features.histstats.hist_region_stats`): means, SDs, areas and entropies
    are exact, order statistics are within one ``bin_width`` of numpy's. With
    ``ctx.exact`` (or when a block's skin temperatures span more than 4096 bins) the order
    statistics come from one sort per block instead: each pixel value is shifted by
    ``group * 1000 + 100`` degC and the block sorted by value only (numpy's SIMD sort);
    values are recovered up to ~1e-9 degC.
    """
    if "region_stats" in ctx.cache:
        return ctx.cache["region_stats"]
    n = ctx.n_frames
    if block is None:
        px = int(np.prod(ctx.frames.shape[1:])) or 1
        block = 256 if ctx.exact else max(1, min(256, (1 << 20) // px))
    parts = []
    for a in range(0, n, block):
        f, r, v = ctx.frames[a:a + block], ctx.roi[a:a + block], ctx.vessels[a:a + block]
        part = None if ctx.exact else hist_region_stats(f, r, v, ctx.bin_width, _QUANTILES)
        parts.append(part if part is not None else _region_stats_block(f, r, v, ctx.bin_width))
    out = {}
    for r, name in enumerate(REGIONS):
        for stat in STATS:
            out[f"{name}_{stat}"] = (np.concatenate([p[stat][:, r, :] for p in parts])
                                     if parts else np.zeros((0, 3)))
    ctx.cache["region_stats"] = out
    return out


def _region_stats_block(f: np.ndarray, roi: np.ndarray, ves: np.ndarray, bin_width: float
                        ) -> dict[str, np.ndarray]:
    n = f.shape[0]
    n_reg = len(REGIONS)
    n_grp = n_reg * 3
    skin = (roi > 0) & np.isfinite(f)
    fi = np.nonzero(skin)[0]
    side = roi[skin].astype(np.int64) - 1                    # 0 left, 1 right
    reg = 1 + ves[skin].astype(np.int64)                     # tnv=1, tv=2, tp=3 (REGIONS order)
    val = f[skin].astype(np.float64)
    # every skin pixel belongs to: calf/its side, calf/both, vessel region/its side, .../both
    base = fi * n_grp
    key = np.concatenate([base + side, base + 2, base + reg * 3 + side, base + reg * 3 + 2])
    vals = np.tile(val, 4)
    size = n * n_grp
    cnt_i = np.bincount(key, minlength=size)
    cnt = cnt_i.astype(np.float64)
    s1 = np.bincount(key, vals, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        # SD from centred values: no catastrophic cancellation at ~30 degC
        dev = vals - mean[key]
        sd = np.sqrt(np.bincount(key, dev * dev, minlength=size) / cnt)
    if vals.size and (val.min() >= -100 and val.max() < _OFFSET - 100):
        sk = np.repeat(np.arange(size), cnt_i)
        sv = np.sort(key * _OFFSET + (vals + 100.0)) - sk * _OFFSET - 100.0
    else:
        order = np.lexsort((vals, key))
        sk, sv = key[order], vals[order]
    start = np.concatenate([[0], np.cumsum(cnt_i)[:-1]]).astype(np.int64)
    has = cnt_i > 0

    def quantile(q: float) -> np.ndarray:
        out = np.full(size, np.nan)
        pos = (cnt_i[has] - 1) * q
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, cnt_i[has] - 1)
        frac = pos - lo
        a, b = sv[start[has] + lo], sv[start[has] + hi]
        out[has] = a + (b - a) * frac
        return out

    res = {"mean": mean, "sd": sd, "median": quantile(0.5), "min": quantile(0.0),
           "max": quantile(1.0)}
    for q in PERCENTILES:
        res[f"p{q}"] = quantile(q / 100)
    res["area"] = cnt
    # entropy: runs of equal (group, bin) in the sorted order are the histogram's counts
    b = np.floor(sv / bin_width).astype(np.int64)
    if sk.size:
        new_run = np.r_[True, (sk[1:] != sk[:-1]) | (b[1:] != b[:-1])]
        run_len = np.diff(np.r_[np.flatnonzero(new_run), sk.size]).astype(np.float64)
        run_grp = sk[new_run]
        p = run_len / cnt[run_grp]
        ent = -np.bincount(run_grp, p * np.log2(p), minlength=size)
    else:
        ent = np.zeros(size)
    res["entropy"] = np.where(has, ent + 0.0, np.nan)
    return {k: v.reshape(n, n_reg, 3) for k, v in res.items()}


def component_stats(ctx: FeatureContext) -> dict[str, np.ndarray]:
    """Connected components (8-connected, within a frame) of veins and perforators.

    Returns
    -------
    dict
        ``{vessel}_count``, ``{vessel}_area_total``, ``{vessel}_area_mean`` (pixels) and
        ``{vessel}_comp_temp`` (degC, mean over components of each component's mean
        temperature), vessel in {vein, perforator}, each (frame, 3) for left/right/both. A
        component is assigned to the side of the majority of its pixels. Counts are 0 and
        means NaN where there are no components.
    """
    if "component_stats" in ctx.cache:
        return ctx.cache["component_stats"]
    n = ctx.n_frames
    # vessel labels inside the calves (a product: ~20x faster than np.where here), both
    # classes labelled in one pass
    inside = np.multiply(ctx.vessels, ctx.calf.view(np.uint8), dtype=np.uint8,
                         casting="unsafe")  # labels are 0..2, checked by _as_arrays
    by_label = label_runs_of_values(inside, (1, 2))
    frames, roi = ctx.frames.ravel(), ctx.roi.ravel()
    out = {}
    for lab, name in ((1, "vein"), (2, "perforator")):
        runs = by_label[lab]
        ncomp = runs.n_components
        # pixels in C order, each with its component: the order of a boolean gather
        cid = np.repeat(runs.label, runs.length)
        area = np.bincount(runs.label, runs.length, minlength=ncomp)
        px = runs.pixels()
        tv = frames[px].astype(np.float64)
        ok = np.isfinite(tv)
        if not ok.all():
            cid_ok, tv = cid[ok], tv[ok]
        else:
            cid_ok = cid
        tsum = np.bincount(cid_ok, tv, minlength=ncomp)
        tcnt = np.bincount(cid_ok, minlength=ncomp)
        with np.errstate(invalid="ignore", divide="ignore"):
            ctemp = tsum / tcnt
        # frame and majority side of each component
        cframe = runs.frame[runs.first]
        right = np.bincount(cid, roi[px] == 2, minlength=ncomp)
        cside = (right * 2 > area).astype(np.int64)
        res = {k: np.zeros((n, 3)) for k in ("count", "area_total", "tsum", "tcnt")}
        for s_idx, sel in ((0, cside == 0), (1, cside == 1), (2, np.ones(ncomp, bool))):
            fr = cframe[sel]
            res["count"][:, s_idx] = np.bincount(fr, minlength=n)
            res["area_total"][:, s_idx] = np.bincount(fr, area[sel], minlength=n)
            good = np.isfinite(ctemp[sel])
            res["tsum"][:, s_idx] = np.bincount(fr[good], ctemp[sel][good], minlength=n)
            res["tcnt"][:, s_idx] = np.bincount(fr[good], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{name}_count"] = res["count"]
            out[f"{name}_area_total"] = res["area_total"]
            out[f"{name}_area_mean"] = np.where(res["count"] > 0,
                                                res["area_total"] / res["count"], np.nan)
            out[f"{name}_comp_temp"] = np.where(res["tcnt"] > 0, res["tsum"] / res["tcnt"],
                                                np.nan)
    ctx.cache["component_stats"] = out
    return out


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the per-frame quality flags.

    Attributes
    ----------
    min_area_fraction, max_area_fraction : float
        Plausible area of ONE calf as a fraction of the frame.
    max_components : int
        A calf mask split into more pieces than this is implausible.
    plausible_range : (float, float)
        Plausible skin temperatures (degC); a calf pixel outside is flagged.
    min_sharpness : float
        Minimum mean absolute horizontal temperature step across the calf border (degC per
        pixel); motion blur lowers it. Relative to the batch median when ``relative`` is True.
    relative_sharpness : bool
        Compare sharpness with ``min_sharpness * median`` of the batch instead of absolutely.
    """

    min_area_fraction: float = 0.01
    max_area_fraction: float = 0.35
    max_components: int = 1
    plausible_range: tuple[float, float] = (15.0, 42.0)
    min_sharpness: float = 0.6
    relative_sharpness: bool = True


def _side_runs(roi: np.ndarray) -> tuple[Runs, Runs]:
    """Row runs and in-plane components of each calf (roi labels 1 and 2)."""
    # each side labelled on its own (a component never spans both calves), in one pass
    runs = label_runs_of_values(roi, (1, 2))
    return runs[1], runs[2]


_QUALITY_BLOCK = 32  # frames per pass: the temporaries of a block stay in cache


def _range_and_sharpness(f: np.ndarray, calf: np.ndarray, plausible: tuple[float, float]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: any calf pixel outside ``plausible`` (or non-finite), and the sharpness.

    Frames are independent, so they are taken a block at a time with the temporaries reused
    (the per-frame sums are the same whatever the block).
    """
    n, h, w = f.shape
    lo, hi = plausible
    flag_range = np.zeros(n, bool)
    sharp = np.zeros(n, np.float64)
    for a in range(0, n, _QUALITY_BLOCK):
        fb, cb = f[a:a + _QUALITY_BLOCK], calf[a:a + _QUALITY_BLOCK]
        m = fb.shape[0]
        inside = fb >= lo
        inside &= fb <= hi                       # NaN compares False: flagged
        flag_range[a:a + m] = (cb > inside).reshape(m, h * w).any(1)
        same = cb[:, :, 1:] == cb[:, :, :-1]
        step = np.diff(fb, axis=2)
        np.abs(step, out=step)
        np.copyto(step, 0, where=same)          # only steps across the calf border count
        edges = (w - 1) * h - np.count_nonzero(same.reshape(m, -1), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sharp[a:a + m] = step.sum((1, 2), dtype=np.float64) / edges
    return flag_range, sharp


def quality_flags(ctx: FeatureContext, settings: QualitySettings | None = None
                  ) -> dict[str, np.ndarray]:
    """Per-frame quality flags (bool, frame) and the sharpness score.

    Returns
    -------
    dict
        ``flag_area`` (a calf missing, too small or too large), ``flag_shape`` (a calf in
        several pieces), ``flag_range`` (calf pixels non-finite or outside the plausible range),
        ``flag_blur`` (border sharpness low), ``sharpness`` (degC/pixel) and ``valid`` (no
        flag), each of shape (frame,).
    """
    st = settings or ctx.cache.get("quality_settings") or QualitySettings()
    f, roi = ctx.frames, ctx.roi
    n = ctx.n_frames
    h, w = ctx.frame_shape
    sides = _side_runs(roi)
    # pixels and components per frame of each calf, from its runs (integers, exact)
    areas = np.stack([np.bincount(r.frame, r.length, minlength=n) for r in sides], 1) / (h * w)
    flag_area = ((areas < st.min_area_fraction) | (areas > st.max_area_fraction)).any(1)
    ncomp = np.stack([np.bincount(r.frame[r.first], minlength=n) for r in sides], 1)
    flag_shape = (ncomp > st.max_components).any(1)
    flag_range, sharp = _range_and_sharpness(f, ctx.calf, st.plausible_range)
    ref = 1.0
    if st.relative_sharpness:
        ref = np.nanmedian(sharp) if np.isfinite(sharp).any() else np.nan
    thr = st.min_sharpness * ref
    flag_blur = ~(sharp >= thr)
    valid = ~(flag_area | flag_shape | flag_range | flag_blur)
    return {"flag_area": flag_area, "flag_shape": flag_shape, "flag_range": flag_range,
            "flag_blur": flag_blur, "sharpness": sharp, "valid": valid}


FamilyFunc = Callable[[FeatureContext], dict[str, np.ndarray]]


def check_bin_width(bin_width: float) -> float:
    if not (np.isfinite(bin_width) and bin_width > 0):
        raise OptionError(f"bin_width={bin_width!r}; expected a positive width in degC")
    return float(bin_width)


def to_dataset(values: dict[str, np.ndarray], meta: dict[str, tuple[str, str]],
               time: np.ndarray | None) -> xr.Dataset:
    """Assemble ``{name: (frame,) or (frame, 3)}`` into a Dataset on (time, side)."""
    data = {}
    for name, arr in values.items():
        units, long_name = meta.get(name, ("1", name))
        dims = ("time", "side") if arr.ndim == 2 else ("time",)
        data[name] = (dims, arr, {"units": units, "long_name": long_name})
    n = next(iter(values.values())).shape[0] if values else 0
    t = np.arange(n, dtype=float) if time is None else np.asarray(time, dtype=float)
    return xr.Dataset(data, coords={"time": ("time", t, {"units": "s"}), "side": list(SIDES)})
