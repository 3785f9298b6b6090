"""Docstring examples run as tests (``pytest tests`` runs them; the Makefile runs that)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import irtrepro.stats

MODULES = sorted(
    ["irtrepro.study", "irtrepro.errors", "irtrepro.summaries", "irtrepro.io._tabular"]
    + [f"irtrepro.stats.{m.name}" for m in pkgutil.iter_modules(irtrepro.stats.__path__)]
    + ["irtrepro.stats"]
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_documented_modules_have_examples():
    attempted = {n: doctest.testmod(importlib.import_module(n), report=False).attempted
                 for n in ("irtrepro.study", "irtrepro.errors", "irtrepro.stats.reliability")}
    assert all(v > 0 for v in attempted.values()), attempted
