"""The single box as deploy/ sets it up in production, for tests: Debian's Caddy running the
repository's Caddyfile in front of the app, and the app started with the commands of the
repository's systemd unit. Loopback only; every wait is bounded; everything is stopped whatever
happens."""
from __future__ import annotations

import http.client
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.server import ROOT, free_port

CADDY = shutil.which("caddy")
CADDYFILE = ROOT / "deploy" / "Caddyfile"
UNIT = ROOT / "deploy" / "liveinsight.service"
DOMAIN = "localhost"  # Caddy's internal authority issues it a certificate, as `tls internal` does for a trial


def need_caddy() -> None:
    if CADDY is None:
        pytest.skip("Caddy is not installed: `make test` installs Debian's caddy when run as root "
                    "(apt-get install caddy)")


def unverified_tls() -> ssl.SSLContext:
    """TLS that takes Caddy's internal authority's certificate (it is not in any trust store)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


_TLS = unverified_tls()  # made once: a context loads the system's authorities in tens of ms


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to Caddy on 127.0.0.1 from a chosen loopback address (127.0.1.2 is another client
    to the app, in another /24), asking for the DOMAIN's certificate, unverified."""

    def __init__(self, port: int, source: str, timeout: float):
        super().__init__("127.0.0.1", port, timeout=timeout, context=_TLS, source_address=(source, 0))

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does: no 40 ms stalls
        self.sock = self._context.wrap_socket(sock, server_hostname=DOMAIN)


class Caddy:
    """`caddy run` with deploy/Caddyfile, its settings in the environment as on a server, but
    unprivileged ports, no admin endpoint and its data in `folder`."""

    def __init__(self, folder: Path, upstream_port: int):
        self.folder, self.upstream_port = folder, upstream_port
        self.https_port = self.http_port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "caddy.log"

    @property
    def origin(self) -> str:
        return f"https://{DOMAIN}:{self.https_port}"

    def start(self, timeout_s: float = 30) -> "Caddy":
        need_caddy()
        self.https_port, self.http_port = free_port(), free_port()
        home = self.folder / "caddy-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
               "LIVEINSIGHT_DOMAIN": DOMAIN, "LIVEINSIGHT_TLS": "internal",
               "LIVEINSIGHT_CADDY_ADMIN": "off", "LIVEINSIGHT_HTTP_PORT": str(self.http_port),
               "LIVEINSIGHT_HTTPS_PORT": str(self.https_port),
               "LIVEINSIGHT_UPSTREAM": f"127.0.0.1:{self.upstream_port}"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"caddy exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.request("GET", "/healthz", timeout=2)
                return self  # it answers over HTTPS (whatever the app behind it says)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"caddy did not answer over HTTPS within {timeout_s:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

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
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited with {self.proc.returncode}:\n{self.log()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
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
