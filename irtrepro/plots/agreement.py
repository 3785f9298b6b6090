"""Agreement and reliability figures: Bland–Altman plot, method comparison, ICC forest plot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from irtrepro.errors import StatsError

__all__ = ["bland_altman_plot", "icc_forest_plot", "method_comparison"]


def _figure(ax, size):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def bland_altman_plot(
    result: Any,
    *,
    units: str = "",
    measure: str = "",
    x_name: str = "x",
    y_name: str = "y",
    ax: Any = None,
    show_ci: bool = True,
    show_regression: bool = False,
) -> Any:
    """Bland–Altman plot of a :class:`~irtrepro.stats.BlandAltman` (or repeated) result.

    Parameters
    ----------
    result : BlandAltman or BlandAltmanRepeated
    units : str
        Units of the measure, shown on both axes (e.g. ``"degC"``, ``"L/min"``).
    measure : str
        Name of the measure (axis labels).
    x_name, y_name : str
        Names of the two methods; the difference is ``x_name - y_name``.
    ax : matplotlib Axes, optional
    show_ci : bool
        Shade the confidence intervals of the bias and of the limits (when the result has them).
    show_regression : bool
        Draw the proportional-bias regression line (difference on mean).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not hasattr(result, "diffs") or not hasattr(result, "loa_low"):
        raise StatsError(f"bland_altman_plot takes a BlandAltman result, got {type(result).__name__}")
    fig, ax = _figure(ax, (6, 4.5))
    log = bool(getattr(result, "log", False))
    means = np.exp(result.means) if log else result.means
    diffs = np.exp(result.diffs) if log else result.diffs
    ax.scatter(means, diffs, s=18, color="0.2", alpha=0.8, zorder=3)
    u = f" ({units})" if units and not log else ""
    what = f"{measure} " if measure else ""
    ax.set_xlabel(f"Mean of {x_name} and {y_name} {what}{u}".replace("  ", " ").strip()
                  if not log else f"Geometric mean of {x_name} and {y_name} {what}"
                  f"({units})".replace("()", "").strip())
    if log:
        ax.set_ylabel(f"Ratio {x_name} / {y_name} (unitless)")
    else:
        ax.set_ylabel(f"Difference {x_name} − {y_name}{u}")
    lines = [("bias", result.bias, getattr(result, "bias_ci", None), "C0", "-"),
             ("lower LoA", result.loa_low, getattr(result, "loa_low_ci", None), "C3", "--"),
             ("upper LoA", result.loa_high, getattr(result, "loa_high_ci", None), "C3", "--")]
    for label, val, ci, color, ls in lines:
        ax.axhline(val, color=color, ls=ls, lw=1.5, label=f"{label} {val:.4g}")
        if show_ci and ci is not None and np.all(np.isfinite(ci)):
            ax.axhspan(ci[0], ci[1], color=color, alpha=0.12, lw=0)
    if show_regression and np.isfinite(getattr(result, "slope", np.nan)) and not log:
        xs = np.linspace(np.min(means), np.max(means), 50)
        ax.plot(xs, result.intercept + result.slope * xs, color="C2", lw=1,
                label=f"regression, slope {result.slope:.3g} (p={result.slope_p:.2g})")
    ax.axhline(1.0 if log else 0.0, color="0.6", lw=0.8, zorder=1)
    n = getattr(result, "n", getattr(result, "n_obs", len(diffs)))
    level = getattr(result, "ci_level", 0.95)
    ax.set_title(f"Bland–Altman, n = {n}, limits ±{result.agreement} SD"
                 + (f", {int(round(level * 100))}% CI shaded" if show_ci else ""), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return fig


def method_comparison(result: Any, *, units: str = "", measure: str = "",
                      x_name: str = "x", y_name: str = "y") -> Any:
    """Two panels: ``x`` against ``y`` with the identity line, and the Bland–Altman plot.

    Parameters
    ----------
    result : BlandAltman
        Of :func:`irtrepro.stats.bland_altman` (its ``means`` and ``diffs`` give the pairs).
    units, measure, x_name, y_name : str
        As in :func:`bland_altman_plot`; the difference is ``x_name - y_name``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not hasattr(result, "diffs") or not hasattr(result, "loa_low"):
        raise StatsError(f"method_comparison takes a BlandAltman result, got "
                         f"{type(result).__name__}")
    x = np.asarray(result.means) + np.asarray(result.diffs) / 2
    y = np.asarray(result.means) - np.asarray(result.diffs) / 2
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    ax[0].plot(y, x, ".", ms=3, alpha=0.5, color="0.2")
    lim = [min(x.min(), y.min()) - 2, max(x.max(), y.max()) + 2] if x.size else [0, 1]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    u = f" ({units})" if units else ""
    what = f" {measure}" if measure else ""
    ax[0].set(xlabel=f"{y_name}{what}{u}", ylabel=f"{x_name}{what}{u}",
              title=f"{x_name} vs {y_name}")
    bland_altman_plot(result, units=units, measure=measure, x_name=x_name, y_name=y_name,
                      ax=ax[1])
    return fig


def icc_forest_plot(
    table: pd.DataFrame,
    *,
    form: str | Sequence[str] = "ICC(C,1)",
    label: str = "metric",
    ax: Any = None,
    reference: tuple[float, ...] = (0.5, 0.75, 0.9),
) -> Any:
    """Forest plot of ICCs with confidence intervals, one line per metric.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`irtrepro.stats.icc` (or the ``statistic == "icc"`` rows of
        :func:`irtrepro.stats.reliability`).
    form : str or sequence of str
        McGraw–Wong form(s) to show, e.g. ``"ICC(C,1)"`` or ``("ICC(A,1)", "ICC(C,1)")``:
        several forms are drawn side by side on each line (first form filled circles, with
        a legend).
    label : str
        Column naming each line.
    reference : tuple of float
        Vertical guides (Koo & Li 2016 thresholds: poor < 0.5 < moderate < 0.75 < good < 0.9).

    Returns
    -------
    matplotlib.figure.Figure
    """
    forms = [form] if isinstance(form, str) else list(form)
    if not forms:
        raise StatsError("form=(); name at least one ICC form")
    if "form" in table.columns:
        key, est = "form", "icc"
        sel = table[table["form"].isin(forms)]
    elif {"statistic", "term"} <= set(table.columns):
        key, est = "term", "estimate"
        sel = table[(table["statistic"] == "icc") & (table["term"].isin(forms))]
    else:
        raise StatsError("icc_forest_plot takes the table of icc() or reliability()")
    missing = [f for f in forms if f not in set(sel[key])]
    if missing:
        raise StatsError(f"no rows with form {missing[0]!r}; forms: "
                         f"{sorted(set(table.get(key, [])))}")
    if label not in sel.columns:
        raise StatsError(f"label={label!r} is not a column; columns: {list(sel.columns)}")
    labels = list(dict.fromkeys(sel[label].astype(str)))
    fig, ax = _figure(ax, (6, 0.35 * len(labels) * max(1, 0.7 * len(forms)) + 1.6))
    ypos = dict(zip(labels, np.arange(len(labels))[::-1], strict=True))
    styles = [("o", "0.15", "0.4"), ("s", "white", "0.55"), ("^", "0.6", "0.6"),
              ("D", "white", "0.3")]
    width = 0.5 if len(forms) > 1 else 0.0
    for i, f in enumerate(forms):
        rows = sel[sel[key] == f]
        off = (i - (len(forms) - 1) / 2) * (width / max(len(forms) - 1, 1))
        y = np.array([ypos[str(v)] for v in rows[label]]) + off
        marker, face, edge = styles[i % len(styles)]
        sf = rows["shrout_fleiss"].iloc[0] if "shrout_fleiss" in rows else ""
        # ICC(A,.)'s approximate (Satterthwaite-df) CI need not contain the estimate in small
        # samples (psych::ICC alike); the bar then ends at the estimate on that side
        lo = np.clip(rows[est] - rows["ci_low"], 0, None)
        hi = np.clip(rows["ci_high"] - rows[est], 0, None)
        ax.errorbar(rows[est], y, xerr=[lo, hi],
                    fmt=marker, mfc=face, mec="0.15", color="0.15", ecolor=edge, capsize=3,
                    ms=5, label=f"{f}{' (' + sf + ')' if sf else ''}")
    for r in reference:
        ax.axvline(r, color="0.8", lw=0.8, ls=":")
    ax.set_yticks(list(ypos.values()), list(ypos))
    level = sel["ci_level"].iloc[0] if "ci_level" in sel else 0.95
    if len(forms) == 1:
        sf = sel["shrout_fleiss"].iloc[0] if "shrout_fleiss" in sel else ""
        name = f"{forms[0]}{' (' + sf + ')' if sf else ''}"
    else:
        name = "ICC"
        ax.legend(loc="lower left", fontsize="small", frameon=False)
    ax.set_xlabel(f"{name}, unitless, with {int(round(level * 100))}% CI")
    ax.set_ylabel(label)
    lo = min(0.0, float(np.nanmin(sel["ci_low"])))
    ax.set_xlim(lo - 0.05, 1.02)
    return fig
