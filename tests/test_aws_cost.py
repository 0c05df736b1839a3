"""What a million events cost on AWS, recounted from the store's own metered calls.

The demo's visits (app/seed.py: pages read with heartbeats, clicks, custom events, returning
visitors) at the rate of a million events a month (or COST_EVENTS_A_MONTH's) are sent as the tracker sends them
(`tracker_requests`: tracker/liveinsight.js's rules), each request through the app as the
tracker function runs it (its own URL; rate limits counted in DynamoDB), the stream in Lambda's batches through the
stream function (its counter deltas journaled, added once due by a later batch or the
every-minute schedule), then the purge a day later and 400 days later (raw data; the counters and
sketches are left to DynamoDB's TTL, which is free). Every DynamoDB request is metered
(tests/dynamodb_usage.py) and the month is priced at us-east-1's on-demand prices:
docs/dynamodb.md, "Cost model", shows the same lines.
`pytest -s tests/test_aws_cost.py` prints them.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from app import create_app, lambda_handlers, seed
from app.store.base import DAY_MS, HOUR_MS
from app.store.dynamodb.journal import LEASE_SK
from tests.dynamodb_stream import stream_records
from tests.dynamodb_usage import Usage, _size
from tests.test_lambda import TRACKER_SETTINGS, load_template

pytestmark = [pytest.mark.parametrize("backend", ["dynamodb"]), pytest.mark.timeout(600)]

TRACKER = (Path(__file__).resolve().parents[1] / "tracker" / "liveinsight.js").read_text()
# The rate and the sample: a million events a month, 80 visits (about 580 events), unless set to
# measure another (`COST_EVENTS_A_MONTH=10000000 COST_VISITS=300 pytest -s tests/test_aws_cost.py`:
# docs/dynamodb.md); BUDGET is checked at these defaults only.
EVENTS_A_MONTH = int(os.environ.get("COST_EVENTS_A_MONTH", 1_000_000))
VISITS = int(os.environ.get("COST_VISITS", 80))
TEMPLATE_PARAMETERS = load_template()["Parameters"]
DEFAULT_WINDOW_S = TEMPLATE_PARAMETERS["AggregationWindowSeconds"]["Default"]
DEFAULT_DELAY_S = TEMPLATE_PARAMETERS["CounterDelaySeconds"]["Default"]
SHARDS = TEMPLATE_PARAMETERS["WriteShards"]["Default"]  # the journal merges what lands on one shard
# (AggregationWindowSeconds, CounterDelaySeconds): the defaults (goal alerts within their 10 s)
# and the two other pairs docs/aws.md names: the freshest at low traffic, and the cheapest.
SETTINGS = ((DEFAULT_WINDOW_S, DEFAULT_DELAY_S), (1, 60), (10, 300))
# Dollars per million events measured (docs/dynamodb.md), with a margin: the goal is $11.
BUDGET = {(5, 300): 11.0, (1, 60): 13.8, (10, 300): 10.8}
BATCH_SIZE = 100
PRICES = {  # us-east-1, on demand, December 2026; CloudWatch's per alarm metric
    "write unit": 0.625e-6, "read unit": 0.125e-6, "Lambda request": 0.20e-6, "Lambda GB-second": 0.0000166667, "alarm-month": 0.10,
}
# Table storage and point-in-time recovery, per GB-month; DynamoDB adds 100 bytes to each item
# (and to each index entry) for what it keeps of it.
STORAGE_GB_MONTH, ITEM_OVERHEAD = 0.25 + 0.20, 100
# Not measurable under moto: Lambda's durations (at 512 MB).
INGEST_SECONDS, AGGREGATE_SECONDS, SCHEDULE_SECONDS, LAMBDA_GB = 0.04, 0.15, 0.1, 0.5
# CloudWatch prices an alarm per metric it reads: one, or each of a metric math alarm's.
ALARM_METRICS = sum(sum("MetricStat" in m for m in r["Properties"]["Metrics"]) if "Metrics" in r["Properties"] else 1
                    for r in load_template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm")
# The snippet loads tracker.js from the tracker function's URL, and the tracker posts where the
# script came from: a function URL adds no charge to Lambda's own (API Gateway REST's $3.50 a
# million requests was the largest line after aggregation).
TRACKER_FUNCTION = load_template()["Resources"]["TrackerFunction"]["Properties"]
assert TRACKER_FUNCTION["FunctionUrlConfig"]["AuthType"] == "NONE"
assert TRACKER_FUNCTION["Environment"]["Variables"]["LIVEINSIGHT_SERVES"] == "tracker"


def tracker_setting(name: str) -> int:
    """flushMs and heartbeatMs's defaults as liveinsight.js has them (`|| 5e3`)."""
    return int(float(re.search(rf"{name} = \+options\.{name} \|\| ([0-9e.]+)", TRACKER).group(1)))


