"""The `genja-agent` command (also `python -m agent`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agent._log_filter import DEMOTE_LIBRARY_RECORDS
from genja._settings import DEFAULT_HOST_CONCURRENCY

if TYPE_CHECKING:
    from agent._agent import AgentConfig

# The agent (grpc) is imported when the command runs, not with `agent`: the light modules of
# this package (connection plugins' settings) are loaded by clients that must not pull grpc in.

TOKEN_ENV = "GENJA_AGENT_TOKEN"


def _watch_parent(parent_pid: int) -> None:
    """Exit when the process that started us is gone, even if nobody told us."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, name="genja-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    from agent._agent import AgentConfig

    parser = argparse.ArgumentParser(
        prog="genja-agent",
        description="Run a genja agent: dial a coordinator, run the tasks it sends.",
    )
    parser.add_argument("--coordinator", required=True, help="unix:/path or host:port")
    parser.add_argument("--agent-id", required=True)
    parser.add_argument("--pool", default="local")
    parser.add_argument(
        "--host-concurrency", type=int, default=DEFAULT_HOST_CONCURRENCY,
        help="hosts worked on at once (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--token-file", help=f"file holding the agent token (else ${TOKEN_ENV})")
    parser.add_argument("--tls-ca", help="PEM file to verify a TLS coordinator's certificate")
    parser.add_argument("--exit-with-parent", type=int, metavar="PID")
    parser.add_argument("--log-level", default=os.environ.get("GENJA_AGENT_LOG_LEVEL", "WARNING"))
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s {args.agent_id} %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(DEMOTE_LIBRARY_RECORDS)
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    else:
        token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        parser.error(f"no agent token: pass --token-file or set {TOKEN_ENV}")
    if args.exit_with_parent is not None:
        # Ctrl-C in the user's terminal reaches the whole process group: the client decides
        # when we stop, not the terminal.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _watch_parent(args.exit_with_parent)
    config = AgentConfig(
        coordinator=args.coordinator,
        token=token,
        agent_id=args.agent_id,
        pool=args.pool,
        host_concurrency=args.host_concurrency,
        tls_ca=Path(args.tls_ca).read_bytes() if args.tls_ca else None,
    )
    status = _run(config, reconnect=args.exit_with_parent is None)
    # Task threads stuck on a dead device must not keep the process alive: the coordinator
    # already accounted for their hosts.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(status)


def _run(config: AgentConfig, *, reconnect: bool) -> int:
    """Serve the coordinator. A local agent lives and dies with its coordinator; a remote one
    (on a jump host) reconnects with backoff when the connection ends, until it is told to
    shut down or its token is refused."""
    from agent._agent import Agent

    log = logging.getLogger("genja.agent")
    delay = 0.5
    while True:
        started = time.monotonic()
        outcome = asyncio.run(Agent(config).serve())
        if outcome == "shutdown":
            return 0
        if outcome == "refused":
            return 2
        if not reconnect:
            return 0
        if time.monotonic() - started > 30:
            delay = 0.5
        log.warning("reconnecting to %s in %.1fs", config.coordinator, delay)
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
