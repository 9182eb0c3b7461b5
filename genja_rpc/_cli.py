"""The `genja-coordinator` command: `genja-coordinator serve`.

It refuses to start in a way that would let someone run code on its agents unannounced:
clients must authenticate (tokens or certificates) unless `--insecure`, which is accepted
only when every listener is loopback or a unix socket (made owner-only); a listener beyond
loopback needs TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from genja._agent_settings import AgentSettings
from genja._errors import ConfigurationError
from genja._runner_defaults import DEFAULT_HEARTBEAT_TIMEOUT
from genja._secrets import read_file, read_secret_file, read_token
from genja._settings import RunnerOptions
from genja_rpc._auth import LOCAL_POOL, POOL_URI_PREFIX, ServerAuth
from genja_rpc._channels import is_local, server_credentials, unix_path
from genja_rpc._node import CoordinatorNode, NodeConfig, PublicListeners
from genja_rpc._run_store import DEFAULT_KEEP_SECONDS, DEFAULT_MAX_BYTES
from genja_rpc._workdir import make_workdir

log = logging.getLogger("genja.coordinator")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


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
            "Serve CoordinatorService (runs from genja clients with runner.options.coordinator "
            "set) and AgentService (remote agents on jump hosts that dial in with genja-agent). "
            "Clients must authenticate with a token or a certificate; remote agents with a "
            "pool's token or a certificate naming their pools."
        ),
        epilog=(
            "examples:\n"
            "  genja-coordinator serve --listen 127.0.0.1:50051 --client-token-file ops=ops.token"
            " \\\n      --agent-token-file jump1=jump1.token --agents 4\n"
            "  genja-coordinator serve --listen 0.0.0.0:50051 --tls-cert coordinator.pem "
            "--tls-key coordinator.key \\\n      --tls-client-ca ca.pem\n"
            "  genja-coordinator serve --listen unix:/run/genja/coordinator.sock --insecure\n\n"
            "Token and key files must not be accessible by group or others (chmod 600)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--listen", action="append", required=True, metavar="ADDRESS",
        help="HOST:PORT or unix:/path (repeatable); beyond loopback, TLS is required",
    )  # fmt: skip
    serve.add_argument(
        "--agents", type=int, default=os.cpu_count() or 1,
        help="local agent processes to run (default: the CPU count; 0 for remote agents only)",
    )  # fmt: skip
    serve.add_argument("--host-concurrency", type=int, help="hosts one local agent runs at once")
    serve.add_argument(
        "--agent-memory-limit", default="2GiB", metavar="SIZE",
        help="resident memory past which a local agent is replaced, its running hosts failed "
        "(default %(default)s; 0: no limit)",
    )  # fmt: skip
    serve.add_argument(
        "--heartbeat-timeout", type=float, default=DEFAULT_HEARTBEAT_TIMEOUT, metavar="SECONDS",
        help="silence after which an agent counts as frozen (a local one is replaced, a "
        "remote one's hosts move) (default %(default)g)",
    )  # fmt: skip
    serve.add_argument(
        "--agent-settings", metavar="FILE",
        help="the local agents' own settings file (genja-agent --settings): this machine's "
        "ssh known_hosts and config file, login cap, log level",
    )  # fmt: skip
    serve.add_argument(
        "--client-token-file", action="append", default=[], metavar="[NAME=]FILE",
        help="a token clients may send; NAME (default: the file's stem) is what the audit log "
        "shows (repeatable)",
    )  # fmt: skip
    serve.add_argument(
        "--agent-token-file", action="append", default=[], metavar="POOL=FILE",
        help="the token remote agents of POOL send (repeatable, one per pool)",
    )  # fmt: skip
    serve.add_argument("--tls-cert", help="PEM certificate for the TCP listeners")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-client-ca",
        help="PEM CA: every TCP client and agent must present a certificate it signed",
    )
    serve.add_argument(
        "--insecure", action="store_true",
        help="serve clients without authentication (only on loopback or unix sockets)",
    )  # fmt: skip
    serve.add_argument(
        "--keep-runs", type=_duration, default=DEFAULT_KEEP_SECONDS, metavar="DURATION",
        help="how long a finished run's results stay for its client to attach to (genja "
        "attach RUN_ID): 90s, 30m, 1h, 2d; 0: only while it runs (default: 1h)",
    )  # fmt: skip
    serve.add_argument(
        "--keep-runs-memory", type=_size, default=DEFAULT_MAX_BYTES, metavar="SIZE",
        help="memory all kept runs' results may take: 256MiB, 2GiB (default: 512MiB); past "
        "it, finished runs are dropped first, then the largest running run can no longer be "
        "attached to (its connected client still gets everything)",
    )  # fmt: skip
    serve.add_argument("--log-level", default="INFO")
    return parser


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|K|M|G)?", re.IGNORECASE)
_BYTES = {
    "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30
}  # fmt: skip


def _duration(text: str) -> float:
    """90s, 30m, 1h, 2d, or seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration (90s, 30m, 1h, 2d), got {text!r}")
    return float(match[1]) * _SECONDS[match[2] or "s"]


def _size(text: str) -> int:
    """256MiB, 2GiB (K, M, G are the same binary units), or bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size (256MiB, 2GiB), got {text!r}")
    return int(match[1]) * _BYTES[(match[2] or "b").lower()]


def _named_files(values: list[str], option: str, *, name_required: bool) -> dict[str, str]:
    """`[NAME=]FILE` values as {name: file}; without NAME the file's stem names it."""
    named: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not _NAME.fullmatch(name):
            if name_required:
                raise ConfigurationError(f"{option} {value}: expected POOL=FILE")
            name, path = Path(value).stem, value
        if name in named:
            raise ConfigurationError(f"{option}: {name!r} is given twice")
        named[name] = path
    return named


