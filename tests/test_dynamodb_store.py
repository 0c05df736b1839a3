"""What only the DynamoDB backend has to get right (under moto): write shards merged on read,
sort-key limits, no stream record for a duplicate, batch retries within AWS's limits, errors
as StoreError, the tables template.yaml creates, and how many requests each job costs."""
from __future__ import annotations

import functools
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.lambda_handlers import aggregate_records
from app.store import hll
from app.store.base import DAY_MS, HOUR_MS, Changes, CounterKey, Membership, Session, StoreError, UniqueKey, User
from app.store.dynamodb import MAX_BATCH_WRITE, folding, retention
from tests.conftest import CHROME_UA, T0
from tests.dynamodb_stream import stream_records
from tests.dynamodb_usage import Usage
from tests.test_lambda import load_template

pytestmark = pytest.mark.parametrize("backend", ["dynamodb"])

ROOT = Path(__file__).resolve().parents[1]
HOUR = T0 // HOUR_MS
DAY = T0 // DAY_MS


def sessions_on_two_shards(store, monkeypatch) -> tuple[str, str]:
    """Two session ids whose writes go to different shards: every batch spreads its packs by
    session, as a busy site's do (a quiet site's all go on shard 0: folding.QUIET_BELOW)."""
    monkeypatch.setattr(folding, "QUIET_BELOW", 1)
    first = "session-a"
    second = next(s for s in (f"session-{i}" for i in range(100)) if store._shard(s) != store._shard(first))
    return first, second


def raw_counter_items(store, key: CounterKey) -> list[dict]:
    """The counter's items on every shard, read straight from the table."""
    return [item for shard in range(store.shards) for item in store.client.query(
        TableName=store.aggregates_table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": store._counter_pk(key.site_id, key.grain, key.dimension, shard)}})["Items"]]


def test_counters_written_on_different_shards_are_summed_on_read(store, site, ingest, make_event, monkeypatch):
    first, second = sessions_on_two_shards(store, monkeypatch)
    ingest(make_event(session_id=first, user_id="u1"))
    ingest(make_event(session_id=second, user_id="u2"), make_event(session_id=second, user_id="u2",
                                                                   url="https://example.com/b"))
    key = CounterKey("example", HOUR, "pageviews", "", "")
    assert len(raw_counter_items(store, key)) == 2  # one item per shard written
    rows = store.read_counters("example", "pageviews", "", HOUR, HOUR + 1)
    assert [(r.hour, r.n) for r in rows] == [(HOUR, 3)]


def test_sketches_on_different_shards_read_as_one_union_per_day_and_value(store, site, ingest, make_event,
                                                                         monkeypatch):
    first, second = sessions_on_two_shards(store, monkeypatch)
    ingest(make_event(session_id=first, user_id="u1"), make_event(session_id=first, user_id="u2"))
    ingest(make_event(session_id=second, user_id="u2"))
    ingest(make_event(session_id=second, user_id="u3"))
    rows = store.read_sketches("example", "", 0, 10**9)
    assert len(rows) == 1
    assert hll.count_visitors([rows[0].sketch]) == 3  # u2 counted once across shards


def test_values_too_long_for_a_sort_key_round_trip(store):
    page = "/" + "x" * 2000  # a sort key holds at most 1,024 bytes
    store.apply(Changes(counters={CounterKey("s1", HOUR, "pageviews", "page", page): 2,
                                  CounterKey("s1", HOUR, "pageviews", "page", "/short"): 1},
                        uniques={UniqueKey("s1", DAY, "page", page): {"u1"}}))
    rows = store.read_counters("s1", "pageviews", "page", HOUR, HOUR + 1)
    assert sorted((r.value, r.n) for r in rows) == [("/short", 1), (page, 2)]
    assert [r.value for r in store.read_sketches("s1", "page", DAY, DAY + 1, [page])] == [page]


def test_a_duplicate_append_makes_no_stream_record(store, site, make_event):
    batch = [make_event(), make_event(type="heartbeat")]
    record_batch(store, site, batch, Client("198.51.100.23", CHROME_UA), T0)
    assert [r["eventName"] for r in stream_records(store)] == ["INSERT", "INSERT"]
    again = record_batch(store, site, batch, Client("198.51.100.23", CHROME_UA), T0 + 5000)
    assert (again.accepted, again.duplicates) == (0, 2)
    assert stream_records(store) == []


def test_a_parallel_batch_gets_one_stream_record_per_event_in_order(store, site, make_event):
    """The store puts a batch's events from several threads; each gets its own sequence
    number, so the stream (as Lambda reads it) holds each event once."""
    batch = [make_event(timestamp=T0 - i) for i in range(40)]
    record_batch(store, site, batch, Client("198.51.100.23", CHROME_UA), T0)
    records = stream_records(store)
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(set(numbers))
    assert sorted(r["dynamodb"]["Keys"]["sk"]["S"] for r in records) == sorted(e["event_id"] for e in batch)


def test_the_test_stream_reader_fails_at_once_on_a_record_handed_back(store):
    """A stream page that repeats a sequence number (moto's did, with unlocked numbering) fails
    the test that reads it, instead of being read for ever."""
    from tests.dynamodb_stream import StreamReader

    record = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "7"}}

    class Repeating:  # every page hands back the same record, as moto's stream did
        def get_shard_iterator(self, **_):
            return {"ShardIterator": "it"}

        def get_records(self, **_):
            return {"Records": [record], "NextShardIterator": "it"}

    reader = StreamReader(store.client, store.events_table)
    reader.streams = Repeating()
    with pytest.raises(AssertionError, match="handed back sequence number 7"):
        reader._read_shard("arn", "shard-1")


@pytest.fixture
def stingy_batch_writes(store, monkeypatch):
    """BatchWriteItem that leaves (up to) the last 3 items of a request unprocessed `refusals`
    times, as a throttled table does, recording each request's size and each backoff."""
    real = store.client.batch_write_item
    seen = {"sizes": [], "sleeps": [], "refusals": 2}

    def stingy(RequestItems):
        (table, requests), = RequestItems.items()
        seen["sizes"].append(len(requests))
        if seen["refusals"]:
            seen["refusals"] -= 1
            if requests[:-3]:
                real(RequestItems={table: requests[:-3]})
            return {"UnprocessedItems": {table: requests[-3:]}}
        return real(RequestItems=RequestItems)
    monkeypatch.setattr(store.client, "batch_write_item", stingy)
    monkeypatch.setattr(store, "_sleep", seen["sleeps"].append)
    return seen


def sessions(n: int) -> list[Session]:
    return [Session("s1", f"sess{i}", "u1", 0, T0, T0) for i in range(n)]


def test_batch_writes_keep_to_25_items_and_retry_what_is_unprocessed(store, stingy_batch_writes):
    store.apply(Changes(sessions=sessions(60)))
    assert len(store.get_sessions("s1", [f"sess{i}" for i in range(60)])) == 60
    assert max(stingy_batch_writes["sizes"]) == MAX_BATCH_WRITE
    first, second = stingy_batch_writes["sleeps"]
    assert 0 < first < second  # exponential backoff


