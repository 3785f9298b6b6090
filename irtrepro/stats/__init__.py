"""Statistics for reproducibility studies: reliability, agreement, correlation, mixed models.

Every function takes a pandas long table (column names as arguments) or an xarray object with
dims ``(subject, session, ...)`` and returns a tidy DataFrame or a small result object whose
conventions (ICC form, CI method, CI level) are named; estimates are never rounded.
statsmodels loads only when a mixed model is fitted; torch is never imported.

- :func:`icc`, :func:`reliability`: intraclass correlations (six forms), SEM, MDC, typical
  error, change in mean, CV%; vectorised over metrics; ``missing="mixed"`` uses REML.
- :func:`bland_altman`, :func:`bland_altman_repeated`: limits of agreement.
- :func:`rmcorr`, :func:`windowed_corr`, :func:`lagged_xcorr`, :func:`between_subject_corr`,
  :func:`p_adjust`: correlations; :func:`rmcorr_intervals`: rmcorr with cluster/block
  bootstrap and effective-n intervals for autocorrelated samples.
- :func:`fit_mixed`, :func:`compare`, :func:`variance_ci`, :class:`ModelSpec`, :func:`load_specs`,
  :func:`default_specs`: linear mixed models.
- :func:`plan_icc`, :func:`plan_loa`: subjects needed for a reliability or agreement study.
"""

from irtrepro.stats.agreement import (
    BlandAltman,
    BlandAltmanRepeated,
    bland_altman,
    bland_altman_repeated,
)
from irtrepro.stats.correlation import (
    WindowedCorr,
    between_subject_corr,
    fisher_z_ci,
    lagged_xcorr,
    p_adjust,
    rmcorr,
    windowed_corr,
)
from irtrepro.stats.mixed import MixedResult, compare, fit_mixed
from irtrepro.stats.mixed_ci import variance_ci
from irtrepro.stats.models import ModelSpec, default_specs, dump_specs, load_specs
from irtrepro.stats.planning import plan_icc, plan_loa
from irtrepro.stats.pooling import rubin_pool
from irtrepro.stats.reliability import FORMS, icc, koo_li, reliability
from irtrepro.stats.rmcorr_ci import rmcorr_intervals

__all__ = [
    "FORMS",
    "BlandAltman",
    "BlandAltmanRepeated",
    "MixedResult",
    "ModelSpec",
    "WindowedCorr",
    "between_subject_corr",
    "bland_altman",
    "bland_altman_repeated",
    "compare",
    "default_specs",
    "dump_specs",
    "fisher_z_ci",
    "fit_mixed",
    "icc",
    "koo_li",
    "lagged_xcorr",
    "load_specs",
    "p_adjust",
    "plan_icc",
    "plan_loa",
    "reliability",
    "rmcorr_intervals",
    "rmcorr",
    "rubin_pool",
    "variance_ci",
    "windowed_corr",
]
