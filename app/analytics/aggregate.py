"""Sessions and rollups from new events: one pure function both deployments share.

`aggregate(events, sessions, visitors, timezone)` takes newly stored events of one site and
the session and visitor records they touch, as stored, and returns the updated records, the
counter deltas and the visitor ids seen per day and dimension value (for unique-visitor
sketches). Every counter is additive, so deltas apply with SQLite's `n = n + ?` or
DynamoDB's atomic ADD. A session's figures are kept right as it grows by corrections: when a
bounce gets its second page view its bounce is taken back (-1); when the exit page moves,
the old one gets -1; duration and time on page grow by their difference.

Definitions (ARCHITECTURE.md): a session ends after 30 minutes without an event; a bounce is
a session with one page view and no click or conversion; visit duration is the last event
minus the first; time on page runs from a page view to the next page view of the session, or
to the last event on that page (heartbeats). Session figures count in the hour and the local
day the session started; event figures in the hour, 5 minutes and local day of the event.

Counters (grain, metric, dimension):
- hour: visitors, sessions, pageviews, bounces, duration_ms, customs, dropped/reason (site totals)
- 5min: visitors, pageviews (site totals; the last-100-minutes chart), conversions and
  conversion_value (the live view)
- day: the totals above plus events/type, customs/name, conversions/name,
  conversion_value/name; sessions, pageviews, bounces, duration_ms by each session dimension
  and by entry page; sessions by exit page; pageviews and time_on_page_ms by page;
  the same session metrics plus visitors by the "session" cube (every session dimension at
  once, the value encoded by `cube_value`), which is what filtered reports read;
  pageviews, time_on_page_ms and sessions (the visits that viewed the page, once a page and
  day) by the "page_cube" (the page and every session dimension): reports with a page filter;
  goals (analytics/goals.py): goal_visits and goal_events by goal key, and the "goal_cube"
  (the goal and every session dimension) with the visits' metrics, conversions and value;
  props by (event name, key, value); outbound by host and url; downloads by file; not_found
  by page and by (page, referrer);
- day, journeys (analytics/journeys.py): visits by their summary (dimension "journey": the
  visit's channel, source, device, country and ordered steps with their offsets), counted on
  the visit's day and moved (-1/+1) as the visit takes steps; and, for the funnels made since
  their visitors are counted (analytics/funnels.py), the visitor seen in the sketch of each
  funnel step the visit reaches (dimension "funnel", value "<funnel id>:<step>"), on that day;
  a visit that carries progress through funnels across visits (the tracker's carry, goals.py)
  begins its summary with a step "f:<funnel id>:<step>" per funnel, where it begins;
- day, cohorts (analytics/cohorts.py): visitors by the week or month the tracker made their id,
  counted once in each week or month they come back (bucket: its first day).
- minute, live (analytics/realtime.py): each visitor counted once, in the minute of their
  latest event: visitors and the duration_ms of their visits so far in total (dimension
  "live"), visitors by that event's page ("live_page") and by the visit's source
  ("live_source"); moved (-1/+1) as the visitor goes on, so the visitors of the last N minutes
  are the sum of N buckets, however busy the site.
"""
from __future__ import annotations

import json
import zlib
from collections import defaultdict
from copy import copy
from functools import lru_cache
from typing import Iterable

from app.analytics.goals import (
    FUNNEL_DIMENSIONS, MAX_KEYS_PER_EVENT, MAX_REACHED, MAX_STEP_TEXT, NOT_FOUND_EVENT, Carry, SiteGoals,
    carried_step, conversion_key, event_key, funnel_sketch, leaves_site, prop_text, split_link,
)
from app.analytics.periods import local_day_number
from app.store.base import (
    FIVE_MINUTES_MS, HOUR_MS, JOURNEY, KEY_SEPARATOR, MINUTE_MS, Changes, CounterKey, Session, Site, UniqueKey, Visitor,
    month_of_day, month_start_day,
)

