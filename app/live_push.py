"""Live push on the single box: the realtime page's widgets over Server-Sent Events, sent the
moment the aggregator has folded new events of the site; the page polls only while its stream
is down (static/js/dashboard.js).

Each server process has one `LiveHub`, in its event loop (app/asgi_bridge.py). While anyone
watches, it asks the store every TICK_S which sites the aggregator folded events of since it
last asked (`folded_since`: the aggregator may run in the other process); for each of those
that is watched, as often as its streams allow (SENDS_PER_S), it renders the live snapshot once (`render`: the same HTML `GET .../live`
answers, per site, public link and language) and queues it for every stream of the site, whose queue
keeps only the newest. A stream ends after MAX_STREAM_S: the browser reconnects at once, through
the access checks again, so a removed member or a revoked link stops seeing the site. Streams
also end when the process is told to stop (`running`, from gunicorn.conf.py), which would
otherwise wait for them before restarting.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Awaitable, Callable

from app.store.base import Store

log = logging.getLogger(__name__)

TICK_S = 0.2  # how often a process asks what was folded (event -> screen: about this + the fold)
# Sending a snapshot to a stream costs about 0.1 ms of a worker: a site is pushed at most so
# often that its streams in this process take SENDS_PER_S sends a second (each tick when few
# watch it; every second for 500 and more). Measured (`make bench`, (h): 1,000 streams on the loaded site,
# 500 a worker): a snapshot every 0.5 s cost 17 % of the ingestion throughput (p95 event ->
# screen 0.32 s); every 1 s, 9-11 % (0.72 s).
SENDS_PER_S = 500
MOST_EVERY_S = 1.0  # however many watch: a screen is never more than this behind (p95 <= 1 s)
KEEPALIVE_S = 15  # a comment line when idle: proxies keep the stream, a gone client is noticed
MAX_STREAM_S = 300
STREAM_HEADER = "X-LiveInsight-Stream"  # the app's answer opens a stream of this key (stripped)

Key = tuple[str, "str | None", str]  # (site id, public link token or None, language of the page)
Render = Callable[[str, "str | None", str], "str | None"]  # the snapshot's HTML; None: no longer visible


def sse_event(name: str, data: str, retry_ms: int | None = None) -> bytes:
    """One Server-Sent Event: each line of data on a `data:` line of its own."""
    lines = [f"retry: {retry_ms}"] if retry_ms is not None else []
    lines.append(f"event: {name}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def snapshot_event(html: str, retry_ms: int | None = None) -> bytes:
    """The live snapshot as an event, its white space collapsed as a browser would show it: one
    `data:` line, a sixth fewer bytes to write to every stream."""
    return sse_event("snapshot", " ".join(html.split()), retry_ms)


def stream_key(header: str) -> Key:
    site, token, language = json.loads(header)
    return site, token, language


def stream_header(site_id: str, token: str | None, language: str) -> str:
    return json.dumps([site_id, token, language])


class LiveHub:
    def __init__(self, store: Store, render: Render):
        self.store, self.render = store, render
        self.streams: dict[Key, set[asyncio.Queue]] = {}
        self.position: int | None = None
        self.folded: set[str] = set()  # sites with news not pushed yet (too soon after the last)
        self.pushed_at: dict[str, float] = {}
        self.watching: asyncio.Task | None = None
        self.running: Callable[[], bool] = lambda: True  # False once the process is to stop

    async def serve(self, key: Key, receive: Callable[[], Awaitable[dict]],
                    send: Callable[[dict], Awaitable[None]]) -> None:
        """Send this stream's snapshots until the client goes or MAX_STREAM_S pass (the answer's
        headers and first event are sent already). Waiting costs no task per event: the client's
        leaving is a None in the queue, as the end of the site is."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self.streams.setdefault(key, set()).add(queue)
        if self.watching is None:
            self.watching = asyncio.get_running_loop().create_task(self._watch())
        watcher = asyncio.ensure_future(self._until_disconnect(receive, queue))
        ends = time.monotonic() + MAX_STREAM_S
        try:
            while (left := ends - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(min(KEEPALIVE_S, left)):
                        event = await queue.get()
                except TimeoutError:
                    event = b": keepalive\n\n"
                if event is None:  # the client went, or the site is no longer visible to it
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if not watcher.done():
                await send({"type": "http.response.body", "body": b""})
        except OSError:
            pass  # the client went while we wrote
        finally:
            watcher.cancel()
            self._drop(key, queue)

    @staticmethod
    async def _until_disconnect(receive: Callable[[], Awaitable[dict]], queue: asyncio.Queue) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(None)

    def _drop(self, key: Key, queue: asyncio.Queue) -> None:
        streams = self.streams.get(key, set())
        streams.discard(queue)
        if not streams:
            self.streams.pop(key, None)

    async def _watch(self) -> None:
        """While anyone watches: what was folded since the last tick, rendered once per site."""
        try:
            while self.streams:
                await asyncio.sleep(TICK_S)
                if not self.running():
                    self._send_all(list(self.streams), None)
                    return
                self.push()
        finally:
            self.watching, self.position = None, None
            self.folded.clear()
            self.pushed_at.clear()

    def push(self) -> None:
        """Render and queue the watched sites folded since the last push, each as often as its
        streams allow (`_every`); the first push of a watch renders every watched site (events may
        have been folded since their first snapshot)."""
        try:
            first = self.position is None
            self.position, sites = self.store.folded_since(self.position)
        except Exception:  # noqa: BLE001  (storage unavailable now: the next tick asks again)
            log.exception("live push: cannot read what was folded")
            return
        self.folded |= {key[0] for key in self.streams} if first else sites
        now = time.monotonic()
        due = {site for site in self.folded if now - self.pushed_at.get(site, -1e9) >= self._every(site)}
        self.folded -= due
        for key in [key for key in self.streams if key[0] in due]:
            self.pushed_at[key[0]] = now
            try:
                html = self.render(*key)
            except Exception:  # noqa: BLE001  (this site's stream waits; polling is no better)
                log.exception("live push: cannot render site %s", key[0])
                continue
            self._send_all([key], None if html is None else snapshot_event(html))

    def _every(self, site: str) -> float:
        """How long a site waits between pushes: its streams here times the cost of one send."""
        watching = sum(len(queues) for key, queues in self.streams.items() if key[0] == site)
        return min(MOST_EVERY_S, max(TICK_S, watching / SENDS_PER_S))

    def _send_all(self, keys: list[Key], event: bytes | None) -> None:
        """Queue an event (None: the end) for every stream of the keys."""
        for key in keys:
            for queue in self.streams.get(key, ()):
                if queue.full():
                    queue.get_nowait()  # the newest snapshot replaces one not sent yet
                queue.put_nowait(event)
