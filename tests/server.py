"""A real server for tests that need one: gunicorn started as `make run` starts it (what it serves
and how from gunicorn.conf.py in the project folder), on a free loopback port, with its own SQLite file,
instance folder and HOME. Every wait is bounded, and the server is stopped whatever happens."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from app.auth.sites import create_site
from app.store.base import Site
from app.store.sqlite import SQLiteStore
from tests.conftest import CHROME_UA

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(proc: subprocess.Popen, port: int, timeout_s: float, what: str, log) -> bool:
    """Whether GET /healthz on 127.0.0.1:port answers 200 within timeout_s; an AssertionError
    with `log()` if `proc` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    return False


class Server:
    def __init__(self, folder: Path, workers: int = 2, **env: str):
        self.folder, self.workers = folder, workers
        self.db_path = folder / "liveinsight.db"
        self.env = {**os.environ, "LIVEINSIGHT_STORE": f"sqlite:///{self.db_path}",
                    "LIVEINSIGHT_INSTANCE": str(folder / "instance"), "HOME": str(folder / "home"),
                    "LIVEINSIGHT_RETENTION_THREAD": "0", **env}
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "gunicorn.log"

    def make_site(self) -> Site:
        store = SQLiteStore(str(self.db_path))
        store.create_schema()
        site = create_site(store, "Served", ["example.com"], int(time.time() * 1000), site_id="served")
        store.close()
        return site

    def start(self, timeout_s: float = 30) -> "Server":
        self.port = free_port()
        (self.folder / "home").mkdir(exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(GUNICORN), "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        if wait_until_healthy(self.proc, self.port, timeout_s, "gunicorn", self.log):
            return self
        self.stop()
        raise AssertionError(f"gunicorn did not answer /healthz within {timeout_s:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def worker_pids(self) -> list[int]:
        """The worker processes' pids (the master's children)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return sorted(map(int, children))

    def aggregator_pid(self) -> int | None:
        """The process holding the store's aggregator lock (the one that aggregates), from
        /proc/locks."""
        lock = Path(f"{self.db_path}.aggregator-lock")
        if not lock.exists():
            return None
        inode = lock.stat().st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()  # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
            if parts[1] == "FLOCK" and parts[3] == "WRITE" and int(parts[5].rsplit(":", 1)[1]) == inode:
                return int(parts[4])
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 10) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def send_events(self, site: Site, events: list[dict], timeout: float = 10) -> tuple[int, dict]:
        status, _, body = self.request(
            "POST", "/api/events", json.dumps({"events": events}).encode(), timeout=timeout,
            headers={"Content-Type": "application/json", "X-API-Key": site.tracker_key,
                     "User-Agent": CHROME_UA, "Origin": "https://example.com"})
        return status, json.loads(body or b"{}")
