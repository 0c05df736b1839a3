"""Historical reports: top metrics, charts and breakdowns over a period, with filters.

Unfiltered figures come from one-dimension daily counters and unique-visitor sketches, which
stay fast over 13 months. Filtered figures come from the cubes (see aggregate.py): the
session cube answers filters on session dimensions, the page cube a filter on a page. Cubes
count visitors once per day, so with a filter over several days "visitors" is the sum of daily
visitors (flagged `visitors_approximate`); without filters visitors are always deduplicated.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.analytics.aggregate import GOAL_CUBE, PAGE_CUBE, SESSION_CUBE, SESSION_DIMENSIONS, SESSION_METRICS
from app.analytics.goals import ANY_CONVERSION
from app.analytics.periods import Period, day_from_number, day_start_ms, month_days
from app.ingest.enrich import DropReason
from app.store import hll
from app.store.base import FIVE_MINUTES_MS, HOUR_MS, Site, Store, month_of_day

SESSION_BREAKDOWNS = SESSION_DIMENSIONS + ("entry",)
BREAKDOWNS = ("page", "entry", "exit") + SESSION_DIMENSIONS
FILTERS = SESSION_DIMENSIONS + ("page", "goal")
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


class StatsError(ValueError):
    """A report that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Filters:
    """Dimension -> value; an empty Filters is the whole site."""
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, pairs: dict[str, str]) -> "Filters":
        unknown = set(pairs) - set(FILTERS)
        if unknown:
            raise StatsError(f"cannot filter by {', '.join(sorted(unknown))}: use {', '.join(FILTERS)}")
        values = {k: v for k, v in pairs.items() if v is not None}
        if "page" in values and "goal" in values:
            raise StatsError("a report is filtered by a page or by a goal, not both")
        return cls(values)

    @property
    def page(self) -> str | None:
        return self.values.get("page")

    @property
    def goal(self) -> str | None:
        """A goal's key (analytics/goals.py): only the visits that reached it."""
        return self.values.get("goal")

    @property
    def session(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k not in ("page", "goal")}

    @property
    def cube(self) -> tuple[str, tuple[str, ...], dict[str, str]]:
        """The cube these filters read (aggregate.py), its cell's names, and the values to keep."""
        if self.page is not None:
            return "page_cube", PAGE_CUBE, self.values
        if self.goal is not None:
            return "goal_cube", GOAL_CUBE, self.values
        return "session", SESSION_CUBE, self.session

    def __bool__(self) -> bool:
        return bool(self.values)


# -- reading helpers
def _days(period: Period) -> tuple[int, int]:
    return period.first_day, period.last_day + 1


def _spans(site: Site, period: Period) -> list[tuple[str, int, int]]:
    """The period's days as (grain, start, end) bucket ranges to read: the months that lie
    whole inside it and are rolled up (analytics/rollups.py) as month buckets, the other days
    as day buckets."""
    first, end = _days(period)
    spans: list[tuple[str, int, int]] = []
    for month in range(month_of_day(first), month_of_day(end - 1) + 1):
        month_start, month_end = month_days(month)
        if month <= site.rolled_up_month and first <= month_start and month_end <= end:
            grain, start, stop = "month", month, month + 1
        else:
            grain, start, stop = "day", max(first, month_start), min(end, month_end)
        if spans and spans[-1][0] == grain and spans[-1][2] == start:
            spans[-1] = (grain, spans[-1][1], stop)  # one read for neighbouring ranges
        else:
            spans.append((grain, start, stop))
    return spans


def _sum_by_value(store: Store, site: Site, metric: str, dimension: str, period: Period) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for grain, start, end in _spans(site, period):
        for value, n in store.sum_counters(site.site_id, metric, dimension, start, end, grain).items():
            totals[value] += n
    return totals


def _sketches(store: Store, site: Site, dimension: str, period: Period, values=None) -> dict[str, list[bytes]]:
    """The period's daily (and month) sketches per value, of the given values (all when None)."""
    sketches: dict[str, list[bytes]] = defaultdict(list)
    if values is not None and not values:
        return sketches
    for grain, start, end in _spans(site, period):
        for row in store.read_sketches(site.site_id, dimension, start, end, values, grain):
            sketches[row.value].append(row.sketch)
    return sketches


