"""`make bench`: one run of LiveInsight's load benchmark against the real server, on loopback.

    .venv/bin/python -m bench.run [--seconds 10] [--profile] [--keep] [--no-history | --only-history]

Measures a minimal Flask app under the same gunicorn settings first (the yardstick the
ingestion figures are divided by), then starts gunicorn (2 workers, app.server:application, the project's
gunicorn.conf.py) on a free 127.0.0.1 port with a fresh SQLite file, and measures, in order:

  (a) ingestion, single-event requests, 16 connections, wrk          (bench/ingest.lua)
  (b) ingestion, batches of 25 events, 16 connections, wrk
      both with freshness probes (an event's delay to the dashboard, under the load) and the
      aggregator's drain time once the load stops
  (c) ingestion latency at half of (a)'s throughput, fixed rate       (bench/loadgen.py)
      no event lost: events stored (SQLite, read-only) vs events acknowledged by 2xx answers
  (d) realtime reads with 1,000 visitors live: two HTMX fragments and /api/realtime (wrk)
  (e) the tracker's gzipped size and the server's memory (RSS) after the loads
  (f) reports over 13 months (≈100M events): the report fragments and GET /api/stats for 7d,
      30d and 12mo on a generated history (bench/history.py, cached in bench/results/), wrk;
      and the journey reports over its visit summaries and cohort counters (funnel, top paths,
      next/previous pages, cohort tables: GET /api/stats, and in-process, bench/journey_reports.py)
  (h) live push: 1,000 realtime pages' event streams open on one site (bench/sse_clients.py):
      the server's memory, each visit's delay to every stream, and (a)'s ingestion with and
      without them
  (i) alert rules: a minute's evaluation of 1,000 sites' rules, CPU on the single box, and the
      DynamoDB requests of one site's (bench/alert_rules.py)

and prints a table (each figure beside its target, PASS/MISS) and writes
bench/results/latest.json. Every load is bounded in count and time; the server is stopped at
the end whatever happens. See bench/README.md for how to read the results.
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from app.analytics.journeys import MAX_DAY_PATHS
from app.analytics.summaries import DONE
from bench import alert_rules, history, journey_reports, loadgen, procfs, sse_clients
from bench.caddy import Caddy, find_caddy, free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
APP_ROOT = ROOT  # where gunicorn and flask run (--app-root: a scratch copy of the project)
BIN = Path(sys.executable).parent  # the venv's bin: gunicorn, flask, py-spy
TRACKER_MIN = Path("tracker") / "dist" / "liveinsight.min.js"  # under APP_ROOT

HOST = "127.0.0.1"
WORKERS = 2
USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
ORIGIN = "https://bench.example"

# The load: fixed concurrency, bounded time.
WRK_THREADS = 2
WRK_CONNECTIONS = 16
WARMUP_S = 2
VISITORS = 2_000  # distinct user_id/session_id the ingestion load spreads over
BATCH = 25
HALF_LOAD_S = 5
HALF_LOAD_CONNECTIONS = 8
PROBE_EVERY_S = 0.5  # freshness probes during the loads
PROBE_POLL_S = 0.02
PROBE_GIVE_UP_S = 10.0
LIVE_VISITORS = 1_000
READ_CONNECTIONS = 4
READ_S = 3

# (f) reports over 13 months: one connection per worker, so latency is the time to serve one
# report with the server busy, not a queue; each endpoint for a few seconds after two probes.
HISTORY_CONNECTIONS = WORKERS
HISTORY_READ_S = 3
HISTORY_MAX_READ_S = 20  # slow endpoints get longer (6 x one request), up to this
HISTORY_PERIODS = ("7d", "30d", "12mo")
HISTORY_FILTER = "country=DE"  # the filtered 12-month report: read from the session cube
# A journey report's first request makes the digests of every sealed day of its period: it can
# outlast gunicorn's worker timeout (30 s), which kills the worker; the digests of the months
# finished before are kept, so a request again goes further. Tried this many times.
HISTORY_COLD_ATTEMPTS = 6
HISTORY_COLD_TIMEOUT_S = 300

# (h) live push: this many realtime pages open on the loaded site, this many visits timed.
STREAMS = 1_000
PUSHED_VISITS = 20
PUSH_ROUNDS = 2  # runs with the streams open, each between two without
PUSH_TARGET_S = 1.0  # p95, event -> snapshot on every stream
PUSH_MEMORY_TARGET_MB = 300  # the server's PSS with the streams open
PUSH_INGEST_DROP_TARGET = 0.10  # at most this share of (a)'s throughput lost to pushing
ALERT_CPU_TARGET_S = 2.0  # a minute's evaluation of 1,000 sites' rules

# Targets (2-core machine, see the brief in bench/README.md).
TARGET_SINGLE_RPS = 3_000
TARGET_BATCH_EPS = 20_000
# The same two as ratios to a minimal Flask app's requests/s under the same gunicorn settings,
# measured in the same run (the machine drifts by a third within an hour; the ratios far less).
TARGET_SINGLE_RATIO = 0.5
TARGET_BATCH_RATIO = 3.3
TARGET_HALF_LOAD_P95_MS = 5.0
TARGET_FRESHNESS_P95_MS = 1_000.0  # an event on the dashboard, under full load
TARGET_DRAIN_S = 2.0  # the aggregator catches up after the load stops
TARGET_FRAGMENT_P95_MS = 20.0
TARGET_TRACKER_GZIP_B = 1_500  # the budget tests/test_tracker_build.py enforces
TARGET_RSS_MB = 150.0
TARGET_HISTORY_12MO_P95_MS = 100.0  # unfiltered 12-month reports on SQLite (issue 4)
TARGET_PANEL_12MO_P95_MS, TARGET_PANEL_30D_P95_MS = 50.0, 25.0  # goals and events panels (issue 12)
NOISE_CORES = 0.25  # other processes using more CPU than this during a load: figures unreliable
STEAL_CORES = 0.10  # the same for CPU time the hypervisor gave to other guests


class BenchError(Exception):
    """The bench itself could not run (missing tool, server would not start...)."""


# --------------------------------------------------------------------------- helpers

def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: installing Debian's wrk package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env,
                          stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env,
                           stdout=subprocess.DEVNULL, check=False)
        path = shutil.which("wrk")
        if path:
            return path
    raise BenchError("the bench needs wrk (HTTP load generator): install it with "
                     "'sudo apt-get install wrk' (Debian/Ubuntu) and run 'make bench' again")


def ms(us: float) -> float:
    return round(us / 1000, 2)


# --------------------------------------------------------------------------- the server

class Server:
    """gunicorn serving LiveInsight (or another app) on a free loopback port, in its own process
    group, with the project's gunicorn.conf.py as `make run` has it."""

    def __init__(self, workdir: Path, env: dict[str, str], app: str | None = None):
        self.workdir, self.env, self.app = workdir, env, app
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = workdir / "gunicorn.log"

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, probe_path: str, timeout_s: float = 30) -> None:
        self.port = free_port()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "--workers", str(WORKERS), "--bind", f"{HOST}:{self.port}",
                 "--log-level", "warning", *([self.app] if self.app else [])],
                cwd=APP_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _ = get(self.port, probe_path, timeout=2)
                if status == 200 and len(self.workers()) == WORKERS:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"gunicorn did not answer 200 on {probe_path} within {timeout_s:.0f} s:\n"
                         f"{self.log_tail()}")

    def workers(self) -> list[int]:
        if not self.proc:
            return []
        children: list[int] = []
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        try:
            for task in task_dir.iterdir():
                text = (task / "children").read_text()
                children += [int(pid) for pid in text.split()]
        except OSError:
            pass
        return children

    def memory_kb(self, field: str = "VmRSS", source: str = "status") -> dict[int, int]:
        """A memory figure (kB) of the master and each worker (bench/procfs.py)."""
        sizes = {pid: procfs.memory_kb(pid, field, source) for pid in [self.proc.pid, *self.workers()]} if self.proc else {}
        return {pid: size for pid, size in sizes.items() if size is not None}

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the master and the workers."""
        return sum(procfs.cpu_s(pid) for pid in [self.proc.pid, *self.workers()]) if self.proc else 0.0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of master and workers
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created with start_new_session
            proc.wait(timeout=5)


def get(port: int, path: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_events(port: int, key: str, events: list[dict]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", "/api/events", body=json.dumps({"events": events}),
                     headers={"Content-Type": "application/json", "X-API-Key": key,
                              "User-Agent": USER_AGENT, "Origin": ORIGIN})
        response = conn.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, {"raw": body[:200].decode(errors="replace")}
    finally:
        conn.close()


def create_site(env: dict[str, str], name: str) -> tuple[str, str]:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "create-site", name, "--domain", "bench.example"],
        cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"flask create-site failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    site_id, key = done.stdout.strip().splitlines()[-1].split()
    return site_id, key


def create_api_key(env: dict[str, str], site_id: str) -> str:
    """A secret key for the stats API, as a user makes one; returns the header to send."""
    done = subprocess.run([str(BIN / "flask"), "--app", "app", "create-api-key", site_id, "bench"],
                          cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"flask create-api-key failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return "Authorization: Bearer " + done.stdout.strip().splitlines()[-1]


BENCH_USER, BENCH_PASSWORD = "bench@bench.example", "bench-password-not-secret"


def log_in(server: "Server", env: dict[str, str]) -> str:
    """A dashboard login for the fragment reads, as a browser has one: an instance admin made
    with `flask create-user` (kept if there already), logged in through the form. Returns the
    Cookie header to send."""
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "create-user", BENCH_USER, "--admin", "--password", BENCH_PASSWORD],
        cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "exists already" not in done.stdout + done.stderr:
        raise BenchError(f"flask create-user failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        conn.request("GET", "/login")
        form = conn.getresponse()
        html = form.read().decode()
        cookie = form.getheader("Set-Cookie", "").split(";")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        body = urllib.parse.urlencode({"email": BENCH_USER, "password": BENCH_PASSWORD, "csrf_token": token})
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()
    if answer.status != 302:
        raise BenchError(f"logging in for the dashboard reads answered {answer.status}")
    return "Cookie: " + answer.getheader("Set-Cookie").split(";")[0]


# --------------------------------------------------------------------------- CPU

class CpuMeter:
    """Cores used by the server and by the load generator (wrk or this process) over a load."""

    def __init__(self, server: Server):
        self.server = server

    def __enter__(self) -> "CpuMeter":
        self.wall = time.monotonic()
        self.server_cpu = self.server.cpu_s()
        self.client_cpu = self._client_cpu()
        self.machine_cpu = self._machine_cpu()
        return self

    @staticmethod
    def _machine_cpu() -> tuple[float, float]:
        """(busy, steal) CPU seconds of the whole machine, from /proc/stat: busy is user, nice,
        system, irq and softirq of every process; steal is time the hypervisor gave away."""
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
        except (OSError, ValueError):
            return 0.0, 0.0
        return (user + nice + system + irq + softirq) / procfs.CLOCK_TICKS, steal / procfs.CLOCK_TICKS

    @staticmethod
    def _client_cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def __exit__(self, *_) -> None:
        wall = time.monotonic() - self.wall
        server = (self.server.cpu_s() - self.server_cpu) / wall
        client = (self._client_cpu() - self.client_cpu) / wall
        busy, steal = self._machine_cpu()
        machine, steal = (busy - self.machine_cpu[0]) / wall, (steal - self.machine_cpu[1]) / wall
        # "other": whatever else ran on the machine meanwhile (noise: tests, builds...);
        # "steal": CPU the hypervisor gave to other guests (noise we cannot see from here)
        self.cores = {"server": round(server, 2), "client": round(client, 2),
                      "other": round(max(0.0, machine - server - client), 2),
                      "steal": round(steal, 2)}


# --------------------------------------------------------------------------- wrk

def run_wrk(wrk: str, script: str, url: str, *, seconds: float, connections: int,
            threads: int, args: tuple = (), headers: tuple = (), timeout_s: float = 5) -> dict:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", f"{timeout_s:g}s",
           "-s", str(BENCH / script)]
    for header in headers:
        cmd += ["-H", header]
    cmd += [url, "--", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            stats = json.loads(line[len("BENCH_JSON "):])
            seconds_run = stats["duration_us"] / 1e6
            stats["rps"] = stats["requests"] / seconds_run if seconds_run else 0.0
            stats["socket_errors"] = sum(v for k, v in stats["errors"].items() if k != "status")
            return stats
    raise BenchError(f"wrk gave no result ({done.returncode}): {' '.join(cmd)}\n"
                     f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


@dataclass
class IngestRun:
    """One tagged batch of ingestion load, for throughput and the no-loss check."""
    name: str
    tag: str
    batch: int
    stats: dict = field(default_factory=dict)
    stored: int | None = None

    @property
    def acknowledged_events(self) -> int:  # events in requests that got a 2xx answer
        return self.stats.get("ok2xx", 0) * self.batch

    @property
    def sent_events(self) -> int:  # events in every request written (answered or not)
        return self.stats.get("sent", 0) * self.batch


def ingest_wrk(wrk: str, server: Server, key: str, name: str, batch: int, seconds: float,
               runs: list[IngestRun]) -> IngestRun:
    run = IngestRun(name, f"{secrets.token_hex(4)}{name}", batch)
    run.stats = run_wrk(wrk, "ingest.lua", server.base, seconds=seconds,
                        connections=WRK_CONNECTIONS, threads=WRK_THREADS,
                        args=(key, batch, run.tag, VISITORS))
    runs.append(run)
    return run


# --------------------------------------------------------------------------- half load

def event(tag: str, n: int, ts: int, user: int, path: str, kind: str = "page_view") -> dict:
    return {"event_id": f"{tag}-{n}", "type": kind, "timestamp": ts,
            "user_id": f"visitor-{user}", "session_id": f"session-{user}",
            "url": f"https://bench.example{path}", "referrer": "", "title": "Bench page"}


def half_load(server: Server, key: str, rate: float, seconds: float) -> tuple[IngestRun, dict]:
    run = IngestRun("c-half-load", f"{secrets.token_hex(4)}c", 1)
    now = int(time.time() * 1000)
    paths = ["/", "/pricing", "/blog/", "/docs/api", "/signup"]
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "X-API-Key": key,
               "Origin": ORIGIN}
    count = max(1, int(rate * seconds))
    requests = [
        loadgen.http_request("POST", "/api/events", f"{HOST}:{server.port}", headers, json.dumps(
            event(run.tag, i, now, random.randint(1, VISITORS), random.choice(paths),
                  random.choice(("page_view", "page_view", "heartbeat")))).encode())
        for i in range(count)]
    result = loadgen.run_fixed_rate(HOST, server.port, requests, rate,
                                    connections=HALF_LOAD_CONNECTIONS)
    ok = [o for o in result.outcomes if 200 <= o.status < 300]
    accepted = 0
    for o in ok:
        try:
            accepted += json.loads(o.body)["data"]["accepted"]
        except (ValueError, KeyError, TypeError):
            pass
    latencies = [(o.done - o.due) * 1000 for o in result.outcomes if o.status]
    service = [(o.done - o.picked) * 1000 for o in result.outcomes if o.status]
    span = (max(o.done for o in result.outcomes) - min(o.due for o in result.outcomes)
            if result.outcomes else 0)
    non2xx = [o.status for o in result.outcomes if o.status and not 200 <= o.status < 300]
    run.stats = {"sent": len(result.outcomes), "ok2xx": len(ok), "accepted": accepted,
                 "non2xx": len(non2xx), "non2xx_codes": " ".join(map(str, sorted(set(non2xx)))),
                 "socket_errors": sum(result.errors.values()), "error_kinds": result.errors,
                 "not_sent": result.not_sent}
    pct = (lambda xs, p: round(loadgen.percentile(xs, p), 2) if xs else None)
    summary = {
        "target_rate": round(rate, 1),
        "achieved_rate": round(len(result.outcomes) / span, 1) if span else 0.0,
        "requests": len(requests), "seconds": round(result.elapsed_s, 2),
        "latency_ms": {p: pct(latencies, q) for p, q in (("p50", 50), ("p95", 95), ("p99", 99),
                                                          ("max", 100))},
        "service_ms": {p: pct(service, q) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
        "connections": HALF_LOAD_CONNECTIONS,
        **run.stats,
    }
    return run, summary


# --------------------------------------------------------------------------- freshness

class FreshnessProbe:
    """While a load runs, every PROBE_EVERY_S: a page view of a new visitor on a site of its
    own, then GET /api/realtime until that page is live; records the time from sending the
    event to the figure showing it (what a dashboard watcher waits)."""

    def __init__(self, server: Server, key: str, site_id: str, api_key: str):
        self.server, self.key, self.site_id = server, key, site_id
        self.headers = dict([api_key.split(": ", 1)])
        self.delays_ms: list[float] = []
        self.gave_up = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freshness-probe", daemon=True)

    def __enter__(self) -> "FreshnessProbe":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(PROBE_GIVE_UP_S + 5)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(PROBE_EVERY_S):
            n += 1
            tag = f"probe-{secrets.token_hex(4)}"
            path = f"/{tag}"
            sent = time.monotonic()
            try:
                status, answer = post_events(self.server.port, self.key, [
                    event(tag, n, int(time.time() * 1000), n, path) | {"user_id": tag, "session_id": tag}])
                if status != 202 or answer["data"]["accepted"] != 1:
                    raise ValueError(f"the probe was not accepted: {status} {answer}")
                while time.monotonic() - sent < PROBE_GIVE_UP_S:
                    status, body = get(self.server.port, f"/api/realtime?site={self.site_id}", headers=self.headers)
                    if status == 200 and any(p["name"] == path for p in json.loads(body)["data"]["live_pages"]):
                        self.delays_ms.append((time.monotonic() - sent) * 1000)
                        break
                    time.sleep(PROBE_POLL_S)
                else:
                    self.gave_up += 1
            except (OSError, ValueError, KeyError):
                self.gave_up += 1

    def summary(self) -> dict:
        pct = (lambda p: round(loadgen.percentile(self.delays_ms, p), 1) if self.delays_ms else None)
        return {"probes": len(self.delays_ms), "gave_up": self.gave_up, "p50_ms": pct(50), "p95_ms": pct(95),
                "max_ms": round(max(self.delays_ms), 1) if self.delays_ms else None}


def drain_time(db_path: Path, timeout_s: float = 30) -> float | None:
    """Seconds from now until the aggregator's checkpoint reaches the end of the event log as it
    is now (the log's backlog when a load stops); None if it does not within timeout_s."""
    started = time.monotonic()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        end = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        while time.monotonic() - started < timeout_s:
            if db.execute("SELECT n FROM log_state WHERE name = 'checkpoint'").fetchone()[0] >= end:
                return round(time.monotonic() - started, 3)
            time.sleep(0.01)
        return None
    finally:
        db.close()


def counted_once(db_path: Path, site_id: str) -> dict:
    """With the log folded: page views and events stored vs counted in the day counters."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        def one(sql: str, *args) -> float:
            return db.execute(sql, (site_id, *args)).fetchone()[0] or 0
        counters = "SELECT SUM(n) FROM counters WHERE site_id = ? AND grain = 'day' AND metric = ? AND dimension = ?"
        return {"pageviews_stored": one("SELECT COUNT(*) FROM events WHERE site_id = ? AND type = 'page_view'"),
                "pageviews_counted": int(one(counters, "pageviews", "")),
                "events_stored": one("SELECT COUNT(*) FROM events WHERE site_id = ?"),
                "events_counted": int(one(counters, "events", "type"))}
    finally:
        db.close()


def minimal_app_rps(wrk: str, seconds: float) -> dict:
    """The yardstick (bench/minimal_app.py): requests/s of a Flask POST answering 202, under the
    same gunicorn settings and load as (a)."""
    workdir = Path(tempfile.mkdtemp(prefix="liveinsight-bench-minimal-"))
    server = Server(workdir, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, app="bench.minimal_app:application")
    try:
        server.start("/")
        run_wrk(wrk, "read.lua", server.base + "/", seconds=WARMUP_S, connections=WRK_CONNECTIONS,
                threads=WRK_THREADS, args=("POST", "{}"))
        with CpuMeter(server) as cpu:
            stats = run_wrk(wrk, "read.lua", server.base + "/", seconds=seconds, connections=WRK_CONNECTIONS,
                            threads=WRK_THREADS, args=("POST", "{}"))
        stats["cores"] = cpu.cores
        return stats
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- realtime

def make_visitors_live(server: Server, key: str, count: int) -> dict:
    """`count` distinct visitors, each with one page view now, through the real API."""
    tag = f"{secrets.token_hex(4)}live"
    paths = [f"/blog/post-{i}" for i in range(1, 16)] + ["/", "/pricing", "/docs/api", "/signup"]
    now = int(time.time() * 1000)
    accepted, statuses = 0, []
    for start in range(0, count, 50):
        batch = [event(tag, n, now, n, random.choice(paths)) | {"user_id": f"live-{n}",
                                                                 "session_id": f"live-s-{n}"}
                 for n in range(start, min(count, start + 50))]
        status, body = post_events(server.port, key, batch)
        statuses.append(status)
        accepted += (body.get("data") or {}).get("accepted", 0)
    return {"accepted": accepted, "statuses": sorted(set(statuses))}


def read_endpoints(wrk: str, server: Server, site_id: str, seconds: float, cookie: str, api_key: str) -> dict:
    endpoints = {
        "current-visitors (HX)": (f"/sites/{site_id}/widgets/current-visitors", ("HX-Request: true", cookie)),
        "live-pages (HX)": (f"/sites/{site_id}/widgets/live-pages", ("HX-Request: true", cookie)),
        # the realtime page's one refresh: every live widget from one moment
        "live snapshot (HX)": (f"/sites/{site_id}/live", ("HX-Request: true", cookie)),
        "/api/realtime": (f"/api/realtime?site={site_id}", (api_key,)),  # as an API client reads it
    }
    results = {}
    for name, (path, headers) in endpoints.items():
        run_wrk(wrk, "read.lua", server.base + path, seconds=1, connections=READ_CONNECTIONS,
                threads=1, headers=headers)  # warm-up: templates compiled, caches filled
        with CpuMeter(server) as cpu:
            results[name] = run_wrk(wrk, "read.lua", server.base + path, seconds=seconds,
                                    connections=READ_CONNECTIONS, threads=1, headers=headers)
        results[name].update(path=path, cores=cpu.cores)
    return results


# --------------------------------------------------------------------------- stored events

def count_stored(db_path: Path, site_id: str, runs: list[IngestRun]) -> int:
    """Count what SQLite holds, read-only: per tagged run and in all for the site."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        for run in runs:  # event ids are TAG-...: a key range on the primary key
            run.stored = db.execute(
                "SELECT COUNT(*) FROM events WHERE site_id = ? AND event_id >= ? AND event_id < ?",
                (site_id, run.tag + "-", run.tag + ".")).fetchone()[0]
        return db.execute("SELECT COUNT(*) FROM events WHERE site_id = ?", (site_id,)).fetchone()[0]
    finally:
        db.close()


# --------------------------------------------------------------------------- (f) 13 months

def history_endpoints(site_id: str, cookie: str) -> dict[str, tuple[str, tuple, str]]:
    """name -> (path, headers, period): the overview's widgets for 7 days, 30 days and 12
    months, the whole overview page, one filtered 12-month report and one filtered by a page
    (periods "12mo filtered", "<p> overview" and "30d page filter": no target)."""
    hx = ("HX-Request: true", cookie)
    endpoints = {}
    for period in HISTORY_PERIODS:
        endpoints[f"metrics (HX) {period}"] = (f"/sites/{site_id}/widgets/metrics?period={period}", hx, period)
        endpoints[f"chart (HX) {period}"] = (f"/sites/{site_id}/widgets/chart?period={period}", hx, period)
        endpoints[f"pages (HX) {period}"] = (f"/sites/{site_id}/widgets/pages?period={period}", hx, period)
        endpoints[f"overview page {period}"] = (f"/sites/{site_id}?period={period}", (cookie,), f"{period} overview")
        endpoints[f"/api/stats page,source {period}"] = (
            f"/api/stats?site={site_id}&period={period}&breakdown=page,source", (cookie,), period)
        for panel in ("goals", "events"):  # the goals and custom events panels (issue 12: their own targets)
            endpoints[f"{panel} (HX) {period}"] = (
                f"/sites/{site_id}/widgets/{panel}?period={period}", hx, f"{period} {panel}")
    endpoints[f"metrics (HX) 12mo {HISTORY_FILTER}"] = (
        f"/sites/{site_id}/widgets/metrics?period=12mo&{HISTORY_FILTER}", hx, "12mo filtered")
    endpoints["metrics (HX) 30d page=/"] = (f"/sites/{site_id}/widgets/metrics?period=30d&page=/", hx, "30d page filter")
    return endpoints


def timed_get(server: Server, path: str, headers: tuple, timeout: float = 120) -> tuple[float, bytes]:
    """One GET, its wall time (ms) and body; anything but 200 stops the bench."""
    started = time.monotonic()
    status, body = get(server.port, path, dict(h.split(": ", 1) for h in headers), timeout=timeout)
    elapsed = (time.monotonic() - started) * 1000
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
    return elapsed, body


def reports_over_history(args: argparse.Namespace, wrk: str, profiler: "Profiler") -> dict:
    """Section (f): the cached 13-month history (made or topped up first), served by gunicorn
    like the other sections, each report endpoint read with wrk after two timed probes; then
    the journey reports, in-process first (rolled back), then over HTTP."""
    started = time.monotonic()
    if args.history_db:
        db_path = args.history_db.resolve()
        meta = {"path": str(db_path), "cached": True, "site_id": history.SITE_ID, "given": True}
        try:  # the figures of the cache it was copied from, when there is one
            cached = json.loads(history.cache_paths(RESULTS)[1].read_text())
            meta.update({k: cached[k] for k in ("generated", "store", "timezone", "version")})
        except (OSError, ValueError, KeyError):
            pass
    else:
        log("(f) the 13-month history: cached, topped up or generated (bench/history.py)")
        meta = history.ensure(time.time_ns() // 1_000_000, RESULTS, log=log)
        db_path = Path(meta["path"])
    for line in history.describe(meta) if "store" in meta else []:
        log(f"    {line}")
    workdir = Path(tempfile.mkdtemp(prefix="liveinsight-bench-history-"))
    if not args.history_db:
        # Journey reports write digests into the file they read (and a scratch copy of the app
        # may change the schema): serve a copy, so the cache keeps none and every run's first
        # requests are cold. A few seconds (the file is in the page cache).
        shutil.copy2(db_path, workdir / db_path.name)
        db_path = workdir / db_path.name
        log(f"(f) serving a scratch copy of the history: {db_path}")
    prepare_s = time.monotonic() - started
    env = server_env(db_path)
    server = Server(workdir, env)
    site_id = meta["site_id"]
    out = {"db": str(db_path), "cached": meta.get("cached"), "prepare_s": round(prepare_s, 1),
           "history": {k: meta.get(k) for k in ("version", "timezone", "generated", "store",
                                                "generate_s", "topped_up_days", "top_up_s")},
           "connections": HISTORY_CONNECTIONS, "endpoints": {}, "journeys": {}}
    out["digests_before"] = digest_marks(db_path, site_id)
    if out["digests_before"]:
        log(f"(f) the file holds digests of {out['digests_before']} days or months already: "
            "the journey reports' first requests are not cold")
    log("(f) journey reports in-process (one transaction, rolled back): cold call, then "
        f"{journey_reports.WARM_CALLS} warm")
    try:
        out["in_process"] = journey_reports.in_process(db_path, site_id, time.time_ns() // 1_000_000, log=log)
    except Exception as exc:  # the reports are being built meanwhile: say what broke, time the rest
        log(f"(f) the in-process check failed: {type(exc).__name__}: {exc}")
        out["in_process"] = {"error": f"{type(exc).__name__}: {exc}",
                             "page": journey_reports.most_viewed_page(db_path, site_id, time.time_ns() // 1_000_000)}
    try:
        server.start("/tracker.js")
        log(f"(f) gunicorn up on {server.base} over {db_path.name}; reports for "
            f"{', '.join(HISTORY_PERIODS)} and 12mo with {HISTORY_FILTER}")
        cookie = log_in(server, env)
        for name, (path, headers, period) in history_endpoints(site_id, cookie).items():
            probes = [timed_get(server, path, headers) for _ in range(2)]  # warm-up: caches, pages
            r = read_endpoint(wrk, server, profiler, name, path, headers, period, probes)
            if path.startswith("/api/stats"):
                data = json.loads(probes[-1][1])["data"]
                metrics = data["summary"]["metrics"]
                r["figures"] = {"visitors": metrics["visitors"]["value"], "visits": metrics["visits"]["value"],
                                "pageviews": metrics["pageviews"]["value"],
                                "top_page": (data["breakdowns"]["page"]["rows"] or [{}])[0].get("value"),
                                "days": (date.fromisoformat(data["period"]["to"])
                                         - date.fromisoformat(data["period"]["from"])).days + 1}
            out["endpoints"][name] = r
        for report in journey_reports.reports(out["in_process"]["page"]):
            try:
                out["journeys"][report.name] = journey_endpoint(wrk, server, profiler, site_id, cookie, report)
            except (BenchError, ValueError, KeyError, TypeError) as exc:  # an answer of another shape
                log(f"    {report.name}: {type(exc).__name__}: {exc}")
                out["journeys"][report.name] = {"error": f"{type(exc).__name__}: {exc}", "first": report.first,
                                                "target_ms": report.target_ms}
    except BaseException:
        log("server log (tail):\n" + server.log_tail())
        raise
    finally:
        server.stop()
        profiler.wait()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def read_endpoint(wrk: str, server: Server, profiler: "Profiler", name: str, path: str, headers: tuple,
                  period: str, probes: list[tuple[float, bytes]]) -> dict:
    """wrk on one report endpoint, one connection per worker, for longer when its probes were
    slow (6 x one request, up to HISTORY_MAX_READ_S); py-spy meanwhile on the 12-month ones."""
    one = min(ms for ms, _ in probes)
    # wrk takes whole seconds
    seconds = min(HISTORY_MAX_READ_S, max(HISTORY_READ_S, math.ceil(6 * one / 1000)))
    timeout = min(60, max(5, math.ceil(4 * max(ms for ms, _ in probes) / 1000)))
    if period.startswith("12mo") or period == "journey":  # the 12-month ones (panels, filtered) and journeys
        profiler.start("f_" + "".join(c if c.isalnum() else "_" for c in name).strip("_"),
                       server.workers(), seconds)
    with CpuMeter(server) as cpu:
        r = run_wrk(wrk, "read.lua", server.base + path, seconds=seconds,
                    connections=HISTORY_CONNECTIONS, threads=1, headers=headers,
                    timeout_s=timeout)
    profiler.wait()
    r.update(path=path, period=period, cores=cpu.cores, seconds=seconds,
             probe_ms=[round(ms, 1) for ms, _ in probes], bytes_per_answer=len(probes[-1][1]))
    log(f"    {name}: p50 {ms(r['latency_us']['p50'])} ms, p95 {ms(r['latency_us']['p95'])} ms "
        f"({r['requests']} requests in {seconds:g} s)")
    return r


def journey_endpoint(wrk: str, server: Server, profiler: "Profiler", site_id: str, cookie: str,
                     report: "journey_reports.Report") -> dict:
    """A journey report over HTTP: its first request alone (cold: it makes the digests of the
    sealed days; tried again if it fails, as when gunicorn kills a worker past its timeout),
    a second one, then wrk like the other endpoints. A server without the report (data lacks
    it) is noted, not timed."""
    path = f"/api/stats?site={site_id}&{report.query}"
    headers = (cookie,)
    wait_idle(server)  # wrk's last requests of the endpoint before may still run
    attempts: list[dict] = []
    for _ in range(HISTORY_COLD_ATTEMPTS):
        started = time.monotonic()
        try:
            status, body = get(server.port, path, dict(h.split(": ", 1) for h in headers),
                               timeout=HISTORY_COLD_TIMEOUT_S)
            error = None if status == 200 else f"HTTP {status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            status, body, error = None, b"", f"{type(exc).__name__}: {exc}"
        attempts.append({"ms": round((time.monotonic() - started) * 1000, 1), "status": status, "error": error})
        if status is not None and status < 500:
            break
        log(f"    {report.name}: first request failed after {attempts[-1]['ms']:,.0f} ms ({error}); again")
    # The first request's time; when it failed first, the time until one answered, tries included.
    out = {"path": path, "target_ms": report.target_ms, "first": report.first, "cold_attempts": attempts,
           "cold_ms": round(sum(a["ms"] for a in attempts), 1)}
    if attempts[-1]["error"] is not None:
        out["error"] = attempts[-1]["error"]
        log(f"    {report.name}: not timed: {out['error']}")
        return out
    data = json.loads(body).get("data") or {}
    if report.answer not in data:
        out["error"] = f"not served: data holds {sorted(data)[:6]}, no {report.answer!r}"
        log(f"    {report.name}: {out['error']}")
        return out
    out["figures"] = journey_reports.figures(report.answer, data[report.answer])
    second = timed_get(server, path, headers)
    r = read_endpoint(wrk, server, profiler, report.name, path, headers, "journey", [second])
    r.update(out)
    r["probe_ms"] = [attempts[-1]["ms"], r["probe_ms"][0]]
    log(f"    {report.name}: first request {attempts[0]['ms']:,.0f} ms"
        + (f" ({len(attempts)} attempts)" if len(attempts) > 1 else "") + f", second {second[0]:,.0f} ms")
    return r


def wait_idle(server: Server, timeout_s: float = 60) -> None:
    """Until the server's processes use next to no CPU (0.2 s at a time), at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = server.cpu_s()
        time.sleep(0.2)
        if server.cpu_s() - before < 0.02:
            return


def digest_marks(db_path: Path, site_id: str) -> int:
    """How many days and months the file holds digests of already (summaries.py's DONE marks),
    counted by SQLite itself, read-only."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM counters WHERE site_id = ? AND grain IN ('day', 'month') "
                          "AND metric = ?", (site_id, DONE)).fetchone()[0]
    finally:
        db.close()


# --------------------------------------------------------------------------- profiling

class Profiler:
    """py-spy on every worker while a load runs (raw collapsed stacks), with --profile."""

    def __init__(self, enabled: bool, outdir: Path):
        self.enabled, self.outdir = enabled, outdir
        self.procs: list[subprocess.Popen] = []
        self.files: dict[str, list[Path]] = {}

    def start(self, name: str, pids: list[int], seconds: float) -> None:
        if not self.enabled:
            return
        spy = BIN / "py-spy"
        if not spy.exists():
            raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        for pid in pids:
            out = self.outdir / f"profile-{name}-{pid}.txt"
            self.files.setdefault(name, []).append(out)
            self.procs.append(subprocess.Popen(
                [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                 "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def wait(self) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def summary(self, top: int = 25) -> dict:
        """Per scenario: the functions with the largest inclusive and self share of samples."""
        report = {}
        for name, files in self.files.items():
            inclusive: dict[str, int] = {}
            own: dict[str, int] = {}
            total = 0
            for path in files:
                if not path.exists():
                    continue
                for line in path.read_text(errors="replace").splitlines():
                    stack, _, n = line.rpartition(" ")
                    if not stack or not n.isdigit():
                        continue
                    n = int(n)
                    total += n
                    # "func (path/file.py:123)" -> "func (path/file.py)": rank functions, not lines
                    frames = [frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame
                              else frame for frame in stack.split(";")]
                    for frame in set(frames):
                        inclusive[frame] = inclusive.get(frame, 0) + n
                    own[frames[-1]] = own.get(frames[-1], 0) + n
            if not total:
                continue
            def share(counts: dict[str, int]) -> list[tuple[str, float]]:
                ranked = sorted(counts.items(), key=lambda kv: -kv[1])
                # gunicorn's own frames are on every stack: leave them out of the ranking
                ranked = [(f, c) for f, c in ranked if "gunicorn/" not in f and "<module>" not in f]
                return [(f, round(100 * c / total, 1)) for f, c in ranked[:top]]
            report[name] = {"samples": total, "inclusive_pct": share(inclusive),
                            "self_pct": share(own), "files": [str(p) for p in files]}
        return report


# --------------------------------------------------------------------------- report

@dataclass
class Row:
    metric: str
    value: float | str | None = None
    unit: str = ""
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""
    ok: bool | None = None  # explicit verdict for non-numeric checks
    label: str | None = None  # a verdict that is no target (e.g. NOISY)

    @property
    def verdict(self) -> str:
        if self.label is not None:
            return self.label
        if self.ok is not None:
            return "PASS" if self.ok else "MISS"
        if self.target is None or not isinstance(self.value, (int, float)):
            return ""
        good = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if good else "MISS"

    @property
    def ratio(self) -> float | None:
        if self.target and isinstance(self.value, (int, float)):
            return round(self.value / self.target, 2)
        return None

    def as_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "unit": self.unit,
                "target": self.target,
                "target_kind": None if self.target is None else (">=" if self.higher_is_better else "<="),
                "ratio_to_target": self.ratio, "result": self.verdict or None, "note": self.note}


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(rows: list[Row], header: str) -> None:
    width = max(len(r.metric) for r in rows if not r.metric.startswith("#"))
    print()
    print(header)
    print(f"{'metric':<{width}}  {'value':>14}  {'target':>12}  {'ratio':>6}  result  note")
    print("-" * (width + 56))
    for r in rows:
        if r.metric.startswith("#"):
            print(r.metric[1:].strip())
            continue
        value = f"{fmt(r.value)} {r.unit}".rstrip()
        target = "" if r.target is None else f"{'>=' if r.higher_is_better else '<='} {fmt(r.target)}"
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        print(f"{r.metric:<{width}}  {value:>14}  {target:>12}  {ratio:>6}  {r.verdict:<6}  {r.note}")
    print()


def cores(stats: dict) -> str:
    c = stats.get("cores") or {}
    return (f"cores: server {c.get('server', 0):.2f}, client {c.get('client', 0):.2f}, "
            f"other {c.get('other', 0):.2f}"
            + (f", steal {c['steal']:.2f}" if c.get("steal", 0) >= 0.01 else ""))


def cpu_rows(stats: dict, per_second: float, unit: str) -> list[Row]:
    """Server CPU per request/event, and the throughput that cost allows with every core:
    figures that hold even when other work shares the machine."""
    server = (stats.get("cores") or {}).get("server", 0.0)
    if not server or not per_second:
        return []
    cost_us = 1e6 * server / per_second
    cpus = os.cpu_count() or 1
    return [Row(f"  server CPU per {unit}", round(cost_us), "us"),
            Row(f"  CPU-bound ceiling, {cpus} cores", round(cpus * 1e6 / cost_us),
                "ev/s" if unit == "event" else "req/s",
                note="estimate: all cores to the server, no lock waits")]


def build_rows(res: dict) -> list[Row]:
    rows = ingestion_rows(res) if "ingest" in res else []
    if "history" in res:
        rows += history_rows(res["history"], res["machine"]["cpus"])
    if "proxy" in res:
        rows += proxy_rows(res["proxy"])
    if "push" in res:
        rows += push_rows(res["push"])
    if "alerts" in res:
        rows += alert_rows(res["alerts"])
    return rows


def history_rows(h: dict, cpus: int) -> list[Row]:
    """Section (f): p50 and p95 of each report endpoint; 12-month ones against the target."""
    g, st = (h["history"].get("generated") or {}), (h["history"].get("store") or {})
    rows = [Row(f"# (f) reports over 13 months (≈100M events), {h['connections']} connections "
                "(one per worker), 3 s or more each")]
    if st:
        made = ("cached" if h["cached"] else f"generated in {fmt(h['history'].get('generate_s'))} s")
        if h["history"].get("top_up_s") is not None and h["cached"]:
            made += f", topped up (+{h['history'].get('topped_up_days')} days in all)"
        rows += [
            Row("  history: events equivalent", g.get("events"), "ev",
                note=f"{st['last_day'] - st['first_day'] + 1} days, {fmt(g.get('pageviews'))} page views, "
                     f"{fmt(g.get('sessions'))} visits; {made}"),
            Row("  history: counter rows", st["counter_rows"], "rows",
                note=f"cube cells: session {fmt(st['cube_rows'].get('session', 0))}, "
                     f"page_cube {fmt(st['cube_rows'].get('page_cube', 0))}"),
            Row("  history: HLL sketches", st["sketches"], "",
                note=f"{st['sketch_bytes'] / 2**20:,.0f} MiB of sketches"),
            Row("  history: SQLite file", round(st["db_bytes"] / 2**20), "MiB", note=h["db"]),
        ]
        if st.get("summary_days"):
            sto = st["summary_storage"]
            rows += [
                Row("  history: visit summaries, bytes per visit", sto["bytes_per_visit"], "B",
                    note=f"{st['summary_rows'] // st['summary_days']:,} rows a day for "
                         f"{st['summary_visits'] // st['summary_days']:,} visits a day; {sto['days']} days: "
                         f"{sto['bytes'] / 2**20:,.1f} MiB for {sto['visits']:,} visits ({sto['rows']:,} rows, "
                         f"{sto['bytes_per_row']:,.0f} B a row)"),
                Row("  history: cohort counters", st["cohort_rows"], "rows", note="weeks and months, by channel and source"),
            ]
    for name, r in h["endpoints"].items():
        target = {"12mo": TARGET_HISTORY_12MO_P95_MS, "12mo goals": TARGET_PANEL_12MO_P95_MS,
                  "12mo events": TARGET_PANEL_12MO_P95_MS, "30d goals": TARGET_PANEL_30D_P95_MS,
                  "30d events": TARGET_PANEL_30D_P95_MS}.get(r["period"])
        note = f"{r['requests']} req in {r['seconds']:g} s, {fmt(round(r['rps'], 1))} req/s; {cores(r)}"
        if r["non2xx"] or r["socket_errors"]:
            note += f"; {r['non2xx']} non-2xx {r['non2xx_codes']}, {r['socket_errors']} socket errors"
        figures = r.get("figures")
        rows += [
            Row(f"  {name} p50", ms(r["latency_us"]["p50"]), "ms", higher_is_better=False,
                note=(f"visitors {fmt(figures['visitors'])}, visits {fmt(figures['visits'])}, "
                      f"page views {fmt(figures['pageviews'])} over {figures['days']} days"
                      if figures else "")),
            Row(f"  {name} p95", ms(r["latency_us"]["p95"]), "ms", target, False,
                note=note + ("; no target" if r["period"].endswith(("filtered", "overview", "page filter")) else "")),
        ]
    rows += journey_rows(h)
    loads = list(h["endpoints"].values()) + [r for r in h.get("journeys", {}).values() if "cores" in r]
    other = max(((x.get("cores") or {}).get("other", 0.0) for x in loads), default=0.0)
    rows.append(Row("  other processes' CPU during (f) (max)", other, "cores",
                    label="NOISY" if other > NOISE_CORES else "quiet",
                    note=(f"> {NOISE_CORES} cores: other work shared the {cpus} CPUs"
                          if other > NOISE_CORES else "nothing else ran")))
    return rows


def journey_rows(h: dict) -> list[Row]:
    """Section (f)'s journey reports: the first request (cold), p50 and p95 (against the
    target), the in-process times beside them, and how exact top paths are."""
    inproc = (h.get("in_process") or {}).get("reports", {})
    if not h.get("journeys") and not inproc:
        return []
    rows = [Row("# (f) journey reports over the visit summaries and cohort counters (GET /api/stats; "
                "in-process: the same call without HTTP, cold then warm p50)")]
    if h.get("digests_before"):
        rows.append(Row("  digests in the file before the first requests", h["digests_before"], "days",
                        label="WARM", note="first requests are not cold"))
    for name, r in h.get("journeys", {}).items():
        mine = inproc.get(name, {})
        in_note = (f"in-process: cold {fmt(mine.get('cold_ms'))} ms, warm p50 {fmt(mine.get('warm_p50_ms'))} ms "
                   f"(max {fmt(mine.get('warm_max_ms'))})" if mine else "")
        attempts = r.get("cold_attempts") or []
        failed = ", ".join(f"{fmt(a['ms'])} ms" for a in attempts if a["error"])
        cold_note = (r.get("first") or "") + (
            f"; {len(attempts)} tries, failed after {failed} (gunicorn's worker timeout?): time in all" if failed else "")
        rows.append(Row(f"  {name} first request (cold)", r.get("cold_ms"), "ms", higher_is_better=False,
                        note=cold_note + (f"; {in_note}" if in_note else "")))
        if "latency_us" not in r:
            not_served = r.get("error", "").startswith("not served")
            rows.append(Row(f"  {name} p95", None, "ms", r.get("target_ms"), False,
                            label="n/a" if not_served else None, ok=None if not_served else False,
                            note=f"{r.get('error')}; {in_note}"))
            continue
        note = f"{r['requests']} req in {r['seconds']:g} s; {cores(r)}"
        if r["non2xx"] or r["socket_errors"]:
            note += f"; {r['non2xx']} non-2xx {r['non2xx_codes']}, {r['socket_errors']} socket errors"
        rows += [
            Row(f"  {name} p50", ms(r["latency_us"]["p50"]), "ms", higher_is_better=False,
                note=", ".join(f"{k} {v}" for k, v in (r.get("figures") or {}).items())),
            Row(f"  {name} p95", ms(r["latency_us"]["p95"]), "ms", r.get("target_ms"), False,
                note=note + (f"; {in_note}" if in_note else "") + ("" if r.get("target_ms") else "; no target")),
        ]
    for length, acc in ((h.get("in_process") or {}).get("paths_accuracy") or {}).items():
        rows.append(Row(f"  top paths ({length} pages, 30d) vs exact: max error of the top {acc['compared']}",
                        acc["max_relative_error_pct"], "%",
                        note=f"{acc['exact']} of {acc['compared']} exact, same order as exact: {acc['same_order']}; "
                             f"{fmt(acc['distinct_paths'])} distinct paths, {fmt(acc['visits'])} visits "
                             f"(a day keeps its {MAX_DAY_PATHS:,} most common)"))
    return rows


def freshness_rows(load: dict) -> list[Row]:
    fresh = load["freshness"]
    return [
        Row("  event -> dashboard p50", fresh["p50_ms"], "ms", higher_is_better=False,
            note=f"{fresh['probes']} probes, one every {PROBE_EVERY_S:g} s during the load"),
        Row("  event -> dashboard p95", fresh["p95_ms"], "ms", TARGET_FRESHNESS_P95_MS, False,
            note=f"max {fmt(fresh['max_ms'])} ms" + (f"; {fresh['gave_up']} never shown" if fresh["gave_up"] else "")),
        Row("  aggregator drained after the load", load["drain_s"] if load["drain_s"] is not None else "no",
            "s", TARGET_DRAIN_S if load["drain_s"] is not None else None, False,
            note="from the load's end to the checkpoint at the log's end"),
    ]


def ingestion_rows(res: dict) -> list[Row]:
    a, b, c = res["ingest"]["a_single"], res["ingest"]["b_batch"], res["ingest"]["c_half_load"]
    rows = [Row("# (a) ingestion, 1 event per request, "
                f"{WRK_CONNECTIONS} connections, {res['config']['seconds']:g} s")]
    minimal = res["minimal"]["rps"]
    rows += [
        Row("  minimal Flask app requests/s", round(minimal), "req/s",
            note=f"the yardstick: POST answering 202, same gunicorn settings; {cores(res['minimal'])}"),
        Row("  requests/s", round(a["rps"]), "req/s", TARGET_SINGLE_RPS, note=cores(a)),
        Row("  requests/s / minimal app's", round(a["rps"] / minimal, 2), "x", TARGET_SINGLE_RATIO),
        Row("  events/s", round(a["eps"]), "ev/s"),
        *cpu_rows(a, a["rps"], "request"),
        Row("  latency p50", ms(a["latency_us"]["p50"]), "ms", note="at saturation"),
        Row("  latency p95", ms(a["latency_us"]["p95"]), "ms", note="at saturation"),
        Row("  latency p99", ms(a["latency_us"]["p99"]), "ms", note="at saturation"),
        *freshness_rows(a),
        Row(f"# (b) ingestion, {BATCH} events per request, {WRK_CONNECTIONS} connections, "
            f"{res['config']['seconds']:g} s"),
        Row("  events/s", round(b["eps"]), "ev/s", TARGET_BATCH_EPS, note=cores(b)),
        Row("  events/s / minimal app's requests/s", round(b["eps"] / minimal, 2), "x", TARGET_BATCH_RATIO),
        Row("  requests/s", round(b["rps"]), "req/s"),
        *cpu_rows(b, b["eps"], "event"),
        Row("  latency p50", ms(b["latency_us"]["p50"]), "ms", note="at saturation"),
        Row("  latency p95", ms(b["latency_us"]["p95"]), "ms", note="at saturation"),
        Row("  latency p99", ms(b["latency_us"]["p99"]), "ms", note="at saturation"),
        *freshness_rows(b),
        Row(f"# (c) ingestion at half of (a), fixed rate, 1 event per request, {HALF_LOAD_S:g} s"),
        Row("  rate achieved", c["achieved_rate"], "req/s",
            note=f"asked {fmt(c['target_rate'])}/s; {cores(c)}"),
        Row("  latency p50", c["latency_ms"]["p50"], "ms", higher_is_better=False),
        Row("  latency p95", c["latency_ms"]["p95"], "ms", TARGET_HALF_LOAD_P95_MS, False,
            note="from due time; incl. connect"),
        Row("  latency p99", c["latency_ms"]["p99"], "ms", higher_is_better=False),
        Row("# no event lost (all ingestion runs, warm-ups included)"),
    ]
    loss = res["loss"]
    rows += [
        Row("  events sent", loss["sent"], "ev", note="in every request written, answered or not"),
        Row("  events acknowledged (2xx)", loss["acknowledged"], "ev",
            note=f"server said accepted: {fmt(loss['server_said_accepted'])}"),
        Row("  events stored", loss["stored"], "ev", note=f"site total in SQLite: {fmt(loss['site_total'])}"),
        Row("  events lost", loss["lost"], "ev", ok=loss["lost"] == 0,
            note=("" if loss["lost"] == 0 else "!!! EVENTS LOST !!!")
            + (f"{loss['unacknowledged_stored']} stored w/o answer (in flight at wrk's stop)"
               if loss["unacknowledged_stored"] else "")),
        Row("  page views counted / stored", f"{res['counted']['pageviews_counted']:,} / "
            f"{res['counted']['pageviews_stored']:,}",
            ok=res["counted"]["pageviews_counted"] == res["counted"]["pageviews_stored"],
            note="each event counted once (day counters, after the aggregator drained)"),
        Row("  events counted / stored", f"{res['counted']['events_counted']:,} / {res['counted']['events_stored']:,}",
            ok=res["counted"]["events_counted"] == res["counted"]["events_stored"]),
        Row("  non-2xx answers", loss["non2xx"], ok=loss["non2xx"] == 0, note=loss["non2xx_codes"]),
        Row("  socket errors", loss["socket_errors"], ok=loss["socket_errors"] == 0),
        Row(f"# (d) realtime reads, {LIVE_VISITORS:,} visitors live, {READ_CONNECTIONS} connections, "
            f"{READ_S:g} s each"),
        Row("  visitors live (api/realtime)", res["realtime"]["live_visitors_seen"],
            ok=res["realtime"]["live_visitors_seen"] == LIVE_VISITORS, note=f"expected {LIVE_VISITORS:,}"),
    ]
    for name, r in res["realtime"]["endpoints"].items():
        fragment = "(HX)" in name
        rows += [
            Row(f"  {name} p50", ms(r["latency_us"]["p50"]), "ms", higher_is_better=False),
            Row(f"  {name} p95", ms(r["latency_us"]["p95"]), "ms",
                TARGET_FRAGMENT_P95_MS if fragment else None, False,
                note=f"{fmt(round(r['rps']))} req/s; {cores(r)}" + (f", {r['non2xx']} non-2xx {r['non2xx_codes']}"
                                                        if r["non2xx"] else "")),
        ]
    loads = [a, b, c, *res["realtime"]["endpoints"].values()]
    other = max((x.get("cores") or {}).get("other", 0.0) for x in loads)
    steal = max((x.get("cores") or {}).get("steal", 0.0) for x in loads)
    rows += [
        Row("# validity"),
        Row("  other processes' CPU during loads (max)", other, "cores",
            label="NOISY" if other > NOISE_CORES else "quiet",
            note=(f"> {NOISE_CORES} cores: other work shared the {res['machine']['cpus']} CPUs, "
                  "figures are pessimistic" if other > NOISE_CORES else "nothing else ran")),
        Row("  CPU stolen by the hypervisor (max)", steal, "cores",
            label="NOISY" if steal > STEAL_CORES else "quiet",
            note="other guests on the host took CPU time" if steal > STEAL_CORES else ""),
    ]
    t, m = res["tracker"], res["memory"]
    rows += [
        Row("# (e) size and memory"),
        Row("  tracker gzip -9", t["gzip_bytes"] if t["gzip_bytes"] is not None else "missing", "B",
            TARGET_TRACKER_GZIP_B if t["gzip_bytes"] is not None else None, False,
            note=f"{fmt(t['minified_bytes'])} B minified" if t["gzip_bytes"] is not None
            else "tracker/dist/liveinsight.min.js not built yet"),
        Row("  server RSS total (master+workers)", m["total_mb"], "MB", TARGET_RSS_MB, False,
            note=f"target applied to the sum of VmRSS; PSS sum {fmt(m['pss_total_mb'])} MB"),
        Row("  server RSS per worker (max)", m["max_worker_mb"], "MB", TARGET_RSS_MB, False,
            note=f"master {m['master_mb']} MB"),
    ]
    return rows


# --------------------------------------------------------------------------- main

def bench(args: argparse.Namespace) -> dict:
    wrk = find_wrk()
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(args.profile, RESULTS)
    res: dict = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": {"workers": WORKERS, "worker_class": gunicorn_setting("worker_class", "sync"),
                   "threads": gunicorn_setting("threads", 1),
                   "wrk_threads": WRK_THREADS, "connections": WRK_CONNECTIONS,
                   "seconds": args.seconds, "warmup_s": WARMUP_S, "visitors": VISITORS, "batch": BATCH,
                   "store": "sqlite (WAL), fresh file", "profiled": args.profile,
                   "sections": ("" if args.only_history else "abcde") + ("" if args.no_history else "f")
                                + ("g" if args.proxy else "") + ("" if args.only_history else "hi")},
        "app_root": str(APP_ROOT),
    }
    if not args.only_history:
        ingestion_and_realtime(args, wrk, profiler, res)
    if not args.no_history:
        res["history"] = reports_over_history(args, wrk, profiler)
    if args.proxy:
        res["proxy"] = behind_caddy(args, wrk)
    if not args.only_history:
        res["push"] = live_push(args, wrk)
        log(f"(i) alert rules of {alert_rules.SITES} sites, in-process; one site's DynamoDB requests under moto")
        res["alerts"] = {"single_box": alert_rules.single_box(), "dynamodb": alert_rules.dynamodb_requests()}
    res["profile"] = profiler.summary()
    return res


def behind_caddy(args: argparse.Namespace, wrk: str) -> dict:
    """(g) single-event ingestion through Caddy over HTTPS (deploy/Caddyfile, bench/caddy.py)
    and straight to the server over HTTP, in one run, on a fresh SQLite file: direct, through
    Caddy, direct again (the machine drifts; the two direct runs show by how much). Then the
    memory of the whole stack, the server's processes and Caddy's."""
    if find_caddy() is None:
        raise BenchError("--proxy caddy needs Caddy: apt-get install caddy")
    workdir = Path(tempfile.mkdtemp(prefix="liveinsight-bench-proxy-"))
    env = {**server_env(workdir / "bench.db"), "LIVEINSIGHT_PROXIES": "1"}
    server = Server(workdir, env)
    caddy = None
    try:
        _, key = create_site(env, "Bench proxy")
        server.start("/tracker.js")
        caddy = Caddy(workdir, server.port).start()
        runs = {}
        for name, url in (("direct", server.base), ("caddy", caddy.origin), ("direct_again", server.base)):
            log(f"(g) {name}: warm-up {WARMUP_S} s, then single-event requests for {args.seconds:g} s to {url}")
            run_wrk(wrk, "ingest.lua", url, seconds=WARMUP_S, connections=WRK_CONNECTIONS, threads=WRK_THREADS,
                    args=(key, 1, f"{secrets.token_hex(4)}w{name}", VISITORS))
            caddy_cpu = caddy.cpu_s()
            with CpuMeter(server) as cpu:
                stats = run_wrk(wrk, "ingest.lua", url, seconds=args.seconds, connections=WRK_CONNECTIONS,
                                threads=WRK_THREADS, args=(key, 1, f"{secrets.token_hex(4)}{name}", VISITORS))
            stats["cores"] = cpu.cores
            stats["caddy_cores"] = round((caddy.cpu_s() - caddy_cpu) / (time.monotonic() - cpu.wall), 2)
            runs[name] = stats
        runs["memory_kb"] = {
            "server_rss": sum(server.memory_kb().values()),
            "server_pss": sum(server.memory_kb("Pss", "smaps_rollup").values()),
            "caddy_rss": caddy.memory_kb(), "caddy_pss": caddy.memory_kb("Pss", "smaps_rollup")}
        return runs
    finally:
        if caddy is not None:
            caddy.stop()
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def live_push(args: argparse.Namespace, wrk: str) -> dict:
    """(h) STREAMS realtime pages open on one site (through a public link: no login per stream):
    single-event ingestion into that site without them, the server's memory once they are open,
    PUSHED_VISITS visits each timed from its POST to every stream's snapshot naming it, then the
    same ingestion with them open (each fold re-renders the site and sends it to every stream)."""
    from app.auth import links
    from app.store.sqlite import SQLiteStore
    workdir = Path(tempfile.mkdtemp(prefix="liveinsight-bench-push-"))
    env = server_env(workdir / "bench.db")
    server, streams = Server(workdir, env), None
    try:
        site_id, key = create_site(env, "Bench push")
        store = SQLiteStore(str(workdir / "bench.db"))
        _, token = links.create_link(store, site_id, "bench", "bench", int(time.time() * 1000))
        store.close()
        server.start("/tracker.js")
        out: dict = {"streams": STREAMS, "without": [], "with": []}
        run_wrk(wrk, "ingest.lua", server.base, seconds=WARMUP_S, connections=WRK_CONNECTIONS, threads=WRK_THREADS,
                args=(key, 1, f"{secrets.token_hex(4)}w", VISITORS))
        # Runs without and with the streams alternate (the machine drifts by 10 % and more within
        # a minute): without, with, without, with, without.
        out["without"].append(ingest(wrk, server, key, args.seconds, "without streams"))
        for round_ in range(PUSH_ROUNDS):
            log(f"(h) opening {STREAMS} event streams")
            streams = sse_clients.Streams(server.port, f"/share/{token}/live/stream", STREAMS)
            streams.start()
            time.sleep(1)
            if round_ == 0:
                out["open"], out["failed"] = streams.open, streams.failed
                out["memory_kb"] = {"pss": sum(server.memory_kb("Pss", "smaps_rollup").values()),
                                    "rss": sum(server.memory_kb().values())}
                out["delays_s"] = timed_visits(server, key, streams)
            out["with"].append(ingest(wrk, server, key, args.seconds, f"with {streams.open} streams"))
            streams.close()
            streams = None
            out["without"].append(ingest(wrk, server, key, args.seconds, "without streams"))
        return out
    finally:
        if streams is not None:
            streams.close()
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def ingest(wrk: str, server: Server, key: str, seconds: float, name: str) -> dict:
    """(a)'s single-event ingestion into the watched site, with the server's cores it took."""
    log(f"(h) ingestion, {name}, {seconds:g} s")
    with CpuMeter(server) as cpu:
        stats = run_wrk(wrk, "ingest.lua", server.base, seconds=seconds, connections=WRK_CONNECTIONS,
                        threads=WRK_THREADS, args=(key, 1, f"{secrets.token_hex(4)}h", VISITORS))
    stats["cores"] = cpu.cores
    return stats


def timed_visits(server: Server, key: str, streams: "sse_clients.Streams") -> dict:
    """PUSHED_VISITS visits, each timed from its POST to every stream's snapshot naming it (the
    live feed does)."""
    log(f"(h) {PUSHED_VISITS} visits, each timed to every stream")
    delays: list[float] = []
    for n in range(PUSHED_VISITS):
        marker = f"/pushed-{secrets.token_hex(4)}"
        streams.watch(marker.encode())
        sent = time.monotonic()
        status, answer = post_events(server.port, key, [event(f"push-{marker[8:]}", n, int(time.time() * 1000), n, marker)])
        if status != 202 or answer.get("data", {}).get("accepted") != 1:
            raise BenchError(f"(h) a timed visit was not accepted: {status} {answer}")
        while len(streams.arrivals(marker.encode())) < streams.open and time.monotonic() < sent + 5:
            time.sleep(0.01)
        arrived = streams.arrivals(marker.encode())
        delays += [at - sent for at in arrived] + [math.inf] * (streams.open - len(arrived))
        time.sleep(0.3)
    return {"p50": round(statistics_quantile(delays, 0.5), 3), "p95": round(statistics_quantile(delays, 0.95), 3),
            "missed": sum(d == math.inf for d in delays), "samples": len(delays)}


def statistics_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def push_rows(h: dict) -> list[Row]:
    def mean(runs: list[dict], of) -> float:
        return sum(map(of, runs)) / len(runs)
    rps = lambda r: r["rps"]  # noqa: E731
    cpu = lambda r: r["cores"]["server"] / r["rps"] * 1e6  # noqa: E731  (server CPU per request, us)
    without, with_ = mean(h["without"], rps), mean(h["with"], rps)
    delays, memory = h["delays_s"], h["memory_kb"]
    runs = lambda key: ", ".join(f"{r['rps']:.0f}" for r in h[key])  # noqa: E731
    return [
        Row(f"# (h) live push: {h['open']} realtime pages' event streams open on the loaded site"),
        Row("  streams opened", h["open"], "", note=f"{h['failed']} failed"),
        Row("  event -> snapshot on every stream, p95", delays["p95"], "s", PUSH_TARGET_S, higher_is_better=False,
            note=f"median {delays['p50']} s; {delays['missed']} of {delays['samples']} not within 5 s"),
        Row("  server memory with the streams open, PSS", round(memory["pss"] / 1024), "MB", PUSH_MEMORY_TARGET_MB,
            higher_is_better=False, note=f"RSS {memory['rss'] / 1024:.0f} MB, master and {WORKERS} workers"),
        Row("  ingestion (a) without streams, mean", round(without), "req/s", note=f"runs {runs('without')}"),
        Row("  ingestion (a) with the streams open, mean", round(with_), "req/s", note=f"runs {runs('with')}"),
        Row("  ingestion lost to pushing (requests/s)", round(1 - with_ / without, 3), "", PUSH_INGEST_DROP_TARGET,
            higher_is_better=False, note="runs alternate, without first and last: the machine drifts"),
        Row("  server CPU per request, with / without", round(mean(h["with"], cpu) / mean(h["without"], cpu), 3), "x",
            note=f"{mean(h['with'], cpu):.0f} us with, {mean(h['without'], cpu):.0f} us without"),
    ]


def alert_rows(i: dict) -> list[Row]:
    box, aws = i["single_box"], i["dynamodb"]
    return [
        Row(f"# (i) alert rules: {box['sites']} sites, each a traffic rule, a goal count and a silence rule"),
        Row("  a minute's evaluation, CPU (single box)", box["cpu_s_median_steady"], "s", ALERT_CPU_TARGET_S,
            higher_is_better=False, note=f"runs {box['cpu_s']}; the first fired {box['first_fired']} alerts"),
        Row(f"  DynamoDB requests a site and minute ({aws['shards']} shards)", aws["total"], "",
            note=", ".join(f"{name} {n}" for name, n in sorted(aws["requests"].items()))),
    ]


def proxy_rows(g: dict) -> list[Row]:
    direct = (g["direct"]["rps"] + g["direct_again"]["rps"]) / 2
    caddy, memory = g["caddy"], g["memory_kb"]
    rows = [Row(f"# (g) ingestion through Caddy over HTTPS, 1 event per request, {WRK_CONNECTIONS} connections")]
    for name, label in (("direct", "direct HTTP"), ("caddy", "through Caddy, HTTPS"), ("direct_again", "direct HTTP again")):
        r = g[name]
        note = cores(r) + (f", Caddy {r['caddy_cores']}" if name == "caddy" else "")
        if r["non2xx"] or r["socket_errors"]:
            note += f"; {r['non2xx']} non-2xx, {r['socket_errors']} socket errors"
        rows += [Row(f"  {label}: requests/s", round(r["rps"]), "req/s", note=note),
                 Row(f"  {label}: latency p95", ms(r["latency_us"]["p95"]), "ms", note="at saturation")]
    rows += [
        Row("  through Caddy / direct (mean of both), requests/s", round(caddy["rps"] / direct, 2), "x"),
        Row("  Caddy CPU per request", round(1e6 * caddy["caddy_cores"] / caddy["rps"]), "us"),
        Row("  memory of the stack, PSS", round((memory["server_pss"] + memory["caddy_pss"]) / 1024), "MB",
            note=f"server (master and {WORKERS} workers) {memory['server_pss'] / 1024:.0f} MB, "
                 f"Caddy {memory['caddy_pss'] / 1024:.0f} MB; RSS {memory['server_rss'] / 1024:.0f} + "
                 f"{memory['caddy_rss'] / 1024:.0f} MB"),
    ]
    return rows


def gunicorn_setting(name: str, default):
    """A setting of the project's gunicorn.conf.py (what make run and this bench serve with)."""
    import runpy
    return runpy.run_path(str(APP_ROOT / "gunicorn.conf.py")).get(name, default)


def server_env(db_path: Path) -> dict[str, str]:
    """The server's environment: the bench's store, no retention thread, and rate limits so
    high that they never refuse (the load comes from one client with one key; the limiter
    still counts every request, so its cost is in the figures)."""
    env = {**os.environ, "LIVEINSIGHT_STORE": f"sqlite:///{db_path}",
           "LIVEINSIGHT_RETENTION_THREAD": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "LIVEINSIGHT_RATE_LIMIT_INGEST": "1000000000 per minute",
           "LIVEINSIGHT_RATE_LIMIT_API": "1000000000 per minute"}
    env.pop("FLASK_DEBUG", None)
    return env


def ingestion_and_realtime(args: argparse.Namespace, wrk: str, profiler: "Profiler", res: dict) -> None:
    """Sections (a) to (e), on a fresh SQLite file in a temp dir."""
    seconds = args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="liveinsight-bench-"))
    db_path = workdir / "bench.db"
    env = server_env(db_path)
    server = Server(workdir, env)
    res["workdir"] = str(workdir)
    try:
        log(f"minimal Flask app (the yardstick): POST for {seconds:g} s")
        res["minimal"] = minimal_app_rps(wrk, seconds)
        log(f"temp dir {workdir}; creating sites")
        site_id, key = create_site(env, "Bench")
        live_site_id, live_key = create_site(env, "Bench realtime")
        probe_site_id, probe_key = create_site(env, "Bench freshness probes")
        probe_api_key = create_api_key(env, probe_site_id)
        server.start("/tracker.js")
        log(f"gunicorn up on {server.base} (master {server.proc.pid}, workers {server.workers()})")

        runs: list[IngestRun] = []

        def load(name: str, batch: int) -> dict:
            """(a) or (b): a warm-up, then the load with freshness probes, then the drain."""
            ingest_wrk(wrk, server, key, f"warm-{name}", batch, WARMUP_S, runs)
            profiler.start(name, server.workers(), seconds)
            with CpuMeter(server) as cpu, FreshnessProbe(server, probe_key, probe_site_id, probe_api_key) as probe:
                run = ingest_wrk(wrk, server, key, name[0], batch, seconds, runs)
            run.stats["drain_s"] = drain_time(db_path)
            profiler.wait()
            run.stats.update(cores=cpu.cores, freshness=probe.summary(),
                             eps=run.stats["accepted"] / (run.stats["duration_us"] / 1e6))
            return run
        log(f"(a) warm-up {WARMUP_S} s, then single-event requests for {seconds:g} s")
        a = load("a_single", 1)
        log(f"(b) warm-up {WARMUP_S} s, then batches of {BATCH} for {seconds:g} s")
        b = load("b_batch", BATCH)
        # (c) half load, fixed rate
        rate = max(50.0, a.stats["rps"] / 2)
        log(f"(c) fixed rate {rate:,.0f} req/s for {HALF_LOAD_S} s")
        profiler.start("c_half_load", server.workers(), HALF_LOAD_S)
        with CpuMeter(server) as cpu:
            c_run, c = half_load(server, key, rate, HALF_LOAD_S)
        profiler.wait()
        c["cores"] = cpu.cores
        runs.append(c_run)
        res["ingest"] = {"a_single": a.stats, "b_batch": b.stats, "c_half_load": c}

        # no event lost, each counted once
        time.sleep(1.0)  # let requests still in flight when wrk stopped finish
        drain_time(db_path)
        res["counted"] = counted_once(db_path, site_id)
        site_total = count_stored(db_path, site_id, runs)
        acknowledged = sum(r.acknowledged_events for r in runs)
        stored = sum(r.stored or 0 for r in runs)
        lost = sum(max(0, r.acknowledged_events - (r.stored or 0)) for r in runs)
        res["loss"] = {
            "acknowledged": acknowledged, "stored": stored, "lost": lost, "site_total": site_total,
            "server_said_accepted": sum(r.stats.get("accepted", 0) for r in runs),
            "sent": sum(r.sent_events for r in runs),
            "unacknowledged_stored": sum(max(0, (r.stored or 0) - r.acknowledged_events) for r in runs),
            "non2xx": sum(r.stats.get("non2xx", 0) for r in runs),
            "non2xx_codes": " ".join(sorted({r.stats.get("non2xx_codes", "").strip() for r in runs} - {""})),
            "socket_errors": sum(r.stats.get("socket_errors", 0) for r in runs),
            "runs": [{"name": r.name, "tag": r.tag, "batch": r.batch, "requests_sent": r.stats.get("sent"),
                      "requests_2xx": r.stats.get("ok2xx"), "acknowledged_events": r.acknowledged_events,
                      "server_said_accepted": r.stats.get("accepted"), "stored": r.stored} for r in runs],
        }
        if lost:
            log(f"!!! {lost} EVENTS LOST: acknowledged with 2xx but not in the store !!!")

        # (d) realtime reads with 1,000 visitors live
        log(f"(d) making {LIVE_VISITORS:,} visitors live, then reading for {READ_S} s per endpoint")
        live = make_visitors_live(server, live_key, LIVE_VISITORS)
        api_key = create_api_key(env, live_site_id)
        status, body = get(server.port, f"/api/realtime?site={live_site_id}",
                           headers=dict([api_key.split(": ", 1)]))
        seen = (json.loads(body)["data"]["current_visitors"]["last_5_minutes"]
                if status == 200 else f"HTTP {status}")
        profiler.start("d_reads", server.workers(), 3 * (READ_S + 1))
        endpoints = read_endpoints(wrk, server, live_site_id, READ_S, log_in(server, env), api_key)
        profiler.wait()
        res["realtime"] = {"site": live_site_id, "setup": live, "live_visitors_seen": seen,
                           "endpoints": endpoints}

        # (e) tracker size, memory
        rss = server.memory_kb("VmRSS", "status")
        pss = server.memory_kb("Pss", "smaps_rollup")
        master = rss.get(server.proc.pid, 0)
        workers = [v for pid, v in rss.items() if pid != server.proc.pid]
        res["memory"] = {"master_mb": round(master / 1024, 1),
                         "workers_mb": [round(v / 1024, 1) for v in workers],
                         "max_worker_mb": round(max(workers, default=0) / 1024, 1),
                         "total_mb": round(sum(rss.values()) / 1024, 1),
                         "pss_total_mb": round(sum(pss.values()) / 1024, 1) if pss else None,
                         "processes": len(rss)}
        tracker = APP_ROOT / TRACKER_MIN
        if tracker.exists():
            data = tracker.read_bytes()
            res["tracker"] = {"minified_bytes": len(data),
                              "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}
        else:
            res["tracker"] = {"minified_bytes": None, "gzip_bytes": None, "missing": True}
    except BaseException:
        log("server log (tail):\n" + server.log_tail())
        raise
    finally:
        server.stop()
        profiler.wait()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of (a) and (b) (default 10)")
    parser.add_argument("--profile", action="store_true",
                        help="run py-spy on the workers during each load (perturbs the figures); "
                             "raw stacks and a summary land in bench/results/")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, server log)")
    parser.add_argument("--app-root", type=Path, default=ROOT,
                        help="run the server from this copy of the project (to try a change on a "
                             "scratch copy); default: this checkout")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-history", action="store_true",
                      help="skip (f), the reports over 13 months of generated history")
    only.add_argument("--only-history", action="store_true", help="run only (f)")
    parser.add_argument("--history-db", type=Path,
                        help="run (f) on this SQLite file (a copy of the cached history that a "
                             "scratch copy of the app has prepared) instead of the cache")
    parser.add_argument("--proxy", choices=["caddy"],
                        help="also (g): single-event ingestion through Caddy over HTTPS against direct HTTP "
                             "(needs Debian's caddy)")
    args = parser.parse_args(argv)
    global APP_ROOT
    APP_ROOT = args.app_root.resolve()
    # A plain `kill` of the bench still runs the finally: that stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        res = bench(args)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 2
    res["runtime_s"] = round(time.monotonic() - started, 1)
    rows = build_rows(res)
    res["results"], section = [], ""
    for r in rows:
        if r.metric.startswith("#"):
            section = r.metric[1:].strip()
        else:
            res["results"].append({"section": section, **r.as_dict(), "metric": r.metric.strip()})
    misses = [r.metric.strip() for r in rows if r.verdict == "MISS"]
    res["summary"] = {"pass": sum(r.verdict == "PASS" for r in rows), "miss": len(misses),
                      "missed": misses}
    out = RESULTS / "latest.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    header = (f"LiveInsight bench  {res['started']}  {res['machine']['cpus']} CPUs  gunicorn "
              f"{WORKERS} workers ({res['config']['worker_class']})  SQLite WAL  one run, {res['runtime_s']:g} s"
              + ("  [PROFILED: figures perturbed]" if args.profile else ""))
    print_table(rows, header)
    if args.profile:
        for name, p in res["profile"].items():
            print(f"profile {name}: {p['samples']} samples; top inclusive:")
            for frame, pct in p["inclusive_pct"][:15]:
                print(f"  {pct:5.1f}%  {frame}")
            print("  top self:")
            for frame, pct in p["self_pct"][:8]:
                print(f"  {pct:5.1f}%  {frame}")
        print()
    print(f"{res['summary']['pass']} PASS, {res['summary']['miss']} MISS"
          + (f": {', '.join(misses)}" if misses else "") + f"   -> {out.relative_to(ROOT)}")
    if res.get("loss", {}).get("lost"):
        print(f"\n!!! EVENT LOSS: {res['loss']['lost']} events were acknowledged (2xx) "
              "but are not in the store !!!", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
