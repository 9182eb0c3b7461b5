"""Who is calling: the identity of a client (CoordinatorService.Run) and of an agent
(AgentService.Connect). Decided here and nowhere else; servicers get a frozen identity or an
`AuthError` to refuse the call with.

Clients, on the listeners of `genja-coordinator serve`:

- a certificate signed by `--tls-client-ca` (mutual TLS; the handshake already checked it):
  the client is its subject, e.g. `certificate 'CN=alice,O=netops'`;
- else a token from one of the `--client-token-file [NAME=]FILE`: the client is `token 'NAME'`;
- else, only when the server runs `--insecure` (loopback or an owner-only unix socket), an
  anonymous client.

Agents, on the same listeners, prove which pools they may serve:

- a certificate whose subject alternative names include URIs `genja:pool:NAME` grants those
  pools, and its common name is the agent's id (what the agent claims must match);
- a per-pool token (`--agent-token-file POOL=FILE`) grants that pool; the agent names itself.

The agent's hello names the pool it serves (or none, when its credential grants exactly one).
A pool its credential does not grant is refused with a message naming the pool. The pool
`local` is granted only on the coordinator's private unix socket, to the agents it starts
itself with a token of its own (`LocalAgentAuth`); no certificate or token file grants it.

A certificate that names pools is an agent's: it cannot run tasks as a client.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import grpc

from genja_rpc._channels import AGENT_TOKEN_METADATA, CLIENT_TOKEN_METADATA
from genja_rpc._pb import pb

log = logging.getLogger("genja.coordinator")

# The coordinator's own agents, on its private unix socket. Hosts without `agent_pool` run here.
LOCAL_POOL = "local"
POOL_URI_PREFIX = "genja:pool:"

Metadata = Iterable[tuple[str, Any]]
AuthContext = Mapping[str, Sequence[bytes]]


class AuthError(Exception):
    """A refused call: the status to answer with and one line saying why (never a secret)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who sent a run: `token 'ops'`, `certificate 'CN=alice,O=netops'` or `anonymous`."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """A verified agent: its id, the one pool it serves, and the credential that proved it."""

    agent_id: str
    pool: str
    credential: str


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The parts of a verified client certificate that identify its holder."""

    subject: str
    common_name: str
    pools: frozenset[str]

    @property
    def label(self) -> str:
        return f"certificate {self.subject!r}"


def peer_certificate(auth_context: AuthContext) -> PeerCertificate | None:
    """The certificate the peer presented in a mutual TLS handshake (gRPC verified it against
    `--tls-client-ca` before any call reached us), or None."""
    subject = _first(auth_context, "x509_subject")
    if subject is None:
        return None
    uris = [value.decode(errors="replace") for value in auth_context.get("peer_uri", ())]
    return PeerCertificate(
        subject=subject,
        common_name=_first(auth_context, "x509_common_name") or "",
        pools=frozenset(u[len(POOL_URI_PREFIX) :] for u in uris if u.startswith(POOL_URI_PREFIX)),
    )


def _first(auth_context: AuthContext, key: str) -> str | None:
    values = auth_context.get(key)
    return values[0].decode(errors="replace") if values else None


def _token(metadata: Metadata, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            return value
    return None


def _matching(presented: str | None, tokens: Mapping[str, str]) -> list[str]:
    """The names whose token is `presented`, each compared in constant time."""
    if not presented:
        return []
    offered = presented.encode()
    return [name for name, token in tokens.items() if hmac.compare_digest(offered, token.encode())]


@dataclass(frozen=True, slots=True)
class AgentGrant:
    """What an agent's credential allows: pools, and its id when the credential fixes it."""

    pools: frozenset[str]
    credential: str
    agent_id: str | None = None

    def identify(self, hello: pb.AgentHello) -> AgentIdentity:
        """The identity of the agent that sent `hello`, if its credential allows what it asks."""
        pool = hello.pool
        allowed = ", ".join(sorted(self.pools))
        if not pool:
            if len(self.pools) != 1:
                raise AuthError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{self.credential} allows pools {allowed}: name the one to serve (--pool)",
                )
            (pool,) = self.pools
        if pool not in self.pools:
            if pool == LOCAL_POOL:
                reason = f"pool {LOCAL_POOL!r} is reserved for the coordinator's own agents"
            else:
                reason = f"{self.credential} does not allow pool {pool!r} (it allows: {allowed})"
            raise AuthError(grpc.StatusCode.PERMISSION_DENIED, reason)
        agent_id = hello.agent_id or self.agent_id or ""
        if self.agent_id is not None and agent_id != self.agent_id:
            raise AuthError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"agent id {agent_id!r} does not match its {self.credential}",
            )
        if not agent_id:
            raise AuthError(grpc.StatusCode.INVALID_ARGUMENT, "the agent sent no agent id")
        if pool != LOCAL_POOL and agent_id.startswith(f"{LOCAL_POOL}-"):
            raise AuthError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"agent ids {LOCAL_POOL}-* are reserved for the coordinator's own "
                f"agents ({agent_id!r})",
            )
        return AgentIdentity(agent_id, pool, self.credential)


