"""Goal alerts, from the counters the aggregator keeps:

- "reached": a goal (its completions: the events that reached it), a conversion name, or any
  conversion, counted `threshold` times in the site's local day. Evaluated right after the
  aggregator folds the site's events, so the alert leaves seconds after the event that reached
  it; once per local day.
- "silence": no conversion at all for `hours`, between the local hours `from_h` and `to_h`
  (from the 5-minute conversion counters, kept 24 hours); once per local day.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.analytics.goals import ANY_CONVERSION
from app.analytics.periods import local_day_number
from app.store.base import FIVE_MINUTES_MS, HOUR_MS, Site, Store

from .settings import GoalRule


@dataclass
class GoalCheck:
    due: bool  # the rule fires now
    day: int  # the local day it speaks of (what makes it fire once a day)
    count: int = 0  # reached: completions today
    last_ms: int | None = None  # silence: the last conversion seen (None: none in the hours watched)
    quiet_since_ms: int = 0  # silence: since when there has been none


def completions_today(store: Store, site: Site, goal: str, now_ms: int) -> int:
    day = local_day_number(site.timezone, now_ms)
    if goal.startswith("g:"):  # a defined goal: the events (a page goal: the page views) that reached it
        return int(store.sum_counters(site.site_id, "goal_events", "goal", day, day + 1).get(goal, 0))
    by_name = store.sum_counters(site.site_id, "conversions", "name", day, day + 1)
    if goal == ANY_CONVERSION:
        return int(sum(by_name.values()))
    return int(by_name.get(goal[2:], 0))


def check_reached(store: Store, site: Site, rule: GoalRule, now_ms: int) -> GoalCheck:
    count = completions_today(store, site, rule.goal, now_ms)
    return GoalCheck(count >= rule.threshold, local_day_number(site.timezone, now_ms), count=count)


def check_silence(store: Store, site: Site, rule: GoalRule, now_ms: int) -> GoalCheck:
    """Due when now is within the rule's hours and no conversion came in the last `hours` of
    them (the hours before `from_h` do not count: a night without sales is no news)."""
    zone = ZoneInfo(site.timezone)
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    day = local_day_number(site.timezone, now_ms)
    opens = int(local.replace(hour=rule.from_h, minute=0, second=0, microsecond=0).timestamp() * 1000)
    closes = int((local.replace(hour=0, minute=0, second=0, microsecond=0)
                  + timedelta(hours=rule.to_h)).timestamp() * 1000)
    if not opens <= now_ms < closes:
        return GoalCheck(False, day)
    rows = store.read_counters(site.site_id, "conversions", "", opens // FIVE_MINUTES_MS,
                               now_ms // FIVE_MINUTES_MS + 1, grain="5min")
    seen = [row.hour for row in rows if row.n > 0]
    last_ms = min((max(seen) + 1) * FIVE_MINUTES_MS, now_ms) if seen else None  # the end of its 5 minutes
    quiet_since = last_ms if last_ms is not None else opens
    return GoalCheck(now_ms - quiet_since >= rule.hours * HOUR_MS, day, last_ms=last_ms, quiet_since_ms=quiet_since)
