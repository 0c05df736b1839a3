"""A person's browser against production on one box: Chromium over HTTPS to Debian's Caddy
(the repository's Caddyfile, a certificate from Caddy's internal authority as `tls internal`
gives a trial) in front of the app started with the commands of the repository's systemd unit.
The tracker loads and sends from an HTTPS page, the login cookie is Secure, HSTS is sent, and no
page logs an error or breaks the Content-Security-Policy."""
from __future__ import annotations

import time

from app.store.sqlite import SQLiteStore
from tests.production import Caddy, Service, need_caddy
from tests.server import free_port

from .conftest import DESKTOP_CHROME_UA, wait_until

PASSWORD = "a long enough password"
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def test_tracker_login_and_dashboard_over_https_through_caddy(browser, tmp_path, artifacts_dir):
    need_caddy()
    service = Service(tmp_path / "state", free_port())
    caddy = Caddy(tmp_path, service.port)
    context = None
    try:
        service.start()
        service.run("create-site", "Demo", "--domain", "localhost", "--id", "demo")
        service.run("create-user", "owner@example.com", "--admin", "--password", PASSWORD)
        caddy.start()
        context = browser.new_context(user_agent=DESKTOP_CHROME_UA, ignore_https_errors=True,
                                      viewport={"width": 1440, "height": 900})
        context.set_default_timeout(10_000)
        context.add_init_script(WATCH)
        errors: list[str] = []

        def watch(page):
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
            return page

        # The demo page, over HTTPS, with the tracker from the same origin: its page view arrives.
        demo = watch(context.new_page())
        answer = demo.goto(f"{caddy.origin}/demo")
        assert answer.status == 200
        assert answer.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        store = SQLiteStore(str(service.state / "liveinsight.db"))
        try:
            views = wait_until(lambda: [e for e in store.recent_events("demo", 50) if e["type"] == "page_view"],
                               10, "the demo page's page view never arrived", page=demo)
        finally:
            store.close()
        assert views[0]["url"].startswith(f"{caddy.origin}/demo")

        # Logging in over HTTPS sets a Secure, HttpOnly cookie; the dashboard works behind the proxy.
        page = watch(context.new_page())
        page.goto(f"{caddy.origin}/login")
        page.fill("input[name=email]", "owner@example.com")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form button")
        assert "/login" not in page.url
        cookie, = [c for c in context.cookies() if c["name"] == "liveinsight_session"]
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        page.goto(f"{caddy.origin}/sites/demo")
        wait_until(lambda: "/demo" in " ".join(page.locator("table.breakdown tbody tr").all_inner_texts()), 10,
                   "the overview never showed the demo page's visit", page=page)
        page.wait_for_timeout(1000)  # its first polls over HTTPS
        page.screenshot(path=str(artifacts_dir / "behind-caddy-overview.png"))

        # The realtime page's stream passes through Caddy (compressed, as the browser asks) as it
        # is written: a visit shows without a poll.
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/live") else None)
        page.goto(f"{caddy.origin}/sites/demo/realtime")
        page.wait_for_selector(".live-tick[data-streaming]", state="attached")
        demo.goto(f"{caddy.origin}/demo/pricing")
        page.wait_for_selector("#w-live-feed :text('/demo/pricing')", timeout=5_000)
        assert polls == []
        assert page.evaluate("window.__violations") == [] and demo.evaluate("window.__violations") == []
        assert errors == []
    finally:
        if context is not None:
            context.close()
        caddy.stop()
        service.kill()
