"""Production on one box, as deploy/ sets it up: Debian's Caddy with the repository's Caddyfile
(HTTPS from Caddy's internal authority, as `tls internal` gives a trial) in front of the app
started with the commands of the repository's systemd unit. What the proxy must not change
(client addresses, HTTPS, HSTS), what it must stop (forged headers, slow clients), and that a
stop or a crash of the service under load loses nothing acknowledged."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest

from app.store.sqlite import SQLiteStore
from tests.conftest import CHROME_UA
from bench.caddy import unverified_tls
from tests.production import UNIT, Caddy, Service, need_caddy
from tests.server import ROOT, free_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The service, with a site for localhost, and Caddy in front of it."""
    need_caddy()
    folder = tmp_path_factory.mktemp("stack")
    service = Service(folder / "state", free_port())
    caddy = Caddy(folder, service.port)
    try:
        service.start()
        service.site_id, service.key = service.run("create-site", "Stack", "--domain", "localhost").split()[-2:]
        caddy.start()
        yield service, caddy
    finally:
        caddy.stop()
        service.kill()


def event(**fields) -> dict:
    return {"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": int(time.time() * 1000),
            "user_id": "visitor-1", "session_id": "session-1", "url": "https://localhost/", **fields}


def send(caddy: Caddy, key: str, events: list[dict], source: str = "127.0.0.1", headers: dict | None = None,
         timeout: float = 10) -> tuple[int, dict]:
    status, _, body = caddy.request(
        "POST", "/api/events", json.dumps({"events": events}).encode(), source=source, timeout=timeout,
        headers={"Content-Type": "application/json", "X-API-Key": key, "User-Agent": CHROME_UA,
                 "Origin": caddy.origin, **(headers or {})})
    return status, json.loads(body or b"{}")


def test_the_unit_file_is_valid(tmp_path):
    """`systemd-analyze verify` on the unit, with its paths at this checkout (it checks that
    the commands exist): no error and no warning."""
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    unit = tmp_path / "liveinsight.service"
    unit.write_text(UNIT.read_text().replace("/opt/liveinsight", str(ROOT)))
    done = subprocess.run([verify, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_https_through_caddy_with_hsts_and_plain_http_redirected(stack):
    _, caddy = stack
    status, headers, _ = caddy.request("GET", "/login")
    assert status in (200, 302)
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert len(headers["x-request-id"]) == 36  # Caddy's id for the request, which the app logs
    with socket.create_connection(("127.0.0.1", caddy.http_port), timeout=10) as sock:
        sock.sendall(f"GET /login HTTP/1.1\r\nHost: localhost:{caddy.http_port}\r\nConnection: close\r\n\r\n".encode())
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 308") and "\r\nLocation: https://localhost" in answer


def test_the_app_sees_each_clients_own_address_and_a_forged_one_changes_nothing(stack):
    """What the app keeps of an address (its first three octets, docs/privacy.md) shows which
    address it saw: through Caddy, a client on 127.0.1.2 is 127.0.1.0, not Caddy's 127.0.0.1;
    one that claims another address in X-Forwarded-For (or Forwarded, X-Real-IP) is still itself."""
    service, caddy = stack
    plain, forged = event(), event()
    assert send(caddy, service.key, [plain], source="127.0.1.2")[0] == 202
    lies = {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.7", "Forwarded": "for=198.51.100.7"}
    assert send(caddy, service.key, [forged], source="127.0.2.2", headers=lies)[0] == 202
    store = SQLiteStore(str(service.state / "liveinsight.db"))
    try:
        seen = {e["event_id"]: e["ip"] for e in store.recent_events(service.site_id, 1000)}
    finally:
        store.close()
    assert (seen[plain["event_id"]], seen[forged["event_id"]]) == ("127.0.1.0", "127.0.2.0")


def test_slow_clients_at_the_proxy_do_not_delay_other_requests(stack):
    service, caddy = stack
    stalled = []
    try:
        for n in range(40):
            sock = caddy_socket(caddy)
            if n % 2:  # part of the headers
                sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: localhost\r\nX-API-Key: ")
            else:  # the headers and part of the body, which Caddy passes on to the app as it comes
                sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 5000\r\n\r\n{\"events\": [")
            stalled.append(sock)
        started = time.monotonic()
        for _ in range(5):
            assert caddy.request("GET", "/healthz", timeout=5)[0] == 200
        assert send(caddy, service.key, [event()], timeout=5)[0] == 202
        assert time.monotonic() - started < 2.0
    finally:
        for sock in stalled:
            sock.close()


def caddy_socket(caddy: Caddy):
    sock = socket.create_connection(("127.0.0.1", caddy.https_port), timeout=5)
    return unverified_tls().wrap_socket(sock, server_hostname="localhost")


def test_a_stop_and_a_crash_under_load_lose_nothing_acknowledged(tmp_path):
    """Events arrive through Caddy while the service is stopped (SIGTERM, as systemctl stop or
    restart sends) and started again, then killed (kill -9 of every process) and started again
    as Restart=always does: every event in a 202 answer is stored and counted exactly once."""
    need_caddy()
    service = Service(tmp_path / "state", free_port(), LIVEINSIGHT_RATE_LIMIT_INGEST="1000000 per minute")
    caddy = Caddy(tmp_path, service.port)
    acknowledged: dict[str, str] = {}  # event id -> type, of events in 202 answers
    refused = Counter()
    stop = threading.Event()
    try:
        service.start()
        site_id, key = service.run("create-site", "Crash", "--domain", "localhost").split()[-2:]
        caddy.start()

        def ingest():
            for n in range(20_000):  # bounded, and stopped below
                if stop.is_set():
                    return
                batch = [event(session_id=f"s{n % 40}", user_id=f"v{n % 40}",
                               type="page_view" if n % 3 else "heartbeat") for _ in range(2)]
                try:
                    status, _ = send(caddy, key, batch, timeout=5)
                except OSError:
                    status = "socket error"
                if status == 202:
                    acknowledged.update((e["event_id"], e["type"]) for e in batch)
                else:  # not acknowledged: the tracker keeps it and retries
                    refused[status] += 1
                    time.sleep(0.01)

        sender = threading.Thread(target=ingest, daemon=True)
        sender.start()
        time.sleep(1.0)
        stop_took_s = service.stop()
        service.start()
        time.sleep(1.0)
        service.kill()
        time.sleep(0.3)
        service.start()
        time.sleep(1.0)
        stop.set()
        sender.join(timeout=30)
        assert not sender.is_alive()
        assert stop_took_s < 10 and len(acknowledged) > 200 and refused, (stop_took_s, len(acknowledged), refused)

        store = SQLiteStore(str(service.state / "liveinsight.db"))
        deadline = time.monotonic() + 30
        while store.read_log(1):  # the aggregator catches up
            assert time.monotonic() < deadline, "the log was never folded after the restarts"
            time.sleep(0.05)
        stored = {e["event_id"]: e["type"] for e in store.recent_events(site_id, 100_000)}
        assert acknowledged.items() <= stored.items()
        counted = store.sum_counters(site_id, "events", "type", 0, 10 ** 6)
        assert counted == {kind: float(n) for kind, n in Counter(stored.values()).items()}
        store.close()
    finally:
        stop.set()
        caddy.stop()
        service.kill()
