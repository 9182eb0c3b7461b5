"""Secrets: what counts as one, how every output masks it, and how secret files are read.

A value is a secret when it is

- a `password` (of a host or of its connection options);
- in `connection_options.*.extras`, under a key whose name says so (`is_secret_key`: secret,
  passphrase, private_key, token, api_key, ..., or any name ending in `key`);
- a value that came from an `${env:...}` reference.

`mask` is the one masking function: `repr` of hosts, `genja inventory`, results and error
messages built on agents all go through it, so they hide the same things.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import stat
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from genja._errors import ConfigurationError

MASK = "********"
_D = TypeVar("_D")

# Words that make a key name a secret's, wherever they stand in it.
_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pass", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
        "credential", "credentials", "pkey", "privkey", "privatekey", "apikey",
    }
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+")
# Shorter strings are not searched for in text: masking every "ab" would garble output and
# hide nothing worth hiding.
_MIN_SEARCHED = 3


def is_secret_key(name: str) -> bool:
    """Does a key with this name hold a secret? `enable_secret`, `auth-token`, `passphrase`,
    `private_key`, `ssh_key` and `key` do; `key_file` (a path), `host_key_policy` and
    `look_for_keys` do not."""
    words = _WORD.findall(name.lower())
    return bool(words) and (words[-1] == "key" or not _SECRET_WORDS.isdisjoint(words))


def mask(value: Any, secrets: Collection[str] = (), *, by_key: bool = True) -> Any:
    """`value` with its secrets hidden, for showing to people or sending back as a result.

    Every occurrence of one of `secrets` inside a string becomes `MASK`. With `by_key` (for
    inventory data shown to people; results use only `secrets`), so does the value of every
    mapping key that `is_secret_key` (None and "" stay, so "no secret set" still shows).
    Mappings, lists and tuples are copied; other values are returned as they are.
    """
    return _mask(value, searched(secrets), by_key)


def _mask(value: Any, secrets: list[str], by_key: bool) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {
            key: MASK
            if by_key and isinstance(key, str) and is_secret_key(key) and item not in (None, "")
            else _mask(item, secrets, by_key)
            for key, item in value.items()
        }
    if value.__class__ in (list, tuple):  # not subclasses: a namedtuple is built otherwise
        return value.__class__(_mask(item, secrets, by_key) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a TaskMessage
        changes = {
            f.name: _mask(getattr(value, f.name), secrets, by_key)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


def searched(secrets: Iterable[str]) -> list[str]:
    """The secrets `mask` looks for in text, longest first (so a secret that contains another
    is masked whole)."""
    return sorted((s for s in secrets if s and len(s) >= _MIN_SEARCHED), key=len, reverse=True)


def mask_result(result: _D, secrets: tuple[str, ...]) -> _D:
    """`result` (a task result) with `secrets` masked in every field, or `result` itself when
    none of them shows in it: the common case, which costs one walk over its strings."""
    needles = _searched(secrets)
    if not needles or not _shows(result, needles):
        return result
    return mask_fields(result, needles)


@functools.lru_cache(maxsize=4096)
def _searched(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """`searched` for one host's secrets, whose tuple is made once per host."""
    return tuple(searched(secrets))


def _shows(value: Any, needles: tuple[str, ...]) -> bool:
    """Does any string inside `value` (a result, and the JSON values in it) hold a needle?
    Written for speed: it runs for every node of every host that has a secret."""
    cls = value.__class__
    if cls is str:
        return any(needle in value for needle in needles)
    if value is None or cls is int or cls is float or cls is bool:
        return False
    if isinstance(value, Mapping):
        value = value.values()
    elif cls is not list and cls is not tuple:
        value = [getattr(value, name) for name in _field_names(cls)]
    for item in value:
        kind = item.__class__
        if kind is str:
            for needle in needles:
                if needle in item:
                    return True
        elif item is None or kind is int or kind is float or kind is bool or not item:
            continue
        elif _shows(item, needles):
            return True
    return False


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass type (a result), or none."""
    return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else ()


def mask_fields(obj: _D, secrets: Collection[str]) -> _D:
    """A copy of the dataclass `obj` (a task result) with `secrets` masked in every field."""
    changes = {
        f.name: mask(getattr(obj, f.name), secrets, by_key=False)
        for f in dataclasses.fields(obj)  # type: ignore[arg-type]
        if f.init
    }
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def secret_strings(value: Any) -> list[str]:
    """Every string inside `value` (a secret may be a nested structure, e.g. a key's parts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in secret_strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in secret_strings(item)]
    return []


# ---------------------------------------------------------------- secret files


def read_file(path: str | Path, what: str) -> bytes:
    """The bytes of a file anyone may read (a certificate, a CA); `what` names the setting or
    option, for the error."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigurationError(f"{what} {path}: cannot read: {error.strerror}") from None


def read_secret_file(path: str | Path, what: str) -> bytes:
    """The bytes of a token or private key file. Like OpenSSH with private keys, a file that
    group or others may access is refused: its content may already have leaked, and using it
    would hide that. `what` names the setting or option, for the error."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & 0o077:
                raise ConfigurationError(
                    f"{what} {path}: permissions {stat.S_IMODE(mode):04o} are too open: a token "
                    f"or key file must not be accessible by group or others (chmod 600 {path})"
                )
            return handle.read()
    except OSError as error:
        raise ConfigurationError(f"{what} {path}: cannot read: {error.strerror}") from None


def read_token(path: str | Path, what: str) -> str:
    """A token from its file (surrounding whitespace dropped); empty files are refused."""
    try:
        token = read_secret_file(path, what).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what} {path}: a token must be UTF-8 text") from None
    if not token:
        raise ConfigurationError(f"{what} {path} is empty")
    return token
