"""The coordinator's audit trail: one line when a client's run starts and one when it ends,
on the `genja.coordinator.audit` logger, so an operator can route them apart.

Each line says who ran what: the client's identity (token name or certificate subject), the
task names, the hash (or import path) of every piece of task code, the host count, and the
start and end times. Never a secret: no token, no host field, no task option.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Iterator

from genja_rpc._auth import ClientIdentity
from genja_rpc._coordinator import RunOrder
from genja_rpc._pb import pb

audit_log = logging.getLogger("genja.coordinator.audit")


def _task_names(spec: pb.TaskSpec) -> list[str]:
    names = [spec.name]
    for child in spec.sub_tasks:
        names.extend(_task_names(child))
    return names


def _code(spec: pb.TaskSpec) -> list[str]:
    source = spec.code.WhichOneof("source")
    found = []
    if source == "content_hash":
        found.append(f"sha256:{spec.code.content_hash}")
    elif source == "import_path":
        found.append(f"import:{spec.code.import_path}")
    for child in spec.sub_tasks:
        found.extend(_code(child))
    return found


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class AuditedRun:
    """Handed to the body of `audited_run`: it calls `finished()` once every result is out,
    so a client that hangs up right after the last one does not make the run look cancelled."""

    def __init__(self) -> None:
        self.outcome = "cancelled (the client went away)"

    def finished(self) -> None:
        self.outcome = "finished"


@contextlib.contextmanager
def audited_run(client: ClientIdentity, order: RunOrder, peer: str) -> Iterator[AuditedRun]:
    """Log the run's start, then its end with how it ended, around the body."""
    run_id = order.run_id
    what = (
        f"client {client} from {peer}; tasks {', '.join(_task_names(order.root))}; "
        f"code {', '.join(dict.fromkeys(_code(order.root))) or 'none'}; "
        f"{len(order.hosts)} hosts"
    )
    started_at = _now()
    audit_log.info("run %s started at %s: %s", run_id, started_at, what)
    started = time.monotonic()
    run = AuditedRun()
    try:
        yield run
    except (asyncio.CancelledError, GeneratorExit):
        raise
    except BaseException as error:
        if run.outcome != "finished":
            run.outcome = f"failed ({type(error).__name__})"
        raise
    finally:
        audit_log.info(
            "run %s ended at %s, %s after %.1fs (started at %s): %s",
            run_id, _now(), run.outcome, time.monotonic() - started, started_at, what,
        )  # fmt: skip
