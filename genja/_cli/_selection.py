"""`--filter key=regex`: choosing hosts by a field or a value in their data.

Keys are dotted: `platform`, `groups`, `data.site.name`; a first part that is not a host field
is looked up in `data` (`site.name` is `data.site.name`). The regex is searched (`re.search`),
so `^dc` means "starts with dc". A list matches when any item does. Several filters must all
match. Passwords cannot be filtered on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genja._errors import ConfigurationError
from genja._host import Host

_FIELDS = ("id", "name", "hostname", "port", "username", "platform", "groups")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class HostFilter:
    text: str
    key: tuple[str, ...]
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> HostFilter:
        key, sep, regex = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigurationError(
                f"--filter {text!r}: expected KEY=REGEX, like data.site.name=^dc"
            )
        parts = tuple(key.split("."))
        if parts[0] == "password" or any(not part for part in parts):
            raise ConfigurationError(f"--filter {text!r}: {key!r} is not a key you can filter on")
        try:
            pattern = re.compile(regex)
        except re.error as error:
            raise ConfigurationError(f"--filter {text!r}: invalid regex: {error}") from None
        return cls(text, parts, pattern)

    def matches(self, host: Host) -> bool:
        return any(self.pattern.search(text) for text in _texts(_lookup(host, self.key)))


def _lookup(host: Host, key: tuple[str, ...]) -> Any:
    first, rest = key[0], key[1:]
    if first in _FIELDS:
        value: Any = getattr(host, first)
    elif first == "data":
        value = host.data
    else:
        value, rest = host.data, key
    for part in rest:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _texts(value: Any) -> list[str]:
    if value is _MISSING or value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple | set):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, Mapping):
        return [json.dumps(value, sort_keys=True, default=str)]
    return [json.dumps(value) if isinstance(value, bool) else str(value)]


def select(hosts: Mapping[str, Host], filters: Sequence[str]) -> dict[str, Host]:
    """The hosts every filter matches, in inventory order."""
    parsed = [HostFilter.parse(text) for text in filters]
    return {
        host_id: host for host_id, host in hosts.items() if all(f.matches(host) for f in parsed)
    }
