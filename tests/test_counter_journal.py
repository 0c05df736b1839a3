"""The counter journal on DynamoDB (app/store/dynamodb/journal.py): a pack's counter deltas and
sketch additions wait in one journal item, then are added merged, once, however an applier dies
or races another; meanwhile reports add what a quiet site's journal holds, and count nothing
twice. `ingest` folds what it sends as the stream function does (conftest.settle)."""
from __future__ import annotations

import threading
from collections import Counter, defaultdict

import pytest
from botocore.exceptions import ClientError

from app import lambda_handlers
from app.store.base import HOUR_MS, StoreError
from app.store import hll
from app.store.dynamodb import journal as journal_module
from app.store.dynamodb.folding import QUIET_SHARD
from app.store.dynamodb.journal import (
    BUSY_DELAY_MS, LEASE_MS, LEASE_SK, decode_deltas, encode_deltas, encode_visitors,
)
from app.store.dynamodb.traffic import metric_attribute
from tests.conftest import T0

pytestmark = pytest.mark.parametrize("backend", ["dynamodb"])

DELAY_MS = 60_000
HOUR = T0 // HOUR_MS
QUIET = QUIET_SHARD  # where a quiet site's packs journal (folding.QUIET_BELOW): every test's but the rule's


@pytest.fixture
def now(store):
    """The store's clock, which stamps journal items and says what is due; tests move it."""
    moment = {"ms": T0}
    store._now_ms = lambda: moment["ms"]
    return moment


def pageviews(store) -> float:
    """The hour's page views as reports read them: the counters, and the quiet journal's waiting deltas."""
    return sum(r.n for r in store.read_counters("example", "pageviews", "", HOUR, HOUR + 1))


def applied_pageviews(store) -> float:
    """The hour's page views the counter items hold: what the journal's applier added."""
    items = store._buckets(lambda shard: store._counter_pk("example", "hour", "", shard), HOUR, HOUR + 1, "hour")
    return sum(float(item[metric_attribute("pageviews")]["N"]) for item in items)


def visitors_today(store) -> int:
    day = T0 // 86_400_000
    return round(hll.count_visitors([r.sketch for r in store.read_sketches("example", "", day, day + 1)]))


def applied_visitors_today(store) -> int:
    day = T0 // 86_400_000
    items = store._buckets(lambda shard: store._sketch_pk("example", "", shard), day, day + 1, "day")
    return round(hll.count_visitors([item["sketch"]["B"] for item in items]))


def journal(store, shard: int) -> list[dict]:
    pk = store._journal_pk("example", shard)
    return [item for item in store.client.query(
        TableName=store.aggregates_table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}})["Items"] if item["sk"]["S"] != LEASE_SK]


def pending_deltas(store, shard: int) -> dict[tuple, dict[str, float]]:
    """The journal's deltas summed by counter item: what its applier must add, exactly."""
    merged: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for entry in journal(store, shard):
        for item, metrics in decode_deltas("example", entry["deltas"]["B"]).items():
            for metric, n in metrics.items():
                merged[item][metric] += n
    return merged


def stored_counters(store, items, shard: int) -> dict[tuple, dict[str, float]]:
    """What the counter items hold on one shard, metric by metric."""
    found = {}
    for item, metrics in items.items():
        key = store._key(store._counter_pk("example", item[1], item[2], shard),
                         store._counter_update(item, metrics, shard)["Key"]["sk"]["S"])
        stored = store.client.get_item(TableName=store.aggregates_table, Key=key, ConsistentRead=True).get("Item", {})
        found[item] = {m: float(stored[metric_attribute(m)]["N"]) for m in metrics if metric_attribute(m) in stored}
    return found


def reported(store, items) -> dict[tuple, dict[str, float]]:
    """What reports read of these counter items, metric by metric (with what waits in the journal)."""
    found = {}
    for (site_id, grain, dimension, bucket, value), metrics in items.items():
        found[site_id, grain, dimension, bucket, value] = {
            metric: sum(row.n for row in store.read_counters(site_id, metric, dimension, bucket, bucket + 1, grain)
                        if row.value == value)
            for metric in metrics}
    return found


def counted_queries(store) -> Counter:
    """Queries sent, by partition key and key condition, from here on."""
    sent: Counter = Counter()
    store.client.meta.events.register(
        "before-parameter-build.dynamodb.Query",
        lambda params, **_: sent.update([(params["ExpressionAttributeValues"].get(":pk", {}).get("S", ""),
                                          params["KeyConditionExpression"])]))
    return sent


