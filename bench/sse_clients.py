"""(h)'s dashboards: many event streams of the realtime page held open at once in one asyncio loop
(a thread of the bench), each noting when the first snapshot naming a marker reaches it."""
from __future__ import annotations

import asyncio
import threading
import time

OPEN_AT_ONCE = 50  # connections opened together: the listen backlog is not flooded
KEEP_BYTES = 64 * 1024  # of each stream's latest data, where a marker is looked for


class Streams:
    def __init__(self, port: int, path: str, count: int):
        self.port, self.path, self.count = port, path, count
        self.open = 0
        self.failed = 0
        self.markers: list[bytes] = []  # what to look for, in order
        self.seen: dict[bytes, list[float]] = {}  # marker -> when each stream first saw it
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-sse", daemon=True)
        self.tasks: list[asyncio.Task] = []

    def start(self, timeout_s: float = 60) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open_all(), self.loop).result(timeout_s)

    def watch(self, marker: bytes) -> None:
        self.seen[marker] = []
        self.markers.append(marker)

    def arrivals(self, marker: bytes) -> list[float]:
        return list(self.seen.get(marker, []))

    def close(self) -> None:
        async def cancel():
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _open_all(self) -> None:
        for start in range(0, self.count, OPEN_AT_ONCE):
            opened = [asyncio.Event() for _ in range(min(OPEN_AT_ONCE, self.count - start))]
            self.tasks += [self.loop.create_task(self._stream(event)) for event in opened]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 30)

    async def _stream(self, opened: asyncio.Event) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            self.open += 1
            opened.set()
            data, noted = b"", set()  # this stream's latest bytes, and the markers it has seen
            while chunk := await reader.read(65536):
                now = time.monotonic()
                data = (data + chunk)[-KEEP_BYTES:]
                for marker in self.markers:
                    if marker not in noted and marker in data:
                        noted.add(marker)
                        self.seen[marker].append(now)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.failed += 1
            opened.set()
        finally:
            if writer is not None:
                writer.close()
