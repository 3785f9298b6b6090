"""One logger and one progress knob for the whole package (MNE/xarray style).

The library adds no handlers; :mod:`irtrepro.cli` does. Progress bars show when the
``irtrepro`` logger is enabled for INFO, unless a call passes ``progress=True/False``. So one
knob drives both: the CLI's default (WARNING) shows neither INFO messages nor bars, ``-v``
(INFO) shows both, ``-vv`` adds DEBUG messages, ``-q`` leaves errors only. In a script,
``logging.getLogger("irtrepro").setLevel("INFO")`` turns the bars on (a logger without a level
follows the root logger, WARNING by default: no bars).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

logger = logging.getLogger("irtrepro")

T = TypeVar("T")


def progress_bar(
    it: Iterable[T], progress: bool | None = None, desc: str = "", total: int | None = None
) -> Iterator[T]:
    """Wrap ``it`` in a tqdm bar when progress is wanted.

    Parameters
    ----------
    it : iterable
        What to iterate over.
    progress : bool or None
        ``None`` shows the bar when the ``irtrepro`` logger is enabled for INFO (``-v``);
        ``True``/``False`` force it on or off.
    desc : str
        Label of the bar.
    total : int, optional
        Length, if ``it`` has none.
    """
    show = logger.isEnabledFor(logging.INFO) if progress is None else bool(progress)
    if not show:
        yield from it
        return
    from tqdm.auto import tqdm

    yield from tqdm(it, desc=desc, total=total, leave=False)
