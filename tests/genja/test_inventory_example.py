"""The example inventory in examples/inventory loads and resolves as its README says."""

from __future__ import annotations

from pathlib import Path

import pytest

import genja

SETTINGS = Path(__file__).parents[2] / "examples" / "inventory" / "settings.yaml"


def test_example_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENJA_EXAMPLE_SWITCH_PW", "pw-from-env")
    # Closed at the end: from_settings_file starts the agents (and their work folder) at once.
    with genja.Genja.from_settings_file(SETTINGS) as runner:
        r1 = runner.hosts["r1"]
        assert (r1.port, r1.username, r1.platform) == (2222, "netops", "ios")
        assert r1.data == {
            "rack": 4,
            "site": {"name": "ams", "role": "core"},
            "region": "eu",
            "ntp": "10.0.0.123",
        }
        assert r1.all_groups == ("ams", "europe", "core")
        assert r1.source_of("port").describe() == "group 'europe'"  # type: ignore[union-attr]
        assert runner.hosts["sw1"].connection_params("ssh").password == "pw-from-env"
        assert runner.filter_by_group("europe").host_ids() == ["r1", "r2", "sw1"]
