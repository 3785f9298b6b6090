"""One session of a Study: each variable over time, phases shaded (``ds.irt.plot_session``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from irtrepro.errors import StudyError
from irtrepro.plots.timecourse import label, shade_phases

#: Variables shown when none are named (those present with a finite value).
DEFAULT_VARIABLES = ("tsk_mean", "tnv", "tp", "tv", "hr", "vo2", "ve", "rf", "tcore")


def session_figure(study: xr.Dataset, subject: str, session: str,
                   variables: Sequence[str] | None = None, *, side: str = "both") -> Any:
    """Figure of one session: one panel per variable against time (min), phases shaded.

    Parameters
    ----------
    study : xarray.Dataset
        The Study (dims subject, session, time [, side]).
    subject, session : str
        Ids of the session.
    variables : sequence of str, optional
        Variables on ``time``; default: those of :data:`DEFAULT_VARIABLES` with data in the
        session.
    side : str
        Side shown for variables with a ``side`` dim.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    StudyError
        Unknown subject, session, variable or side, naming the choices.
    """
    for dim, value in (("subject", subject), ("session", session)):
        ids = study[dim].values.tolist()
        if value not in ids:
            raise StudyError(f"{dim}={value!r} is not in the Study; {dim}s are {ids}")
    one = study.sel(subject=subject, session=session)
    if "side" in one.dims:
        sides = one["side"].values.tolist()
        if side not in sides:
            raise StudyError(f"side={side!r} is not in the Study; sides are {sides}")
        one = one.sel(side=side)
    on_time = [v for v in one.data_vars if "time" in one[v].dims and v != "phase"
               and np.issubdtype(one[v].dtype, np.number)]
    if variables is None:
        variables = [v for v in DEFAULT_VARIABLES
                     if v in on_time and bool(np.isfinite(one[v].values).any())]
        if not variables:
            raise StudyError(f"{subject}/{session}: none of {list(DEFAULT_VARIABLES)} has "
                             "data; name the variables to plot")
    else:
        variables = [variables] if isinstance(variables, str) else list(variables)
        bad = [v for v in variables if v not in on_time]
        if bad:
            raise StudyError(f"variables {bad} are not numeric Study variables on 'time'; "
                             f"expected some of {on_time}")

    import matplotlib.pyplot as plt

    t = one["time"].values.astype(float)
    fig, axes = plt.subplots(len(variables), 1, figsize=(7.0, 1.7 * len(variables) + 0.6),
                             sharex=True, squeeze=False)
    for ax, v in zip(axes[:, 0], variables, strict=True):
        if "phase" in one:
            shade_phases(ax, t, one["phase"].values)
        ax.plot(t / 60.0, one[v].values, lw=1.0, color="black")
        ax.set_ylabel(label(one[v], v), fontsize=8)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("time since exercise start (min)")
    fig.suptitle(f"{subject} / {session}", fontsize=10)
    fig.tight_layout()
    return fig
