"""Figures of the analyses are readable: every axes with data has x and y labels with units,
no text is smaller than 7 pt, and no axis or tick label overprints one of another axes.

Runs ``analyses/time_courses.py`` and ``analyses/individual.py`` on a small synthetic Study
built in memory (no files, no browser).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from irtrepro.report.run import load_analysis  # noqa: E402
from irtrepro.study import validate_study  # noqa: E402
from irtrepro.synth.physiology import SynthConfig, simulate_study  # noqa: E402

ANALYSES = Path(__file__).resolve().parents[2] / "analyses"
THERMAL = ("tnv", "tp", "tv", "tsk_mean", "tp_entropy", "tnv_entropy")
KEEP = ("speed", "hr", "vo2", "vco2", "ve", "rf", "tcore", "phase", "viat", "protocol", "day")
MIN_PT = 7.0
#: a unit in parentheses at the end of a label: "heart rate (min-1)", "time (min)"
UNIT = re.compile(r"\([^()]+\)\s*$")


def small_study(n_subjects: int = 4, seed: int = 1) -> xr.Dataset:
    """A Study (contract of :mod:`irtrepro.study`) from the synthetic truth: thermal metrics
    on sides left, right and both (the mean of left and right); two sessions on two days, so
    the figure grids stay small and the test fast."""
    cfg = SynthConfig(n_subjects=n_subjects, seed=seed,
                      sessions=(("CON", "CON", 1), ("SI", "SI", 2)))
    truth = simulate_study(cfg)
    lr = truth[list(THERMAL)]
    both = (lr.sel(side="left") + lr.sel(side="right")) / 2
    thermal = xr.concat([lr, both.expand_dims(side=["both"])], dim="side")
    ds = truth[list(KEEP)].merge(thermal)
    for v in THERMAL:
        ds[v].attrs = dict(truth[v].attrs)
    for v in ds.data_vars:
        ds[v].attrs.setdefault("units", "1")
        ds[v].attrs.setdefault("long_name", v)
    ds.attrs = {"title": "small synthetic Study for figure tests"}
    return validate_study(ds)


@pytest.fixture(scope="module")
def study() -> xr.Dataset:
    return small_study()


def _has_data(ax) -> bool:
    return bool(ax.lines or ax.collections or ax.images)


def _label_of(ax, which: str) -> str:
    """The axes' own label, or that of an axes sharing this axis (shared grids label the
    outer row/column only)."""
    get = "get_xlabel" if which == "x" else "get_ylabel"
    own = getattr(ax, get)()
    if own.strip():
        return own
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    for other in shared.get_siblings(ax):
        lab = getattr(other, get)()
        if lab.strip():
            return lab
    return ""


def figure_problems(fig, name: str) -> list[str]:
    """Every missing label, label without units or text under ``MIN_PT`` in ``fig``."""
    fig.canvas.draw()  # tick labels exist only after a draw
    problems = []
    axes = [ax for ax in fig.axes if _has_data(ax)]
    if not axes:
        problems.append(f"{name}: no axes with data")
    for k, ax in enumerate(axes):
        for which in ("x", "y"):
            lab = _label_of(ax, which)
            if not lab.strip():
                problems.append(f"{name} axes {k}: no {which} label")
            elif not UNIT.search(lab):
                problems.append(f"{name} axes {k}: {which} label {lab!r} has no (units)")
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_PT:
            problems.append(f"{name}: text {t.get_text()!r} at {t.get_fontsize():.1f} pt")
    return problems


def _label_boxes(fig) -> list[tuple[int, str, object]]:
    """(axes index, what, bounding box in pixels) of every visible tick and axis label."""
    renderer = fig.canvas.get_renderer()
    out = []
    for k, ax in enumerate(fig.axes):
        texts = [("x label", ax.xaxis.label), ("y label", ax.yaxis.label)]
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            lo, hi = sorted(axis.get_view_interval())
            # the locator places ticks beyond the view too; those labels are never drawn
            texts += [(f"{which} tick", t) for loc, t in
                      zip(axis.get_majorticklocs(), axis.get_ticklabels(), strict=False)
                      if lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo)]
        for what, t in texts:
            if t.get_visible() and t.get_text().strip():
                out.append((k, f"{what} {t.get_text()!r}", t.get_window_extent(renderer)))
    return out


def overlap_problems(fig, name: str) -> list[str]:
    """Labels of different axes that overprint each other (axis labels, tick labels)."""
    fig.canvas.draw()
    boxes = _label_boxes(fig)
    problems = []
    for i, (ka, wa, ba) in enumerate(boxes):
        for kb, wb, bb in boxes[i + 1:]:
            # within one axes, ticks are matplotlib's business; across axes they are ours
            if ka != kb and ba.overlaps(bb):
                problems.append(f"{name}: axes {ka} {wa} overlaps axes {kb} {wb}")
    return problems


@pytest.mark.parametrize("analysis", ["time_courses", "individual"])
def test_no_label_overprints_another_axes(study, analysis):
    mod = load_analysis(analysis, ANALYSES)
    part = mod.run(study, seed=0)
    try:
        problems = [p for name, (fig, _caption) in part.figures.items()
                    for p in overlap_problems(fig, f"{analysis}/{name}")]
        assert not problems, "\n".join(problems[:20])
    finally:
        for fig, _ in part.figures.values():
            plt.close(fig)


def test_overlap_check_catches_overprinted_labels():
    fig, axes = plt.subplots(2, 1, figsize=(3, 1.2))  # far too small for two labelled axes
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_ylabel("a long label that cannot fit (units)")
        ax.set_xlabel("time (min)")
    try:
        problems = overlap_problems(fig, "bad")
    finally:
        plt.close(fig)
    assert problems and "overlaps" in problems[0]


@pytest.mark.parametrize("analysis", ["time_courses", "individual"])
def test_figures_have_labelled_axes_with_units_and_readable_fonts(study, analysis):
    mod = load_analysis(analysis, ANALYSES)
    part = mod.run(study, seed=0)
    try:
        assert part.figures, f"{analysis} made no figures (notes: {part.notes})"
        problems = [p for name, (fig, _caption) in part.figures.items()
                    for p in figure_problems(fig, f"{analysis}/{name}")]
        assert not problems, "\n".join(problems)
        for name, (_fig, caption) in part.figures.items():
            assert caption.strip(), f"{analysis}/{name} has no caption"
    finally:
        for fig, _ in part.figures.values():
            plt.close(fig)


def test_figure_check_catches_unlabelled_axes_and_tiny_fonts():
    fig, ax = plt.subplots()
    ax.plot(np.arange(3), np.arange(3))
    ax.set_xlabel("time")  # no units
    ax.tick_params(labelsize=5)
    try:
        problems = "\n".join(figure_problems(fig, "bad"))
    finally:
        plt.close(fig)
    assert "x label 'time' has no (units)" in problems
    assert "no y label" in problems
    assert "at 5.0 pt" in problems