def test_batch_writes_fail_with_store_error_when_dynamodb_keeps_refusing(store, stingy_batch_writes):
    stingy_batch_writes["refusals"] = math.inf
    with pytest.raises(StoreError, match="3 writes still unprocessed after 6 attempts"):
        store.apply(Changes(sessions=sessions(10)))


def test_a_dynamodb_error_is_a_503_the_tracker_retries(client, site, store, make_event, monkeypatch):
    def throttled(**params):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "PutItem")
    monkeypatch.setattr(store.client, "put_item", throttled)
    response = client.post("/api/events", data=json.dumps({"events": [make_event()]}),
                           headers={"X-API-Key": site.tracker_key, "User-Agent": CHROME_UA},
                           content_type="text/plain")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def _indexes(table: dict) -> dict:
    return {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"]}


def test_create_schema_makes_the_tables_template_yaml_makes_and_is_idempotent(store):
    store.create_schema()  # again: no error
    declared = {r["Properties"]["TableName"].replace("${AWS::StackName}", store.prefix): r["Properties"]
                for r in load_template()["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"}
    assert set(declared) == {spec["TableName"] for spec in store._table_specs()}
    for spec in store._table_specs():
        template = declared[spec["TableName"]]
        table = store.client.describe_table(TableName=spec["TableName"])["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" == template["BillingMode"]
        assert table["KeySchema"] == template["KeySchema"]
        assert _indexes(table) == _indexes(template)
        ttl = store.client.describe_time_to_live(TableName=spec["TableName"])["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in template:
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        stream = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        assert table.get("StreamSpecification") == (stream if "StreamSpecification" in template else None)


@pytest.fixture
def usage(store, site, client, make_event, monkeypatch):
    """Measure a job: its DynamoDB requests, write units and read units."""
    counted = Usage(store.client)
    # Once per container: the site registry, the site by key, the list of the statistics
    # partitions of each shard (visits like `visits`', on every shard), the retention horizon.
    for number in range(100, 108):  # a pack's counters go on the shard of its first visit
        post_batch(client, site, visits(make_event, 1, first_number=number))
        aggregate_records(store, stream_records(store))
    assert {store._shard(f"visit-{v}") for v in range(100, 108)} == set(range(store.shards))
    store.read_counters(site.site_id, "pageviews", "", 0, 1)
    monkeypatch.setattr(retention, "HORIZON_READ_EVERY_S", 3600)  # not read again while measuring

    def measure(job) -> tuple[dict[str, int], float, float]:
        counted.reset()
        job()
        assert "Scan" not in counted.requests
        return dict(counted.requests), counted.write_units, counted.read_units
    return measure


def post_batch(client, site, events):
    response = client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": events}),
                           headers={"User-Agent": CHROME_UA, "Origin": "https://example.com"},
                           content_type="text/plain")
    assert response.status_code == 202 and response.json["data"]["accepted"] == len(events)


def visits(make_event, count: int, first_number: int = 0) -> list[dict]:
    """`count` visits of 5 events each (a page view, 3 heartbeats, a click), as one batch."""
    kinds = ["page_view", "heartbeat", "heartbeat", "heartbeat", "click"]
    return [make_event(type=kind, user_id=f"visitor-{v}", session_id=f"visit-{v}",
                       url=f"https://example.com/p{v}", timestamp=T0 - (5 - i) * 10_000,
                       # as the tracker sends them: a visitor first seen weeks ago, back today
                       first=[T0 - 40 * DAY_MS, "https://example.com/", ""],
                       prev=T0 - 9 * DAY_MS if i == 0 else T0 - (6 - i) * 10_000)
            for v in range(first_number, first_number + count) for i, kind in enumerate(kinds)]


def test_requests_per_batch_aggregation_and_dashboard_refresh(store, site, client, make_event, usage, log_in):
    """The figures in docs/dynamodb.md (printed with -s)."""
    one_visit, five_visits = visits(make_event, 1), visits(make_event, 5)
    for name in ("one_visit", "five_visits"):
        batch = locals()[name]
        ingest = usage(lambda: post_batch(client, site, batch))
        records = stream_records(store)  # Lambda's poller reads the stream: no DynamoDB requests billed
        aggregation = usage(lambda: aggregate_records(store, records))
        print(f"\n{len(batch)} events: aggregation {aggregation}")
        if batch is one_visit:
            # The state (a BatchGetItem, and the GetItem of its site), one transaction, the
            # realtime counters; then, with no delay, its journal item applied: the oldest item,
            # the lease, the items (Queries), the lease taken (a put), the sketches (a
            # BatchGetItem, then a put each), an UpdateItem a counter item, the journal item
            # deleted, the lease let go (a put), nothing due left (a Query).
            assert aggregation[0] == {"BatchGetItem": 1 + 1, "PutItem": 2 + 12, "TransactWriteItems": 1,
                                      "GetItem": 1, "UpdateItem": 2 + 22, "Query": 4, "DeleteItem": 1}
            # Its 56 counter deltas are 23 items (a metric each: 138 write units). The
            # transaction: the visit (its item remembers the events applied: a marker item a
            # request before, an event's before that), the visitor and the journal item of 22
            # items' deltas and 12 sketches' visitor, 6 units (8 with the request's marker, 60
            # with the items); after it, the visitor enters the live widgets' minute
            # item (its page and source inside it: 3 items before) and the page view its
            # 5-minute slot; the applier puts the 12 sketches, adds 22 items, a unit each,
            # deletes the journal item and puts the lease twice.
            assert aggregation[1] == 6 + 1 + 1 + 12 + 22 + 1 + 2
        print(f"\n{len(batch)} events: ingest {ingest}")
        # a put per event (the site by key was read by the warm-up, and is kept 5 s: SitesByKey)
        assert ingest[0] == {"PutItem": len(batch)}
    # Five visits of five different pages fit one transaction: 10 records, their visits
    # remembering their events (with 5 markers before, a request each, and 25 before those),
    # and 45 counter items (102 deltas; an item a metric, they took three: docs/dynamodb.md).
    assert aggregation[0]["TransactWriteItems"] == 1
    # A busy batch (25 of the site's events) writes the live widgets' pages and source an item
    # each, not inside the minute's live item: 6 realtime counters, with the 5-minute slot.
    assert aggregation[0]["UpdateItem"] == 6 + 45
    store.create_user(User("viewer-1", "viewer@example.com", "hash", T0))
    store.put_membership(Membership(site.site_id, "viewer-1", "viewer", T0))
    viewer = log_in(store.get_user("viewer-1"))
    dashboard = usage(lambda: viewer.get(f"/sites/{site.site_id}/realtime"))
    tick = usage(lambda: viewer.get(f"/sites/{site.site_id}/live", headers={"HX-Request": "true"}))
    overview = usage(lambda: viewer.get(f"/sites/{site.site_id}?period=7d"))
    print(f"realtime page: {dashboard}; its refresh: {tick}; overview: {overview}")
    # Who asks (the user, its role, the site), the viewer's sites for the switcher (a Query and
    # the site), then one moment's reads for every widget (`one_moment`: a partition's range
    # read once serves every metric of it and every range inside it), a Query a shard each:
    # the live minute counters (visitors of the 30 minutes, with their visits' durations; their
    # pages and sources of the 5), the feed, hourly totals (24 hours: visitors, page views,
    # custom events), today's pages, 5-minute totals (the conversions' 30 minutes, then the
    # chart's 100), today's totals, goal visits and conversions by name. As many whatever the
    # traffic: a minute's counters are one item a page or source.
    assert dashboard[0] == {"GetItem": 4, "Query": 1 + 11 * store.shards}
    # Each 5-second refresh of the page is one request: the same reads, without the switcher.
    assert tick[0] == {"GetItem": 3, "Query": 11 * store.shards}
    # The overview's first load reads each partition's range once too (213 Queries at 4 shards
    # before, a read a metric): whether the site has data yet (13 months of page views), the
    # live line, this week's and the week before's totals, visitor sketches, goals and
    # conversions by name (8), the tables shown (sources, pages, entry and exit pages,
    # countries, devices, with their sketches: 10), and the hourly counts of what was not counted.
    assert overview[0] == {"GetItem": 4, "Query": 1 + 21 * store.shards}
    # With the stack's delay, reports read what waits in a quiet site's journal too: the lease
    # and the journal's items, two Queries a request (`one_moment`); here the lease says a busy
    # batch's run (the five visits') let it go, and the read stops there.
    store._now_ms, store.counter_delay_ms = lambda: T0, 300_000
    tick = usage(lambda: viewer.get(f"/sites/{site.site_id}/live", headers={"HX-Request": "true"}))
    assert tick[0] == {"GetItem": 3, "Query": 11 * store.shards + 1}


def test_the_stats_api_and_a_csv_read_each_partitions_range_once(store, site, client, make_event, usage, log_in):
    """A stats API request and a CSV download read in one moment, as the dashboard's widgets
    do: never the same Query twice (a metric each before), and a quiet site's waiting journal
    once (its lease and items, with the stack's delay)."""
    store._now_ms, store.counter_delay_ms = lambda: T0, 300_000
    post_batch(client, site, visits(make_event, 2, first_number=200))
    aggregate_records(store, stream_records(store))
    store.create_user(User("viewer-1", "viewer@example.com", "hash", T0))
    store.put_membership(Membership(site.site_id, "viewer-1", "viewer", T0))
    viewer = log_in(store.get_user("viewer-1"))
    sent: Counter = Counter()
    store.client.meta.events.register("before-parameter-build.dynamodb.Query",
                                      lambda params, **_: sent.update([json.dumps(params, sort_keys=True)]))
    for url in (f"/api/stats?site={site.site_id}&period=today&breakdown=page,source,goals,events",
                f"/sites/{site.site_id}/reports/pages.csv?period=today"):
        sent.clear()
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert sent and max(sent.values()) == 1, url
        assert sum('"J#' in params for params in sent) == 2, url  # the lease, the waiting items
    assert response.get_data(as_text=True).count("/p20") == 2  # the pages, read from the journal


def test_what_a_twelve_month_report_costs(store, usage, record_property):
    """The DynamoDB requests of the whole reports page for 12 months, its eleven whole months
    rolled up: a read of days is one Query per write shard, a read of month rollups one Query
    (they live on shard 0); more only past 1 MB a Query, which month rollups of one site and
    metric reach only for very large sites."""
    from app.analytics import stats
    from app.analytics.periods import month_number, parse_period
    year = parse_period("12mo", "UTC", T0)
    store.set_rolled_up_month("example", month_number(year.last) - 1)
    site = store.get_site("example")
    reads = Counter()
    for method in ("read_counters", "read_sketches"):
        original = getattr(store, method)

        def counted(*args, _original=original, _method=method, **kwargs):
            grain = kwargs.get("grain") or (args[5] if len(args) > 5 else "day")
            reads["month" if grain == "month" else "other"] += 1
            return _original(*args, **kwargs)
        setattr(store, method, counted)
    dimensions = stats.BREAKDOWNS  # what the reports page breaks down
    requests, _, read_units = usage(lambda: stats.report(store, site, year, breakdowns=dimensions))
    print(f"\n12-month report, all {len(dimensions)} breakdowns: {reads['month']} reads of month rollups, "
          f"{reads['other']} of days: {requests.get('Query', 0)} Queries at {store.shards} shards "
          f"({reads['month'] + reads['other'] * 16} at production's 16), {read_units:.1f} read units")
    record_property("report_12mo_store_reads", dict(reads))
    assert reads["month"] > 0
    assert requests == {"Query": reads["month"] + reads["other"] * store.shards}


def test_backups_on_dynamodb_are_aws_own(store):
    with pytest.raises(StoreError, match="point-in-time recovery"):
        store.backup("/tmp/never-written.db")


@pytest.mark.parametrize("period_name", ["30d", "12mo"])
def test_what_a_goals_report_costs(store, usage, period_name, record_property):
    """The DynamoDB requests of the goals table (this period and the previous one), with two
    goals defined before the period: six reads a period (goal visits, goal events, conversions
    and values by name, all visits, the goal sketches), each one Query per write shard for
    days and one for month rollups."""
    from app.analytics import goal_reports, stats
    from app.analytics.goals import add_goal
    from app.analytics.periods import month_number, parse_period
    period = parse_period(period_name, "UTC", T0)
    site = store.get_site("example")
    for match in ("/pricing", "/blog/*"):
        add_goal(store, site, "", "page", match, "", "", T0 - 800 * 86_400_000)
    store.set_rolled_up_month("example", month_number(period.last) - 1)
    site = store.get_site("example")
    reads = Counter()
    for method in ("sum_counters", "read_sketches"):
        original = getattr(store, method)

        def counted(*args, _original=original, **kwargs):
            grain = kwargs.get("grain") or args[-1]
            reads["month" if grain == "month" else "other"] += 1
            return _original(*args, **kwargs)
        setattr(store, method, counted)
    requests, _, read_units = usage(lambda: goal_reports.goals(store, site, period))
    print(f"\ngoals report, {period_name}: {reads['month']} reads of month rollups, {reads['other']} of days: "
          f"{requests} at {store.shards} shards ({reads['month'] + reads['other'] * 16} Queries at "
          f"production's 16), {read_units:.1f} read units")
    record_property(f"goals_report_{period_name}_requests", dict(requests))
    assert reads["month"] + reads["other"] == 6 * len(stats._spans(site, period)) + 6 * len(
        stats._spans(site, period.previous()))
    assert requests == {"Query": reads["month"] + reads["other"] * store.shards}


def test_what_funnel_journey_and_cohort_reports_cost(store, record_property):
    """Bounded requests whatever the period (docs/dynamodb.md): a journey report reads the
    marks and digests of whole sealed months and of the sealed days around them (one Query
    each: digests live on shard 0), and the summaries of the days not sealed (one Query a
    shard); the first time, it also reads the sealed days' summaries and writes their digests."""
    from datetime import date

    from app.analytics import cohorts, funnels, journeys
    from app.ingest.sources import CHANNELS
    from app.analytics.periods import Period, day_number
    from tests.test_journeys import HISTORY, TODAY, send_history, signup_funnel
    site = send_history(store, lambda: aggregate_records(store, stream_records(store)),
                        [("page", "/pricing"), ("conversion", "signup")])
    counted = Usage(store.client)
    later = day_number(date(2027, 1, 20))  # November and December sealed: read as months
    period = Period("custom", date(2026, 11, 10), date(2027, 1, 20))
    funnel, [with_visitors] = signup_funnel(site), funnels.funnels_of(site)
    reports = {
        "funnel": lambda today: funnels.funnel_report(store, site, funnel, period, today),
        "funnel with visitors": lambda today: funnels.funnel_report(store, site, with_visitors, period, today),
        "funnel on phones": lambda today: funnels.funnel_report(store, site, funnel, period, today, {"device": "mobile"}),
        "funnel with visitors on phones": lambda today: funnels.funnel_report(store, site, with_visitors, period, today,
                                                                              {"device": "mobile"}),
        "funnel with visitors by device": lambda today: funnels.funnel_report(store, site, with_visitors, period, today,
                                                                              breakdown="device"),
        "funnel with visitors on desktop from search": lambda today: funnels.funnel_report(
            store, site, with_visitors, period, today, {"device": "desktop", "channel": "search"}),
        "paths": lambda today: journeys.top_paths(store, site, period, today, 3),
        "page flow": lambda today: journeys.next_and_previous(store, site, period, today, "/"),
    }
    costs = {}
    for name, report in reports.items():
        for run in ("cold", "warm"):
            counted.reset()
            report(later)
            costs[f"{name} {run}"] = dict(counted.requests)
            assert "Scan" not in counted.requests
    counted.reset()
    cohorts.cohort_table(store, site, TODAY, "week", 53)
    costs["cohorts 53 weeks"] = dict(counted.requests)
    print(f"\n{len(HISTORY)} visits, {store.shards} shards: {costs}")
    record_property("journey_report_requests", costs)
    # Warm: the marks and digests of the months (2) and of the days before and after them (2 x
    # 2), the days not sealed yet (a shard each); the page flow reads both directions at once.
    assert costs["paths warm"] == costs["page flow warm"] == {"Query": 2 + 2 * 2 + store.shards}
    # A funnel made before the period also reads its steps' visitor sketches (days not rolled up
    # into months: a shard each); one made within it (on the 18th), whether visits of the days
    # before took its first step: the marks and digests of those sealed days.
    assert costs["funnel with visitors warm"] == {"Query": costs["paths warm"]["Query"] + store.shards}
    assert costs["funnel warm"] == {"Query": costs["paths warm"]["Query"] + 2}
    # Filtered by one value: the digests the unfiltered one wrote (their keys of that value), and
    # as unfiltered for its visitors, from the sketches of that dimension's values (a partition
    # of the funnel's own).
    assert costs["funnel on phones cold"] == costs["funnel on phones warm"] == costs["funnel warm"]
    assert costs["funnel with visitors on phones warm"] == costs["funnel with visitors warm"]
    # Broken down: the whole digest, and the funnel's sketches read once for the steps and the
    # values. Under two filters: the digest of its own, and the same sketches.
    assert costs["funnel with visitors by device warm"] == costs["funnel with visitors warm"]
    assert costs["funnel with visitors on desktop from search warm"] == costs["funnel with visitors warm"]
    assert costs["cohorts 53 weeks"] == {"Query": len(CHANNELS) * store.shards}  # one read a first channel
    assert costs["funnel cold"]["BatchWriteItem"] >= 1


def test_commands_refuse_a_store_whose_tables_the_stack_did_not_make(store, clock):
    """A wrong table prefix or region in LIVEINSIGHT_STORE: create-site says so and makes no
    table (it used to make four new, empty ones outside the stack); the stack's store works."""
    from app import create_app
    from app.store.dynamodb import DynamoDBStore

    def create_site_with(some_store):
        app = create_app({"TESTING": True, "SECRET_KEY": "x"}, store=some_store, clock=clock)
        with app.app_context():  # as `flask` gives every command
            return app.test_cli_runner().invoke(args=["create-site", "Blog", "--domain", "blog.example"])

    wrong = create_site_with(DynamoDBStore("typo", shards=4))
    assert wrong.exit_code == 1
    assert "no table typo-accounts, typo-aggregates, typo-events, typo-sites in us-east-1" in wrong.output
    assert not [name for name in store.client.list_tables()["TableNames"] if name.startswith("typo")]
    right = create_site_with(store)
    assert right.exit_code == 0, right.output
    site_id = right.output.strip().splitlines()[-1].split()[0]
    assert store.get_site(site_id).name == "Blog"


def test_a_dead_letter_batch_is_read_back_from_the_stream_and_folded_once(store, site, clock, make_event):
    """The aggregator gave up on a batch (say, DynamoDB failed every retry): Lambda put where it
    was in the dead-letter queue. replay-dead-letters reads its records back from the stream and
    folds them, once however often it runs, and empties the queue."""
    import boto3

    from app import create_app

    events = [make_event(event_id=f"dead-letter-{n}", user_id=f"v{n}", session_id=f"s{n}") for n in range(3)]
    result = record_batch(store, site, events, Client("198.51.100.23", CHROME_UA), clock.now_ms())
    assert result.accepted == 3, result
    records = stream_records(store)  # what Lambda read, and then failed to fold
    numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
    batch_info = {"shardId": _only_shard(store), "startSequenceNumber": numbers[0],
                  "endSequenceNumber": numbers[-1], "batchSize": len(records),
                  "streamArn": records[0]["eventSourceARN"]}
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="liveinsight-test-aggregate-dead-letters")["QueueUrl"]
    app = create_app({"TESTING": True, "SECRET_KEY": "x"}, store=store, clock=clock)

    def replay() -> str:
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["replay-dead-letters", queue])
        assert result.exit_code == 0, result.output
        return result.output

    def page_views() -> float:
        return store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6).get("page_view", 0)

    assert page_views() == 0
    for _ in range(2):  # the same batch dead twice (a replay that was interrupted): folded once
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"version": "1.0", "DDBStreamBatchInfo": batch_info}))
        assert replay().startswith("1 batches (3 records) folded; 0 failed again, 0 no longer in the stream")
        assert page_views() == 3
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_dead_letter_record_past_the_age_visits_remember_their_events_is_not_folded(store, site, clock,
                                                                                     make_event, monkeypatch):
    """A visit remembers its applied events 23 hours (folding.py): a record read back from the
    stream over 22 hours after it was written might count twice, so replay-dead-letters leaves
    it, says so, and empties the queue of its batch."""
    import time

    import boto3

    from app import create_app, lambda_handlers

    events = [make_event(event_id=f"too-old-to-fold-{n}", user_id=f"v{n}", session_id=f"s{n}") for n in range(2)]
    assert record_batch(store, site, events, Client("198.51.100.23", CHROME_UA), clock.now_ms()).accepted == 2
    records = stream_records(store)
    numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="liveinsight-test-old-dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"version": "1.0", "DDBStreamBatchInfo": {
        "shardId": _only_shard(store), "startSequenceNumber": numbers[0], "endSequenceNumber": numbers[-1],
        "batchSize": len(records), "streamArn": records[0]["eventSourceARN"]}}))
    replay = lambda_handlers.replay_dead_letters
    later = time.time() + folding.MAX_RECORD_AGE_S + 60  # the records' age when the replay runs
    monkeypatch.setattr(lambda_handlers, "replay_dead_letters", lambda *a: replay(*a, now_s=later))
    app = create_app({"TESTING": True, "SECRET_KEY": "x"}, store=store, clock=clock)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["replay-dead-letters", queue])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "1 batches (0 records) folded; 0 failed again, 0 no longer in the stream: left in the queue",
        "2 records were over 22 hours old and were not folded: whether they were counted already is no longer known"]
    assert store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6) == {}
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"


