"""Load the example inventory, show where each value came from, and filter it.

Runs no task and starts no agents: `python examples/inventory_tour.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import genja
from genja import F

SETTINGS = Path(__file__).parent / "inventory" / "settings.yaml"


def main() -> None:
    # The switch's password is an environment reference in hosts.yaml.
    os.environ.setdefault("GENJA_EXAMPLE_SWITCH_PW", "example-only")
    runner = genja.Genja.from_settings_file(SETTINGS)
    for host in runner.hosts.values():
        print(f"{host.id}: {host}")
        for key in ("port", "username", "platform", "data.site", "data.region"):
            source = host.source_of(key)
            print(f"  {key:<12} from {source.describe() if source else '-'}")
    print("in europe (inherited):", runner.filter_by_group("europe").host_ids())
    print("ios but not edge:", runner.filter(F(platform="ios") & ~F(site__role="edge")).host_ids())
    print("has a rack:", runner.filter_by_key("rack").host_ids())
    print("site name matches ^a:", runner.filter_by_key_value("data.site.name", "^a").host_ids())


if __name__ == "__main__":
    main()
