"""Live push's hub and its stream through the ASGI bridge, with a store that says what was folded
and a render that counts: each site rendered once per fold however many watch it, the newest
snapshot only, streams that end (client gone, link gone, process stopping, time up)."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from app import live_push
from app.asgi_bridge import ASGIBridge
from app.live_push import STREAM_HEADER, LiveHub, sse_event, stream_header


class FoldedStore:
    """What the aggregator folded: `fold(site)` moves the checkpoint past an event of the site."""

    def __init__(self):
        self.checkpoint, self.sites_at = 0, {}

    def fold(self, site: str) -> None:
        self.checkpoint += 1
        self.sites_at[self.checkpoint] = site

    def folded_since(self, position):
        if position is None:
            return self.checkpoint, set()
        return self.checkpoint, {s for at, s in self.sites_at.items() if position < at <= self.checkpoint}


class Client:
    """One stream's receive and send: what was sent, and a way to leave."""

    def __init__(self):
        self.sent: list[bytes] = []
        self.leaving = asyncio.Event()

    async def receive(self):
        await self.leaving.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message["body"])

    def events(self) -> list[bytes]:
        return [body for body in self.sent if body.startswith(b"event:")]


def run(coroutine):
    with ThreadPoolExecutor(1) as thread:  # a loop of its own (Playwright may hold this thread's)
        return thread.submit(asyncio.run, coroutine).result(timeout=30)


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(live_push, "TICK_S", 0.01)
    monkeypatch.setattr(live_push, "SENDS_PER_S", 1e9)


def test_a_site_is_rendered_once_per_fold_for_all_its_streams_and_others_wait():
    store, rendered = FoldedStore(), []

    def render(site, token, language):
        rendered.append((site, token))
        return f"<p>{site} {len(rendered)}</p>"

    async def scenario():
        hub = LiveHub(store, render)
        watchers = [Client() for _ in range(3)]
        other = Client()
        tasks = [asyncio.ensure_future(hub.serve(("s1", None, "en"), c.receive, c.send)) for c in watchers]
        tasks.append(asyncio.ensure_future(hub.serve(("s2", "tok", "en"), other.receive, other.send)))
        await asyncio.sleep(0.05)  # the first push renders every watched site once
        assert sorted(rendered) == [("s1", None), ("s2", "tok")]
        store.fold("s1")
        await asyncio.sleep(0.05)
        assert rendered[2:] == [("s1", None)]  # once for its three streams; s2 folded nothing
        for client in watchers + [other]:
            client.leaving.set()
        await asyncio.gather(*tasks)
        assert hub.streams == {}
        return watchers, other

    watchers, other = run(scenario())
    for client in watchers:
        assert client.events()[-1] == sse_event("snapshot", "<p>s1 3</p>")
    assert other.events() == [sse_event("snapshot", "<p>s2 2</p>")]


def test_a_sites_streams_in_two_languages_each_get_the_snapshot_in_theirs():
    store, rendered = FoldedStore(), []

    def render(site, token, language):
        rendered.append(language)
        return f"<p>{language}</p>"

    async def scenario():
        hub = LiveHub(store, render)
        english, korean = Client(), Client()
        tasks = [asyncio.ensure_future(hub.serve(("s1", None, "en"), english.receive, english.send)),
                 asyncio.ensure_future(hub.serve(("s1", None, "ko"), korean.receive, korean.send))]
        await asyncio.sleep(0.05)
        for client in (english, korean):
            client.leaving.set()
        await asyncio.gather(*tasks)
        return english, korean

    english, korean = run(scenario())
    assert sorted(rendered) == ["en", "ko"]
    assert english.events() == [sse_event("snapshot", "<p>en</p>")]
    assert korean.events() == [sse_event("snapshot", "<p>ko</p>")]


