"""Ingestion as one list of named steps, run on each event of a request, then the append.

`STEPS` is the whole pipeline, in order: every step takes the event and the request
(enrich.Request: the site, the client, the time) and may return a new event in its place.
A step refuses an event with ValidationError (reported back to the sender) or drops it with
`Dropped(DropReason)` (counted, never stored). What is left is appended to the store's event
log; aggregation follows off the request path (app/aggregation.py: the single box's
aggregator, the events stream's function on AWS).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from marshmallow import ValidationError

from app.analytics.goals import Carry, SiteGoals
from app.store.base import EVENT_FIELDS, HOUR_MS, Changes, CounterKey, Site, Store

from .enrich import (
    Client, Dropped, Request, classify_referrer, drop_bots, drop_referrer_spam, first_visit, honour_privacy_signals,
    lookup_country, mask_ip, page_on_site, parse_user_agent, split_url,
)
from .schema import describe, load_event


def validate(raw: object, request: Request) -> dict:
    """The tracker's event, checked and cleaned (schema.py)."""
    return load_event(raw, request.now_ms)


def stored_record(event: dict, request: Request) -> dict:
    """Only the fields the store keeps, with the site and the times."""
    record = {name: event.get(name) for name in EVENT_FIELDS}
    record.update(site_id=request.site.site_id, ts=event["timestamp"], received_ms=request.now_ms)
    return record


STEPS = (
    honour_privacy_signals,  # GPC / DNT, when the site honours them: dropped
    validate,                # the wire format: rejected when invalid
    drop_bots,               # crawlers and non-browsers: dropped
    lookup_country,          # from the full address, before it is masked
    mask_ip,
    parse_user_agent,
    split_url,               # host, path, UTM parameters
    classify_referrer,       # source and channel
    first_visit,             # the visitor's cohort and where their first visit came from
    page_on_site,            # a page off the site's domains: rejected
    drop_referrer_spam,      # known spammers and the site's own list: dropped
    stored_record,
)


def process(raw: object, request: Request) -> dict:
    """One raw event through every step: the record to store, or ValidationError / Dropped."""
    event = raw
    for step in STEPS:
        event = step(event, request) or event
    return event


@dataclass
class BatchResult:
    accepted: int = 0  # new events stored
    duplicates: int = 0  # events already stored (a retried batch)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count (bots, ...)
    rejected: list[dict] = field(default_factory=list)  # [{"index": i, "error": "..."}]
    # Where the sender's browser is in the site's funnels across visits after these events, for
    # its tracker to keep and send back (goals.Carry); None: the site has no such funnel.
    carry: str | None = None


def record_batch(store: Store, site: Site, raw_events: list, client: Client, now_ms: int) -> BatchResult:
    """Run a request's events through the steps and append what is kept; invalid events are
    reported, not fatal. The events are durable when this returns."""
    request, result = Request(site, client, now_ms), BatchResult()
    records: list[dict] = []
    dropped: Counter[str] = Counter()
    for index, raw in enumerate(raw_events):
        try:
            records.append(process(raw, request))
        except ValidationError as error:
            result.rejected.append({"index": index, "error": describe(error)})
        except Dropped as drop:
            dropped[drop.reason.value] += 1
    goals = SiteGoals.of(site) if any(f.get("window_days") for f in site.funnels) else None
    if goals is None:
        for record in records:
            record["carry"] = None  # a funnel across visits deleted meanwhile, or a forged carry
    with store.transaction():
        new = store.append_events(records)
        if dropped:
            store.apply(Changes(counters={CounterKey(site.site_id, now_ms // HOUR_MS, "dropped", "reason", reason): n
                                          for reason, n in dropped.items()}))
    result.accepted, result.duplicates = len(new), len(records) - len(new)
    result.dropped = dict(dropped)
    if goals is not None:
        result.carry = carried_on(goals, records, new)
    return result


def carried_on(goals: SiteGoals, records: list[dict], new: list[dict]) -> str:
    """The browser's carry after its request: the newest it sent (the events of a request go
    in the order they were tracked), moved on by the steps of the events new to the store (a
    batch sent again must not take a step twice)."""
    sent = next((r["carry"] for r in reversed(records) if r.get("carry") is not None), None)
    carry = Carry(goals.funnels, sent)
    for record in new:
        steps = goals.steps_of(record)
        if steps:  # (most events, heartbeats and clicks, take none: progress past its window goes at the next step)
            carry.advance(steps, record["ts"])
    return carry.text()
