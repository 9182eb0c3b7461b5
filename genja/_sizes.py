"""Sizes in bytes, as settings write them ("16MiB", "512 KB", 1048576) and as messages show them
("16 MiB", "17.2 MiB")."""

from __future__ import annotations

import re

# Binary units (KiB = 1024) and decimal ones (KB = 1000), as `ls`, systemd and Kubernetes read
# them; units are case-insensitive ("16mib"), a bare number is bytes.
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
_SHOWN = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def parse_size(value: object) -> int:
    """Bytes from a whole number of bytes or a string like "16MiB", "1.5 GiB", "512KB".
    Raises ValueError saying what it expected."""
    if value.__class__ is int:
        return value
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(
            f"must be a size: a number of bytes, or a number with a unit (KiB, MiB, GiB, KB, "
            f'MB, GB; e.g. "16MiB"), got {value!r}'
        )
    return int(float(match.group(1)) * unit)


def format_size(size: int) -> str:
    """`size` bytes for a reader: "800 bytes", "16 MiB", "17.2 MiB"."""
    for name, unit in _SHOWN:
        if size >= unit:
            amount = size / unit
            return f"{amount:.0f} {name}" if size % unit == 0 else f"{amount:.1f} {name}"
    return f"{size} bytes"
