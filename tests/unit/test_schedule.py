"""Cron and time-zone math on a fake clock."""

import datetime as dt

import pytest

from jobline.core.schedule import (
    InvalidSchedule,
    InvalidTimeZone,
    decide,
    parse_schedule,
    run_name,
)

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fire_times(expr: str, zone: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    schedule = parse_schedule(expr, zone)
    times, t = [], start
    for _ in range(count):
        t = schedule.next_after(t)
        times.append(t)
    return times


def test_every_minute() -> None:
    assert fire_times("* * * * *", "UTC", utc(2026, 1, 1, 0, 0, 30), 3) == [
        utc(2026, 1, 1, 0, 1),
        utc(2026, 1, 1, 0, 2),
        utc(2026, 1, 1, 0, 3),
    ]


def test_time_zone_shifts_the_hour() -> None:
    [first] = fire_times("0 2 * * *", "America/New_York", utc(2026, 1, 10), 1)
    assert first == utc(2026, 1, 10, 7)  # 02:00 EST


@pytest.mark.parametrize(
    ("zone", "day", "expected_utc"),
    [
        # 01:30 does not exist on 29 March 2026 in London (01:00 GMT -> 02:00 BST):
        # the run comes right after the gap, 02:00 BST, and is not lost.
        ("Europe/London", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1, 0)),
        # 02:30 does not exist on 8 March 2026 in New York (02:00 EST -> 03:00 EDT).
        ("America/New_York", utc(2026, 3, 7, 12), utc(2026, 3, 8, 7, 0)),
    ],
)
def test_spring_forward_gap_runs_after_the_gap(
    zone: str, day: dt.datetime, expected_utc: dt.datetime
) -> None:
    expr = "30 1 * * *" if zone == "Europe/London" else "30 2 * * *"
    first, second = fire_times(expr, zone, day, 2)
    assert first == expected_utc
    assert second - first > dt.timedelta(hours=20)  # and then the next day, as usual


@pytest.mark.parametrize(
    ("zone", "expr", "day"),
    [
        ("Europe/London", "30 1 * * *", utc(2026, 10, 24, 12)),  # 01:30 happens twice on 25 Oct
        ("America/New_York", "30 1 * * *", utc(2026, 10, 31, 12)),  # twice on 1 Nov
    ],
)
def test_autumn_overlap_runs_once(zone: str, expr: str, day: dt.datetime) -> None:
    first, second = fire_times(expr, zone, day, 2)
    assert second - first > dt.timedelta(hours=23)  # not again an hour later


def test_intervals_follow_real_time_through_the_overlap() -> None:
    times = fire_times("0 * * * *", "Europe/London", utc(2026, 10, 24, 23, 30), 4)
    assert [t - times[0] for t in times] == [dt.timedelta(hours=h) for h in range(4)]


def test_29_february() -> None:
    assert fire_times("0 0 29 2 *", "UTC", utc(2026, 1, 1), 2) == [
        utc(2028, 2, 29),
        utc(2032, 2, 29),
    ]


@pytest.mark.parametrize(
    ("expr", "zone", "error", "named"),
    [
        ("not cron", "UTC", InvalidSchedule, "5 fields"),
        ("61 * * * *", "UTC", InvalidSchedule, "not valid cron"),
        ("0 0 31 2 *", "UTC", InvalidSchedule, "not valid cron"),
        ("* * * * * *", "UTC", InvalidSchedule, "5 fields"),
        ("* * * * *", "Mars/Olympus", InvalidTimeZone, "Mars/Olympus"),
    ],
)
def test_invalid_schedules(expr: str, zone: str, error: type[Exception], named: str) -> None:
    with pytest.raises(error, match=named):
        parse_schedule(expr, zone)


HOURLY = parse_schedule("0 * * * *", "UTC")
CREATED = utc(2026, 1, 1, 0, 30)


def test_nothing_due_before_the_first_time() -> None:
    decision = decide(HOURLY, utc(2026, 1, 1, 0, 59), None, CREATED, None)
    assert (decision.create, decision.skipped) == (None, None)
    assert decision.next_time == utc(2026, 1, 1, 1)


def test_due_time_is_created_once() -> None:
    now = utc(2026, 1, 1, 1, 0, 2)
    assert decide(HOURLY, now, None, CREATED, None).create == utc(2026, 1, 1, 1)
    assert decide(HOURLY, now, utc(2026, 1, 1, 1), CREATED, None).create is None


def test_downtime_gives_at_most_one_catch_up_run() -> None:
    now = utc(2026, 1, 1, 5, 10)  # down from 00:59 to 05:10: four times missed
    decision = decide(HOURLY, now, utc(2026, 1, 1, 0), CREATED, 900)
    assert decision.create == utc(2026, 1, 1, 5)  # only the latest, 10 minutes late


def test_missed_time_past_the_deadline_is_skipped() -> None:
    decision = decide(HOURLY, utc(2026, 1, 1, 5, 10), utc(2026, 1, 1, 0), CREATED, 300)
    assert (decision.create, decision.skipped) == (None, utc(2026, 1, 1, 5))


def test_run_names_are_minutes_since_the_epoch() -> None:
    assert run_name("nightly", utc(2026, 1, 1, 2)) == "nightly-29453880"


def test_a_scheduled_runs_name_stays_a_valid_name_for_long_pipeline_names() -> None:
    when = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    assert run_name("sales", when) == "sales-29538840"
    long_a, long_b = "a" * 250, "a" * 249 + "b"
    name_a, name_b = run_name(long_a, when), run_name(long_b, when)
    assert len(name_a) <= 253 and len(name_b) <= 253
    assert name_a.endswith("-29538840") and name_a != name_b  # still one name per Pipeline
    # The cut name keeps a hash of the whole Pipeline name, so that a restart names the
    # same run: the very name, not merely one of the same shape.
    assert name_a == "a" * 233 + "-3f3e35e0a7-29538840"