def _only_shard(store) -> str:
    import boto3
    arn = store.client.describe_table(TableName=store.events_table)["Table"]["LatestStreamArn"]
    shards = boto3.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    assert len(shards) == 1  # moto: one shard a table
    return shards[0]["ShardId"]


def test_a_deleted_sites_traffic_goes_at_the_next_purge_and_its_id_waits_for_it(store, site, clock, make_event,
                                                                                monkeypatch):
    """On AWS the web function deletes the site and marks its traffic; the hourly purge deletes
    the traffic. Another container still taking the site's events meanwhile keeps the mark, and
    the id cannot be taken again before the purge (the new site would inherit the traffic)."""
    from app.store.dynamodb import DynamoDBStore

    first, second = sessions_on_two_shards(store, monkeypatch)
    for session, visitor in ((first, "visitor-1"), (second, "visitor-2")):  # a pack on each shard
        record_batch(store, site, [make_event(session_id=session, user_id=visitor)], Client("198.51.100.23", CHROME_UA),
                     clock.now_ms())
        aggregate_records(store, stream_records(store))
    listed = [item["sk"]["S"] for item in statistics_items(store, site.site_id) if item["pk"]["S"].endswith("#partitions")]
    # An item a key names all its shards: the two shards written are listed once.
    assert listed and all(key.endswith("#*") for key in listed) and len(set(listed)) == len(listed)
    assert f"K#{site.site_id}#day#page#*" in listed and f"J#{site.site_id}#*" in listed
    # A list item from before (a partition a shard), with its counter, goes too.
    legacy = f"K#{site.site_id}#day#legacy#3"
    store.client.put_item(TableName=store.aggregates_table, Item=store._key(f"K#{site.site_id}#partitions", legacy))
    store.client.put_item(TableName=store.aggregates_table, Item=store._key(legacy, "0000020774#"))
    store.delete_site(site.site_id)
    assert store.get_site(site.site_id) is None
    other_container = DynamoDBStore("test", shards=4)  # its events were on their way
    other_container.append_events([{**store.recent_events(site.site_id, 1)[0], "event_id": "late-event-0001"}])
    with pytest.raises(StoreError, match="still being deleted"):
        store.create_site(site)
    assert statistics_items(store, site.site_id)
    deleted = store.purge(clock.now_ms())
    assert deleted["events"] == 3 and deleted["sessions"] == 2 and deleted["counters"] > 0
    assert deleted["journal"] == 2  # the two shards' journal leases
    assert statistics_items(store, site.site_id) == []  # found through their partitions' list
    assert store.recent_events(site.site_id, 10) == [] and store.get_sessions(site.site_id, ["session-1"]) == {}
    store.create_site(site)  # free again
    assert store.get_site(site.site_id) == site