SESSION_GAP_MS = 30 * 60_000
INTERACTIONS = ("click", "conversion")
NAMED = ("custom", "conversion")
REACHING = ("page_view", "custom", "conversion")  # the events that can reach a goal
# Attributes of a visit, fixed by its first event, each a report breakdown and a filter.
SESSION_DIMENSIONS = ("channel", "source", "utm_source", "utm_medium", "utm_campaign",
                      "browser", "os", "device", "country")
# Cubes: counters whose value is a JSON array of several dimensions at once, so a report can
# filter on any of them. The session cube's key is every session dimension and the entry page;
# the page cube's is the page and every session dimension.
SESSION_CUBE = SESSION_DIMENSIONS + ("entry",)
PAGE_CUBE = ("page",) + SESSION_DIMENSIONS
SESSION_METRICS = ("sessions", "pageviews", "bounces", "duration_ms")
# The goal cube: the visits that reached a goal (analytics/goals.py), by every session
# dimension: what a report filtered by a goal reads. Its key is the goal's key and GOAL_CUBE.
GOAL_CUBE = ("goal",) + SESSION_DIMENSIONS
# Properties of custom events are counted per day as (event name, key, value); a key keeps at
# most this many distinct values a day, the rest count as OTHER (see PropValues).
MAX_PROP_VALUES = 100
OTHER = "(other)"
# A visit remembers the pages it viewed on its current day (to count it once per page and day)
# as short hashes, at most this many: beyond, each view of a page not remembered counts the
# visit again, so a page's visits never exceed its page views.
MAX_PAGES = 64
# A visit's summary (JOURNEY): its first steps (pages, and the names of its custom events and
# conversions), each with its offset from the visit's start in seconds; a page longer than
# MAX_STEP_TEXT is cut there. Only the summary's dimensions here are kept with it: those funnels
# and journeys are filtered by.
JOURNEY_DIMENSIONS = FUNNEL_DIMENSIONS
MAX_STEPS = 24  # (MAX_STEP_TEXT is in goals.py, which works out steps too)
# Cohort counters: dimension -> the period it counts in (analytics/cohorts.py).
COHORT_PERIODS = ("week", "month")
# The dimensions whose values get a daily unique-visitor sketch ("" is the whole site).
SKETCH_DIMENSIONS = ("", "page", "entry", *SESSION_DIMENSIONS, "goal", "outbound", "download", "funnel")


def session_cube(session: Session) -> str:
    return _cube_value((*_session_values(session), session.entry_path or ""))


def page_cube(session: Session, path: str) -> str:
    return _cube_value((path, *_session_values(session)))


def goal_cube(session: Session, key: str) -> str:
    return _cube_value((key, *_session_values(session)))


def _session_values(session: Session) -> tuple[str, ...]:
    return tuple(getattr(session, d) for d in SESSION_DIMENSIONS)


@lru_cache(maxsize=8192)  # a visit names the same cells on each of its events
def _cube_value(values: tuple[str, ...]) -> str:
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


# (event name, local day, property key) -> the distinct values counted for it so far.
PropValues = dict[tuple[str, int, str], set[str]]


class _Tally:
    """Counter deltas and unique visitors of one site. Keys are plain tuples while counting
    (an event adds about thirty) and become CounterKeys once, in `counters()`."""

    def __init__(self, site_id: str, timezone: str, goals: SiteGoals, prop_values: PropValues):
        self.site_id, self.timezone, self.goals = site_id, timezone, goals
        self.deltas: dict[tuple, float] = defaultdict(float)
        self.uniques: dict[UniqueKey, set[str]] = defaultdict(set)
        self._days: dict[int, int] = {}
        # Distinct property values counted per (event name, day, key): the stored ones, given
        # by the caller, and those this batch adds.
        self.prop_values = {k: set(v) for k, v in prop_values.items()}

    def day(self, ts: int) -> int:
        """The site's local day of a timestamp. Every time zone's offset is a whole number of
        quarter hours, so the day cannot change inside one: cache by quarter hour."""
        quarter = ts // (HOUR_MS // 4)
        if quarter not in self._days:
            self._days[quarter] = local_day_number(self.timezone, ts)
        return self._days[quarter]

    def add(self, grain: str, bucket: int, metric: str, n: float = 1, dimension: str = "",
            value: str = "") -> None:
        if n:
            self.deltas[(bucket, metric, dimension, value, grain)] += n

    def counters(self) -> dict[CounterKey, float]:
        return {CounterKey(self.site_id, *key): n for key, n in self.deltas.items() if n}

    def seen(self, day: int, user_id: str, dimension: str = "", value: str = "") -> None:
        self.uniques[UniqueKey(self.site_id, day, dimension, value)].add(user_id)


