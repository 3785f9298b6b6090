"""One way to name where work runs: ``--scheduler`` -> a dask.distributed client, or none.

Every command and step that can spread its work (``segment``, ``extract``, ``thermal
convert``, the report's vision part) takes the same ``scheduler`` value and opens it here, so a
LocalCluster on a laptop, a scheduler started by hand and a dask-jobqueue cluster on Slurm or
PBS take the same code path. The work units are the same in every case (frame chunks aligned
to the recording's start, or whole recordings), so a distributed run equals the serial one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from irtrepro.errors import OptionError

__all__ = ["DEFAULT_LOCAL_WORKERS", "open_client", "parse_scheduler", "worker_cache"]

#: Workers of ``scheduler="local"``: one single-threaded process per core the project assumes
#: (:data:`irtrepro._threads.MAX_THREADS`).
DEFAULT_LOCAL_WORKERS = 2

_EXPECTED = ("None (serial, in this process), 'local' or 'local:N' (a LocalCluster of N "
             "single-threaded worker processes, default 2), a scheduler address "
             "('tcp://host:8786', 'tls://...'), a scheduler file (*.json, as `dask scheduler "
             "--scheduler-file` writes it), a distributed.Client, or a cluster object "
             "(LocalCluster, dask_jobqueue.SLURMCluster, ...)")


def parse_scheduler(scheduler: Any) -> tuple[str, Any]:
    """What a ``scheduler`` value names, checked: ``(kind, value)``.

    Parameters
    ----------
    scheduler : None, str, Client or cluster
        See :func:`open_client`.

    Returns
    -------
    (str, object)
        ``("serial", None)``, ``("local", n_workers)``, ``("address", str)``,
        ``("file", path)``, ``("client", Client)`` or ``("cluster", cluster)``.

    Raises
    ------
    OptionError
        Naming the value and the accepted forms.
    """
    if scheduler is None or (isinstance(scheduler, str) and scheduler.strip() == ""):
        return "serial", None
    if isinstance(scheduler, str):
        s = scheduler.strip()
        if s == "local" or s.startswith("local:"):
            n = s.partition(":")[2] or str(DEFAULT_LOCAL_WORKERS)
            if not n.isdigit() or int(n) < 1:
                raise OptionError(f"scheduler={scheduler!r}: 'local:N' needs N >= 1 workers; "
                                  f"expected {_EXPECTED}")
            return "local", int(n)
        if s.endswith(".json"):
            if not Path(s).is_file():
                raise OptionError(f"scheduler={scheduler!r}: no such scheduler file")
            return "file", s
        if "://" in s or ":" in s:
            return "address", s
        raise OptionError(f"scheduler={scheduler!r}; expected {_EXPECTED}")
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise OptionError(f"scheduler={scheduler!r} needs dask.distributed ({exc})") from exc
    if isinstance(scheduler, Client):
        return "client", scheduler
    if hasattr(scheduler, "scheduler_address"):  # LocalCluster, SpecCluster, jobqueue clusters
        return "cluster", scheduler
    raise OptionError(f"scheduler={scheduler!r}; expected {_EXPECTED}")


@contextlib.contextmanager
def open_client(scheduler: Any, *, threads_per_worker: int = 1) -> Iterator[Any]:
    """A dask.distributed ``Client`` for ``scheduler`` while the block runs, or ``None``.

    Parameters
    ----------
    scheduler : None, str, Client or cluster
        ``None``: serial, in this process (yields ``None``). ``"local"`` / ``"local:N"``: a
        LocalCluster of N worker processes (default :data:`DEFAULT_LOCAL_WORKERS`), one
        thread each, dashboard on a free port, started here and closed at the end. An address
        (``"tcp://host:8786"``) or a scheduler file (``*.json``): connect to that running
        scheduler. A ``Client``: used as it is, never closed here. A cluster object (a
        ``LocalCluster`` or a dask-jobqueue ``SLURMCluster``/``PBSCluster``): a client to it;
        the cluster is left running (its owner closes it).
    threads_per_worker : int
        Threads of each worker of a ``"local"`` cluster. One: the steps that use torch set its
        thread count per process, and one thread per process measured faster than threads.

    Yields
    ------
    distributed.Client or None
    """
    kind, value = parse_scheduler(scheduler)
    if kind == "serial":
        yield None
        return
    from distributed import Client

    if kind == "client":
        yield value
        return
    if kind == "local":
        from distributed import LocalCluster

        with LocalCluster(n_workers=value, threads_per_worker=threads_per_worker,
                          processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            yield client
        return
    if kind == "file":
        client = Client(scheduler_file=value)
    else:
        client = Client(value)
    try:
        yield client
    finally:
        client.close()


#: Objects a worker process built once and keeps (models, by the hash of their weights).
_WORKER_CACHE: dict = {}


def worker_cache(key: str, build) -> Any:
    """``build()`` once per worker process and key; later calls with that key reuse it.

    Parameters
    ----------
    key : str
        Identity of what is built (e.g. the hash of a model's weights and its device).
    build : callable
        Makes the object.
    """
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = build()
    return _WORKER_CACHE[key]

