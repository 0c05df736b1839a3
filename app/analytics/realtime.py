"""Realtime figures: what the live dashboard and GET /api/realtime show.

Live figures come from session records (one per visit, updated on every event), not from
raw events, so they cost one indexed read per widget whatever the traffic.
"""
from __future__ import annotations

from collections import defaultdict

from app.analytics.periods import local_day_number
from app.store.base import HOUR_MS, LiveSession, Site, Store

CURRENT_WINDOW_MS = 5 * 60_000
RECENT_WINDOW_MS = 30 * 60_000
LIVE_FEED_SIZE = 20
TOP_PAGES_SIZE = 10


def _live(store: Store, site: Site, now_ms: int, window_ms: int = CURRENT_WINDOW_MS) -> list[LiveSession]:
    return store.live_sessions(site.site_id, now_ms - window_ms)


def current_visitors(store: Store, site: Site, now_ms: int, recent: list[LiveSession] | None = None) -> dict:
    """Distinct visitors with any event (heartbeats included) in the last 5 and 30 minutes."""
    recent = _live(store, site, now_ms, RECENT_WINDOW_MS) if recent is None else recent
    current = {s.user_id for s in recent if s.last_seen_ms >= now_ms - CURRENT_WINDOW_MS}
    return {"last_5_minutes": len(current), "last_30_minutes": len({s.user_id for s in recent})}


def _live_breakdown(sessions: list[LiveSession], attribute: str) -> list[dict]:
    visitors: dict[str, set[str]] = defaultdict(set)
    for session in sessions:
        visitors[getattr(session, attribute) or "(none)"].add(session.user_id)
    rows = [{"name": name, "visitors": len(users)} for name, users in visitors.items()]
    return sorted(rows, key=lambda r: (-r["visitors"], r["name"]))


def live_pages(store: Store, site: Site, now_ms: int, current: list[LiveSession] | None = None) -> list[dict]:
    """Pages with visitors on them right now: each current visit's latest page."""
    current = _live(store, site, now_ms) if current is None else current
    return _live_breakdown([s for s in current if s.page], "page")


def live_sources(store: Store, site: Site, now_ms: int, current: list[LiveSession] | None = None) -> list[dict]:
    """Where the current visitors came from."""
    return _live_breakdown(_live(store, site, now_ms) if current is None else current, "source")


def live_feed(store: Store, site: Site, limit: int = LIVE_FEED_SIZE) -> list[dict]:
    """The latest events, newest first, with only what the feed shows."""
    keep = ("event_id", "type", "ts", "path", "name", "source", "browser", "os", "device")
    return [{k: e[k] for k in keep} for e in store.recent_events(site.site_id, limit)]


def last_24_hours(store: Store, site: Site, now_ms: int) -> dict:
    """Visitors and page views per hour for the 24 hours up to and including this one."""
    end = now_ms // HOUR_MS + 1
    hours = list(range(end - 24, end))
    series = {}
    for metric in ("visitors", "pageviews"):
        per_hour = defaultdict(float)
        for row in store.read_counters(site.site_id, metric, "", hours[0], end):
            per_hour[row.hour] += row.n
        series[metric] = [int(per_hour[h]) for h in hours]
    return {"hours": [h * HOUR_MS for h in hours], **series}


def top_pages_today(store: Store, site: Site, now_ms: int, limit: int = TOP_PAGES_SIZE) -> list[dict]:
    """Pages by page views since midnight in the site's time zone."""
    today = local_day_number(site.timezone, now_ms)
    views: dict[str, float] = defaultdict(float)
    for row in store.read_counters(site.site_id, "pageviews", "page", today, today + 1, grain="day"):
        views[row.value] += row.n
    ranked = sorted(((int(n), page) for page, n in views.items() if n > 0), key=lambda r: (-r[0], r[1]))
    return [{"page": page, "pageviews": n} for n, page in ranked[:limit]]


def realtime(store: Store, site: Site, now_ms: int) -> dict:
    """Everything the live dashboard shows, as one JSON-ready dict."""
    recent = _live(store, site, now_ms, RECENT_WINDOW_MS)  # one read serves the live widgets
    current = [s for s in recent if s.last_seen_ms >= now_ms - CURRENT_WINDOW_MS]
    return {
        "site": site.site_id,
        "now": now_ms,
        "current_visitors": current_visitors(store, site, now_ms, recent),
        "live_pages": live_pages(store, site, now_ms, current),
        "live_sources": live_sources(store, site, now_ms, current),
        "live_feed": live_feed(store, site),
        "last_24_hours": last_24_hours(store, site, now_ms),
        "top_pages_today": top_pages_today(store, site, now_ms),
    }
