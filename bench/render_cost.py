"""What translation costs a page: the overview's fragments and page rendered in-process (Flask's
test client, no HTTP), in each language, over 30 days of demo traffic through the real pipeline.

    .venv/bin/python -m bench.render_cost [--requests 200] [--languages en ko]

Prints, per fragment and language, the median and p95 wall time and the CPU time per request.
This machine's speed drifts by more than the 5 % asked of translation: count instructions to
compare, with `--callgrind N`, which runs each fragment's N requests inside one functools.reduce
so that callgrind counts only them, one dump per fragment and language, in the order printed:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        --dump-after=functools_reduce --callgrind-out-file=/tmp/render.%p \
        .venv/bin/python -m bench.render_cost --callgrind 20 --languages en
    grep -h '^totals:' $(ls -v /tmp/render.*.*) | tail -5   # instructions for 20 requests each
To compare with a release before translation, run this file against that release's code (its
first directory on the path): `PYTHONPATH=<old checkout> .venv/bin/python bench/render_cost.py
--languages en` (a language the release does not know is served in English).
"""
from __future__ import annotations

import argparse
import functools
import logging
import statistics
import tempfile
import time
from pathlib import Path

from app import create_app, seed
from app.auth.sites import create_site
from app.auth.users import start_login
from app.clock import FixedClock
from app.store.base import DAY_MS, User
from app.store.sqlite import SQLiteStore

NOW = 1_795_000_000_000  # a fixed "now" (2026-11-18), as in the tests
DAYS = 30
FRAGMENTS = {  # name -> path under the site
    "metrics (HX) 30d": "/widgets/metrics?period=30d",
    "chart (HX) 30d": "/widgets/chart?period=30d",
    "pages (HX) 30d": "/widgets/pages?period=30d",
    "sources (HX) 30d": "/widgets/sources?period=30d",
    "overview page 30d": "?period=30d",
}


def _client(folder: Path):
    store = SQLiteStore(str(folder / "render.db"))
    store.create_schema()
    app = create_app({"STORE_URL": f"sqlite:///{folder / 'render.db'}", "SECRET_KEY": "bench", "TESTING": True,
                      "RATE_LIMITS": False}, store=store, clock=FixedClock(NOW))
    site = create_site(store, "Bench", ["bench.example"], NOW - (DAYS + 1) * DAY_MS)
    seed.seed(store, site, seed.tracker_batches(seed.plan_visits(site, DAYS, NOW, 300), NOW))
    store.create_user(User("u1", "bench@example.com", "unused", NOW, is_admin=True))
    client = app.test_client()
    login = start_login(store, store.get_user("u1"), NOW, DAY_MS)
    with client.session_transaction() as session:
        session.update(uid="u1", login=login)
    return client, site.site_id


def measure(client, path: str, language: str, requests: int) -> dict:
    headers = {"HX-Request": "true", "Accept-Language": language}
    for _ in range(5):  # warm: templates compiled, caches filled
        assert client.get(path, headers=headers).status_code == 200, path
    walls, cpu_start = [], time.process_time()
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        walls.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    cpu_ms = (time.process_time() - cpu_start) * 1000 / requests
    walls.sort()
    return {"p50": statistics.median(walls), "p95": walls[int(0.95 * len(walls)) - 1], "cpu": cpu_ms}


def counted(client, path: str, language: str, requests: int) -> None:
    """`requests` requests of `path` inside one functools.reduce: what callgrind counts."""
    headers = {"HX-Request": "true", "Accept-Language": language}
    for _ in range(5):  # warm, outside the count
        assert client.get(path, headers=headers).status_code == 200, path

    def one(_, __) -> None:
        assert client.get(path, headers=headers).status_code == 200

    functools.reduce(one, range(requests), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--languages", nargs="+", default=["en", "ko"])
    parser.add_argument("--callgrind", type=int, metavar="N", help="run N requests each for callgrind (see above)")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the request log's line per request: not what is measured
    with tempfile.TemporaryDirectory() as folder:
        client, site_id = _client(Path(folder))
        if args.callgrind:
            for name, path in FRAGMENTS.items():
                for language in args.languages:
                    counted(client, f"/sites/{site_id}{path}", language, args.callgrind)
                    print(f"{name:24} {language:8} counted")
            return
        print(f"{'fragment':24} {'language':8} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/req':>11}")
        for name, path in FRAGMENTS.items():
            for language in args.languages:
                r = measure(client, f"/sites/{site_id}{path}", language, args.requests)
                print(f"{name:24} {language:8} {r['p50']:8.2f} {r['p95']:8.2f} {r['cpu']:11.2f}")


if __name__ == "__main__":
    main()