def counted_updates(store) -> Counter:
    """UpdateItems sent, by partition key kind, from here on."""
    sent: Counter = Counter()
    store.client.meta.events.register("before-parameter-build.dynamodb.UpdateItem",
                                      lambda params, **_: sent.update([params["Key"]["pk"]["S"].split("#")[0]]))
    return sent


def test_with_a_delay_deltas_wait_then_are_added_merged_in_one_write_an_item(store, site, ingest, make_event,
                                                                          clock, now):
    store.counter_delay_ms = DELAY_MS
    shard = QUIET
    ingest(make_event(session_id="visit-1"))
    # In the journal, not in the hourly counters; the realtime page's 5-minute page views and
    # live minute counters are written at once all the same, and reports add what the quiet
    # journal holds to what they read.
    assert applied_pageviews(store) == 0 and len(journal(store, shard)) == 1
    assert pageviews(store) == 1
    five = T0 // 300_000
    assert sum(r.n for r in store.read_counters("example", "pageviews", "", five, five + 1, grain="5min")) == 1
    assert store.read_counters("example", "visitors", "live", 0, 10**12, grain="minute")[0].n == 1

    now["ms"] = clock.now = T0 + 20_000  # the visit goes on: a heartbeat and a second page
    ingest(make_event(session_id="visit-1", type="heartbeat"))
    ingest(make_event(session_id="visit-1", url="https://example.com/b"))
    assert applied_pageviews(store) == 0 and len(journal(store, shard)) == 3
    assert applied_visitors_today(store) == 0  # sketches wait in the journal too
    assert pageviews(store) == 2 and visitors_today(store) == 1
    due = pending_deltas(store, shard)
    items_in_journal = sum(len(decode_deltas("example", e["deltas"]["B"])) for e in journal(store, shard))
    assert len(due) < items_in_journal  # the packs share items: the visit, its day, its pages

    sent = counted_updates(store)
    assert store.apply_journal("example", shard, T0 + DELAY_MS - 1) == 0  # the oldest has not waited enough
    assert store.apply_journal("example", shard, T0 + DELAY_MS) == len(due)
    assert sent["K"] == len(due)  # one update a merged item
    assert stored_counters(store, due, shard) == {item: dict(metrics) for item, metrics in due.items()}
    assert applied_pageviews(store) == pageviews(store) == 2 and journal(store, shard) == []
    assert applied_visitors_today(store) == 1  # the sketches the packs' visitor joined, added with them
    assert visitors_today(store) == 1


def test_the_next_batch_on_the_shard_applies_what_is_due(store, site, ingest, make_event, clock, now):
    store.counter_delay_ms = DELAY_MS
    neighbour = next(s for s in (f"visit-{i}" for i in range(2, 200)) if store._shard(s) != store._shard("visit-1"))
    ingest(make_event(session_id="visit-1"))
    now["ms"] = clock.now = T0 + DELAY_MS
    ingest(make_event(session_id=neighbour, user_id="visitor-2"))  # another session's: the quiet site's shard all the same
    assert pageviews(store) == 2 and journal(store, QUIET) == []


def test_a_quiet_sites_packs_merge_on_one_shard_a_busy_batch_spreads_by_session(store, site, ingest, make_event,
                                                                                 now):
    """Under QUIET_BELOW of a site's events in a batch, its counters and journal go on shard 0,
    so one run merges every visit's (a quiet site's visits rarely share a shard's minute);
    from QUIET_BELOW on, each pack writes on its first session's shard, as a busy site must
    to stay within a partition's writes."""
    store.counter_delay_ms = DELAY_MS
    sessions = [f"visit-{i}" for i in range(2, 200)]
    apart = [next(s for s in sessions if store._shard(s) == shard) for shard in (1, 2)]
    ingest(*[make_event(session_id=s, user_id=s) for s in apart])  # one pack, on shard 0, not 1
    assert [len(journal(store, shard)) for shard in range(store.shards)] == [1, 0, 0, 0]

    # A batch of QUIET_BELOW events: 5 visits, 5 events each, in packs of 25 events of 5 sessions at most.
    busy = [s for s in sessions if store._shard(s) in (1, 2)][:5]
    ingest(*[make_event(session_id=s, user_id=s, url=f"https://example.com/{n}") for s in busy for n in range(5)])
    assert sum(len(journal(store, shard)) for shard in (1, 2)) == 1 and len(journal(store, QUIET)) == 1
    assert {item[2] for shard in (1, 2) for item in pending_deltas(store, shard)} >= {"page"}
    assert store.apply_journals(T0 + DELAY_MS) > 0
    assert pageviews(store) == 2 + 25 and all(journal(store, shard) == [] for shard in range(store.shards))


