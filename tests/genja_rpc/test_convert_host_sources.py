"""Hosts keep their inherited groups and value sources on the way to agents."""

from __future__ import annotations

from genja import Host, Inventory, SourceKind, ValueSource
from genja_rpc._convert import host_from_proto, host_to_proto


def test_host_round_trip_keeps_all_groups_and_sources() -> None:
    inventory = Inventory.from_hosts(
        {"r1": {"groups": ["site"], "data": {"a": 1}, "connection_options": {"ssh": {"port": 1}}}},
        groups={"site": {"groups": ["region"], "port": 22}, "region": {"data": {"b": 2}}},
        defaults={"username": "u"},
    )
    host = inventory.hosts["r1"]
    back = host_from_proto(host_to_proto(host))
    assert back == host
    assert back.all_groups == ("site", "region")
    assert back.sources == dict(host.sources)
    assert back.source_of("port") == ValueSource(SourceKind.GROUP, "site")
    assert back.source_of("data.b") == ValueSource(SourceKind.GROUP, "region")
    assert back.source_of("username") == ValueSource(SourceKind.DEFAULTS)
    assert str(back.source_of("connection_options.ssh.port")) == "host"


def test_hand_built_hosts_round_trip_without_sources() -> None:
    host = Host(id="x", groups=("g",))
    back = host_from_proto(host_to_proto(host))
    assert back == host
    assert back.all_groups == ("g",)
    assert back.source_of("port") is None
