"""Cron schedules in a time zone: which run is due now, and when the next one is.

Pure: the caller passes `now`. Cron times are computed by cronsim, which
treats daylight-saving changes as Debian's cron does: a job at a fixed time
that falls in the spring-forward gap runs right after the gap (never lost),
one in the repeated autumn hour runs once (the first time), and interval jobs
(`*/15 * * * *`) follow real time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

UTC = dt.UTC
RUN_NAME_MAX = 253  # an object name (a DNS subdomain)


class InvalidSchedule(ValueError):
    reason = "InvalidSchedule"


class InvalidTimeZone(ValueError):
    reason = "InvalidTimeZone"


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: ZoneInfo

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first cron time strictly after `moment`, in UTC."""
        local = moment.astimezone(self.zone).replace(microsecond=0)
        return next(CronSim(self.expression, local)).astimezone(UTC)

    def latest_until(self, moment: dt.datetime) -> dt.datetime | None:
        """The last cron time at or before `moment`, in UTC (None if there is none)."""
        local = moment.astimezone(self.zone).replace(microsecond=0) + dt.timedelta(seconds=1)
        try:
            return next(CronSim(self.expression, local, reverse=True)).astimezone(UTC)
        except StopIteration:
            return None


def parse_schedule(expression: str, time_zone: str) -> Schedule:
    """A Schedule, or InvalidSchedule / InvalidTimeZone with a message a person can act on."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimeZone(
            f"timeZone {time_zone!r} is not an IANA time zone (like UTC or Europe/London)"
        ) from None
    if len(expression.split()) != 5:
        raise InvalidSchedule(
            f"schedule {expression!r} must have 5 fields: minute hour day-of-month month "
            "day-of-week"
        )
    try:
        CronSim(expression, dt.datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as e:
        raise InvalidSchedule(f"schedule {expression!r} is not valid cron: {e}") from None
    return Schedule(expression, zone)


@dataclass(frozen=True)
class Decision:
    create: dt.datetime | None  # the scheduled time of the run to create now
    skipped: dt.datetime | None  # a missed time past startingDeadlineSeconds
    next_time: dt.datetime


def decide(
    schedule: Schedule,
    now: dt.datetime,
    last_schedule_time: dt.datetime | None,
    created: dt.datetime,
    starting_deadline_seconds: int | None,
) -> Decision:
    """What the schedule asks for at `now`.

    Only the latest missed time is considered, so downtime leads to at most
    one catch-up run; it is skipped when older than startingDeadlineSeconds.
    """
    latest = schedule.latest_until(now)
    since = last_schedule_time or created
    next_time = schedule.next_after(now)
    if latest is None or latest <= since:
        return Decision(None, None, next_time)
    late = (now - latest).total_seconds()
    if starting_deadline_seconds is not None and late > starting_deadline_seconds:
        return Decision(None, latest, next_time)
    return Decision(latest, None, next_time)


def run_name(pipeline: str, scheduled: dt.datetime) -> str:
    """The deterministic name of a scheduled run: a restart never creates it twice. A
    Pipeline name too long for the suffix is cut and hashed, to stay a valid name."""
    suffix = f"-{int(scheduled.timestamp()) // 60}"
    if len(pipeline) + len(suffix) > RUN_NAME_MAX:
        digest = hashlib.sha256(pipeline.encode()).hexdigest()[:10]
        pipeline = f"{pipeline[: RUN_NAME_MAX - len(suffix) - 11].rstrip('-.')}-{digest}"
    return pipeline + suffix
