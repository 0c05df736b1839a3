"""The reports pages, their htmx fragments, CSV downloads, GET /api/stats and the OpenAPI document."""
import csv
import io
import re

import pytest

from tests.history import paris  # noqa: F401  (a fixture)

BASE = "/sites/paris"


def test_stats_api_answers_the_report(client, paris):
    response = client.get("/api/stats?site=paris&period=7d&breakdown=page,source&limit=2")
    assert response.status_code == 200
    data = response.json["data"]
    assert data["period"] == {"name": "7d", "from": "2026-11-12", "to": "2026-11-18",
                              "previous_from": "2026-11-05", "previous_to": "2026-11-11",
                              "timezone": "Europe/Paris"}
    assert data["summary"]["metrics"]["visitors"]["value"] == 3
    assert [r["value"] for r in data["breakdowns"]["page"]["rows"]] == ["/", "/pricing"]
    assert data["breakdowns"]["source"]["total_rows"] == 4
    assert data["timeseries"]["pageviews"][-3:] == [3, 3, 2]


def test_stats_api_filters(client, paris):
    data = client.get("/api/stats?site=paris&period=7d&source=Direct&country=GB").json["data"]
    assert data["filters"] == {"source": "Direct", "country": "GB"}
    assert data["summary"]["metrics"]["visits"]["value"] == 1


@pytest.mark.parametrize("query, message", [
    ("", "missing ?site=ID"),
    ("site=paris&period=fortnight", "period: Must be one of"),
    ("site=paris&period=custom&from=2026-11-10", "needs from and to dates"),
    ("site=paris&period=custom&from=nope&to=2026-11-10", "from: Not a valid date"),
    ("site=paris&breakdown=page,colour", "unknown breakdown colour"),
    ("site=paris&limit=5000", "limit: Must be greater than or equal to 1"),
    ("site=paris&period=custom&from=0001-01-01&to=0001-01-05", "statistics are kept 13 months"),
])
def test_stats_api_errors_are_400(client, paris, query, message):
    response = client.get(f"/api/stats?{query}")
    assert response.status_code == 400
    assert response.json["status"] == "error" and message in response.json["message"]


def test_stats_api_unknown_site_is_404(client, paris):
    response = client.get("/api/stats?site=nope")
    assert response.status_code == 404 and response.json["status"] == "error"


