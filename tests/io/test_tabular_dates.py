"""``parse_date(dayfirst=...)``: European day-first and US month-first exports."""

from __future__ import annotations

import datetime as dt

import pytest

from irtrepro.io._tabular import parse_date


@pytest.mark.parametrize("text", ["03/04/2026", "03.04.2026", "03-04-2026", "03042026",
                                  "03/04/26"])
def test_ambiguous_dates_follow_dayfirst(text):
    assert parse_date(text) == dt.date(2026, 4, 3)
    assert parse_date(text, dayfirst=True) == dt.date(2026, 4, 3)
    assert parse_date(text, dayfirst=False) == dt.date(2026, 3, 4)


def test_us_date_with_day_above_12():
    assert parse_date("12/25/2026", dayfirst=False) == dt.date(2026, 12, 25)
    assert parse_date("12/25/2026") is None  # month 25 does not exist day first
    assert parse_date("25/12/2026", dayfirst=False) is None


def test_iso_and_date_objects_ignore_dayfirst():
    for dayfirst in (True, False):
        assert parse_date("2026-04-03", dayfirst=dayfirst) == dt.date(2026, 4, 3)
        assert parse_date(dt.datetime(2026, 4, 3, 9), dayfirst=dayfirst) == dt.date(2026, 4, 3)
    assert parse_date(3042026) == dt.date(2026, 4, 3)
    assert parse_date(3042026, dayfirst=False) == dt.date(2026, 3, 4)
    assert parse_date("not a date") is None and parse_date(None) is None
