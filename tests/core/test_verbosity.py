"""``-v``/``-q`` drive the ``irtrepro`` logger and the progress bars together (MNE style)."""

from __future__ import annotations

import logging

import pytest

import irtrepro.commands.info as info_cmd
from irtrepro import cli
from irtrepro._logging import progress_bar

LOGGER = logging.getLogger("irtrepro")


@pytest.fixture(autouse=True)
def restore_logger():
    level, handlers = LOGGER.level, list(LOGGER.handlers)
    yield
    LOGGER.setLevel(level)
    for h in LOGGER.handlers[:]:
        if h not in handlers:
            LOGGER.removeHandler(h)


@pytest.fixture
def chatty(monkeypatch):
    """Replace `irtrepro info` by a command that logs at every level and shows a bar."""
    def run(args):
        log = logging.getLogger("irtrepro.demo")
        log.debug("debug message")
        log.info("info message")
        log.warning("warning message")
        log.error("error message")
        assert list(progress_bar(range(3), desc="demo bar")) == [0, 1, 2]
        return 0

    monkeypatch.setattr(info_cmd, "run", run)


@pytest.mark.parametrize("flags,messages,bar", [
    ([], {"warning", "error"}, False),
    (["-v"], {"info", "warning", "error"}, True),
    (["-vv"], {"debug", "info", "warning", "error"}, True),
    (["-q"], {"error"}, False),
])
def test_flags_set_levels_and_bars(chatty, caplog, capsys, flags, messages, bar):
    caplog.set_level(logging.NOTSET)  # caplog keeps everything the irtrepro logger lets through
    assert cli.main([*flags, "info"]) == 0
    seen = {r.getMessage().split()[0] for r in caplog.records if r.name == "irtrepro.demo"}
    assert seen == messages
    assert ("demo bar" in capsys.readouterr().err) is bar


def test_verbose_and_quiet_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        cli.main(["-v", "-q", "info"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_log_level_mapping():
    assert cli.log_level(0) == logging.WARNING
    assert cli.log_level(1) == logging.INFO
    assert cli.log_level(2) == cli.log_level(5) == logging.DEBUG
    assert cli.log_level(3, quiet=True) == logging.ERROR


def test_one_handler_however_often_main_runs(chatty):
    cli.main(["info"])
    cli.main(["-v", "info"])
    ours = [h for h in LOGGER.handlers if getattr(h, "_irtrepro_cli", False)]
    assert len(ours) == 1


@pytest.mark.parametrize("level,progress,shown", [
    (logging.WARNING, None, False), (logging.INFO, None, True), (logging.DEBUG, None, True),
    (logging.WARNING, True, True), (logging.INFO, False, False),
])
def test_progress_bar_follows_the_logger_unless_forced(capsys, level, progress, shown):
    LOGGER.setLevel(level)
    assert list(progress_bar(iter("abc"), progress, desc="knob", total=3)) == ["a", "b", "c"]
    assert ("knob" in capsys.readouterr().err) is shown


def test_library_default_is_quiet(capsys):
    LOGGER.setLevel(logging.NOTSET)  # a script that never configured logging: root WARNING
    list(progress_bar(range(2), desc="silent"))
    assert "silent" not in capsys.readouterr().err
