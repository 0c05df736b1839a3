"""Reports over a known history (tests/history.py), ingested through the real pipeline:
exact figures, each worked out by hand from that history."""
import sqlite3

import pytest

from app.analytics import stats
from app.analytics.periods import parse_period
from tests.conftest import BACKENDS, T0
from tests.history import paris, utc  # noqa: F401  (paris is a fixture)

def period(site, name, **kw):
    return parse_period(name, site.timezone, T0, **kw)


def metric_values(summary):
    return {name: m["value"] for name, m in summary["metrics"].items()}


def rows(table, *columns):
    return {r["value"]: tuple(r[c] for c in columns) for r in table["rows"]}


def test_top_metrics_over_a_week(store, paris):
    summary = stats.summary(store, paris, period(paris, "7d"))
    assert metric_values(summary) == {
        "visitors": 3,  # A, B, C: not 5, the sum of daily uniques (2 + 2 + 1)
        "visits": 5, "pageviews": 8, "views_per_visit": 1.6,
        "bounce_rate": 40.0,  # v2 and v3
        "visit_duration_s": 54.0,  # (120 + 0 + 30 + 100 + 20) / 5
        "conversion_rate": 20.0,  # v5 converted: 1 of 5 visits
        "conversions": 1, "conversion_value": 29.0,
    }
    assert summary["visitors_approximate"] is False
    assert summary["metrics"]["visits"]["previous"] == 0 and summary["metrics"]["visits"]["change"] is None


def test_days_follow_the_sites_time_zone(store, paris):
    # v3 happened on Monday 23:30 UTC, which is Tuesday in Paris.
    yesterday = metric_values(stats.summary(store, paris, period(paris, "yesterday")))
    assert (yesterday["visitors"], yesterday["visits"], yesterday["pageviews"]) == (2, 2, 3)
    today = metric_values(stats.summary(store, paris, period(paris, "today")))
    assert (today["visitors"], today["visits"], today["pageviews"], today["bounce_rate"]) == (1, 1, 2, 0.0)


def test_comparison_with_the_previous_period(store, paris):
    summary = stats.summary(store, paris, period(paris, "today"))
    visits = summary["metrics"]["visits"]
    assert (visits["value"], visits["previous"], visits["change"]) == (1, 2, -50.0)
    pageviews = summary["metrics"]["pageviews"]
    assert (pageviews["value"], pageviews["previous"], pageviews["change"]) == (2, 3, -33.3)


def test_daily_and_hourly_charts(store, paris):
    week = stats.timeseries(store, paris, period(paris, "7d"), now_ms=T0)
    assert week["interval"] == "day"
    assert week["labels"][-3:] == ["2026-11-16", "2026-11-17", "2026-11-18"]
    assert week["visitors"] == [0, 0, 0, 0, 2, 2, 1] and week["pageviews"] == [0, 0, 0, 0, 3, 3, 2]
    assert week["previous_visitors"] == [0] * 7
    assert (week["current"], week["visitors_summed_daily"], week["visitors_unavailable"]) == (6, False, None)
    today = stats.timeseries(store, paris, period(paris, "today"), now_ms=T0)
    assert today["interval"] == "hour" and len(today["labels"]) == 24
    assert today["labels"][9] == "2026-11-18T09:00"
    assert today["visitors"][9] == 1 and today["pageviews"][9] == 2 and sum(today["pageviews"]) == 2
    assert today["previous_pageviews"][0] == 1 and today["previous_pageviews"][15] == 2
    assert today["current"] == 12  # T0 is 11:06 UTC, 12:06 in Paris


def test_pages_breakdown(store, paris):
    table = stats.breakdown(store, paris, period(paris, "7d"), "page", limit=10)
    assert rows(table, "visitors", "pageviews", "time_on_page_s", "entries", "exits", "exit_rate") == {
        "/": (1, 2, 45.0, 2, 1, 50.0),
        "/pricing": (2, 2, 35.0, 1, 1, 50.0),
        "/blog": (1, 1, 0.0, 1, 1, 100.0),
        "/docs": (1, 1, 40.0, 1, 0, 0.0),
        "/docs/install": (1, 1, 60.0, 0, 1, 100.0),
        "/signup": (1, 1, 10.0, 0, 1, 100.0),
    }
    assert [r["value"] for r in table["rows"]][:2] == ["/", "/pricing"]