def test_openapi_document_describes_the_api(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {"/api/events", "/api/stats", "/api/realtime", "/api/funnels"}
    params = {p["name"] for p in spec["paths"]["/api/stats"]["get"]["parameters"]}
    assert {"site", "period", "from", "to", "breakdown", "limit", "source", "page", "country", "funnel",
            "funnel_breakdown", "paths", "page_flow", "cohorts", "cohort_periods"} <= params
    event = spec["components"]["schemas"]["Event"]
    assert {"event_id", "type", "timestamp", "user_id", "session_id", "url"} <= set(event["required"])
    assert event["properties"]["type"]["enum"] == ["page_view", "heartbeat", "click", "custom", "conversion"]
    assert "milliseconds" in event["properties"]["timestamp"]["description"]  # seconds are 50 years old


def test_the_overview_shows_metrics_the_chart_and_a_tab_of_each_panel(client, paris):
    html = client.get(f"{BASE}?period=7d").get_data(as_text=True)
    assert re.search(r'data-metric="visitors">\s*<dt><a class="metric-pick"[^>]*>Visitors</a>.*?<dd class="value">3', html, re.S)
    for widget in ("live-strip", "metrics", "chart", "sources", "pages", "countries", "devices", "goals"):
        assert f'id="w-{widget}"' in html
    for tab in ("channels", "utm_campaign", "utm_source", "utm_medium", "entry", "exit", "browsers", "os", "events",
                "outbound", "downloads", "not_found"):  # drawn when chosen: a tab that fetches its widget
        assert f'id="w-{tab}"' not in html and f'hx-get="{BASE}/widgets/{tab}?period=7d"' in html
    assert 'data-chart="main"' in html and 'data-chart="donut"' in html and 'data-chart="map"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def test_a_tab_chosen_in_the_url_is_the_one_drawn(client, paris):
    html = client.get(f"{BASE}?period=7d&sources_tab=channels&pages_tab=nope").get_data(as_text=True)
    assert 'id="w-channels"' in html and 'id="w-sources"' not in html
    assert 'id="w-pages"' in html  # an unknown tab: the panel's first


def test_reports_moved_to_the_overview_and_old_links_follow(client, paris):
    response = client.get(f"{BASE}/reports?period=7d&source=Direct")
    assert response.status_code == 301 and response.headers["Location"] == f"{BASE}?period=7d&source=Direct"


def test_rows_link_to_a_filtered_view_and_filters_show_as_removable_chips(client, paris):
    html = client.get(f"{BASE}?period=7d").get_data(as_text=True)
    assert f'href="{BASE}?period=7d&amp;source=Google"' in html
    entry = client.get(f"{BASE}/widgets/entry?period=7d", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'href="{BASE}?period=7d&amp;page=/docs"' in entry  # an entry page filters by page
    filtered = client.get(f"{BASE}?period=7d&source=Direct&country=GB").get_data(as_text=True)
    assert "Source: <strong>Direct</strong>" in filtered and "Country: <strong>United Kingdom</strong>" in filtered
    assert f'href="{BASE}?period=7d&amp;country=GB" aria-label="Remove the source filter"' in filtered


def test_a_widget_is_a_partial_for_htmx_and_the_page_otherwise(client, paris):
    url = f"{BASE}/widgets/pages?period=7d&source=Direct"
    partial = client.get(url, headers={"HX-Request": "true"})
    text = partial.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="w-pages"') and "<html" not in text
    assert f'hx-get="{BASE}/widgets/pages?period=7d&amp;source=Direct"' in text
    assert "HX-Request" in partial.headers["Vary"]
    assert "<html" in client.get(url).get_data(as_text=True)
    assert client.get(f"{BASE}/widgets/nope", headers={"HX-Request": "true"}).status_code == 404


def test_bad_period_on_the_page_is_400(client, paris, store):
    assert client.get(f"{BASE}?period=fortnight").status_code == 400
    ancient = "?period=custom&from=0001-01-01&to=0001-01-05"
    assert client.get(f"{BASE}{ancient}").status_code == 400
    assert client.get(f"{BASE}/widgets/metrics{ancient}", headers={"HX-Request": "true"}).status_code == 400
    from app.auth import links
    token = links.create_link(store, "paris", "tv", "admin-1", 0)[1]
    assert client.get(f"/share/{token}{ancient}").status_code == 400


def test_breakdown_downloads_as_csv(client, paris):
    response = client.get(f"{BASE}/reports/pages.csv?period=7d")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="paris-pages-2026-11-12-2026-11-18.csv"' in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["page"] for r in table] == ["/", "/pricing", "/blog", "/docs", "/docs/install", "/signup"]
    assert table[0] == {"page": "/", "visitors": "1", "pageviews": "2", "time_on_page_s": "45.0",
                        "entries": "2", "exits": "1", "exit_rate": "50.0"}
    assert client.get(f"{BASE}/reports/nope.csv").status_code == 404


def test_csv_neutralises_spreadsheet_formulas(client, ingest, make_event, site):
    ingest(make_event(url="https://example.com/x", referrer="https://=cmd.example/"))
    ingest(make_event(session_id="s2", url="https://example.com/y?utm_source=%3DHYPERLINK(1)"))
    text = client.get("/sites/example/reports/utm_source.csv?period=today").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in text and "\n=HYPERLINK" not in text


def test_hostile_values_are_inert_in_reports(client, ingest, make_event, site):
    ingest(make_event(url="https://example.com/%3Cscript%3Ealert(1)%3C/script%3E?utm_campaign=<img src=x onerror=alert(1)>"))
    html = client.get("/sites/example?period=today&sources_tab=utm_campaign").get_data(as_text=True)
    assert "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
