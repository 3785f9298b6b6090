"""The one thread policy: how many torch threads and worker processes a step uses."""

from __future__ import annotations

import os

#: Default ceiling of torch threads and worker processes. The models are small, so more threads
#: buy little, and cores left over serve dask, zarr decompression and the other worker.
MAX_THREADS = 2


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parallelism(n: int | None = None) -> int:
    """Worker processes (or threads) to use: ``n`` when given, else min(MAX_THREADS, cores).

    Parameters
    ----------
    n : int, optional
        An explicit setting (>= 1); wins over the default.

    Returns
    -------
    int
        At least 1.
    """
    if n is not None:
        return max(1, int(n))
    return max(1, min(MAX_THREADS, cores()))


def torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads and return how many it now uses.

    Parameters
    ----------
    n : int, optional
        An explicit setting (>= 1). Without it: :func:`parallelism`, lowered to
        ``OMP_NUM_THREADS`` when that is set (a caller that runs several parts side by side
        caps each one there).

    Returns
    -------
    int
        The number of threads set.
    """
    import torch

    if n is None:
        n = parallelism()
        env = os.environ.get("OMP_NUM_THREADS", "")
        if env.isdigit() and int(env) > 0:
            n = min(n, int(env))
    n = max(1, int(n))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
