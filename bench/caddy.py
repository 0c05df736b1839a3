"""Caddy in front of a LiveInsight server on loopback, as deploy/Caddyfile sets it up in
production, for the bench (`--proxy caddy`) and the tests (tests/production.py): Debian's caddy
running the repository's Caddyfile, its settings in the environment as on a server, but with
unprivileged ports, no admin endpoint, `tls internal` for host "localhost" and its data in a
folder of its own. Every wait is bounded; stop() always stops it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from bench import procfs

ROOT = Path(__file__).resolve().parents[1]
CADDYFILE = ROOT / "deploy" / "Caddyfile"
DOMAIN = "localhost"  # Caddy's internal authority issues it a certificate, as `tls internal` does for a trial


def find_caddy() -> str | None:
    return shutil.which("caddy")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unverified_tls() -> ssl.SSLContext:
    """TLS that takes Caddy's internal authority's certificate (it is not in any trust store)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


class Caddy:
    def __init__(self, folder: Path, upstream_port: int):
        self.folder, self.upstream_port = folder, upstream_port
        self.https_port = self.http_port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "caddy.log"

    @property
    def origin(self) -> str:
        return f"https://{DOMAIN}:{self.https_port}"

    def start(self, timeout_s: float = 30) -> "Caddy":
        caddy = find_caddy()
        if caddy is None:
            raise RuntimeError("caddy is not installed (apt-get install caddy)")
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
            self.proc = subprocess.Popen([caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"caddy exited with {self.proc.returncode}:\n{self.log()}")
            if self._handshakes():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"caddy did not take HTTPS connections within {timeout_s:.0f} s:\n{self.log()}")

    def _handshakes(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.https_port), timeout=2) as sock:
                with unverified_tls().wrap_socket(sock, server_hostname=DOMAIN):
                    return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def memory_kb(self, field: str = "VmRSS", source: str = "status") -> int:
        """Caddy's VmRSS or Pss in kB (bench/procfs.py)."""
        return procfs.memory_kb(self.proc.pid, field, source) or 0

    def cpu_s(self) -> float:
        return procfs.cpu_s(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
