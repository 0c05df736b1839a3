"""Historical reports: top metrics, charts and breakdowns over a period, with filters.

Unfiltered figures come from one-dimension daily counters and unique-visitor sketches, which
stay fast over 13 months. Filtered figures come from the cubes (see aggregate.py): the
session cube answers filters on session dimensions, the page cube a filter on a page. Cubes
count visitors once per day, so with a filter over several days "visitors" is the sum of daily
visitors (flagged `visitors_approximate`); without filters visitors are always deduplicated.
With a page filter, visits are the visits that viewed the page; what belongs to whole visits
(bounces, duration, conversions), and visitors with other filters too, is None with a reason
(`unavailable`). Charts are cut by hour, day, week or month by the period's length.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.analytics.aggregate import GOAL_CUBE, PAGE_CUBE, SESSION_CUBE, SESSION_DIMENSIONS, SESSION_METRICS
from app.analytics.goals import ANY_CONVERSION
from app.analytics.periods import Period, day_from_number, day_start_ms, local_day_number, month_days
from app.i18n import N_, gettext as _
from app.ingest.enrich import DropReason
from app.store import hll
from app.store.base import FIVE_MINUTES_MS, HOUR_MS, Site, Store, month_of_day

SESSION_BREAKDOWNS = SESSION_DIMENSIONS + ("entry",)
BREAKDOWNS = ("page", "entry", "exit") + SESSION_DIMENSIONS
FILTERS = SESSION_DIMENSIONS + ("page", "goal")
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
# Why a figure is missing (None) under a page filter, as the report says it (English; the
# dashboard shows it translated: N_).
PAGE_AND_FILTERS_VISITORS = N_("Not counted for a page together with other filters: a page's visitors are "
                               "counted for the page alone. Remove the other filters to see them.")
SINGLE_PAGE_UNAVAILABLE = {
    "bounce_rate": N_("Not computed for a single page: a bounce is a whole visit of one page view, "
                      "so it belongs to the visit, not to a page. See the time on page instead."),
    "visit_duration_s": N_("Not computed for a single page: a visit's duration covers every page of the "
                           "visit. See the time on page instead."),
    **dict.fromkeys(("conversion_rate", "conversions", "conversion_value"),
                    N_("Not computed for a single page: conversions belong to whole visits. "
                       "Filter by a goal to see its conversions.")),
}
# A page's visits are counted from schema 8 on: days folded before have its page views only.
PAGE_VISITS_NOT_COUNTED = N_("Not counted for these days: the visits of a page are counted since "
                             "LiveInsight started counting them (its page views were counted before).")


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
            raise StatsError(_("cannot filter by %(unknown)s: use %(filters)s", unknown=", ".join(sorted(unknown)),
                               filters=", ".join(FILTERS)))
        values = {k: v for k, v in pairs.items() if v is not None}
        if "page" in values and "goal" in values:
            raise StatsError(_("a report is filtered by a page or by a goal, not both"))
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
    """With a page filter: that page's page views and time, the visits that viewed it, and
    (for the page alone) its visitors. What belongs to whole visits is None (see
    `_unavailable_metrics`)."""
    cells = lambda m: sum(n for _, n in _cube_rows(store, site, m, period, *filters.cube))  # noqa: E731
    pageviews, time_ms, visits = cells("pageviews"), cells("time_on_page_ms"), cells("sessions")
    only_page = not filters.session
    visitors = _visitors(store, site, "page", period, [filters.page]).get(filters.page, 0) if only_page else None
    counted = visits or not pageviews  # page views without visits: days folded before visits were counted
    return {"visitors": visitors, "visits": int(visits) if counted else None, "pageviews": int(pageviews),
            "views_per_visit": _round(_ratio(pageviews, visits), 2), "bounce_rate": None,
            "visit_duration_s": None, "time_on_page_s": _round(_ratio(time_ms, pageviews * 1000), 1),
            "conversion_rate": None, "conversions": None, "conversion_value": None,
            "visitors_approximate": False}


def _unavailable_metrics(filters: Filters) -> dict[str, str]:
    """The top metrics these filters leave out (None), each with a sentence saying why."""
    if filters.page is None:
        return {}
    visitors = _visitors_unavailable(filters)
    return {"visitors": visitors, **SINGLE_PAGE_UNAVAILABLE} if visitors else dict(SINGLE_PAGE_UNAVAILABLE)


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
    unavailable = _unavailable_metrics(filters)
    if filters.page is not None and current["visits"] is None:
        unavailable.update(visits=PAGE_VISITS_NOT_COUNTED, views_per_visit=PAGE_VISITS_NOT_COUNTED)
    return {"metrics": metrics, "visitors_approximate": current["visitors_approximate"], "unavailable": unavailable}


# -- charts
def timeseries(store: Store, site: Site, period: Period, filters: Filters = Filters(), *,
               now_ms: int | None = None, metric: str | None = None) -> dict:
    """Visitors and page views per bucket of the period's interval (Period.chart_interval:
    hour, day, week or month), with the previous period cut the same way and aligned bucket
    by bucket. Filtered charts of one day have one daily point (cubes are daily). `current`
    is the index of the bucket holding now_ms (still incomplete), None once the period is over
    (or without now_ms). `metric`, one of VISIT_METRICS, adds its series (and the previous
    period's), or None with `<metric>_unavailable` saying why."""
    interval = period.chart_interval(hours=not filters)
    unavailable = _visitors_unavailable(filters)
    current = _series(store, site, period, filters, interval, unavailable is None)
    previous = _series(store, site, period.previous(), filters, interval, unavailable is None)
    length = len(current["labels"])
    series = {"interval": interval, "labels": current["labels"],
              "visitors": current["visitors"], "visitors_unavailable": unavailable,
              # Visitors of a week or month bucket, with filters no sketch answers, are the sum
              # of its days' visitors: one who came on two days counts twice.
              "visitors_summed_daily": interval in ("week", "month") and _visitor_sketch(filters) is None
                                       and unavailable is None,
              "pageviews": current["pageviews"],
              "previous_visitors": None if unavailable else _aligned(previous["visitors"], length),
              "previous_pageviews": _aligned(previous["pageviews"], length),
              "current": _current_bucket(site, interval, current["buckets"], now_ms)}
    if filters.goal is not None:  # the goal's own series: its conversions
        series["conversions"] = current["conversions"]
        series["previous_conversions"] = _aligned(previous["conversions"], length)
    if metric in VISIT_METRICS:
        values, why = _visit_series(store, site, period, filters, interval, metric)
        before, _ = _visit_series(store, site, period.previous(), filters, interval, metric)
        series.update({metric: values, f"previous_{metric}": None if before is None else _aligned(before, length),
                       f"{metric}_unavailable": why})
    return series


def _visitors_unavailable(filters: Filters) -> str | None:
    """Why there are no visitors under these filters, if there are none: the page cube holds
    no visitors."""
    if filters.page is not None and filters.session:
        return PAGE_AND_FILTERS_VISITORS
    return None


def _visitor_sketch(filters: Filters) -> tuple[str, str] | None:
    """The (dimension, value) whose daily sketches count these filters' visitors without
    counting one twice over several days, if there is one: the site's, a page's, a goal's."""
    if not filters:
        return "", ""
    if filters.session:
        return None
    return ("page", filters.page) if filters.page is not None else ("goal", filters.goal)


def _aligned(values: list[int], length: int) -> list[int | None]:
    return (values + [None] * length)[:length]


def _current_bucket(site: Site, interval: str, buckets: list[tuple[int, int]], now_ms: int | None) -> int | None:
    if now_ms is None:
        return None
    now = now_ms // HOUR_MS if interval == "hour" else local_day_number(site.timezone, now_ms)
    return next((i for i, (start, end) in enumerate(buckets) if start <= now < end), None)


def _day_plan(site: Site, period: Period, interval: str) -> tuple[list[tuple[int, int]], dict[int, int], list]:
    """A day, week or month chart's buckets (day numbers, [start, end)), each day's bucket, and
    the (grain, start, end) ranges to read: month rollups stand only for month buckets."""
    buckets = period.day_buckets(interval)
    slot = {day: i for i, (start, end) in enumerate(buckets) for day in range(start, end)}
    spans = _spans(site, period) if interval == "month" else [("day", *_days(period))]
    return buckets, slot, spans


def _series(store: Store, site: Site, period: Period, filters: Filters, interval: str, with_visitors: bool) -> dict:
    """Labels, bucket ranges (epoch hours or day numbers, [start, end)) and figures per bucket."""
    if interval == "hour":
        return _hourly_series(store, site, period)
    buckets, slot, spans = _day_plan(site, period, interval)
    labels = [day_from_number(start).isoformat() for start, _ in buckets]
    count = lambda metric: _per_bucket(store, site, metric, filters, spans, slot, len(buckets))  # noqa: E731
    series = {"labels": labels, "buckets": buckets, "pageviews": count("pageviews"), "visitors": None}
    if filters.goal is not None:
        series["conversions"] = count("conversions")
    sketch = _visitor_sketch(filters)
    if with_visitors and sketch is not None and (filters or interval != "day"):  # unique per bucket
        series["visitors"] = _sketch_visitors(store, site, *sketch, spans, slot, len(buckets))
    elif with_visitors:  # daily visitors: exact for a day bucket, summed over a longer one
        series["visitors"] = count("visitors")
    return series


def _day_hours(site: Site, period: Period) -> tuple[int, int]:
    """The epoch hours [start, end) of a one-day period's day."""
    return (day_start_ms(site.timezone, period.first) // HOUR_MS,
            day_start_ms(site.timezone, period.first + timedelta(days=1)) // HOUR_MS)


def _hourly_series(store: Store, site: Site, period: Period) -> dict:
    start, end = _day_hours(site, period)
    hours = list(range(start, end))
    zone = ZoneInfo(site.timezone)
    labels = [datetime.fromtimestamp(h * HOUR_MS / 1000, zone).strftime("%Y-%m-%dT%H:00") for h in hours]
    return {"labels": labels, "buckets": [(h, h + 1) for h in hours],
            **_bucket_sums(store, site, period, Filters(), "hour", ("visitors", "pageviews"))}


def _bucket_sums(store: Store, site: Site, period: Period, filters: Filters, interval: str,
                 metrics: tuple[str, ...]) -> dict[str, list[int]]:
    """Counters summed per chart bucket: the site's hourly counters for an hour chart (which
    has no filters), else the day (and month) counters, of the filters' cube when filtered."""
    if interval == "hour":
        start, end = _day_hours(site, period)
        per_hour = {m: _by_bucket(store.read_counters(site.site_id, m, "", start, end, grain="hour")) for m in metrics}
        return {m: [int(per_hour[m].get(h, 0)) for h in range(start, end)] for m in metrics}
    buckets, slot, spans = _day_plan(site, period, interval)
    return {m: _per_bucket(store, site, m, filters, spans, slot, len(buckets)) for m in metrics}


# Chart metrics of visits (besides visitors and page views), drawn when asked for: what each
# is made of, and how.
VISIT_METRICS = {
    "visits": (("sessions",), lambda f: int(f["sessions"])),
    "views_per_visit": (("sessions", "pageviews"), lambda f: _round(_ratio(f["pageviews"], f["sessions"]), 2)),
    "bounce_rate": (("sessions", "bounces"), lambda f: _round(_percent(f["bounces"], f["sessions"]), 1)),
    "visit_duration_s": (("sessions", "duration_ms"), lambda f: _round(_ratio(f["duration_ms"], f["sessions"] * 1000), 1)),
}


# What a chart can be asked to draw: visitors and page views are always there (conversions
# under a goal filter), a metric of visits when asked.
CHART_METRICS = ("visitors", "pageviews", "conversions", *VISIT_METRICS)


def _visit_series(store: Store, site: Site, period: Period, filters: Filters, interval: str,
                  metric: str) -> tuple[list | None, str | None]:
    """One of VISIT_METRICS per bucket (a ratio is None where a bucket has no visit), or None and why
    these filters cannot give it (a page filter: what belongs to whole visits)."""
    if filters.page is not None and metric in SINGLE_PAGE_UNAVAILABLE:
        return None, SINGLE_PAGE_UNAVAILABLE[metric]
    parts, combine = VISIT_METRICS[metric]
    if filters.page is not None:  # to tell a bucket folded before page visits were counted
        parts = tuple(dict.fromkeys(parts + ("pageviews",)))
    sums = _bucket_sums(store, site, period, filters, interval, parts)
    figures = [dict(zip(parts, values)) for values in zip(*(sums[m] for m in parts))]
    # A ratio of a bucket without visits is None (a gap), and so is any figure of a bucket with a
    # page's views but not its visits (folded before they were counted).
    return [None if filters.page is not None and f["pageviews"] and not f["sessions"] else combine(f)
            for f in figures], None


def _by_bucket(rows) -> dict[int, float]:
    totals: dict[int, float] = defaultdict(float)
    for row in rows:
        totals[row.hour] += row.n
    return totals


def _first_day(grain: str, bucket: int) -> int:
    return month_days(bucket)[0] if grain == "month" else bucket


def _per_bucket(store: Store, site: Site, metric: str, filters: Filters, spans, slot: dict[int, int],
                length: int) -> list[int]:
    """A counter summed per chart bucket: the site's total, or the cells of the filters' cube."""
    cube, names, values = filters.cube if filters else ("", (), {})
    totals = [0.0] * length
    for grain, start, end in spans:
        for row in store.read_counters(site.site_id, metric, cube, start, end, grain=grain):
            if filters and not _in_cell(row.value, names, values):
                continue
            totals[slot[_first_day(grain, row.hour)]] += row.n
    return [int(n) for n in totals]


def _in_cell(value: str, names: tuple[str, ...], filters: dict[str, str]) -> bool:
    cell = dict(zip(names, json.loads(value)))
    return all(cell.get(k) == v for k, v in filters.items())


def _sketch_visitors(store: Store, site: Site, dimension: str, value: str, spans, slot: dict[int, int],
                     length: int) -> list[int]:
    """Unique visitors per chart bucket: the union of its days' (and months') sketches."""
    blobs: list[list[bytes]] = [[] for _ in range(length)]
    for grain, start, end in spans:
        for row in store.read_sketches(site.site_id, dimension, start, end, None if not dimension else [value],
                                       grain):
            blobs[slot[_first_day(grain, row.day)]].append(row.sketch)
    return [hll.count_visitors(sketches) for sketches in blobs]


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
           breakdowns: tuple[str, ...] = (), limit: int = DEFAULT_LIMIT, now_ms: int | None = None,
           metric: str | None = None) -> dict:
    """Everything GET /api/stats answers: the period, top metrics, chart and breakdowns.
    `now_ms` marks the chart's current bucket (none without it); `metric` adds a chart series."""
    return {
        "site": site.site_id,
        "period": {"name": period.name, "from": period.first.isoformat(), "to": period.last.isoformat(),
                   "previous_from": period.previous().first.isoformat(),
                   "previous_to": period.previous().last.isoformat(), "timezone": site.timezone},
        "filters": filters.values,
        "summary": summary(store, site, period, filters),
        "timeseries": timeseries(store, site, period, filters, now_ms=now_ms, metric=metric),
        "breakdowns": {name: breakdown(store, site, period, name, filters, limit) for name in breakdowns},
        "filtered": filtered(store, site, period),
    }
