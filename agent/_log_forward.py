"""Agent log records, sent to the coordinator instead of a shared file.

The coordinator re-emits them through its own logging (for an embedded coordinator, the
client's: see `genja._logging`), so a task's `log.warning(...)` on an agent lands in the same
rotating log file as the client's own records, written by one process only. A coordinator
server also passes the records of a run on to that run's client.

A record logged while the agent works on a host (in the host's worker thread or coroutine, and
in the threads they hand work to) carries that run and host, and has the host's secrets
masked. A run's client may want more detail than the agent logs for itself (`RunStart.log_level`):
the root logger then goes down to that level, and only that run's records at it are sent; the
agent's console handlers keep the agent's own level.
"""

from __future__ import annotations

import logging
import os

from agent._executor import current_host
from agent._log_filter import DEMOTE_LIBRARY_RECORDS
from agent._outbox import Outbox
from genja._secrets import mask
from genja_rpc._pb import pb


class LogLevels:
    """The agent's own level, and the levels runs asked for."""

    def __init__(self, own: int) -> None:
        self.own = own
        self._runs: dict[str, int] = {}

    def set_run(self, run_id: str, level: int) -> None:
        if level and level < self.own:
            self._runs[run_id] = level
            self._apply()

    def drop_run(self, run_id: str) -> None:
        if self._runs.pop(run_id, None) is not None:
            self._apply()

    def threshold(self, run_id: str) -> int:
        """The lowest level sent for records of `run_id` ("": of no run)."""
        return self._runs.get(run_id, self.own) if run_id else self.own

    def _apply(self) -> None:
        logging.getLogger().setLevel(min([self.own, *self._runs.values()]))


class OutboxLogHandler(logging.Handler):
    """Queues every record it sees (at its threshold) on the agent's outbox; never blocks,
    never sends itself."""

    def __init__(self, outbox: Outbox, levels: LogLevels) -> None:
        super().__init__()
        self.addFilter(DEMOTE_LIBRARY_RECORDS)
        self._outbox = outbox
        self._levels = levels
        self._pid = os.getpid()
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            working = current_host.get()
            run_id, host = working if working is not None else ("", None)
            if record.levelno < self._levels.threshold(run_id):
                return
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{self._formatter.formatException(record.exc_info)}"
            elif record.exc_text:
                message = f"{message}\n{record.exc_text}"
            if host is not None:
                message = mask(message, host.secret_values())
            self._outbox.add_log(
                pb.LogRecord(
                    logger=record.name,
                    level=record.levelno,
                    message=message,
                    created=record.created,
                    pid=self._pid,
                    thread=record.threadName or "",
                    run_id=run_id,
                    host_id=host.id if host is not None else "",
                )
            )
        except Exception:
            self.handleError(record)