def aggregate(events: Iterable[dict], sessions: dict[str, Session], visitors: dict[str, Visitor],
              timezone: str = "UTC", gap_ms: int = SESSION_GAP_MS, goals: SiteGoals = SiteGoals(),
              prop_values: PropValues | None = None) -> Changes:
    """Fold new events of one site into its sessions, visitors and counters.

    `goals` is what the site counts as goals, outbound links and downloads; `prop_values` the
    property values already counted for the days and event names of these events (to keep
    MAX_PROP_VALUES). Does not mutate its inputs. Events may come in any order; they are
    applied by time.
    """
    events = sorted(events, key=lambda e: (e["ts"], e["event_id"]))
    if not events:
        return Changes()
    site_id = events[0]["site_id"]
    tally = _Tally(site_id, timezone, goals, prop_values or {})
    sessions = {k: copy(v) for k, v in sessions.items()}
    stored, visitors = visitors, {k: copy(v) for k, v in visitors.items()}
    touched_sessions: dict[str, Session] = {}
    touched_visitors: dict[str, Visitor] = {}

    for event in events:
        if event["site_id"] != site_id:
            raise ValueError("aggregate() takes the events of one site at a time")
        visitor = visitors.get(event["user_id"]) or Visitor(site_id, event["user_id"], -1, event["ts"])
        session = sessions.get(event["session_id"])
        if session is None or event["ts"] - session.last_seen_ms > gap_ms:
            session = _start_session(event, session, visitor, tally)
            sessions[session.session_id] = session
        _apply_event(session, visitor, event, tally)
        if event["ts"] >= visitor.last_seen_ms or visitor.live_page is None:  # the visitor's latest event
            visitor.live_page, visitor.live_source = event["path"], session.source
            visitor.live_duration_ms = session.duration_ms
        _count_visitor(visitor, event, tally)
        touched_sessions[session.session_id] = sessions[session.session_id] = session
        touched_visitors[visitor.user_id] = visitors[visitor.user_id] = visitor
    for visitor in touched_visitors.values():
        _count_live(stored.get(visitor.user_id), visitor, tally)

    return Changes(
        sessions=list(touched_sessions.values()),
        visitors=list(touched_visitors.values()),
        counters=tally.counters(),
        uniques=dict(tally.uniques),
    )


def _live_cell(visitor: Visitor | None) -> tuple[int, str, str, int] | None:
    """Where the live counters have a visitor: none until counted (a record of an older release)."""
    if visitor is None or visitor.live_page is None:
        return None
    return visitor.last_seen_ms // MINUTE_MS, visitor.live_page, visitor.live_source, visitor.live_duration_ms


def _count_live(before: Visitor | None, after: Visitor, tally: _Tally) -> None:
    """Move the visitor from where the live counters had them (as stored before this batch: the
    minute, page and source of their latest event, and how long its visit had lasted) to where
    they are now. Deltas on one counter net out: within a minute, a longer visit is one delta
    (the duration is counted with the minute's total, not by page, so a new page moves only
    the page's visitors)."""
    old, new = _live_cell(before), _live_cell(after)
    if old == new:
        return
    for sign, cell in ((-1, old), (1, new)):
        if cell is not None:
            minute, page, source, duration = cell
            tally.add("minute", minute, "visitors", sign, "live")
            tally.add("minute", minute, "duration_ms", sign * duration, "live")
            tally.add("minute", minute, "visitors", sign, "live_page", page)
            tally.add("minute", minute, "visitors", sign, "live_source", source)


