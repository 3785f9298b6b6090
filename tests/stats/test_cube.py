"""The metric table of an xarray input: the direct product path equals pandas' MultiIndex."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from irtrepro.stats._common import _product_columns

LEVELS = {
    "str": np.array(["run", "rest", "warmup"]),
    "int64": np.array([3, 1, 2], dtype=np.int64),
    "int32": np.array([7, -1], dtype=np.int32),
    "uint8": np.array([0, 255], dtype=np.uint8),
    "dup": np.array(["b", "a", "b"]),
    "float": np.array([0.5, 1.0]),  # not on the direct path: MultiIndex
    "date": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]"),
}


@pytest.mark.parametrize("names", [["str"], ["int64"], ["str", "int32", "uint8"], ["dup", "str"],
                                   ["float", "str"], ["date"], ["int64", "dup", "int32"]])
def test_product_columns_as_multiindex(names):
    levels = [LEVELS[n] for n in names]
    expected = pd.MultiIndex.from_product(levels, names=names).to_frame(index=False)
    columns, text = _product_columns(levels, names)
    actual = pd.DataFrame(columns, index=pd.RangeIndex(len(expected)))
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert text == [expected[n].astype(str).tolist() for n in names]
