"""Write files and folders atomically: to a temporary name beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from irtrepro.errors import IrtreproError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    On any exception the temporary file or folder is removed and ``target`` is left as it
    was, so no partial output is ever visible under the final name.

    Parameters
    ----------
    target : path
        Final name.
    is_dir : bool
        What the caller writes at the temporary path: a folder (a zarr store) or a file.
        An existing folder at ``target`` is replaced only when ``is_dir`` is true; writing a
        file over a folder, or finishing without writing the kind promised, raises
        :class:`~irtrepro.errors.IrtreproError` and leaves ``target`` as it was.
    """
    target = Path(target)
    if target.is_dir() and not target.is_symlink() and not is_dir:
        raise IrtreproError(f"{target}: is a folder; refusing to replace it with a file "
                            "(remove it first, or write a folder with is_dir=True)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()
    try:
        yield tmp_path
        kind = "folder" if is_dir else "file"
        if not (tmp_path.is_dir() if is_dir else tmp_path.is_file()):
            raise IrtreproError(f"{target}: the writer left no {kind} at {tmp_path.name} "
                                f"(is_dir={is_dir}); nothing was written")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp_path, target)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()
        raise
