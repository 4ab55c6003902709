"""Opening hours as one line of text: days, a window (overnight when it closes before it
opens) and a time zone; the time in opening hours between two moments, against hand counts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from experiments.opening_hours import DEFAULT, OpeningHours, OpeningHoursError


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 4 January 2027 (day 0 is that Monday), UTC."""
    return datetime(2027, 1, 4, hour, minute, tzinfo=UTC) + timedelta(days=day)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DEFAULT, OpeningHours(time(9), time(17), (0, 1, 2, 3, 4), "Europe/Amsterdam")),
        ("09:00-17:00", OpeningHours()),  # the days and zone by default
        ("daily 20:00-02:00 UTC", OpeningHours(time(20), time(2), tuple(range(7)), "UTC")),
        ("Mon,Wed,Fri 8:30 - 12:00 UTC", OpeningHours(time(8, 30), time(12), (0, 2, 4), "UTC")),
        ("sat-mon 10:00-16:00 America/New_York", OpeningHours(
            time(10), time(16), (0, 5, 6), "America/New_York")),
    ],
)  # fmt: skip
def test_opening_hours_are_read_from_one_line(text: str, expected: OpeningHours) -> None:
    assert OpeningHours.parse(text) == expected
    assert OpeningHours.parse(str(expected)) == expected  # written back, read again


@pytest.mark.parametrize(
    "text",
    ["", "nine to five", "mon-fry 09:00-17:00", "mon-fri 25:00-17:00", "mon-fri 9-17",
     "mon-fri 09:00-17:00 Mars/Olympus", "mon-fri 09:00-17:00 UTC extra"],
)  # fmt: skip
def test_unreadable_opening_hours_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(OpeningHoursError, match="HH:MM-HH:MM"):
        OpeningHours.parse(text)


def test_office_hours_count_only_weekday_windows() -> None:
    hours = OpeningHours.parse("mon-fri 09:00-17:00 UTC")
    assert hours.open_time(at(4, 16), at(7, 10)) == timedelta(hours=2)  # Fri 16:00 to Mon 10:00
    assert hours.open_time(at(0, 0), at(7, 0)) == timedelta(hours=40)  # a whole week
    assert hours.open_time(at(0, 10), at(0, 10)) == timedelta()


def test_overnight_hours_run_into_the_next_day() -> None:
    """Open Friday and Saturday from 20:00 to 02:00: Fri 20-24, Sat 00-02 (Friday's window),
    Sat 20-24, Sun 00-02. Before, a window closing before it opened counted nothing."""
    hours = OpeningHours.parse("fri-sat 20:00-02:00 UTC")
    assert hours.open_time(at(0, 0), at(7, 0)) == timedelta(hours=12)
    assert hours.open_time(at(5, 1), at(5, 3)) == timedelta(hours=1)  # Sat 01:00-03:00
    assert hours.open_time(at(5, 3), at(5, 19)) == timedelta()  # Saturday daytime: closed
    assert hours.open_time(at(4, 23), at(5, 1)) == timedelta(hours=2)  # across midnight
    whole_day = OpeningHours.parse("daily 00:00-00:00 UTC")
    assert whole_day.open_time(at(0, 0), at(2, 0)) == timedelta(days=2)


def test_a_change_of_clocks_counts_the_real_time() -> None:
    """The night the Netherlands put the clocks forward (28 March 2027, 02:00 -> 03:00): a
    window 00:00-06:00 local holds 5 real hours."""
    hours = OpeningHours.parse("sun 00:00-06:00 Europe/Amsterdam")
    start = datetime(2027, 3, 27, 12, tzinfo=UTC)
    assert hours.open_time(start, start + timedelta(days=1)) == timedelta(hours=5)
