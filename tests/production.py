"""The single box as deploy/ sets it up in production, for tests: Debian's Caddy running the
repository's Caddyfile in front of the app (bench/caddy.py), and the app started with the
commands of the repository's systemd unit. Loopback only; every wait is bounded; everything is
stopped whatever happens."""
from __future__ import annotations

import http.client
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import bench.caddy
from bench.caddy import DOMAIN, find_caddy, unverified_tls
from tests.server import ROOT, wait_until_healthy

UNIT = ROOT / "deploy" / "liveinsight.service"
_TLS = unverified_tls()  # made once: a context costs tens of ms


def need_caddy() -> None:
    if find_caddy() is None:
        pytest.skip("Caddy is not installed: `make test` installs Debian's caddy when run as root "
                    "(apt-get install caddy)")


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to Caddy on 127.0.0.1 from a chosen loopback address (127.0.1.2 is another client
    to the app, in another /24), asking for the DOMAIN's certificate, unverified."""

    def __init__(self, port: int, source: str, timeout: float):
        super().__init__("127.0.0.1", port, timeout=timeout, context=_TLS, source_address=(source, 0))

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does: no 40 ms stalls
        self.sock = self._context.wrap_socket(sock, server_hostname=DOMAIN)


class Caddy(bench.caddy.Caddy):
    """bench/caddy.py's Caddy, which a test can send requests through."""

    def start(self, timeout_s: float = 30) -> "Caddy":
        need_caddy()
        return super().start(timeout_s)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                source: str = "127.0.0.1", timeout: float = 10) -> tuple[int, dict, bytes]:
        connection = _LoopbackHTTPS(self.https_port, source, timeout)
        try:
            connection.request(method, path, body=body,
                               headers={"Host": f"{DOMAIN}:{self.https_port}", **(headers or {})})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


class Service:
    """The app as deploy/liveinsight.service runs it: its Environment, its ExecStartPre and its
    ExecStart, in its WorkingDirectory, with the code at this checkout, the state directory in
    `state` (made 0700, as StateDirectory= does) and the port `port`. start() and kill() are
    what systemd does on start and on a crash's restart; stop() is `systemctl stop`."""

    def __init__(self, state: Path, port: int, **extra_env: str):
        self.state, self.port = state, port
        unit = (UNIT.read_text().replace("/opt/liveinsight", str(ROOT))
                .replace("/var/lib/liveinsight", str(state)).replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
        environment = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("Environment=")]
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(state),
                    **dict(pair.split("=", 1) for pair in environment), **extra_env}
        self.cwd = settings["WorkingDirectory"]
        self.pre = shlex.split(settings["ExecStartPre"])
        self.command = shlex.split(settings["ExecStart"])
        self.stop_timeout_s = float(settings["TimeoutStopSec"])
        self.proc: subprocess.Popen | None = None
        self.log_path = state.parent / "service.log"

    def run(self, *args: str) -> str:
        """A command of bin/liveinsight in the service's environment (an operator's sudo -u)."""
        done = subprocess.run([str(ROOT / "bin" / "liveinsight"), *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, timeout_s: float = 60) -> "Service":
        self.state.mkdir(mode=0o700, exist_ok=True)
        with open(self.log_path, "ab") as log:
            subprocess.run(self.pre, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                           check=True, timeout=120)
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if wait_until_healthy(self.proc, self.port, timeout_s, "the service", self.log):
            return self
        self.kill()
        raise AssertionError(f"the service did not answer within {timeout_s:.0f} s:\n{self.log()}")

    def stop(self) -> float:
        """SIGTERM to the main process, as KillMode=mixed sends it; SIGKILL to what is left at
        TimeoutStopSec. Returns the seconds it took to stop."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the service did not stop within TimeoutStopSec:\n{self.log()}")
        self.kill()  # KillMode=mixed: whatever the main process left behind
        return time.monotonic() - started

    def kill(self) -> None:
        """kill -9 of every process of the service (a crash, or the OOM killer)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
