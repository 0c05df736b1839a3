"""Browser tests: a headless Debian Chromium (through Python Playwright) against the real app,
served over real HTTP on 127.0.0.1 by werkzeug in a thread.

Fixtures:
- `browser` (session): Chromium at /usr/bin/chromium; missing is a failure, not a skip.
- `context`: a fresh browser profile (own localStorage, so a fresh visitor) with a normal
  desktop Chrome user agent (DESKTOP_CHROME_UA below).
- `live_server`: the app on a SQLite store in tmp_path and the real SystemClock, with a fresh
  site whose id is DEMO_SITE_ID (so /demo tracks into it) and no traffic; `stop()` takes the
  server down (connections included) and `start()` brings it back on the same port.
- `page_server`: a second origin (another port) serving small test pages with the tracker.
"""
from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from app.aggregation import Background
from app.auth.sites import create_site
from app.clock import SystemClock
from app.store.base import User
from app.store.sqlite import SQLiteStore
from tests.conftest import ADMIN_PASSWORD, ADMIN_PASSWORD_HASH

ADMIN_EMAIL = "admin@example.com"

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
TRACKER_BUILD = HERE.parents[1] / "tracker" / "dist" / "liveinsight.min.js"
HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
# A normal desktop Chrome: the ingestion bot filter drops "HeadlessChrome". Set on the command
# line as well as on each context, because Playwright's per-context override does not reach
# requests the browser sends after a document is gone: without the flag, the tracker's
# sendBeacon on pagehide says "HeadlessChrome" and is silently dropped as a bot.
DESKTOP_CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/156.0.0.0 Safari/537.36")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-agent={DESKTOP_CHROME_UA}"]


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e is an e2e test (`-m "not e2e"` skips the browser)."""
    for item in items:
        if Path(str(item.path)).is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


def wait_until(condition, timeout: float, message: str, interval: float = 0.05, page=None):
    """Poll `condition()` until it returns something truthy (returned) or fail at the deadline.
    Pass the `page` whose event handlers the condition reads: Playwright's sync API delivers
    events only while the test is inside a Playwright call, never during a time.sleep."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s: {message}", pytrace=False)
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


# -- the browser
@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: `make test` installs it "
                    "(apt-get install chromium); never `playwright install`", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA,
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)  # git-ignored
    return ARTIFACTS


# -- the app over HTTP
class _QuietHandler(WSGIRequestHandler):
    def setup(self):
        super().setup()
        with self.server.tracking_lock:  # note the thread serving this connection, to join it
            if self.connection in self.server.open_connections:
                self.server.open_connections[self.connection] = threading.current_thread()

    def log_request(self, code="-", size="-"):
        pass  # one line per tracker request is noise; errors are still logged


def _track_connections(server) -> None:
    """Note every accepted connection until it is closed, so that stopping the server can
    close kept-alive ones too: their (daemon) threads would go on answering otherwise."""
    server.tracking_lock = threading.Lock()
    server.open_connections = {}  # socket -> the thread serving it (None until it starts)
    accept, release = server.get_request, server.shutdown_request

    def get_request():
        connection, address = accept()
        with server.tracking_lock:
            server.open_connections[connection] = None
        return connection, address

    def shutdown_request(connection):
        with server.tracking_lock:
            server.open_connections.pop(connection, None)
        release(connection)

    server.get_request, server.shutdown_request = get_request, shutdown_request


class LiveServer:
    """The Flask app served by werkzeug's threaded server on 127.0.0.1, stoppable and
    restartable on the same port."""

    def __init__(self, app, store, site):
        self.app, self.store, self.site = app, store, site
        self.port = 0  # chosen by the OS on the first start, then kept
        self.ingest_answers: list[dict] = []  # the "data" of every answer to POST /api/events
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        assert self._server is None, "already running"
        server = make_server(HOST, self.port, self._serve_whole, threaded=True,
                             request_handler=_QuietHandler)
        _track_connections(server)
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"live-server-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close the listening socket and every open connection, and wait
        for the request threads: afterwards the port refuses connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()  # returns once the accept loop has stopped: no new connections
        server.server_close()
        self._thread.join(timeout=5)
        with server.tracking_lock:
            connections = dict(server.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        for thread in connections.values():
            if thread is not None:
                thread.join(timeout=5)

    def _serve_whole(self, environ, start_response):
        """The app, its whole answer read and closed here, plus a note of what ingestion
        answered (accepted, duplicates...): the browser may never read an answer, for a page
        that has gone away. Closed here because werkzeug's server skips closing an answer when
        the browser has reset the connection (it reads the socket first in a `finally`), and a
        static file left open is a ResourceWarning in whatever test runs next."""
        answer = self.app(environ, start_response)
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == "/api/events":
            try:
                self.ingest_answers.append(json.loads(body)["data"])
            except (ValueError, KeyError, TypeError):
                pass  # an error answer: nothing was ingested
        return [body]

    def accepted(self) -> int:
        """How many events ingestion took as new, over every request so far."""
        return sum(answer["accepted"] for answer in list(self.ingest_answers))

    def events(self, limit: int = 1000) -> list[dict]:
        return self.store.recent_events(self.site.site_id, limit)


@pytest.fixture
def live_server(tmp_path):
    store = SQLiteStore(str(tmp_path / "liveinsight.db"))
    store.create_schema()
    app = create_app({"STORE_URL": f"sqlite:///{tmp_path / 'liveinsight.db'}", "SECRET_KEY": "e2e-secret"},
                     store=store, clock=SystemClock())
    clock = app.extensions["liveinsight.clock"]
    site = create_site(store, "Acme Widgets (e2e)", ["127.0.0.1", "localhost"], clock.now_ms(),
                       site_id=app.config["DEMO_SITE_ID"])
    store.create_user(User("admin-1", ADMIN_EMAIL, ADMIN_PASSWORD_HASH, clock.now_ms(), is_admin=True))
    server = LiveServer(app, store, site)
    background = Background(app).start()  # the aggregator, as each gunicorn worker starts it (app/server.py)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        background.close()
        store.close()


def log_in(context, live_server) -> None:
    """Log the browser context in as the instance admin, through the login form."""
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.click("form button")
    assert "/login" not in page.url, "the login form did not log in"
    page.close()


# -- a second origin for test pages
@dataclass
class PageServer:
    url: str
    pages: dict  # path -> HTML


@pytest.fixture
def page_server():
    """Serves `pages[path]` as HTML (any other path falls back to "/"), and the built tracker
    at /liveinsight.min.js, as a site that hosts the snippet's script itself would."""
    pages: dict[str, str] = {}
    tracker = TRACKER_BUILD.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/liveinsight.min.js":
                body, kind = tracker, "text/javascript"
            else:
                body, kind = pages.get(path, pages.get("/", "")).encode(), "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="page-server", daemon=True)
    thread.start()
    try:
        yield PageServer(url=f"http://{HOST}:{server.server_port}", pages=pages)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
