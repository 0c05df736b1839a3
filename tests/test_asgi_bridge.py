"""The ASGI bridge gunicorn's asyncio worker calls: a whole request in, the WSGI app's whole
answer out (app/asgi_bridge.py). The real server runs it in tests/test_server.py."""
from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, request

from app.asgi_bridge import ASGIBridge


def echo_app() -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.route("/<path:path>", methods=["GET", "POST"])
    def echo(path):
        return {"path": request.path, "query": request.query_string.decode(), "body": request.get_data(as_text=True),
                "client": request.remote_addr, "scheme": request.scheme, "cookie": request.headers.get("Cookie"),
                "accept": request.headers.get("Accept"), "type": request.content_type}, 201, {"X-Seen": "yes"}
    return app


def run(coroutine) -> None:
    """Run it in an event loop of its own thread (the browser tests' Playwright keeps one
    running in this one)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result(timeout=30)


def call(bridge: ASGIBridge, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]] = (),
         method: str = "POST") -> tuple[int, dict, bytes]:
    messages = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "http_version": "1.1", "method": method, "scheme": "http", "path": path,
             "query_string": b"a=1&b=%C3%A9", "root_path": "", "headers": list(headers),
             "client": ("198.51.100.7", 51000), "server": ("127.0.0.1", 8000)}
    run(bridge(scope, receive, send))
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def test_a_request_reaches_the_wsgi_app_whole_and_its_answer_comes_back():
    bridge = ASGIBridge(echo_app(), max_body=100)
    status, headers, body = call(bridge, "/caf\u00e9/x", [b'{"a":', b" 1}"], [
        (b"content-type", b"application/json"), (b"accept", b"text/html"), (b"accept", b"application/json"),
        (b"cookie", b"a=1")])
    seen = json.loads(body)
    assert status == 201 and headers[b"x-seen"] == b"yes"
    assert seen == {"path": "/caf\u00e9/x", "query": "a=1&b=%C3%A9", "body": '{"a": 1}', "client": "198.51.100.7",
                    "scheme": "http", "cookie": "a=1", "accept": "text/html,application/json",
                    "type": "application/json"}


def test_a_body_past_the_limit_is_not_read_and_the_app_answers_413():
    bridge = ASGIBridge(echo_app(), max_body=100)
    status, _, _ = call(bridge, "/x", [b"x" * 60] * 10_000)  # 600 KB offered: the first 120 bytes are read
    assert status == 413
    status, _, _ = call(bridge, "/x", [b"x" * 60], [(b"content-length", b"5000000")])
    assert status == 413


def test_a_chunked_body_is_whole_for_the_app():
    bridge = ASGIBridge(echo_app(), max_body=100)
    status, _, body = call(bridge, "/x", [b"ab", b"cd"], [(b"transfer-encoding", b"chunked")])
    assert status == 201 and json.loads(body)["body"] == "abcd"


def test_the_app_runs_in_the_event_loops_thread():
    """So that a worker whose app is busy accepts no new connection (gunicorn.conf.py): the
    loop is not free while the app runs."""
    app, seen = echo_app(), {}

    @app.before_request
    def note_thread():
        seen["app"] = threading.get_ident()

    async def request_in_loop():
        seen["loop"] = threading.get_ident()
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            pass
        scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/x",
                 "query_string": b"", "root_path": "", "headers": [], "client": None, "server": None}
        await ASGIBridge(app, max_body=100)(scope, receive, send)
    run(request_in_loop())
    assert seen["app"] == seen["loop"]


def test_lifespan_is_answered():
    bridge = ASGIBridge(echo_app(), max_body=100)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message["type"])
    run(bridge({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
