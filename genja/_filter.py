"""Host filters: small predicate objects that compose with `&`, `|` and `~`.

`F` follows Nornir's spelling: keyword lookups whose `__`-separated parts walk from the host
into its values (`F(platform="ios")`, `F(data__site__role="edge")`), with an optional operator
as the last part (`F(port__ge=1024)`, `F(groups__contains="core")`). A lookup whose path does
not exist never matches, so `~F(...)` matches it.

Paths start at a host field (`id`, `name`, `hostname`, `port`, `username`, `platform`,
`groups`, `all_groups`, `data`, `connection_options`); any other first part is a key of `data`,
so `F(site="x")` and `F(data__site="x")` are the same. `password` is not filterable.

Filters are pure: they never change a host, and `Genja.filter(...)` returns a new selection.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from genja._errors import ConfigurationError
from genja._host import Host

_HOST_ATTRIBUTES = frozenset(
    (
        "id",
        "name",
        "hostname",
        "port",
        "username",
        "platform",
        "groups",
        "all_groups",
        "data",
        "connection_options",
    )
)
# Fields searched by a plain (undotted) key besides data; `groups` lists are searched too.
# Not `name`: every host has one, and it is a common key inside data (interfaces, sites).
_SEARCHED_FIELDS = ("id", "hostname", "port", "username", "platform", "groups")
_MISSING = object()


class HostFilter:
    """A predicate over hosts. Combine with `&` (and), `|` (or) and `~` (not)."""

    def __call__(self, host: Host) -> bool:
        raise NotImplementedError

    def __and__(self, other: HostFilter | Callable[[Host], bool]) -> HostFilter:
        return _And(self, as_filter(other))

    def __or__(self, other: HostFilter | Callable[[Host], bool]) -> HostFilter:
        return _Or(self, as_filter(other))

    def __invert__(self) -> HostFilter:
        return _Not(self)


def as_filter(value: HostFilter | Callable[[Host], bool]) -> HostFilter:
    """A HostFilter from a filter or any `host -> bool` callable."""
    if isinstance(value, HostFilter):
        return value
    if callable(value):
        return _Function(value)
    raise TypeError(f"a filter must be a HostFilter or a callable taking a Host, got {value!r}")


def all_of(filters: list[HostFilter]) -> HostFilter:
    if not filters:
        return _Everything()
    combined = filters[0]
    for item in filters[1:]:
        combined = _And(combined, item)
    return combined


@dataclass(frozen=True, slots=True)
class _Everything(HostFilter):
    def __call__(self, host: Host) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class _And(HostFilter):
    left: HostFilter
    right: HostFilter

    def __call__(self, host: Host) -> bool:
        return self.left(host) and self.right(host)


@dataclass(frozen=True, slots=True)
class _Or(HostFilter):
    left: HostFilter
    right: HostFilter

    def __call__(self, host: Host) -> bool:
        return self.left(host) or self.right(host)


@dataclass(frozen=True, slots=True)
class _Not(HostFilter):
    inner: HostFilter

    def __call__(self, host: Host) -> bool:
        return not self.inner(host)


@dataclass(frozen=True, slots=True)
class _Function(HostFilter):
    function: Callable[[Host], bool]

    def __call__(self, host: Host) -> bool:
        return bool(self.function(host))


# ---------------------------------------------------------------- F


def _contains(value: Any, wanted: Any) -> bool:
    try:
        return wanted in value
    except TypeError:
        return False


def _in(value: Any, choices: Any) -> bool:
    try:
        return value in choices
    except TypeError:
        return False


def _any(value: Any, wanted: Any) -> bool:
    try:
        return any(item in value for item in wanted)
    except TypeError:
        return False


def _all(value: Any, wanted: Any) -> bool:
    try:
        return all(item in value for item in wanted)
    except TypeError:
        return False


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(value: Any, other: Any) -> bool:
        try:
            return compare(value, other)
        except TypeError:
            return False

    return check


def _regex(value: Any, pattern: re.Pattern[str]) -> bool:
    return any(pattern.search(text) for text in _texts(value))


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "contains": _contains,
    "in": _in,
    "any": _any,
    "all": _all,
    "gt": _ordered(operator.gt),
    "ge": _ordered(operator.ge),
    "lt": _ordered(operator.lt),
    "le": _ordered(operator.le),
    "regex": _regex,
}


@dataclass(frozen=True, slots=True)
class _Lookup:
    path: tuple[str, ...]
    op: str
    expected: Any

    def __call__(self, host: Host) -> bool:
        value = _walk(host, self.path)
        if value is _MISSING:
            return False
        return _OPERATORS[self.op](value, self.expected)


class F(HostFilter):
    """Keyword lookups, all of which must match: `F(platform="ios", data__site__role="edge")`.

    Operators (the last `__` part): `eq` (default), `ne`, `contains`, `in`, `any` (the value
    holds any of the given items), `all` (holds all of them), `gt`, `ge`, `lt`, `le`, and
    `regex` (a regular expression searched in the value's text; for a list, in any item).
    """

    __slots__ = ("_lookups",)

    def __init__(self, **lookups: Any) -> None:
        if not lookups:
            raise TypeError("F() needs at least one lookup, e.g. F(platform='ios')")
        built = []
        for key, given in lookups.items():
            expected = given
            parts = key.split("__")
            op = "eq"
            if len(parts) > 1 and parts[-1] in _OPERATORS:
                op = parts.pop()
            if not all(parts) or parts[0] == "password":
                raise ConfigurationError(f"F(): cannot filter on {key!r}")
            if op == "regex":
                expected = compile_regex(expected, f"F({key}=...)")
            built.append(_Lookup(tuple(parts), op, expected))
        self._lookups = tuple(built)

    def __call__(self, host: Host) -> bool:
        return all(lookup(host) for lookup in self._lookups)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{'__'.join(lookup.path)}{'' if lookup.op == 'eq' else '__' + lookup.op}="
            f"{lookup.expected!r}"
            for lookup in self._lookups
        )
        return f"F({inner})"


# ---------------------------------------------------------------- keys, values, groups


def compile_regex(pattern: Any, where: str) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise ConfigurationError(f"{where}: the pattern must be a string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ConfigurationError(
            f"{where}: invalid regular expression {pattern!r}: {error}"
        ) from None


@dataclass(frozen=True, slots=True)
class HasKey(HostFilter):
    """Hosts that have `key`: a dotted path (`data.site.name`) names one place; a plain key is
    looked for among the host's fields and anywhere in `data`, however deep."""

    key: str

    def __call__(self, host: Host) -> bool:
        return next(_values_for(host, self.key), _MISSING) is not _MISSING


@dataclass(frozen=True, slots=True)
class KeyMatches(HostFilter):
    """Hosts where a value found as `HasKey` finds it matches the regular expression
    (searched, not anchored: use `^...$` for a whole-value match; lists match by item)."""

    key: str
    pattern: re.Pattern[str]

    def __call__(self, host: Host) -> bool:
        return any(_regex(value, self.pattern) for value in _values_for(host, self.key))


@dataclass(frozen=True, slots=True)
class InGroup(HostFilter):
    """Members of `group`: listed by the host, or (with `inherited`) through group parents."""

    group: str
    inherited: bool = True

    def __call__(self, host: Host) -> bool:
        return host.in_group(self.group, inherited=self.inherited)


def _walk(host: Host, path: tuple[str, ...]) -> Any:
    first = path[0]
    if first in _HOST_ATTRIBUTES:
        value: Any = getattr(host, first)
        if value is None:  # an unset field: missing, not a value
            return _MISSING
        rest = path[1:]
    else:
        value = host.data
        rest = path
    for part in rest:
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif part in getattr(value, "__dataclass_fields__", ()) and part != "password":
            value = getattr(value, part)
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _values_for(host: Host, key: str) -> Iterator[Any]:
    """Every value at `key`: one for a dotted path, all occurrences for a plain key."""
    if "." in key:
        value = _walk(host, tuple(key.split(".")))
        if value is not _MISSING and value is not None:
            yield value
        return
    if key in _SEARCHED_FIELDS:
        value = getattr(host, key)
        if value is not None and value != ():
            yield value
    yield from _search(host.data, key)


def _search(value: Any, key: str) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if name == key:
                yield item
            if isinstance(item, Mapping | list | tuple):
                yield from _search(item, key)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mapping | list | tuple):
                yield from _search(item, key)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, list | tuple | Mapping):
                yield from _texts(item)
