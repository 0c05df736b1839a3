"""The single box as `make run` serves it: gunicorn with gunicorn.conf.py in front of the app, on
loopback. What only a real server shows: forwarded headers, chunked bodies, the control socket,
health, and a backup taken while events arrive, restored into a working server."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest

from app.store.sqlite import SQLiteStore
from tests.server import ROOT, Server

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the single box


@pytest.fixture
def server(tmp_path, backend):
    server = Server(tmp_path)
    server.site = server.make_site()
    server.start()
    yield server
    server.stop()


def event(**fields) -> dict:
    return {"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": int(time.time() * 1000),
            "user_id": "visitor-1", "session_id": "session-1", "url": "https://example.com/", **fields}


def test_a_client_cannot_claim_https_with_a_forwarded_header(server):
    """gunicorn trusts X-Forwarded-Proto from 127.0.0.1 by default; with LIVEINSIGHT_PROXIES=0
    (no proxy in front) nothing may, or a plain-HTTP client would get HSTS and Secure cookies."""
    status, headers, _ = server.request("GET", "/login", headers={"X-Forwarded-Proto": "https",
                                                                  "X-Forwarded-Ssl": "on"})
    assert status in (200, 302)
    assert "Strict-Transport-Security" not in headers
    assert all("Secure" not in value for name, value in headers.items() if name.lower() == "set-cookie")


def test_a_chunked_body_over_the_limit_is_413(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-API-Key: " + server.site.tracker_key.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        body = b'{"events": [' + b" " * 300_000 + b"]}"
        try:
            for start in range(0, len(body), 16_384):
                part = body[start:start + 16_384]
                sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before reading it all
        answer = sock.recv(400)
        assert answer.startswith(b"HTTP/1.1 413"), answer


def test_each_connection_carries_one_request_so_both_workers_share_the_load(server):
    """A kept-alive connection stays with the worker that accepted it (in the bench, 16 of them
    went to one worker while the other idled): the server answers one request per connection
    and closes it, so that every request goes to a worker free to accept it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        sock.sendall(request * 2)
        received = b""
        while chunk := sock.recv(4096):  # until the server closes the connection
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 1, received
    assert b"connection: close" in received.lower()


def test_no_control_socket_is_shared_between_instances(server):
    """gunicorn 27 would listen on ~/.gunicorn/gunicorn.ctl, one path for every instance of a user."""
    assert server.request("GET", "/healthz")[0] == 200
    assert not (server.folder / "home" / ".gunicorn").exists()
    assert "Control socket" not in server.log()


def test_a_backup_taken_during_ingestion_restores_into_a_working_server_with_nothing_lost(server):
    acknowledged: list[tuple[float, list[str]]] = []  # (when the 202 came, the batch's event ids)
    stop = threading.Event()

    def ingest():
        for n in range(2_000):  # bounded: at most 2,000 batches, and stopped below
            if stop.is_set():
                return
            batch = [event(session_id=f"s{n}", user_id=f"v{n}") for _ in range(5)]
            status, answer = server.send_events(server.site, batch)
            assert status == 202 and answer["data"]["accepted"] == 5
            acknowledged.append((time.monotonic(), [e["event_id"] for e in batch]))

    sender = threading.Thread(target=ingest, daemon=True)
    sender.start()
    time.sleep(1.0)
    backup_path = server.folder / "backup.db"
    started = time.monotonic()
    done = subprocess.run([str(ROOT / "bin" / "liveinsight"), "backup", str(backup_path)], env=server.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)  # ingestion goes on after the backup, into the live file only
    stop.set()
    sender.join(timeout=30)
    assert not sender.is_alive()
    before_backup = {i for when, ids in acknowledged if when < started for i in ids}
    assert len(before_backup) >= 50 and len(acknowledged) * 5 > len(before_backup)

    # Restore as README says: stop the server, put the copy in place of the file (and drop the
    # old file's -wal and -shm), start it again.
    server.stop()
    for suffix in ("-wal", "-shm"):
        server.db_path.with_name(server.db_path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup_path, server.db_path)
    server.start()
    restored = SQLiteStore(str(server.db_path))
    stored = {e["event_id"] for e in restored.recent_events(server.site.site_id, 100_000)}
    assert before_backup <= stored  # everything acknowledged before the backup began is there
    status, answer = server.send_events(server.site, [event(session_id="after-restore")])
    assert status == 202 and answer["data"]["accepted"] == 1
    restored.close()


def test_killing_a_web_worker_and_the_aggregator_mid_load_loses_nothing_and_counts_each_event_once(server):
    """kill -9 of a worker that only serves requests, then of the one that aggregates, while
    events arrive: gunicorn replaces them, another process takes over the aggregation at once,
    and every acknowledged event is stored and counted exactly once (a checkpoint that skipped
    or repeated a batch would under- or over-count)."""
    import os
    import signal

    acknowledged: dict[str, str] = {}  # event id -> type, of events in 202 answers
    failures = 0
    stop = threading.Event()

    def ingest():
        nonlocal failures
        for n in range(3_000):  # bounded
            if stop.is_set():
                return
            batch = [event(session_id=f"s{n % 50}", user_id=f"v{n % 50}",
                           type="page_view" if i % 2 == 0 else "heartbeat") for i in range(4)]
            try:
                status, answer = server.send_events(server.site, batch, timeout=5)
            except OSError:  # the worker serving it was killed: not acknowledged, the tracker retries
                failures += 1
                continue
            if status == 202:
                acknowledged.update((e["event_id"], e["type"]) for e in batch)

    sender = threading.Thread(target=ingest, daemon=True)
    sender.start()
    time.sleep(1.0)
    aggregator = server.aggregator_pid()
    assert aggregator in server.worker_pids()
    web_only = next(pid for pid in server.worker_pids() if pid != aggregator)
    os.kill(web_only, signal.SIGKILL)
    time.sleep(1.0)
    os.kill(aggregator, signal.SIGKILL)
    time.sleep(1.5)
    stop.set()
    sender.join(timeout=30)
    assert not sender.is_alive() and len(acknowledged) > 200

    store = SQLiteStore(str(server.db_path))
    deadline = time.monotonic() + 20
    while store.read_log(1):  # a new aggregator took over and catches up
        assert time.monotonic() < deadline, "the log was never folded after the aggregator was killed"
        time.sleep(0.05)
    assert server.aggregator_pid() not in (None, aggregator)
    stored = {e["event_id"]: e["type"] for e in store.recent_events(server.site.site_id, 100_000)}
    assert acknowledged.items() <= stored.items()  # every acknowledged event is there
    counted = store.sum_counters(server.site.site_id, "events", "type", 0, 10 ** 6)
    assert counted == {kind: float(n) for kind, n in Counter(stored.values()).items()}  # each once
    store.close()


def test_slow_clients_cannot_starve_the_server(server):
    """Clients that send part of a request and stop (slowloris) each hold a socket and a
    coroutine, not a worker: a normal request is still answered at once. With gunicorn's sync
    workers, two such clients stalled a two-worker server for good."""
    stalled = []
    try:
        for n in range(60):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if n % 2:  # the request line and part of the headers
                sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nX-API-Key: ")
            else:  # the headers and part of the body
                sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 5000\r\n\r\n{\"events\": [")
            stalled.append(sock)
        started = time.monotonic()
        assert server.request("GET", "/healthz", timeout=5)[0] == 200
        status, answer = server.send_events(server.site, [event()], timeout=5)
        assert status == 202 and answer["data"]["accepted"] == 1
        assert time.monotonic() - started < 2.0
    finally:
        for sock in stalled:
            sock.close()