FLUSH_MS, HEARTBEAT_MS = tracker_setting("flushMs"), tracker_setting("heartbeatMs")


def tracker_requests(events: list[dict]) -> list[tuple[int, list[dict]]]:
    """When a visit's events leave the browser, and together, by liveinsight.js's rules: each
    page load tracks its page view and flushes at once; a flush every FLUSH_MS from the load
    sends the queue when it holds anything but heartbeats, or a heartbeat held for two
    heartbeat periods; leaving the page (the next page view, or 2 s after the last event)
    beacons what is queued. At most 50 events a request."""
    assert seed.HEARTBEAT_MS == HEARTBEAT_MS and seed.FLUSH_MS == FLUSH_MS  # the demo's visits match the tracker
    pages: list[list[dict]] = []
    for event in events:
        if event["type"] == "page_view" or not pages:
            pages.append([])
        pages[-1].append(event)
    requests = []
    for number, page in enumerate(pages):
        load = page[0]["timestamp"]
        leave = pages[number + 1][0]["timestamp"] if number + 1 < len(pages) else page[-1]["timestamp"] + 2_000
        requests.append((load, [page[0]]))
        queue, pending = [], page[1:]
        tick = load + FLUSH_MS
        while tick < leave:
            queue += [e for e in pending if e["timestamp"] <= tick]
            pending = [e for e in pending if e["timestamp"] > tick]
            if queue and any(e["type"] != "heartbeat" or tick - e["timestamp"] >= 2 * HEARTBEAT_MS for e in queue):
                requests.append((tick, queue[:50]))
                queue = queue[50:]
            tick += FLUSH_MS
        queue += pending
        requests += [(leave, queue[start:start + 50]) for start in range(0, len(queue), 50)]  # the beacons
    return requests


def lambda_batches(records: list[tuple[int, dict]], window_ms: int) -> list[tuple[int, list[dict]]]:
    """Stream records (arrival, record) in Lambda's batches (when the first arrived, records):
    up to BATCH_SIZE records, the first waiting at most window_ms for more."""
    batches: list[tuple[int, list[dict]]] = []
    for arrival, record in sorted(records, key=lambda r: r[0]):
        if batches and arrival - batches[-1][0] < window_ms and len(batches[-1][1]) < BATCH_SIZE:
            batches[-1][1].append(record)
        else:
            batches.append((arrival, [record]))
    return batches


