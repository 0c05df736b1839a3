"""Traffic alerts: is the site's traffic now far above, or far below, what is normal for this
time of the week?

- Observed: the page views of the last 30 minutes (WINDOW_MS), from the 5-minute counters.
- Expected: the same 30 minutes of the week, in the site's local time (a daylight saving change
  moves nothing), in each of the last BASELINE_WEEKS weeks the site existed, from the hourly
  counters; an hour counts in proportion to its overlap with the window. The mean of the weeks.
- A spike: observed >= the minimum volume, >= ratio x expected, and z standard deviations
  above it. A drop: expected >= the minimum volume (a quiet night never pages anyone),
  observed <= expected / ratio, and z standard deviations below. The deviation is the Poisson
  noise of the expected count plus the spread between the weeks, so a site whose Mondays vary
  a lot needs a bigger change.
- With fewer than MIN_WEEKS weeks of history the site is still learning: nothing fires.

Page views are the measure because they add up across grains (a visitor of the hourly counter
is counted once an hour, of the 5-minute one once every 5 minutes).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from weakref import WeakKeyDictionary
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.store.base import FIVE_MINUTES_MS, HOUR_MS, Site, Store

from .settings import TrafficRule

WINDOW_MS = 30 * 60_000
BASELINE_WEEKS = 4
MIN_WEEKS = 2
SINCE_LIMIT_MS = 2 * HOUR_MS  # how far back "since" looks


@dataclass
class TrafficCheck:
    observed: float  # page views in the window
    expected: float | None  # the baseline's mean; None while the site is learning
    weeks: int  # how many weeks the baseline has
    direction: str | None = None  # "spike", "drop" or None
    since_ms: int | None = None  # when the change began (a 5-minute step)

    @property
    def ratio(self) -> float | None:
        return self.observed / self.expected if self.expected else None


def check_traffic(store: Store, site: Site, rule: TrafficRule, now_ms: int) -> TrafficCheck:
    recent = Recent(store, site.site_id, now_ms)
    baseline = Baseline(store, site, now_ms)
    start = now_ms - WINDOW_MS
    observed, weeks = recent.views(start, now_ms), baseline.views(start, now_ms)
    if len(weeks) < MIN_WEEKS:
        return TrafficCheck(observed, None, len(weeks))
    expected = sum(weeks) / len(weeks)
    check = TrafficCheck(observed, expected, len(weeks), _direction(observed, weeks, rule))
    if check.direction:
        check.since_ms = _since(recent, baseline, check.direction, rule, now_ms)
    return check


def _direction(observed: float, weeks: list[float], rule: TrafficRule) -> str | None:
    expected = sum(weeks) / len(weeks)
    spread = sum((w - expected) ** 2 for w in weeks) / (len(weeks) - 1)
    sigma = math.sqrt(expected + spread + 1)
    ratio, z = rule.threshold.ratio, rule.threshold.z
    if observed >= rule.min_volume and observed >= ratio * expected and observed - expected >= z * sigma:
        return "spike"
    if expected >= rule.min_volume and observed * ratio <= expected and expected - observed >= z * sigma:
        return "drop"
    return None


def _since(recent: "Recent", baseline: "Baseline", direction: str, rule: TrafficRule, now_ms: int) -> int:
    """The start of the earliest 5-minute bucket, going back from now's, from which every
    bucket is as far from its own baseline as the rule asks (its ratio): when the change began."""
    since = now_ms - WINDOW_MS
    end = now_ms
    while end > now_ms - SINCE_LIMIT_MS:
        start = (end - 1) // FIVE_MINUTES_MS * FIVE_MINUTES_MS  # now's bucket counts until now
        weeks = baseline.views(start, end)
        expected, observed = sum(weeks) / max(len(weeks), 1), recent.views(start, end)
        away = observed >= rule.threshold.ratio * expected if direction == "spike" else \
            observed * rule.threshold.ratio <= expected
        if not away:
            break
        since, end = start, start
    return since


class Recent:
    """Page views of the last hours, from the 5-minute counters (one read)."""

    def __init__(self, store: Store, site_id: str, now_ms: int):
        first = (now_ms - SINCE_LIMIT_MS - WINDOW_MS) // FIVE_MINUTES_MS
        rows = store.read_counters(site_id, "pageviews", "", first, now_ms // FIVE_MINUTES_MS + 1, grain="5min")
        self.counts = {row.hour: row.n for row in rows}
        self.now_ms = now_ms

    def views(self, start: int, end: int) -> float:
        """The bucket of now has counted only until now: it spans [its start, now)."""
        return _overlapping(self.counts, FIVE_MINUTES_MS, start, end, self.now_ms)


class Baseline:
    """Page views of the same local time of the week in earlier weeks, from the hourly counters:
    one read per week, of the hours every question of a check falls in (the last hours)."""

    def __init__(self, store: Store, site: Site, now_ms: int):
        self.store, self.site_id, self.zone = store, site.site_id, ZoneInfo(site.timezone)
        self.earliest, self.now_ms = now_ms - SINCE_LIMIT_MS - WINDOW_MS, now_ms
        self.weeks = [w for w in range(1, BASELINE_WEEKS + 1) if self._shift(self.earliest, w) >= site.created_ms]
        self.counts: dict[int, dict[int, float]] = {}  # week -> hour -> page views

    def _shift(self, ms: int, weeks: int) -> int:
        """The same local wall-clock time `weeks` weeks earlier."""
        local = datetime.fromtimestamp(ms / 1000, self.zone) - timedelta(weeks=weeks)
        return int(local.timestamp() * 1000)

    def _hours(self, week: int) -> dict[int, float]:
        if week not in self.counts:
            first = self._shift(self.earliest, week) // HOUR_MS
            end = self._shift(self.now_ms, week) // HOUR_MS + 1
            self.counts[week] = _past_hours(self.store, self.site_id, first, end)
        return self.counts[week]

    def views(self, start: int, end: int) -> list[float]:
        """For each week of the baseline, the page views of [start, end) moved to that week."""
        return [_overlapping(self._hours(w), HOUR_MS, self._shift(start, w), self._shift(end, w))
                for w in self.weeks]


# store -> (site, first hour, end hour) -> page views by hour; per store object, so that no
# other store (a test's, say) ever answers from it
_PAST: WeakKeyDictionary[Store, OrderedDict[tuple, dict[int, float]]] = WeakKeyDictionary()
PAST_KEPT = 20_000  # a week's hours of 5,000 sites (four weeks each), a few hundred bytes each


def _past_hours(store: Store, site_id: str, first: int, end: int) -> dict[int, float]:
    """Page views of hours a week old or more, which no longer change (events are taken at most
    24 hours late): read once per process and hour of the window, not every minute."""
    kept, key = _PAST.setdefault(store, OrderedDict()), (site_id, first, end)
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    rows = store.read_counters(site_id, "pageviews", "", first, end, grain="hour")
    kept[key] = {row.hour: row.n for row in rows}
    if len(kept) > PAST_KEPT:
        kept.popitem(last=False)
    return kept[key]


def _overlapping(counts: dict[int, float], size: int, start: int, end: int, now_ms: int | None = None) -> float:
    """The counts of the buckets of `size` that overlap [start, end), each in proportion to its
    overlap (its events spread evenly over it, the bucket of now over its part until now)."""
    total = 0.0
    for bucket in range(start // size, (end - 1) // size + 1):
        b_start = bucket * size
        b_end = min(b_start + size, now_ms) if now_ms is not None else b_start + size
        overlap = min(end, b_end) - max(start, b_start)
        if overlap > 0 and b_end > b_start:
            total += counts.get(bucket, 0.0) * overlap / (b_end - b_start)
    return total
