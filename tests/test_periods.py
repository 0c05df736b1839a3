"""Report periods in the site's time zone, and the period each is compared with."""
from datetime import date, timedelta

import pytest

from app.analytics.periods import PeriodError, day_from_number, day_start_ms, parse_period


def at(day: str, tz="UTC", hour=12):
    return day_start_ms(tz, date.fromisoformat(day)) + hour * 3_600_000


@pytest.mark.parametrize("name, today, first, last, previous_first, previous_last", [
    ("today", "2026-11-18", "2026-11-18", "2026-11-18", "2026-11-17", "2026-11-17"),
    ("yesterday", "2026-11-18", "2026-11-17", "2026-11-17", "2026-11-16", "2026-11-16"),
    ("7d", "2026-11-18", "2026-11-12", "2026-11-18", "2026-11-05", "2026-11-11"),
    ("30d", "2026-11-18", "2026-10-20", "2026-11-18", "2026-09-20", "2026-10-19"),
    ("month", "2026-11-18", "2026-11-01", "2026-11-18", "2026-10-01", "2026-10-18"),
    ("month", "2026-03-31", "2026-03-01", "2026-03-31", "2026-02-01", "2026-02-28"),
    ("last_month", "2026-03-15", "2026-02-01", "2026-02-28", "2026-01-01", "2026-01-31"),
    ("12mo", "2026-03-01", "2025-04-01", "2026-03-01", "2024-05-01", "2025-03-31"),
])
def test_named_periods(name, today, first, last, previous_first, previous_last):
    period = parse_period(name, "UTC", at(today))
    previous = period.previous()
    assert (str(period.first), str(period.last)) == (first, last)
    assert (str(previous.first), str(previous.last)) == (previous_first, previous_last)


def test_today_is_the_sites_local_day():
    # 23:30 UTC on the 17th is already the 18th in Paris and still the 17th in New York.
    moment = at("2026-11-17", hour=23) + 30 * 60_000
    assert str(parse_period("today", "Europe/Paris", moment).first) == "2026-11-18"
    assert str(parse_period("today", "America/New_York", moment).first) == "2026-11-17"


def days_before(last: str, days: int) -> str:
    return str(date.fromisoformat(last) - timedelta(days=days - 1))


@pytest.mark.parametrize("days, interval", [(1, "hour"), (2, "day"), (62, "day"), (63, "week"), (190, "week"),
                                            (191, "month")])
def test_a_charts_interval_follows_the_periods_length(days, interval):
    period = parse_period("custom", "UTC", at("2026-11-18"), days_before("2026-11-18", days), "2026-11-18")
    assert period.days == days and period.chart_interval() == interval


def test_twelve_months_are_charted_by_month_and_one_filtered_day_by_day():
    assert parse_period("12mo", "UTC", at("2026-11-18")).chart_interval() == "month"
    assert parse_period("today", "UTC", at("2026-11-18")).chart_interval(hours=False) == "day"


def labelled(buckets):
    return [(str(day_from_number(start)), (end - start)) for start, end in buckets]


def test_weeks_start_on_monday_and_the_first_and_last_are_clipped():
    period = parse_period("custom", "UTC", at("2026-11-18"), "2026-09-17", "2026-11-18")  # Thursday to Wednesday
    weeks = labelled(period.day_buckets("week"))
    assert weeks[0] == ("2026-09-17", 4)  # Thursday to Sunday
    assert weeks[1] == ("2026-09-21", 7) and date.fromisoformat(weeks[1][0]).weekday() == 0
    assert weeks[-1] == ("2026-11-16", 3)  # Monday to Wednesday
    assert sum(n for _, n in weeks) == period.days


def test_months_start_on_the_first_and_the_first_and_last_are_clipped():
    period = parse_period("custom", "UTC", at("2026-11-18"), "2026-05-12", "2026-11-18")
    months = labelled(period.day_buckets("month"))
    assert months[0] == ("2026-05-12", 20) and months[1] == ("2026-06-01", 30)
    assert months[-1] == ("2026-11-01", 18) and len(months) == 7


def test_custom_range():
    period = parse_period("custom", "UTC", at("2026-11-18"), "2026-11-01", "2026-11-10")
    assert (period.days, str(period.previous().first), str(period.previous().last)) == (10, "2026-10-22", "2026-10-31")


@pytest.mark.parametrize("start, end, message", [
    (None, None, "needs from and to dates"),
    ("2026-11-10", "2026-11-01", "ends before it starts"),
    ("2026-11-10", "2026-11-30", "ends in the future"),
    ("2024-01-01", "2026-11-01", "at most 400 days"),
    ("yesterday", "2026-11-01", "needs from and to dates"),
])
def test_bad_custom_ranges(start, end, message):
    with pytest.raises(PeriodError, match=message):
        parse_period("custom", "UTC", at("2026-11-18"), start, end)


def test_unknown_period():
    with pytest.raises(PeriodError, match="unknown period"):
        parse_period("fortnight", "UTC", at("2026-11-18"))
