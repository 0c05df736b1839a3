"""What an alert says: its title and text (plain words a site owner reads on a phone's lock
screen), the figures behind it, and the dashboard link that shows them. Times are in the
site's time zone."""
from __future__ import annotations

import secrets
from collections import Counter
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from app.analytics.goals import ANY_CONVERSION
from app.store.base import Alert, LiveSession, Site

from .goal_rules import GoalCheck
from .settings import GoalRule
from .traffic import WINDOW_MS, TrafficCheck

TOP = 5  # pages and sources an alert names


def local_time(site: Site, ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(site.timezone)).strftime("%H:%M")


def dashboard_path(site: Site, **filters: str) -> str:
    """The overview of today, filtered: where an alert's link goes (below the public URL)."""
    return f"/sites/{site.site_id}?" + urlencode({"period": "today", **filters})


def _top(counts: Counter) -> list[list]:
    return [[name, n] for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]


def _named(rows: list[list]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in rows)


def traffic_alert(site: Site, check: TrafficCheck, live: list[LiveSession], now_ms: int) -> Alert:
    """A spike or a drop, with the pages and sources of the visits active in the window, and a
    spike's link filtered by the source that brings half of them, if one does."""
    from app.dashboard.formatting import dimension_label  # here: app.dashboard imports app.alerts
    pages, sources = Counter(v.page for v in live if v.page), Counter(v.source for v in live)
    top_pages, ranked = _top(pages), _top(sources)
    top_sources = [[dimension_label(source, "source"), n] for source, n in ranked]
    if check.direction == "spike":
        times = f"{check.ratio:.1f}x" if check.expected >= 1 else "far above"
        title = f"Traffic spike on {site.name}: {times} the usual"
    else:
        title = f"Traffic drop on {site.name}: {100 * check.ratio:.0f}% of the usual"
    text = (f"{check.observed:.0f} page views in the last {WINDOW_MS // 60_000} minutes, against "
            f"{check.expected:.0f} usually at this time of the week (the last {check.weeks} weeks); "
            f"since {local_time(site, check.since_ms)}.")
    if top_pages:
        text += f" Visits now by page: {_named(top_pages)}."
    if top_sources:
        text += f" By source: {_named(top_sources)}."
    leading, visits = ranked[0] if ranked else ("", 0)
    filters = {"source": leading} if check.direction == "spike" and leading and 2 * visits >= len(live) else {}
    details = {"observed": round(check.observed, 1), "expected": round(check.expected, 1), "weeks": check.weeks,
               "since_ms": check.since_ms, "pages": top_pages, "sources": top_sources,
               "path": dashboard_path(site, **filters)}
    return Alert(site.site_id, f"{check.direction}@{now_ms // 60_000}", now_ms, "traffic", check.direction,
                 title, text, details)


def goal_alert(site: Site, rule: GoalRule, goal_name: str, check: GoalCheck, now_ms: int) -> Alert:
    at, any_conversion = local_time(site, now_ms), rule.goal == ANY_CONVERSION
    if rule.threshold == 1:
        title = f"First {goal_name} of the day on {site.name}"
        text = f"The first {goal_name} of today came in by {at}."
    else:
        title = (f"{rule.threshold} conversions today on {site.name}" if any_conversion
                 else f"{goal_name}: {rule.threshold} today on {site.name}")
        text = (f"{'Conversions' if any_conversion else goal_name} today: {check.count} by {at} "
                f"(the alert is set at {rule.threshold}).")
    filters = {"goal": rule.goal} if rule.goal.startswith("g:") else {}
    details = {"goal": rule.goal, "count": check.count, "threshold": rule.threshold,
               "path": dashboard_path(site, **filters)}
    return Alert(site.site_id, f"goal:{rule.id}@{check.day}", now_ms, rule.id, "goal", title, text, details)


def silence_alert(site: Site, rule: GoalRule, check: GoalCheck, now_ms: int) -> Alert:
    title = f"No conversion for {rule.hours} h on {site.name}"
    if check.last_ms is not None:
        text = f"The last conversion came by {local_time(site, check.last_ms)}; none since."
    else:
        text = f"No conversion since {rule.from_h}:00, when the hours this alert watches began."
    text += f" (Watched: {rule.from_h}:00 to {rule.to_h}:00, {site.timezone}.)"
    details = {"last_ms": check.last_ms, "hours": rule.hours, "path": dashboard_path(site)}
    return Alert(site.site_id, f"silence:{rule.id}@{check.day}", now_ms, rule.id, "silence", title, text, details)


def test_alert(site: Site, channel: str, now_ms: int) -> Alert:
    return Alert(site.site_id, f"test@{now_ms}-{secrets.token_hex(3)}", now_ms, "test", "test",
                 f"Test alert from {site.name}",
                 f"This is a test of {channel}: alerts of {site.name} will arrive like this.",
                 {"path": dashboard_path(site)})
