"""Agent log records, sent to the coordinator instead of a shared file.

The coordinator re-emits them through the client's logging (see `genja._logging`), so a task's
`log.warning(...)` on an agent lands in the same rotating log file as the client's own records,
written by one process only.
"""

from __future__ import annotations

import logging
import os

from agent._log_filter import DEMOTE_LIBRARY_RECORDS
from agent._outbox import Outbox
from genja_rpc._pb import pb


class OutboxLogHandler(logging.Handler):
    """Queues every record it sees on the agent's outbox; never blocks, never sends itself."""

    def __init__(self, outbox: Outbox, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.addFilter(DEMOTE_LIBRARY_RECORDS)
        self._outbox = outbox
        self._pid = os.getpid()
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{self._formatter.formatException(record.exc_info)}"
            elif record.exc_text:
                message = f"{message}\n{record.exc_text}"
            self._outbox.add_log(
                pb.LogRecord(
                    logger=record.name,
                    level=record.levelno,
                    message=message,
                    created=record.created,
                    pid=self._pid,
                    thread=record.threadName or "",
                )
            )
        except Exception:
            self.handleError(record)
