"""Take the server down, generate events, bring it back: every event arrives exactly once.

The tracker keeps unsent events in localStorage ('li_q'), retries with backoff while requests
fail, and the server ignores an event_id it already has. A page on a second origin carries the
tracker with a fast flush (300 ms) and no heartbeats, so the only events are the ones the test
makes; the API server is stopped (its port refuses connections) and restarted on the same port.
"""
from __future__ import annotations

from collections import Counter

from playwright.sync_api import Page

from app.analytics.realtime import top_pages_today

from .conftest import wait_until

N_EVENTS = 30
FLUSH_MS = 300
SETTLE_TIMEOUT_S = 15  # backoff doubles from 300 ms while down: the retry after restart is < 3 s away


def _page(key: str, script_src: str, api: str | None = None) -> str:
    api_attribute = f' data-api="{api}"' if api else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Offline test</title>
<script defer src="{script_src}" data-key="{key}"{api_attribute}
        data-flush-ms="{FLUSH_MS}" data-heartbeat-ms="100000"></script>
</head><body><h1>Offline test</h1></body></html>"""


def _queue_length(page: Page) -> int:
    return page.evaluate("JSON.parse(localStorage.getItem('li_q') || '[]').length")


class FailedPosts:
    """Counts the page's event requests that failed (connection refused while down)."""

    def __init__(self, page: Page, endpoint: str):
        self.count = 0
        page.on("requestfailed", lambda request: self._seen(request, endpoint))

    def _seen(self, request, endpoint):
        if request.url == endpoint:
            self.count += 1


def _wait_for_initial_page_view(page: Page, live_server) -> None:
    wait_until(lambda: [e["type"] for e in live_server.events()] == ["page_view"], 10,
               "the first page view never arrived")
    wait_until(lambda: _queue_length(page) == 0, 5, "the tracker kept its sent page view queued")


def _wait_until_queued(page: Page, n: int) -> None:
    """Every event is in the stored queue. A request in flight (a retry every 300 ms and more)
    has taken its events off the queue until the refused connection puts them back: reading
    the queue at that moment found it empty once, though nothing was lost."""
    wait_until(lambda: _queue_length(page) == n, 5, f"the tracker's queue never held the {n} events", page=page)


def _track_offline_events(page: Page) -> None:
    page.evaluate("n => { for (let i = 0; i < n; i++) liveinsight.track('offline-test', {i}) }", N_EVENTS)


def _wait_for_everything(page: Page, live_server, page_views: int) -> list[dict]:
    """Until the store holds all the custom events and page views, and the queue is empty."""
    def settled():
        events = live_server.events()
        kinds = Counter(e["type"] for e in events)
        return (kinds["custom"] >= N_EVENTS and kinds["page_view"] >= page_views
                and _queue_length(page) == 0) and events
    return wait_until(settled, SETTLE_TIMEOUT_S, "the events queued while the server was down "
                      "never all arrived (or the tracker's queue never emptied)", interval=0.1, page=page)


def _assert_accepted_once(live_server, expected: int) -> None:
    """The server took each event as new exactly once: retries and beacons of events it
    already had were answered as duplicates, not counted again."""
    wait_until(lambda: live_server.accepted() >= expected, 5, "ingestion never answered for every event")
    assert live_server.accepted() == expected


def _assert_each_event_exactly_once(events: list[dict], expected_pages: list[str]) -> None:
    ids = Counter(e["event_id"] for e in events)
    assert [i for i, n in ids.items() if n > 1] == []
    custom = [e for e in events if e["type"] == "custom"]
    assert all(e["name"] == "offline-test" for e in custom)
    assert sorted(e["props"]["i"] for e in custom) == list(range(N_EVENTS))
    assert sorted(e["path"] for e in events if e["type"] == "page_view") == sorted(expected_pages)
    assert Counter(e["type"] for e in events) == {"custom": N_EVENTS, "page_view": len(expected_pages)}