@pytest.mark.parametrize("window_s, delay_s", SETTINGS)
def test_a_million_events_cost_what_the_cost_model_says(store, site, clock, monkeypatch, record_property,
                                                        window_s, delay_s):
    store.shards, store.counter_delay_ms, store._now_ms = SHARDS, delay_s * 1000, clock.now_ms
    app = create_app({"TESTING": True, "SECRET_KEY": "k", **TRACKER_SETTINGS}, store=store, clock=clock)  # the tracker function's
    browser = app.test_client()
    monkeypatch.setattr(lambda_handlers, "_store", lambda: store)
    monkeypatch.setattr("app.clock.SystemClock", lambda: clock)  # the schedule's
    monkeypatch.setenv("LIVEINSIGHT_LIVE_SOCKET_URL", "https://sockets.invalid/prod")  # asks who watches
    store.purge(clock.now_ms())  # a site's first purge marks it as needing no upgrade (upgrade.py)

    per_visit = 7  # about the demo's events a visit: the rate only decides what Lambda's batches merge
    plan = seed.plan_visits(site, 1, clock.now_ms() + DAY_MS, visits_per_day=EVENTS_A_MONTH // 30 // per_visit)
    visits = [visit for visit in plan if visit.client.user_agent != seed.BOT_USER_AGENT][:VISITS]
    sent = sorted(((at, visit.client, batch) for visit in visits for at, batch in tracker_requests(visit.events)),
                  key=lambda request: request[0])
    events = sum(len(batch) for _, _, batch in sent)
    items_before = counter_items(store)
    meter = Usage(store.client)
    arrivals = []
    for at, client, batch in sent:
        clock.now = at
        response = browser.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": batch}),
                                content_type="text/plain", environ_base={"REMOTE_ADDR": client.ip},
                                headers={"User-Agent": client.user_agent, "Origin": "https://example.com"})
        assert response.status_code == 202, response.get_data(as_text=True)
        arrivals += [(at, record) for record in stream_records(store)]
    ingestion = snapshot(meter)
    batches = lambda_batches(arrivals, window_s * 1000)
    minute, ticks = batches[0][0] // 60_000 * 60_000, 0  # the every-minute schedule: its last run, its runs

    def schedule_until(now: int) -> None:
        nonlocal minute, ticks
        while minute + 60_000 <= now:
            minute += 60_000
            clock.now, ticks = minute, ticks + 1
            assert lambda_handlers.schedule({"job": "counters"}, None)["counter_items"] >= 0
    for first, records in batches:
        schedule_until(first + window_s * 1000)
        clock.now = first + window_s * 1000
        assert lambda_handlers.stream({"Records": records}, None) == {"batchItemFailures": []}
    schedule_until(clock.now + (delay_s + 60) * 1000)  # the last deltas fall due and the schedule adds them
    aggregation = snapshot(meter)
    created = counter_items(store) - items_before  # each entered `expiry` once (none since December 2026)
    stored = stored_bytes(store)
    assert journal_items(store) == 0  # every delta added
    meter.reset()  # those scans are the test's
    store.purge(clock.now + DAY_MS + HOUR_MS)  # raw data, a day later
    store.purge(clock.now + 402 * DAY_MS)  # what is past 400 days: TTL's (free), but what an old release indexed
    retention = snapshot(meter)
    lines = price(events, len(sent), len(batches), ticks, ingestion, aggregation, retention, created)
    total = sum(lines.values())
    print(f"\n{EVENTS_A_MONTH:,} events a month, batching window {window_s} s, counter delay {delay_s} s, "
          f"{SHARDS} shards: {len(visits)} visits, "
          f"{events} events, {len(sent)} requests, {len(batches)} stream batches, {ticks} minutes, "
          f"{created} counter and sketch items entered `expiry`")
    for name, used in (("ingestion", ingestion), ("aggregation", aggregation), ("retention", retention)):
        print(f"  {name}: {used}")
    for name, dollars in lines.items():
        print(f"  {name:<58} ${dollars:6.2f}")
    print(f"  {'total per million events':<58} ${total:6.2f}")
    raw_gb, rollups_gb = (stored[kind] / events * EVENTS_A_MONTH * months / 1e9
                          for kind, months in (("raw", 1 / 30), ("rollups", 13)))
    print(f"  storage, not in the total: {stored['raw'] / events:.0f} bytes an event kept 24 h, "
          f"{stored['rollups'] / events:.0f} kept 13 months: at {EVENTS_A_MONTH:,} a month {raw_gb * 1000:.0f} MB "
          f"and at most {rollups_gb:.2f} GB, ${(raw_gb + rollups_gb) * STORAGE_GB_MONTH:.2f} a month with PITR "
          "(at most: a busier day's events share more counter items than the sample's)")
    record_property("dollars_per_million_events", round(total, 2))
    # The sample is what it claims: the demo's visits (7 events each), a tracker request carrying
    # 1 to 2 of them (a page view at once, heartbeats three at a time), batched by the window.
    assert 6 <= events / len(visits) <= 8 and 1.2 <= events / len(sent) <= 2 and len(batches) <= len(sent)
    if (EVENTS_A_MONTH, VISITS) == (1_000_000, 80):
        assert total <= BUDGET[window_s, delay_s]


