"""Realtime figures, the dashboard page, its htmx fragments and GET /api/realtime."""
import inspect
import re

import pytest

from app.analytics import realtime as rt
from app.auth.sites import create_site
from app.store.base import HOUR_MS
from tests.conftest import T0

MIN = 60_000


@pytest.fixture
def live_traffic(ingest, make_event):
    """Three visitors: two on the site now, one who left 20 minutes ago."""
    ingest(make_event(user_id="a", session_id="sa", url="https://example.com/pricing",
                      referrer="https://www.google.com/", timestamp=T0 - 2 * MIN))
    ingest(make_event(user_id="b", session_id="sb", url="https://example.com/",
                      timestamp=T0 - 4 * MIN),
           make_event(user_id="b", session_id="sb", type="heartbeat", timestamp=T0 - MIN))
    ingest(make_event(user_id="c", session_id="sc", url="https://example.com/old",
                      timestamp=T0 - 20 * MIN))


def test_current_visitors_count_the_last_5_and_30_minutes(live_traffic, store, site):
    assert rt.current_visitors(store, site, T0) == {"last_5_minutes": 2, "last_30_minutes": 3}
    assert rt.current_visitors(store, site, T0 + 40 * MIN) == {"last_5_minutes": 0, "last_30_minutes": 0}


def test_live_pages_and_sources_are_those_of_current_visitors(live_traffic, store, site):
    assert rt.live_pages(store, site, T0) == [{"name": "/", "visitors": 1},
                                              {"name": "/pricing", "visitors": 1}]
    assert rt.live_sources(store, site, T0) == [{"name": "Direct", "visitors": 1},
                                                {"name": "Google", "visitors": 1}]


def test_a_visitor_in_two_tabs_is_one_current_visitor(ingest, make_event, store, site):
    ingest(make_event(session_id="tab1", url="https://example.com/a"),
           make_event(session_id="tab2", url="https://example.com/a"))
    assert rt.current_visitors(store, site, T0)["last_5_minutes"] == 1
    assert rt.live_pages(store, site, T0) == [{"name": "/a", "visitors": 1}]


def test_live_feed_is_newest_first(ingest, make_event, store, site):
    for i in range(25):
        ingest(make_event(url=f"https://example.com/p{i}", timestamp=T0 - (25 - i) * 1000),
               at=T0 - (25 - i) * 1000)
    feed = rt.live_feed(store, site)
    assert len(feed) == rt.LIVE_FEED_SIZE
    assert [e["path"] for e in feed[:2]] == ["/p24", "/p23"]
    assert set(feed[0]) == {"event_id", "type", "ts", "path", "name", "source", "browser", "os", "device", "country", "what"}
    assert feed[0]["what"] == "Viewed /p24"


def test_the_live_feed_leaves_heartbeats_out(ingest, make_event, store, site):
    ingest(make_event(url="https://example.com/read", timestamp=T0 - 60_000), at=T0 - 60_000)
    ingest(*[make_event(type="heartbeat", url="https://example.com/read", timestamp=T0 - 50_000 + i * 1000)
             for i in range(30)], at=T0)  # a tab left open: more heartbeats than the feed's size
    assert [e["what"] for e in rt.live_feed(store, site)] == ["Viewed /read"]