def _start_session(event: dict, previous: Session | None, visitor: Visitor, tally: _Tally) -> Session:
    session = Session(
        site_id=event["site_id"], session_id=event["session_id"], user_id=event["user_id"],
        seq=previous.seq + 1 if previous else 0,
        started_ms=event["ts"], last_seen_ms=event["ts"],
        source=event["source"], channel=event["channel"], referrer=event["referrer"],
        browser=event["browser"], os=event["os"], device=event["device"],
        country=event.get("country") or "", utm_source=event.get("utm_source") or "",
        utm_medium=event.get("utm_medium") or "", utm_campaign=event.get("utm_campaign") or "",
        entry_path=event["path"] if event["type"] == "page_view" else None,
    )
    hour, day = session.started_ms // HOUR_MS, tally.day(session.started_ms)
    tally.add("hour", hour, "sessions")
    tally.add("day", day, "sessions")
    for dimension in SESSION_DIMENSIONS:
        value = getattr(session, dimension)
        tally.add("day", day, "sessions", 1, dimension, value)
        tally.seen(day, session.user_id, dimension, value)
    if session.entry_path is not None:
        tally.add("day", day, "sessions", 1, "entry", session.entry_path)
        tally.seen(day, session.user_id, "entry", session.entry_path)
    # The cube counts a visitor on the first visit of their day: exact for one day.
    session.first_of_day = visitor.last_day != day
    cube = session_cube(session)
    tally.add("day", day, "sessions", 1, "session", cube)
    tally.add("day", day, "visitors", int(session.first_of_day), "session", cube)
    _count_cohort(event, tally, day)
    if tally.goals.across_visits and event.get("carry"):
        _begin_where_carried(session, event, tally, day)
    return session


def _begin_where_carried(session: Session, event: dict, tally: _Tally, day: int) -> None:
    """The visit's summary begins with where it is in each funnel across visits, as the
    browser's carry says at its first event (goals.Carry)."""
    at = Carry(tally.goals.funnels, event["carry"]).at(event["ts"])
    if at:
        session.journey = "[" + ",".join(f"[{_json_text(carried_step(f, step))},0]" for f, step in sorted(at.items())) + "]"
        tally.add("day", day, "visits", 1, JOURNEY, _journey_value(session, session.journey))


def period_start(period: str, day: int) -> int:
    """The first local day of the week (from Monday) or month holding a local day."""
    if period == "week":
        return day - (day + 3) % 7  # day 0, 1970-01-01, was a Thursday
    return month_start_day(month_of_day(day))


def cohort_dimension(period: str, by: str, value: str) -> str:
    """The counter dimension of a period's cohorts whose first visit came from one channel or
    source ("#" never appears: DynamoDB keys join on it)."""
    return f"cohort_{period}:{by}:{value.replace('#', '')}"


def _count_cohort(event: dict, tally: _Tally, day: int) -> None:
    """A visit of a visitor whose id the tracker made at `first_ms`: count them in their
    cohort for this week and this month, unless this browser's previous event (`prev_ms`) fell
    in the same week or month already. Without a creation time the cohort is unknown."""
    first_ms, prev_ms = event.get("first_ms"), event.get("prev_ms")
    if first_ms is None:
        return
    first_day, prev_day = min(tally.day(first_ms), day), None if prev_ms is None else tally.day(prev_ms)
    for period in COHORT_PERIODS:
        start = period_start(period, day)
        if prev_day is not None and prev_day >= start:
            continue
        cohort = str(period_start(period, first_day))
        for by in ("channel", "source"):
            tally.add("day", start, "visitors", 1, cohort_dimension(period, by, event.get(f"first_{by}") or ""),
                      cohort)


def _journey_value(session: Session, steps: str, dims: str = "") -> str:
    """A visit summary's counter value: its dimensions (_journey_dims, when known) and steps."""
    return f"{(dims or _journey_dims(session))[:-1]},{steps}]"