def journal_items(store) -> int:
    """Journal items still waiting (a test may scan)."""
    items = store.client.scan(TableName=store.aggregates_table, ProjectionExpression="pk, sk")["Items"]
    return sum(item["pk"]["S"].startswith("J#") and item["sk"]["S"] != LEASE_SK for item in items)


def counter_items(store) -> int:
    """The counter and sketch items in the table that enter `expiry` (a test may scan: moto)."""
    items = store.client.scan(TableName=store.aggregates_table, ProjectionExpression="pk, xpk")["Items"]
    return sum(item["pk"]["S"][:2] in ("K#", "C#", "U#") and "xpk" in item for item in items)


def stored_bytes(store) -> dict[str, int]:
    """Bytes the tables hold by how long they keep them, as DynamoDB bills storage: items and
    index entries, 100 bytes more each. Rollups are the counters and sketches past the minute
    grain (13 months); the rest is raw data (24 h): events (and their `by_time` copy, which
    projects them whole), visits, visitors, markers, minute counters. Rate limit windows last
    a minute and the registry an item a site: left out. A test may scan."""
    kept = {"raw": 0, "rollups": 0}
    for table in (store.events_table, store.aggregates_table):
        pages = store.client.get_paginator("scan").paginate(TableName=table)
        for item in (item for page in pages for item in page["Items"]):
            pk = item["pk"]["S"]
            if pk.startswith(("RATE#", "REGISTRY")):
                continue
            size = _size(item) + ITEM_OVERHEAD
            if table == store.events_table:
                size *= 2  # by_time holds every attribute
            elif "xpk" in item or "visitor_key" in item:  # in `expiry` or `by_visitor`: keys only
                size += len(pk) + len(item["sk"]["S"]) + 40 + ITEM_OVERHEAD
            rollup = pk[:2] in ("K#", "C#", "U#") and "#minute#" not in pk
            kept["rollups" if rollup else "raw"] += size
    return kept


def snapshot(meter: Usage) -> dict:
    """What was metered since the last snapshot, without the test's own reads of the stream."""
    requests = {name: n for name, n in meter.requests.items() if name != "DescribeTable"}
    assert "Scan" not in requests
    taken = {"writes": meter.write_units, "reads": meter.read_units, "index": meter.index_writes,
             "requests": requests}
    meter.reset()
    return taken


def price(events: int, requests: int, batches: int, ticks: int, ingestion: dict, aggregation: dict,
          retention: dict, created: int) -> dict[str, float]:
    """Dollars per million events, by line; `ticks`: the every-minute schedule's runs. The
    alarms cost a month: their line is a month's over the month's millions of events."""
    scale = 1e6 / events
    unit = lambda used: used["writes"] * PRICES["write unit"] + used["reads"] * PRICES["read unit"]  # noqa: E731
    lambda_seconds = requests * INGEST_SECONDS + batches * AGGREGATE_SECONDS + ticks * SCHEDULE_SECONDS
    return {
        "ingestion: events, by_time, rate limit windows, reads": scale * (unit(ingestion)
                                                                          + ingestion["index"] * PRICES["write unit"]),
        "aggregation: transactions, sketches, reads": scale * unit(aggregation),
        "aggregation: index writes (expiry, by_visitor)": scale * (aggregation["index"] + created)
                                                               * PRICES["write unit"],
        "retention: deletes at 24 h and 400 days, with their indexes": scale * (unit(retention) + retention["index"]
                                                                              * PRICES["write unit"]),
        "front door: the tracker function's URL": 0.0,
        "Lambda: requests and GB-seconds (durations assumed)": scale * ((requests + batches + ticks)
                                                                       * PRICES["Lambda request"]
                                                                       + lambda_seconds * LAMBDA_GB
                                                                       * PRICES["Lambda GB-second"]),
        f"CloudWatch: {ALARM_METRICS} alarm metrics (fixed, a month)": ALARM_METRICS * PRICES["alarm-month"]
                                                                       * 1e6 / EVENTS_A_MONTH,
    }