def _visitors(store: Store, site: Site, dimension: str, period: Period, values=None) -> dict[str, int]:
    """Deduplicated visitors per value over the period, from the daily (and month) sketches."""
    return {value: hll.count_visitors(blobs) for value, blobs in _sketches(store, site, dimension, period,
                                                                            values).items()}


def _cube_rows(store: Store, site: Site, metric: str, period: Period, cube: str, names: tuple[str, ...],
               filters: dict[str, str]) -> list[tuple[dict[str, str], float]]:
    """Cube cells matching the filters, decoded: [(dimension -> value, n)]. A cell's value is
    a JSON array led by the cube's first dimension (a goal, a page): with a filter on that one,
    the store sums only the cells that begin with it (most of a goal cube is other goals')."""
    first = filters.get(names[0])
    prefix = "" if first is None else f"[{json.dumps(first, ensure_ascii=False)},"
    totals: dict[str, float] = defaultdict(float)
    for grain, start, end in _spans(site, period):
        for value, n in store.sum_counters(site.site_id, metric, cube, start, end, grain, prefix).items():
            totals[value] += n
    rows = []
    for value, n in totals.items():
        cell = dict(zip(names, json.loads(value)))
        if n and all(cell.get(k) == v for k, v in filters.items()):
            rows.append((cell, n))
    return rows


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


# -- top metrics
def _totals(store: Store, site: Site, period: Period, filters: Filters) -> dict:
    if filters.page is not None:
        return _page_totals(store, site, period, filters)
    if filters:
        sums = {m: sum(n for _, n in _cube_rows(store, site, m, period, *filters.cube))
                for m in SESSION_METRICS + ("visitors",)}
        visitors, approximate = int(sums["visitors"]), period.days > 1
        if filters.goal is not None and not filters.session:  # the goal's converters, deduplicated
            visitors, approximate = _visitors(store, site, "goal", period, [filters.goal]).get(filters.goal, 0), False
        converting = _conversions(store, site, period, filters, None if filters.goal is not None else sums["sessions"])
    else:
        sums = {m: _sum_by_value(store, site, m, "", period).get("", 0) for m in SESSION_METRICS}
        visitors, approximate = _visitors(store, site, "", period).get("", 0), False
        converting = {"visits": _sum_by_value(store, site, "goal_visits", "goal", period).get(ANY_CONVERSION, 0),
                      "of": sums["sessions"],
                      "conversions": sum(_sum_by_value(store, site, "conversions", "name", period).values()),
                      "value": sum(_sum_by_value(store, site, "conversion_value", "name", period).values())}
    visits = sums["sessions"]
    return {
        "visitors": visitors,
        "visits": int(visits),
        "pageviews": int(sums["pageviews"]),
        "views_per_visit": _round(_ratio(sums["pageviews"], visits), 2),
        "bounce_rate": _round(_percent(sums["bounces"], visits), 1),
        "visit_duration_s": _round(_ratio(sums["duration_ms"], visits * 1000), 1),
        # Visits with any conversion (with a goal filter: that goal) / all visits, in percent.
        "conversion_rate": _round(_percent(converting["visits"], converting["of"]), 2),
        "conversions": int(converting["conversions"]),  # conversion events (with a goal filter: its completions)
        "conversion_value": _round(converting["value"], 2),
        "visitors_approximate": approximate,
    }


def _conversions(store: Store, site: Site, period: Period, filters: Filters, of: float | None) -> dict[str, float]:
    """For visits matching session filters, from the goal cube: the visits that reached the
    filter's goal (or any conversion), the visits they are a share of (`of`, when the caller
    has them), and the completions and value."""
    goal = filters.goal if filters.goal is not None else ANY_CONVERSION
    cells = {m: sum(n for _, n in _cube_rows(store, site, m, period, "goal_cube", GOAL_CUBE,
                                             {"goal": goal, **filters.session}))
             for m in ("sessions", "conversions", "conversion_value")}
    if of is None and filters.session:
        of = sum(n for _, n in _cube_rows(store, site, "sessions", period, "session", SESSION_CUBE, filters.session))
    elif of is None:
        of = _sum_by_value(store, site, "sessions", "", period).get("", 0)
    return {"visits": cells["sessions"], "of": of, "conversions": cells["conversions"],
            "value": cells["conversion_value"]}


