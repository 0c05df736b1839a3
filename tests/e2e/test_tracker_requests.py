"""The tracker sends each event once, in fewer requests than events: a browsing session of
about twenty pages (links, single-page navigation, clicks, custom events, time spent reading)
against the real server, counting every request and every event the server receives twice.

Timers run six times faster than in production with the same proportions (flush every 100 ms,
a heartbeat every 600 ms: production's 5 s and 30 s). `-s` prints the figures.
"""
from __future__ import annotations

import random
import time
from collections import Counter

from .conftest import wait_until

PAGES = ["/", "/pricing", "/blog", "/docs", "/signup"]
PAGE_VIEWS = 20


def _page(key: str, api: str, path: str) -> str:
    links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in PAGES if p != path)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{path}</title>
<script defer src="/liveinsight.min.js" data-key="{key}" data-api="{api}"
        data-flush-ms="100" data-heartbeat-ms="600"></script>
</head><body><h1>{path}</h1><ul>{links}</ul><button id="like">Like</button></body></html>"""


def test_each_event_reaches_the_server_once_in_fewer_requests_than_events(context, live_server, page_server):
    api = f"{live_server.url}/api/events"
    for path in PAGES:
        page_server.pages[path] = _page(live_server.site.tracker_key, api, path)
    rng = random.Random(11)
    page = context.new_page()
    page.goto(f"{page_server.url}/")
    views = 1
    while views < PAGE_VIEWS:
        page.wait_for_timeout(rng.uniform(200, 2_000))  # reading: heartbeats every 600 ms
        if rng.random() < 0.3:
            page.click("#like")
        if rng.random() < 0.2:
            page.evaluate("liveinsight.track('video play', {id: 'intro'})")
        target = rng.choice([p for p in PAGES if p != page.evaluate("location.pathname")])
        if rng.random() < 0.25:  # a single-page app's navigation
            page.evaluate("path => history.pushState({}, '', path)", target)
        else:
            with page.expect_navigation():
                page.click(f'a[href="{target}"]')
        views += 1
    page.wait_for_timeout(1_000)
    page.close()  # pagehide: the last events go by beacon

    def quiet():  # no new ingestion request for a second
        count = len(live_server.ingest_answers)
        time.sleep(1.0)
        return count and len(live_server.ingest_answers) == count
    wait_until(quiet, 15, "the tracker's requests never stopped")
    events = live_server.events(10_000)
    answers = list(live_server.ingest_answers)
    received = sum(a["accepted"] + a["duplicates"] for a in answers)
    duplicates = sum(a["duplicates"] for a in answers)
    kinds = Counter(e["type"] for e in events)
    print(f"\n{kinds['page_view']} page views, {len(events)} events ({dict(kinds)}), {len(answers)} requests: "
          f"{100 * len(answers) / kinds['page_view']:.0f} requests and {100 * duplicates / kinds['page_view']:.0f} "
          f"duplicate events per 100 page views; {len(answers) / len(events):.2f} requests per event; "
          f"{100 * duplicates / len(events):.1f} duplicates per 100 events")
    assert kinds["page_view"] == PAGE_VIEWS
    assert [i for i, n in Counter(e["event_id"] for e in events).items() if n > 1] == []
    assert received == len(events) and duplicates == 0  # nothing sent twice
    assert len(answers) < len(events)  # heartbeats ride along: fewer requests than events

