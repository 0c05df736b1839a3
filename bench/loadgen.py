"""A small open-loop HTTP/1.1 load generator: send prepared requests at a fixed rate.

wrk is closed-loop (each connection waits for its answer before sending again), so it cannot
hold a fixed rate. This sends request i at t0 + i/rate whatever the server does, through a
small pool of connections, and times each request twice:

- `latency`: from the moment it was *due* to the end of its answer. This includes any wait
  for a free connection, so a server that falls behind shows it (no coordinated omission);
- `service`: from the moment a connection picked it up (connect included: gunicorn's sync
  workers close the connection after every answer) to the end of its answer.

Bounded: exactly len(requests) requests, and the whole run is cancelled after a deadline.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field


@dataclass
class Outcome:
    due: float
    picked: float
    done: float
    status: int  # 0 for a socket error or a timeout
    body: bytes = b""


@dataclass
class RunResult:
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    not_sent: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep_alive = 0, lines[0].startswith("HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            keep_alive = value == "keep-alive" or (keep_alive and value != "close")
    body = await reader.readexactly(length) if length else b""
    return status, keep_alive, body


async def _run(host: str, port: int, requests: list[bytes], rate: float, connections: int,
               request_timeout_s: float) -> RunResult:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    result = RunResult()

    def error(kind: str) -> None:
        result.errors[kind] = result.errors.get(kind, 0) + 1

    async def pacer() -> None:
        t0 = loop.time() + 0.02
        for i, request in enumerate(requests):
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((due, request))
        for _ in range(connections):
            queue.put_nowait(None)

    async def connection() -> None:
        reader = writer = None
        while (item := await queue.get()) is not None:
            due, request = item
            picked = loop.time()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                status, keep_alive, body = await asyncio.wait_for(
                    _read_response(reader), request_timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    asyncio.TimeoutError, ValueError, IndexError) as exc:
                error(type(exc).__name__)
                result.outcomes.append(Outcome(due, picked, loop.time(), 0))
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            result.outcomes.append(Outcome(due, picked, loop.time(), status, body))
            if not keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(pacer(), *(connection() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - start
    return result


def run_fixed_rate(host: str, port: int, requests: list[bytes], rate: float, *,
                   connections: int = 8, request_timeout_s: float = 5.0,
                   deadline_s: float | None = None) -> RunResult:
    """Send `requests` at `rate` per second; give up (and count the rest as not sent) after
    `deadline_s` (default: the planned duration plus 15 s)."""
    deadline_s = deadline_s or len(requests) / rate + 15

    async def bounded() -> RunResult:
        task = asyncio.ensure_future(_run(host, port, requests, rate, connections, request_timeout_s))
        try:
            return await asyncio.wait_for(task, deadline_s)
        except asyncio.TimeoutError:
            return RunResult(errors={"deadline": 1}, not_sent=len(requests))

    return asyncio.run(bounded())


def http_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]
