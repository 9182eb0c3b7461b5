"""`--filter KEY=REGEX`: the command line's spelling of `Genja.filter_by_key_value`.

Keys are what `filter_by_key_value` takes: a dotted path (`data.site.name`, `platform`) targets
one value; a plain key is searched through the host's fields and its data (`tier`). The regex is
searched, not anchored. Several filters must all match. Passwords cannot be filtered on.
"""

from __future__ import annotations

from collections.abc import Sequence

from genja._errors import ConfigurationError
from genja._genja import Genja


def parse_filter(text: str) -> tuple[str, str]:
    """(key, regex) from `KEY=REGEX`; ConfigurationError quoting the flag otherwise."""
    key, sep, regex = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigurationError(f"--filter {text!r}: expected KEY=REGEX, like data.site.name=^dc")
    parts = key.split(".")
    if "password" in parts or any(not part for part in parts):
        raise ConfigurationError(f"--filter {text!r}: {key!r} is not a key you can filter on")
    return key, regex


def apply_filters(genja: Genja, filters: Sequence[str]) -> Genja:
    for text in filters:
        key, regex = parse_filter(text)
        try:
            genja = genja.filter_by_key_value(key, regex)
        except ConfigurationError as error:
            raise ConfigurationError(f"--filter {text!r}: {error}") from None
    return genja
