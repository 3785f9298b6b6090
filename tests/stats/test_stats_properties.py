"""Property tests (hypothesis): invariances of the ICC and rmcorr."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as hs
from hypothesis.extra.numpy import arrays

from irtrepro.stats import icc, rmcorr

# derandomize: the same examples on every machine, so CI never fails on a new random draw
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

values = arrays(np.float64, hs.tuples(hs.integers(3, 8), hs.integers(2, 4)),
                elements=hs.floats(-50, 50, allow_nan=False, width=32))


def _ok(v: np.ndarray) -> bool:
    """Data with subject and residual variation (the ICC is defined and not degenerate)."""
    if v.std() < 1e-3:
        return False
    r = v - v.mean(1, keepdims=True) - v.mean(0, keepdims=True) + v.mean()
    return r.std() > 1e-3 * v.std() and v.mean(1).std() > 1e-3 * v.std()


def _icc(v: np.ndarray) -> pd.DataFrame:
    import xarray as xr

    return icc(xr.DataArray(v, dims=("subject", "session"), name="y")).set_index("form")


COLS = ["icc", "f", "p", "ci_low", "ci_high"]


@SETTINGS
@given(values, hs.randoms(use_true_random=False), hs.floats(-1e3, 1e3))
def test_icc_invariant_to_subject_order_and_constant(v, rnd, c):
    assume(_ok(v))
    base = _icc(v)[COLS]
    perm = list(range(v.shape[0]))
    rnd.shuffle(perm)
    np.testing.assert_allclose(_icc(v[perm])[COLS], base, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(_icc(v + c)[COLS], base, rtol=1e-6, atol=1e-7)


@SETTINGS
@given(values, arrays(np.float64, 4, elements=hs.floats(0.5, 20)))
def test_session_shift_keeps_consistency_and_lowers_absolute_agreement(v, shift):
    assume(_ok(v))
    v = v - v.mean(0, keepdims=True) + v.mean()  # sessions agree on average
    before = _icc(v)
    # an ICC at rounding level (~1e-16) is zero: nothing left for a shift to lower
    assume(before.loc["ICC(A,1)", "icc"] > 1e-9)
    shifted = _icc(v + shift[: v.shape[1]] - shift[: v.shape[1]].mean() + np.arange(v.shape[1]))
    for form in ("ICC(C,1)", "ICC(C,k)"):
        assert np.isfinite(shifted.loc[form, "icc"])
        np.testing.assert_allclose(shifted.loc[form, COLS], before.loc[form, COLS], rtol=1e-6,
                                   atol=1e-8)
    for form in ("ICC(A,1)", "ICC(A,k)"):
        assert shifted.loc[form, "icc"] < before.loc[form, "icc"]


@SETTINGS
@given(
    arrays(np.float64, (5, 4), elements=hs.floats(-10, 10, width=32)),
    arrays(np.float64, (5, 4), elements=hs.floats(-10, 10, width=32)),
    arrays(np.float64, 5, elements=hs.floats(-100, 100, width=32)),
    arrays(np.float64, 5, elements=hs.floats(-100, 100, width=32)),
)
def test_rmcorr_invariant_to_per_subject_offsets(x, y, ox, oy):
    xc = x - x.mean(1, keepdims=True)
    yc = y - y.mean(1, keepdims=True)
    assume((xc**2).sum() >= 1e-2 and (yc**2).sum() >= 1e-2)
    df = pd.DataFrame({"s": np.repeat(np.arange(5), 4), "x": x.ravel(), "y": y.ravel()})
    moved = df.assign(x=(x + ox[:, None]).ravel(), y=(y + oy[:, None]).ravel())
    a = rmcorr(df, "s", "x", "y").iloc[0]
    b = rmcorr(moved, "s", "x", "y").iloc[0]
    for col in ("r", "ci_low", "ci_high"):
        assert abs(a[col] - b[col]) < 1e-6
    assert a.df == b.df == 14
