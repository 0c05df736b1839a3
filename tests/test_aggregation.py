"""The write path: a request only appends to the event log; folding the log into sessions,
visitors and counters comes after, exactly once, through one entry point on both backends
(app.aggregation.fold_log), and one bad event never holds back the others."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from app import aggregation
from app.aggregation import Background, drain, fold_log
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from tests.conftest import CHROME_UA, T0
from tests.test_aggregate import counts, total

CLIENT = Client("198.51.100.23", CHROME_UA)


def append(store, site, *events, at=T0):
    return record_batch(store, site, list(events), CLIENT, at)


def test_a_request_only_appends_and_folding_counts_it(store, site, make_event, unfolded):
    assert append(store, site, make_event(), make_event(type="heartbeat")).accepted == 2
    assert store.get_sessions("example", ["session-1"]) == {} and total(store, "pageviews") == 0
    result = fold_log(store, unfolded())
    assert (result.folded, result.set_aside, result.unapplied) == (2, [], [])
    assert store.get_sessions("example", ["session-1"])["session-1"].events == 2
    assert total(store, "pageviews") == 1


def test_a_batch_folded_twice_counts_once(store, site, make_event, unfolded):
    append(store, site, make_event(url="https://example.com/a", timestamp=T0 - 5_000),
           make_event(url="https://example.com/b"))
    entries = unfolded()
    fold_log(store, entries)
    once = {m: total(store, m) for m in ("pageviews", "sessions", "visitors", "bounces", "duration_ms")}
    assert fold_log(store, entries).folded == 0
    assert {m: total(store, m) for m in once} == once == {
        "pageviews": 2, "sessions": 1, "visitors": 1, "bounces": 0, "duration_ms": 5_000}


def test_an_event_that_cannot_be_folded_is_set_aside_and_counted_and_the_rest_go_on(
        store, site, make_event, unfolded, poison_breaks_folding):
    append(store, site, make_event(url="https://example.com/a", timestamp=T0 - 2_000),
           make_event(url="https://example.com/poison", timestamp=T0 - 1_000), make_event(url="https://example.com/b"))
    result = fold_log(store, unfolded())
    assert result.folded == 2 and [e.event["path"] for e in result.set_aside] == ["/poison"]
    assert result.unapplied == []
    assert counts(store, "pageviews", "page") == {"/a": 1, "/b": 1}
    assert counts(store, "dropped", "reason", grain="hour") == {"failed": 1}
    assert fold_log(store, result.set_aside).folded == 0  # never retried
    # the owner sees it, under "Not counted"
    from app.analytics import stats
    from app.analytics.periods import parse_period
    assert stats.filtered(store, site, parse_period("today", "UTC", T0)) == {"failed": 1}
    assert "set aside" in stats.DROP_REASONS["failed"]


@pytest.mark.parametrize("backend", ["sqlite"])  # the search is the same pure code on both
def test_bad_events_in_a_large_batch_are_found_in_few_aggregations(store, site, make_event, unfolded, monkeypatch):
    """Under load a fold holds thousands of events: finding the bad ones must not cost an
    aggregation per event (each over the events before it: minutes for one bad event)."""
    paths = [f"/poison-{i}" if i in (100, 700) else f"/p{i}" for i in range(1_000)]
    append(store, site, *[make_event(url=f"https://example.com{path}", timestamp=T0 - 10_000 + i, user_id=f"u{i}",
                                     session_id=f"s{i}") for i, path in enumerate(paths)])
    events = [entry.event for entry in unfolded()]
    real, calls = aggregation.aggregate, []

    def breaks_on_poison(events, *args, **kwargs):
        calls.append(len(events))
        if any(e["path"].startswith("/poison") for e in events):
            raise ValueError("a bug that only this event shows")
        return real(events, *args, **kwargs)
    monkeypatch.setattr(aggregation, "aggregate", breaks_on_poison)
    outcome = aggregation.fold_events("example", events, {}, {}, "UTC")
    assert sorted(e["path"] for e, _ in outcome.failed) == ["/poison-100", "/poison-700"]
    assert sum(n for key, n in outcome.changes.counters.items() if key.metric == "pageviews" and key.dimension == "page") == 998
    assert len(calls) <= 2 * 11 + 2 and sum(calls) < 15_000  # about log2(1,000) each, not 1,000


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_log_is_read_in_order_past_the_checkpoint(store, site, make_event):
    append(store, site, make_event(event_id="first-event"), make_event(event_id="second-event"))
    append(store, site, make_event(event_id="third-event"))
    entries = store.read_log(100)
    assert [e.event["event_id"] for e in entries] == ["first-event", "second-event", "third-event"]
    assert [e.position for e in entries] == sorted(e.position for e in entries)
    assert [e.event["event_id"] for e in store.read_log(2)] == ["first-event", "second-event"]
    fold_log(store, store.read_log(2))
    assert [e.event["event_id"] for e in store.read_log(100)] == ["third-event"]
    fold_log(store, store.read_log(100))
    assert store.read_log(100) == []
    append(store, site, make_event(event_id="fourth-event"))
    assert [e.event["event_id"] for e in store.read_log(100)] == ["fourth-event"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_two_aggregators_never_fold_an_event_twice(store, site, make_event, tmp_path):
    """Only one process leads, but if two stores of one file folded the same batch, the
    checkpoint, read inside the fold's transaction, lets only the first apply it."""
    from app.store.sqlite import SQLiteStore
    other = SQLiteStore(store.path)
    append(store, site, make_event())
    entries = store.read_log(100)
    assert fold_log(store, entries).folded == 1
    assert fold_log(other, entries).folded == 0
    assert total(store, "pageviews") == 1
    other.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_aggregator_forgets_a_visitor_erased_meanwhile(store, site, make_event, settle):
    append(store, site, make_event(url="https://example.com/a"), make_event(url="https://example.com/b"))
    settle()
    store.erase_visitor("example", "visitor-1")
    append(store, site, make_event(url="https://example.com/c", timestamp=T0 + 1_000), at=T0 + 1_000)
    settle()
    session = store.get_sessions("example", ["session-1"])["session-1"]
    assert (session.pageviews, session.entry_path, session.started_ms) == (1, "/c", T0 + 1_000)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_purge_keeps_the_events_not_folded_yet(store, site, make_event, settle):
    append(store, site, make_event(timestamp=T0 - 1_000), at=T0)
    assert store.purge(T0 + 2 * 86_400_000)["events"] == 0  # not folded: its figures would be lost
    settle()
    assert total(store, "pageviews") == 1
    assert store.purge(T0 + 2 * 86_400_000)["events"] == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_one_process_leads_and_another_takes_over_when_it_ends(store):
    probe = ("import sys; from app.store.sqlite import SQLiteStore; "
             "print(SQLiteStore(sys.argv[1]).lead(wait=False))")
    assert store.lead(wait=False)
    led = subprocess.run([sys.executable, "-c", probe, store.path], capture_output=True, text=True, timeout=30)
    assert led.stdout.strip() == "False", led.stderr
    assert drain(store) == 0  # nothing to fold; this process leads
    store.close()  # as the leading process's end would
    led = subprocess.run([sys.executable, "-c", probe, store.path], capture_output=True, text=True, timeout=30)
    assert led.stdout.strip() == "True", led.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_servers_aggregator_counts_new_events_within_a_second(app, store, site, make_event):
    background = Background(app).start()
    try:
        started = time.monotonic()
        append(store, site, make_event())
        while total(store, "pageviews") == 0:
            assert time.monotonic() - started < 1.0, "not counted within a second"
            time.sleep(0.01)
    finally:
        background.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_fold_that_fails_to_write_leaves_its_batch_in_the_log(store, site, make_event, monkeypatch):
    """Storage fails mid-fold: nothing of the batch is applied and the checkpoint stays, so the
    next read gets the same events and counts them once."""
    from app.store.base import StoreError
    append(store, site, make_event(), make_event(type="heartbeat"))
    entries = store.read_log(100)

    def disk_full(changes):
        raise StoreError("disk full")
    monkeypatch.setattr(store, "_apply", disk_full)
    with pytest.raises(StoreError):
        fold_log(store, entries)
    monkeypatch.undo()
    assert store.read_log(100) == entries and total(store, "pageviews") == 0
    assert fold_log(store, store.read_log(100)).folded == 2
    assert (total(store, "pageviews"), store.read_log(100)) == (1, [])


