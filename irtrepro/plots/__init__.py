"""Figures from results: data or result objects in, matplotlib Figure out.

matplotlib is imported inside each figure function, so importing this package is cheap.
"""

from irtrepro.plots.agreement import bland_altman_plot, icc_forest_plot, method_comparison
from irtrepro.plots.keypoints import keypoint_examples, plot_beta_sweep
from irtrepro.plots.segmentation import segmentation_example
from irtrepro.plots.timecourse import heatmap, scatter_fit, shade_phases, time_course_figure

__all__ = ["bland_altman_plot", "heatmap", "icc_forest_plot", "keypoint_examples",
           "method_comparison", "plot_beta_sweep", "scatter_fit", "segmentation_example",
           "shade_phases", "time_course_figure"]