def test_events_made_while_the_server_is_down_arrive_exactly_once(context, live_server, page_server):
    """The real /tracker.js from the API server, on another origin's page, endpoint from its src."""
    endpoint = f"{live_server.url}/api/events"
    page_server.pages["/"] = _page(live_server.site.tracker_key, f"{live_server.url}/tracker.js")
    page = context.new_page()
    failed = FailedPosts(page, endpoint)
    page.goto(f"{page_server.url}/shop")
    _wait_for_initial_page_view(page, live_server)

    live_server.stop()
    _track_offline_events(page)
    page.evaluate("history.pushState({}, '', '/shop/checkout')")  # an SPA page view
    _wait_until_queued(page, N_EVENTS + 1)
    wait_until(lambda: failed.count >= 2, 5, "the tracker did not try (and fail) to send while down",
               page=page)
    live_server.start()

    events = _wait_for_everything(page, live_server, page_views=2)
    _assert_each_event_exactly_once(events, ["/shop", "/shop/checkout"])
    _assert_accepted_once(live_server, N_EVENTS + 2)
    site = live_server.site

    def top_pages() -> dict:  # counted by the aggregator, a moment after the events are stored
        return {p["page"]: p["pageviews"] for p in top_pages_today(live_server.store, site, events[0]["received_ms"])}
    wait_until(lambda: top_pages() == {"/shop": 1, "/shop/checkout": 1}, 3,
               f"top pages never showed each page once: {top_pages()}")


def test_events_queued_before_a_reload_arrive_exactly_once(context, live_server, page_server):
    """Server down, events, the page reloads (its own server is up), server back. The page hosts
    the tracker itself (data-api names the endpoint), so it runs after the reload whatever the
    browser cache holds of the down server's /tracker.js."""
    endpoint = f"{live_server.url}/api/events"
    page_server.pages["/"] = _page(live_server.site.tracker_key, "/liveinsight.min.js", api=endpoint)
    page = context.new_page()
    failed = FailedPosts(page, endpoint)
    page.goto(f"{page_server.url}/shop")
    _wait_for_initial_page_view(page, live_server)

    live_server.stop()
    _track_offline_events(page)
    wait_until(lambda: failed.count >= 1, 5, "the tracker did not try (and fail) to send while down", page=page)
    _wait_until_queued(page, N_EVENTS)
    # pagehide beacons the queue into a closed port: the tracker saw the server fail, so it
    # keeps the events queued for the next page rather than trust the beacon.
    page.reload()
    page.wait_for_function("() => window.liveinsight")
    _wait_until_queued(page, N_EVENTS + 1)  # plus the reloaded page's view
    failures_after_reload = failed.count
    wait_until(lambda: failed.count > failures_after_reload, 5,
               "the reloaded page did not try (and fail) to send while down", page=page)
    live_server.start()

    events = _wait_for_everything(page, live_server, page_views=2)
    _assert_each_event_exactly_once(events, ["/shop", "/shop"])
    _assert_accepted_once(live_server, N_EVENTS + 2)


def test_events_made_offline_are_sent_once_from_the_next_page(context, live_server, page_server):
    """The visitor's browser goes offline (navigator.onLine false), makes events and leaves the
    page: a beacon would be lost, so the events stay queued; the next page, online, sends them,
    each once."""
    endpoint = f"{live_server.url}/api/events"
    page_server.pages["/"] = _page(live_server.site.tracker_key, "/liveinsight.min.js", api=endpoint)
    page = context.new_page()
    page.goto(f"{page_server.url}/shop")
    _wait_for_initial_page_view(page, live_server)

    context.set_offline(True)
    # The emulation reaches the page's navigator.onLine a moment later: until then the tracker
    # trusts its exit beacon, which the emulated network then drops (a suite run lost the events so).
    page.wait_for_function("() => !navigator.onLine")
    _track_offline_events(page)
    page.evaluate("history.pushState({}, '', '/shop/checkout')")
    page.goto("about:blank")  # pagehide while offline: the tracker keeps the events
    context.set_offline(False)
    page.goto(f"{page_server.url}/shop/thanks")

    events = _wait_for_everything(page, live_server, page_views=3)
    _assert_each_event_exactly_once(events, ["/shop", "/shop/checkout", "/shop/thanks"])
    _assert_accepted_once(live_server, N_EVENTS + 3)
