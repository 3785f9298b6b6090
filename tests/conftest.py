"""Shared fixtures: paths to ../shared/ (reference data, real device exports)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IRTREPRO_SHARED", ROOT.parent / "shared"))


def _shared_dir(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared reference files are not next to this checkout")
    return path


@pytest.fixture(scope="session")
def real_exports() -> Path:
    """../shared/real-exports/: files from real devices (read in place, never copied)."""
    return _shared_dir("real-exports")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference/: classic data sets with published results."""
    return _shared_dir("reference")
