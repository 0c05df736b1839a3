"""Ingestion as a list of named steps: privacy signals -> validate -> enrich -> the site's
rules -> append -> aggregate."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from marshmallow import ValidationError

from app.analytics.aggregate import apply_prepared, prepare
from app.store.base import EVENT_FIELDS, HOUR_MS, Changes, CounterKey, Site, Store

from .enrich import Client, Dropped, apply_site_rules, enrich, privacy_signal
from .schema import describe, load_event


@dataclass
class BatchResult:
    accepted: int = 0  # new events stored
    duplicates: int = 0  # events already stored (a retried batch)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count (bots, ...)
    rejected: list[dict] = field(default_factory=list)  # [{"index": i, "error": "..."}]


def record_batch(store: Store, site: Site, raw_events: list, client: Client, now_ms: int) -> BatchResult:
    """Validate, enrich and store a batch for one site; invalid events are reported, not fatal."""
    result = BatchResult()
    events: list[dict] = []
    dropped: Counter[str] = Counter()
    signal = privacy_signal(site, client)
    if signal:  # the visitor asked not to be tracked and the site honours it: keep nothing
        dropped[signal] = len(raw_events)
        raw_events = []
    for index, raw in enumerate(raw_events):
        try:
            event = apply_site_rules(enrich(load_event(raw, now_ms), client), site)
        except ValidationError as error:
            result.rejected.append({"index": index, "error": describe(error)})
            continue
        except Dropped as drop:
            dropped[drop.reason] += 1
            continue
        events.append(stored_event(event, site.site_id, now_ms))

    prepared = prepare(store, site.site_id, site.timezone, events) if store.aggregates_inline and events else None
    with store.transaction():
        new = store.append_events(events)
        if prepared:
            apply_prepared(store, prepared, new)
        if dropped:
            hour = now_ms // HOUR_MS
            store.apply(Changes(counters={
                CounterKey(site.site_id, hour, "dropped", "reason", reason): n
                for reason, n in dropped.items()}))
    result.accepted, result.duplicates = len(new), len(events) - len(new)
    result.dropped = dict(dropped)
    return result


def stored_event(event: dict, site_id: str, now_ms: int) -> dict:
    """The stored record of a validated, enriched event."""
    record = {name: event.get(name) for name in EVENT_FIELDS}
    record.update(site_id=site_id, ts=event["timestamp"], received_ms=now_ms)
    return record