def _journey_dims(session: Session) -> str:
    return _cube_value((session.channel, session.source, session.device, session.country))  # JOURNEY_DIMENSIONS


def _take_step(session: Session, step: str, ts: int, tally: _Tally) -> None:
    """The visit took a step (a page, or a named event): move it to its new summary. A step
    that repeats the one before (a reload) is not a new one; past MAX_STEPS the summary stays.
    The steps are edited as JSON text (the hot path of folding): every step begins with '["',
    which cannot occur inside a JSON string, where a quote is escaped."""
    text, journey = _json_text(step[:MAX_STEP_TEXT]), session.journey
    if journey:
        last = journey.rfind('["')
        if journey.startswith(f"[{text},", last) or journey.count('["') >= MAX_STEPS:
            return
    day, dims = tally.day(session.started_ms), _journey_dims(session)
    if journey:
        tally.add("day", day, "visits", -1, JOURNEY, _journey_value(session, journey, dims))
    offset = max(0, ts - session.started_ms) // 1000
    session.journey = f"{journey[:-1]},[{text},{offset}]]" if journey else f"[[{text},{offset}]]"
    tally.add("day", day, "visits", 1, JOURNEY, _journey_value(session, session.journey, dims))
    if tally.goals.funnels:
        _note_funnel_visitor(session, journey, step[:MAX_STEP_TEXT], day, tally)


def _note_funnel_visitor(session: Session, journey: str, step: str, day: int, tally: _Tally) -> None:
    """The visit took `step` after the steps of `journey`: its visitor is seen, on the visit's
    day, at each funnel step that takes it to, with the visit's values (goals.funnel_steps)."""
    before = [text for text, _ in json.loads(journey)] if journey else []
    for funnel in tally.goals.funnels:
        reached = funnel.counts_visitors and funnel.taken_to(before, step)
        if reached and funnel.by_values:
            tally.seen(day, session.user_id, funnel_sketch(funnel.id), f"{reached}:{_journey_dims(session)}")
        elif reached:  # a funnel made before visitors were noted by value
            tally.seen(day, session.user_id, "funnel", f"{funnel.id}:{reached}")


@lru_cache(maxsize=8192)  # a site has a few hundred pages and event names
def _json_text(step: str) -> str:
    return json.dumps(step, ensure_ascii=False)


def _session_figures(session: Session) -> dict[str, int]:
    return {"pageviews": session.pageviews, "bounces": int(session.is_bounce),
            "duration_ms": session.duration_ms}


