"""Atomic writes: the final name appears only complete; folders only replace folders."""

from __future__ import annotations

import pytest

from irtrepro._atomic import atomic_path
from irtrepro.errors import IrtreproError


def test_file_appears_complete(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
        assert not target.exists()
    assert target.read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failure_leaves_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_folder_replaces_folder(tmp_path):
    target = tmp_path / "s.zarr"
    (target / "old").mkdir(parents=True)
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "new").mkdir(parents=True)
    assert [p.name for p in target.iterdir()] == ["new"]


def test_a_file_never_replaces_a_folder(tmp_path):
    target = tmp_path / "study.nc"
    (target / "keep").mkdir(parents=True)
    with pytest.raises(IrtreproError, match="is a folder; refusing to replace it"):
        with atomic_path(target) as tmp:
            tmp.write_text("x")
    assert (target / "keep").is_dir()


@pytest.mark.parametrize("is_dir", [False, True])
def test_writer_must_leave_what_it_promised(tmp_path, is_dir):
    target = tmp_path / "out"
    with pytest.raises(IrtreproError, match=f"left no {'folder' if is_dir else 'file'}"):
        with atomic_path(target, is_dir=is_dir) as tmp:
            if is_dir:
                tmp.write_text("a file, not a folder")
            else:
                tmp.mkdir()
    assert not target.exists() and list(tmp_path.iterdir()) == []
