"""Funnels: ordered steps a visit goes through, each a page (pattern), a custom event, a
conversion or a goal, and how many visits reach each step, in that order, within the visit,
or, for a funnel across visits, within N days of its first step over a visitor's visits.

A funnel is worked out from visit summaries (summaries.py), so it covers every day kept, also
those before it was defined. A visit reaches step k when it reached step k - 1 and then a step
matching k (the earliest such: other steps in between are allowed, a step may repeat). The
time between two steps is the difference of their offsets in the visit, kept to the second
below 100 seconds and to two significant figures above (a day's digest holds one counter per
distinct time), so medians above 100 s are within 5 %.

A funnel across visits counts each step once per journey (a visitor's way from the first step
to the last within the window), in the visit that took it: a visit that carries progress
(goals.Carry: its summary begins with "f:<id>:<step>") counts only the steps it took further,
and the step it took first has no time from the one before, which an earlier visit took. The
carry exists from the funnel's creation on: before, its visits count within each visit.
"""
from __future__ import annotations

import functools
import json
import secrets
from collections import defaultdict
from datetime import date
from typing import Iterable, NamedTuple

from app.analytics.goals import (FUNNEL_DIMENSIONS, MAX_STEP_TEXT, carried_step, funnel_sketch, goals_of,
                                 step_matcher, step_target)
from app.analytics.periods import Period, day_from_number, local_day_number
from app.analytics.stats import _sketches, _visitors
from app.analytics.summaries import Report, Summary, digest, digest_name, key, key_prefix, matches
from app.i18n import gettext as _, lazy_gettext as _l
from app.store import hll
from app.store.base import Site, Store

MIN_STEPS, MAX_STEPS = 2, 8
MAX_FUNNELS = 50
MAX_NAME = 120
MAX_WINDOW_DAYS = 30  # how long a journey across visits may take from its first step
STEP_KINDS = {"page": _l("Visited a page"), "event": _l("Sent a custom event"), "conversion": _l("Converted"),
              "goal": _l("Reached a goal")}


class FunnelError(ValueError):
    """A funnel that cannot be kept or reported as asked; the message says why."""


class NoSuchFunnel(FunnelError):
    """The funnel asked for is not (or no longer) one of the site's."""


class Funnel(NamedTuple):
    id: str
    name: str
    steps: tuple[dict, ...]  # each {"kind": one of STEP_KINDS, "match": path pattern, name or goal id}
    created_ms: int = 0
    # Since when the aggregator notes its visitors (goals.funnel_steps): its creation; 0 for a funnel
    # made before LiveInsight counted funnel visitors, which reports only in visits.
    visitors_ms: int = 0
    window_days: int = 0  # steps count across a visitor's visits within this many days; 0: within a visit
    # Since when it notes them by each visit's values (goals.funnel_sketch): its creation; 0 for a
    # funnel made before, which reports visitors only without filters.
    visitors_by_ms: int = 0

    @classmethod
    def of(cls, record: dict) -> "Funnel":
        return cls(record["id"], record["name"], tuple(record["steps"]), record.get("created_ms", 0),
                   record.get("visitors_ms", 0), record.get("window_days", 0), record.get("visitors_by_ms", 0))

    def record(self) -> dict:
        return {"id": self.id, "name": self.name, "steps": [dict(s) for s in self.steps],
                "created_ms": self.created_ms, "visitors_ms": self.visitors_ms, "window_days": self.window_days,
                "visitors_by_ms": self.visitors_by_ms}


def funnels_of(site: Site) -> list[Funnel]:
    return [Funnel.of(f) for f in site.funnels]


def get_funnel(site: Site, funnel_id: str) -> Funnel:
    for funnel in funnels_of(site):
        if funnel.id == funnel_id:
            return funnel
    raise NoSuchFunnel(_("no funnel %(id)s on this site", id=repr(funnel_id)))


