"""Server and channel factories: one place for message limits, keepalive and auth metadata."""

from __future__ import annotations

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


def aio_channel(
    address: str, tls_ca: bytes | None = None, *, eager_reconnect: bool = False
) -> grpc.aio.Channel:
    """A channel to `address` ("unix:/path" or "host:port"). With `tls_ca` (PEM) the server's
    certificate is verified against it; without, the channel is plaintext, which is for unix
    sockets in a private folder and for loopback. `eager_reconnect` retries a peer that is
    not there yet every 20-100 ms."""
    options = _COMMON_OPTIONS + (_EAGER_RECONNECT if eager_reconnect else [])
    if tls_ca is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
        return grpc.aio.secure_channel(address, credentials, options=options)
    return grpc.aio.insecure_channel(address, options=options)


def token_matches(metadata: Any, key: str, expected: str) -> bool:
    import hmac

    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            return hmac.compare_digest(value.encode(), expected.encode())
    return False
