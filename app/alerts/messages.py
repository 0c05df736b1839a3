"""What an alert says: its title and text (plain words a site owner reads on a phone's lock
screen), the figures behind it, and the dashboard link that shows them. Times are in the
site's time zone.

An alert is kept with its words in English (`Alert.title`, `.text`, composed from its details);
each reader gets them composed anew in their language (`alert_words`, in language.speaking)."""
from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from app.analytics.goals import ANY_CONVERSION
from app.i18n import DEFAULT_LANGUAGE, gettext as _
from app.store.base import Alert, Site

from .goal_rules import GoalCheck
from .language import speaking
from .settings import AlertSettings, GoalRule, goal_name
from .traffic import WINDOW_MS, TrafficCheck

TOP = 5  # pages and sources an alert names


def local_time(site: Site, ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(site.timezone)).strftime("%H:%M")


def dashboard_path(site: Site, **filters: str) -> str:
    """The overview of today, filtered: where an alert's link goes (below the public URL)."""
    return f"/sites/{site.site_id}?" + urlencode({"period": "today", **filters})


def _top(counts: dict[str, float]) -> list[list]:
    return [[name, int(n)] for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]


def _named(rows: list[list]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in rows)


# -- the alerts, kept in English
def traffic_alert(site: Site, check: TrafficCheck, pages: dict[str, float], sources: dict[str, float],
                  now_ms: int) -> Alert:
    """A spike or a drop, with the pages and sources of the visitors active in the window (by
    their latest event's page and their visit's source: realtime.live_counts), and a spike's
    link filtered by the source that brings half of them, if one does."""
    from app.dashboard.formatting import dimension_label  # here: app.dashboard imports app.alerts
    top_pages, ranked = _top({page: n for page, n in pages.items() if page}), _top(sources)
    leading, visits = ranked[0] if ranked else ("", 0)
    filters = ({"source": leading} if check.direction == "spike" and leading and 2 * visits >= sum(sources.values())
               else {})
    with speaking(DEFAULT_LANGUAGE):
        details = {"observed": round(check.observed, 1), "expected": round(check.expected, 1),
                   "weeks": check.weeks, "since_ms": check.since_ms, "pages": top_pages,
                   "sources": [[dimension_label(source, "source"), n] for source, n in ranked],
                   "path": dashboard_path(site, **filters)}
        title, text = _traffic_words(site, check.direction, details)
    return Alert(site.site_id, f"{check.direction}@{now_ms // 60_000}", now_ms, "traffic", check.direction,
                 title, text, details)


def goal_alert(site: Site, rule: GoalRule, name: str, check: GoalCheck, now_ms: int) -> Alert:
    filters = {"goal": rule.goal} if rule.goal.startswith("g:") else {}
    details = {"goal": rule.goal, "count": check.count, "threshold": rule.threshold,
               "path": dashboard_path(site, **filters)}
    with speaking(DEFAULT_LANGUAGE):
        title, text = _goal_words(site, name, details, now_ms)
    return Alert(site.site_id, f"goal:{rule.id}@{check.day}", now_ms, rule.id, "goal", title, text, details)


def silence_alert(site: Site, rule: GoalRule, check: GoalCheck, now_ms: int) -> Alert:
    details = {"last_ms": check.last_ms, "hours": rule.hours, "path": dashboard_path(site)}
    with speaking(DEFAULT_LANGUAGE):
        title, text = _silence_words(site, rule, details)
    return Alert(site.site_id, f"silence:{rule.id}@{check.day}", now_ms, rule.id, "silence", title, text, details)


def test_alert(site: Site, channel: str, now_ms: int) -> Alert:
    """A test from the Alerts page: in the page's language, which is also what it is sent in."""
    return Alert(site.site_id, f"test@{now_ms}-{secrets.token_hex(3)}", now_ms, "test", "test",
                 _("Test alert from %(site)s", site=site.name),
                 _("This is a test of %(channel)s: alerts of %(site)s will arrive like this.",
                   channel=channel, site=site.name),
                 {"path": dashboard_path(site)})


