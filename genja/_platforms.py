"""Platform names: what an inventory may say, and what netmiko and ntc-templates call it.

Inventories say `ios`, `eos`, `junos` (Nornir and NAPALM habits) as often as netmiko's
`cisco_ios`; one table maps the short names, and any other name passes through unchanged.
"""

from __future__ import annotations

_NETMIKO = {
    "ios": "cisco_ios",
    "iosxe": "cisco_xe",
    "ios-xe": "cisco_xe",
    "eos": "arista_eos",
    "nxos": "cisco_nxos",
    "nxos_ssh": "cisco_nxos",
    "junos": "juniper_junos",
    "juniper": "juniper_junos",
    "iosxr": "cisco_xr",
    "ios-xr": "cisco_xr",
    # scrapli's names
    "cisco_iosxe": "cisco_ios",
    "cisco_iosxr": "cisco_xr",
}


def netmiko_platform(platform: str | None) -> str | None:
    """The netmiko `device_type` (also ntc-templates' platform) for an inventory platform."""
    if not platform:
        return None
    lowered = platform.lower()
    return _NETMIKO.get(lowered, lowered)
