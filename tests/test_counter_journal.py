"""The counter journal on DynamoDB (app/store/dynamodb/journal.py): a pack's counter deltas and
sketch additions wait in one journal item, then are added merged, once, however an applier dies
or races another. `ingest` folds what it sends as the stream function does (conftest.settle)."""
from __future__ import annotations

import threading
from collections import Counter, defaultdict

import pytest
from botocore.exceptions import ClientError

from app import lambda_handlers
from app.store.base import HOUR_MS, StoreError
from app.store import hll
from app.store.dynamodb.folding import QUIET_SHARD
from app.store.dynamodb.journal import LEASE_MS, LEASE_SK, decode_deltas, encode_deltas, encode_visitors
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
    return sum(r.n for r in store.read_counters("example", "pageviews", "", HOUR, HOUR + 1))


def visitors_today(store) -> int:
    day = T0 // 86_400_000
    return round(hll.count_visitors([r.sketch for r in store.read_sketches("example", "", day, day + 1)]))


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
    # live minute counters are written at once all the same.
    assert pageviews(store) == 0 and len(journal(store, shard)) == 1
    five = T0 // 300_000
    assert sum(r.n for r in store.read_counters("example", "pageviews", "", five, five + 1, grain="5min")) == 1
    assert store.read_counters("example", "visitors", "live", 0, 10**12, grain="minute")[0].n == 1

    now["ms"] = clock.now = T0 + 20_000  # the visit goes on: a heartbeat and a second page
    ingest(make_event(session_id="visit-1", type="heartbeat"))
    ingest(make_event(session_id="visit-1", url="https://example.com/b"))
    assert pageviews(store) == 0 and len(journal(store, shard)) == 3
    assert visitors_today(store) == 0  # sketches wait in the journal too
    due = pending_deltas(store, shard)
    items_in_journal = sum(len(decode_deltas("example", e["deltas"]["B"])) for e in journal(store, shard))
    assert len(due) < items_in_journal  # the packs share items: the visit, its day, its pages

    sent = counted_updates(store)
    assert store.apply_journal("example", shard, T0 + DELAY_MS - 1) == 0  # the oldest has not waited enough
    assert store.apply_journal("example", shard, T0 + DELAY_MS) == len(due)
    assert sent["K"] == len(due)  # one update a merged item
    assert stored_counters(store, due, shard) == {item: dict(metrics) for item, metrics in due.items()}
    assert pageviews(store) == 2 and journal(store, shard) == []
    assert visitors_today(store) == 1  # the sketches the packs' visitor joined, added with them


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
    assert pageviews(store) == 0  # journaled
    day = T0 // 86_400_000
    assert store.sum_counters("example", "conversions", "name", day, day + 1) == {"Purchase": 1}
    assert store.sum_counters("example", "goal_events", "goal", day, day + 1) == {"g:g1": 1}
    assert [alert.kind for _, alert in fold_alerts(store, ["example"], T0)] == ["goal"]


def test_the_every_minute_schedule_applies_what_no_later_batch_did(store, site, ingest, make_event, now,
                                                                   monkeypatch):
    store.counter_delay_ms = DELAY_MS
    monkeypatch.setattr(lambda_handlers, "_store", lambda: store)
    ingest(make_event(session_id="visit-1"))
    assert pageviews(store) == 0
    # The schedule's clock is the system's, long after T0: the item is due.
    due = len(pending_deltas(store, QUIET))
    assert lambda_handlers.schedule({"job": "counters"}, None) == {"counter_items": due}
    assert pageviews(store) == 1 and journal(store, QUIET) == []
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
    store.counter_delay_ms = 0
    with pytest.raises(StoreError, match="1 journals not applied"):  # the schedule's errors alarm says so
        store.apply_journals(T0)  # after trying every shard; the journal items wait
    monkeypatch.setattr(store.client, "update_item", update_item)
    assert len(journal(store, shard)) == 2
    assert sum(bool(found) for found in stored_counters(store, due, shard).values()) == 5

    # Its lease holds for LEASE_MS: nobody else applies meanwhile.
    assert store.apply_journal("example", shard, T0 + LEASE_MS - 1) == 0
    # Then whoever comes next does the run again: the 5 items it added refuse it, the rest take it.
    assert store.apply_journal("example", shard, T0 + LEASE_MS) == len(due) - 5
    assert stored_counters(store, due, shard) == {item: dict(metrics) for item, metrics in due.items()}
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
