"""The one subject-wise split: train/test subjects and leave-subjects-out folds.

Every model of the toolkit is scored on subjects it never saw; this module decides which.
A subject's frames, sessions and clips always fall on one side.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from irtrepro.errors import SplitError

__all__ = ["subject_folds", "subject_split"]


def subject_split(subjects: Iterable, *, n_test: int | float = 0.25, seed: int = 0
                  ) -> tuple[list[str], list[str]]:
    """Split subject ids into (train, test), never splitting a subject.

    Parameters
    ----------
    subjects : iterable of str
        Subject ids (duplicates allowed; one entry per frame is fine).
    n_test : int or float
        Number (int) or fraction (float, rounded to the nearest count) of subjects on the test
        side; clipped so that each side keeps at least one subject.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    train, test : list of str
        Sorted subject ids.

    Raises
    ------
    SplitError
        Fewer than two distinct subjects.

    Examples
    --------
    >>> subject_split(["S1", "S1", "S2", "S3", "S4"], n_test=1, seed=0)
    (['S1', 'S2', 'S4'], ['S3'])
    """
    uniq = sorted(set(map(str, subjects)))
    if len(uniq) < 2:
        raise SplitError(f"a subject-wise split needs at least 2 subjects, got {uniq}")
    k = int(round(n_test * len(uniq))) if isinstance(n_test, float) else int(n_test)
    k = min(max(k, 1), len(uniq) - 1)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    test = sorted(uniq[i] for i in perm[:k])
    return [s for s in uniq if s not in test], test


def subject_folds(subjects: Iterable, folds: int | None) -> list[list[str]]:
    """Held-out subject groups for leave-subjects-out cross-validation.

    Parameters
    ----------
    subjects : iterable of str
        Subject ids, in the order the groups follow.
    folds : int or None
        Number of contiguous groups (>= 2); None, or at least as many as there are subjects,
        gives one group per subject (leave-one-subject-out).

    Raises
    ------
    SplitError
        ``folds`` below 2.
    """
    subjects = list(subjects)
    if folds is None or folds >= len(subjects):
        return [[s] for s in subjects]
    if folds < 2:
        raise SplitError(f"folds={folds}; expected >= 2 or None (leave-one-subject-out)")
    return [list(g) for g in np.array_split(np.array(subjects, dtype=object), folds)]
