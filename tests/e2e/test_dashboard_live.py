"""A visit to the demo site shows up live on the dashboard, in a real browser.

One visitor opens /demo, follows the nav link to /demo/pricing (a real navigation), clicks the
"Buy" button; the dashboard, opened in another tab of the same browser, shows one current
visitor, both pages in "Top pages today", the page being viewed now and both clicks, with its
charts drawn and no error in the console.
"""
from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from .conftest import log_in, wait_until

APPEARANCE_BUDGET_S = 2.0  # the issue: a visitor is on the dashboard within 2 s of opening /demo
LIVE_TIMEOUT_MS = 12_000  # the realtime page refreshes every 5 s; the tracker flushes every 5 s
CURRENT_VISITORS = re.compile(r'data-testid="current-visitors">\s*(\d+)\s*<')


def test_a_visit_appears_live_on_the_dashboard(context, live_server, artifacts_dir, record_property):
    site_id = live_server.site.site_id
    fragment = f"{live_server.url}/sites/{site_id}/widgets/current-visitors"
    log_in(context, live_server)  # the context's pages and requests share its login cookie

    def current_visitors() -> int:
        # The fragment exactly as htmx fetches it every 3 s.
        response = context.request.get(fragment, headers={"HX-Request": "true"})
        assert response.ok, response.status
        return int(CURRENT_VISITORS.search(response.text()).group(1))

    assert current_visitors() == 0  # a fresh site: "1" below is this visit and only it

    demo = context.new_page()
    demo_errors: list[str] = []
    demo.on("pageerror", lambda error: demo_errors.append(str(error)))

    # 1. Open /demo: the tracker sends its page view on load, so the visitor is there at once.
    started = time.monotonic()
    demo.goto(f"{live_server.url}/demo")
    loaded = time.monotonic()
    wait_until(lambda: current_visitors() == 1, APPEARANCE_BUDGET_S + 5,
               "the dashboard never showed the /demo visitor")
    appeared = time.monotonic()
    from_start, from_load = appeared - started, appeared - loaded
    record_property("visitor_appears_s", round(from_start, 3))
    print(f"visitor on the dashboard {from_start:.3f}s after opening /demo "
          f"({from_load:.3f}s after its load event)")
    assert from_start <= APPEARANCE_BUDGET_S, (
        f"the visitor took {from_start:.2f}s to appear (budget {APPEARANCE_BUDGET_S}s)")

    # 2. A real navigation through the nav link (a click event, then pagehide), then a click.
    with demo.expect_navigation(url=f"{live_server.url}/demo/pricing"):
        demo.click("#nav-pricing")
    demo.click("#buy")

    # 3. The dashboard, in a new tab of the same browser.
    dashboard = context.new_page()
    console_errors: list[str] = []
    dashboard.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    dashboard.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
    # Open the dashboard once the page view of the
    # second page is stored, so the first render has to show both pages.
    wait_until(lambda: any(e["type"] == "page_view" and e["path"] == "/demo/pricing"
                           for e in live_server.events()), 5, "the /demo/pricing page view never arrived")
    dashboard.goto(f"{live_server.url}/sites/{site_id}/realtime")

    expect(dashboard.get_by_test_id("current-visitors")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    expect(dashboard.get_by_test_id("recent-visitors")).to_have_text("1")

    top_pages = dashboard.locator("#w-top-pages")
    expect(top_pages.locator("table.breakdown tbody tr")).to_have_count(2)
    rows = top_pages.locator("table.breakdown tbody tr").all_inner_texts()
    assert sorted(" ".join(row.split()) for row in rows) == ["/demo 1", "/demo/pricing 1"]

    # The visitor is on /demo/pricing now, and only there.
    live_pages = dashboard.locator("#w-live-pages")
    expect(live_pages.locator("table.breakdown tbody span.label")).to_have_text(["/demo/pricing"],
                                                                               timeout=LIVE_TIMEOUT_MS)

    # Both clicks reach the live feed: the nav link's (sent on pagehide or by the next page)
    # and the button's (sent by the next flush, within 5 s).
    feed_clicks = dashboard.locator("#w-live-feed li.feed-click .label")
    expect(feed_clicks).to_have_text(["Clicked 'Buy a widget' on /demo/pricing", "Clicked 'Pricing' on /demo"],
                                     timeout=LIVE_TIMEOUT_MS)
    clicks = sorted(e["props"]["text"] for e in live_server.events() if e["type"] == "click")
    assert clicks == ["Buy a widget", "Pricing"]
    # The navigation sent the nav click up to three times (the pagehide and visibilitychange
    # beacons, then the next page's flush): ingestion took it as new once.
    wait_until(lambda: live_server.accepted() >= 4, 5, "ingestion never answered for every event")
    assert live_server.accepted() == len(live_server.events()) == 4

    # Chart.js drew every chart (the last 24 hours, the last 100 minutes).
    canvases = dashboard.locator("canvas[data-chart]")
    expect(canvases).to_have_count(2)
    dashboard.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')].every(c => window.Chart && Chart.getChart(c))")

    dashboard.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)
    assert console_errors == [], f"errors in the dashboard's console: {console_errors}"
    assert demo_errors == [], f"uncaught errors on the demo page: {demo_errors}"
