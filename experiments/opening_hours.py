"""Opening hours: when kiosks are expected to be used, written as one line of text.

``mon-fri 09:00-17:00 Europe/Amsterdam``: days (default ``mon-fri``), a daily window and an
IANA time zone (default ``Europe/Amsterdam``). Days are ``mon`` … ``sun``, ranges
(``mon-fri``; ``sat-mon`` wraps round the week), lists (``mon,wed,fri``) or ``daily``. A window
that closes before it opens runs overnight (``fri-sat 20:00-02:00`` is Friday 20:00 to
Saturday 02:00 and Saturday 20:00 to Sunday 02:00: the days are the days it opens);
``00:00-00:00`` is the whole day. The trial file names locations but not their hours, so one
window serves every location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Day names as written, Monday first (Monday is 0, as in :meth:`datetime.date.weekday`).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The default: weekdays, office hours, the Netherlands.
DEFAULT = "mon-fri 09:00-17:00 Europe/Amsterdam"

_LINE = re.compile(
    r"^(?:(?P<days>[a-z,\-]+)\s+)?(?P<opens>\d{1,2}:\d{2})\s*-\s*(?P<closes>\d{1,2}:\d{2})"
    r"(?:\s+(?P<zone>\S+))?$"
)


class OpeningHoursError(ValueError):
    """Opening hours that cannot be read; the message says how to write them."""


@dataclass(frozen=True)
class OpeningHours:
    """A daily window (``opens``–``closes``, overnight when it closes before it opens) on some
    weekdays (Monday is 0), in a time zone."""

    opens: time = time(9, 0)
    closes: time = time(17, 0)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    timezone: str = "Europe/Amsterdam"

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """Read ``mon-fri 09:00-17:00 Europe/Amsterdam`` (see the module docstring)."""
        match = _LINE.match(" ".join(text.lower().split()) if text else "")
        if match is None:
            raise OpeningHoursError(_how(text))
        zone = _original_case(text, match.group("zone")) if match.group("zone") else cls.timezone
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise OpeningHoursError(f"unknown time zone {zone!r}; {_how(text)}") from None
        try:
            opens = time.fromisoformat(match.group("opens").zfill(5))
            closes = time.fromisoformat(match.group("closes").zfill(5))
        except ValueError:
            raise OpeningHoursError(_how(text)) from None
        return cls(opens, closes, _weekdays(match.group("days") or "mon-fri", text), zone)

    def __str__(self) -> str:
        days = ",".join(DAYS[day] for day in self.weekdays)
        return f"{days} {self.opens:%H:%M}-{self.closes:%H:%M} {self.timezone}"

    def window(self, day: datetime) -> tuple[datetime, datetime] | None:
        """The window that opens on ``day``'s date (in the zone), in UTC, or None on a closed
        day (UTC: a difference across a change of clocks is the real time that passed)."""
        if day.weekday() not in self.weekdays:
            return None
        zone = ZoneInfo(self.timezone)
        start = datetime.combine(day.date(), self.opens, zone)
        end_day = day.date() + timedelta(days=1) if self.closes <= self.opens else day.date()
        end = datetime.combine(end_day, self.closes, zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def open_time(self, start: datetime, end: datetime, *, limit_days: int = 92) -> timedelta:
        """How much of ``start``–``end`` falls in opening hours (looked at for at most the last
        ``limit_days`` days)."""
        zone = ZoneInfo(self.timezone)
        start = max(start, end - timedelta(days=limit_days))
        total = timedelta()
        # From the day before: an overnight window that opened then may reach into ``start``.
        day = datetime.combine(start.astimezone(zone).date() - timedelta(days=1), time(), zone)
        last = end.astimezone(zone).date()
        while day.date() <= last:
            window = self.window(day)
            if window is not None:
                overlap = min(end, window[1]) - max(start, window[0])
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total


def _how(text: str) -> str:
    return (
        f"cannot read opening hours {text!r}: write days, HH:MM-HH:MM and a time zone, e.g. "
        f"{DEFAULT!r}, 'daily 20:00-02:00 UTC' or 'mon,wed,fri 10:00-16:00'"
    )


def _original_case(text: str, lowered: str) -> str:
    """The time zone as the user wrote it (zone names are case-sensitive)."""
    for word in text.split():
        if word.lower() == lowered:
            return word
    return lowered


def _weekdays(spec: str, text: str) -> tuple[int, ...]:
    if spec == "daily":
        return tuple(range(7))
    chosen: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise OpeningHoursError(_how(text))
        start = DAYS.index(first)
        stop = DAYS.index(last) if last else start
        chosen.update((start + offset) % 7 for offset in range((stop - start) % 7 + 1))
    return tuple(sorted(chosen))