def _apply_event(session: Session, visitor: Visitor, event: dict, tally: _Tally) -> None:
    hour, day = session.started_ms // HOUR_MS, tally.day(session.started_ms)
    before, old_exit = _session_figures(session), session.exit_path
    ts, kind = event["ts"], event["type"]
    event_day = tally.day(ts)
    session.last_seen_ms = max(session.last_seen_ms, ts)
    session.events += 1
    tally.add("day", event_day, "events", 1, "type", kind)
    if kind == "page_view":
        if session.entry_path is None:  # the visit began with another event: this is its entry
            _set_late_entry(session, event["path"], tally, day, before)
        _page_view(session, event, tally, event_day)
        _take_step(session, event["path"], ts, tally)
    elif session.exit_path is not None and ts >= session.last_pageview_ms:
        _stay_on_page(session, ts, tally)
    if kind in INTERACTIONS:
        session.interactions += 1
    if kind in NAMED:
        tally.add("day", event_day, f"{kind}s", 1, "name", event["name"])
        _take_step(session, (conversion_key if kind == "conversion" else event_key)(event["name"]), ts, tally)
        if kind == "conversion":  # the live view's conversions of the last 30 minutes, with value
            tally.add("5min", ts // FIVE_MINUTES_MS, "conversions")
            if event.get("value") is not None:
                tally.add("day", event_day, "conversion_value", event["value"], "name", event["name"])
                tally.add("5min", ts // FIVE_MINUTES_MS, "conversion_value", event["value"])
        else:  # and its custom events of the last 24 hours
            tally.add("hour", ts // HOUR_MS, "customs")
            _custom_event(session, event, tally, event_day)
    elif kind == "click":
        _click(session, event, tally, event_day)

    # Corrections that keep the session's figures right as it grows.
    after, values = _session_figures(session), _session_values(session)
    cubes = None  # the visit's session cube cell and goal cube cells, made when first needed
    deltas = tally.deltas  # the hottest loop of folding: its keys are written out, not add()ed
    for metric in ("pageviews", "bounces", "duration_ms"):
        delta = after[metric] - before[metric]
        if not delta:
            continue
        if metric != "pageviews":  # page views also count by event time, in _page_view
            deltas[(hour, metric, "", "", "hour")] += delta
            deltas[(day, metric, "", "", "day")] += delta
        for dimension, value in zip(SESSION_DIMENSIONS, values):
            deltas[(day, metric, dimension, value, "day")] += delta
        if session.entry_path is not None:
            deltas[(day, metric, "entry", session.entry_path, "day")] += delta
        if cubes is None:
            cubes = [("session", _cube_value((*values, session.entry_path or "")))] + [
                ("goal_cube", _cube_value((key, *values))) for key in _reached(session)]
        for cube, cell in cubes:
            deltas[(day, metric, cube, cell, "day")] += delta
    if session.exit_path != old_exit:
        if old_exit is not None:
            tally.add("day", day, "sessions", -1, "exit", old_exit)
        tally.add("day", day, "sessions", 1, "exit", session.exit_path)
    if kind in REACHING and (kind != "page_view" or tally.goals.pages):
        for key, defined in tally.goals.reached_by(event)[:MAX_KEYS_PER_EVENT]:
            if defined:  # conversions and events are counted by name, above
                tally.add("day", event_day, "goal_events", 1, "goal", key)
                if kind != "page_view":  # an event goal (its property condition): a step of its own
                    _take_step(session, key, ts, tally)
            if _reach(session, visitor, key, tally, day):  # its completions and values, by the visit's dimensions
                cell = _cube_value((key, *values))
                tally.add("day", day, "conversions", 1, "goal_cube", cell)
                if kind == "conversion" and event.get("value") is not None:
                    tally.add("day", day, "conversion_value", event["value"], "goal_cube", cell)


def _reached(session: Session) -> list[str]:
    return session.reached.split(KEY_SEPARATOR) if session.reached else []


def _reach(session: Session, visitor: Visitor, key: str, tally: _Tally, day: int) -> bool:
    """The visit reached a goal (or sent a conversion or event of a name): the first time, count
    the visit, its visitor (once a day) and the visit's figures so far in the goal cube, which
    the corrections above keep right from then on. Counted on the visit's day, as sessions are,
    so conversion rates divide like by like. False when the visit counts no more keys
    (MAX_REACHED)."""
    reached = _reached(session)
    if key in reached:
        return True
    if len(reached) >= MAX_REACHED:
        return False
    session.reached = KEY_SEPARATOR.join((*reached, key))
    if visitor.reached_day != day:
        visitor.reached_day, visitor.reached = day, ""
    visitor_reached = visitor.reached.split(KEY_SEPARATOR) if visitor.reached else []
    first_today = key not in visitor_reached
    if first_today:
        visitor.reached = KEY_SEPARATOR.join((*visitor_reached, key))
    tally.add("day", day, "goal_visits", 1, "goal", key)
    tally.seen(day, session.user_id, "goal", key)
    cell = goal_cube(session, key)
    for metric, n in {"sessions": 1, "visitors": int(first_today), **_session_figures(session)}.items():
        tally.add("day", day, metric, n, "goal_cube", cell)
    return True


def _custom_event(session: Session, event: dict, tally: _Tally, day: int) -> None:
    """A custom event's properties, each (key, value) counted for its name; and a page the site
    marked as not found (the tracker's NOT_FOUND_EVENT): its path and where visitors came from."""
    name = event["name"]
    for key, value in (event.get("props") or {}).items():
        text = prop_text(value)
        if text is None:
            continue
        known = tally.prop_values.setdefault((name, day, key), set())
        if text not in known:
            if len(known) >= MAX_PROP_VALUES:
                text = OTHER
            else:
                known.add(text)
        tally.add("day", day, "props", 1, "prop", _cube_value((name, key, text)))
    if name == NOT_FOUND_EVENT:
        tally.add("day", day, "not_found", 1, "page", event["path"])
        tally.add("day", day, "not_found", 1, "referrer", _cube_value((event["path"], _link(event["referrer"]))))


def _click(session: Session, event: dict, tally: _Tally, day: int) -> None:
    """A click on a link to a file (a download) or to another site (an outbound link)."""
    href = (event.get("props") or {}).get("href")
    parts = split_link(href)
    if parts is None:
        return
    host = (parts.hostname or "").lower()
    extension = parts.path.rsplit("/", 1)[-1].rpartition(".")[2].lower() if "." in parts.path else ""
    if extension and extension in tally.goals.download_extensions:
        tally.add("day", day, "downloads", 1, "file", _link(href))
        tally.seen(day, session.user_id, "download", _link(href))
    elif tally.goals.outbound_links and leaves_site(host, event.get("hostname") or ""):
        tally.add("day", day, "outbound", 1, "host", host)
        tally.add("day", day, "outbound", 1, "url", _link(href))
        tally.seen(day, session.user_id, "outbound", host)


def _link(url: str) -> str:
    """A URL as reports show it: without its query and fragment, which may carry tokens."""
    return url.split("#", 1)[0].split("?", 1)[0][:512] if url else ""


def _add_page_time(session: Session, tally: _Tally, ms: int) -> None:
    """Time on the current page grew by ms: count it for the page, on its view's day."""
    if ms:
        day, path = tally.day(session.last_pageview_ms), session.exit_path
        tally.add("day", day, "time_on_page_ms", ms, "page", path)
        tally.add("day", day, "time_on_page_ms", ms, "page_cube", page_cube(session, path))


def _stay_on_page(session: Session, ts: int, tally: _Tally) -> None:
    """A heartbeat, click or custom event: the visitor is still on the current page."""
    time_on_page = ts - session.last_pageview_ms
    if time_on_page > session.page_time_ms:
        _add_page_time(session, tally, time_on_page - session.page_time_ms)
        session.page_time_ms = time_on_page


def _page_view(session: Session, event: dict, tally: _Tally, event_day: int) -> None:
    ts, path = event["ts"], event["path"]
    session.pageviews += 1
    tally.add("hour", ts // HOUR_MS, "pageviews")
    tally.add("5min", ts // FIVE_MINUTES_MS, "pageviews")
    tally.add("day", event_day, "pageviews")
    tally.add("day", event_day, "pageviews", 1, "page", path)
    cell = page_cube(session, path)
    tally.add("day", event_day, "pageviews", 1, "page_cube", cell)
    if _first_view(session, path, event_day):  # what a report filtered by the page counts as visits
        tally.add("day", event_day, "sessions", 1, "page_cube", cell)
    tally.seen(event_day, session.user_id, "page", path)
    if ts >= session.last_pageview_ms:
        if session.exit_path is not None:  # the previous page's time ends at this page view
            _add_page_time(session, tally, ts - session.last_pageview_ms - session.page_time_ms)
        session.exit_path, session.last_pageview_ms, session.page_time_ms = path, ts, 0


def _first_view(session: Session, path: str, day: int) -> bool:
    """The visit's first view of this page on this day (its page views' day, as the page's
    counters). Remembers pages as 8-hex-digit CRC-32s: a collision among one visit's pages of a
    day (about 1 in 2 million at MAX_PAGES) would miss one visit."""
    if session.pages_day != day:
        session.pages_day, session.pages = day, ""
    token = f"{zlib.crc32(path.encode()):08x}"
    seen = session.pages.split()
    if token in seen:
        return False
    if len(seen) < MAX_PAGES:
        session.pages = f"{session.pages} {token}" if seen else token
    return True


def _set_late_entry(session: Session, path: str, tally: _Tally, day: int,
                    counted: dict[str, int]) -> None:
    """Give a visit that began without a page view its entry page, and move what it had
    counted so far (before this event) to the cube cell that names that entry."""
    old_cube = session_cube(session)
    session.entry_path = path
    new_cube = session_cube(session)
    so_far = {"sessions": 1, "visitors": int(session.first_of_day), **counted}
    for metric, n in so_far.items():
        tally.add("day", day, metric, -n, "session", old_cube)
        tally.add("day", day, metric, n, "session", new_cube)
        if metric != "visitors":
            tally.add("day", day, metric, n, "entry", path)
    tally.seen(day, session.user_id, "entry", path)


def _count_visitor(visitor: Visitor, event: dict, tally: _Tally) -> None:
    """Count a visitor once per hour, 5 minutes and local day in which they have any event,
    and note them as seen that day for the site's unique-visitor sketch."""
    ts = event["ts"]
    hour, five, day = ts // HOUR_MS, ts // FIVE_MINUTES_MS, tally.day(ts)
    if hour > visitor.last_hour:
        tally.add("hour", hour, "visitors")
        visitor.last_hour = hour
    if five > visitor.last_5min:
        tally.add("5min", five, "visitors")
        visitor.last_5min = five
    if day > visitor.last_day:
        tally.add("day", day, "visitors")
        tally.seen(day, visitor.user_id)
        visitor.last_day = day
    visitor.last_seen_ms = max(visitor.last_seen_ms, ts)


def _day_counters_written() -> tuple[tuple[str, str], ...]:
    """Every daily counter aggregate() writes, as (metric, dimension), found by folding one
    visit, event by event, down every path: a visit that begins without a page view (its entry
    comes late), page views, a click out and a download, a custom event (with a property, and
    the not-found one), a conversion with a value, heartbeats, a page goal and an event goal."""
    visit = [("heartbeat", "/a", None), ("page_view", "/a", None), ("click", "/a", "https://x.org/"),
             ("click", "/a", "https://h/f.pdf"), ("heartbeat", "/a", None), ("page_view", "/b", None),
             ("custom", "/b", None), ("conversion", "/b", None), ("heartbeat", "/b", None)]
    site = Site("s", "", "", [], goals=[{"id": "p", "name": "", "kind": "page", "match": "/a"},
                                         {"id": "e", "name": "", "kind": "event", "match": NOT_FOUND_EVENT}])
    goals = SiteGoals.of(site)
    sessions: dict[str, Session] = {}
    visitors: dict[str, Visitor] = {}
    written: set[tuple[str, str]] = set()
    for i, (kind, path, href) in enumerate(visit):
        event = {"site_id": "s", "event_id": f"e{i}", "type": kind, "ts": i * 10_000, "user_id": "u",
                 "session_id": "v", "path": path, "hostname": "h", "name": NOT_FOUND_EVENT, "value": 1.0,
                 "referrer": "", "props": {"href": href} if href else {"k": "v"},
                 **{dimension: "x" for dimension in SESSION_DIMENSIONS}}
        changes = aggregate([event], sessions, visitors, goals=goals)
        sessions.update((s.session_id, s) for s in changes.sessions)
        visitors.update((v.user_id, v) for v in changes.visitors)
        written |= {(key.metric, key.dimension) for key in changes.counters if key.grain == "day"}
    return tuple(sorted(written))


# What month rollups sum (analytics/rollups.py): every daily counter aggregate() writes, but
# visit summaries (few are alike: a month's would be as large as its days; journeys.py reads
# days) and cohorts (their buckets are weeks and months already).
def rolled_up(dimension: str) -> bool:
    return dimension != JOURNEY and not dimension.startswith("cohort_")


DAY_COUNTERS = tuple((metric, dimension) for metric, dimension in _day_counters_written() if rolled_up(dimension))