def test_goal_alerts_read_todays_conversions_at_once_whatever_the_delay(store, site, ingest, make_event, now):
    """The stream function evaluates goal alerts right after its batch: the day's conversions by
    name and goal completions are added in the pack's transaction, not journaled."""
    from app.alerts import settings as alert_settings
    from app.alerts.evaluate import fold_alerts
    store.counter_delay_ms = DELAY_MS
    site.goals = [{"id": "g1", "name": "Pricing", "kind": "page", "match": "/pricing", "created_ms": 0}]
    store.update_site(site)
    choices = alert_settings.goal_choices(site, [])
    alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", choices)
    ingest(make_event(session_id="visit-1"), make_event(session_id="visit-1", type="conversion", name="Purchase"),
           make_event(session_id="visit-1", url="https://example.com/pricing"))
    assert applied_pageviews(store) == 0  # journaled
    day = T0 // 86_400_000
    assert store.sum_counters("example", "conversions", "name", day, day + 1) == {"Purchase": 1}
    assert store.sum_counters("example", "goal_events", "goal", day, day + 1) == {"g:g1": 1}
    assert [alert.kind for _, alert in fold_alerts(store, ["example"], T0)] == ["goal"]


def test_the_every_minute_schedule_applies_what_no_later_batch_did(store, site, ingest, make_event, now,
                                                                   monkeypatch):
    store.counter_delay_ms = DELAY_MS
    monkeypatch.setattr(lambda_handlers, "_store", lambda: store)
    ingest(make_event(session_id="visit-1"))
    assert applied_pageviews(store) == 0
    # The schedule's clock is the system's, long after T0: the item is due.
    due = len(pending_deltas(store, QUIET))
    assert lambda_handlers.schedule({"job": "counters"}, None) == {"counter_items": due}
    assert applied_pageviews(store) == 1 and journal(store, QUIET) == []
    assert lambda_handlers.schedule({"job": "counters"}, None) == {"counter_items": 0}


def test_a_run_cut_short_is_done_again_under_its_number_and_adds_nothing_twice(store, site, ingest, make_event,
                                                                               now, monkeypatch):
    shard = QUIET
    store.counter_delay_ms = DELAY_MS  # journal first, then apply by hand
    ingest(make_event(session_id="visit-1"), make_event(session_id="visit-1", type="heartbeat"))
    ingest(make_event(session_id="visit-1", url="https://example.com/b"))
    due = pending_deltas(store, shard)

    # The applier dies after adding 5 of the items (throttled for good, say).
    update_item, done, lock = store.client.update_item, [], threading.Lock()

    def dies_after_five(**params):
        with lock:  # the updates go out from the store's thread pool
            if params["Key"]["pk"]["S"].startswith("K#"):
                if len(done) == 5:
                    raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "no"}},
                                      "UpdateItem")
                done.append(params)
        return update_item(**params)
    monkeypatch.setattr(store.client, "update_item", dies_after_five)
    with pytest.raises(StoreError, match="1 journals not applied"):  # the schedule's errors alarm says so
        store.apply_journals(T0 + DELAY_MS)  # after trying every shard; the journal items wait
    monkeypatch.setattr(store.client, "update_item", update_item)
    assert len(journal(store, shard)) == 2
    assert sum(bool(found) for found in stored_counters(store, due, shard).values()) == 5
    # Reports add the run's items to the counters it has not reached, and to those only.
    assert reported(store, due) == {item: dict(metrics) for item, metrics in due.items()}

    # Its lease holds for LEASE_MS: nobody else applies meanwhile.
    assert store.apply_journal("example", shard, T0 + DELAY_MS + LEASE_MS - 1) == 0
    # Then whoever comes next does the run again: the 5 items it added refuse it, the rest take it.
    assert store.apply_journal("example", shard, T0 + DELAY_MS + LEASE_MS) == len(due) - 5
    assert stored_counters(store, due, shard) == {item: dict(metrics) for item, metrics in due.items()}
    assert reported(store, due) == {item: dict(metrics) for item, metrics in due.items()}
    assert journal(store, shard) == []

    # The dead applier's run, if it woke up and went on, adds nothing.
    straggler = [{"deltas": {"B": _encoded(due)}, "visitors": {"B": encode_visitors({})}}]
    assert store._add_entries("example", shard, 1, straggler) == 0
    assert stored_counters(store, due, shard) == {item: dict(metrics) for item, metrics in due.items()}
    # A new pack's deltas are a new run: added.
    ingest(make_event(session_id="visit-1", url="https://example.com/c"))
    assert pageviews(store) == 3


