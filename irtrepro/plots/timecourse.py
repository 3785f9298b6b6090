"""Time courses and relations of Study variables: mean ± SD over subjects, phases shaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

_PHASE_COLOURS = {"warmup": "#fde8c8", "steady": "#dbe9f6", "intervals": "#f6d5d5",
                  "recovery": "#e2f0d9"}


#: short names of Study variables for axis labels in grids, where a long_name would overprint
#: the neighbouring panel's label
SHORT_NAMES = {"speed": "speed", "hr": "HR", "vo2": "VO$_2$", "vco2": "VCO$_2$",
               "ve": "VE", "rf": "RF", "rer": "RER", "tcore": "T$_{core}$",
               "tsk_mean": "T$_{sk}$", "tnv": "TNV", "tp": "TP", "tv": "TV",
               "tp_entropy": "TP entropy", "tnv_entropy": "TNV entropy", "rf_irt": "RF$_{IRT}$",
               "cadence": "cadence"}

#: CF-style unit strings as a reader expects them on a figure
PRETTY_UNITS = {"degC": "\u00b0C", "min-1": "min\u207b\u00b9", "1/min": "min\u207b\u00b9",
                "mL min-1": "mL min\u207b\u00b9", "mL/min": "mL min\u207b\u00b9",
                "L min-1": "L min\u207b\u00b9", "L/min": "L min\u207b\u00b9",
                "km h-1": "km h\u207b\u00b9", "km/h": "km h\u207b\u00b9", "bit": "bit",
                "bits": "bit"}


def label(da: xr.DataArray, name: str | None = None) -> str:
    """Axis label ``long_name (units)`` of a Study variable."""
    ln = da.attrs.get("long_name", name or da.name)
    u = da.attrs.get("units", "")
    return f"{ln} ({u})" if u and u != "1" else str(ln)


def short_label(da: xr.DataArray, name: str | None = None) -> str:
    """Short axis label with units, e.g. ``TNV (°C)``, for panels stacked in a grid.

    Falls back on :func:`label` for a variable without a short name.
    """
    name = name or str(da.name)
    if name not in SHORT_NAMES:
        return label(da, name)
    u = da.attrs.get("units", "")
    u = PRETTY_UNITS.get(u, u)
    return f"{SHORT_NAMES[name]} ({u})" if u and u != "1" else SHORT_NAMES[name]


def shade_phases(ax, time: np.ndarray, phase: np.ndarray) -> None:
    """Shade contiguous phases of one session on ``ax`` (time in minutes)."""
    phase = np.asarray(phase).astype(str)
    if phase.size == 0:
        return
    change = np.r_[0, np.flatnonzero(phase[1:] != phase[:-1]) + 1, phase.size]
    for a, b in zip(change[:-1], change[1:], strict=True):
        p = phase[a]
        if p in _PHASE_COLOURS:
            ax.axvspan(time[a] / 60, time[b - 1] / 60, color=_PHASE_COLOURS[p], lw=0, zorder=0)


def time_course_figure(study: xr.Dataset, variables: Sequence[str], *,
                       sessions: Sequence[str] | None = None, side: str = "both",
                       band: str = "sd") -> Any:
    """Grid of mean ± SD (or 95 % CI) over subjects; rows variables, columns sessions.

    Parameters
    ----------
    study : xarray.Dataset
        The Study.
    variables : sequence of str
        Variables on (subject, session, time[, side]).
    sessions : sequence of str, optional
        Columns (default: every session).
    side : str
        Side shown for thermal variables.
    band : {"sd", "ci"}
        Band: ± SD across subjects, or the t-based 95 % CI of the mean.

    Returns
    -------
    matplotlib.figure.Figure
        Rows labelled with :func:`short_label` (the long names are in the caption), laid out
        by matplotlib's constrained layout so that no label overprints another.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from scipy import stats

    sessions = list(sessions or study.session.values)
    variables = [v for v in variables if v in study]
    fig, axes = plt.subplots(len(variables), len(sessions), figsize=(3.6 * len(sessions),
                             1.9 * len(variables)), sharex=True, sharey="row", squeeze=False,
                             layout="constrained")
    # room between panels, so that the end ticks of neighbouring panels never touch
    fig.get_layout_engine().set(hspace=0.06, wspace=0.06)
    t = study.time.values
    for i, v in enumerate(variables):
        da = study[v]
        if "side" in da.dims:
            da = da.sel(side=side)
        for j, s in enumerate(sessions):
            ax = axes[i, j]
            x = da.sel(session=s)
            n = x.notnull().sum("subject")
            m = x.mean("subject")
            sd = x.std("subject", ddof=1)
            half = sd if band == "sd" else sd / np.sqrt(n) * stats.t.ppf(0.975, np.maximum(n - 1, 1))
            ok = np.isfinite(m.values)
            shade_phases(ax, t, study.phase.sel(session=s).isel(subject=0).values)
            ax.fill_between(t[ok] / 60, (m - half).values[ok], (m + half).values[ok],
                            color="C0", alpha=0.3, lw=0)
            ax.plot(t[ok] / 60, m.values[ok], color="C0", lw=1)
            if i == 0:
                proto = str(study.protocol.sel(session=s).values.flat[0]) \
                    if "protocol" in study else s
                ax.set_title(f"{s} ({proto})", fontsize=10)
            if j == 0:
                ax.set_ylabel(short_label(study[v], v), fontsize=8)
            if i == len(variables) - 1:
                ax.set_xlabel("time since exercise start (min)")
            ax.tick_params(labelsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(4))
    what = "SD" if band == "sd" else "95 % CI"
    fig.suptitle(f"Mean ± {what} over subjects; shaded: warm-up, steady, intervals, recovery",
                 fontsize=10)
    return fig