def test_entry_and_exit_pages(store, paris):
    week = period(paris, "7d")
    assert rows(stats.breakdown(store, paris, week, "entry"), "visitors", "visits", "pageviews", "bounce_rate") == {
        "/": (1, 2, 3, 50.0), "/blog": (1, 1, 1, 100.0), "/docs": (1, 1, 2, 0.0), "/pricing": (1, 1, 2, 0.0)}
    assert rows(stats.breakdown(store, paris, week, "exit"), "exits") == {
        "/pricing": (1,), "/blog": (1,), "/": (1,), "/docs/install": (1,), "/signup": (1,)}


def test_sources_channels_and_campaigns(store, paris):
    week = period(paris, "7d")
    assert rows(stats.breakdown(store, paris, week, "source"),
                "visitors", "visits", "pageviews", "bounce_rate", "visit_duration_s") == {
        "Direct": (2, 2, 3, 50.0, 65.0), "Google": (1, 1, 2, 0.0, 120.0),
        "Twitter": (1, 1, 1, 100.0, 0.0), "newsletter": (1, 1, 2, 0.0, 20.0)}
    assert rows(stats.breakdown(store, paris, week, "channel"), "visits") == {
        "direct": (2,), "search": (1,), "social": (1,), "email": (1,)}  # utm_medium=email
    assert rows(stats.breakdown(store, paris, week, "utm_source"), "visits") == {"": (4,), "newsletter": (1,)}
    assert rows(stats.breakdown(store, paris, week, "utm_medium"), "visits") == {"": (4,), "email": (1,)}
    assert rows(stats.breakdown(store, paris, week, "utm_campaign"), "visitors", "visits") == {
        "": (3, 4), "autumn": (1, 1)}


def test_browsers_systems_devices_countries(store, paris):
    week = period(paris, "7d")
    assert rows(stats.breakdown(store, paris, week, "browser"), "visitors", "visits", "pageviews") == {
        "Chrome": (1, 2, 3), "Mobile Safari": (1, 2, 3), "Chrome Mobile": (1, 1, 2)}
    assert rows(stats.breakdown(store, paris, week, "os"), "visitors", "visits") == {
        "Windows": (1, 2), "iOS": (1, 2), "Android": (1, 1)}
    assert rows(stats.breakdown(store, paris, week, "device"), "visitors", "visits") == {
        "desktop": (1, 2), "mobile": (2, 3)}
    assert rows(stats.breakdown(store, paris, week, "country"), "visitors", "visits") == {
        "GB": (1, 2), "US": (1, 2), "IE": (1, 1)}


def test_filter_by_a_session_dimension(store, paris):
    week, direct = period(paris, "7d"), stats.Filters({"source": "Direct"})
    values = metric_values(stats.summary(store, paris, week, direct))
    assert (values["visitors"], values["visits"], values["pageviews"], values["bounce_rate"]) == (2, 2, 3, 50.0)
    assert rows(stats.breakdown(store, paris, week, "page", direct), "pageviews") == {
        "/": (1,), "/docs": (1,), "/docs/install": (1,)}
    assert rows(stats.breakdown(store, paris, week, "country", direct), "visits") == {"GB": (1,), "IE": (1,)}
    assert rows(stats.breakdown(store, paris, week, "entry", direct), "visits") == {"/": (1,), "/docs": (1,)}
    two = stats.Filters({"source": "Direct", "country": "IE"})
    assert metric_values(stats.summary(store, paris, week, two))["visits"] == 1
    assert stats.breakdown(store, paris, week, "exit", direct)["unavailable"]


def test_filter_by_page(store, paris):
    week, pricing = period(paris, "7d"), stats.Filters({"page": "/pricing"})
    summary = stats.summary(store, paris, week, pricing)
    values = metric_values(summary)
    assert (values["visitors"], values["visits"], values["pageviews"], values["time_on_page_s"]) == (2, 2, 2, 35.0)
    assert values["views_per_visit"] == 1.0
    assert rows(stats.breakdown(store, paris, week, "source", pricing), "pageviews") == {
        "Google": (1,), "newsletter": (1,)}
    by_day = stats.timeseries(store, paris, week, pricing, now_ms=T0)
    assert by_day["pageviews"][-3:] == [1, 0, 1] and by_day["visitors"][-3:] == [1, 0, 1]


