"""Folding the event log into sessions, visitors, counters and sketches, off the request path.

`fold_log(store, entries)` is the one entry point of both deployments: the single box's
aggregator (below) calls it with batches it reads from the store's log, and the events stream's
function on AWS (app/lambda_handlers.py) with the stream's records. The store applies a batch
exactly once (base.TrafficStore.fold); what it folds with is `fold_events`: the pure
`aggregate()` in the site's time zone, which sets aside, counts and logs an event it cannot
fold rather than stop everyone's figures behind it.

On the single box every server process starts `Background`: one of them leads (the store's
`lead()`: a lock the kernel frees if that process dies, when another takes over at once) and
runs the aggregator, reading the log continuously and folding up to BATCH events at a time,
the retention job, and the alerts (app/alerts/evaluate.py: every minute, and for the sites each
fold touched). Events are on the dashboard about IDLE_WAIT_S after they are stored
when the server is idle, sooner under load.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from functools import lru_cache

from flask import Flask

from app.alerts.evaluate import AlertLoop
from app.analytics.aggregate import PropValues, aggregate
from app.analytics.goals import SiteGoals
from app.analytics.periods import local_day_number
from app.context import notifier_of
from app.ingest.enrich import DropReason
from app.retention import run_retention
from app.store.base import HOUR_MS, Changes, CounterKey, Fold, FoldOutcome, FoldResult, LogEntry, Session, Store, Visitor

log = logging.getLogger(__name__)

BATCH = 2_000  # log entries per fold: many requests' events, their counter deltas merged once
IDLE_WAIT_S = 0.1  # between reads of an empty log
RETRY_WAIT_S = 1.0  # after a fold failed (storage unavailable): the batch is read again


def fold_log(store: Store, entries: list[LogEntry]) -> FoldResult:
    """Fold a batch of the event log into the store, exactly once."""
    return store.fold(entries, _folder(store))


def _folder(store: Store) -> Fold:
    """fold_events in each site's own time zone (days are the site's local days), with the
    site's goals as they are now, and the property values its days have counted so far."""
    sites: dict[str, tuple[str, SiteGoals] | None] = {}
    known_props: dict[tuple[str, int], PropValues] = {}  # (site, day) -> counted property values

    def fold(site_id: str, events: list[dict], sessions: dict[str, Session], visitors: dict[str, Visitor]):
        if site_id not in sites:
            site = store.get_site(site_id)
            sites[site_id] = (site.timezone, SiteGoals.of(site)) if site else None
        if sites[site_id] is None:  # the site was deleted since: nothing of it is counted
            return FoldOutcome(Changes())
        timezone, goals = sites[site_id]
        days = {_local_day(timezone, e["ts"] // QUARTER_HOUR_MS) for e in events
                if e["type"] == "custom" and e.get("props")}
        for day in days - {d for s, d in known_props if s == site_id}:
            known_props[site_id, day] = counted_prop_values(store, site_id, day)
        prop_values = {k: v for day in days for k, v in known_props[site_id, day].items()}
        outcome = fold_events(site_id, events, sessions, visitors, timezone, goals, prop_values)
        for key in outcome.changes.counters:  # what this fold adds, for the next one of the batch
            if key.metric == "props":
                name, prop, value = json.loads(key.value)
                known_props[site_id, key.hour].setdefault((name, key.hour, prop), set()).add(value)
        return outcome
    return fold


QUARTER_HOUR_MS = 900_000


@lru_cache(maxsize=4096)
def _local_day(timezone: str, quarter_hour: int) -> int:
    """The local day of a quarter hour (every time zone's offset is whole quarter hours)."""
    return local_day_number(timezone, quarter_hour * QUARTER_HOUR_MS)


def counted_prop_values(store: Store, site_id: str, day: int) -> PropValues:
    """The distinct values each custom event's property has counted on a local day."""
    values: PropValues = {}
    for cell in store.sum_counters(site_id, "props", "prop", day, day + 1, "day"):
        name, prop, value = json.loads(cell)
        values.setdefault((name, day, prop), set()).add(value)
    return values


def fold_events(site_id: str, events: list[dict], sessions: dict[str, Session], visitors: dict[str, Visitor],
                timezone: str, goals: SiteGoals = SiteGoals(), prop_values: PropValues | None = None) -> FoldOutcome:
    """aggregate() the events; if that fails, find the events that make it fail, set them
    aside and count them as not counted ("failed"), and fold the rest: one bad event never
    holds back the others."""
    context = dict(timezone=timezone, goals=goals, prop_values=prop_values)
    try:
        return FoldOutcome(aggregate(events, sessions, visitors, **context))
    except Exception as error:  # noqa: BLE001  (whatever broke, the other events must go on)
        first_error = error
    kept = sorted(events, key=lambda e: (e["ts"], e["event_id"]))
    failed: list[tuple[dict, str]] = []
    while True:
        index, error = _first_failing(kept, first_error, sessions, visitors, context)
        event = kept.pop(index)
        failed.append((event, f"{type(error).__name__}: {error}"))
        log.error("set aside event %s of site %s: it cannot be aggregated: %s",
                  event.get("event_id"), site_id, failed[-1][1])
        try:
            changes = aggregate(kept, sessions, visitors, **context)
            break
        except Exception as error:  # noqa: BLE001
            first_error = error
    dropped: dict[CounterKey, float] = defaultdict(float)
    for event, _ in failed:
        dropped[CounterKey(site_id, event["received_ms"] // HOUR_MS, "dropped", "reason",
                           DropReason.FAILED.value)] += 1
    for key, n in dropped.items():
        changes.counters[key] = changes.counters.get(key, 0) + n
    return FoldOutcome(changes, failed)


def _first_failing(events: list[dict], error: Exception, sessions: dict, visitors: dict,
                   context: dict) -> tuple[int, Exception]:
    """The event that makes aggregate() fail when the events before it fold (all of them are
    known to fail, with `error`): the shortest failing prefix found by halving, so a batch of
    n events costs about log2(n) aggregations per bad event, not n."""
    folds, fails = 0, len(events)
    while fails - folds > 1:
        middle = (folds + fails) // 2
        try:
            aggregate(events[:middle], sessions, visitors, **context)
        except Exception as found:  # noqa: BLE001
            fails, error = middle, found
        else:
            folds = middle
    return fails - 1, error


def drain(store: Store) -> int:
    """Fold the whole log now (tests; the CLI after seeding when no server runs). Returns how
    many entries it read; 0 when another process leads (it folds them)."""
    if not store.lead(wait=False):
        return 0
    read = 0
    while entries := store.read_log(BATCH):
        fold_log(store, entries)
        read += len(entries)
    return read


class Background:
    """What a single-box server process runs besides requests: it waits to lead the store, then
    aggregates continuously and runs the retention job on its schedule."""

    def __init__(self, app: Flask):
        self.store: Store = app.extensions["liveinsight.store"]
        self.clock = app.extensions["liveinsight.clock"]
        self.retention_interval_s = app.config["RETENTION_INTERVAL_S"]
        self.run_retention = app.config["RUN_RETENTION_THREAD"]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.alerts = AlertLoop(self.store, self.clock, notifier_of(app), self.stop)

    def start(self) -> "Background":
        if self.store.reads_own_log:
            self._thread(self._lead, "liveinsight-leader")
        elif self.run_retention:  # the log is read elsewhere (AWS): only the schedule runs here
            self._thread(self._retention, "liveinsight-retention")
        return self

    def _thread(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _lead(self) -> None:
        while not self.stop.is_set():
            try:
                self.store.lead(wait=True)  # blocks while another process leads
                break
            except Exception:  # noqa: BLE001  (the lock file cannot be opened now: try again)
                log.exception("cannot take the lead of the store's log yet")
                self.stop.wait(RETRY_WAIT_S)
        if self.stop.is_set():
            return
        if self.run_retention:
            self._thread(self._retention, "liveinsight-retention")
        self._thread(self.alerts.run, "liveinsight-alerts")
        self._thread(self.alerts.send_forever, "liveinsight-alerts-send")
        self._aggregate()

    def _aggregate(self) -> None:
        while not self.stop.is_set():
            try:
                entries = self.store.read_log(BATCH)
                if entries:
                    fold_log(self.store, entries)
                    self.alerts.touched({entry.event["site_id"] for entry in entries})
                    continue  # straight on while there is a backlog
            except Exception:  # noqa: BLE001  (storage unavailable: nothing was folded, try again)
                log.exception("aggregation failed; the batch will be read again")
                self.stop.wait(RETRY_WAIT_S)
                continue
            self.stop.wait(IDLE_WAIT_S)

    def _retention(self) -> None:
        while not self.stop.wait(self.retention_interval_s):
            try:
                log.info("retention: %s", run_retention(self.store, self.clock.now_ms()))
            except Exception:  # noqa: BLE001  (the next round tries again)
                log.exception("retention failed")

    def close(self, timeout_s: float = 5) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout_s)
