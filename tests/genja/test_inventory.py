"""Inventory files: inheritance, provenance, secrets and every loading error."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from genja import (
    ConfigurationError,
    ConnectionOptions,
    Host,
    Inventory,
    InventoryError,
    Settings,
    SourceKind,
    ValueSource,
)

FIELD_VALUES: dict[str, tuple[Any, Any, Any, Any]] = {
    # field: (host, group, parent group, defaults)
    "hostname": ("h.example", "g.example", "p.example", "d.example"),
    "port": (1, 2, 3, 4),
    "username": ("hu", "gu", "pu", "du"),
    "password": ("hp", "gp", "pp", "dp"),
    "platform": ("ios", "eos", "junos", "linux"),
}
LAYERS = ("host", "group", "parent", "defaults")


def write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    if isinstance(content, str):
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    elif name.endswith(".json"):
        path.write_text(json.dumps(content), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def load(
    tmp_path: Path, hosts: Any, groups: Any = None, defaults: Any = None, suffix: str = "yaml"
) -> Inventory:
    return Inventory.from_files(
        write(tmp_path, f"hosts.{suffix}", hosts),
        write(tmp_path, f"groups.{suffix}", groups) if groups is not None else None,
        write(tmp_path, f"defaults.{suffix}", defaults) if defaults is not None else None,
    )


# ---------------------------------------------------------------- inheritance matrix


@pytest.mark.parametrize("field", sorted(FIELD_VALUES))
@pytest.mark.parametrize("highest", LAYERS)
def test_each_field_comes_from_the_highest_layer_that_sets_it(
    tmp_path: Path, field: str, highest: str
) -> None:
    values = dict(zip(LAYERS, FIELD_VALUES[field], strict=True))
    start = LAYERS.index(highest)
    present = LAYERS[start:]  # the highest layer and every layer below it set the field
    host: dict[str, Any] = {"groups": ["g"]}
    group: dict[str, Any] = {"groups": ["p"]}
    parent: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for layer, entry in zip(LAYERS, (host, group, parent, defaults), strict=True):
        if layer in present:
            entry[field] = values[layer]
    inventory = load(tmp_path, {"r1": host}, {"g": group, "p": parent}, defaults)
    resolved = inventory.hosts["r1"]
    assert getattr(resolved, field) == values[highest]
    expected_source = {
        "host": ValueSource(SourceKind.HOST),
        "group": ValueSource(SourceKind.GROUP, "g"),
        "parent": ValueSource(SourceKind.GROUP, "p"),
        "defaults": ValueSource(SourceKind.DEFAULTS),
    }[highest]
    assert resolved.source_of(field) == expected_source


def test_unset_fields_stay_unset_and_hostname_falls_back_to_the_id(tmp_path: Path) -> None:
    host = load(tmp_path, {"r1": None}).hosts["r1"]
    assert host.hostname == "r1"
    assert host.source_of("hostname") == ValueSource(SourceKind.HOST_ID)
    assert (host.port, host.username, host.password, host.platform) == (None,) * 4
    assert host.source_of("port") is None


@pytest.mark.parametrize("highest", LAYERS)
def test_data_keys_merge_with_the_same_precedence(tmp_path: Path, highest: str) -> None:
    start = LAYERS.index(highest)
    entries: dict[str, dict[str, Any]] = {
        "host": {"groups": ["g"]},
        "group": {"groups": ["p"]},
        "parent": {},
        "defaults": {},
    }
    for layer in LAYERS[start:]:
        entries[layer]["data"] = {"site": {"name": f"{layer}-site"}, f"only_{layer}": layer}
    inventory = load(
        tmp_path,
        {"r1": entries["host"]},
        {"g": entries["group"], "p": entries["parent"]},
        entries["defaults"],
    )
    host = inventory.hosts["r1"]
    # A nested mapping is taken whole from the highest layer (no deep merge).
    assert host.data["site"] == {"name": f"{highest}-site"}
    for layer in LAYERS[start:]:
        assert host.data[f"only_{layer}"] == layer
    assert (
        str(host.source_of("data.site.name"))
        == {
            "host": "host",
            "group": "group:g",
            "parent": "group:p",
            "defaults": "defaults",
        }[highest]
    )


def test_nested_data_is_not_deep_merged(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        {"r1": {"groups": ["g"], "data": {"site": {"name": "a"}}}},
        {"g": {"data": {"site": {"name": "b", "role": "edge"}, "vlan": 10}}},
    )
    assert inventory.hosts["r1"].data == {"site": {"name": "a"}, "vlan": 10}


def test_first_listed_group_wins_and_parents_come_before_the_next_group(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        {"r1": {"groups": ["a", "b"]}},
        {
            "a": {"groups": ["a_parent"]},
            "a_parent": {"port": 1, "platform": "from-a-parent"},
            "b": {"port": 2, "platform": "from-b", "username": "from-b"},
        },
        {"username": "from-defaults", "password": "from-defaults"},
    )
    host = inventory.hosts["r1"]
    assert host.port == 1
    assert host.platform == "from-a-parent"
    assert host.username == "from-b"
    assert host.password == "from-defaults"
    assert host.groups == ("a", "b")
    assert host.all_groups == ("a", "a_parent", "b")
    assert host.in_group("a_parent")
    assert not host.in_group("a_parent", inherited=False)


def test_a_group_reached_twice_counts_at_its_first_place(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        {"r1": {"groups": ["a", "b"]}},
        {"a": {"groups": ["shared"]}, "b": {"port": 2}, "shared": {"port": 1}},
    )
    assert inventory.hosts["r1"].port == 1
    assert inventory.hosts["r1"].all_groups == ("a", "shared", "b")


def test_hosts_with_the_same_groups_do_not_share_mutable_data(tmp_path: Path) -> None:
    inventory = load(
        tmp_path, {"r1": {"groups": ["g"]}, "r2": {"groups": ["g"]}}, {"g": {"data": {"x": 1}}}
    )
    inventory.hosts["r1"].data["y"] = 2  # type: ignore[index]
    assert "y" not in inventory.hosts["r2"].data


def test_connection_options_merge_field_by_field(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        {
            "r1": {
                "groups": ["g"],
                "port": 22,
                "connection_options": {"ssh": {"port": 2201, "extras": {"a": "host"}}},
            },
            "r2": {"groups": ["g"], "username": "me"},
        },
        {
            "g": {
                "connection_options": {
                    "ssh": {"username": "svc", "extras": {"a": "group", "b": "group"}}
                }
            }
        },
        {"connection_options": {"ssh": {"platform": "linux"}, "netconf": {"port": 830}}},
    )
    r1 = inventory.hosts["r1"]
    assert r1.connection_options["ssh"] == ConnectionOptions(
        port=2201, username="svc", platform="linux", extras={"a": "host", "b": "group"}
    )
    assert r1.connection_options["netconf"].port == 830
    assert str(r1.source_of("connection_options.ssh.port")) == "host"
    assert str(r1.source_of("connection_options.ssh.username")) == "group:g"
    assert str(r1.source_of("connection_options.ssh.extras.b")) == "group:g"
    assert str(r1.source_of("connection_options.ssh.platform")) == "defaults"
    r2 = inventory.hosts["r2"]
    assert r2.connection_options["ssh"].username == "svc"
    params = r2.connection_params("ssh")
    assert (params.hostname, params.username, params.platform) == ("r2", "svc", "linux")
    assert r2.connection_params("telnet").username == "me"


def test_json_files_load_like_yaml(tmp_path: Path) -> None:
    hosts = {"r1": {"groups": ["g"], "data": {"a": 1}}}
    groups = {"g": {"port": 2222, "data": {"b": 2}}}
    from_json = load(tmp_path, hosts, groups, {"username": "u"}, suffix="json")
    from_yaml = load(tmp_path, hosts, groups, {"username": "u"})
    assert from_json.hosts == from_yaml.hosts
    assert from_json.hosts["r1"].port == 2222


def test_empty_files_are_an_empty_inventory(tmp_path: Path) -> None:
    inventory = load(tmp_path, "", "", "")
    assert len(inventory) == 0
    assert list(inventory) == []


def test_hosts_keep_file_order(tmp_path: Path) -> None:
    inventory = load(tmp_path, "b: {}\na: {}\nc: {}\n")
    assert list(inventory.hosts) == ["b", "a", "c"]


# ---------------------------------------------------------------- secrets


def test_password_from_environment_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_PW", "s3cret-value")
    inventory = load(
        tmp_path,
        {
            "r1": {"password": "${env:ROUTER_PW}"},
            "r2": {"connection_options": {"ssh": {"password": "${env:ROUTER_PW}"}}},
            "r3": {"groups": ["g"]},
        },
        {"g": {"password": "${env:ROUTER_PW}"}},
    )
    assert inventory.hosts["r1"].password == "s3cret-value"
    assert inventory.hosts["r2"].connection_options["ssh"].password == "s3cret-value"
    assert inventory.hosts["r3"].password == "s3cret-value"
    for host in inventory:
        assert "s3cret" not in repr(host)
    assert "s3cret" not in repr(inventory.hosts["r2"].connection_options)


def test_extras_from_environment_references_are_secrets_whatever_their_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENABLE_PW", "en-from-env-77")
    monkeypatch.setenv("JUMP", "bastion-from-env-66")
    inventory = load(
        tmp_path,
        {
            "r1": {"groups": ["g"]},
            "r2": {"connection_options": {"ssh": {"extras": {"enable": "${env:ENABLE_PW}"}}}},
        },
        {"g": {"connection_options": {"ssh": {"extras": {"proxy_jump": "${env:JUMP}"}}}}},
    )
    r1, r2 = inventory.hosts["r1"], inventory.hosts["r2"]
    assert r1.connection_options["ssh"].extras == {"proxy_jump": "bastion-from-env-66"}
    assert type(r1.connection_options["ssh"].extras["proxy_jump"]) is str
    assert r1.connection_options["ssh"].env_extras == {"proxy_jump"}
    assert r2.connection_params("ssh").env_extras == {"enable"}
    assert r2.secret_values() == ("en-from-env-77",)
    for host in inventory:
        for shown in (repr(host), repr(host.connection_params("ssh"))):
            assert "from-env" not in shown
            assert "********" in shown


def test_missing_environment_variable_is_named_without_any_value(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, "r1:\n  hostname: a\n  password: ${env:GENJA_TEST_UNSET_PW}\n")
    message = str(caught.value)
    assert "hosts.yaml: line 3:" in message
    assert "host 'r1'" in message
    assert "GENJA_TEST_UNSET_PW" in message


def test_a_literal_password_is_kept_and_never_shown(tmp_path: Path) -> None:
    host = load(tmp_path, {"r1": {"password": "hunter2"}}).hosts["r1"]
    assert host.password == "hunter2"
    assert "hunter2" not in repr(host)
    assert "hunter2" not in str(host)


# ---------------------------------------------------------------- errors


def test_duplicate_host_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"hosts\.yaml: line 5: .*duplicate key 'r1'"):
        load(tmp_path, "r1:\n  port: 22\nr2:\n  port: 22\nr1:\n  port: 23\n")


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "r0: {}\nr1:\n  port: twenty-two\n",
            3,
            "port must be a whole number from 1 to 65535, got 'twenty-two'",
        ),
        ("r1:\n  port: '22'\n", 2, "port must be a whole number"),
        ("r1:\n  port: true\n", 2, "port must be a whole number"),
        ("r1:\n  hostname: 10\n", 2, "hostname must be a string, got 10"),
        ("r1:\n  groups: core\n", 2, "groups must be a list of group names"),
        ("r1:\n  data: [1]\n", 2, "data must be a mapping"),
        ("r1:\n  hostnme: a\n", 2, "unknown field 'hostnme'; did you mean 'hostname'?"),
        ("r1:\n  connection_options:\n    ssh:\n      prt: 1\n", 4, "did you mean 'port'?"),
        ("r1: [a]\n", 1, "must be a mapping of fields, got list"),
    ],
)
def test_wrong_types_name_file_host_key_and_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'hosts.yaml'}: line {line}: host 'r")
    assert needle in message


def test_wrong_types_in_json_name_the_file_and_line(tmp_path: Path) -> None:
    text = '{\n  "r1": {\n    "port": "twenty-two"\n  }\n}\n'
    with pytest.raises(InventoryError, match=r"hosts\.json: line 3: host 'r1': port must be"):
        load(tmp_path, text, suffix="json")


def test_wrong_type_in_groups_and_defaults(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"groups\.yaml: line 3: group 'g': port must be"):
        load(tmp_path, {"r1": {}}, "g:\n  data: {}\n  port: x\n")
    with pytest.raises(InventoryError, match=r"defaults\.yaml: line 2: defaults: username"):
        load(tmp_path, {"r1": {}}, None, "port: 1\nusername: [a]\n")


# Ports travel to agents as int32 and to sockets as 16 bits: 1-65535, whole numbers only.
BAD_PORTS = [
    ("-5", "-5"),
    ("0", "0"),
    ("65536", "65536"),
    ("99999999999999999999", "99999999999999999999"),
    ("'22'", "'22'"),
    ("22.0", "22.0"),
    ("true", "True"),
    ("[22]", "[22]"),
]
PORT_RANGE = "must be a whole number from 1 to 65535"


@pytest.mark.parametrize(("port", "shown"), BAD_PORTS)
def test_a_bad_port_names_file_line_and_host(tmp_path: Path, port: str, shown: str) -> None:
    text = f"r0:\n  port: 22\nr1:\n  hostname: 10.0.0.1\n  port: {port}\n"
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, text)
    hosts = tmp_path / "hosts.yaml"
    assert str(caught.value) == f"{hosts}: line 5: host 'r1': port {PORT_RANGE}, got {shown}"


@pytest.mark.parametrize(("port", "shown"), BAD_PORTS)
def test_a_bad_port_in_groups_and_defaults(tmp_path: Path, port: str, shown: str) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, {"r1": {}}, f"g:\n  data: {{}}\n  port: {port}\n")
    groups = tmp_path / "groups.yaml"
    assert str(caught.value) == f"{groups}: line 3: group 'g': port {PORT_RANGE}, got {shown}"
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, {"r1": {}}, {"g": {}}, f"username: u\nport: {port}\n")
    defaults = tmp_path / "defaults.yaml"
    assert str(caught.value) == f"{defaults}: line 2: defaults: port {PORT_RANGE}, got {shown}"


@pytest.mark.parametrize(("port", "shown"), BAD_PORTS)
def test_a_bad_connection_option_port_names_file_line_host_and_plugin(
    tmp_path: Path, port: str, shown: str
) -> None:
    options = f"  connection_options:\n    netconf: {{port: 830}}\n    ssh:\n      port: {port}\n"
    key = "connection_options.ssh.port"
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, f"r0: {{}}\nr1:\n  hostname: a\n{options}")
    hosts = tmp_path / "hosts.yaml"
    assert str(caught.value) == f"{hosts}: line 7: host 'r1': {key} {PORT_RANGE}, got {shown}"
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, {"r1": {}}, f"g:\n{options}")
    groups = tmp_path / "groups.yaml"
    assert str(caught.value) == f"{groups}: line 5: group 'g': {key} {PORT_RANGE}, got {shown}"
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, {"r1": {}}, None, textwrap.dedent(options))
    defaults = tmp_path / "defaults.yaml"
    assert str(caught.value) == f"{defaults}: line 4: defaults: {key} {PORT_RANGE}, got {shown}"


def test_a_bad_port_in_json_and_in_memory(tmp_path: Path) -> None:
    text = '{\n  "r1": {\n    "connection_options": {"ssh": {\n      "port": 70000}}\n  }\n}\n'
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, text, suffix="json")
    assert str(caught.value) == (
        f"{tmp_path / 'hosts.json'}: line 4: host 'r1': "
        f"connection_options.ssh.port {PORT_RANGE}, got 70000"
    )
    with pytest.raises(InventoryError) as caught:
        Inventory.from_hosts({"r1": {"port": -5}})
    assert str(caught.value) == f"inventory: host 'r1': port {PORT_RANGE}, got -5"


def test_the_first_and_last_ports_are_valid(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        {"r1": {"port": 1, "connection_options": {"ssh": {"port": 65535}}}},
        {"g": {"port": 65535}},
        {"port": 1},
    )
    assert inventory.hosts["r1"].port == 1
    assert inventory.hosts["r1"].connection_params("ssh").port == 65535


@pytest.mark.parametrize("text", ["- r1\n- r2\n", "just a string\n", "42\n"])
def test_a_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(InventoryError, match=r"hosts\.yaml: expected a mapping of host names"):
        load(tmp_path, text)


def test_unknown_group_names_host_line_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, "r1:\n  groups:\n    - coer\n", {"core": {}})
    assert "hosts.yaml: line 2: host 'r1': unknown group 'coer'; did you mean 'core'?" in str(
        caught.value
    )


def test_unknown_parent_group_names_the_chain(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, {"r1": {}}, "a:\n  groups: [b]\nb:\n  groups: [missing]\n")
    message = str(caught.value)
    assert "groups.yaml: line 4: group 'b'" in message
    assert "unknown parent group 'missing'" in message
    assert "a -> b -> missing" in message


def test_group_cycles_name_the_chain(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"groups\.yaml: group cycle: a -> b -> c -> a"):
        load(
            tmp_path,
            {"r1": {}},
            {"a": {"groups": ["b"]}, "b": {"groups": ["c"]}, "c": {"groups": ["a"]}},
        )
    with pytest.raises(InventoryError, match="group cycle: self -> self"):
        load(tmp_path, {"r1": {}}, {"self": {"groups": ["self"]}})


def test_missing_hosts_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"nowhere\.yaml: file not found"):
        Inventory.from_files(tmp_path / "nowhere.yaml")


# ---------------------------------------------------------------- settings, transform, memory


def upper_platform(host: Host, suffix: str = "") -> Host:
    return dataclasses.replace(host, platform=f"{(host.platform or '').upper()}{suffix}")


def test_from_settings_resolves_paths_and_applies_the_transform_function(tmp_path: Path) -> None:
    write(tmp_path, "hosts.yaml", {"r1": {"platform": "ios", "groups": ["g"]}})
    write(tmp_path, "groups.yaml", {"g": {"port": 2022}})
    write(tmp_path, "defaults.yaml", {"username": "u"})
    settings_path = write(
        tmp_path,
        "settings.yaml",
        {
            "inventory": {
                "options": {
                    "hosts_file": "hosts.yaml",
                    "groups_file": "groups.yaml",
                    "defaults_file": "defaults.yaml",
                },
                "transform_function": f"{__name__}:upper_platform",
                "transform_function_options": {"suffix": "-xe"},
            }
        },
    )
    sys.modules.setdefault(__name__, sys.modules[__name__])
    inventory = Inventory.from_settings(Settings.from_file(settings_path, environ={}))
    host = inventory.hosts["r1"]
    assert (host.platform, host.port, host.username) == ("IOS-xe", 2022, "u")


def test_transform_function_that_cannot_be_imported(tmp_path: Path) -> None:
    settings = Settings.from_dict(
        {"inventory": {"transform_function": "no_such_module_x:fn"}}, environ={}
    )
    with pytest.raises(ConfigurationError, match=r"inventory\.transform_function: cannot import"):
        Inventory.from_settings(settings)


def test_unknown_inventory_plugin(tmp_path: Path) -> None:
    settings = Settings.from_dict({"inventory": {"plugin": "netbox"}}, environ={})
    with pytest.raises(InventoryError, match=r"inventory\.plugin 'netbox' is not known"):
        Inventory.from_settings(settings)


def test_from_hosts_inherits_and_leaves_its_input_alone() -> None:
    hosts = {"r1": {"groups": ["g"], "data": {"a": 1}}, "r2": Host(id="r2", port=9)}
    groups = {"g": {"port": 2, "data": {"b": 2}}}
    inventory = Inventory.from_hosts(hosts, groups=groups, defaults={"username": "u"})
    assert inventory.hosts["r1"].data == {"a": 1, "b": 2}
    assert inventory.hosts["r1"].port == 2
    assert inventory.hosts["r2"].port == 9
    assert hosts["r1"] == {"groups": ["g"], "data": {"a": 1}}
    assert inventory.group_members("g") == ["r1"]


@pytest.mark.timeout(600)  # a few seconds alone; much more on a busy shared machine
def test_fifty_thousand_hosts_load(tmp_path: Path) -> None:
    count = 50_000
    lines = []
    for i in range(count):
        lines.append(
            f"r{i}:\n  hostname: 10.{i >> 16}.{(i >> 8) & 255}.{i & 255}\n"
            f"  groups: [site{i % 50}, {'core' if i % 10 == 0 else 'edge'}]\n"
            f"  data:\n    serial: SN{i:08d}\n    rack: {i % 40}\n"
        )
    write(tmp_path, "hosts.yaml", "".join(lines))
    groups = {f"site{s}": {"groups": [f"region{s % 5}"], "data": {"site": s}} for s in range(50)}
    groups.update({f"region{r}": {"data": {"region": r}} for r in range(5)})
    groups.update({"core": {"username": "admin"}, "edge": {"port": 2222}})
    write(tmp_path, "groups.yaml", groups)
    write(tmp_path, "defaults.yaml", {"port": 22, "username": "netops"})
    inventory = Inventory.from_files(
        tmp_path / "hosts.yaml", tmp_path / "groups.yaml", tmp_path / "defaults.yaml"
    )
    assert len(inventory) == count
    last = inventory.hosts[f"r{count - 1}"]
    assert last.port == 2222
    assert last.data["region"] == (count - 1) % 50 % 5
    assert str(last.source_of("data.region")) == f"group:region{(count - 1) % 50 % 5}"
    assert inventory.hosts["r0"].username == "admin"


def test_in_memory_groups_and_defaults_must_be_mappings() -> None:
    with pytest.raises(InventoryError, match="group 'g': must be a mapping of fields, got list"):
        Inventory.from_hosts({"r1": {}}, groups={"g": ["x"]})
    with pytest.raises(InventoryError, match="inventory: host 'r1': port must be a whole number"):
        Inventory.from_hosts({"r1": {"port": "x"}})


def test_a_mistyped_password_is_not_shown_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, "r1:\n  password: 987654321\n")
    assert "password must be a string, got int" in str(caught.value)
    assert "987654321" not in str(caught.value)
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, "r1:\n  connection_options:\n    ssh:\n      password: 55554444\n")
    assert "55554444" not in str(caught.value)
