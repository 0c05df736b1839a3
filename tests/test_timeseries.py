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


WEEK = ("2026-11-09", "2026-11-15")  # Monday to Sunday: charted by day


def test_the_chart_draws_the_metrics_of_visits_when_asked(store, site, visit):
    visit("A", "2026-11-09T10:00:00", "/", "/pricing", "/signup")  # 3 views, 2 minutes
    visit("B", "2026-11-09T11:00:00", "/pricing")  # a bounce
    visit("C", "2026-11-10T10:00:00", "/", "/docs")  # 2 views, 1 minute
    period = custom(site, *WEEK)
    expected = {"visits": [2, 1, 0], "views_per_visit": [2.0, 2.0, None], "bounce_rate": [50.0, 0.0, None],
                "visit_duration_s": [60.0, 60.0, None]}  # an empty day has no rate: a gap, not a zero
    for metric, first_days in expected.items():
        chart = stats.timeseries(store, site, period, metric=metric, now_ms=T0)
        assert chart[metric][:3] == first_days, metric
        assert chart[f"{metric}_unavailable"] is None and len(chart[f"previous_{metric}"]) == 7
    assert "bounce_rate" not in stats.timeseries(store, site, period, now_ms=T0)  # only when asked
    filtered = stats.timeseries(store, site, period, stats.Filters({"browser": "Chrome"}), metric="bounce_rate")
    assert filtered["bounce_rate"][:2] == [50.0, 0.0]  # from the session cube


def test_one_day_draws_the_visits_of_each_hour(store, site, visit):
    visit("A", "2026-11-09T10:00:00", "/", "/pricing")
    visit("B", "2026-11-09T10:30:00", "/pricing")
    chart = stats.timeseries(store, site, custom(site, "2026-11-09", "2026-11-09"), metric="bounce_rate")
    assert chart["interval"] == "hour" and chart["bounce_rate"][10] == 50.0 and chart["bounce_rate"][9] is None


def test_a_page_filter_charts_its_visits_and_says_why_not_its_bounces(store, site, visit):
    visit("A", "2026-11-09T10:00:00", "/", "/pricing", "/pricing")
    visit("B", "2026-11-09T11:00:00", "/pricing")
    visit("C", "2026-11-09T12:00:00", "/docs")
    period, page = custom(site, *WEEK), stats.Filters({"page": "/pricing"})
    assert stats.timeseries(store, site, period, page, metric="visits")["visits"][0] == 2
    assert stats.timeseries(store, site, period, page, metric="views_per_visit")["views_per_visit"][0] == 1.5
    chart = stats.timeseries(store, site, period, page, metric="bounce_rate")
    assert chart["bounce_rate"] is None and chart["previous_bounce_rate"] is None
    assert chart["bounce_rate_unavailable"].startswith("Not computed for a single page")
