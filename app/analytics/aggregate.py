"""Sessions and hourly rollups from new events: one pure function both deployments share.

`aggregate(events, sessions, visitors)` takes newly stored events of one site and the
session and visitor records they touch, as stored, and returns the updated records and the
counter deltas. Every counter is additive, so the deltas can be applied with SQLite's
`n = n + ?` or DynamoDB's atomic ADD. A session's figures (bounce, duration, exit page) are
kept right as it grows by emitting corrections: when a bounce gets its second page view,
its bounce is taken back (-1); when the exit page moves, the old one gets -1.

Definitions (ARCHITECTURE.md): a session ends after 30 minutes without an event; a bounce
is a session with one page view and no click or conversion; visit duration is the last
event minus the first. Session figures count in the hour the session started; event
figures in the hour of the event.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Iterable

from app.store.base import HOUR_MS, Changes, CounterKey, Session, Visitor

SESSION_GAP_MS = 30 * 60_000
INTERACTIONS = ("click", "conversion")
# Session attributes counted once per session, in its start hour.
SESSION_DIMENSIONS = ("source", "channel", "browser", "os", "device")


class _Tally:
    def __init__(self, site_id: str):
        self.site_id = site_id
        self.deltas: dict[CounterKey, float] = defaultdict(float)

    def add(self, hour: int, metric: str, n: float = 1, dimension: str = "", value: str = "") -> None:
        self.deltas[CounterKey(self.site_id, hour, metric, dimension, value)] += n


def aggregate(events: Iterable[dict], sessions: dict[str, Session],
              visitors: dict[str, Visitor], gap_ms: int = SESSION_GAP_MS) -> Changes:
    """Fold new events of one site into its sessions, visitors and counters.

    Does not mutate its inputs. Events may come in any order; they are applied by time.
    """
    events = sorted(events, key=lambda e: (e["ts"], e["event_id"]))
    if not events:
        return Changes()
    site_id = events[0]["site_id"]
    tally = _Tally(site_id)
    sessions = {k: replace(v) for k, v in sessions.items()}
    visitors = {k: replace(v) for k, v in visitors.items()}
    touched_sessions: dict[str, Session] = {}
    touched_visitors: dict[str, Visitor] = {}

    for event in events:
        if event["site_id"] != site_id:
            raise ValueError("aggregate() takes the events of one site at a time")
        session = sessions.get(event["session_id"])
        if session is None or event["ts"] - session.last_seen_ms > gap_ms:
            session = _start_session(event, session, tally)
            sessions[session.session_id] = session
        _apply_event(session, event, tally)
        touched_sessions[session.session_id] = session
        visitor = _count_visitor(visitors.get(event["user_id"]), event, tally)
        visitors[visitor.user_id] = visitor
        touched_visitors[visitor.user_id] = visitor

    return Changes(
        sessions=list(touched_sessions.values()),
        visitors=list(touched_visitors.values()),
        counters={k: n for k, n in tally.deltas.items() if n},
    )


def _start_session(event: dict, previous: Session | None, tally: _Tally) -> Session:
    session = Session(
        site_id=event["site_id"], session_id=event["session_id"], user_id=event["user_id"],
        seq=previous.seq + 1 if previous else 0,
        started_ms=event["ts"], last_seen_ms=event["ts"],
        source=event["source"], channel=event["channel"], referrer=event["referrer"],
        browser=event["browser"], os=event["os"], device=event["device"],
    )
    hour = session.started_ms // HOUR_MS
    tally.add(hour, "sessions")
    for dimension in SESSION_DIMENSIONS:
        tally.add(hour, "sessions", 1, dimension, getattr(session, dimension))
    return session


def _apply_event(session: Session, event: dict, tally: _Tally) -> None:
    hour = session.started_ms // HOUR_MS
    was_bounce, old_duration, old_exit = session.is_bounce, session.duration_ms, session.exit_path

    ts, kind = event["ts"], event["type"]
    event_hour = ts // HOUR_MS
    session.last_seen_ms = max(session.last_seen_ms, ts)
    session.events += 1
    tally.add(event_hour, "events", 1, "type", kind)
    if kind == "page_view":
        session.pageviews += 1
        tally.add(event_hour, "pageviews")
        tally.add(event_hour, "pageviews", 1, "page", event["path"])
        if session.entry_path is None:
            session.entry_path = event["path"]
            tally.add(hour, "sessions", 1, "entry", event["path"])
        if ts >= session.last_pageview_ms:
            session.exit_path, session.last_pageview_ms = event["path"], ts
    elif kind in INTERACTIONS:
        session.interactions += 1
    if kind in ("custom", "conversion"):
        tally.add(event_hour, f"{kind}s", 1, "name", event["name"])
        if kind == "conversion" and event.get("value") is not None:
            tally.add(event_hour, "conversion_value", event["value"], "name", event["name"])

    # Corrections that keep the session's figures right as it grows.
    tally.add(hour, "bounces", int(session.is_bounce) - int(was_bounce))
    tally.add(hour, "duration_ms", session.duration_ms - old_duration)
    if session.exit_path != old_exit:
        if old_exit is not None:
            tally.add(hour, "sessions", -1, "exit", old_exit)
        tally.add(hour, "sessions", 1, "exit", session.exit_path)


def _count_visitor(visitor: Visitor | None, event: dict, tally: _Tally) -> Visitor:
    """Count a visitor once per hour in which they have any event."""
    hour = event["ts"] // HOUR_MS
    if visitor is None:
        visitor = Visitor(event["site_id"], event["user_id"], last_hour=-1, last_seen_ms=event["ts"])
    if hour > visitor.last_hour:
        tally.add(hour, "visitors")
        visitor.last_hour = hour
    visitor.last_seen_ms = max(visitor.last_seen_ms, event["ts"])
    return visitor


def aggregate_stored(store, events: list[dict]) -> None:
    """Load what new events touch, aggregate them and save the result, site by site.

    The caller owns the transaction (SQLite) or the retry (the DynamoDB stream function).
    """
    by_site: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_site[event["site_id"]].append(event)
    for site_id, site_events in by_site.items():
        sessions = store.get_sessions(site_id, (e["session_id"] for e in site_events))
        visitors = store.get_visitors(site_id, (e["user_id"] for e in site_events))
        store.apply(aggregate(site_events, sessions, visitors))