def new_funnel(site: Site, name: str, steps: Iterable[tuple[str, str]], now_ms: int,
               window_days: int | str = 0) -> Funnel:
    """A funnel from an admin's form: (kind, match) per step, blank steps left out, and the
    days a journey may take across visits (0 or blank: within one visit); checked."""
    name = name.strip()
    window = str(window_days).strip() or "0"
    if not window.isdigit() or int(window) > MAX_WINDOW_DAYS:
        raise FunnelError(_("a funnel counts across visits within 1 to %(most)s days, or 0 for within one visit",
                            most=MAX_WINDOW_DAYS))
    if not name:
        raise FunnelError(_("a funnel needs a name"))
    if len(name) > MAX_NAME:
        raise FunnelError(_("a funnel's name is at most %(most)s characters", most=MAX_NAME))
    goals = {g.id for g in goals_of(site)}
    checked = []
    for kind, match in steps:
        match = (match or "").strip()
        if not match:
            continue
        if kind not in STEP_KINDS:
            raise FunnelError(_("a step is one of %(kinds)s, not %(kind)s", kinds=", ".join(STEP_KINDS),
                                  kind=repr(kind)))
        if kind == "page" and not match.startswith("/"):
            raise FunnelError(_("a page step is a path beginning with /, such as /pricing or /blog/*: %(page)s",
                                page=repr(match)))
        if kind == "goal" and match not in goals:
            raise FunnelError(_("there is no goal %(goal)s", goal=repr(match)))
        if len(match) > MAX_STEP_TEXT:  # what a visit summary keeps of a page or name
            raise FunnelError(_("a step's page or name is at most %(most)s characters", most=MAX_STEP_TEXT))
        checked.append({"kind": kind, "match": match})
    if not MIN_STEPS <= len(checked) <= MAX_STEPS:
        raise FunnelError(_("a funnel has %(least)s to %(most)s steps, not %(num)s", least=MIN_STEPS, most=MAX_STEPS,
                             num=len(checked)))
    if len(site.funnels) >= MAX_FUNNELS:
        raise FunnelError(_("a site has at most %(most)s funnels", most=MAX_FUNNELS))
    return Funnel(secrets.token_hex(4), name, tuple(checked), now_ms, now_ms, int(window), now_ms)


def add_funnel(store: Store, site: Site, funnel: Funnel) -> None:
    site.funnels = [*site.funnels, funnel.record()]
    store.update_site(site)


def delete_funnel(store: Store, site: Site, funnel_id: str) -> Funnel:
    funnel = get_funnel(site, funnel_id)
    site.funnels = [f for f in site.funnels if f["id"] != funnel_id]
    store.update_site(site)
    return funnel


def step_label(site: Site, step: dict) -> str:
    """A step in words, in the request's language (English in the JSON API)."""
    kind, match = step["kind"], step["match"]
    if kind == "goal":
        goal = next((g for g in goals_of(site) if g.id == match), None)
        return goal.name if goal else _("(a deleted goal)")
    if kind == "page":
        return _("Visited %(page)s", page=match)
    return _("Sent %(event)s", event=match) if kind == "event" else _("Converted: %(name)s", name=match)


def _needle(site: Site, step: dict) -> str:
    """Text a stored summary (aggregate.py writes each step as JSON) holds if one of its steps
    is this funnel step: its quoted key, or for a page the quoted start of its pattern before
    any wildcard. Empty when there is none to tell."""
    target = step_target(site, step)
    if target is None:
        return ""
    kind, match = target
    if kind == "page":  # the path; with wildcards, the JSON of any path matching starts as its literal start's
        literal = match.split("*")[0]
        return json.dumps(literal, ensure_ascii=False)[:None if literal == match else -1]
    return json.dumps(match, ensure_ascii=False)


def _time_bucket(seconds: int) -> int:
    """Seconds kept exactly below 100, to two significant figures above."""
    if seconds < 100:
        return max(0, seconds)
    scale = 10 ** (len(str(seconds)) - 2)
    return round(seconds / scale) * scale


def _report(site: Site, funnel: Funnel, filters: dict[str, str]) -> Report:
    """A funnel's digest: per step, the visits that reached it (["s", step]) and the time it
    took from the step before (["s", step, seconds]), and the same by each dimension's value
    (["b", dimension, value, step] and, unfiltered, [..., step, seconds]). A report without a
    breakdown reads the "s" keys alone; one filtered by one value that value's "b" keys, so it
    needs no digest of its own."""
    matchers = [step_matcher(site, step) for step in funnel.steps]
    known: dict[str, tuple[bool, ...]] = {}  # a step text -> which funnel steps it is
    key_of = functools.lru_cache(maxsize=100_000)(key)  # a few thousand keys, met in many visits
    carried = carried_step(funnel.id, "") if funnel.window_days else None

    def keys(summary: Summary) -> list[str]:
        if filters and not matches(summary, filters):
            return []
        # The offsets at which the visit reached each step, in order; None for the steps an
        # earlier visit reached (a carried step comes first in a summary).
        times: list[int | None] = []
        for text, seconds in summary.steps:
            if carried and text.startswith(carried):
                times = [None] * int(text[len(carried):])
                continue
            hits = known.get(text)
            if hits is None:
                hits = known[text] = tuple(m(text) for m in matchers)
            if hits[len(times)]:
                times.append(seconds)
                if len(times) == len(matchers):
                    break
        out = []
        for i, seconds in enumerate(times):
            if seconds is None:
                continue
            values = [getattr(summary, dimension) for dimension in FUNNEL_DIMENSIONS]
            out.append(key_of("s", i))
            out += [key_of("b", dimension, value, i) for dimension, value in zip(FUNNEL_DIMENSIONS, values)]
            if i and times[i - 1] is not None:
                took = _time_bucket(seconds - times[i - 1])
                out.append(key_of("s", i, took))
                if not filters:
                    out += [key_of("b", dimension, value, i, took) for dimension, value in zip(FUNNEL_DIMENSIONS, values)]
        return out
    # A visit that never reached the first step counts in no key: most are skipped unparsed
    # (across visits, a visit may begin further on: each is read).
    return Report(funnel_digest(site, funnel, filters), keys,
                  needle="" if carried else _needle(site, funnel.steps[0]))