def test_a_visit_of_a_slow_clock_is_kept_by_its_arrival_so_a_redelivery_is_still_skipped(store, site, clock,
                                                                                            make_event):
    """A browser whose clock is 23.5 hours slow: by its events' time its visit would be swept an
    hour later, while Lambda may still deliver its stream records again (up to 22 hours after
    their arrival: MaximumRecordAgeInSeconds). The visit remembers the events it applied and is
    kept by their arrival, to the end of the hour 23 hours on, so a redelivery is skipped, not
    counted twice; then it goes."""
    received = clock.now_ms()
    slow = received - int(23.5 * HOUR_MS)
    events = [make_event(event_id=f"slow-clock-{n}", timestamp=slow + n * 1000) for n in range(3)]
    assert record_batch(store, site, events, Client("198.51.100.23", CHROME_UA), received).accepted == 3
    records = stream_records(store)
    aggregate_records(store, records)
    counted = store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6)
    assert counted == {"page_view": 3.0}
    assert store.purge(received + HOUR_MS)["sessions"] == 0  # its events' time would have swept it
    assert aggregate_records(store, records) == {"batchItemFailures": []}  # Lambda delivers the batch again
    assert store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6) == counted
    kept_until = -(-(received + 23 * HOUR_MS) // HOUR_MS) * HOUR_MS
    assert store.purge(kept_until - 1)["sessions"] == 0
    assert store.purge(kept_until)["sessions"] == 1


def test_a_visits_item_remembers_its_events_in_any_batches_and_the_markers_before_are_still_read(
        store, site, clock, make_event):
    """A visit's item holds a digest of each event applied to it, written with it in the
    transaction: a request's events folded in two batches, then delivered again, count once,
    and no marker item is written. The markers of the releases before (an item a request, and
    an event's own before that) still keep a redelivery from counting (docs/dynamodb.md,
    "Applied events in the visit's item")."""
    received = clock.now_ms()
    events = [make_event(event_id=f"request-{n}", type="heartbeat" if n else "page_view",
                         timestamp=received - (3 - n) * 1000) for n in range(3)]
    assert record_batch(store, site, events, Client("198.51.100.23", CHROME_UA), received).accepted == 3
    records = stream_records(store)
    assert len(records) == 3
    for batch in (records[:1], records[1:], records):  # the last: all of them delivered again
        assert aggregate_records(store, batch) == {"batchItemFailures": []}
    assert store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6) == {"page_view": 1, "heartbeat": 2}
    visit_pk = store._session_pk(site.site_id, "session-1")
    (visit,) = store.client.query(TableName=store.aggregates_table, KeyConditionExpression="pk = :pk",
                                  ExpressionAttributeValues={":pk": {"S": visit_pk}})["Items"]
    assert visit["sk"]["S"] == "session"  # the visit alone: no marker item
    (hour, digests), = visit["applied"]["M"].items()  # in the order applied: the puts ran in parallel
    chunk = digests["B"]
    assert hour == str(received // HOUR_MS) and len(chunk) == 3 * folding.DIGEST_BYTES
    size = folding.DIGEST_BYTES
    assert {chunk[i:i + size] for i in range(0, 3 * size, size)} == {folding._digest(f"request-{n}") for n in range(3)}

    later = received + 60_000
    for n, (old_marker, ids) in enumerate([(f"req#{later - 5_000:015d}", ["folded-by-a-release-before-0"]),
                                           ("event#folded-by-a-release-before-1", None)]):
        store.client.put_item(TableName=store.aggregates_table, Item={
            **store._key(visit_pk, old_marker), **({"ids": {"SS": ids}} if ids else {}),
            "expires_at": {"N": str((later + DAY_MS) // 1000)}})
    old = [make_event(event_id=f"folded-by-a-release-before-{n}", type="heartbeat", timestamp=later) for n in range(2)]
    assert record_batch(store, site, old[:1], Client("198.51.100.23", CHROME_UA), later - 5_000).accepted == 1
    assert record_batch(store, site, [old[1], make_event(type="heartbeat", timestamp=later)],
                        Client("198.51.100.23", CHROME_UA), later).accepted == 2
    assert aggregate_records(store, stream_records(store)) == {"batchItemFailures": []}
    assert store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6) == {"page_view": 1, "heartbeat": 3}


def test_a_visit_put_with_an_event_set_aside_keeps_what_it_remembered(store, site, clock, make_event,
                                                                      poison_breaks_folding):
    """A request with an event that cannot be folded gets a marker (with the error) instead of
    going in its visit's item; the visit, changed by the request's other event, is put again
    and still remembers the events of the request before."""
    first = clock.now_ms()
    assert record_batch(store, site, [make_event(event_id="remembered-first", timestamp=first)],
                        Client("198.51.100.23", CHROME_UA), first).accepted == 1
    before = stream_records(store)
    assert aggregate_records(store, before) == {"batchItemFailures": []}
    later = first + 60_000
    assert record_batch(store, site, [
        make_event(event_id="set-aside-poison", url="https://example.com/poison", timestamp=later - 1),
        make_event(event_id="folded-beside-it", url="https://example.com/b", timestamp=later)],
        Client("198.51.100.23", CHROME_UA), later).accepted == 2
    assert aggregate_records(store, stream_records(store)) == {"batchItemFailures": []}
    visit_pk = store._session_pk(site.site_id, "session-1")
    marker = store.client.get_item(TableName=store.aggregates_table, Key=store._key(visit_pk, f"req#{later:015d}"))
    assert set(marker["Item"]["ids"]["SS"]) == {"set-aside-poison", "folded-beside-it"}
    assert "ValueError" in marker["Item"]["set_aside:set-aside-poison"]["S"]
    assert aggregate_records(store, before) == {"batchItemFailures": []}  # the first request again: skipped
    assert store.sum_counters(site.site_id, "pageviews", "page", 0, 10 ** 6) == {"/": 1, "/b": 1}


def test_a_long_visit_forgets_the_events_no_redelivery_can_bring_again(store, site, clock, make_event):
    """A tab sending events for over a day keeps one visit item (a visit a 30-minute gap, `seq`):
    it remembers what arrived in the last 23 hours, not all it ever applied, so it does not grow
    without end; what it still remembers is still skipped."""
    visit_pk = store._session_pk(site.site_id, "session-1")
    first = clock.now_ms()
    remembered = {0: (0,), 20: (0, 20), 26: (20, 26)}  # at 26 h, what arrived at 0 h is 26 hours old
    for hours, kept in remembered.items():
        at = first + hours * HOUR_MS
        event = make_event(event_id=f"the-hour-{hours}", timestamp=at)
        assert record_batch(store, site, [event], Client("198.51.100.23", CHROME_UA), at).accepted == 1
        records = stream_records(store)
        assert aggregate_records(store, records) == {"batchItemFailures": []}
        applied = store.client.get_item(TableName=store.aggregates_table,
                                        Key=store._key(visit_pk, "session"))["Item"]["applied"]["M"]
        assert sorted(applied) == [str((first + h * HOUR_MS) // HOUR_MS) for h in kept]
    assert aggregate_records(store, records) == {"batchItemFailures": []}  # the newest again: skipped
    assert store.sum_counters(site.site_id, "events", "type", 0, 10 ** 6) == {"page_view": 3}


def test_the_purge_deletes_a_visit_with_what_it_remembers_of_its_events(store, site, clock, make_event):
    """Nothing of a swept visit is left for TTL: its applied events were in its item."""
    received = clock.now_ms()
    assert record_batch(store, site, [make_event(event_id=f"swept-visit-{n}") for n in range(2)],
                        Client("198.51.100.23", CHROME_UA), received).accepted == 2
    aggregate_records(store, stream_records(store))
    assert store.purge(received + DAY_MS + HOUR_MS)["sessions"] == 1
    left = store.client.query(TableName=store.aggregates_table, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": store._session_pk(site.site_id, "session-1")}})
    assert left["Items"] == []


def statistics_items(store, site_id: str) -> list[dict]:
    """The site's counter, sketch and journal items, and the list of their partitions (a test may scan)."""
    items = store.client.scan(TableName=store.aggregates_table)["Items"]
    return [item for item in items if item["pk"]["S"].startswith((f"K#{site_id}#", f"U#{site_id}#", f"J#{site_id}#"))]


def test_statistics_are_left_to_ttl_and_hidden_once_the_purge_has_passed_their_expiry(store, site, clock,
                                                                                      make_event, monkeypatch):
    """Counters and sketches enter no index and the purge deletes none (TTL does, within days,
    for free). Reads skip those the last purge found expired, in every process within a minute:
    as on SQLite, where the purge deleted them."""
    from app.store.dynamodb import DynamoDBStore
    day = clock.now_ms() // DAY_MS
    record_batch(store, site, [make_event()], Client("198.51.100.23", CHROME_UA), clock.now_ms())
    aggregate_records(store, stream_records(store))
    other_process = DynamoDBStore("test", shards=4)

    def figures(reader) -> tuple[dict, int]:
        return (reader.sum_counters(site.site_id, "pageviews", "", day, day + 1),
                len(reader.read_sketches(site.site_id, "", day, day + 1)))
    assert figures(store) == figures(other_process) == ({"": 1}, 1)
    made = statistics_items(store, site.site_id)
    assert made and not any("xpk" in item for item in made)  # in no index
    deleted = store.purge(clock.now_ms() + 403 * DAY_MS)
    assert deleted["counters"] == deleted["sketches"] == 0 and statistics_items(store, site.site_id) == made
    assert figures(store) == ({}, 0)
    assert figures(other_process) == ({"": 1}, 1)  # its horizon is the one it read, for up to a minute
    monkeypatch.setattr(retention, "HORIZON_READ_EVERY_S", 0)
    assert figures(other_process) == ({}, 0)
    store.purge(clock.now_ms())  # an earlier "now" (a purge that started before) never moves it back
    assert figures(store) == figures(other_process) == ({}, 0)


def test_a_visitors_expiry_moves_once_an_hour_and_within_24_hours(store, site, clock, make_event):
    """The visitor item's expires_at (the `expiry` index's sort key) is on the hour before last
    seen + 24 h: a visitor's batches within an hour leave the index entry where it is."""
    def expiry_after_a_batch_at(ms: int) -> int:
        clock.now = ms
        record_batch(store, site, [make_event(timestamp=ms)], Client("198.51.100.23", CHROME_UA), ms)
        aggregate_records(store, stream_records(store))
        item = store.client.get_item(TableName=store.aggregates_table,
                                     Key=store._key(store._visitor_pk(site.site_id, "visitor-1"), "visitor"))["Item"]
        return int(item["expires_at"]["N"])
    hour = (clock.now_ms() // HOUR_MS + 1) * HOUR_MS
    first, later = expiry_after_a_batch_at(hour + 60_000), expiry_after_a_batch_at(hour + 50 * 60_000)
    assert first == later == (hour + DAY_MS) // 1000  # kept at most 24 h after the visitor was last seen
    assert expiry_after_a_batch_at(hour + HOUR_MS + 60_000) == first + 3600


def old_day_counter(store, site_id: str, day: int, metric: str, dimension: str, value: str, n: int,
                    shard: int) -> None:
    """What the release before packed counters wrote: an ADD to the metric's own item."""
    from app.store.dynamodb.client import _bucket_expires_s, _bucket_sort_key
    store.client.update_item(
        TableName=store.aggregates_table,
        Key=store._key(f"C#{site_id}#day#{metric}#{dimension}#{shard}", _bucket_sort_key(day, value)),
        UpdateExpression="ADD n :n SET #value = :value, xpk = :xpk, expires_at = :exp",
        ExpressionAttributeNames={"#value": "value"},
        ExpressionAttributeValues={":n": {"N": str(n)}, ":value": {"S": value}, ":xpk": {"S": f"{site_id}#{shard}"},
                                   ":exp": {"N": str(_bucket_expires_s("day", day))}})


def test_counters_kept_a_metric_an_item_move_to_packed_items_once_at_the_next_purge(store, site, clock,
                                                                                    make_event):
    """An earlier release kept a counter item per metric (`C#...`, its count in `n`). The purge
    moves them into today's items (a metric an attribute) and adds them to what was counted
    since; a move cut short or done twice counts nothing twice; then the site is marked
    `packed` and not walked again."""
    from app.store.dynamodb.client import REGISTRY_PK
    day = clock.now_ms() // DAY_MS
    old_counter = functools.partial(old_day_counter, store, site.site_id, day)
    for shard in (0, 3):
        old_counter("pageviews", "page", "/", 5, shard)
        old_counter("sessions", "page", "/", 2, shard)
    old_counter("pageviews", "page", "/pricing", 7, 1)
    record_batch(store, site, [make_event()], Client("198.51.100.23", CHROME_UA), clock.now_ms())
    aggregate_records(store, stream_records(store))  # today's code: a page view of "/" on a shard

    def pages(metric: str) -> dict[str, float]:
        return store.sum_counters(site.site_id, metric, "page", day, day + 1)
    assert pages("pageviews") == {"/": 1}  # the old items are not read where they are
    sequence = Usage(store.client)
    late = [store._move(item, olds, 0)  # another purge at the same moment, which read first
            for item, olds in store._old_items(site.site_id, 0).items()]
    store.purge(clock.now_ms())
    assert pages("pageviews") == {"/": 11, "/pricing": 7} and pages("sessions") == {"/": 4}
    assert sequence.requests["TransactWriteItems"] == 3  # one a new item: "/" on two shards, "/pricing"
    assert late and not any(store._transact(move) for move in late)  # cancelled: the items had gone
    assert pages("pageviews") == {"/": 11, "/pricing": 7}
    registry = store._key(REGISTRY_PK, site.site_id)
    assert "packed" not in store.client.get_item(TableName=store.aggregates_table, Key=registry)["Item"]
    store.purge(clock.now_ms())  # finds none left: marks the site
    assert "packed" in store.client.get_item(TableName=store.aggregates_table, Key=registry)["Item"]
    sequence.reset()
    store.purge(clock.now_ms())
    assert sequence.requests.get("TransactWriteItems", 0) == 0 and sequence.requests.get("BatchGetItem", 0) == 0
    assert pages("pageviews") == {"/": 11, "/pricing": 7}


def test_requests_sent_from_the_pool_run_in_the_thread_that_sends_them(store):
    """A pool worker that sends requests in parallel runs them itself: queued behind it, with
    every worker of the pool waiting so, they would never run (the upgrade's moves did that)."""
    import threading

    def sends(_) -> set[bool]:
        me = threading.current_thread().name
        return {name == me for name in store._map(lambda _: threading.current_thread().name, range(3))}
    assert store._map(sends, range(2)) == [{True}, {True}]  # 2 of the 4 workers: never all waiting


def test_the_upgrade_moves_several_items_of_every_shard_at_once(store, site, clock):
    """The purge finds the old items shard by shard in parallel, then sends every move in
    parallel from its own thread (several a shard: before, each shard's worker sent its own)."""
    day = clock.now_ms() // DAY_MS
    pages = ("/a", "/b", "/c")
    store._register_sites([site.site_id])  # as the release before did when it took the site's events
    for shard in range(store.shards):
        for page in pages:
            old_day_counter(store, site.site_id, day, "pageviews", "page", page, 1, shard)
    store.purge(clock.now_ms())
    assert store.sum_counters(site.site_id, "pageviews", "page", day, day + 1) == dict.fromkeys(pages, store.shards)


def test_the_realtime_counters_are_added_after_the_transaction_and_a_lost_one_only_skews_them(
        store, site, clock, make_event, caplog):
    """The live widgets' minute counters and the realtime chart's 5-minute ones are written
    after a pack's transaction, a write unit each, and left to TTL (out of `expiry`). If those
    writes fail, the pack is still folded once, and its redelivery adds nothing: the visitor is
    missing from the live counters (their next move takes them from where the lost write would
    have put them) until the minute of the lost write leaves the widgets' 30 minutes, and the
    5-minute slot is short of the page view; never counted twice, and the reports' hours and
    days (the journal's) are whole."""
    from app.analytics import realtime as rt
    now = clock.now_ms()
    record_batch(store, site, [make_event(timestamp=now)], Client("198.51.100.23", CHROME_UA), now)
    records = stream_records(store)
    update_item = store.client.update_item

    def refuse_minutes(**request):
        if "#minute#" in request["Key"]["pk"]["S"] or "#5min#" in request["Key"]["pk"]["S"]:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
        return update_item(**request)
    store.client.update_item = refuse_minutes
    try:
        assert aggregate_records(store, records) == {"batchItemFailures": []}
    finally:
        store.client.update_item = update_item
    assert "realtime counters of a folded pack were not all added" in caplog.text
    assert rt.current_visitors(store, site, now)["last_5_minutes"] == 0
    assert store.sum_counters(site.site_id, "pageviews", "", 0, 10**12, "5min") == {}
    assert aggregate_records(store, records) == {"batchItemFailures": []}  # delivered again: applied already
    assert rt.current_visitors(store, site, now)["last_5_minutes"] == 0
    assert store.sum_counters(site.site_id, "pageviews", "", 0, 10**6, "day") == {"": 1}
    assert store.sum_counters(site.site_id, "pageviews", "", 0, 10**9, "hour") == {"": 1}

    later = now + 2 * 60_000
    record_batch(store, site, [make_event(type="heartbeat", timestamp=later)], Client("198.51.100.23", CHROME_UA), later)
    assert aggregate_records(store, stream_records(store)) == {"batchItemFailures": []}
    assert rt.current_visitors(store, site, later) == {"last_5_minutes": 0, "last_30_minutes": 0}  # -1 then +1
    healed = now + 31 * 60_000
    record_batch(store, site, [make_event(type="heartbeat", timestamp=healed)], Client("198.51.100.23", CHROME_UA),
                 healed)
    assert aggregate_records(store, stream_records(store)) == {"batchItemFailures": []}
    assert rt.current_visitors(store, site, healed) == {"last_5_minutes": 1, "last_30_minutes": 1}
    minute_items = [item for item in store.client.scan(TableName=store.aggregates_table)["Items"]
                    if "#minute#" in item["pk"]["S"]]
    assert minute_items and all("xpk" not in item for item in minute_items)  # out of `expiry`: the sweep never lists them
    for item in minute_items:  # TTL deletes them a day after their minute, as SQLite's purge does
        assert int(item["expires_at"]["N"]) == (int(item["sk"]["S"][:10]) + 1) * 60 + DAY_MS // 1000


def test_a_minutes_live_pages_and_sources_ride_in_its_live_item_until_it_is_past_a_write_unit(
        store, site, clock, ingest, make_event):
    """A visitor's move in the live widgets is a write of the minute's "live" item, their page
    and source inside it (not an item each); once that item is past a write unit (many long
    pages), this process writes an item a value for the rest of the minute, and reads add up
    both, so a visitor counted in the item moves out of it through an item of its own."""
    from app.analytics import realtime as rt
    now, site_id = clock.now_ms(), site.site_id
    minute = now // 60_000

    def view(visitor: int, path: str, at: int = now) -> None:
        ingest(make_event(user_id=f"u{visitor}", session_id=f"s{visitor}", timestamp=at,
                          url=f"https://example.com/{path}", referrer="https://news.example.org/"), at=at)

    def items(dimension: str) -> list[dict]:
        return raw_counter_items(store, CounterKey(site_id, minute, "visitors", dimension, "", "minute"))

    view(0, "home")
    (live,) = items("live")
    counted = {name: float(value["N"]) for name, value in live.items() if "N" in value and name != "expires_at"}
    assert counted == {"n:visitors": 1, "live_page:/home": 1, "live_source:news.example.org": 1}
    assert items("live_page") == items("live_source") == []
    long_pages = [f"{'x' * 200}/{v}" for v in range(1, 8)]
    for visitor, path in enumerate(long_pages, start=1):
        view(visitor, path)
    assert (site_id, minute) in store._wide_live  # 4 pages of 200 characters took it past 1 KB
    assert 0 < len(items("live_page")) < len(long_pages)  # the pages after that: an item each
    view(0, "pricing", at=now + 1_000)  # out of the live item's "/home", into an item of its own
    assert rt.live_pages(store, site, now + 1_000) == sorted(
        [{"name": f"/{path}", "visitors": 1} for path in [*long_pages, "pricing"]], key=lambda r: r["name"])
    assert rt.live_sources(store, site, now + 1_000) == [{"name": "news.example.org", "visitors": 8}]
    assert rt.current_visitors(store, site, now + 1_000) == {"last_5_minutes": 8, "last_30_minutes": 8}


def test_a_spikes_pages_and_sources_read_the_minutes_live_items_once(store, clock, make_event):
    """A traffic spike's alert names the pages and sources of its visitors: both are read from
    one moment, so the minute's live items (which hold a quiet site's pages and sources) are
    read once a shard, not once for the pages and again for the sources."""
    from app.alerts import settings as alert_settings
    from app.alerts.evaluate import minute_alerts
    from app.store.base import Site
    now = clock.now_ms()
    site = Site("old", "Old", "pk_old", ["example.com"], "UTC", now - 60 * DAY_MS)  # it has a baseline
    store.create_site(site)
    alert_settings.set_traffic(store, site, True, "normal", "1", "1")
    events = [make_event(session_id=f"s{i}", user_id=f"v{i}", url=f"https://example.com/p{i}") for i in range(30)]
    record_batch(store, site, events, Client("198.51.100.23", CHROME_UA), now)
    assert aggregate_records(store, stream_records(store)) == {"batchItemFailures": []}
    live_reads = Counter()

    def count(model, params, **_):
        partition = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if model.name == "Query" and "#minute#" in partition:
            live_reads[partition.rsplit("#", 1)[0]] += 1
    store.client.meta.events.register("before-parameter-build.dynamodb", count)
    fired = minute_alerts(store, now + 5 * 60_000)
    assert [alert.kind for _, alert in fired] == ["spike"]
    assert live_reads == {f"K#old#minute#{dimension}": store.shards for dimension in ("live", "live_page", "live_source")}


def test_the_purge_deletes_each_page_of_expired_keys_before_reading_the_next(store, site, clock, make_event,
                                                                             monkeypatch):
    """At 10,000 events a second five minutes of raw data are millions of keys: the purge never
    holds them all (docs/dynamodb.md). Pages of 2 keys here stand for DynamoDB's 1 MB pages."""
    events = [make_event(type="heartbeat" if i else "page_view", timestamp=clock.now_ms() + i) for i in range(6)]
    record_batch(store, site, events, Client("198.51.100.23", CHROME_UA), clock.now_ms())
    aggregate_records(store, stream_records(store))
    feed = f"{site.site_id}#{store._shard('session-1')}"
    calls = []
    query, batch_write = store.client.query, store.client.batch_write_item

    def small_pages(**params):
        if params.get("IndexName") == "by_time" and params["ExpressionAttributeValues"][":p"]["S"] == feed:
            calls.append("Query")
        return query(**{**params, "Limit": 2})

    def noted(**params):
        if store.events_table in params["RequestItems"]:
            calls.append("BatchWriteItem")
        return batch_write(**params)
    monkeypatch.setattr(store.client, "query", small_pages)
    monkeypatch.setattr(store.client, "batch_write_item", noted)
    assert store.purge(clock.now_ms() + 2 * DAY_MS)["events"] == 6
    assert calls[:6] == ["Query", "BatchWriteItem"] * 3
