"""A new site's first run, in a real browser: the snippet with its Copy button, and the
installation check that turns from waiting to receiving when the first page view arrives."""
from __future__ import annotations

from playwright.sync_api import expect

from app import create_app
from app.clock import SystemClock

from .conftest import LiveServer, log_in
from .test_pages import VIEWPORTS, audit, prepare, settle

FLIP_TIMEOUT_MS = 10_000  # the check polls every 3 s; the tracker sends a page view on load


def test_the_install_check_turns_when_the_first_page_view_arrives(browser, context, live_server, artifacts_dir):
    site = live_server.site  # a fresh site with no traffic; /demo tracks into it
    log_in(context, live_server)
    prepare(context)
    owner = context.new_page()
    owner.goto(f"{live_server.url}/sites/{site.site_id}")
    check = owner.get_by_test_id("install-check")
    expect(check).to_contain_text("Waiting for the first page view")
    expect(owner.locator("#snippet")).to_contain_text(f'data-key="{site.tracker_key}"')
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    owner.click("button[data-copy]")
    expect(owner.locator("button[data-copy]")).to_have_text("Copied ✓")
    assert owner.evaluate("() => navigator.clipboard.readText()") == owner.locator("#snippet").inner_text()
    for viewport, options in VIEWPORTS.items():
        owner.set_viewport_size(options["viewport"])
        settle(owner)
        owner.screenshot(path=str(artifacts_dir / f"first-run-waiting-{viewport}.png"), full_page=True)
        assert audit(owner) == [], viewport

    visitor = context.new_page()
    visitor.goto(f"{live_server.url}/demo")
    expect(check).to_contain_text("Receiving events ✓", timeout=FLIP_TIMEOUT_MS)
    owner.screenshot(path=str(artifacts_dir / "first-run-receiving.png"), full_page=True)
    owner.click("text=See your dashboard")
    expect(owner.locator("#w-metrics")).to_be_visible()
    assert audit(owner) == []


def test_a_snippet_from_the_trackers_own_door_counts_a_visit_from_another_site(browser, context, live_server,
                                                                              page_server):
    """As on AWS: the dashboard's snippet loads tracker.js from the tracker's own address (an app
    that answers only the tracker, LIVEINSIGHT_SERVES=tracker) and the tracker posts there, from
    the site's page on a third address: both cross-origin. The dashboard sees the visit."""
    site = live_server.site
    door = LiveServer(create_app({"SECRET_KEY": "e2e-secret", "SERVES": "tracker"}, store=live_server.store,
                                 clock=SystemClock()), live_server.store, site)
    door.start()
    live_server.app.config["TRACKER_URL"] = door.url + "/"
    try:
        log_in(context, live_server)
        owner = context.new_page()
        owner.goto(f"{live_server.url}/sites/{site.site_id}")
        snippet = owner.locator("#snippet").inner_text()
        assert snippet == f'<script defer src="{door.url}/tracker.js" data-key="{site.tracker_key}"></script>'
        page_server.pages["/"] = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Shop</title>"
                                  f"{snippet}</head><body><h1>Shop</h1></body></html>")
        visitor = context.new_page()
        errors: list[str] = []
        visitor.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        visitor.goto(f"{page_server.url}/")
        expect(owner.get_by_test_id("install-check")).to_contain_text("Receiving events ✓", timeout=FLIP_TIMEOUT_MS)
        assert door.accepted() >= 1 and live_server.ingest_answers == []  # all of it through the door
        assert errors == []
        assert [e["path"] for e in live_server.events()][-1:] == ["/"]
    finally:
        live_server.app.config["TRACKER_URL"] = ""
        door.stop()
