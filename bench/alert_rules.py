"""(i) What evaluating alert rules costs: a minute's evaluation of SITES sites with rules, on the
single box (CPU seconds, in-process, on a fresh SQLite file with their traffic sent through the
real pipeline), and the DynamoDB requests one site's evaluation makes on AWS (counted under moto,
with the production's 16 write shards)."""
from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from app.aggregation import drain
from app.alerts import settings as alert_settings
from app.alerts.evaluate import minute_alerts
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.store.base import Site

SITES = 1_000
WEEK_MS = 7 * 86_400_000
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def with_rules(store, site_id: str, now: int, traffic: bool = True) -> Site:
    """A site of 5 weeks with the three kinds of rule, and (`traffic`) page views now and at this
    time of each week before (its baseline), through the pipeline."""
    site = Site(site_id, site_id, f"pk_{site_id}", ["bench.example"], "UTC", now - 5 * WEEK_MS)
    store.create_site(site)
    choices = alert_settings.goal_choices(site, [])
    alert_settings.set_traffic(store, site, True, "normal", "20", "3")
    alert_settings.add_goal_rule(store, site, "reached", "c:", "10", "", "", "", choices)
    alert_settings.add_goal_rule(store, site, "silence", "", "", "1", "0", "24", choices)
    for weeks in range(5 if traffic else 0):
        at = now - weeks * WEEK_MS - 600_000
        events = [{"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": at + i, "user_id": f"u{i}",
                   "session_id": f"s{weeks}-{i}", "url": f"https://bench.example/p{i}"} for i in range(5)]
        record_batch(store, site, events, Client("198.51.100.23", UA), at + 10)
    return site


def single_box(sites: int = SITES, runs: int = 5) -> dict:
    from app.store.sqlite import SQLiteStore
    with tempfile.TemporaryDirectory(prefix="liveinsight-bench-alerts-") as folder:
        store = SQLiteStore(str(Path(folder) / "alerts.db"))
        store.create_schema()
        now = int(time.time() * 1000)
        for n in range(sites):
            with_rules(store, f"site-{n}", now)
        drain(store)
        cpu = []
        for run in range(runs):
            started = time.process_time()
            fired = minute_alerts(store, now + run * 60_000)
            cpu.append(time.process_time() - started)
            if run == 0:
                first_fired = len(fired)
        store.close()
    return {"sites": sites, "cpu_s": [round(c, 3) for c in cpu], "first_fired": first_fired,
            "cpu_s_median_steady": round(statistics.median(cpu[1:]), 3)}


def dynamodb_requests(shards: int = 16) -> dict:
    """The requests of one site's evaluation in a minute, by operation (none fires: steady). Its
    counters are empty (moto's stream is not the bench's to fold): the requests are the same,
    only what they return is smaller."""
    import os
    from moto import mock_aws
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      LIVEINSIGHT_DYNAMODB_SHARDS=str(shards))
    with mock_aws():
        from app.store.dynamodb import DynamoDBStore
        store = DynamoDBStore("bench-alerts")
        store.create_schema()
        now = int(time.time() * 1000)
        with_rules(store, "site-0", now, traffic=False)
        minute_alerts(store, now)  # the first minute may fire (silence since midnight)
        calls: Counter = Counter()
        store.client.meta.events.register("before-call.dynamodb",
                                          lambda model, **_: calls.update([model.name]))
        minute_alerts(store, now + 60_000)
    return {"shards": shards, "requests": dict(calls), "total": sum(calls.values())}
