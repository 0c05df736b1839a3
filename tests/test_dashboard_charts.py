"""What the overview's chart is given: dates in words, the metrics it can switch between, the
bucket still counting; and what the dashboard writes for numbers, durations and countries."""
from app.analytics import stats
from app.analytics.periods import parse_period
from app.dashboard import charts, formatting
from tests.conftest import T0


def test_bucket_starts_read_as_dates_a_person_uses():
    assert [charts.axis_label(x, i) for x, i in (("2026-12-02T14:00", "hour"), ("2026-12-02", "day"),
                                                   ("2026-11-30", "week"), ("2026-12-01", "month"))] == \
        ["14:00", "Dec 2", "Nov 30", "Dec 2026"]
    assert charts.title("2026-12-02T14:00", "hour") == "Wed, Dec 2, 14:00"
    assert charts.title("2026-11-30", "week") == "Week of Nov 30, 2026"
    assert charts.hour_labels([1_764_684_000_000], "Asia/Seoul") == ["23:00"]  # 14:00 UTC


def test_the_chart_has_every_metric_the_series_has_and_falls_back_to_visitors(store, site, ingest, make_event):
    ingest(make_event())
    series = stats.timeseries(store, site, parse_period("7d", site.timezone, T0), now_ms=T0, metric="bounce_rate")
    chart = charts.main_chart(series, "bounce_rate")
    assert set(chart["metrics"]) == {"visitors", "pageviews", "bounce_rate"} and chart["selected"] == "bounce_rate"
    assert chart["metrics"]["bounce_rate"]["unit"] == "percent" and chart["current"] == 6
    assert len(chart["labels"]) == len(chart["titles"]) == 7
    assert charts.main_chart(series, "conversions")["selected"] == "visitors"  # not in this series


def test_figures_and_countries_read_in_words():
    assert formatting.number(12345) == "12,345" and formatting.number(None) == "—"
    assert formatting.duration(127.4) == "2m 7s" and formatting.percent(33.333, 1) == "33.3%"
    assert formatting.ago(3_000) == "just now" and formatting.ago(12 * 60_000) == "12 min ago"
    assert formatting.dimension_label("AU", "country") == "Australia"
    assert formatting.dimension_label("", "country") == "Unknown"
    assert formatting.dimension_label("", "source") == "Direct / none"
    assert formatting.map_rows([{"value": "KR", "visitors": 3}, {"value": "", "visitors": 9}], "visitors") == \
        [{"id": "410", "name": "South Korea", "value": 3}]  # an unknown country has no shape on the map
