"""Identity decisions without sockets: what a client's or an agent's credential allows, and
which addresses count as local. The same rules run for real in tests/e2e/test_trust.py."""

from __future__ import annotations

import grpc
import pytest

from genja_rpc._auth import (
    LOCAL_POOL,
    AgentGrant,
    AuthError,
    LocalAgentAuth,
    ServerAuth,
)
from genja_rpc._channels import AGENT_TOKEN_METADATA, CLIENT_TOKEN_METADATA, is_local, unix_path
from genja_rpc._pb import pb

AUTH = ServerAuth(
    client_tokens={"ops": "client-tok-1", "ci": "client-tok-2"},
    agent_tokens={"jump1": "agent-tok-1", "jump2": "agent-tok-2"},
)


def certificate(cn: str, *uris: str) -> dict[str, list[bytes]]:
    """An auth context as gRPC fills it for a verified client certificate."""
    context = {
        "x509_subject": [f"CN={cn},O=lab".encode()],
        "x509_common_name": [cn.encode()],
    }
    if uris:
        context["peer_uri"] = [uri.encode() for uri in uris]
    return context


def refused(call: object, *args: object) -> AuthError:
    with pytest.raises(AuthError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


# ---------------------------------------------------------------- clients


def test_a_client_is_its_certificate_subject_or_its_token_name() -> None:
    assert str(AUTH.client_identity((), certificate("alice"))) == "certificate 'CN=alice,O=lab'"
    identity = AUTH.client_identity([(CLIENT_TOKEN_METADATA, "client-tok-2")], {})
    assert str(identity) == "token 'ci'"


def test_a_client_without_a_good_credential_is_unauthenticated() -> None:
    for metadata in (
        [],
        [(CLIENT_TOKEN_METADATA, "nope")],
        [(AGENT_TOKEN_METADATA, "agent-tok-1")],
    ):
        error = refused(AUTH.client_identity, metadata, {})
        assert error.code is grpc.StatusCode.UNAUTHENTICATED
        assert "client token" in str(error)
        assert "nope" not in str(error)
    certificates_only = ServerAuth()
    error = refused(certificates_only.client_identity, [], {})
    assert "certificate only" in str(error)


def test_an_agent_certificate_cannot_run_tasks() -> None:
    error = refused(AUTH.client_identity, (), certificate("jump1-0", "genja:pool:jump1"))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert "agent's" in str(error)


def test_insecure_servers_take_anonymous_clients() -> None:
    insecure = ServerAuth(anonymous_clients=True)
    assert str(insecure.client_identity((), {})).startswith("anonymous")


# ---------------------------------------------------------------- agents


def hello(agent_id: str = "edge-a", pool: str = "") -> pb.AgentHello:
    return pb.AgentHello(agent_id=agent_id, pool=pool, pid=1)


def test_a_certificate_names_the_agent_and_its_pools() -> None:
    grant = AUTH.agent_grant((), certificate("edge-a", "genja:pool:jump1", "https://x/y"))
    assert grant == AgentGrant(frozenset({"jump1"}), "certificate 'CN=edge-a,O=lab'", "edge-a")
    identity = grant.identify(hello(pool=""))
    assert (identity.agent_id, identity.pool) == ("edge-a", "jump1")
    error = refused(grant.identify, hello("other-name", "jump1"))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert "'other-name' does not match" in str(error)


def test_a_pool_token_grants_only_its_pool() -> None:
    grant = AUTH.agent_grant([(AGENT_TOKEN_METADATA, "agent-tok-2")], {})
    assert grant.pools == {"jump2"}
    assert grant.identify(hello("edge-b", "jump2")).pool == "jump2"
    error = refused(grant.identify, hello("edge-b", "jump1"))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert "does not allow pool 'jump1' (it allows: jump2)" in str(error)


@pytest.mark.parametrize(
    "grant",
    [
        AUTH.agent_grant((), certificate("edge-a", "genja:pool:jump1", "genja:pool:local")),
        AUTH.agent_grant([(AGENT_TOKEN_METADATA, "agent-tok-1")], {}),
    ],
)
def test_no_remote_credential_grants_the_local_pool(grant: AgentGrant) -> None:
    error = refused(grant.identify, hello("edge-a", LOCAL_POOL))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert "pool 'local' is reserved for the coordinator's own agents" in str(error)


def test_remote_agents_cannot_take_the_local_agents_names() -> None:
    grant = AUTH.agent_grant([(AGENT_TOKEN_METADATA, "agent-tok-1")], {})
    error = refused(grant.identify, hello("local-3", "jump1"))
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert "agent ids local-* are reserved" in str(error)


def test_an_agent_allowed_several_pools_must_name_one() -> None:
    grant = AUTH.agent_grant((), certificate("edge-a", "genja:pool:jump1", "genja:pool:jump2"))
    error = refused(grant.identify, hello("edge-a", ""))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert grant.identify(hello("edge-a", "jump2")).pool == "jump2"


def test_an_agent_without_a_credential_is_unauthenticated() -> None:
    for metadata, context in (
        ([(AGENT_TOKEN_METADATA, "client-tok-1")], {}),
        ([], certificate("alice")),  # a client's certificate names no pool
    ):
        error = refused(AUTH.agent_grant, metadata, context)
        assert error.code is grpc.StatusCode.UNAUTHENTICATED


def test_the_local_pool_is_granted_by_the_local_token_only() -> None:
    local = LocalAgentAuth("local-tok")
    grant = local.agent_grant([(AGENT_TOKEN_METADATA, "local-tok")], {})
    assert grant.identify(hello("local-0", LOCAL_POOL)).pool == LOCAL_POOL
    assert (
        refused(grant.identify, hello("local-0", "jump1")).code is grpc.StatusCode.PERMISSION_DENIED
    )
    assert refused(local.agent_grant, [(AGENT_TOKEN_METADATA, "agent-tok-1")], {}).code is (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert "local-tok" not in repr(local)
    assert "client-tok-1" not in repr(AUTH)


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:50051", "127.8.0.1:1", "localhost:1", "[::1]:1", "ipv4:127.0.0.1:1",
     "dns:///localhost:1", "unix:/run/x.sock", "unix-abstract:x"],
)  # fmt: skip
def test_local_addresses(address: str) -> None:
    assert is_local(address)


@pytest.mark.parametrize(
    "address", ["0.0.0.0:50051", "[::]:1", ":50051", "10.0.0.1:1", "coordinator.example:1"]
)
def test_addresses_beyond_loopback(address: str) -> None:
    assert not is_local(address)


def test_unix_paths() -> None:
    assert unix_path("unix:/run/a.sock") == "/run/a.sock"
    assert unix_path("unix:///run/a.sock") == "/run/a.sock"
    assert unix_path("unix:rel.sock") == "rel.sock"
    assert unix_path("127.0.0.1:1") is None