def test_events_of_a_site_deleted_meanwhile_are_not_counted(store, site, make_event, unfolded):
    append(store, site, make_event())
    entries = unfolded()
    store.delete_site("example")
    assert fold_log(store, entries).set_aside == []
    assert store.get_sessions("example", ["session-1"]) == {} and total(store, "pageviews") == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_aggregator_forgets_a_visit_another_process_folded_meanwhile(store, site, make_event):
    """What the aggregator keeps in memory is only right while it is the one folding: if another
    process folded a batch (the checkpoint moved without it), it reads the visits again."""
    from app.store.sqlite import SQLiteStore
    append(store, site, make_event(url="https://example.com/a", timestamp=T0))
    fold_log(store, store.read_log(100))  # this store now keeps the visit (one page view)
    other = SQLiteStore(store.path)
    append(store, site, make_event(url="https://example.com/b", timestamp=T0 + 1_000), at=T0 + 1_000)
    fold_log(other, other.read_log(100))  # two page views, folded by the other store
    append(store, site, make_event(url="https://example.com/c", timestamp=T0 + 2_000), at=T0 + 2_000)
    fold_log(store, store.read_log(100))
    session = store.get_sessions("example", ["session-1"])["session-1"]
    assert (session.pageviews, session.exit_path) == (3, "/c")
    assert total(store, "pageviews") == 3 and total(store, "bounces") == 0
    other.close()
