"""What each part of the toolkit hands the report: tables, figures, Study variables, notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr


@dataclass
class ReportPart:
    """Output of one analysis part for ``make report``.

    Attributes
    ----------
    name : str
        Short id, used in file names (``reliability``, ``breathing`` ...).
    title : str
        Section heading in ``index.html``.
    tables : dict
        ``{name: (DataFrame, caption)}``; the caption says what was computed and how.
    figures : dict
        ``{name: (matplotlib.figure.Figure, caption)}``.
    study_vars : xarray.Dataset or None
        Variables on (subject, session, time[, side]) to merge into the Study.
    notes : list of str
        Everything left out and why (missing files, failed sessions, ...).
    timings : dict
        ``{step: seconds}`` for the provenance block.
    cache_key : str or None
        Set by the report to the key the part was computed or reused under: the writer then
        reuses the figures it rendered for that key (:func:`~irtrepro.report.writer.
        write_report`'s ``render_cache``). ``None``: the figures are always rendered.
    """

    name: str
    title: str
    tables: dict[str, tuple[pd.DataFrame, str]] = field(default_factory=dict)
    figures: dict[str, tuple[Any, str]] = field(default_factory=dict)
    study_vars: xr.Dataset | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cache_key: str | None = None
