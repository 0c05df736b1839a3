"""Live push on the single box as `make run` serves it (gunicorn, two workers): a realtime
page's stream gets the new snapshot within a second of the event, for a member (by login) and
through a public link; the stream obeys the same access rules as the page, and ends when its
link is revoked."""
from __future__ import annotations

import re
import socket
import statistics
import time
import uuid

import pytest

from app.auth import links
from app.auth.members import add_member
from app.auth.users import create_user
from app.store.sqlite import SQLiteStore
from tests.server import Server

EVENTS = 20
PASSWORD = "a long enough password"


class Stream:
    """An open event stream, read event by event (a raw socket: the answer never ends)."""

    def __init__(self, port: int, path: str, cookie: str = ""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                          f"Cookie: {cookie}\r\n\r\n".encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def _until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the stream ended")
            self.buffer += data
        part, self.buffer = self.buffer.split(end, 1)
        return part

    def event(self) -> str:
        """The next event's data (chunked framing and keepalive comments skipped)."""
        while True:
            block = self._until(b"\n\n").decode()
            lines = [line for line in block.splitlines() if not re.fullmatch(r"[0-9a-f]+\r?|\r?", line)]
            if any(line.startswith("event:") for line in lines):
                return "\n".join(line[6:] for line in lines if line.startswith("data: "))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served(tmp_path):
    server = Server(tmp_path)
    site = server.make_site()
    store = SQLiteStore(str(server.db_path))
    now = int(time.time() * 1000)
    _, token = links.create_link(store, site.site_id, "Office TV", "cli", now)
    member = create_user(store, "member@example.com", PASSWORD, now)
    add_member(store, site.site_id, member.email, "viewer", now)
    create_user(store, "stranger@example.com", PASSWORD, now)
    store.close()
    server.start()
    yield server, site, token
    server.stop()


def log_in(server: Server, email: str) -> str:
    """The session cookie of a login through the real login form."""
    status, headers, body = server.request("GET", "/login")
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    cookie = headers["set-cookie"].split(";", 1)[0]  # gunicorn's ASGI worker sends names in lower case
    status, headers, _ = server.request(
        "POST", "/login", f"csrf_token={csrf}&email={email}&password={PASSWORD.replace(' ', '+')}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    assert status == 302, "login failed"
    return headers["set-cookie"].split(";", 1)[0]


def page_view(path: str) -> dict:
    return {"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": int(time.time() * 1000),
            "user_id": uuid.uuid4().hex[:12], "session_id": uuid.uuid4().hex, "url": f"https://example.com{path}"}


def test_a_stream_gets_each_new_snapshot_within_a_second_of_its_event(served, record_property):
    server, site, token = served
    member = Stream(server.port, f"/sites/{site.site_id}/live/stream", log_in(server, "member@example.com"))
    public = Stream(server.port, f"/share/{token}/live/stream")
    assert (member.status, public.status) == (200, 200)
    assert 'id="w-current-visitors"' in member.event() and 'id="w-current-visitors"' in public.event()
    delays = []
    for n in range(EVENTS):
        sent = time.monotonic()
        assert server.send_events(site, [page_view(f"/pushed-{n}")])[0] == 202
        while f"/pushed-{n}" not in member.event():
            pass
        delays.append(time.monotonic() - sent)
        while f"/pushed-{n}" not in public.event():  # the same moment, rendered for the link
            pass
    p95 = statistics.quantiles(delays, n=20)[-1]
    record_property("push_delay_median_s", round(statistics.median(delays), 3))
    record_property("push_delay_p95_s", round(p95, 3))
    print(f"event -> pushed snapshot: median {statistics.median(delays):.3f} s, p95 {p95:.3f} s")
    assert p95 <= 1.0
    member.close()
    public.close()


def test_a_stream_answers_as_its_page_does_and_ends_when_its_link_is_revoked(served):
    server, site, token = served
    anonymous = server.request("GET", f"/sites/{site.site_id}/live/stream")
    assert anonymous[0] == 302  # to the login
    stranger = server.request("GET", f"/sites/{site.site_id}/live/stream",
                              headers={"Cookie": log_in(server, "stranger@example.com")})
    assert stranger[0] == 404
    public = Stream(server.port, f"/share/{token}/live/stream")
    public.event()
    store = SQLiteStore(str(server.db_path))
    store.revoke_public_link(links.token_hash(token), int(time.time() * 1000))
    store.close()
    server.send_events(site, [page_view("/after")])  # the next snapshot finds the link gone
    with pytest.raises(EOFError):
        public.event()
    public.close()
    assert server.request("GET", f"/share/{token}/live/stream")[0] == 404