def _tokens(files: Mapping[str, str], option: str) -> dict[str, str]:
    return {name: read_token(path, option) for name, path in files.items()}


def public_listeners(args: argparse.Namespace) -> PublicListeners:
    """The listeners `serve` was asked for, checked; ConfigurationError says what is wrong."""
    agent_files = _named_files(args.agent_token_file, "--agent-token-file", name_required=True)
    if LOCAL_POOL in agent_files:
        raise ConfigurationError(
            f"--agent-token-file: pool {LOCAL_POOL!r} is reserved for the coordinator's own "
            "agents; name the remote pool the token is for"
        )
    client_files = _named_files(args.client_token_file, "--client-token-file", name_required=False)
    if args.tls_client_ca and not args.tls_cert:
        raise ConfigurationError("--tls-client-ca needs --tls-cert and --tls-key")
    client_auth = bool(client_files or args.tls_client_ca)
    if args.insecure and client_auth:
        raise ConfigurationError(
            "--insecure serves clients without authentication: leave it out, or leave out "
            "--client-token-file and --tls-client-ca"
        )
    if not client_auth and not args.insecure:
        raise ConfigurationError(
            "no client authentication: pass --client-token-file FILE or --tls-client-ca CA.pem "
            "(--insecure, for loopback and unix sockets only, runs code for anyone who reaches "
            "them)"
        )
    for address in args.listen:
        if args.insecure and not is_local(address):
            raise ConfigurationError(
                f"--listen {address}: --insecure is only accepted when every listener is "
                "loopback or a unix socket"
            )
        if not is_local(address) and not args.tls_cert:
            raise ConfigurationError(
                f"--listen {address} reaches beyond loopback: it needs TLS (--tls-cert, "
                "--tls-key, and --tls-client-ca or --client-token-file)"
            )
        if unix_path(address) is not None and not client_files and not args.insecure:
            raise ConfigurationError(
                f"--listen {address}: clients on a unix socket cannot present certificates: "
                "add --client-token-file"
            )
    credentials = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ConfigurationError("--tls-cert and --tls-key go together")
        credentials = server_credentials(
            read_file(args.tls_cert, "--tls-cert"),
            read_secret_file(args.tls_key, "--tls-key"),
            read_file(args.tls_client_ca, "--tls-client-ca") if args.tls_client_ca else None,
        )
    client_tokens = _tokens(client_files, "--client-token-file")
    agent_tokens = _tokens(agent_files, "--agent-token-file")
    shared = set(client_tokens.values()) & set(agent_tokens.values())
    if shared:
        raise ConfigurationError(
            "a client token is also an agent token: agents could run tasks, clients could "
            "serve pools; make one token per client and per pool"
        )
    return PublicListeners(
        addresses=tuple(args.listen),
        auth=ServerAuth(client_tokens, agent_tokens, anonymous_clients=args.insecure),
        credentials=credentials,
    )


def _warnings(args: argparse.Namespace, public: PublicListeners) -> None:
    if args.insecure:
        tcp = [a for a in args.listen if unix_path(a) is None]
        log.warning(
            "--insecure: clients are not authenticated; %s can run code on the agents as this "
            "user (uid %d)",
            f"any local user who reaches {', '.join(tcp)}" if tcp else "this user (and root)",
            os.getuid(),
        )
    if not public.auth.agent_tokens and not args.tls_client_ca:
        log.info(
            "no --agent-token-file or --tls-client-ca: remote agents cannot connect "
            "(certificates name their pools as URI %sNAME)",
            POOL_URI_PREFIX,
        )


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
    try:
        public = public_listeners(args)
        limits = RunnerOptions.from_dict(
            {
                "agent_memory_limit": args.agent_memory_limit,
                "heartbeat_timeout": args.heartbeat_timeout,
            }
        )
    except ConfigurationError as error:
        message = str(error)
        for key in ("agent_memory_limit", "heartbeat_timeout"):
            message = message.replace(
                f"settings: runner.options.{key}", "--" + key.replace("_", "-")
            )
        parser.error(message)
    agent_settings = None
    if args.agent_settings:
        agent_settings = Path(args.agent_settings).absolute()
        try:
            AgentSettings.from_file(agent_settings)  # its errors now, not at each agent's start
        except ConfigurationError as error:
            parser.error(f"--agent-settings: {error}")
    _warnings(args, public)
    workdir = make_workdir("coordinator")
    config = NodeConfig(
        workdir=workdir,
        local_agents=args.agents,
        host_concurrency=args.host_concurrency,
        agent_log_level=args.log_level.upper(),
        public=public,
        heartbeat_timeout=limits.heartbeat_timeout,
        agent_memory_limit=limits.agent_memory_limit,
        agent_settings=agent_settings,
        keep_runs=args.keep_runs,
        keep_runs_memory=args.keep_runs_memory,
    )
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        pass
    except ConfigurationError as error:  # an address it cannot listen on
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
        if unix_path(address) is None:
            host = address.rsplit(":", 1)[0]
            # One line a supervisor (or a test) can read to learn the real port of ":0".
            print(f"genja-coordinator listening on {host}:{port}", flush=True)
        else:
            print(f"genja-coordinator listening on {address}", flush=True)
    log.info("serving with %d local agents", config.local_agents)
    await stop.wait()
    log.info("stopping")
    await node.stop()
