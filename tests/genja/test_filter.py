"""Host filtering: F objects, keys searched recursively, dotted paths, regex, groups, and the
Genja filter methods returning new selections."""

from __future__ import annotations

import pytest

from genja import ConfigurationError, F, Genja, HasKey, InGroup, Inventory, KeyMatches


@pytest.fixture
def genja() -> Genja:
    inventory = Inventory.from_hosts(
        {
            "r1": {
                "platform": "ios",
                "port": 22,
                "groups": ["site_a", "core"],
                "data": {"site": {"name": "ams", "role": "core"}, "tags": ["prod", "dc"]},
            },
            "r2": {
                "platform": "ios",
                "port": 2222,
                "groups": ["site_b"],
                "data": {"site": {"name": "fra", "role": "edge"}, "vendor": "cisco"},
            },
            "r3": {
                "platform": "eos",
                "groups": ["site_a"],
                "data": {"interfaces": [{"name": "eth0", "vlan": 10}], "tags": ["lab"]},
            },
            "r4": {"hostname": "10.0.0.4", "password": "secret-pw"},
        },
        groups={
            "site_a": {"groups": ["europe"]},
            "site_b": {"groups": ["europe"]},
            "europe": {"data": {"region": "eu"}},
            "core": {},
        },
    )
    return Genja(inventory)


def test_f_equality_nested_paths_and_data_shorthand(genja: Genja) -> None:
    assert genja.filter(F(platform="ios")).host_ids() == ["r1", "r2"]
    assert genja.filter(F(data__site__role="edge")).host_ids() == ["r2"]
    assert genja.filter(F(site__name="ams")).host_ids() == ["r1"]
    assert genja.filter(F(region="eu")).host_ids() == ["r1", "r2", "r3"]
    assert genja.filter(platform="ios", port=2222).host_ids() == ["r2"]


def test_f_composes_with_and_or_not(genja: Genja) -> None:
    selected = genja.filter(F(platform="ios") & ~F(data__site__role="edge"))
    assert selected.host_ids() == ["r1"]
    assert genja.filter(F(platform="eos") | F(port=2222)).host_ids() == ["r2", "r3"]
    # A missing path never matches, so its negation does.
    assert genja.filter(~F(data__site__role="core")).host_ids() == ["r2", "r3", "r4"]
    assert genja.filter(F(platform="ios") & (lambda host: host.port == 22)).host_ids() == ["r1"]


@pytest.mark.parametrize(
    ("lookup", "expected"),
    [
        ({"port__ge": 1000}, ["r2"]),
        ({"port__lt": 1000}, ["r1"]),
        ({"port__ne": 22}, ["r2"]),  # hosts without a port do not match either
        ({"tags__contains": "prod"}, ["r1"]),
        ({"tags__any": ["lab", "dc"]}, ["r1", "r3"]),
        ({"tags__all": ["prod", "dc"]}, ["r1"]),
        ({"platform__in": ["eos", "junos"]}, ["r3"]),
        ({"hostname__regex": r"^10\."}, ["r4"]),
        ({"groups__contains": "europe"}, []),
        ({"all_groups__contains": "europe"}, ["r1", "r2", "r3"]),
        ({"interfaces__0__vlan": 10}, ["r3"]),
        ({"name": "r2"}, ["r2"]),
    ],
)
def test_f_operators(genja: Genja, lookup: dict[str, object], expected: list[str]) -> None:
    assert genja.filter(F(**lookup)).host_ids() == expected


def test_f_rejects_passwords_and_bad_regex() -> None:
    with pytest.raises(ConfigurationError, match="cannot filter on 'password'"):
        F(password="x")
    with pytest.raises(ConfigurationError, match="invalid regular expression"):
        F(hostname__regex="[")
    with pytest.raises(TypeError):
        F()


def test_filter_by_key_searches_fields_and_data_recursively(genja: Genja) -> None:
    assert genja.filter_by_key("vendor").host_ids() == ["r2"]
    assert genja.filter_by_key("role").host_ids() == ["r1", "r2"]  # nested under site
    assert genja.filter_by_key("vlan").host_ids() == ["r3"]  # inside a list of mappings
    assert genja.filter_by_key("port").host_ids() == ["r1", "r2"]
    assert genja.filter_by_key("region").host_ids() == ["r1", "r2", "r3"]  # inherited data
    assert genja.filter_by_key("nothing").host_ids() == []


def test_filter_by_key_with_a_dotted_path_targets_one_place(genja: Genja) -> None:
    assert genja.filter_by_key("data.site.role").host_ids() == ["r1", "r2"]
    assert genja.filter_by_key("data.role").host_ids() == []  # not at that path
    assert genja.filter_by_key("site.name").host_ids() == ["r1", "r2"]


def test_filter_by_key_value_matches_a_regex(genja: Genja) -> None:
    assert genja.filter_by_key_value("platform", "^io").host_ids() == ["r1", "r2"]
    assert genja.filter_by_key_value("name", "fra|eth").host_ids() == ["r2", "r3"]
    assert genja.filter_by_key_value("data.site.name", "^ams$").host_ids() == ["r1"]
    assert genja.filter_by_key_value("tags", "^lab$").host_ids() == ["r3"]
    assert genja.filter_by_key_value("port", "^22$").host_ids() == ["r1"]
    assert genja.filter_by_key_value("vlan", "10").host_ids() == ["r3"]


def test_a_bad_regex_is_a_clear_error(genja: Genja) -> None:
    with pytest.raises(ConfigurationError) as caught:
        genja.filter_by_key_value("platform", "(ios")
    assert "filter_by_key_value('platform', '(ios')" in str(caught.value)
    assert "invalid regular expression" in str(caught.value)


def test_group_membership_direct_and_inherited(genja: Genja) -> None:
    assert genja.filter_by_group("europe").host_ids() == ["r1", "r2", "r3"]
    assert genja.filter_by_group("europe", inherited=False).host_ids() == []
    assert genja.filter_by_group("site_a", inherited=False).host_ids() == ["r1", "r3"]
    assert genja.filter(InGroup("core")).host_ids() == ["r1"]


def test_filters_return_new_objects_and_leave_the_original_alone(genja: Genja) -> None:
    before = genja.host_ids()
    ios = genja.filter(platform="ios")
    core = ios.filter_by_group("core")
    assert genja.host_ids() == before == ["r1", "r2", "r3", "r4"]
    assert ios.host_ids() == ["r1", "r2"]
    assert core.host_ids() == ["r1"]
    assert core is not ios
    assert core.inventory is genja.inventory
    assert core._holder is genja._holder  # the agents are shared, not restarted
    assert list(core.hosts) == ["r1"]


def test_filter_objects_work_on_hosts_directly(genja: Genja) -> None:
    host = genja.hosts["r2"]
    assert HasKey("vendor")(host)
    assert KeyMatches("vendor", __import__("re").compile("^cis"))(host)
    assert not HasKey("password")(genja.hosts["r4"])
    assert "secret-pw" not in repr(F(platform="ios"))


def test_plain_name_searches_data_and_id_matches_the_host_id(genja: Genja) -> None:
    assert genja.filter_by_key("name").host_ids() == ["r1", "r2", "r3"]
    assert genja.filter_by_key_value("id", "^r[34]$").host_ids() == ["r3", "r4"]


def test_nornir_style_filter_func(genja: Genja) -> None:
    selected = genja.filter(filter_func=lambda host: host.port == 2222, platform="ios")
    assert selected.host_ids() == ["r2"]