def test_last_24_hours_has_one_point_per_hour(ingest, make_event, store, site):
    ingest(make_event(timestamp=T0 - 3 * HOUR_MS), at=T0 - 3 * HOUR_MS)
    ingest(make_event(user_id="v2", session_id="s2", timestamp=T0), make_event(
        user_id="v2", session_id="s2", url="https://example.com/b", timestamp=T0))
    series = rt.last_24_hours(store, site, T0)
    assert len(series["hours"]) == len(series["visitors"]) == len(series["pageviews"]) == 24
    assert series["hours"][-1] == (T0 // HOUR_MS) * HOUR_MS
    assert series["visitors"][-1] == 1 and series["pageviews"][-1] == 2
    assert series["visitors"][-4] == 1 and series["pageviews"][-4] == 1
    assert sum(series["pageviews"]) == 3


def test_top_pages_today_follow_the_sites_time_zone(store, clock, make_event, settle):
    # T0 is 11:06 UTC = 06:06 in New York: "today" there began at 05:00 UTC.
    site = create_site(store, "NY", ["example.com"], T0, timezone="America/New_York", site_id="ny")
    from app.ingest.enrich import Client
    from app.ingest.pipeline import record_batch
    ua = Client("1.2.3.4", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/130.0.0.0 Safari/537.36")
    today_start = (T0 // HOUR_MS - 6) * HOUR_MS  # 05:00 UTC
    for path, when in [("/a", today_start + MIN), ("/a", T0), ("/b", T0),
                       ("/yesterday", today_start - MIN)]:
        record_batch(store, site, [make_event(url=f"https://example.com{path}", timestamp=when,
                                              session_id=path)], ua, when)
    settle()
    assert rt.top_pages_today(store, site, T0) == [{"page": "/a", "pageviews": 2},
                                                   {"page": "/b", "pageviews": 1}]


def test_realtime_json(client, live_traffic, site):
    response = client.get(f"/api/realtime?site={site.site_id}")
    assert response.status_code == 200
    data = response.json["data"]
    assert data["current_visitors"] == {"last_5_minutes": 2, "last_30_minutes": 3}
    assert set(data) == {"site", "now", "current_visitors", "live_pages", "live_sources",
                         "live_feed", "last_24_hours", "top_pages_today", "conversions"}


@pytest.mark.parametrize("query, status", [("", 400), ("?site=nope", 404)])
def test_realtime_json_errors(client, site, query, status):
    response = client.get(f"/api/realtime{query}")
    assert response.status_code == status and response.json["status"] == "error"


LIVE_WIDGETS = ("current-visitors", "conversions", "live-pages", "visitors-24h", "live-sources", "recent",
                "top-pages", "live-feed")


def test_the_realtime_page_refreshes_every_widget_with_one_request(client, live_traffic, site):
    html = client.get(f"/sites/{site.site_id}/realtime").get_data(as_text=True)
    for name in LIVE_WIDGETS:
        root = re.search(rf'<section id="w-{name}"[^>]*>', html, re.S).group(0)
        assert "hx-get" not in root  # no poll of its own: the page's one tick refreshes it
    tick = re.search(r'<div class="live-tick"[^>]*>', html).group(0)
    assert f'hx-get="/sites/{site.site_id}/live"' in tick and 'hx-trigger="every 5s' in tick and 'hx-swap="none"' in tick
    assert 'data-testid="current-visitors">2<' in html
    assert "/pricing" in html and "Google" in html


def test_the_live_snapshot_reads_the_minute_counters_of_30_minutes_at_most(client, live_traffic, site, store,
                                                                           monkeypatch, clock):
    """Bounded whatever the traffic: the live widgets read counters of the minutes up to now,
    never the visits themselves (no store method reads visits by time any more)."""
    reads = []
    for name in ("read_counters", "sum_counters"):
        method = getattr(store, name)
        bind = inspect.signature(method).bind
        monkeypatch.setattr(store, name, lambda *a, _m=method, _b=bind, **k: reads.append(_b(*a, **k)) or _m(*a, **k))
    html = client.get(f"/sites/{site.site_id}/live", headers={"HX-Request": "true"}).get_data(as_text=True)
    for name in LIVE_WIDGETS:  # each swapped into the page by its id
        assert re.search(rf'<section id="w-{name}"[^>]*hx-swap-oob="true"', html), name
    minutes = [read.args for read in reads if read.arguments.get("grain") == "minute"]
    assert {args[2] for args in minutes} == {"live", "live_page", "live_source"}
    now = clock.now_ms() // MIN
    assert all(args[4] == now + 1 and args[4] - args[3] <= 31 for args in minutes)
    assert 'data-testid="current-visitors">2<' in html


def test_a_visitor_counts_on_the_page_of_their_latest_event_only(ingest, make_event, store, site):
    ingest(make_event(url="https://example.com/a", timestamp=T0 - 3 * MIN), at=T0 - 3 * MIN)
    ingest(make_event(url="https://example.com/b", timestamp=T0 - MIN), at=T0 - MIN)
    ingest(make_event(url="https://example.com/a", type="heartbeat", timestamp=T0 - 2 * MIN), at=T0)  # late
    assert rt.live_pages(store, site, T0) == [{"name": "/b", "visitors": 1}]
    assert rt.current_visitors(store, site, T0) == {"last_5_minutes": 1, "last_30_minutes": 1}
    assert rt.conversions_live(store, site, T0)["active_visit_duration_s"] == 120.0
    # Seven minutes after their last event they are no longer "now", but still in the 30 minutes.
    assert rt.current_visitors(store, site, T0 + 6 * MIN) == {"last_5_minutes": 0, "last_30_minutes": 1}
    assert rt.live_pages(store, site, T0 + 6 * MIN) == []


def test_fragment_is_a_partial_for_htmx_and_the_full_page_otherwise(client, live_traffic, site):
    url = f"/sites/{site.site_id}/widgets/current-visitors"
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert partial.get_data(as_text=True).lstrip().startswith('<section id="w-current-visitors"')
    assert "<html" not in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]
    full = client.get(url)
    assert "<html" in full.get_data(as_text=True) and 'id="w-top-pages"' in full.get_data(as_text=True)  # the realtime page
    assert "HX-Request" in full.headers["Vary"]


def test_charts_carry_their_data_without_inline_script(client, live_traffic, site):
    html = client.get(f"/sites/{site.site_id}/widgets/visitors-24h",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-chart="line"' in html and "<script" not in html
    html = client.get(f"/sites/{site.site_id}/realtime").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script would break a strict CSP"
    assert "cdn" not in html.lower()


@pytest.mark.parametrize("url", ["/sites/nope", "/sites/nope/widgets/live-pages",
                                 "/sites/example/widgets/nope"])
def test_unknown_site_or_widget_is_404(client, site, url):
    assert client.get(url).status_code == 404


def test_hostile_strings_are_escaped(ingest, make_event, client, site):
    ingest(make_event(url="https://example.com/<script>alert(1)</script>",
                      referrer="https://evil.example/<img src=x onerror=alert(1)>"))
    html = client.get(f"/sites/{site.site_id}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_index_redirects_to_the_only_site(client, site):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/sites/example")


def test_demo_page_carries_the_snippet(client, store, clock, app):
    create_site(store, "Demo", ["localhost"], clock.now_ms(), site_id=app.config["DEMO_SITE_ID"])
    demo = store.get_site(app.config["DEMO_SITE_ID"])
    html = client.get("/demo/pricing").get_data(as_text=True)
    assert f'<script defer src="/tracker.js" data-key="{demo.tracker_key}"></script>' in html
    assert client.get("/demo/nope").status_code == 404


def test_tracker_js_is_served_with_cache_headers(client):
    response = client.get("/tracker.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "max-age=3600" in response.headers["Cache-Control"]
    response.close()
