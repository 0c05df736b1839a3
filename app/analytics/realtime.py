"""Realtime figures: what the live dashboard and GET /api/realtime show.

Live figures come from the minute counters aggregation keeps of the visitors (each in the
minute of their latest event, with its page and source and their visit's duration so far:
analytics/aggregate.py), not from raw events or visit records, so a widget reads a few
counters a minute of its window, whatever the traffic. A window of N minutes sums the N minutes
up to now and the one it begins in, so a visitor last seen up to a minute before it still counts.
"""
from __future__ import annotations

from collections import defaultdict

from app.analytics.goals import ANY_CONVERSION, NOT_FOUND_EVENT, leaves_site, split_link
from app.analytics.periods import local_day_number
from app.i18n import gettext as _, money
from app.store.base import FIVE_MINUTES_MS, HOUR_MS, MINUTE_MS, Site, Store

CURRENT_WINDOW_MS = 5 * 60_000
RECENT_WINDOW_MS = 30 * 60_000
LIVE_FEED_SIZE = 20
FEED_READ_FACTOR = 5  # heartbeats are most events of a quiet site: read enough to fill the feed
TOP_PAGES_SIZE = 10


def _minutes(now_ms: int, window_ms: int) -> tuple[int, int]:
    """The minute buckets of a window up to now: the one it begins in, to now's own so far."""
    return (now_ms - window_ms) // MINUTE_MS, now_ms // MINUTE_MS + 1


def live_counts(store: Store, site_id: str, now_ms: int, dimension: str, window_ms: int = CURRENT_WINDOW_MS,
                metric: str = "visitors") -> dict[str, float]:
    """The visitors with an event in the window, by their latest event's page ("live_page") or
    source ("live_source"), or in total ("live", with their visits' durations so far); values
    whose visitors all moved on are left out."""
    counts = store.sum_counters(site_id, metric, dimension, *_minutes(now_ms, window_ms), "minute")
    return {value: n for value, n in counts.items() if n > 0}


def current_visitors(store: Store, site: Site, now_ms: int) -> dict:
    """Visitors with any event (heartbeats included) in the last 5 and 30 minutes, from one read
    of the 30 minutes."""
    first, end = _minutes(now_ms, RECENT_WINDOW_MS)
    rows = store.read_counters(site.site_id, "visitors", "live", first, end, grain="minute")
    current = _minutes(now_ms, CURRENT_WINDOW_MS)[0]
    return {"last_5_minutes": int(sum(r.n for r in rows if r.hour >= current)),
            "last_30_minutes": int(sum(r.n for r in rows))}


def _ranked(counts: dict[str, float]) -> list[dict]:
    rows = [{"name": name, "visitors": int(n)} for name, n in counts.items()]
    return sorted(rows, key=lambda r: (-r["visitors"], r["name"]))


def live_pages(store: Store, site: Site, now_ms: int) -> list[dict]:
    """Pages with visitors on them right now: each current visitor's latest page."""
    return _ranked({page: n for page, n in live_counts(store, site.site_id, now_ms, "live_page").items() if page})


def live_sources(store: Store, site: Site, now_ms: int) -> list[dict]:
    """Where the current visitors came from."""
    counts: dict[str, float] = defaultdict(float)
    for source, n in live_counts(store, site.site_id, now_ms, "live_source").items():
        counts[source or "(none)"] += n
    return _ranked(counts)


def active_visit_duration_s(store: Store, site: Site, now_ms: int, current: int | None = None) -> float | None:
    """How long the visits of the visitors active now (`current` of them, if known) have lasted
    so far, on average."""
    current = current_visitors(store, site, now_ms)["last_5_minutes"] if current is None else current
    durations = sum(live_counts(store, site.site_id, now_ms, "live", metric="duration_ms").values())
    return round(durations / current / 1000, 1) if current else None


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


def conversions_live(store: Store, site: Site, now_ms: int, current: int | None = None) -> dict:
    """What a shop owner watches during a sale: conversions (and their value) in the last 30
    minutes (the six 5-minute buckets up to now) and today, today's conversion rate (visits
    with a conversion / visits), custom events in the last 24 hours (the 24 hours up to and
    including this one), and how long the visits of the `current` visitors active now (read if
    not given) have lasted, on average."""
    five = now_ms // FIVE_MINUTES_MS
    recent = {m: sum(r.n for r in store.read_counters(site.site_id, m, "", five - 5, five + 1, grain="5min"))
              for m in ("conversions", "conversion_value")}
    today = local_day_number(site.timezone, now_ms)
    day = lambda metric, dimension: store.sum_counters(site.site_id, metric, dimension, today, today + 1, "day")  # noqa: E731
    sessions = day("sessions", "").get("", 0)
    converted = day("goal_visits", "goal").get(ANY_CONVERSION, 0)
    hour = now_ms // HOUR_MS
    return {
        "last_30_minutes": {"conversions": int(recent["conversions"]), "value": round(recent["conversion_value"], 2)},
        "today": {"conversions": int(sum(day("conversions", "name").values())),
                  "value": round(sum(day("conversion_value", "name").values()), 2),
                  "conversion_rate": round(100 * converted / sessions, 2) if sessions else None},
        "custom_events_24h": int(sum(r.n for r in store.read_counters(site.site_id, "customs", "", hour - 23, hour + 1))),
        "active_visit_duration_s": active_visit_duration_s(store, site, now_ms, current),
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
    """Everything the live dashboard shows, as one JSON-ready dict, from one moment's reads."""
    with store.one_moment():
        return _realtime(store, site, now_ms)


def _realtime(store: Store, site: Site, now_ms: int) -> dict:
    current = current_visitors(store, site, now_ms)
    return {
        "site": site.site_id,
        "now": now_ms,
        "current_visitors": current,
        "live_pages": live_pages(store, site, now_ms),
        "live_sources": live_sources(store, site, now_ms),
        "live_feed": live_feed(store, site),
        "last_24_hours": last_24_hours(store, site, now_ms),
        "top_pages_today": top_pages_today(store, site, now_ms),
        "conversions": conversions_live(store, site, now_ms, current["last_5_minutes"]),
    }
