"""The realtime page's WebSocket client (AWS's live push, app/live_sockets.py) in Chromium. A
WebSocket server on loopback stands in for API Gateway: it lets in a connection whose ticket the
app signed (as the socket function's $connect does) and sends it the snapshot the stream function
would post. The page swaps it in, does not poll while pushes come, asks anyway after a quiet
spell, and connects again with a new ticket when the server closes the socket."""
from __future__ import annotations

import queue
import threading
from http import HTTPStatus
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.sync.server import serve

from app.dashboard.views import live_snapshot_for
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.live_sockets import ticket_holder
from tests.conftest import CHROME_UA

from .conftest import log_in, wait_until
from .test_pages import VIEWPORTS, audit, prepare


class FakeSocketApi:
    """API Gateway's WebSocket API as the page sees it: $connect checks the ticket and refuses
    the handshake without a valid one (the browser never sees the socket open); the test posts
    to, or closes, the connections it let in."""

    def __init__(self, keys: list[str]):
        self.keys, self.holders = keys, []  # (site, viewer, language) of each connection let in
        self.connections: queue.Queue = queue.Queue()
        self.server = serve(self._connect, "127.0.0.1", 0, process_request=self._check_ticket)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _holder(self, path: str):
        return ticket_holder(self.keys, parse_qs(urlsplit(path).query).get("ticket", [""])[0])

    def _check_ticket(self, connection, request):
        """$connect: a 403 instead of the upgrade, as API Gateway answers a refused $connect.
        (Closing the socket once open, as before, let the page see it open for a moment.)"""
        return None if self._holder(request.path) else connection.respond(HTTPStatus.FORBIDDEN, "no valid ticket\n")

    def _connect(self, connection) -> None:
        self.holders.append(self._holder(connection.request.path))
        self.connections.put(connection)
        for _ in connection:  # until it closes (the page sends nothing): the handler's end would close it
            pass

    def next_connection(self, timeout_s: float = 10):
        return self.connections.get(timeout=timeout_s)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def socket_api(live_server):
    api = FakeSocketApi([live_server.app.config["SECRET_KEY"]])
    live_server.app.config["LIVE_SOCKET_URL"] = f"ws://127.0.0.1:{api.port}/prod"
    yield api
    api.close()


def logged_in_page(browser, live_server, viewport: str):
    """A new page of a browser logged in as the admin, and the realtime polls it will make."""
    context = browser.new_context(user_agent=CHROME_UA, **VIEWPORTS[viewport])
    context.set_default_timeout(10_000)
    prepare(context)
    log_in(context, live_server)
    polls: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/live") else None)
    return context, page, polls


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_realtime_page_takes_pushes_from_the_socket_and_polls_only_without_them(
        viewport, live_server, socket_api, browser, artifacts_dir):
    site, app = live_server.site, live_server.app
    context, page, polls = logged_in_page(browser, live_server, viewport)
    try:
        page.clock.install()  # timers run as usual; fast_forward jumps over the quiet spells
        page.goto(f"{live_server.url}/sites/{site.site_id}/realtime")
        connection = socket_api.next_connection()
        assert socket_api.holders == [(site.site_id, "admin-1", "en")]
        page.wait_for_selector(".live-tick[data-streaming]", state="attached")

        now = int(time.time() * 1000)
        event = {"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": now, "user_id": "v-socket",
                 "session_id": uuid.uuid4().hex, "url": "http://127.0.0.1/pushed-by-socket"}
        record_batch(live_server.store, site, [event], Client("198.51.100.23", CHROME_UA), now)
        snapshot = {}

        def folded() -> bool:
            snapshot["html"] = live_snapshot_for(app, site.site_id, None)
            return 'data-testid="current-visitors">1<' in snapshot["html"]  # the feed shows it before
        wait_until(folded, 10, "the aggregator never folded the visit")
        connection.send(" ".join(snapshot["html"].split()))  # as the stream function posts it
        page.wait_for_selector("#w-live-pages :text('/pushed-by-socket')", timeout=3_000)
        assert page.locator("[data-testid=current-visitors]").inner_text() == "1"

        page.clock.fast_forward(12_000)  # two poll ticks: held back, a push came under 30 s ago
        page.wait_for_timeout(300)
        assert polls == []
        page.clock.fast_forward(20_000)  # no push for over 30 s: "visitors now" is asked for anyway
        wait_until(lambda: len(polls) == 1, 5, "the page never asked after a quiet spell", page=page)
        page.screenshot(path=str(artifacts_dir / f"page-realtime-socket-{viewport}.png"), full_page=True)
        assert audit(page) == []

        connection.close()  # as the stream function closes sockets after MAX_SOCKET_MS
        page.wait_for_selector(".live-tick:not([data-streaming])", state="attached")
        page.clock.fast_forward(1_500)  # the page waits a second, then asks for a new ticket
        socket_api.next_connection()
        page.wait_for_selector(".live-tick[data-streaming]", state="attached")
        assert socket_api.holders == [(site.site_id, "admin-1", "en")] * 2
    finally:
        context.close()


# Every time the page marks an element as pushed to (`data-streaming`), from its first moment.
STREAMING_SEEN = """window.streamingSeen = [];
new MutationObserver(function (changes) {
  changes.forEach(function (c) { if (c.target.dataset.streaming) window.streamingSeen.push(c.target.className); });
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-streaming"]});"""


def test_a_refused_socket_leaves_the_page_polling(live_server, browser):
    api = FakeSocketApi(["not-the-apps-key"])  # every ticket is refused
    live_server.app.config["LIVE_SOCKET_URL"] = f"ws://127.0.0.1:{api.port}/prod"
    context, page, polls = logged_in_page(browser, live_server, "desktop")
    page.add_init_script(STREAMING_SEEN)
    try:
        page.goto(f"{live_server.url}/sites/{live_server.site.site_id}/realtime")
        wait_until(lambda: len(polls) >= 1, 12, "the page never polled", page=page)  # 5 s: it tried again meanwhile
        assert api.holders == [] and page.evaluate("window.streamingSeen") == []
    finally:
        context.close()
        api.close()


def test_a_public_links_page_connects_as_the_link(live_server, socket_api, browser):
    from app.auth import links
    from app.live_sockets import LINK_VIEWER
    _, token = links.create_link(live_server.store, live_server.site.site_id, "Office TV", "admin-1",
                                 int(time.time() * 1000))
    context = browser.new_context(user_agent=CHROME_UA, **VIEWPORTS["desktop"], locale="ko-KR")
    context.set_default_timeout(10_000)
    prepare(context)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/share/{token}/realtime")
        socket_api.next_connection()
        page.wait_for_selector(".live-tick[data-streaming]", state="attached")
        # the link, and the page's language: its pushes are rendered in Korean
        assert socket_api.holders == [(live_server.site.site_id, LINK_VIEWER + links.token_hash(token), "ko")]
        assert audit(page) == []
    finally:
        context.close()