def _encoded(deltas: dict) -> bytes:
    return encode_deltas({item: dict(metrics) for item, metrics in deltas.items()})


def test_a_deleted_sites_waiting_journal_goes_with_its_statistics(store, site, ingest, make_event, now):
    store.counter_delay_ms = DELAY_MS
    ingest(make_event(session_id="visit-1"))
    shard = QUIET
    assert len(journal(store, shard)) == 1
    store.delete_site("example")
    assert store.purge(T0 + 1)["journal"] == 1
    assert journal(store, shard) == []
    assert store.apply_journals(T0 + 10 * DELAY_MS) == 0


@pytest.mark.parametrize("hooked", ["_lease", "_journal_items", "_buckets"])  # a run before each read
def test_a_run_between_a_reports_reads_counts_nothing_twice(store, site, ingest, make_event, now, hooked,
                                                           monkeypatch):
    """A report reads the quiet journal's lease, its items, then the counters: a run that adds
    and deletes the items in between is found by what it left (items gone, or counters carrying
    its number), never counted both in the journal and in the counters."""
    store.counter_delay_ms = DELAY_MS
    ingest(make_event(session_id="visit-1"), make_event(session_id="visit-1", url="https://example.com/b"))
    ingest(make_event(session_id="visit-2", user_id="visitor-2"))
    due = pending_deltas(store, QUIET)
    expected = {item: dict(metrics) for item, metrics in due.items()}
    assert reported(store, due) == expected  # all of it waiting

    original, runs = getattr(store, hooked), []

    def a_run_first(*args, **kwargs):
        if not runs:
            monkeypatch.setattr(store, hooked, original)  # the run reads as it would
            runs.append(store.apply_journal("example", QUIET, T0 + DELAY_MS))
        return original(*args, **kwargs)
    monkeypatch.setattr(store, hooked, a_run_first)
    with store.one_moment():
        assert reported(store, due) == expected
    assert runs == [len(due)] and journal(store, QUIET) == []


def test_a_quiet_journal_past_what_a_report_reads_waits_for_its_run(store, site, ingest, make_event, now,
                                                                   monkeypatch):
    """Reports read at most WAITING_READ of a journal's items: past them, the counters as applied."""
    store.counter_delay_ms = DELAY_MS
    monkeypatch.setattr(journal_module, "WAITING_READ", 1)
    ingest(make_event(session_id="visit-1"))
    assert pageviews(store) == 1
    ingest(make_event(session_id="visit-2", user_id="visitor-2"))
    assert len(journal(store, QUIET)) == 2 and pageviews(store) == applied_pageviews(store) == 0
    # Reports of days long past do not read the journal at all.
    store._now_ms = lambda: T0 + 3 * 86_400_000
    assert pageviews(store) == 0
    store._now_ms = lambda: T0
    monkeypatch.setattr(journal_module, "WAITING_READ", 2)
    assert pageviews(store) == 2


