"""Server and channel factories: one place for message limits, keepalive, TLS and auth
metadata, and for telling loopback and unix-socket addresses from the rest."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import grpc

AGENT_TOKEN_METADATA = "genja-agent-token"
CLIENT_TOKEN_METADATA = "genja-client-token"

MAX_MESSAGE_BYTES = 256 * 1024 * 1024

_COMMON_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Keepalive pings find a peer that vanished without closing the connection (a remote
    # agent whose jump host rebooted) within about half a minute.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

_SERVER_OPTIONS: list[tuple[str, Any]] = [
    *_COMMON_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
]


def aio_server() -> grpc.aio.Server:
    return grpc.aio.server(options=_SERVER_OPTIONS)


# A local agent may start before its coordinator listens: it retries every 20-100 ms, not
# after gRPC's default second.
_EAGER_RECONNECT: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 100),
]


@dataclass(frozen=True)
class ChannelTLS:
    """TLS for a channel: the CA (PEM) that must have signed the server's certificate and,
    for mutual TLS, this side's certificate chain and private key."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = field(default=None, repr=False)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def aio_channel(
    address: str, tls: ChannelTLS | None = None, *, eager_reconnect: bool = False
) -> grpc.aio.Channel:
    """A channel to `address` ("unix:/path" or "host:port"). With `tls` the server's
    certificate is verified before anything (a token, a certificate) is sent; without, the
    channel is plaintext, which is for unix sockets and loopback only (callers check).
    `eager_reconnect` retries a peer that is not there yet every 20-100 ms."""
    options = _COMMON_OPTIONS + (_EAGER_RECONNECT if eager_reconnect else [])
    if tls is not None:
        return grpc.aio.secure_channel(address, tls.credentials(), options=options)
    return grpc.aio.insecure_channel(address, options=options)


def server_credentials(
    cert: bytes, key: bytes, client_ca: bytes | None = None
) -> grpc.ServerCredentials:
    """TLS for a server; with `client_ca`, every peer must present a certificate it signed
    (the handshake fails otherwise, before any call)."""
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


# ---------------------------------------------------------------- addresses


def unix_path(address: str) -> str | None:
    """The socket path of a "unix:path" or "unix:///abs/path" address, else None."""
    if not address.startswith("unix:"):
        return None
    path = address[len("unix:") :]
    return path[2:] if path.startswith("//") else path


def is_local(address: str) -> bool:
    """Only this machine can reach `address`: a unix socket (abstract ones too) or a loopback
    host (127.0.0.0/8, ::1, localhost). Host names other than localhost count as remote,
    whatever they resolve to now."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
            break
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
