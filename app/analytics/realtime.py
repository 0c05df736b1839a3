"""Realtime figures: what the live dashboard and GET /api/realtime show.

Live figures come from session records (one per visit, updated on every event), not from
raw events, so they cost one indexed read per widget whatever the traffic.
"""
from __future__ import annotations

from collections import defaultdict

from app.analytics.goals import ANY_CONVERSION, NOT_FOUND_EVENT, leaves_site, split_link
from app.analytics.periods import local_day_number
from app.i18n import gettext as _, money
from app.store.base import FIVE_MINUTES_MS, HOUR_MS, LiveSession, Site, Store

CURRENT_WINDOW_MS = 5 * 60_000
RECENT_WINDOW_MS = 30 * 60_000
LIVE_FEED_SIZE = 20
FEED_READ_FACTOR = 5  # heartbeats are most events of a quiet site: read enough to fill the feed
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
    """The latest events a person did, newest first, with only what the feed shows, and what
    happened in words. Heartbeats (a tab still open) are left out: they are not an action."""
    keep = ("event_id", "type", "ts", "path", "name", "source", "browser", "os", "device", "country")
    done = [e for e in store.recent_events(site.site_id, limit * FEED_READ_FACTOR) if e["type"] != "heartbeat"]
    return [{**{k: e.get(k) for k in keep}, "what": what_happened(e, site)} for e in done[:limit]]


def what_happened(event: dict, site: Site) -> str:
    """An event as the live feed says it, in the request's language: "Purchase (€29.00) on
    /pricing", "Clicked 'Download PDF'", "Left for github.com", "Viewed /pricing"."""
    kind, path, props = event["type"], event["path"], event.get("props") or {}
    if kind == "page_view":
        return _("Viewed %(page)s", page=path)
    if kind == "conversion":
        if event.get("value") is not None:
            return _("%(name)s (%(value)s) on %(page)s", name=event["name"], page=path,
                     value=money(event["value"], site.currency))
        return _("%(name)s on %(page)s", name=event["name"], page=path)
    if kind == "custom":
        if event["name"] == NOT_FOUND_EVENT:
            return _("Page not found: %(page)s", page=path)
        return _("%(name)s on %(page)s", name=event["name"], page=path)
    if kind == "click":
        link, text = split_link(props.get("href")), str(props.get("text") or "").strip()
        if link and leaves_site(link.hostname or "", event.get("hostname") or ""):
            return _("Left for %(host)s", host=link.hostname)
        if text:
            return _("Clicked '%(text)s' on %(page)s", text=text[:60], page=path)
        if link:
            return _("Clicked a link to %(link)s on %(page)s", link=link.path or "/", page=path)
        return _("Clicked on %(page)s", page=path)
    return _("Still on %(page)s", page=path)  # a heartbeat


def conversions_live(store: Store, site: Site, now_ms: int) -> dict:
    """What a shop owner watches during a sale: conversions (and their value) in the last 30
    minutes (the six 5-minute buckets up to now) and today, today's conversion rate (visits
    with a conversion / visits), custom events in the last 24 hours (the 24 hours up to and
    including this one), and how long the visits active now have lasted, on average."""
    five = now_ms // FIVE_MINUTES_MS
    recent = {m: sum(r.n for r in store.read_counters(site.site_id, m, "", five - 5, five + 1, grain="5min"))
              for m in ("conversions", "conversion_value")}
    today = local_day_number(site.timezone, now_ms)
    day = lambda metric, dimension: store.sum_counters(site.site_id, metric, dimension, today, today + 1, "day")  # noqa: E731
    sessions = day("sessions", "").get("", 0)
    converted = day("goal_visits", "goal").get(ANY_CONVERSION, 0)
    hour = now_ms // HOUR_MS
    durations = store.active_visit_durations(site.site_id, now_ms - CURRENT_WINDOW_MS)
    return {
        "last_30_minutes": {"conversions": int(recent["conversions"]), "value": round(recent["conversion_value"], 2)},
        "today": {"conversions": int(sum(day("conversions", "name").values())),
                  "value": round(sum(day("conversion_value", "name").values()), 2),
                  "conversion_rate": round(100 * converted / sessions, 2) if sessions else None},
        "custom_events_24h": int(sum(r.n for r in store.read_counters(site.site_id, "customs", "", hour - 23, hour + 1))),
        "active_visit_duration_s": round(sum(durations) / len(durations) / 1000, 1) if durations else None,
        "currency": site.currency,
    }


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


def at_a_glance(store: Store, site: Site, now_ms: int) -> dict:
    """What the sites list shows of each site: visitors now, today, and per hour of the last day."""
    today = local_day_number(site.timezone, now_ms)
    visitors_today = store.sum_counters(site.site_id, "visitors", "", today, today + 1, "day").get("", 0)
    return {"current": current_visitors(store, site, now_ms)["last_5_minutes"],
            "today": int(visitors_today), "last_24_hours": last_24_hours(store, site, now_ms)["visitors"]}


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
        "conversions": conversions_live(store, site, now_ms),
    }
