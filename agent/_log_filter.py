"""Quiet device libraries: a dead or silent device is one log line, not a traceback.

paramiko's transport thread logs every failed handshake as ~20 ERROR lines (the exception and
its traceback, naming no host); netmiko, scrapli and ncclient log through it or beside it. The
connection cache already logs each failed login as one WARNING line naming the host, the
address and the cause, so records of these libraries are demoted to DEBUG on the agent's
handlers: kept when the agent logs at DEBUG, dropped otherwise.
"""

from __future__ import annotations

import logging

NOISY_LOGGERS = ("paramiko", "netmiko", "scrapli", "ncclient", "asyncssh")


class DemoteLibraryRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == prefix or name.startswith(f"{prefix}.") for prefix in NOISY_LOGGERS):
            return True
        if record.levelno > logging.DEBUG:
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
        # Handlers compared the record's level before this filter ran: what is dropped here is
        # what the agent's own level would have dropped at DEBUG.
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


DEMOTE_LIBRARY_RECORDS = DemoteLibraryRecords()
