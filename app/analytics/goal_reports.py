"""Reports of what visits reached and sent: goals and conversions, custom events and their
properties, outbound links, downloads and not-found pages (see goals.py for what a goal is).

Definitions (docs/architecture.md, "Product definitions"):
- a goal's visits: visits (sessions) that reached it at least once; its conversions: every event
  that reached it (a page goal: each page view of a matching page);
- converting visitors: distinct visitors among those visits (HLL sketches, as unique visitors);
- conversion rate: the goal's visits / all visits of the same days and filters, in percent.
  Visits count on the day the visit began, on both sides of the division.
- value: the sum of the conversions' values (conversion goals), in the site's currency;
  average value: value / conversions.

Unfiltered figures come from one-dimension counters and sketches; with filters, from the goal
cube (aggregate.py), whose visitors are counted once a day per goal (approximate over days).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from urllib.parse import urlsplit

from app.analytics.aggregate import GOAL_CUBE
from app.analytics.goals import ANY_CONVERSION, Goal, conversion_key, event_key, goals_of, page_matches
from app.analytics.periods import Period, day_from_number, local_day_number
from app.analytics.stats import (
    DEFAULT_LIMIT, Filters, StatsError, _change, _cube_rows, _percent, _ratio, _round, _sketches, _sum_by_value,
    _visitors,
)
from app.i18n import N_, gettext as _
from app.store import hll
from app.store.base import Site, Store

GOAL_METRICS = ("visitors", "visits", "conversions", "conversion_rate", "value", "average_value")


def goals(store: Store, site: Site, period: Period, filters: Filters = Filters()) -> dict:
    """Each goal (defined ones, then conversion names) with its figures and their change
    against the previous period."""
    if filters.page is not None:
        return {"rows": [], "currency": site.currency,
                "unavailable": N_("Goals are not shown with a page filter: filter by a goal instead.")}
    current = _goal_figures(store, site, period, filters)
    previous = _goal_figures(store, site, period.previous(), filters)
    rows = []
    for key, row in current.items():
        before = previous.get(key, {})
        row["change"] = {m: _change(row[m], before.get(m)) for m in GOAL_METRICS}
        rows.append(row)
    return {"rows": rows, "currency": site.currency, "visitors_approximate": bool(filters.session)
            and period.days > 1}


def _goal_figures(store: Store, site: Site, period: Period, filters: Filters) -> dict[str, dict]:
    defined = goals_of(site)
    if filters.session:
        figures = _cube_figures(store, site, period, filters.session)
    else:
        figures = _counter_figures(store, site, period, defined)
    rows: dict[str, dict] = {}
    for goal in defined:
        rows[goal.key] = _goal_row(period, goal, figures)
    names = sorted({k[2:] for k in figures["visits"] if k.startswith("c:") and k != ANY_CONVERSION}
                   | set(figures.get("conversions_by_name", {})))
    for name in names:
        key = conversion_key(name)
        rows[key] = _row(key, name, "conversion", _("Conversion %(name)s", name=name), figures, figures["sessions"], None)
    return {k: v for k, v in rows.items() if k in {g.key for g in defined} or v["conversions"] or v["visits"]}


def _row(key: str, name: str, kind: str, description: str, figures: dict, sessions: float,
         counted_from) -> dict:
    visits = figures["visits"].get(key, 0)
    conversions = figures["conversions"].get(key, 0)
    value = figures["value"].get(key) if kind == "conversion" else None
    return {"key": key, "name": name, "kind": kind, "description": description,
            "visitors": int(figures["visitors"].get(key, 0)), "visits": int(visits),
            "conversions": int(conversions),
            "conversion_rate": _round(_percent(visits, sessions), 2),
            "value": _round(value, 2), "average_value": _round(_ratio(value or 0, conversions), 2)
            if value is not None else None,
            "counted_from": counted_from}


def _goal_row(period: Period, goal: Goal, figures: dict) -> dict:
    """A defined goal's row. Its visits count from the day it was added, and its conversion rate
    divides by the visits of those days only (none when it was added after the period). Without
    filters, a page goal's conversions and visitors before that day come from the page
    counters and sketches (retroactive)."""
    made = day_from_number(figures["created_day"][goal.key])
    sessions = figures["sessions_since"].get(goal.key, 0) if made > period.first else figures["sessions"]
    return _row(goal.key, goal.name, goal.kind, goal.description, figures, sessions,
                made.isoformat() if made >= period.first else None)


def _counter_figures(store: Store, site: Site, period: Period, defined: list[Goal]) -> dict:
    visits = _sum_by_value(store, site, "goal_visits", "goal", period)
    goal_events = _sum_by_value(store, site, "goal_events", "goal", period)
    by_name = _sum_by_value(store, site, "conversions", "name", period)
    values = _sum_by_value(store, site, "conversion_value", "name", period)
    conversions = {**goal_events, **{conversion_key(n): v for n, v in by_name.items()}}
    value = {conversion_key(n): v for n, v in values.items()}
    keys = [g.key for g in defined] + [conversion_key(n) for n in by_name] + [
        k for k in visits if k.startswith("c:") and k != ANY_CONVERSION]
    sketches = _sketches(store, site, "goal", period, sorted(set(keys)))
    sessions_of = lambda part: _sum_by_value(store, site, "sessions", "", part).get("", 0)  # noqa: E731
    created_day, sessions_since = _counted_days(site, period, defined, sessions_of)
    for goal in defined:
        made = created_day[goal.key]
        if goal.kind == "page" and made >= period.first_day:
            # Up to and including the day it was added (counted only from that moment): the
            # page views of its pages, which are what it counts, instead of its completions.
            _add_page_history(store, site, _part(period, period.first_day, min(made, period.last_day)), goal,
                              conversions, sketches)
            if made <= period.last_day:
                conversions[goal.key] -= _sum_by_value(
                    store, site, "goal_events", "goal", _part(period, made, made)).get(goal.key, 0)
    sessions = sessions_of(period)
    return {"visits": visits, "conversions": conversions, "value": value, "sessions": sessions,
            "visitors": {k: hll.count_visitors(blobs) for k, blobs in sketches.items()},
            "created_day": created_day, "sessions_since": sessions_since, "conversions_by_name": by_name}


def _add_page_history(store: Store, site: Site, before: Period, goal: Goal, conversions: dict,
                      sketches: dict) -> None:
    """A page goal's days until it was added: page views of matching pages, and their visitors."""
    pageviews = _sum_by_value(store, site, "pageviews", "page", before)
    pages = [p for p in pageviews if page_matches(goal.match, p)]
    conversions[goal.key] = conversions.get(goal.key, 0) + sum(pageviews[p] for p in pages)
    if pages:
        for blobs in _sketches(store, site, "page", before, pages).values():
            sketches.setdefault(goal.key, []).extend(blobs)


