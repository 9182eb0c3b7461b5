"""Command output to rows, with the ntc-templates TextFSM collection.

ntc-templates and textfsm are imported on first use (they come with `genja[netmiko]` and
`genja[scrapli]`), never with `genja`.
"""

from __future__ import annotations

from typing import Any

from genja._platforms import netmiko_platform
from genja.task._errors import ParseError


def parse_output(output: str, *, command: str, platform: str | None) -> list[dict[str, Any]]:
    """The rows ntc-templates' template for (platform, command) makes of `output`, keys lower
    case. ParseError (`unsupported`) when there is no template, or the output does not fit."""
    name = netmiko_platform(platform)
    if name is None:
        raise ParseError(
            f"cannot parse {command!r}: the host has no platform (set `platform` in the inventory)"
        )
    try:
        from ntc_templates.parse import ParsingException
        from ntc_templates.parse import parse_output as ntc_parse
        from textfsm import TextFSMError
    except ImportError:
        raise ParseError(
            "parsing needs ntc-templates: pip install 'genja[netmiko]' (or 'genja[scrapli]')"
        ) from None
    try:
        rows: list[dict[str, Any]] = ntc_parse(platform=name, command=command, data=output)
    except ParsingException as error:
        if "No template found" in str(error) or "no template" in str(error).lower():
            raise ParseError(
                f"no ntc-templates template parses {command!r} on platform {name!r}"
            ) from None
        raise ParseError(f"{command!r} on {name!r}: {error}") from None
    except TextFSMError as error:
        raise ParseError(
            f"the output of {command!r} does not fit the ntc-templates template for {name!r}: "
            f"{error}"
        ) from None
    return rows
