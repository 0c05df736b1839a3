"""Report periods: named ranges of days in the site's time zone, and the period before them.

Days are numbered as local calendar days since 1970-01-01 (`day_number`), which is how daily
rollups are keyed, so a report never splits a visitor's evening across two UTC dates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from app.i18n import gettext as _
from app.store.base import ROLLUP_RETENTION_DAYS, month_of_day, month_start_day

EPOCH = date(1970, 1, 1)
MAX_CUSTOM_DAYS = 400  # a custom range cannot reach past rollup retention

# A chart's interval follows its period's length, so a year is 12 points, not 365: hours for one
# day, days up to two months, weeks (from Monday) up to about six months, months beyond.
INTERVALS = ("hour", "day", "week", "month")
MAX_DAILY_DAYS = 62
MAX_WEEKLY_DAYS = 190

PERIODS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last_month": "Last month",
    "12mo": "Last 12 months",
    "custom": "Custom range",
}


class PeriodError(ValueError):
    """A period that cannot be reported on; the message says why."""


@dataclass(frozen=True)
class Period:
    name: str
    first: date  # local calendar days, both included
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def first_day(self) -> int:
        return day_number(self.first)

    @property
    def last_day(self) -> int:
        return day_number(self.last)

    def chart_interval(self, hours: bool = True) -> str:
        """How a chart of this period is cut: "hour" (one day, when `hours` are kept), "day",
        "week" or "month", by the period's length (MAX_DAILY_DAYS, MAX_WEEKLY_DAYS)."""
        if self.days == 1:
            return "hour" if hours else "day"
        if self.days <= MAX_DAILY_DAYS:
            return "day"
        return "week" if self.days <= MAX_WEEKLY_DAYS else "month"

    def day_buckets(self, interval: str) -> list[tuple[int, int]]:
        """The period's days cut into buckets of an interval ("day", "week" or "month"), as
        day-number ranges [start, end): weeks start on Monday, months on the 1st, and the first
        and last buckets are clipped to the period."""
        first, end = self.first_day, self.last_day + 1
        starts = [d for d in range(first, end) if d == first or _starts_bucket(d, interval)]
        return list(zip(starts, starts[1:] + [end]))

    def previous(self) -> "Period":
        """The period of the same length just before this one."""
        if self.name == "month":  # this month so far: the same days of last month
            first = (self.first - timedelta(days=1)).replace(day=1)
            return Period("previous", first, min(first + timedelta(days=self.days - 1),
                                                 self.first - timedelta(days=1)))
        if self.name == "last_month":
            last = self.first - timedelta(days=1)
            return Period("previous", last.replace(day=1), last)
        return Period("previous", self.first - timedelta(days=self.days), self.first - timedelta(days=1))


def _starts_bucket(day: int, interval: str) -> bool:
    when = day_from_number(day)
    return interval == "day" or (interval == "week" and when.weekday() == 0) or (
        interval == "month" and when.day == 1)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_from_number(number: int) -> date:
    return EPOCH + timedelta(days=number)


def month_number(day: date) -> int:
    """Local calendar months numbered from year 0: how month rollups are keyed."""
    return month_of_day(day_number(day))


def month_days(month: int) -> tuple[int, int]:
    """The day numbers [first, end) of a month number."""
    return month_start_day(month), month_start_day(month + 1)


def local_today(tz_name: str, now_ms: int) -> date:
    return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz_name)).date()


def local_day_number(tz_name: str, ts_ms: int) -> int:
    return day_number(local_today(tz_name, ts_ms))


def day_start_ms(tz_name: str, day: date) -> int:
    """The UTC instant (ms) at which a local calendar day begins."""
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz_name))
    return int(start.astimezone(timezone.utc).timestamp() * 1000)


def parse_period(name: str, tz_name: str, now_ms: int, start: str | None = None,
                 end: str | None = None) -> Period:
    """A Period from a name (see PERIODS) and, for "custom", ISO dates `start` and `end`."""
    today = local_today(tz_name, now_ms)
    if name == "today":
        return Period(name, today, today)
    if name == "yesterday":
        day = today - timedelta(days=1)
        return Period(name, day, day)
    if name == "7d":
        return Period(name, today - timedelta(days=6), today)
    if name == "30d":
        return Period(name, today - timedelta(days=29), today)
    if name == "month":
        return Period(name, today.replace(day=1), today)
    if name == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return Period(name, last.replace(day=1), last)
    if name == "12mo":  # this month and the eleven before it
        months = today.year * 12 + today.month - 1 - 11
        return Period(name, date(months // 12, months % 12 + 1, 1), today)
    if name == "custom":
        return _custom(start, end, today)
    raise PeriodError(_("unknown period %(name)s: use one of %(periods)s", name=repr(name), periods=", ".join(PERIODS)))


def _custom(start: str | None, end: str | None, today: date) -> Period:
    try:
        first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
    except ValueError as exc:
        raise PeriodError(_("a custom period needs from and to dates as YYYY-MM-DD")) from exc
    if first > last:
        raise PeriodError(_("the custom period ends before it starts"))
    if last > today:
        raise PeriodError(_("the custom period ends in the future"))
    if (last - first).days + 1 > MAX_CUSTOM_DAYS:
        raise PeriodError(_("a custom period is at most %(most)s days (statistics are kept 13 months)",
                            most=MAX_CUSTOM_DAYS))
    earliest = today - timedelta(days=ROLLUP_RETENTION_DAYS)
    if first < earliest:
        raise PeriodError(_("statistics are kept 13 months: a custom period starts on %(earliest)s or later",
                            earliest=earliest.isoformat()))
    return Period("custom", first, last)