def _cube_figures(store: Store, site: Site, period: Period, session_filters: dict[str, str]) -> dict:
    """Goals' figures for visits matching session filters, from the goal cube."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for metric in ("sessions", "visitors", "conversions", "conversion_value"):
        for cell, n in _cube_rows(store, site, metric, period, "goal_cube", GOAL_CUBE, session_filters):
            sums[metric][cell["goal"]] += n
    sessions_of = lambda part: sum(  # noqa: E731
        n for _, n in _cube_rows(store, site, "sessions", part, *Filters(session_filters).cube))
    created_day, sessions_since = _counted_days(site, period, goals_of(site), sessions_of)
    return {"visits": sums["sessions"], "conversions": sums["conversions"], "value": sums["conversion_value"],
            "visitors": sums["visitors"], "sessions": sessions_of(period), "created_day": created_day,
            "sessions_since": sessions_since}


def _counted_days(site: Site, period: Period, defined: list[Goal], sessions_of) -> tuple[dict, dict]:
    """Each defined goal's day it was added, and for goals added after the period's first day
    the visits from that day on, which their conversion rate divides by."""
    created_day, sessions_since = {}, {}
    for goal in defined:
        made = created_day[goal.key] = local_day_number(site.timezone, goal.created_ms)
        if period.first_day < made <= period.last_day:
            sessions_since[goal.key] = sessions_of(_part(period, made, period.last_day))
    return created_day, sessions_since


def _part(period: Period, first_day: int, last_day: int) -> Period:
    """The days first_day..last_day of a period, as a period of their own."""
    return replace(period, name="custom", first=day_from_number(first_day), last=day_from_number(last_day))


# -- custom events and their properties
def custom_events(store: Store, site: Site, period: Period, filters: Filters = Filters(),
                  limit: int = DEFAULT_LIMIT) -> dict:
    """Custom events by name: events, the visits and visitors that sent them, and the share of
    all visits that sent each (per-visit rate)."""
    if filters.page is not None:
        return {"rows": [], "total_rows": 0, "unavailable": N_("Events are not shown with a page filter.")}
    if filters.session:
        figures = _cube_figures(store, site, period, filters.session)
        events, visits = figures["conversions"], figures["visits"]
        visitors, sessions = figures["visitors"], figures["sessions"]
        events = {k[2:]: n for k, n in events.items() if k.startswith("e:")}
    else:
        events = _sum_by_value(store, site, "customs", "name", period)
        visits = _sum_by_value(store, site, "goal_visits", "goal", period)
        sessions = _sum_by_value(store, site, "sessions", "", period).get("", 0)
        visitors = None
    ranked = sorted((n for n, c in events.items() if c > 0), key=lambda n: (-events[n], n))
    if visitors is None:
        visitors = _visitors(store, site, "goal", period, [event_key(n) for n in ranked[:limit]])
    rows = [{"value": name, "events": int(events[name]), "visits": int(visits.get(event_key(name), 0)),
             "visitors": int(visitors.get(event_key(name), 0)),
             "visit_rate": _round(_percent(visits.get(event_key(name), 0), sessions), 2)} for name in ranked]
    return {"rows": rows[:limit], "total_rows": len(rows), "visitors_approximate": bool(filters.session)
            and period.days > 1}


def event_properties(store: Store, site: Site, period: Period, name: str, limit: int = DEFAULT_LIMIT) -> dict:
    """One custom event's properties: for each key, its values by events, biggest first (at most
    MAX_PROP_VALUES values a key a day are kept; the rest are "(other)")."""
    keys: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for cell, n in _sum_by_value(store, site, "props", "prop", period).items():
        event, key, value = json.loads(cell)
        if event == name and n:
            keys[key][value] += n
    out = []
    for key in sorted(keys):
        values = keys[key]
        ranked = sorted(values, key=lambda v: (-values[v], v))
        out.append({"key": key, "total_rows": len(ranked),
                    "rows": [{"value": v, "events": int(values[v])} for v in ranked[:limit]]})
    return {"event": name, "properties": out}


# -- outbound links, downloads, not found
def links(store: Store, site: Site, period: Period, kind: str, filters: Filters = Filters(),
          limit: int = DEFAULT_LIMIT) -> dict:
    """Clicks by outbound host or URL ("outbound", "outbound_url"), downloads by file
    ("downloads"), or not-found pages ("not_found"), with their visitors where kept."""
    if filters:
        return {"rows": [], "total_rows": 0, "unavailable": N_("Shown for the whole site only (not with filters).")}
    metric, dimension, sketch = LINK_REPORTS[kind]
    counts = _sum_by_value(store, site, metric, dimension, period)
    ranked = sorted((v for v, n in counts.items() if n > 0), key=lambda v: (-counts[v], v))
    visitors = _visitors(store, site, sketch, period, ranked[:limit]) if sketch else {}
    rows = [{"value": v, "events": int(counts[v]), "visitors": visitors.get(v) if sketch else None}
            for v in ranked]
    rows = rows[:limit]
    if kind == "not_found":  # each missing page with the pages that linked to it
        referrers = defaultdict(list)
        for cell, n in _sum_by_value(store, site, "not_found", "referrer", period).items():
            page, referrer = json.loads(cell)
            if n:
                referrers[page].append((referrer or "(direct)", int(n)))
        _attach(rows, "referrers", referrers)
    elif kind == "outbound":  # each host with the links to it that were followed
        urls = defaultdict(list)
        for url, n in _sum_by_value(store, site, "outbound", "url", period).items():
            if n:
                urls[(urlsplit(url).hostname or "").lower()].append((url, int(n)))
        _attach(rows, "urls", urls)
    return {"rows": rows, "total_rows": len(ranked)}


def _attach(rows: list[dict], name: str, found: dict[str, list[tuple[str, int]]], most: int = 5) -> None:
    """Give each row its `most` biggest (value, events) of `found`, as row[name]."""
    for row in rows:
        ranked = sorted(found.get(row["value"], []), key=lambda vn: (-vn[1], vn[0]))[:most]
        row[name] = [{"value": v, "events": n} for v, n in ranked]


LINK_REPORTS = {  # kind -> (metric, dimension, sketch dimension of its visitors or "")
    "outbound": ("outbound", "host", "outbound"),
    "outbound_url": ("outbound", "url", ""),
    "downloads": ("downloads", "file", "download"),
    "not_found": ("not_found", "page", ""),
}


def goal_name(site: Site, key: str) -> str:
    """What the interface calls a goal key."""
    for goal in goals_of(site):
        if goal.key == key:
            return goal.name
    if key[:2] in ("c:", "e:"):
        return key[2:]
    raise StatsError(f"no goal {key!r}")


# Tables the stats API (breakdown=...), the reports and CSV share: name -> what reads it.
TABLES = ("goals", "events", "props", *LINK_REPORTS)


def table(store: Store, site: Site, period: Period, name: str, filters: Filters = Filters(),
          limit: int = DEFAULT_LIMIT, event: str | None = None) -> dict:
    """One of TABLES as {"rows": [...], ...}; "props" lists `event`'s properties as rows of
    (property, value, events)."""
    if name == "goals":
        return goals(store, site, period, filters)
    if name == "events":
        return custom_events(store, site, period, filters, limit)
    if name == "props":
        if not event:
            raise StatsError("the props breakdown needs event=<a custom event's name>")
        props = event_properties(store, site, period, event, limit)["properties"]
        rows = [{"property": p["key"], "value": r["value"], "events": r["events"]} for p in props for r in p["rows"]]
        return {"event": event, "rows": rows, "total_rows": sum(p["total_rows"] for p in props)}
    if name in LINK_REPORTS:
        return links(store, site, period, name, filters, limit)
    raise StatsError(f"unknown table {name!r}")