def scatter_fit(x: np.ndarray, y: np.ndarray, *, xlabel: str, ylabel: str, labels=None,
                title: str = "", ax: Any = None) -> Any:
    """Scatter with least-squares line and its 95 % confidence band."""
    import matplotlib.pyplot as plt
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 3.8))
    ax.scatter(x[ok], y[ok], color="C0", zorder=3)
    if labels is not None:
        for xi, yi, lab in zip(x[ok], y[ok], np.asarray(labels)[ok], strict=True):
            ax.annotate(str(lab), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if ok.sum() >= 3:
        res = stats.linregress(x[ok], y[ok])
        xs = np.linspace(x[ok].min(), x[ok].max(), 50)
        n = ok.sum()
        resid = y[ok] - (res.intercept + res.slope * x[ok])
        s = np.sqrt((resid**2).sum() / (n - 2))
        xm = x[ok].mean()
        band = stats.t.ppf(0.975, n - 2) * s * np.sqrt(1 / n + (xs - xm) ** 2
                                                       / ((x[ok] - xm) ** 2).sum())
        fit = res.intercept + res.slope * xs
        ax.plot(xs, fit, color="C3")
        ax.fill_between(xs, fit - band, fit + band, color="C3", alpha=0.15, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if fig is not None:
        fig.tight_layout()
        return fig
    return ax.figure


def heatmap(table, *, row: str, col: str, value: str, title: str = "",
            mark: str | None = None, vmin: float = -1, vmax: float = 1, cbar_label: str = "r") -> Any:
    """Heatmap of ``value`` by ``row`` x ``col`` from a tidy table; ``mark`` (bool column) adds *."""
    import matplotlib.pyplot as plt

    piv = table.pivot(index=row, columns=col, values=value)
    fig, ax = plt.subplots(figsize=(1.1 * piv.shape[1] + 2.5, 0.45 * piv.shape[0] + 1.6))
    im = ax.imshow(piv.values.astype(float), cmap="RdBu_r", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(piv.shape[1]), piv.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(piv.shape[0]), piv.index, fontsize=8)
    marks = table.pivot(index=row, columns=col, values=mark) if mark else None
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.values[i, j]
            if np.isfinite(v):
                star = "*" if marks is not None and bool(marks.values[i, j]) else ""
                ax.text(j, i, f"{v:.2f}{star}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label=cbar_label)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
