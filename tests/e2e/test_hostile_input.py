"""Strings strangers sent are shown as text, never run, in a real browser.

Events carrying script payloads in their page path, campaign, event name and user agent go
through the real ingestion pipeline; then the live dashboard, the reports and the settings
page are opened in Chromium. No script of theirs runs (no dialog, no global set, no element
injected), their text is on the page as text, and the pages themselves run under the strict
Content-Security-Policy without a single violation (charts drawn, htmx polling).
"""
from __future__ import annotations

import time
from urllib.parse import quote

from playwright.sync_api import expect

from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch

from .conftest import DESKTOP_CHROME_UA, log_in

PAYLOADS = ["<script>window.__xss=1;alert(1)</script>", '"><img src=x onerror="window.__xss=2;alert(2)">',
            "<svg/onload=window.__xss=3>", "javascript:window.__xss=4"]
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def ingest_hostile_events(live_server) -> None:
    site, now = live_server.site, int(time.time() * 1000)
    for i, payload in enumerate(PAYLOADS):
        url = f"{live_server.url}/{payload}?utm_campaign={quote(payload)}&utm_source={quote(payload)}"
        events = [{"event_id": f"hostile-{i}-view", "type": "page_view", "timestamp": now, "user_id": f"v{i}",
                   "session_id": f"s{i}", "url": url, "referrer": f"https://ref.example/{payload}", "title": payload},
                  {"event_id": f"hostile-{i}-name", "type": "custom", "name": payload, "timestamp": now + 1,
                   "user_id": f"v{i}", "session_id": f"s{i}", "url": url, "props": {"p": payload}}]
        result = record_batch(live_server.store, site, events, Client("198.51.100.9", DESKTOP_CHROME_UA), now)
        assert result.accepted == 2, result


def test_hostile_strings_are_shown_as_text_and_never_run(context, live_server, artifacts_dir):
    ingest_hostile_events(live_server)
    log_in(context, live_server)
    context.add_init_script(WATCH)
    base = f"{live_server.url}/sites/{live_server.site.site_id}"
    for name, path in (("realtime", f"{base}/realtime"), ("overview", f"{base}?period=today&sources_tab=utm_campaign"),
                       ("settings", f"{base}/settings")):
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path)
        if name != "settings":
            # Text, not markup: the payload is on the page as the characters it is.
            expect(page.get_by_text(PAYLOADS[0], exact=False).first).to_be_visible()
            page.wait_for_timeout(5_500)  # let htmx swap the live widgets in once (a 5-second tick)
            page.wait_for_function(
                "() => [...document.querySelectorAll('canvas[data-chart]')].every(c => window.Chart && Chart.getChart(c))")
        assert page.evaluate("window.__xss") is None, f"{name}: a payload ran"
        assert dialogs == [], f"{name}: a payload opened a dialog: {dialogs}"
        assert page.locator("img[src=x], svg[onload]").count() == 0, f"{name}: markup was injected"
        assert page.locator("a[href^='javascript:']").count() == 0, f"{name}: a javascript: link"
        assert page.evaluate("window.__violations") == [], f"{name}: the page breaks its own CSP"
        assert errors == [], f"{name}: {errors}"
        page.screenshot(path=str(artifacts_dir / f"hostile-{name}.png"), full_page=True)
        page.close()
