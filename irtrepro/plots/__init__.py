"""Figures from results: data or result objects in, matplotlib Figure out.

matplotlib is imported inside each figure function, so importing this package is cheap.
"""

from irtrepro.plots.agreement import bland_altman_plot, icc_forest_plot
from irtrepro.plots.timecourse import heatmap, scatter_fit, shade_phases, time_course_figure

__all__ = ["bland_altman_plot", "heatmap", "icc_forest_plot", "scatter_fit", "shade_phases",
           "time_course_figure"]
