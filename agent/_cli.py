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

from agent._agent import Agent, AgentConfig
from agent._log_filter import DEMOTE_LIBRARY_RECORDS
from genja._agent_settings import AgentSettings
from genja._errors import ConfigurationError
from genja._runner_defaults import DEFAULT_HOST_CONCURRENCY
from genja._secrets import read_file, read_secret_file, read_token
from genja_rpc._channels import ChannelTLS, is_local, unix_path

TOKEN_ENV = "GENJA_AGENT_TOKEN"
LOG_LEVEL_ENV = "GENJA_AGENT_LOG_LEVEL"


def _watch_parent(parent_pid: int) -> None:
    """Exit when the process that started us is gone, even if nobody told us."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, name="genja-parent-watch", daemon=True).start()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genja-agent",
        description="Run a genja agent: dial a coordinator, run the tasks it sends.",
        epilog=(
            "A remote agent proves which pools it may serve with a certificate (--tls-cert, "
            "--tls-key: URI subject alternative names genja:pool:NAME, its common name is the "
            "agent id) or a pool's token (--token-file). It verifies the coordinator first "
            "(--tls-ca): nothing is sent to a server it cannot verify."
        ),
    )
    parser.add_argument("--coordinator", required=True, help="unix:/path or host:port")
    parser.add_argument(
        "--agent-id", help="this agent's name (default: the common name of --tls-cert)"
    )
    parser.add_argument(
        "--pool", default="", help="the pool to serve (default: the one its credential grants)"
    )
    parser.add_argument(
        "--settings", metavar="FILE",
        help="this agent's own settings (YAML or JSON): connection plugins' file paths "
        "(ssh.known_hosts, ssh.config_file, ...), runner.options.host_concurrency and "
        "max_logins_per_agent, logging.level; relative paths are resolved against its folder",
    )  # fmt: skip
    parser.add_argument(
        "--host-concurrency", type=int,
        help=f"hosts worked on at once (default: the settings file's, else "
        f"{DEFAULT_HOST_CONCURRENCY})",
    )  # fmt: skip
    parser.add_argument(
        "--token-file", help=f"file holding the pool's agent token, mode 0600 (else ${TOKEN_ENV})"
    )
    parser.add_argument("--tls-ca", help="PEM file of the CA that signed the coordinator's cert")
    parser.add_argument("--tls-cert", help="PEM certificate of this agent (mutual TLS)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert, mode 0600")
    parser.add_argument(
        "--insecure", action="store_true",
        help="plaintext TCP to a coordinator on loopback (tests, or a tunnel's local end)",
    )  # fmt: skip
    parser.add_argument("--exit-with-parent", type=int, metavar="PID")
    parser.add_argument(
        "--state-dir", type=Path, metavar="DIR",
        help="a private folder where its supervisor reads its start journal and watchdog notes",
    )  # fmt: skip
    parser.add_argument(
        "--log-level",
        help=f"default: the settings file's logging.level, else ${LOG_LEVEL_ENV}, else WARNING",
    )
    return parser


def _config(args: argparse.Namespace) -> AgentConfig:
    """The agent's configuration from its options; ConfigurationError says what is wrong."""
    settings = AgentSettings.from_file(args.settings) if args.settings else AgentSettings()
    address = args.coordinator
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ConfigurationError("--tls-cert and --tls-key go together")
        if not args.tls_ca:
            raise ConfigurationError("--tls-cert needs --tls-ca to verify the coordinator with")
    tls = None
    if args.tls_ca:
        tls = ChannelTLS(
            ca=read_file(args.tls_ca, "--tls-ca"),
            cert=read_file(args.tls_cert, "--tls-cert") if args.tls_cert else None,
            key=read_secret_file(args.tls_key, "--tls-key") if args.tls_key else None,
        )
    elif unix_path(address) is None:
        if not args.insecure:
            raise ConfigurationError(
                f"--coordinator {address}: pass --tls-ca CA.pem to verify the coordinator "
                "before sending it a credential (plaintext needs --insecure, loopback only)"
            )
        if not is_local(address):
            raise ConfigurationError(
                f"--coordinator {address}: --insecure (plaintext) is only accepted for "
                "loopback addresses; pass --tls-ca CA.pem"
            )
    if args.token_file:
        token = read_token(args.token_file, "--token-file")
    else:
        token = os.environ.pop(TOKEN_ENV, "").strip()
    if not token and not (tls and tls.cert):
        raise ConfigurationError(
            f"no credential: pass --token-file (or set {TOKEN_ENV}), or --tls-cert and --tls-key"
        )
    agent_id = args.agent_id
    if not agent_id:
        if not (tls and tls.cert):
            raise ConfigurationError("--agent-id is needed without --tls-cert")
        agent_id = _common_name(tls.cert, args.tls_cert)
    return AgentConfig(
        coordinator=address,
        token=token,
        agent_id=agent_id,
        pool=args.pool,
        host_concurrency=args.host_concurrency
        or settings.host_concurrency
        or DEFAULT_HOST_CONCURRENCY,
        tls=tls,
        local=args.exit_with_parent is not None,
        state_dir=args.state_dir,
        settings=settings,
    )


def _common_name(pem: bytes, path: str) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        names = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(
            NameOID.COMMON_NAME
        )
    except ValueError as error:
        raise ConfigurationError(f"--tls-cert {path}: not a PEM certificate: {error}") from None
    if not names:
        raise ConfigurationError(f"--tls-cert {path} has no common name: pass --agent-id")
    return str(names[0].value)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except ConfigurationError as error:
        parser.error(str(error))
    level = (
        args.log_level or config.settings.log_level or os.environ.get(LOG_LEVEL_ENV) or "WARNING"
    ).upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {config.agent_id} %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # A run may ask for more detail than this (RunStart.log_level): the console keeps ours.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        handler.addFilter(DEMOTE_LIBRARY_RECORDS)
    if args.exit_with_parent is not None:
        # Ctrl-C in the user's terminal reaches the whole process group: the client decides
        # when we stop, not the terminal.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _watch_parent(args.exit_with_parent)
    status = _run(config, reconnect=args.exit_with_parent is None)
    # Task threads stuck on a dead device must not keep the process alive: the coordinator
    # already accounted for their hosts.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(status)


def _run(config: AgentConfig, *, reconnect: bool) -> int:
    """Serve the coordinator. A local agent lives and dies with its coordinator; a remote one
    (on a jump host) reconnects with backoff when the connection ends, until it is told to
    shut down or its credential is refused."""
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
