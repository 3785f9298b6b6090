"""Shared pieces of :mod:`irtrepro.stats`: column vocabulary, input checks, long table / xarray
to a ``(metric, subject, session)`` cube, warnings that point at the caller.

Every public statistic accepts the same two kinds of input:

- a pandas long table, one row per (subject, session), with the value(s) in named columns
  (pingouin style), or
- an xarray ``DataArray``/``Dataset`` with dims ``subject`` and ``session`` and any number of
  extra dims (``phase``, ``side``, ...), e.g. ``study[["tnv", "tp"]].groupby("phase").mean("time")``.
  Every combination of the extra dims (and every variable of a Dataset) is one *metric*.
  A ``time`` dim is refused (a raw Study is summarised first, e.g. ``ds.irt.summary()``):
  every second would otherwise count as a metric.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from irtrepro.errors import IrtreproWarning, OptionError, StatsError

# --------------------------------------------------------------------------------------------
# Column vocabulary: one place for the names every table uses.
# --------------------------------------------------------------------------------------------
METRIC = "metric"
CI_LOW = "ci_low"
CI_HIGH = "ci_high"
CI_LEVEL = "ci_level"
CI_METHOD = "ci_method"
DF = "df"
DF1 = "df1"
DF2 = "df2"
P = "p"
N = "n"
N_SUBJECTS = "n_subjects"
N_SESSIONS = "n_sessions"
METHOD = "method"

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = [
    "Cube",
    "check_ci",
    "to_cube",
    "warn",
    "raise_or_warn",
]


def warn(message: str, category: type[Warning] = IrtreproWarning) -> None:
    """Issue ``message`` as a warning attributed to the first frame outside irtrepro."""
    frame = sys._getframe(1)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PKG_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def check_ci(ci: float, name: str = "ci") -> float:
    """Return ``ci`` as float if it is a confidence level strictly between 0 and 1."""
    try:
        ci = float(ci)
    except (TypeError, ValueError):
        raise OptionError(f"{name}={ci!r}; expected a confidence level between 0 and 1") from None
    if not 0.0 < ci < 1.0:
        raise OptionError(f"{name}={ci!r}; expected a confidence level between 0 and 1, e.g. 0.95")
    return ci


def raise_or_warn(problems: dict[str, str], errors: str, what: str) -> None:
    """Report per-metric problems: raise :class:`StatsError` or warn, naming every metric."""
    if not problems:
        return
    items = [f"{k!r}: {v}" for k, v in list(problems.items())[:10]]
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    msg = f"{what} cannot be computed for " + "; ".join(items) + more
    if errors == "raise":
        raise StatsError(msg + ". Pass errors='warn' to get NaN rows for these metrics instead.")
    warn(msg + "; their rows are NaN.")


@dataclass
class Cube:
    """Values on a ``(metric, subject, session)`` grid; missing cells are NaN.

    Attributes
    ----------
    values : ndarray, shape (M, S, K), float64
    metrics : DataFrame
        One row per metric: column ``metric`` (label) and, for xarray input, one column per
        extra dim (and ``variable`` for a Dataset); ``units`` when the input has them.
    subjects, sessions : Index
        Labels of axis 1 and axis 2.
    """

    values: np.ndarray
    metrics: pd.DataFrame
    subjects: pd.Index
    sessions: pd.Index

    @property
    def labels(self) -> list[str]:
        return [str(v) for v in self.metrics[METRIC].tolist()]


def _is_numeric(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def _check_finite(values: np.ndarray, labels: Sequence[str], where: str) -> None:
    bad = np.isinf(values).any(axis=tuple(range(1, values.ndim)))
    if bad.any():
        names = [labels[i] for i in np.flatnonzero(bad)][:5]
        raise StatsError(f"{where}: infinite values in {names}; expected finite numbers or NaN")


def _cube_from_frame(
    data: pd.DataFrame, subject: str, session: str, value: str | Sequence[str] | None
) -> Cube:
    values = _as_list(value)
    if values is None:
        raise OptionError("value=None; name the column(s) holding the measurements")
    for name, col in [("subject", subject), ("session", session)] + [("value", v) for v in values]:
        if col not in data.columns:
            raise StatsError(
                f"{name}={col!r} is not a column of the table; columns are {list(data.columns)}"
            )
    for v in values:
        if not _is_numeric(data[v].dtype):
            raise StatsError(
                f"column {v!r} is not numeric (dtype {data[v].dtype}); convert it first, "
                f"e.g. pd.to_numeric(df[{v!r}])"
            )
    for key in (subject, session):
        if data[key].isna().any():
            rows = list(data.index[data[key].isna()][:5])
            raise StatsError(f"column {key!r} has missing labels (rows {rows})")
    dup = data.duplicated([subject, session], keep=False)
    if dup.any():
        pairs = data.loc[dup, [subject, session]].drop_duplicates().head(5)
        listed = ", ".join(f"({s!r}, {t!r})" for s, t in pairs.itertuples(index=False))
        raise StatsError(
            f"duplicate ({subject}, {session}) rows: {listed}; expected one row per subject and "
            "session (average replicates first, or use bland_altman_repeated for replicates)"
        )
    sc, subjects = pd.factorize(data[subject], sort=True)
    # sessions keep their order of appearance (or category order): it defines "change in mean"
    kc, sessions = pd.factorize(data[session],
                                sort=isinstance(data[session].dtype, pd.CategoricalDtype))
    cube = np.full((len(values), len(subjects), len(sessions)), np.nan)
    cube[:, sc, kc] = data[values].to_numpy(dtype=float).T
    _check_finite(cube, values, "value")
    metrics = pd.DataFrame({METRIC: values})
    return Cube(cube, metrics, pd.Index(subjects, name=subject), pd.Index(sessions, name=session))


def _product_columns(levels: list[np.ndarray], names: list[str]) -> tuple[dict, list[list[str]]]:
    """Every combination of the coordinate values: columns and their text, first dim slowest.

    The columns are those of ``MultiIndex.from_product(levels, names=names).to_frame()``, the
    text that of ``.astype(str)``. Integer and string coordinates (the usual phase, side,
    metric labels) take a direct path: the MultiIndex factorises and sorts every level only to
    be flattened again, which cost more than the statistics of a few hundred metrics.
    """
    if not all(np.asarray(lev).dtype.kind in "iuU" for lev in levels):
        frame = pd.MultiIndex.from_product(levels, names=names).to_frame(index=False)
        return ({d: frame[d] for d in names},
                [frame[d].astype(str).tolist() for d in names])
    if len(levels) == 1:
        # one extra dim: the combinations are its values in order
        return ({names[0]: pd.Index(levels[0])}, [[str(v) for v in levels[0].tolist()]])
    sizes = [len(lev) for lev in levels]
    where = np.unravel_index(np.arange(int(np.prod(sizes))), sizes)
    columns, parts = {}, []
    for d, lev, idx in zip(names, levels, where, strict=True):
        columns[d] = pd.Index(lev).take(idx)
        text = [str(v) for v in lev.tolist()]
        parts.append([text[i] for i in idx.tolist()])
    return columns, parts


def _coord_values(da: Any, dim: str) -> np.ndarray:
    """``da[dim].values``: the coordinate's values, ``arange`` for a dim without one."""
    if dim in da.coords:
        return da.coords.variables[dim].values
    return np.arange(da.sizes[dim])


