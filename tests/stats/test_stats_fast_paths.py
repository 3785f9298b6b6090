"""The shortcuts of the batch statistics give the numbers of the general code, bit for bit.

Each shortcut (complete data, short session axis, x and y columns as views) is compared with
the general computation it replaces on the same input, so a change of either side that alters
a single bit fails here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from irtrepro.stats import rmcorr
from irtrepro.stats._anova import _sum_sessions, _sum_subjects, anova_listwise, complete_subjects
from irtrepro.stats.correlation import _rm_stats_complete, _rm_stats_masked


def _bits(a, b) -> None:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), np.max(np.abs(a - b))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 8, 9])
@pytest.mark.parametrize("s", [1, 2, 3, 11, 40])
def test_session_and_subject_sums_are_numpys(k, s):
    rng = np.random.default_rng(k * 100 + s)
    y = rng.normal(30, 5, (57, s, k)) * 10.0 ** rng.integers(-3, 4, (57, 1, 1))
    _bits(_sum_sessions(y), y.sum(-1))
    _bits(_sum_subjects(y), y.sum(-2))
    f = np.asfortranarray(y)  # not C-contiguous: numpy's own sum
    _bits(_sum_sessions(f), f.sum(-1))
    _bits(_sum_subjects(f), f.sum(-2))


def _anova_reference(cube):
    """The two-way ANOVA of complete data with numpy's reductions (the general formulas)."""
    k, n = cube.shape[-1], cube.shape[-2]
    grand = cube.sum((-2, -1)) / (n * k)
    rowm = cube.sum(-1) / k
    colm = cube.sum(-2) / n
    ssr = k * ((rowm - grand[..., None]) ** 2).sum(-1)
    ssc = n * ((colm - grand[..., None]) ** 2).sum(-1)
    res = cube - rowm[..., None] - colm[..., None, :] + grand[..., None, None]
    sse = (res**2).sum((-2, -1))
    sst = ((cube - grand[..., None, None]) ** 2).sum((-2, -1))
    df_e = (n - 1) * (k - 1)
    return {"msr": ssr / (n - 1), "msc": ssc / (k - 1), "mse": sse / df_e,
            "msw": (ssc + sse) / (n * (k - 1)), "grand": grand,
            "sd": np.sqrt(sst / (n * k - 1))}


@pytest.mark.parametrize("shape", [(276, 11, 3), (40, 3, 2), (9, 25, 5), (5, 8, 7)])
def test_anova_of_complete_data_equals_general_formulas(shape):
    rng = np.random.default_rng(sum(shape))
    cube = 30 + rng.normal(0, 1, shape[:2] + (1,)) + rng.normal(0, 0.5, shape)
    comps = anova_listwise(cube)
    for name, expected in _anova_reference(cube).items():
        _bits(getattr(comps, name), expected)
    _bits(comps.n, np.full(shape[0], shape[1]))
    _bits(complete_subjects(cube), np.isfinite(cube).all(axis=2))
    cube[0, 1, 0] = np.nan
    _bits(complete_subjects(cube), np.isfinite(cube).all(axis=2))


@pytest.mark.parametrize("layout", ["F", "C", "views"])
def test_rmcorr_complete_path_equals_masked_path(layout):
    rng = np.random.default_rng(3)
    n_sub, n_obs, n_pair = 9, 14, 60
    codes = np.repeat(np.arange(n_sub), n_obs)
    rng.shuffle(codes)
    onehot = np.zeros((len(codes), n_sub))
    onehot[np.arange(len(codes)), codes] = 1.0
    xy = rng.normal(0, 1, (len(codes), 2 * n_pair)) + 3 * rng.normal(0, 1, (n_sub, 1))[codes]
    xy = np.asfortranarray(xy) if layout != "C" else xy
    if layout == "views":
        xa, ya = xy[:, :n_pair], xy[:, n_pair:]
    else:
        xa, ya = xy[:, ::2].copy(order=layout), xy[:, 1::2].copy(order=layout)
    mask = np.ones(xa.shape, bool)
    for fast, general in zip(_rm_stats_complete(xa, ya, onehot, codes),
                             _rm_stats_masked(xa, ya, onehot, mask), strict=True):
        _bits(fast, general)


def test_rmcorr_views_equal_gathered_columns():
    # x and y all distinct: views of one block; a repeated pair forces the gathered copies
    rng = np.random.default_rng(4)
    subj = np.repeat(np.arange(8), 12)
    df = pd.DataFrame(rng.normal(size=(len(subj), 20)) + rng.normal(size=(8, 1))[subj],
                      columns=[f"c{j:02d}" for j in range(20)])
    df["s"] = subj
    xs, ys = [f"c{j:02d}" for j in range(0, 20, 2)], [f"c{j:02d}" for j in range(1, 20, 2)]
    distinct = rmcorr(df, "s", xs, ys)
    gathered = rmcorr(df, "s", xs + xs[:1], ys + ys[:1]).iloc[:len(xs)]
    pd.testing.assert_frame_equal(distinct, gathered, check_exact=True)
    for col in ("r", "p", "ci_low", "ci_high"):
        _bits(distinct[col].to_numpy(), gathered[col].to_numpy())
