"""Durations as Braid's workflow files spell them ("500ms", "1s", "1m 30s") and as protobuf.

Accepted inputs everywhere a duration is expected:

- a humantime string: one or more ``<number><unit>`` parts, optionally separated by spaces,
  e.g. ``"500ms"``, ``"30s"``, ``"1m 30s"``, ``"2h"``, ``"1day"``; a fractional number is
  allowed (``"0.5s"``, proto3 JSON style);
- a :class:`datetime.timedelta`;
- an ``int`` or ``float`` number of seconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from google.protobuf import duration_pb2

DurationLike = str | timedelta | int | float

_NANOS = {
    "ns": 1,
    "nsec": 1,
    "us": 1_000,
    "usec": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "msec": 1_000_000,
    "millis": 1_000_000,
    "s": 1_000_000_000,
    "sec": 1_000_000_000,
    "secs": 1_000_000_000,
    "second": 1_000_000_000,
    "seconds": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "min": 60 * 1_000_000_000,
    "mins": 60 * 1_000_000_000,
    "minute": 60 * 1_000_000_000,
    "minutes": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "hr": 3600 * 1_000_000_000,
    "hrs": 3600 * 1_000_000_000,
    "hour": 3600 * 1_000_000_000,
    "hours": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "day": 86400 * 1_000_000_000,
    "days": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
    "week": 7 * 86400 * 1_000_000_000,
    "weeks": 7 * 86400 * 1_000_000_000,
}

_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-zµ]+)")


def parse_nanos(value: object) -> int:
    """The duration `value` in whole nanoseconds (see the module doc for accepted forms)."""
    if isinstance(value, bool):
        raise TypeError(f"not a duration: {value!r}")
    if isinstance(value, timedelta):
        return (value.days * 86400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration must not be negative (got {value!r})")
        return round(Decimal(str(value)) * 1_000_000_000)
    if not isinstance(value, str):
        raise TypeError(f"not a duration: {value!r} (use a string like '30s', a timedelta or seconds)")
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    total = 0
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration {value!r}: expected e.g. '500ms', '30s', '1m 30s'")
        number, unit = m.group(1), m.group(2)
        scale = _NANOS.get(unit)
        if scale is None:
            raise ValueError(f"invalid duration {value!r}: unknown unit {unit!r}")
        try:
            total += int(Decimal(number) * scale)
        except InvalidOperation as e:  # pragma: no cover - the regex admits only numbers
            raise ValueError(f"invalid duration {value!r}") from e
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return total


def to_proto(value: object) -> duration_pb2.Duration:
    """A ``google.protobuf.Duration`` from any accepted duration form."""
    nanos = parse_nanos(value)
    return duration_pb2.Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def to_timedelta(d: duration_pb2.Duration) -> timedelta:
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1_000)


def to_seconds(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def format_nanos(nanos: int) -> str:
    """A humantime-style string, e.g. ``90_000_000_000`` -> ``"1m 30s"``."""
    if nanos == 0:
        return "0s"
    parts = []
    for unit, scale in (
        ("d", 86400 * 1_000_000_000),
        ("h", 3600 * 1_000_000_000),
        ("m", 60 * 1_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ):
        if nanos >= scale:
            parts.append(f"{nanos // scale}{unit}")
            nanos %= scale
    return " ".join(parts)


def format_proto(d: duration_pb2.Duration) -> str:
    return format_nanos(d.seconds * 1_000_000_000 + d.nanos)