def _cube_from_xarray(data: Any, subject: str, session: str, value: Any) -> Cube:
    import xarray as xr

    if isinstance(data, xr.DataArray):
        name = data.name if data.name is not None else "value"
        arrays = {name: data}
        is_dataset = False
    else:
        names = _as_list(value)
        if names is None:
            names = [
                k for k, v in data.data_vars.items()
                if subject in v.dims and session in v.dims and _is_numeric(v.dtype)
            ]
            if not names:
                raise StatsError(
                    f"no numeric variable of the Dataset has dims ({subject!r}, {session!r}); "
                    f"variables: {list(data.data_vars)}"
                )
        for k in names:
            if k not in data.data_vars:
                raise StatsError(f"value={k!r} is not a variable; variables: {list(data.data_vars)}")
        arrays = {k: data[k] for k in names}
        is_dataset = True

    timed = [str(k) for k, da in arrays.items() if "time" in da.dims]
    if timed:
        what = f"variable {timed[0]!r}" if len(timed) == 1 else f"variables {timed}"
        raise StatsError(
            f"{what} of the {'Dataset' if is_dataset else 'DataArray'} has dimension 'time'; "
            "summarise first, e.g. ds.irt.phase_means() or ds.irt.summary(...)"
        )
    blocks, rows = [], []
    subjects = sessions = None
    for name, da in arrays.items():
        for dim in (subject, session):
            if dim not in da.dims:
                raise StatsError(
                    f"variable {name!r} has dims {da.dims}; expected a {dim!r} dim "
                    f"(summarise over time first, e.g. .groupby('phase').mean('time'))"
                )
        if not _is_numeric(da.dtype):
            raise StatsError(f"variable {name!r} is not numeric (dtype {da.dtype})")
        extra = [d for d in da.dims if d not in (subject, session)]
        # numpy's transpose of the values rather than DataArray.transpose, and coordinate
        # values from the variables rather than through a DataArray per dim: the same arrays
        # without the xarray objects, which cost more than the statistics of a few hundred
        # metrics
        arr = np.asarray(da.values, dtype=float).transpose(
            [da.dims.index(d) for d in (subject, session, *extra)])
        if subjects is None:
            subjects = pd.Index(_coord_values(da, subject), name=subject)
            sessions = pd.Index(_coord_values(da, session), name=session)
        arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
        blocks.append(np.moveaxis(arr, 2, 0))
        if extra:
            combos, parts = _product_columns([_coord_values(da, d) for d in extra], extra)
            labels = (list(parts[0]) if len(parts) == 1
                      else ["/".join(row) for row in zip(*parts, strict=True)])
        else:
            combos, labels = {}, [""]
        columns: dict[str, Any] = {}
        if is_dataset or (data.name is not None and extra != [METRIC]):
            columns["variable"] = name
            labels = [str(name) if not lab else f"{name}/{lab}" for lab in labels]
        elif not extra:
            labels = [str(name)]
        # built as one dict, the order insert/drop gave: metric, variable, extra dims, units
        columns = {METRIC: list(labels), **columns,
                   **{d: col for d, col in combos.items() if d != METRIC}}
        if "units" in da.attrs:
            columns["units"] = str(da.attrs["units"])
        rows.append(pd.DataFrame(columns, index=pd.RangeIndex(len(labels))))
    values = np.concatenate(blocks, axis=0)
    metrics = rows[0] if len(rows) == 1 else pd.concat(rows, ignore_index=True)
    if np.isinf(values).any():  # the labels only for the message
        _check_finite(values, metrics[METRIC].tolist(), "value")
    return Cube(values, metrics, subjects, sessions)