def test_a_page_filter_says_why_visit_figures_are_missing(store, paris):
    summary = stats.summary(store, paris, period(paris, "7d"), stats.Filters({"page": "/pricing"}))
    values = metric_values(summary)
    assert values["bounce_rate"] is None and values["visit_duration_s"] is None
    assert set(summary["unavailable"]) == {"bounce_rate", "visit_duration_s", "conversion_rate", "conversions",
                                           "conversion_value"}
    assert summary["unavailable"]["bounce_rate"].startswith("Not computed for a single page:")
    assert stats.summary(store, paris, period(paris, "7d"))["unavailable"] == {}


def test_a_page_with_other_filters_counts_its_visits_but_not_its_visitors(store, paris):
    week, filters = period(paris, "7d"), stats.Filters({"page": "/", "country": "GB"})
    summary = stats.summary(store, paris, week, filters)
    values = metric_values(summary)
    assert (values["visits"], values["pageviews"]) == (2, 2)  # v1 and v3, A's two visits from GB
    assert values["visitors"] is None and "Remove the other filters" in summary["unavailable"]["visitors"]
    assert metric_values(stats.summary(store, paris, week, stats.Filters({"page": "/", "country": "US"})))[
        "visits"] == 0
    chart = stats.timeseries(store, paris, week, filters, now_ms=T0)
    assert chart["visitors"] is None and chart["previous_visitors"] is None
    assert chart["visitors_unavailable"] == summary["unavailable"]["visitors"]
    assert chart["pageviews"][-3:] == [1, 1, 0]


def test_filtered_visitors_over_several_days_are_flagged_approximate(store, paris):
    summary = stats.summary(store, paris, period(paris, "7d"), stats.Filters({"browser": "Chrome"}))
    # A visited on two days: the cube counts a visitor per day, so this says 2, flagged.
    assert summary["metrics"]["visitors"]["value"] == 2 and summary["visitors_approximate"] is True
    one_day = stats.summary(store, paris, period(paris, "yesterday"), stats.Filters({"browser": "Chrome"}))
    assert one_day["metrics"]["visitors"]["value"] == 1 and one_day["visitors_approximate"] is False


def test_last_100_minutes_in_five_minute_buckets(store, paris):
    series = stats.last_100_minutes(store, paris, utc("2026-11-18T08:30:00"))
    assert len(series["labels"]) == 20 and series["labels"][-1] == "09:30"
    assert sum(series["pageviews"]) == 2 and sum(series["visitors"]) == 1
    assert series["pageviews"][-7] == 2  # the 09:00 bucket, six buckets before 09:30


def test_reports_still_work_from_rollups_after_raw_data_expires(store, paris):
    before = stats.report(store, paris, period(paris, "7d"), breakdowns=("page", "source"), now_ms=T0)
    store.purge(utc("2026-11-20T12:00:00"))  # two days later: raw events and sessions are gone
    assert store.recent_events(paris.site_id, 10) == []
    assert stats.report(store, paris, period(paris, "7d"), breakdowns=("page", "source"), now_ms=T0) == before


@pytest.mark.parametrize("backend", BACKENDS[:1])  # SQLite: its file stands for one a schema-7 aggregator folded
def test_a_page_filter_over_days_folded_before_page_visits_were_counted_says_so(store, paris, tmp_path):
    """A store upgraded from schema 7 has the page views of its earlier days, not their visits:
    those days show no visits (and say why), never zero visits beside page views."""
    with sqlite3.connect(tmp_path / "liveinsight.db") as db:  # conftest's SQLite file
        db.execute("DELETE FROM counters WHERE dimension = 'page_cube' AND metric = 'sessions'")
    week, page = period(paris, "7d"), stats.Filters({"page": "/"})
    summary = stats.summary(store, paris, week, page)
    assert summary["metrics"]["pageviews"]["value"] > 0
    assert summary["metrics"]["visits"]["value"] is None and summary["unavailable"]["visits"].startswith("Not counted")
    chart = stats.timeseries(store, paris, week, page, metric="visits")
    assert all(v is None for v, n in zip(chart["visits"], chart["pageviews"]) if n)