def _median(counts: dict[int, float]) -> float | None:
    """The median of values given as value -> how many times (the mean of the two middle ones
    when their number is even)."""
    total = int(sum(counts.values()))
    if not total:
        return None
    low_index, high_index, seen, low = (total - 1) // 2, total // 2, 0, None
    for value in sorted(counts):
        seen += int(counts[value])
        if low is None and seen > low_index:
            low = value
        if seen > high_index:
            return (low + value) / 2
    return None


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def funnel_report(store: Store, site: Site, funnel: Funnel, period: Period, today: int,
                  filters: dict[str, str] | None = None, breakdown: str | None = None) -> dict:
    """Visits entering each step, continuing and dropping off, each step's conversion from the
    one before and from the first, the median time from the step before, and the visitors
    who reached each step (_step_visitors); with `breakdown`, the same per value of a
    dimension (visits and visitors per step; no times)."""
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    unknown = set(filters) - set(FUNNEL_DIMENSIONS)
    if unknown:
        raise FunnelError(_("a funnel can be filtered by %(dimensions)s, not by %(unknown)s",
                            dimensions=", ".join(FUNNEL_DIMENSIONS), unknown=", ".join(sorted(unknown))))
    if breakdown is not None and breakdown not in FUNNEL_DIMENSIONS:
        raise FunnelError(_("a funnel can be broken down by %(dimensions)s", dimensions=", ".join(FUNNEL_DIMENSIONS)))
    visits = [0.0] * len(funnel.steps)
    times: list[dict[int, float]] = [defaultdict(float) for _ in funnel.steps]
    by_value: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(funnel.steps))
    days = period.first_day, period.last_day + 1, today
    if len(filters) == 1 and breakdown is None:  # the unfiltered digest's keys of that value
        [(dimension, value)] = filters.items()
        totals = digest(store, site, _report(site, funnel, {}), *days, prefix=key_prefix("b", dimension, value),
                        holding=json.dumps(value, ensure_ascii=False))
        head = 3  # ["b", dimension, value, step(, seconds)]
    else:
        totals = digest(store, site, _report(site, funnel, filters), *days, prefix="" if breakdown else key_prefix("s"))
        head = 1  # ["s", step(, seconds)]
    for text, n in totals.items():
        parts = json.loads(text)
        if head == 1 and parts[0] == "b":
            if parts[1] == breakdown and len(parts) == 4:  # visits by value, not times
                by_value[parts[2]][parts[3]] += n
            continue
        step, *took = parts[head:]
        if took:
            times[step][took[0]] += n
        else:
            visits[step] += n
    visitors, seen, since = _step_visitors(store, site, funnel, period, today, filters, breakdown)
    steps = []
    for i, step in enumerate(funnel.steps):
        nxt = visits[i + 1] if i + 1 < len(visits) else None
        steps.append({
            "step": i + 1, "label": step_label(site, step), "kind": step["kind"], "match": step["match"],
            "visits": int(visits[i]), "visitors": None if visitors is None else visitors[i],
            "continued": None if nxt is None else int(nxt),
            "dropped": None if nxt is None else int(visits[i] - nxt),
            "conversion_from_previous": 100.0 if i == 0 and visits[0] else (_percent(visits[i], visits[i - 1]) if i else None),
            "conversion_from_first": _percent(visits[i], visits[0]),
            "median_seconds_from_previous": _median(times[i]) if i else None,
        })
    report = {"funnel": funnel_ref(site, funnel), "steps": steps,
              "entered": int(visits[0]), "completed": int(visits[-1]),
              "conversion_rate": _percent(visits[-1], visits[0]),
              "visitors_since": since and since.isoformat(),
              "visitor_conversion_rate": None if visitors is None else _percent(visitors[-1], visitors[0])}
    if breakdown is not None:
        rows = sorted(by_value.items(), key=lambda item: (-item[1][0], item[0]))
        report["breakdown"] = {"dimension": breakdown, "rows": [
            {"value": value, "visits": [int(n) for n in counts], "conversion_rate": _percent(counts[-1], counts[0]),
             "visitors": None if seen is None else seen.get(value, [0] * len(counts))}
            for value, counts in rows]}
    return report


