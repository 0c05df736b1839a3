"""GET /api/stats: the chart's interval and current bucket, what a page filter leaves out and
why, and the OpenAPI document describing them."""
import pytest

from tests.conftest import BACKENDS
from tests.history import paris  # noqa: F401  (a fixture)

ONE_BACKEND = pytest.mark.parametrize("backend", BACKENDS[:1])  # the view only; stores: test_stats.py


@ONE_BACKEND
def test_the_chart_marks_the_current_bucket_from_the_apps_clock(client, paris, clock):
    chart = client.get("/api/stats?site=paris&period=today").json["data"]["timeseries"]
    assert (chart["interval"], chart["labels"][12], chart["current"]) == ("hour", "2026-11-18T12:00", 12)
    clock.advance(3_600_000)
    assert client.get("/api/stats?site=paris&period=today").json["data"]["timeseries"]["current"] == 13
    year = client.get("/api/stats?site=paris&period=12mo").json["data"]["timeseries"]
    assert (year["interval"], len(year["labels"]), year["current"]) == ("month", 12, 11)
    assert client.get("/api/stats?site=paris&period=last_month").json["data"]["timeseries"]["current"] is None


@ONE_BACKEND
def test_a_page_filter_answers_visits_and_says_why_the_rest_is_missing(client, paris):
    data = client.get("/api/stats?site=paris&period=7d&page=/&country=GB").json["data"]
    metrics, unavailable = data["summary"]["metrics"], data["summary"]["unavailable"]
    assert metrics["visits"]["value"] == 2 and metrics["visitors"]["value"] is None
    assert set(unavailable) >= {"visitors", "bounce_rate", "visit_duration_s"}
    assert data["timeseries"]["visitors"] is None and data["timeseries"]["visitors_unavailable"]


@ONE_BACKEND
def test_the_openapi_document_describes_the_chart_and_the_missing_metrics(anon_client):
    schemas = anon_client.get("/api/openapi.json").json["components"]["schemas"]
    assert {"interval", "labels", "visitors", "visitors_unavailable", "visitors_summed_daily", "current",
            "previous_visitors"} <= set(schemas["Timeseries"]["properties"])
    assert schemas["Timeseries"]["properties"]["interval"]["enum"] == ["hour", "day", "week", "month"]
    assert "unavailable" in schemas["Summary"]["properties"]


@ONE_BACKEND
def test_the_chart_draws_a_metric_of_visits_when_asked(client, paris, anon_client):
    chart = client.get("/api/stats?site=paris&period=7d&metric=bounce_rate").json["data"]["timeseries"]
    assert len(chart["bounce_rate"]) == len(chart["labels"]) == len(chart["previous_bounce_rate"])
    assert chart["bounce_rate_unavailable"] is None and any(v is not None for v in chart["bounce_rate"])
    page = client.get("/api/stats?site=paris&period=7d&page=/&metric=visit_duration_s").json["data"]["timeseries"]
    assert page["visit_duration_s"] is None and page["visit_duration_s_unavailable"]
    assert "bounce_rate" not in client.get("/api/stats?site=paris&period=7d&metric=pageviews").json["data"]["timeseries"]
    wrong = client.get("/api/stats?site=paris&period=7d&metric=sessions")
    assert wrong.status_code == 400 and "metric" in wrong.json["message"]
    schema = anon_client.get("/api/openapi.json").json["components"]["schemas"]["Timeseries"]["properties"]
    assert {"visits", "previous_bounce_rate", "visit_duration_s_unavailable"} <= set(schema)