class AgentAuth(Protocol):
    """Decides what an agent's credential grants (see the module docstring)."""

    def agent_grant(self, metadata: Metadata, auth_context: AuthContext) -> AgentGrant: ...


@dataclass(frozen=True)
class LocalAgentAuth:
    """The coordinator's private unix socket: only its own agents, which got `token` from it
    through their environment, and only for the local pool."""

    token: str = field(repr=False)

    def agent_grant(self, metadata: Metadata, auth_context: AuthContext) -> AgentGrant:
        if not _matching(_token(metadata, AGENT_TOKEN_METADATA), {LOCAL_POOL: self.token}):
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong agent token")
        return AgentGrant(frozenset({LOCAL_POOL}), "the coordinator's local agent token")


@dataclass(frozen=True)
class ServerAuth:
    """The rules of `genja-coordinator serve`'s own listeners. Tokens are kept by name:
    client tokens by the name the audit log shows, agent tokens by the pool they grant."""

    client_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    agent_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    anonymous_clients: bool = False  # --insecure: no client credential configured or needed

    def client_identity(self, metadata: Metadata, auth_context: AuthContext) -> ClientIdentity:
        certificate = peer_certificate(auth_context)
        if certificate is not None:
            if certificate.pools:
                raise AuthError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{certificate.label} is an agent's (it names pools "
                    f"{', '.join(sorted(certificate.pools))}); it cannot run tasks",
                )
            return ClientIdentity(certificate.label)
        names = _matching(_token(metadata, CLIENT_TOKEN_METADATA), self.client_tokens)
        if names:
            return ClientIdentity(f"token {names[0]!r}")
        if self.anonymous_clients:
            return ClientIdentity("anonymous (--insecure)")
        raise AuthError(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong client token (runner.options.coordinator_token_file)"
            if self.client_tokens
            else "this coordinator accepts clients with a certificate only "
            "(runner.options.coordinator_tls_cert and coordinator_tls_key)",
        )

    def agent_grant(self, metadata: Metadata, auth_context: AuthContext) -> AgentGrant:
        certificate = peer_certificate(auth_context)
        pools = set(_matching(_token(metadata, AGENT_TOKEN_METADATA), self.agent_tokens))
        if certificate is not None and certificate.pools:
            pools |= certificate.pools
        # Whatever a certificate or token file says, the local pool is not theirs to grant.
        pools.discard(LOCAL_POOL)
        if certificate is not None and certificate.pools:
            return AgentGrant(frozenset(pools), certificate.label, certificate.common_name)
        if pools:
            names = ", ".join(repr(pool) for pool in sorted(pools))
            return AgentGrant(frozenset(pools), f"token of pool {names}")
        raise AuthError(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong agent token, and no certificate naming a pool "
            f"(a URI subject alternative name {POOL_URI_PREFIX}NAME)",
        )


def credentials_of(context: Any) -> tuple[Metadata, AuthContext]:
    """What a gRPC servicer context carries to decide an identity from."""
    return context.invocation_metadata() or (), context.auth_context() or {}


async def refuse(context: Any, error: AuthError, who: str) -> NoReturn:
    """Log the refusal (peer and reason; a refused credential is never logged) and end the
    call with the error's status."""
    log.warning("refused %s from %s: %s", who, context.peer(), error)
    await context.abort(error.code, str(error))
    raise AssertionError("context.abort returned")  # it raises; this is for type checkers