def test_a_busy_site_is_sent_as_often_as_its_streams_allow_and_its_last_news_is_not_lost(monkeypatch):
    monkeypatch.setattr(live_push, "SENDS_PER_S", 5)  # its one stream: a snapshot every 0.2 s
    store, rendered = FoldedStore(), []

    async def scenario():
        hub = LiveHub(store, lambda site, token, language: rendered.append(site) or f"<p>{store.checkpoint}</p>")
        client = Client()
        serving = asyncio.ensure_future(hub.serve(("s1", None, "en"), client.receive, client.send))
        await asyncio.sleep(0.03)  # the watch's first push
        for _ in range(10):  # a fold every 10 ms: news at every tick
            store.fold("s1")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)
        client.leaving.set()
        await serving
        return client
    client = run(scenario())
    assert len(rendered) == 2  # the first push, then once for all ten folds, when the interval allowed
    assert client.events()[-1] == sse_event("snapshot", "<p>10</p>")  # the last fold is in what was sent


def test_a_slow_stream_gets_the_newest_snapshot_not_a_backlog():
    async def scenario():
        hub = LiveHub(FoldedStore(), lambda site, token, language: "x")
        queue = asyncio.Queue(maxsize=1)
        hub.streams[("s1", None, "en")] = {queue}
        for n in range(3):
            hub._send_all([("s1", None, "en")], f"{n}".encode())
        return [queue.get_nowait()], queue.empty()
    assert run(scenario()) == ([b"2"], True)


def test_a_stream_ends_when_its_link_is_gone_or_the_process_stops_or_its_time_is_up(monkeypatch):
    store = FoldedStore()

    async def scenario():
        gone_link = LiveHub(store, lambda site, token, language: None)  # the render finds the link revoked
        client = Client()
        await asyncio.wait_for(gone_link.serve(("s1", "tok", "en"), client.receive, client.send), 2)
        assert client.sent == [b""]  # ended: the browser reconnects, and is refused

        stopping = LiveHub(store, lambda site, token, language: "<p>now</p>")
        client = Client()
        serving = asyncio.ensure_future(stopping.serve(("s1", None, "en"), client.receive, client.send))
        await asyncio.sleep(0.05)
        stopping.running = lambda: False  # gunicorn told the worker to stop
        await asyncio.wait_for(serving, 2)
        assert client.sent[-1] == b""

        monkeypatch.setattr(live_push, "MAX_STREAM_S", 0.1)
        monkeypatch.setattr(live_push, "KEEPALIVE_S", 0.03)
        quiet = LiveHub(FoldedStore(), lambda site, token, language: "<p>now</p>")
        client = Client()
        await asyncio.wait_for(quiet.serve(("s1", None, "en"), client.receive, client.send), 2)
        assert b": keepalive\n\n" in client.sent and client.sent[-1] == b""
    run(scenario())


def test_the_bridge_keeps_a_streams_answer_open_without_a_length_and_hands_it_to_the_hub():
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.get("/stream")
    def stream():
        return app.response_class(sse_event("snapshot", "<p>first</p>"), mimetype="text/event-stream",
                                  headers={STREAM_HEADER: stream_header("s1", None, "ko")})

    store = FoldedStore()
    hub = LiveHub(store, lambda site, token, language: "<p>next</p>")
    bridge = ASGIBridge(app, max_body=100, hub=hub)

    async def scenario():
        client, asked = Client(), []
        sent = []

        async def receive():
            if not asked:
                asked.append(1)
                return {"type": "http.request", "body": b"", "more_body": False}
            return await client.receive()

        async def send(message):
            sent.append(message)
        scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/stream",
                 "query_string": b"", "root_path": "", "headers": [], "client": ("127.0.0.1", 5),
                 "server": ("127.0.0.1", 8000)}
        serving = asyncio.ensure_future(bridge(scope, receive, send))
        await asyncio.sleep(0.05)
        store.fold("s1")
        await asyncio.sleep(0.05)
        client.leaving.set()
        await asyncio.wait_for(serving, 2)
        return sent
    start, first, *rest = run(scenario())
    names = [name for name, _ in start["headers"]]
    assert b"content-length" not in names and STREAM_HEADER.lower().encode() not in names
    assert first == {"type": "http.response.body", "body": sse_event("snapshot", "<p>first</p>"), "more_body": True}
    assert {"type": "http.response.body", "body": sse_event("snapshot", "<p>next</p>"), "more_body": True} in rest


def test_an_event_carries_each_line_of_html_on_a_data_line():
    assert sse_event("snapshot", "<a>\n\n</a>", retry_ms=2000) == (
        b"retry: 2000\nevent: snapshot\ndata: <a>\ndata: \ndata: </a>\n\n")