def _page_totals(store: Store, site: Site, period: Period, filters: Filters) -> dict:
    """With a page filter: that page's page views, time and visitors."""
    cells = lambda m: _cube_rows(store, site, m, period, *filters.cube)  # noqa: E731
    pageviews = sum(n for _, n in cells("pageviews"))
    time_ms = sum(n for _, n in cells("time_on_page_ms"))
    only_page = not filters.session
    visitors = _visitors(store, site, "page", period, [filters.page]).get(filters.page, 0) if only_page else None
    return {"visitors": visitors, "visits": None, "pageviews": int(pageviews), "views_per_visit": None,
            "bounce_rate": None, "visit_duration_s": None,
            "time_on_page_s": _round(_ratio(time_ms, pageviews * 1000), 1), "conversion_rate": None,
            "conversions": None, "conversion_value": None, "visitors_approximate": False}


def _percent(part: float, whole: float) -> float | None:
    ratio = _ratio(part, whole)
    return None if ratio is None else 100 * ratio


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _change(current: float | None, previous: float | None) -> float | None:
    """Percent change from the previous period; None where it means nothing (no base)."""
    if current is None or previous in (None, 0):
        return None
    return round(100 * (current - previous) / previous, 1)


def summary(store: Store, site: Site, period: Period, filters: Filters = Filters()) -> dict:
    """Top metrics of the period, each with the previous period's value and the change."""
    current = _totals(store, site, period, filters)
    previous = _totals(store, site, period.previous(), filters)
    metrics = {name: {"value": value, "previous": previous[name], "change": _change(value, previous[name])}
               for name, value in current.items() if name != "visitors_approximate"}
    return {"metrics": metrics, "visitors_approximate": current["visitors_approximate"]}


# -- charts
def timeseries(store: Store, site: Site, period: Period, filters: Filters = Filters()) -> dict:
    """Visitors and page views per hour (one-day periods) or per day, with the previous period
    aligned point by point. Filtered charts are daily (cubes are daily)."""
    hourly = period.hourly and not filters
    current = _series(store, site, period, filters, hourly)
    previous = _series(store, site, period.previous(), filters, hourly)
    series = {"interval": "hour" if hourly else "day", "labels": current["labels"],
              "visitors": current["visitors"], "pageviews": current["pageviews"],
              "previous_visitors": _aligned(previous["visitors"], len(current["labels"])),
              "previous_pageviews": _aligned(previous["pageviews"], len(current["labels"]))}
    if filters.goal is not None:  # the goal's own series: its conversions
        series["conversions"] = current["conversions"]
        series["previous_conversions"] = _aligned(previous["conversions"], len(current["labels"]))
    return series


def _aligned(values: list[int], length: int) -> list[int | None]:
    return (values + [None] * length)[:length]


def _series(store: Store, site: Site, period: Period, filters: Filters, hourly: bool) -> dict:
    if hourly:
        start = day_start_ms(site.timezone, period.first) // HOUR_MS
        end = day_start_ms(site.timezone, period.first + timedelta(days=1)) // HOUR_MS
        buckets = list(range(start, end))
        zone = ZoneInfo(site.timezone)
        labels = [datetime.fromtimestamp(h * HOUR_MS / 1000, zone).strftime("%H:00") for h in buckets]
        values = {m: _by_bucket(store.read_counters(site.site_id, m, "", start, end, grain="hour"))
                  for m in ("visitors", "pageviews")}
    else:
        buckets = list(range(*_days(period)))
        labels = [day_from_number(d).isoformat() for d in buckets]
        values = _daily_values(store, site, period, filters)
    return {"labels": labels, **{m: [int(per_bucket.get(b, 0)) for b in buckets] for m, per_bucket in values.items()}}


def _by_bucket(rows) -> dict[int, float]:
    totals: dict[int, float] = defaultdict(float)
    for row in rows:
        totals[row.hour] += row.n
    return totals


