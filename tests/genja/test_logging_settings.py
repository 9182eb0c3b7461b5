"""genja's logging setup from settings, and agent records re-emitted in the client."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from genja import ConfigurationError, Settings
from genja._logging import configure_logging, reemit_agent_record


@pytest.fixture(autouse=True)
def clean_genja_logger() -> Iterator[None]:
    logger = logging.getLogger("genja")
    before = list(logger.handlers)
    level = logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in before:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)


def settings_for(tmp_path: Path, **logging_section: object) -> Settings:
    return Settings.from_dict(
        {"logging": logging_section}, source=tmp_path / "settings.yaml", environ={}
    )


def test_disabled_logging_installs_nothing(tmp_path: Path) -> None:
    before = list(logging.getLogger("genja").handlers)
    assert configure_logging(settings_for(tmp_path, log_file="x.log")) == []
    assert logging.getLogger("genja").handlers == before
    assert not (tmp_path / "x.log").exists()


def test_rotating_file_beside_the_settings(tmp_path: Path) -> None:
    handlers = configure_logging(
        settings_for(tmp_path, enabled=True, level="DEBUG", file_size=300, max_file_count=2)
    )
    assert len(handlers) == 1
    handler = handlers[0]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert Path(handler.baseFilename) == (tmp_path / "genja.log").resolve()
    log = logging.getLogger("genja.test")
    for index in range(50):
        log.debug("line %d %s", index, "x" * 40)
    handler.flush()
    files = sorted(p.name for p in tmp_path.glob("genja.log*"))
    assert files == ["genja.log", "genja.log.1", "genja.log.2"]
    assert "line 49" in (tmp_path / "genja.log").read_text()
    assert all(p.stat().st_size <= 300 for p in tmp_path.glob("genja.log*"))


def test_configuring_again_replaces_instead_of_stacking(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, enabled=True, log_file="a.log")
    first = configure_logging(settings)
    second = configure_logging(settings)
    assert first == second
    third = configure_logging(
        settings_for(tmp_path, enabled=True, log_file="b.log", to_console=True)
    )
    managed = [h for h in logging.getLogger("genja").handlers if getattr(h, "_genja_managed", None)]
    assert managed == third
    assert len(third) == 2
    assert first[0] not in managed


def test_console_only(tmp_path: Path) -> None:
    handlers = configure_logging(settings_for(tmp_path, enabled=True, to_console=True))
    assert [type(h) for h in handlers] == [logging.StreamHandler]
    assert not (tmp_path / "genja.log").exists()


def test_level_filters_records(tmp_path: Path) -> None:
    configure_logging(settings_for(tmp_path, enabled=True, level="WARNING"))
    logging.getLogger("genja.test").info("quiet")
    logging.getLogger("genja.test").warning("loud")
    for handler in logging.getLogger("genja").handlers:
        handler.flush()
    text = (tmp_path / "genja.log").read_text()
    assert "loud" in text
    assert "quiet" not in text


def test_agent_records_are_reemitted_with_their_origin(tmp_path: Path) -> None:
    configure_logging(settings_for(tmp_path, enabled=True, level="INFO"))
    reemit_agent_record(
        "local-3",
        logger_name="my.tasks",
        level=logging.WARNING,
        message="disk almost full",
        created=1_700_000_000.25,
        pid=4242,
        thread="genja-task_1",
    )
    reemit_agent_record(
        "local-3",
        logger_name="my.tasks",
        level=logging.DEBUG,
        message="below the level",
        created=0,
        pid=4242,
        thread="t",
    )
    for handler in logging.getLogger("genja").handlers:
        handler.flush()
    text = (tmp_path / "genja.log").read_text()
    assert "WARNING my.tasks [pid 4242 genja-task_1] [agent local-3] disk almost full" in text
    assert "below the level" not in text


def test_a_log_file_that_cannot_be_written_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    settings = settings_for(tmp_path, enabled=True, log_file="not-a-folder/genja.log")
    with pytest.raises(ConfigurationError) as caught:
        configure_logging(settings)
    assert str(caught.value).startswith(
        f"{tmp_path / 'settings.yaml'}: logging.log_file: cannot write "
    )
    assert "not-a-folder" in str(caught.value)
