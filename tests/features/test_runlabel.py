"""Row-run labelling against scipy.ndimage.label (8-connected in plane, none across frames)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from irtrepro.features.runlabel import label_runs

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = True


def _check(mask: np.ndarray) -> None:
    comp, n_comp = ndimage.label(mask, structure=_IN_PLANE)
    runs = label_runs(mask)
    assert runs.n_components == n_comp
    # same numbering as scipy (first pixel in C order), pixel by pixel
    np.testing.assert_array_equal(np.repeat(runs.label + 1, runs.length), comp[mask])
    np.testing.assert_array_equal(np.repeat(runs.frame, runs.length), np.nonzero(mask)[0])
    # each component's first run: in its frame, and components counted per frame
    frames = np.nonzero(mask)[0]
    first_frame = np.array([frames[comp[mask] == k][0] for k in range(1, n_comp + 1)], int)
    np.testing.assert_array_equal(runs.frame[runs.first], first_frame)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.6, 1.0])
@pytest.mark.parametrize("shape", [(4, 7, 9), (1, 1, 1), (3, 1, 10), (4, 10, 1), (6, 13, 17)])
def test_random_masks_match_ndimage(p, shape):
    _check(np.random.default_rng(7).random(shape) < p)


def test_edge_cases_match_ndimage():
    m = np.zeros((5, 6, 7), bool)
    m[0, 0, 0] = m[0, 1, 1] = True          # diagonal neighbours: one component
    m[0, 3, 0] = m[0, 3, 6] = True          # the row's first and last column
    m[1, 5, :] = True                       # the frame's last row ...
    m[2, 0, :] = True                       # ... touches the next frame's first: not joined
    m[3, :, 3] = True                       # a column: one component over all rows
    m[3, 2, 2] = m[3, 2, 4] = True
    # frame 4 empty
    _check(m)
    runs = label_runs(m)
    assert np.bincount(runs.frame[runs.first], minlength=5).tolist() == [3, 1, 1, 1, 0]


def test_u_shape_joined_below():
    m = np.zeros((1, 4, 5), bool)
    m[0, :3, 0] = m[0, :3, 4] = True        # two arms, separate until the bottom row
    m[0, 3, :] = True
    _check(m)
    assert label_runs(m).n_components == 1


def test_empty_stacks():
    for shape in [(0, 4, 4), (3, 0, 4), (2, 4, 4)]:
        runs = label_runs(np.zeros(shape, bool))
        assert runs.n_components == 0 and runs.length.size == 0


def test_runs_of_several_values_in_one_pass_equal_one_labelling_per_value():
    from irtrepro.features.runlabel import label_runs_of_values

    rng = np.random.default_rng(7)
    for _ in range(30):
        lab = (rng.integers(0, 3, (3, 9, 11)) * (rng.random((3, 9, 11)) < 0.6)).astype(np.uint8)
        got = label_runs_of_values(lab, (1, 2))
        for v in (1, 2):
            ref = label_runs(lab == v)
            assert got[v].n_components == ref.n_components
            for field in ("frame", "length", "label", "first", "start"):
                np.testing.assert_array_equal(getattr(got[v], field), getattr(ref, field))
            # the runs give the mask's pixels in the order of a boolean gather
            np.testing.assert_array_equal(np.arange(lab.size)[got[v].pixels()],
                                          np.flatnonzero(lab == v))
    with pytest.raises(ValueError, match="background"):
        label_runs_of_values(lab, (0, 1))