def _daily_values(store: Store, site: Site, period: Period, filters: Filters) -> dict[str, dict[int, float]]:
    read = lambda metric, dimension: store.read_counters(  # noqa: E731
        site.site_id, metric, dimension, *_days(period), grain="day")
    if not filters:
        return {"visitors": _by_bucket(read("visitors", "")), "pageviews": _by_bucket(read("pageviews", ""))}
    cube, names, values = filters.cube
    out = {}
    for metric in ("visitors", "pageviews") + (("conversions",) if filters.goal is not None else ()):
        per_day: dict[int, float] = defaultdict(float)
        for row in read(metric, cube):
            cell = dict(zip(names, json.loads(row.value)))
            if all(cell.get(k) == v for k, v in values.items()):
                per_day[row.hour] += row.n
        out[metric] = per_day
    only = (("page", filters.page) if filters.page is not None else ("goal", filters.goal)
            if filters.goal is not None else None)
    if only and not filters.session:  # a page's or a goal's daily visitors: its sketches
        out["visitors"] = {row.day: hll.count_visitors([row.sketch]) for row in store.read_sketches(
            site.site_id, only[0], *_days(period), [only[1]])}
    return out


def last_100_minutes(store: Store, site: Site, now_ms: int) -> dict:
    """Visitors and page views per 5 minutes over the last 100 minutes (20 points)."""
    end = now_ms // FIVE_MINUTES_MS + 1
    buckets = list(range(end - 20, end))
    zone = ZoneInfo(site.timezone)
    values = {m: _by_bucket(store.read_counters(site.site_id, m, "", buckets[0], end, grain="5min"))
              for m in ("visitors", "pageviews")}
    return {"labels": [datetime.fromtimestamp(b * FIVE_MINUTES_MS / 1000, zone).strftime("%H:%M")
                       for b in buckets],
            **{m: [int(values[m].get(b, 0)) for b in buckets] for m in ("visitors", "pageviews")}}


