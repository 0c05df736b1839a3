"""The realtime page in Chromium against the single box as `make run` serves it (gunicorn): the
server pushes each new snapshot over its event stream, the page does not poll while the stream is
open, and it polls again when the stream cannot be had. Audited at a phone's and a desk's size."""
from __future__ import annotations

import time
import uuid

import pytest

from app.auth import links
from app.store.sqlite import SQLiteStore
from tests.server import Server

from .conftest import DESKTOP_CHROME_UA
from .test_pages import VIEWPORTS, audit, prepare


@pytest.fixture(scope="module")
def pushing(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("push"))
    site = server.make_site()
    store = SQLiteStore(str(server.db_path))
    _, token = links.create_link(store, site.site_id, "Office TV", "cli", int(time.time() * 1000))
    store.close()
    server.start()
    yield server, site, token
    server.stop()


def visit(server: Server, site, path: str) -> None:
    event = {"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": int(time.time() * 1000),
             "user_id": uuid.uuid4().hex[:12], "session_id": uuid.uuid4().hex, "url": f"https://example.com{path}"}
    assert server.send_events(site, [event])[0] == 202


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_realtime_page_is_pushed_each_visit_and_does_not_poll_meanwhile(pushing, browser, viewport,
                                                                          artifacts_dir):
    server, site, token = pushing
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS[viewport])
    context.set_default_timeout(10_000)
    prepare(context)
    polls: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/live") else None)
    try:
        page.goto(f"http://127.0.0.1:{server.port}/share/{token}/realtime")
        page.wait_for_selector(".live-tick[data-streaming]", state="attached")
        for n in range(3):
            path = f"/pushed-{viewport}-{n}"
            sent = time.monotonic()
            visit(server, site, path)
            page.wait_for_selector(f"#w-live-pages :text('{path}')", timeout=5_000)
            assert time.monotonic() - sent <= 1.0, "the page took over a second to show the visit"
        page.wait_for_timeout(6_000)  # longer than the poll period (5 s): no poll while pushed
        assert polls == []
        page.screenshot(path=str(artifacts_dir / f"page-realtime-pushed-{viewport}.png"), full_page=True)
        assert audit(page) == []
    finally:
        context.close()


def test_without_its_stream_the_page_polls(pushing, browser):
    server, site, token = pushing
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS["desktop"])
    context.set_default_timeout(10_000)
    prepare(context)
    context.route("**/live/stream", lambda route: route.abort())  # a proxy that drops streams, say
    polls: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/live") else None)
    try:
        page.goto(f"http://127.0.0.1:{server.port}/share/{token}/realtime")
        visit(server, site, "/polled")
        page.wait_for_selector("#w-live-pages :text('/polled')", timeout=12_000)  # the next poll shows it
        assert polls and page.evaluate("document.querySelector('.live-tick').dataset.streaming") is None
        # The aborted stream's own errors: Chromium's failed load, and htmx logging its sseError event.
        problems = [p for p in audit(page, axe=False) if "live/stream" not in p and "[object Event]" not in p]
        assert problems == []
    finally:
        context.close()
