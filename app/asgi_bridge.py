"""A WSGI app behind gunicorn's asyncio (ASGI) worker, so that slow clients cannot starve it.

gunicorn's sync workers give a connection a whole process until its request is read: two
clients that send a request line and stop stall a two-worker server. Its asyncio worker reads
requests in the event loop instead, so a slow or stalled client costs a coroutine and a socket,
and the app sees a request only once all of it has arrived. (gunicorn 27's asyncio worker
neither bounds those sockets by `worker_connections` nor times out a first request's headers:
a reverse proxy in front drops clients that never finish.) `ASGIBridge` then runs the WSGI app on that whole request in the event loop's own
thread and sends back what it answers.

Running the app in the loop's thread, not in a thread beside it, is what shares the load
between the workers: while a worker's app is busy its loop accepts no connection, so an idle
worker takes the next one (with the app in a thread of its own, the busy worker's loop went on
accepting and one worker could be handed every connection while the other idled: bench/README.md).
The app runs one request at a time per process, as a sync worker does, so SQLite's writers do
not queue up inside one process. The body is read up to the app's MAX_CONTENT_LENGTH and a byte
more: past it, the app answers 413 itself (werkzeug sees the length), and nothing more of an
oversized body is ever read into memory.

One kind of answer stays open: an event stream (app/live_push.py). The app answers the stream's
request as any other (access checks, the first event) and names the stream in a header of its
own; the bridge strips it, sends the answer without ending it, and hands the connection to the
`LiveHub`, which writes the next events as the aggregator folds new ones.
"""
from __future__ import annotations

import io
import sys
from typing import Callable, Iterable

from app.live_push import STREAM_HEADER, LiveHub, stream_key

Answer = tuple[int, list[tuple[str, str]], bytes]


class ASGIBridge:
    def __init__(self, wsgi_app: Callable, max_body: int, hub: LiveHub | None = None):
        self.wsgi_app, self.max_body, self.hub = wsgi_app, max_body, hub

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        body, declared = await self._read_body(scope, receive)
        environ = wsgi_environ(scope, body, declared)
        status, headers, content = self._call_app(environ)
        stream = next((value for name, value in headers if name == STREAM_HEADER), None)
        if stream is not None:  # no length: the answer goes on (and its key is ours alone)
            headers = [(name, value) for name, value in headers if name not in (STREAM_HEADER, "Content-Length")]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]})
        if stream is None or self.hub is None:
            await send({"type": "http.response.body", "body": content})
            return
        await send({"type": "http.response.body", "body": content, "more_body": True})
        await self.hub.serve(stream_key(stream), receive, send)

    async def _read_body(self, scope: dict, receive: Callable) -> tuple[bytes, int]:
        """The request's body, and its length as the client declared it (or as read): at most
        max_body + 1 bytes are kept."""
        chunks, size = [], 0
        while size <= self.max_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)[:self.max_body + 1]
        declared = next((int(value) for name, value in scope["headers"]
                         if name == b"content-length" and value.isdigit()), len(body))
        return body, max(declared, len(body))

    def _call_app(self, environ: dict) -> Answer:
        """Run the WSGI app and collect its whole answer."""
        started: dict = {}

        def start_response(status: str, headers: list, exc_info=None):
            started["status"], started["headers"] = int(status.split(" ", 1)[0]), headers
            return lambda data: started.setdefault("written", []).append(data)

        result: Iterable[bytes] = self.wsgi_app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return started["status"], started["headers"], b"".join(started.get("written", [])) + content

    @staticmethod
    async def _lifespan(receive: Callable, send: Callable) -> None:
        """Nothing to start or stop: the app and its background work are made at import."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def wsgi_environ(scope: dict, body: bytes, content_length: int) -> dict:
    """The WSGI environ of an ASGI HTTP request (PEP 3333: paths as latin-1 strings of their
    bytes; repeated headers joined with commas)."""
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0], "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "CONTENT_LENGTH": str(content_length),
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = scope["client"][0], str(scope["client"][1])
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").upper().replace("-", "_"), raw_value.decode("latin-1")
        if name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue  # the body is whole now, with the length above
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
