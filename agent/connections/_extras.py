"""A host's `connection_options.<plugin>.extras`, checked against the plugin's declaration."""

from __future__ import annotations

from typing import Any

from agent.connections._errors import ConnectionConfigError
from genja._host import Host
from genja._plugin_settings import build_extras


def host_extras(host: Host, plugin: str, extras_type: type) -> Any:
    """`host`'s extras for `plugin` as an `extras_type` instance. An unknown key or a bad value
    is a ConnectionConfigError (a `validation` failure of that host only) naming the host and
    the key, with a suggestion for a near miss; `extras_type.moved` (key -> hint) explains keys
    that went elsewhere."""
    options = host.connection_options.get(plugin)
    raw = dict(options.extras) if options is not None else {}
    moved: dict[str, str] = getattr(extras_type, "moved", {})
    for key in raw:
        if key in moved:
            raise ConnectionConfigError(
                f"host {host.id!r}: connection_options.{plugin}.extras.{key} is no longer read: "
                f"{moved[key]}",
                host_id=host.id,
            )
    try:
        return build_extras(extras_type, raw, f"connection_options.{plugin}.extras")
    except ValueError as error:
        raise ConnectionConfigError(f"host {host.id!r}: {error}", host_id=host.id) from None
