"""log: the device's LEVEL:name:msg lines on stderr, levels and configuration."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest
from usocket.runner import device_environment


@pytest.fixture
def log() -> Iterator[ModuleType]:
    with device_environment():
        yield importlib.import_module("log")


def test_records_are_level_name_message_on_stderr(
    log: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each level writes LEVEL:name:msg with the device's short level names."""
    log.basicConfig(level=log.DEBUG)
    logger = log.getLogger("app")
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")
    logger.log(25, "custom")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "DEBUG:app:d\nINFO:app:i\nWARN:app:w\nERROR:app:e\nCRIT:app:c\nLVL25:app:custom\n"


def test_default_level_is_info(log: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """Without basicConfig, DEBUG is dropped and INFO shown; getLogger() is 'root'."""
    root = log.getLogger()
    root.debug("hidden")
    root.info("shown")
    assert capsys.readouterr().err == "INFO:root:shown\n"


def test_args_are_percent_formatted_only_when_given(
    log: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """msg % args with args; a lone msg is written as is (a '%' in it is fine)."""
    logger = log.getLogger("fmt")
    logger.info("%d%% of %s", 50, "x")
    logger.info("100% literal")
    logger.info(["not", "a", "str"])
    assert capsys.readouterr().err == "INFO:fmt:50% of x\nINFO:fmt:100% literal\n" + (
        "INFO:fmt:['not', 'a', 'str']\n"
    )


def test_logger_level_wins_unless_notset(
    log: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """A logger's own level overrides the global one; level 0 falls back to it."""
    log.basicConfig(level=log.ERROR)
    quiet, chatty = log.getLogger("quiet"), log.getLogger("chatty")
    chatty.setLevel(log.DEBUG)
    quiet.warning("no")
    chatty.debug("yes")
    chatty.setLevel(log.NOTSET)
    chatty.warning("no again")
    chatty.error("yes again")
    assert capsys.readouterr().err == "DEBUG:chatty:yes\nERROR:chatty:yes again\n"


def test_notset_shows_everything(log: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """basicConfig(level=NOTSET), as the tutorial calls it, shows every level."""
    log.basicConfig(level=log.NOTSET)
    log.getLogger("t").debug("all")
    assert capsys.readouterr().err == "DEBUG:t:all\n"


def test_getlogger_caches_by_name(log: ModuleType) -> None:
    """The same name gives the same Logger object."""
    assert log.getLogger("a") is log.getLogger("a")
    assert log.getLogger("a") is not log.getLogger("b")
    assert (log.CRITICAL, log.ERROR, log.WARNING, log.INFO, log.DEBUG, log.NOTSET) == (
        50,
        40,
        30,
        20,
        10,
        0,
    )


def test_set_output_and_stream(log: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """set_output(usys.stdout) moves records to stdout; anything unwritable is refused."""
    log.set_output(sys.stdout)
    log.getLogger("o").info("to stdout")
    assert capsys.readouterr() == ("INFO:o:to stdout\n", "")
    buffer = io.StringIO()
    log.basicConfig(level=log.INFO, stream=buffer)
    log.getLogger("o").info("to buffer")
    assert buffer.getvalue() == "INFO:o:to buffer\n"
    with pytest.raises(Exception, match="must extend UART"):
        log.set_output(42)


def test_unsupported_basicconfig_arguments_print_a_notice(
    log: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """filename and format are accepted but only print that they are not supported."""
    log.basicConfig(level=log.INFO, filename="x.log", format="%(message)s")
    assert capsys.readouterr().out == (
        "logging.basicConfig: filename arg is not supported\n"
        "logging.basicConfig: format arg is not supported\n"
    )
