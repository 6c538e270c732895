"""Durations and sizes as users write them, held as exact integers.

    >>> parse_duration("31.25ms")
    31250000
    >>> parse_duration(5)               # a bare number is milliseconds
    5000000
    >>> format_duration(31_250_000)
    '31.25ms'
    >>> parse_size("64MiB")
    67108864

Durations are kept as integer nanoseconds so that quantum arithmetic (a third of
15.625 ms) never drifts; sizes as integer bytes. Both parsers accept exactly
what docs/scenarios.md lists and raise UnitError, whose message is one line
that does not name the key (the caller adds where the value came from).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
               "s": 1_000_000_000}
BYTES_PER_UNIT = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
MAX_DURATION_NS = 2**63 - 1   # fits an int64 (about 292 years)
MAX_SIZE_BYTES = 2**64 - 1    # a SIZE_T on x64

# Decimal units people write out of habit; rejected with a hint, because
# Windows tools mean 1024 by "KB" and SI means 1000.
_AMBIGUOUS_SIZE_UNITS = {"K": "KiB", "KB": "KiB", "k": "KiB", "kB": "KiB", "kb": "KiB",
                         "M": "MiB", "MB": "MiB", "mb": "MiB", "G": "GiB", "GB": "GiB",
                         "gb": "GiB", "T": "TiB", "TB": "TiB", "kib": "KiB", "mib": "MiB",
                         "gib": "GiB", "b": "B", "bytes": "B", "byte": "B"}

# A plain decimal: no exponent, no sign (a sign is caught separately for a better message).
_QUANTITY = re.compile(r"(?P<sign>[-+]?)\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>.*)",
                       re.DOTALL)
_MAX_DIGITS = 40  # far beyond any valid value; keeps int() clear of Python's digit limit


class UnitError(ValueError):
    """A malformed duration or size; the message is one line for a user."""


def describe_type(value: object) -> str:
    """How an error message names the TOML type of `value` ("an integer", "a string ('x')")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _quantity(text: str, what: str) -> tuple[Fraction, str]:
    m = _QUANTITY.fullmatch(text.strip())
    if m is None:
        raise UnitError(f"{text!r} is not a {what} (write a number and a unit, e.g. "
                        f"{'10ms' if what == 'duration' else '64MiB'})")
    if m["sign"] == "-":
        raise UnitError(f"{what} {text!r} is negative")
    if m["sign"] == "+":
        raise UnitError(f"{what} {text!r} has a sign; write it without '+'")
    if len(m["num"]) > _MAX_DIGITS:
        raise UnitError(f"{what} {text!r} is too large")
    return Fraction(m["num"]), m["unit"].strip()


def parse_duration(value: object) -> int:
    """A duration as exact integer nanoseconds.

    Accepts a string with a unit (``"31.25ms"``, ``"5s"``, ``"250us"``,
    ``"0.5 ms"``, ``"100ns"``; ``µs``/``μs`` also mean microseconds), or a bare
    number meaning milliseconds: a TOML integer or float (``5``, ``2.5``) or a
    string without a unit (``"5"``). Rejects negatives, NaN and infinities,
    exponents in strings, and values that are not a whole number of
    nanoseconds (``"0.5ns"``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UnitError(f"expected a duration such as '10ms', got {describe_type(value)}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"duration {value} is negative")
        amount, unit = Fraction(value), "ms"
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise UnitError(f"duration {value} is not a finite number")
        if value < 0:
            raise UnitError(f"duration {value} is negative")
        # repr is the shortest spelling that reads back as this float: what the user wrote.
        amount, unit = Fraction(repr(value)), "ms"
    else:
        amount, unit = _quantity(value, "duration")
        unit = unit or "ms"
    if unit not in NS_PER_UNIT:
        raise UnitError(f"unknown duration unit {unit!r} in {value!r} (use ns, us, ms or s)")
    ns = amount * NS_PER_UNIT[unit]
    if ns.denominator != 1:
        raise UnitError(f"duration {value!r} is not a whole number of nanoseconds")
    if ns > MAX_DURATION_NS:
        raise UnitError(f"duration {value!r} is too large")
    return int(ns)


def _exact(amount: int, per: int, unit: str) -> str:
    whole, rest = divmod(amount, per)
    if not rest:
        return f"{whole}{unit}"
    digits = len(str(per)) - 1
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}{unit}"


def format_duration(ns: int, unit: str | None = None) -> str:
    """`ns` spelled exactly, so that ``parse_duration(format_duration(ns)) == ns``.

    With no `unit`, the largest of s/ms/us/ns not above the value
    (``31.25ms``, ``2s``, ``1.5us``); zero is ``0ms``.
    """
    if ns < 0:
        raise UnitError(f"duration {ns} is negative")
    if unit is None:
        unit = next((u for u in ("s", "ms", "us") if ns >= NS_PER_UNIT[u]), "ns" if ns else "ms")
    if unit not in NS_PER_UNIT:
        raise UnitError(f"unknown duration unit {unit!r} (use ns, us, ms or s)")
    return _exact(ns, NS_PER_UNIT[unit], unit)


def parse_size(value: object) -> int:
    """A size as integer bytes.

    Accepts a TOML integer (bytes) or a string: a number with one of the binary
    units ``B``, ``KiB``, ``MiB``, ``GiB``, ``TiB`` (``"64MiB"``, ``"4 KiB"``,
    ``"1.5GiB"`` when that is a whole number of bytes) or digits alone (bytes).
    ``KB``/``MB``/``GB`` and lower-case spellings are rejected with a hint,
    since they are read as 1000 by some and 1024 by others.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UnitError(f"expected a size such as '64MiB' or a number of bytes, "
                        f"got {describe_type(value)}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"size {value} is negative")
        amount, unit = Fraction(value), "B"
    else:
        amount, unit = _quantity(value, "size")
        unit = unit or "B"
    if unit not in BYTES_PER_UNIT:
        hint = _AMBIGUOUS_SIZE_UNITS.get(unit)
        if hint:
            raise UnitError(f"ambiguous size unit {unit!r} in {value!r}; write {hint!r} "
                            f"(KOI sizes are binary: B, KiB, MiB, GiB, TiB)")
        raise UnitError(f"unknown size unit {unit!r} in {value!r} (use B, KiB, MiB, GiB or TiB)")
    size = amount * BYTES_PER_UNIT[unit]
    if size.denominator != 1:
        raise UnitError(f"size {value!r} is not a whole number of bytes")
    if size > MAX_SIZE_BYTES:
        raise UnitError(f"size {value!r} is too large")
    return int(size)


def format_size(size: int) -> str:
    """`size` bytes in the largest binary unit that divides it (``64MiB``, ``1536B``)."""
    if size < 0:
        raise UnitError(f"size {size} is negative")
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        per = BYTES_PER_UNIT[unit]
        if size and size % per == 0:
            return f"{size // per}{unit}"
    return f"{size}B"