def test_a_busy_sites_journals_wait_a_minute_a_quiet_ones_the_whole_delay(store, site, ingest, make_event,
                                                                          clock, now):
    """A busy site's journals are not read by reports, so a batch that wrote to one adds it
    after BUSY_DELAY_MS; a quiet site's wait the whole delay (reports read them meanwhile)."""
    store.counter_delay_ms = 5 * BUSY_DELAY_MS
    sessions = [s for s in (f"visit-{i}" for i in range(2, 400)) if store._shard(s) != QUIET][:5]
    busy = [make_event(session_id=s, user_id=s, url=f"https://example.com/{n}") for s in sessions for n in range(5)]
    ingest(*busy)  # QUIET_BELOW of the site's events in the batch: spread by session
    waiting = {shard: len(journal(store, shard)) for shard in range(store.shards) if shard != QUIET}
    assert sum(waiting.values()) >= 1 and applied_pageviews(store) == 0

    now["ms"] = clock.now = T0 + BUSY_DELAY_MS
    ingest(make_event(session_id="quiet-1", user_id="quiet-1"))  # a quiet batch applies no busy journal
    assert applied_pageviews(store) == 0 and len(journal(store, QUIET)) == 1
    ingest(*[make_event(session_id=s, user_id=s, url=f"https://example.com/{n}/again")
             for s in sessions for n in range(5)])
    # The first busy batch's journals were due after a minute: their runs added all they held.
    assert applied_pageviews(store) == 50 and all(journal(store, shard) == [] for shard in waiting)
    assert len(journal(store, QUIET)) == 1  # the quiet one waits the whole delay
    assert pageviews(store) == 50 + 1  # what the quiet journal holds, read

    # A busy run on the quiet shard (a busy site's packs land there too) leaves that journal
    # unread, its items may be many, until a quiet run: the lease says which it was.
    assert store.apply_journal("example", QUIET, T0 + 2 * BUSY_DELAY_MS, busy=True) > 0
    now["ms"] = clock.now = T0 + 2 * BUSY_DELAY_MS
    ingest(make_event(session_id="quiet-2", user_id="quiet-2"))
    assert len(journal(store, QUIET)) == 1
    queries = counted_queries(store)
    assert pageviews(store) == applied_pageviews(store) == 52 - 1
    journal_reads = {(pk, condition) for pk, condition in queries if pk.startswith("J#")}
    assert journal_reads == {(store._journal_pk("example", QUIET), "pk = :pk AND sk = :lease")}  # the lease alone
    assert store.apply_journal("example", QUIET, T0 + 2 * BUSY_DELAY_MS + store.counter_delay_ms) > 0
    ingest(make_event(session_id="quiet-3", user_id="quiet-3"))
    assert applied_pageviews(store) == 52 and pageviews(store) == 53


def test_a_quiet_sites_realtime_page_and_reports_show_a_batch_at_once_as_after_its_run(store, site, ingest,
                                                                                      make_event, now):
    """With the stack's delay (docs/aws.md), what a quiet site's realtime page and today's
    report show before the journal's run is what they show after it."""
    from app.analytics import realtime, stats
    from app.analytics.periods import parse_period
    store.counter_delay_ms = 300_000
    ingest(make_event(session_id="visit-1"), make_event(session_id="visit-1", url="https://example.com/pricing"),
           make_event(session_id="visit-1", type="conversion", name="Purchase", value=29),
           make_event(session_id="visit-1", type="custom", name="play", props={"video": "intro"}))
    ingest(make_event(session_id="visit-2", user_id="visitor-2", referrer="https://www.google.com/"))
    assert applied_pageviews(store) == 0 and len(journal(store, QUIET)) == 2

    def shown() -> tuple[dict, dict]:
        page = realtime.realtime(store, site, T0)
        page.pop("live_feed")  # the raw events, read as they are
        return page, stats.report(store, site, parse_period("today", "UTC", T0),
                                  breakdowns=("page", "source", "country", "device", "entry"))
    at_once = shown()
    assert store.apply_journals(T0 + 300_000) > 0 and journal(store, QUIET) == []
    assert shown() == at_once
    page, report = at_once
    assert {row["page"]: row["pageviews"] for row in page["top_pages_today"]} == {"/": 2, "/pricing": 1}
    assert sum(page["last_24_hours"]["visitors"]) == 2 and page["conversions"]["today"]["conversion_rate"] == 50.0
    assert report["summary"]["metrics"]["visitors"]["value"] == 2 and report["breakdowns"]["source"]


def test_a_busy_sites_last_packs_are_added_after_a_minute_whoever_finds_them(store, site, ingest, make_event, now):
    """A busy site's pack marks its journal item, so once it is the oldest the every-minute
    schedule adds it after BUSY_DELAY_MS too: a busy site whose traffic stops does not wait
    the whole delay for its last minute, which reports do not read from the journal."""
    store.counter_delay_ms = 5 * BUSY_DELAY_MS
    sessions = [s for s in (f"visit-{i}" for i in range(2, 400)) if store._shard(s) != QUIET][:5]
    ingest(*[make_event(session_id=s, user_id=s, url=f"https://example.com/{n}") for s in sessions for n in range(5)])
    keys = [item["sk"]["S"] for shard in range(store.shards) for item in journal(store, shard)]
    assert keys and all(key.endswith("#busy") for key in keys)
    assert store.apply_journals(T0 + BUSY_DELAY_MS - 1) == 0
    assert store.apply_journals(T0 + BUSY_DELAY_MS) > 0 and applied_pageviews(store) == 25
    ingest(make_event(session_id="quiet-1", user_id="quiet-1"))  # a quiet pack's item waits the delay
    assert not journal(store, QUIET)[0]["sk"]["S"].endswith("#busy")
    assert store.apply_journals(T0 + 2 * BUSY_DELAY_MS) == 0
