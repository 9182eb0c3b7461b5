"""genja's logging, set up from the `logging` section of the settings.

Everything genja logs goes through the standard `logging` module under the `genja` logger:
the client, the embedded coordinator, and the agents. Agents are other processes and must not
write to the client's rotating file (two processes rotating one file lose and corrupt records),
so they send their records to the coordinator on their gRPC stream and the coordinator re-emits
them here, under `genja.agents.<agent id>`, keeping the agent's logger name, level, time, pid
and thread. The client's handlers therefore see one stream of records from every process.

`configure_logging` only touches the `genja` logger, and only when `logging.enabled` is true:
an application that configures logging itself keeps full control. Handlers it installs are
replaced (not stacked) when it is called again, e.g. by a second `Genja`.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from genja._errors import ConfigurationError
from genja._settings import Settings

GENJA_LOGGER = "genja"
AGENTS_LOGGER = "genja.agents"
DEFAULT_LOG_FILE = "genja.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d %(threadName)s] %(message)s"

_MANAGED = "_genja_managed"


def configure_logging(settings: Settings) -> list[logging.Handler]:
    """Install the handlers the settings ask for on the `genja` logger; the handlers.

    With `enabled`: a rotating file (`log_file`, default `genja.log` beside the settings file,
    `file_size` bytes per file, `max_file_count` old files kept) and, with `to_console`, stderr.
    A `to_console` setup without a `log_file` logs to the console only.
    """
    config = settings.logging
    if not config.enabled:
        return []
    logger = logging.getLogger(GENJA_LOGGER)
    wanted: list[tuple[str, logging.Handler | None]] = []
    if config.log_file or not config.to_console:
        path = settings.resolve_path(config.log_file or DEFAULT_LOG_FILE).resolve()
        key = f"file:{path}:{config.file_size}:{config.max_file_count}"
        wanted.append((key, None))
    if config.to_console:
        wanted.append(("console", None))
    current = {getattr(h, _MANAGED): h for h in logger.handlers if getattr(h, _MANAGED, None)}
    handlers: list[logging.Handler] = []
    for key, _ in wanted:
        handler = current.pop(key, None)
        if handler is None:
            try:
                handler = _make_handler(key, config.file_size, config.max_file_count)
            except OSError as error:
                place = settings.source or "settings"
                raise ConfigurationError(
                    f"{place}: logging.log_file: cannot write {error.filename}: {error.strerror}"
                ) from None
            setattr(handler, _MANAGED, key)
            logger.addHandler(handler)
        handlers.append(handler)
    for stale in current.values():
        logger.removeHandler(stale)
        stale.close()
    logger.setLevel(config.level)
    return handlers


def _make_handler(key: str, file_size: int, max_file_count: int) -> logging.Handler:
    handler: logging.Handler
    if key == "console":
        handler = logging.StreamHandler(sys.stderr)
    else:
        path = Path(key.split(":", 1)[1].rsplit(":", 2)[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=file_size, backupCount=max_file_count, encoding="utf-8"
        )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def agent_log_level(settings: Settings) -> str | None:
    """The level local agents should log (and forward) at: genja's when logging is enabled,
    else None (the agent's own default)."""
    return settings.logging.level if settings.logging.enabled else None


def reemit_agent_record(
    agent_id: str,
    *,
    logger_name: str,
    level: int,
    message: str,
    created: float,
    pid: int,
    thread: str,
) -> None:
    """Hand a record an agent sent to this process's handlers, as if logged here by the agent.

    The record goes through `genja.agents.<agent_id>` (so the `genja` handlers and level apply)
    while keeping the agent's own logger name, level, time, pid and thread.
    """
    logger = logging.getLogger(f"{AGENTS_LOGGER}.{agent_id}")
    if not logger.isEnabledFor(level):
        return
    record = logging.LogRecord(
        name=logger_name or logger.name,
        level=level,
        pathname="",
        lineno=0,
        msg=f"[agent {agent_id}] {message}",
        args=None,
        exc_info=None,
    )
    record.created = created or record.created
    record.msecs = (record.created - int(record.created)) * 1000
    record.process = pid or None
    record.threadName = thread or None
    record.agent_id = agent_id
    logger.handle(record)
