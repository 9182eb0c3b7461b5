"""The `genja-coordinator` command: `genja-coordinator serve`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

import grpc

from genja._errors import ConfigurationError
from genja_rpc._node import CoordinatorNode, NodeConfig
from genja_rpc._workdir import make_workdir

log = logging.getLogger("genja.coordinator")


def _read_secret(path: str | None, what: str, parser: argparse.ArgumentParser) -> str | None:
    if path is None:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        parser.error(f"{what} {path}: cannot read: {error.strerror}")
    if not value:
        parser.error(f"{what} {path} is empty")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genja-coordinator",
        description="The genja coordinator as a long-running server.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="take runs from clients and hand their hosts to agents",
        description=(
            "Serve CoordinatorService (runs from genja clients with "
            "runner.options.coordinator set) and AgentService (local agents it starts, and "
            "remote agents on jump hosts that dial in with `genja-agent --pool NAME`)."
        ),
        epilog=(
            "example: genja-coordinator serve --listen 127.0.0.1:50051 "
            "--client-token-file client.token --agent-token-file agent.token --agents 4"
        ),
    )
    serve.add_argument(
        "--listen", action="append", required=True, metavar="ADDRESS",
        help="address to serve on: HOST:PORT or unix:/path (repeatable)",
    )  # fmt: skip
    serve.add_argument(
        "--agents", type=int, default=os.cpu_count() or 1,
        help="local agent processes to run (default: the CPU count; 0 for remote agents only)",
    )  # fmt: skip
    serve.add_argument("--host-concurrency", type=int, help="hosts one local agent runs at once")
    serve.add_argument(
        "--client-token-file", help="file with the token clients must send (default: none needed)"
    )
    serve.add_argument(
        "--agent-token-file",
        help="file with the token remote agents must send (default: a random one, local only)",
    )
    serve.add_argument("--tls-cert", help="PEM certificate for TCP listeners")
    serve.add_argument("--tls-key", help="PEM private key for TCP listeners")
    serve.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.agents < 0:
        parser.error("--agents must be >= 0")
    client_token = _read_secret(args.client_token_file, "--client-token-file", parser) or ""
    agent_token = _read_secret(args.agent_token_file, "--agent-token-file", parser)
    credentials = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        credentials = grpc.ssl_server_credentials(
            [(Path(args.tls_key).read_bytes(), Path(args.tls_cert).read_bytes())]
        )
    workdir = make_workdir("coordinator")
    local_address = f"unix:{workdir / 'agents.sock'}"
    config = NodeConfig(
        listen=(*args.listen, local_address),
        agent_token=agent_token or secrets.token_urlsafe(32),
        workdir=workdir,
        local_agents=args.agents,
        local_agent_address=local_address,
        host_concurrency=args.host_concurrency,
        client_token=client_token,
        server_credentials=credentials,
        agent_log_level=args.log_level.upper(),
    )
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        pass
    except ConfigurationError as error:
        print(f"genja-coordinator: error: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


async def _serve(config: NodeConfig) -> None:
    node = CoordinatorNode(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await node.start()
    for address, port in node.ports.items():
        if not address.startswith("unix:"):
            host = address.rsplit(":", 1)[0]
            # One line a supervisor (or a test) can read to learn the real port of ":0".
            print(f"genja-coordinator listening on {host}:{port}", flush=True)
    log.info("serving with %d local agents", config.local_agents)
    await stop.wait()
    log.info("stopping")
    await node.stop()
