"""The one subject-wise split (irtrepro.splits)."""

import pytest

from irtrepro.errors import OptionError, SplitError
from irtrepro.splits import subject_folds, subject_split


def test_subject_split_is_subject_wise():
    tr, te = subject_split(["S1", "S1", "S2", "S3", "S4"], n_test=1, seed=0)
    assert len(te) == 1 and not set(tr) & set(te) and set(tr) | set(te) == {"S1", "S2", "S3", "S4"}


def test_subject_split_fraction_keeps_one_subject_each_side():
    tr, te = subject_split([f"S{i}" for i in range(10)], n_test=0.3, seed=1)
    assert len(te) == 3 and len(tr) == 7
    tr, te = subject_split(["A", "B"], n_test=0.99, seed=0)
    assert len(tr) == 1 and len(te) == 1
    assert subject_split(["A", "B", "C"], n_test=1, seed=4) == subject_split(
        ["C", "B", "A", "A"], n_test=1, seed=4)


def test_split_errors_are_one_type():
    with pytest.raises(SplitError, match="at least 2 subjects"):
        subject_split(["S1", "S1"], n_test=1)
    with pytest.raises(SplitError, match="folds=1"):
        subject_folds(["S1", "S2", "S3"], 1)
    assert issubclass(SplitError, OptionError)


def test_subject_folds():
    assert subject_folds(["S1", "S2", "S3"], None) == [["S1"], ["S2"], ["S3"]]
    assert subject_folds(["S1", "S2", "S3", "S4"], 2) == [["S1", "S2"], ["S3", "S4"]]