def funnel_ref(site: Site, funnel: Funnel) -> dict:
    """What names a funnel in answers: its id and name, its window across visits, and the local
    day since which it follows visitors across visits (its creation; None within a visit)."""
    since = funnel.window_days and day_from_number(local_day_number(site.timezone, funnel.created_ms)).isoformat()
    return {"id": funnel.id, "name": funnel.name, "window_days": funnel.window_days,
            "across_visits_since": since or None}


def _step_visitors(store: Store, site: Site, funnel: Funnel, period: Period, today: int, filters: dict[str, str],
                   breakdown: str | None) -> tuple[list[int] | None, dict[str, list[int]] | None, date | None]:
    """The visitors who reached each step in the period (a visitor once however many of their
    visits did; from the days' sketches, goals.funnel_steps), under the filters those of the
    visits that match; the same per value of the breakdown's dimension; and the local day since
    which the funnel's visitors are counted so (None: never). None when the sketches miss some
    of the period's (_counted_since), and by value for a funnel made before visitors were."""
    made = funnel.visitors_by_ms or (0 if filters else funnel.visitors_ms)
    whole, since = _counted_since(store, site, funnel, period, today, made, filters)
    if not whole:
        return None, None, since
    if funnel.visitors_by_ms:
        counted = _matching_visitors(store, site, funnel, period, filters, breakdown)
        return counted.pop(None), counted if breakdown else None, since
    values = [f"{funnel.id}:{i}" for i in range(1, len(funnel.steps) + 1)]  # made before visitors were noted by value
    counted = _visitors(store, site, "funnel", period, values)
    return [counted.get(v, 0) for v in values], None, since


def _matching_visitors(store: Store, site: Site, funnel: Funnel, period: Period, filters: dict[str, str],
                       dimension: str | None) -> dict[str | None, list[int]]:
    """The visitors of the visits matching the filters that reached each step (key None), and
    with a dimension the same per value of it: the unions of the funnel's sketches (one per
    step and combination of the visits' values, goals.funnel_sketch) that match, read once."""
    matched: dict[str | None, list[list[bytes]]] = defaultdict(lambda: [[] for _ in funnel.steps])
    matched[None] = [[] for _ in funnel.steps]  # the whole, also when none matches
    wanted = [(FUNNEL_DIMENSIONS.index(k), v) for k, v in filters.items()]
    by = FUNNEL_DIMENSIONS.index(dimension) if dimension else None
    for text, sketches in _sketches(store, site, funnel_sketch(funnel.id), period).items():
        step, _, values = text.partition(":")
        visit = json.loads(values) if wanted or by is not None else ()
        if all(visit[i] == v for i, v in wanted):
            matched[None][int(step) - 1] += sketches
            if by is not None:
                matched[visit[by]][int(step) - 1] += sketches
    return {value: [hll.count_visitors(s) if s else 0 for s in steps] for value, steps in matched.items()}


def _counted_since(store: Store, site: Site, funnel: Funnel, period: Period, today: int, made: int,
                   filters: dict[str, str]) -> tuple[bool, date | None]:
    """Whether the funnel's sketches noted since `made` (0: never) hold every visitor of the
    period under the filters, and the local day they begin. Not when the period begins before
    it and a visit of those days (under the filters) reached the first step (a funnel made
    before its site's first visits, or those of a value, counts them all)."""
    if not made:
        return False, None
    since = local_day_number(site.timezone, made)
    if len(filters) == 1:  # the unfiltered digest's keys of that value
        [(dimension, value)] = filters.items()
        report, first = _report(site, funnel, {}), key("b", dimension, value, 0)
    else:
        report, first = _report(site, funnel, filters), key("s", 0)
    missed = period.first_day < since and digest(store, site, report, period.first_day,
                                                  min(since, period.last_day + 1), today, prefix=first).get(first)
    return not missed, day_from_number(since)


# Bump when a funnel digest's keys change (2: "s" keys, and the times by value), so that kept ones are not read.
FUNNEL_KEYS = 2


def funnel_digest(site: Site, funnel: Funnel, filters: dict[str, str]) -> str:
    """The name of a funnel's daily digests: its steps as they match now, and the filters."""
    across = [funnel.id, funnel.window_days] if funnel.window_days else []  # its carried steps name it
    return digest_name("funnel", [[s["kind"], s["match"], _goal_of(site, s)] for s in funnel.steps],
                       sorted(filters.items()), FUNNEL_KEYS, *across)


def _goal_of(site: Site, step: dict) -> list | None:
    """What a goal step stands for now (its kind, match, property), so a digest made for it
    is not read after the goal changed."""
    if step["kind"] != "goal":
        return None
    goal = next((g for g in goals_of(site) if g.id == step["match"]), None)
    return None if goal is None else [goal.kind, goal.match, goal.prop, goal.value]

