"""In-plane connected components of a (frame, y, x) mask stack from its row runs.

A faster stand-in for :func:`scipy.ndimage.label` with 8-connectivity inside each frame and
none across frames: the mask is reduced to its horizontal runs (one dense pass), runs of
consecutive rows of a frame that touch (8-connectivity: their column spans overlap or meet
diagonally) are joined, and :func:`scipy.sparse.csgraph.connected_components` groups the
runs. The work on the dense array is one comparison and one ``flatnonzero``; everything after
is proportional to the number of runs, not of pixels.

Components are numbered from 0 in the order of their first pixel in C (frame, y, x) order,
which is the numbering of :func:`scipy.ndimage.label` (minus one), so results that depend on
the component order (sums over components) are the same bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Runs", "label_runs", "label_runs_of_values"]


@dataclass(frozen=True)
class Runs:
    """Row runs of a mask stack and the component of each.

    Attributes
    ----------
    frame : ndarray (run,), intp
        Frame of each run, runs in C order of their first pixel.
    length : ndarray (run,), intp
        Pixels in each run; ``np.repeat(label, length)`` labels the mask's pixels in C order
        (the order of ``array[mask]``).
    label : ndarray (run,), intp
        Component of each run, 0 .. n_components - 1, numbered by first pixel.
    n_components : int
    first : ndarray (component,), intp
        Index of each component's first run (so ``frame[first]`` is its frame).
    start : ndarray (run,), intp
        Flat index (into the C-ordered (frame, y, x) array) of each run's first pixel.
    """

    frame: np.ndarray
    length: np.ndarray
    label: np.ndarray
    n_components: int
    first: np.ndarray
    start: np.ndarray

    def pixels(self) -> np.ndarray:
        """Flat indices of the mask's pixels in C order (``array.ravel()[runs.pixels()]`` is
        ``array[mask]``), from the runs: work in proportion to the mask's pixels."""
        total = int(self.length.sum())
        offset = np.repeat(self.start - np.cumsum(self.length) + self.length, self.length)
        return offset + np.arange(total)


def label_runs(mask: np.ndarray) -> Runs:
    """Components (8-connected within a frame, never across frames) of a bool (frame, y, x).

    Parameters
    ----------
    mask : ndarray (frame, y, x), bool

    Returns
    -------
    Runs
        The runs, each run's component, and each component's first run.
    """
    n, h, w = mask.shape
    if mask.size == 0:
        return _no_runs()
    rows = n * h
    m = mask.reshape(rows, w)
    # transitions of each row padded with False on both sides: every run starts and ends at
    # one, so the runs come from a single flatnonzero
    tr = np.empty((rows, w + 1), bool)
    tr[:, 0] = m[:, 0]
    np.not_equal(m[:, 1:], m[:, :-1], out=tr[:, 1:w])
    tr[:, w] = m[:, w - 1]
    edges = np.flatnonzero(tr)
    start, stop = edges[0::2], edges[1::2]          # flat in (row, w + 1); stop exclusive
    row = start // (w + 1)
    return _components(row, start - row * (w + 1), stop - row * (w + 1), h, w)


def label_runs_of_values(labels: np.ndarray, values) -> dict[int, Runs]:
    """:func:`label_runs` of ``labels == v`` for each ``v`` in ``values``, in one dense pass.

    Parameters
    ----------
    labels : ndarray (frame, y, x), integer
    values : iterable of int
        Non-zero label values (0 is the background and is never labelled).

    Returns
    -------
    dict
        ``{v: Runs}``, each equal to ``label_runs(labels == v)``.
    """
    values = [int(v) for v in values]
    if 0 in values:
        raise ValueError("label_runs_of_values: 0 is the background")
    n, h, w = labels.shape
    if labels.size == 0:
        return {v: _no_runs() for v in values}
    rows = n * h
    m = labels.reshape(rows, w)
    # a segment of equal labels starts at every change (and at each row's first column);
    # the one after it, or the row's end, closes it. Segments of 0 are dropped.
    tr = np.empty((rows, w + 1), bool)
    tr[:, 0] = True
    np.not_equal(m[:, 1:], m[:, :-1], out=tr[:, 1:w])
    tr[:, w] = True
    edges = np.flatnonzero(tr)
    row = edges // (w + 1)
    col = edges - row * (w + 1)
    opens = np.flatnonzero(col < w)                 # the edge at column w closes, never opens
    value = m.ravel()[row[opens] * w + col[opens]]
    out = {}
    for v in values:
        k = opens[value == v]
        r = row[k]
        out[v] = _components(r, col[k], col[k + 1], h, w)   # edge k + 1 is in the same row
    return out


def _no_runs() -> Runs:
    z = np.zeros(0, np.intp)
    return Runs(z, z, z, 0, z, z)


def _components(row: np.ndarray, c0: np.ndarray, c1: np.ndarray, h: int, w: int) -> Runs:
    """Components of runs ``[c0, c1)`` of rows ``row`` (flat frame * h + y, C order)."""
    n_runs = row.size
    if n_runs == 0:
        return _no_runs()
    # run A (row r) touches run B (row r + 1, same frame) iff B.c0 <= A.c1 and A.c0 <= B.c1
    # (exclusive ends, diagonal neighbours included). Runs of a row are disjoint and sorted,
    # so the A's of one B form a contiguous range [lo, hi), found by ranking keys that order
    # (row, column) globally among the runs' keys.
    span = w + 2
    base = row * span
    lo = _rank(base + c1, base - span + c0, ties_before=True)
    hi = _rank(base + c0, base - span + c1, ties_before=False)
    cnt = np.where(row % h != 0, np.maximum(hi - lo, 0), 0)
    indptr = np.zeros(n_runs + 1, np.intp)
    np.cumsum(cnt, out=indptr[1:])
    total = int(indptr[-1])
    a = np.repeat(lo - indptr[:-1], cnt) + np.arange(total)
    # B's neighbours A as rows of a CSR graph directly (the undirected search symmetrises)
    graph = csr_matrix((np.ones(total, np.int8), a, indptr), shape=(n_runs, n_runs))
    n_comp, label = connected_components(graph, directed=False)
    label = label.astype(np.intp, copy=False)
    # components are numbered by their lowest run; that is their first run in C order
    first = np.flatnonzero(np.r_[True, label[1:] > np.maximum.accumulate(label)[:-1]])
    return Runs(row // h, c1 - c0, label, int(n_comp), first, row * w + c0)


def _rank(keys: np.ndarray, queries: np.ndarray, ties_before: bool) -> np.ndarray:
    """``np.searchsorted(keys, queries, side="left" if ties_before else "right")``.

    Both are sorted: one stable merge sort of the two (a merge of two sorted runs, linear)
    instead of a binary search per query, which misses the cache on every step.
    """
    nq = queries.size
    both = np.concatenate([queries, keys] if ties_before else [keys, queries])
    order = np.argsort(both, kind="stable")
    is_q = (order < nq) if ties_before else (order >= keys.size)
    return np.flatnonzero(is_q) - np.arange(nq)
