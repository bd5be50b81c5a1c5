"""Time as the operator reads it: one injected clock for wall time (statuses, deadlines)
and for intervals (delays, rate limits), so that the controllers run on fake time in tests,
as the CronJob controller's `now func()` does; and the API's RFC 3339 timestamps."""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    """The system's clocks. Tests pass a subclass whose time they move."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = Clock()


def parse_time(value: str | None) -> dt.datetime | None:
    """An API timestamp (RFC 3339, `Z` or an offset) as an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def format_time(value: dt.datetime) -> str:
    """An aware datetime as the API writes it."""
    return value.isoformat().replace("+00:00", "Z")