# -- the words, in the language spoken now
def alert_words(site: Site, alert: Alert) -> tuple[str, str]:
    """The alert's title and text in the language spoken now (language.speaking, or a page's),
    composed from its details; as kept where they cannot be (a test, whose channel the page
    named; a goal or rule deleted since)."""
    details = alert.details
    try:
        if alert.kind in ("spike", "drop"):
            return _traffic_words(site, alert.kind, details)
        if alert.kind == "goal" and (name := goal_name(site, details["goal"])):
            return _goal_words(site, name, details, alert.fired_ms)
        if alert.kind == "silence":
            rule = next((r for r in AlertSettings.of(site).goal_rules if r.id == alert.rule_id), None)
            if rule is not None:
                return _silence_words(site, rule, details)
        if alert.kind == "report":
            from .reports import report_words  # here: reports imports notify, which imports this
            return report_words(site, details)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):  # an alert kept before its details said enough
        pass
    return alert.title, alert.text


def _traffic_words(site: Site, direction: str, details: dict) -> tuple[str, str]:
    observed, expected = details["observed"], details["expected"]
    ratio = observed / expected if expected else 0.0
    if direction == "spike":
        title = _("Traffic spike on %(site)s: %(ratio)sx the usual", site=site.name, ratio=format(ratio, ".1f")) \
            if expected >= 1 else _("Traffic spike on %(site)s: far above the usual", site=site.name)
    else:
        title = _("Traffic drop on %(site)s: %(percent)s%% of the usual", site=site.name,
                  percent=format(100 * ratio, ".0f"))
    sentences = [_("%(observed)s page views in the last %(minutes)s minutes, against %(expected)s usually at this "
                   "time of the week (the last %(weeks)s weeks); since %(time)s.",
                   observed=format(observed, ".0f"), minutes=WINDOW_MS // 60_000, expected=format(expected, ".0f"),
                   weeks=details["weeks"], time=local_time(site, details["since_ms"]))]
    if details["pages"]:
        sentences.append(_("Visits now by page: %(pages)s.", pages=_named(details["pages"])))
    if details["sources"]:
        sentences.append(_("By source: %(sources)s.", sources=_named(sources_shown(details["sources"]))))
    return title, " ".join(sentences)


def sources_shown(rows: list[list]) -> list[list]:
    """A traffic alert's sources as kept (in English), with the names that are not data
    ("Direct / none", "Direct") in the language spoken now."""
    from app.dashboard.formatting import dimension_label  # here: app.dashboard imports app.alerts
    from app.ingest.sources import DIRECT_SOURCE
    if not rows:
        return rows
    with speaking(DEFAULT_LANGUAGE):
        kept = {dimension_label(value, "source"): value for value in ("", DIRECT_SOURCE)}
    return [[dimension_label(kept[name], "source") if name in kept else name, n] for name, n in rows]


def _goal_words(site: Site, name: str, details: dict, fired_ms: int) -> tuple[str, str]:
    at, threshold, count = local_time(site, fired_ms), details["threshold"], details["count"]
    if details["goal"] == ANY_CONVERSION:
        if threshold == 1:
            return (_("First conversion of the day on %(site)s", site=site.name),
                    _("The first conversion of today came in by %(time)s.", time=at))
        return (_("%(threshold)s conversions today on %(site)s", threshold=threshold, site=site.name),
                _("Conversions today: %(count)s by %(time)s (the alert is set at %(threshold)s).",
                  count=count, time=at, threshold=threshold))
    if threshold == 1:
        return (_("First %(goal)s of the day on %(site)s", goal=name, site=site.name),
                _("The first %(goal)s of today came in by %(time)s.", goal=name, time=at))
    return (_("%(goal)s: %(threshold)s today on %(site)s", goal=name, threshold=threshold, site=site.name),
            _("%(goal)s today: %(count)s by %(time)s (the alert is set at %(threshold)s).",
              goal=name, count=count, time=at, threshold=threshold))


def _silence_words(site: Site, rule: GoalRule, details: dict) -> tuple[str, str]:
    title = _("No conversion for %(hours)s h on %(site)s", hours=details["hours"], site=site.name)
    if details["last_ms"] is not None:
        first = _("The last conversion came by %(time)s; none since.", time=local_time(site, details["last_ms"]))
    else:
        first = _("No conversion since %(from_h)s:00, when the hours this alert watches began.", from_h=rule.from_h)
    watched = _("(Watched: %(from_h)s:00 to %(to_h)s:00, %(timezone)s.)",
                from_h=rule.from_h, to_h=rule.to_h, timezone=site.timezone)
    return title, f"{first} {watched}"