def to_cube(
    data: Any, subject: str = "subject", session: str = "session", value: Any = None
) -> Cube:
    """Turn a long table or an xarray object into a :class:`Cube`.

    Parameters
    ----------
    data : DataFrame, xarray.DataArray or xarray.Dataset
        Long table with one row per (subject, session), or an xarray object with dims
        ``subject`` and ``session`` (plus any extra dims, each combination a metric).
    subject, session : str
        Column (or dim) names.
    value : str or list of str
        Column(s) of the table; for a Dataset, the variables to use (default: every numeric
        variable with both dims).

    Raises
    ------
    StatsError
        Missing column, non-numeric values, duplicate (subject, session) rows, infinite values.
    """
    if isinstance(data, pd.DataFrame):
        return _cube_from_frame(data, subject, session, value)
    mod = type(data).__module__
    if mod.startswith("xarray"):
        return _cube_from_xarray(data, subject, session, value)
    raise StatsError(
        f"data of type {type(data).__name__}; expected a pandas DataFrame (long table) or an "
        "xarray DataArray/Dataset with dims (subject, session, ...)"
    )


def finite_1d(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D float array; a clear :class:`StatsError` for non-numeric or infinite data."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise StatsError(f"{name} has shape {arr.shape}; expected one dimension")
    if not _is_numeric(arr.dtype):
        raise StatsError(f"{name} is not numeric (dtype {arr.dtype})")
    arr = arr.astype(float)
    if np.isinf(arr).any():
        raise StatsError(f"{name} has infinite values at positions {np.flatnonzero(np.isinf(arr))[:5]}")
    return arr


def long_from_xarray(data: Any, names: Sequence[str]) -> pd.DataFrame:
    """Long table of the variables/coords ``names`` of an xarray Dataset (all dims as columns)."""
    missing = [n for n in names if n not in data.variables]
    if missing:
        raise StatsError(f"{missing} not in the Dataset; variables: {list(data.variables)}")
    var_names = [n for n in names if n in data.data_vars]
    if not var_names:
        raise StatsError(f"none of {list(names)} is a data variable of the Dataset")
    return data[var_names].to_dataframe().reset_index()
