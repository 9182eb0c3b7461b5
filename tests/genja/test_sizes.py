"""Sizes as settings write them and as messages show them."""

from __future__ import annotations

import pytest

from genja._sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (1048576, 1048576),
        ("800", 800),
        ("800B", 800),
        ("16MiB", 16 * 1024**2),
        ("16 MiB", 16 * 1024**2),
        ("16mib", 16 * 1024**2),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2 KB", 2000),
        ("3MB", 3_000_000),
        (" 1KiB ", 1024),
    ],
)
def test_sizes_parse_to_bytes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "16 MiBs", "-1KiB", "1e6", "1,000", 1.5, True, None])
def test_what_is_not_a_size_is_refused_saying_what_is(text: object) -> None:
    with pytest.raises(ValueError, match=r"must be a size: .*e\.g\. \"16MiB\"\), got "):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KiB"),
        (16 * 1024**2, "16 MiB"),
        (17 * 1024**2 + 5, "17.0 MiB"),
        (int(2.25 * 1024**3), "2.2 GiB"),
    ],
)
def test_sizes_show_in_binary_units(size: int, shown: str) -> None:
    assert format_size(size) == shown