# -- breakdowns
def breakdown(store: Store, site: Site, period: Period, dimension: str, filters: Filters = Filters(),
              limit: int = DEFAULT_LIMIT) -> dict:
    """Rows of one dimension, biggest first, each with visitors and page views and the figures
    that dimension is read with (see the row builders below)."""
    if dimension not in BREAKDOWNS:
        raise StatsError(f"unknown breakdown {dimension!r}: use one of {', '.join(BREAKDOWNS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise StatsError(f"limit must be between 1 and {MAX_LIMIT}")
    unavailable = _unavailable(dimension, filters)
    if unavailable:
        return {"dimension": dimension, "rows": [], "total_rows": 0, "visitors_approximate": False,
                "unavailable": unavailable}
    if filters.page is not None:
        rows = _page_cube_rows(store, site, period, dimension, filters)
    elif filters:
        rows = _session_cube_rows(store, site, period, dimension, filters)
    elif dimension in ("page", "exit"):
        rows = _page_rows(store, site, period, dimension, limit)
    else:
        rows = _session_rows(store, site, period, dimension, limit)
    return {"dimension": dimension, "rows": rows[:limit], "total_rows": len(rows),
            "visitors_approximate": bool(filters) and period.days > 1}


def _unavailable(dimension: str, filters: Filters) -> str | None:
    """Why a breakdown cannot be read from the cubes with these filters, if it cannot."""
    if filters and dimension == "exit":  # exit pages move as a visit grows; cubes do not follow
        return "Exit pages are not broken down with filters."
    if filters.page is not None and dimension == "entry":
        return "Entry pages are not broken down with a page filter."
    if filters.goal is not None and dimension in ("page", "entry"):
        return "Pages are not broken down with a goal filter: filter by a source, country or device instead."
    return None


def _session_row(value: str, sums: dict[str, float], visitors: int | None) -> dict:
    visits = sums.get("sessions", 0)
    return {"value": value, "visitors": visitors, "visits": int(visits),
            "pageviews": int(sums.get("pageviews", 0)),
            "bounce_rate": _round(_percent(sums.get("bounces", 0), visits), 1),
            "visit_duration_s": _round(_ratio(sums.get("duration_ms", 0), visits * 1000), 1)}


def _session_rows(store: Store, site: Site, period: Period, dimension: str, limit: int) -> list[dict]:
    sums = {m: _sum_by_value(store, site, m, dimension, period) for m in SESSION_METRICS}
    ranked = sorted((v for v, n in sums["sessions"].items() if n > 0),
                    key=lambda v: (-sums["sessions"][v], v))
    visitors = _visitors(store, site, dimension, period, ranked[:limit])
    return [_session_row(v, {m: sums[m].get(v, 0) for m in SESSION_METRICS}, visitors.get(v, 0))
            for v in ranked]


def _page_rows(store: Store, site: Site, period: Period, dimension: str, limit: int) -> list[dict]:
    pageviews = _sum_by_value(store, site, "pageviews", "page", period)
    time_ms = _sum_by_value(store, site, "time_on_page_ms", "page", period)
    entries = _sum_by_value(store, site, "sessions", "entry", period)
    exits = _sum_by_value(store, site, "sessions", "exit", period)
    ranking = exits if dimension == "exit" else pageviews
    ranked = sorted((v for v, n in ranking.items() if n > 0), key=lambda v: (-ranking[v], v))
    visitors = _visitors(store, site, "page", period, ranked[:limit])
    rows = []
    for page in ranked:
        views = pageviews.get(page, 0)
        rows.append({"value": page, "visitors": visitors.get(page, 0), "pageviews": int(views),
                     "time_on_page_s": _round(_ratio(time_ms.get(page, 0), views * 1000), 1),
                     "entries": int(entries.get(page, 0)), "exits": int(exits.get(page, 0)),
                     "exit_rate": _round(_percent(exits.get(page, 0), views), 1)})
    return rows


def _session_cube_rows(store: Store, site: Site, period: Period, dimension: str,
                       filters: Filters) -> list[dict]:
    if dimension == "page":
        return _page_cube_rows(store, site, period, "page", filters)
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for metric in SESSION_METRICS + ("visitors",):
        for cell, n in _cube_rows(store, site, metric, period, *filters.cube):
            sums[cell[dimension]][metric] += n
    rows = [_session_row(v, s, int(s["visitors"])) for v, s in sums.items() if s["sessions"] > 0]
    return sorted(rows, key=lambda r: (-r["visits"], r["value"]))


def _page_cube_rows(store: Store, site: Site, period: Period, dimension: str,
                    filters: Filters) -> list[dict]:
    """Page views (and time on page) by any dimension, for pages matching the filters."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for metric in ("pageviews", "time_on_page_ms"):
        for cell, n in _cube_rows(store, site, metric, period, "page_cube", PAGE_CUBE, filters.values):
            sums[cell[dimension]][metric] += n
    rows = [{"value": v, "visitors": None, "pageviews": int(s["pageviews"]),
             "time_on_page_s": _round(_ratio(s["time_on_page_ms"], s["pageviews"] * 1000), 1)}
            for v, s in sums.items() if s["pageviews"] > 0]
    return sorted(rows, key=lambda r: (-r["pageviews"], r["value"]))


# Why events were not counted (ingest.enrich.DropReason), as the "Not counted" report says it.
DROP_REASONS = {DropReason.BOT.value: "Bots", DropReason.SPAM.value: "Referrer spam",
                DropReason.GPC.value: "Global Privacy Control", DropReason.DNT.value: "Do Not Track",
                DropReason.FAILED.value: "Could not be counted (set aside, see the server's log)"}


def filtered(store: Store, site: Site, period: Period) -> dict[str, int]:
    """Events received in the period and not counted, by reason (bots, referrer spam, visitors
    whose browser asked not to be tracked). Whole site: filters do not apply."""
    start = day_start_ms(site.timezone, period.first) // HOUR_MS
    end = day_start_ms(site.timezone, period.last + timedelta(days=1)) // HOUR_MS
    counts = store.sum_counters(site.site_id, "dropped", "reason", start, end, "hour")
    return {reason: int(n) for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n}


def report(store: Store, site: Site, period: Period, filters: Filters = Filters(),
           breakdowns: tuple[str, ...] = (), limit: int = DEFAULT_LIMIT) -> dict:
    """Everything GET /api/stats answers: the period, top metrics, chart and breakdowns."""
    return {
        "site": site.site_id,
        "period": {"name": period.name, "from": period.first.isoformat(), "to": period.last.isoformat(),
                   "previous_from": period.previous().first.isoformat(),
                   "previous_to": period.previous().last.isoformat(), "timezone": site.timezone},
        "filters": filters.values,
        "summary": summary(store, site, period, filters),
        "timeseries": timeseries(store, site, period, filters),
        "breakdowns": {name: breakdown(store, site, period, name, filters, limit) for name in breakdowns},
        "filtered": filtered(store, site, period),
    }
