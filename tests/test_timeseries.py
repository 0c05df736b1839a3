"""Charts: the interval follows the period's length (hour, day, week, month), buckets are
calendar weeks and months clipped to the period, visitors of a bucket are unique over its days
where sketches allow it, and the bucket holding "now" is marked. Data goes through the real
pipeline, at the times given."""
import pytest

from app.analytics import stats
from app.analytics.periods import parse_period
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from tests.conftest import CHROME_UA, T0
from tests.history import utc


@pytest.fixture
def visit(store, site, settle):
    """visit(user, "2026-11-09T10:00:00", *paths): one visit's page views, a minute apart, settled."""
    def send(user, when, *paths):
        start = utc(when)
        events = [{"event_id": f"{user}-{when}-{i}", "type": "page_view", "timestamp": start + i * 60_000,
                   "user_id": user, "session_id": f"{user}-{when}", "url": f"https://example.com{path}",
                   "referrer": ""} for i, path in enumerate(paths or ["/"])]
        assert record_batch(store, site, events, Client("198.51.100.23", CHROME_UA),
                            events[-1]["timestamp"] + 1_000).accepted == len(events)
        settle()
    return send


def custom(site, first, last):
    return parse_period("custom", site.timezone, T0, first, last)


NINE_WEEKS = ("2026-09-17", "2026-11-18")  # 63 days, Thursday to Wednesday: charted by week


def test_a_visitor_on_two_days_of_a_week_counts_once_in_its_bucket(store, site, visit):
    visit("A", "2026-11-09T10:00:00")  # Monday
    visit("A", "2026-11-10T10:00:00")  # Tuesday, the same week
    visit("B", "2026-11-11T10:00:00")
    chart = stats.timeseries(store, site, custom(site, *NINE_WEEKS), now_ms=T0)
    assert chart["interval"] == "week" and len(chart["labels"]) == 10
    assert chart["labels"][0] == "2026-09-17" and chart["labels"][-2:] == ["2026-11-09", "2026-11-16"]
    assert chart["visitors"][-2:] == [2, 0] and chart["pageviews"][-2:] == [3, 0]
    assert chart["visitors_summed_daily"] is False


def test_filtered_weekly_visitors_are_summed_daily_figures_and_say_so(store, site, visit):
    visit("A", "2026-11-09T10:00:00")
    visit("A", "2026-11-10T10:00:00")
    chart = stats.timeseries(store, site, custom(site, *NINE_WEEKS), stats.Filters({"browser": "Chrome"}),
                             now_ms=T0)
    assert chart["visitors"][-2] == 2 and chart["visitors_summed_daily"] is True
    page = stats.timeseries(store, site, custom(site, *NINE_WEEKS), stats.Filters({"page": "/"}), now_ms=T0)
    assert page["visitors"][-2] == 1 and page["visitors_summed_daily"] is False  # the page's sketches


def test_twelve_months_are_monthly_with_unique_visitors_per_month(store, site, visit):
    visit("A", "2026-10-05T10:00:00")
    visit("A", "2026-11-02T10:00:00", "/", "/pricing")
    visit("A", "2026-11-10T10:00:00")
    chart = stats.timeseries(store, site, parse_period("12mo", site.timezone, T0), now_ms=T0)
    assert chart["interval"] == "month" and len(chart["labels"]) == 12
    assert (chart["labels"][0], chart["labels"][-1]) == ("2025-12-01", "2026-11-01")
    assert chart["visitors"][-2:] == [1, 1] and chart["pageviews"][-2:] == [1, 3]
    assert chart["current"] == 11


def test_the_previous_period_is_cut_the_same_way_and_aligned_bucket_by_bucket(store, site, visit):
    # The 63 days before NINE_WEEKS: 2026-07-16 (Thursday) to 2026-09-16, also ten week buckets.
    visit("A", "2026-07-17T10:00:00")  # its first, clipped bucket
    visit("B", "2026-07-20T10:00:00", "/", "/a")  # its first Monday
    chart = stats.timeseries(store, site, custom(site, *NINE_WEEKS), now_ms=T0)
    assert chart["previous_pageviews"][:3] == [1, 2, 0] and chart["previous_visitors"][:3] == [1, 1, 0]
    assert len(chart["previous_pageviews"]) == len(chart["labels"])


@pytest.mark.parametrize("name, interval, current", [
    ("today", "hour", 11),  # T0 is 11:06 UTC
    ("month", "day", 17),  # the 18th
    ("12mo", "month", 11),
    ("yesterday", "hour", None),
    ("last_month", "day", None),
])
def test_the_current_bucket_is_marked_until_the_period_is_over(store, site, name, interval, current):
    chart = stats.timeseries(store, site, parse_period(name, site.timezone, T0), now_ms=T0)
    assert (chart["interval"], chart["current"]) == (interval, current)


def test_a_filtered_day_is_one_daily_point(store, site, visit):
    visit("A", "2026-11-18T10:00:00")
    chart = stats.timeseries(store, site, parse_period("today", site.timezone, T0),
                             stats.Filters({"browser": "Chrome"}), now_ms=T0)
    assert (chart["interval"], chart["labels"], chart["visitors"], chart["current"]) == (
        "day", ["2026-11-18"], [1], 0)
