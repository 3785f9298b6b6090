"""Figures from results: data or result objects in, matplotlib Figure out.

matplotlib is imported inside each figure function, so importing this package is cheap.
"""

from irtrepro.plots.agreement import bland_altman_plot, icc_forest_plot

__all__ = ["bland_altman_plot", "icc_forest_plot"]
