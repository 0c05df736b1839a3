"""Goals: what a visit can reach, and what the aggregator counts for each.

A goal is reached by an event: a page view of a page goal's path or pattern, a custom event of
an event goal's name (and, optionally, with one property equal to a value), or a conversion
(every conversion name is a goal of its own, without setup). Each custom event name is counted
the same way, so the events panel has its visits and visitors too. Every one has a key:

- `g:<id>`    a goal an admin defined (Site.goals); renaming keeps the key, so its history stays;
- `c:<name>`  conversions of that name (liveinsight.conversion);
- `e:<name>`  custom events of that name (liveinsight.track);
- `c:`        any conversion (ANY_CONVERSION): the site-wide conversion rate, and a filter.

The aggregator counts a key the moment it is reached, from then on (aggregate.py): the visits
that reached it, their visitors, and the visits' figures in the goal cube (for "filter by
goal"). A goal defined today therefore counts from today; what its report can show of the days
before is what goal_reports.py reads for it (page goals: page views and visitors of matching
pages, from the daily page counters; raw events live 24 hours only).

A funnel's step is a goal, a page (pattern), or an event's or conversion's name: `step_target`
says what each is among a visit summary's steps, and `funnel_steps` lets the aggregator note
the visitors of each step of the funnels made since it does (analytics/funnels.py).

A funnel across visits (a window of N days) follows a visitor from one visit to the next
without the server keeping anything of them: the visitor's browser keeps its progress (the
tracker's li_c) and sends it with every event as `carry`. Ingestion answers each request with
the progress its events made (`Carry.advance`); the aggregator writes where a visit began in
each such funnel as a step of the visit's summary ("f:<funnel id>:<step>"), which names no
earlier visit and no one (docs/privacy.md).

Patterns: `*` stands for any characters but `/`, `**` for any characters at all; without a
wildcard a page goal is one exact path.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, NamedTuple
from urllib.parse import SplitResult, urlsplit

from app.i18n import gettext as _
from app.store.records import DAY_MS


GOAL_KINDS = ("page", "event")
MAX_GOALS = 100  # per site: each is matched against every event
MAX_NAME = 120
MAX_MATCH = 512
# A visit counts at most this many distinct keys (goals, conversion and event names): a page
# that sends hundreds of event names must not grow one visit's record without bound.
MAX_REACHED = 64
# An event reaches at most this many goal keys (the first, in the order goals were added; a
# conversion's name and "any conversion" are two): each new one adds ~7 counters, and one
# event's changes must fit one DynamoDB transaction (100 actions; a first page view alone is ~51).
MAX_KEYS_PER_EVENT = 5
MAX_STEP_TEXT = 200  # what a visit summary keeps of a page or name (aggregate.py)
ANY_CONVERSION = "c:"  # the key every conversion reaches, whatever its name (names are never empty)
NOT_FOUND_EVENT = "404"  # the custom event the tracker sends on a page marked as "not found"


class GoalError(ValueError):
    """A goal definition that cannot be kept; the message says why."""


class NoSuchGoal(GoalError):
    """The goal asked for is not (or no longer) one of the site's."""


class Goal(NamedTuple):
    id: str
    name: str
    kind: str  # "page" or "event"
    match: str  # the page path or pattern, or the custom event's name
    prop: str = ""  # an event goal's property condition: this property ...
    value: str = ""  # ... equal to this (as text)
    created_ms: int = 0

    @property
    def key(self) -> str:
        return f"g:{self.id}"

    @property
    def description(self) -> str:
        """What reaches the goal, in the request's language (English in the JSON API)."""
        if self.kind == "page":
            return _("Visited %(page)s", page=self.match)
        if self.prop:
            return _("Sent event %(event)s with %(prop)s = %(value)s", event=self.match, prop=self.prop, value=self.value)
        return _("Sent event %(event)s", event=self.match)


def conversion_key(name: str) -> str:
    return f"c:{name}"


def event_key(name: str) -> str:
    return f"e:{name}"


def goals_of(site) -> list[Goal]:
    """A site's defined goals, in the order they were added."""
    return [Goal(**g) for g in site.goals]


def new_goal(name: str, kind: str, match: str, prop: str = "", value: str = "", *, now_ms: int,
             existing: list[Goal]) -> Goal:
    """A goal from an admin's form, checked; raises GoalError."""
    name, match, prop, value = (s.strip() for s in (name, match, prop, value))
    if kind not in GOAL_KINDS:
        raise GoalError(_("a goal is a page or an event, not %(kind)s", kind=repr(kind)))
    if not match:
        raise GoalError(_("say which page (a path such as /pricing or /blog/*) or which event"))
    if len(match) > MAX_MATCH:
        raise GoalError(_("the page or event name is at most %(most)s characters", most=MAX_MATCH))
    if kind == "page":
        match = _path_only(match)
        if not match.startswith("/"):
            raise GoalError(_("a page goal is a path beginning with /, such as /pricing or /order/*/thanks"))
        if prop:
            raise GoalError(_("only event goals have a property condition"))
    elif prop and not value:
        raise GoalError(_("say which value of %(prop)s reaches the goal", prop=repr(prop)))
    elif value and not prop:
        raise GoalError(_("say which property the value is for"))
    name = name or (f"Visit {match}" if kind == "page" else match)
    check_name(name)
    if len(existing) >= MAX_GOALS:
        raise GoalError(_("a site has at most %(most)s goals", most=MAX_GOALS))
    goal = Goal(secrets.token_hex(4), name, kind, match, prop, value, now_ms)
    if any(g[2:6] == goal[2:6] for g in existing):
        raise GoalError(_("there is a goal for that already"))
    return goal


def check_name(name: str) -> str:
    if not name.strip():
        raise GoalError(_("a goal needs a name"))
    if len(name) > MAX_NAME:
        raise GoalError(_("a goal's name is at most %(most)s characters", most=MAX_NAME))
    return name.strip()


def _path_only(match: str) -> str:
    """What an admin pastes (a full URL, a path with a query) as the path goals compare."""
    if "://" in match:
        match = urlsplit(match).path or "/"
    return match.split("?")[0].split("#")[0] or "/"


@lru_cache(maxsize=1024)
def _pattern(match: str) -> re.Pattern:
    parts = re.split(r"(\*\*|\*)", match)
    regex = "".join(".*" if p == "**" else "[^/]*" if p == "*" else re.escape(p) for p in parts)
    return re.compile(regex + r"\Z")


def page_matches(match: str, path: str) -> bool:
    return _pattern(match).match(path) is not None


def split_link(href) -> SplitResult | None:
    """A clicked link's parts, when it is an absolute http(s) URL that parses."""
    if not isinstance(href, str) or not href.startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(href)
        parts.hostname  # noqa: B018  (a bad port or bracket raises only here)
    except ValueError:
        return None
    return parts


def leaves_site(host: str, page_host: str) -> bool:
    """A link to `host` from a page on `page_host` goes to another site (www. aside)."""
    return bool(host) and host.lower().removeprefix("www.") != page_host.lower().removeprefix("www.")


def step_target(site, step: dict) -> tuple[str, str] | None:
    """What a funnel step is as a summary's steps hold it: ("page", pattern) for a path, or
    ("key", its key: e:name, c:name, g:id). A page goal is its pages (so its history before it
    was defined counts too); an event goal its event's key, or its own key when it has a
    property condition. None for a goal that is gone."""
    kind, match = step["kind"], step["match"]
    if kind == "goal":
        goal = next((g for g in goals_of(site) if g.id == match), None)
        if goal is None:
            return None
        if goal.kind == "page":
            return "page", goal.match
        if goal.prop:
            return "key", goal.key
        kind, match = "event", goal.match
    if kind == "page":
        return "page", match
    return "key", ("e:" if kind == "event" else "c:") + match


def step_matcher(site, step: dict) -> Callable[[str], bool]:
    """Whether a summary's step (a path, or a key) is this funnel step."""
    target = step_target(site, step)
    if target is None:
        return lambda s: False
    kind, match = target
    if kind == "page":
        return lambda s: s.startswith("/") and page_matches(match, s)
    return lambda s: s == match


CARRIED = "f:"  # a summary step "f:<funnel id>:<step>": the visit began at that step, reached in an earlier visit
MAX_CARRY = 400  # characters of an event's carry: ~20 funnels in progress
# What a funnel can be broken down and filtered by: the dimensions a visit summary keeps.
FUNNEL_DIMENSIONS = ("channel", "source", "device", "country")


def carried_step(funnel_id: str, step: int) -> str:
    return f"{CARRIED}{funnel_id}:{step}"


class FunnelSteps(NamedTuple):
    """A funnel as the aggregator and ingestion follow visits through it: its id, a matcher
    per step, whether its visitors are noted (funnel_steps), and how (by the visit's values,
    funnel_sketch, or not), and its window across visits (0: within one visit)."""
    id: str
    matchers: tuple[Callable[[str], bool], ...]
    counts_visitors: bool = True
    window_ms: int = 0
    by_values: bool = False

    def taken_to(self, before: Iterable[str], step: str) -> int:
        """The number of the funnel step a visit reaches by taking `step` after the steps
        `before` (as its summary holds them, a carried step first), counted as reports count
        (funnels._report); 0 if none."""
        reached, last = 0, len(self.matchers)
        carried = self.window_ms and carried_step(self.id, "")  # (the hot path of folding: within a visit, no test)
        for text in before:
            if carried and text.startswith(carried):
                reached = int(text[len(carried):])
            elif reached < last and self.matchers[reached](text):
                reached += 1
        return reached + 1 if reached < last and self.matchers[reached](step) else 0


def funnel_steps(site) -> tuple[FunnelSteps, ...]:
    """The site's funnels the aggregator follows: those whose visitors are noted as visits
    take their steps (each visitor is added to a day's unique-visitor sketch of the step and
    the visit's values, funnel_sketch, so a report counts each visitor once however many
    visits they make; for a funnel made before visitors were noted by value, to the step's
    one sketch, dimension "funnel", value "<id>:<step number>"), and those across visits."""
    return tuple(FunnelSteps(f["id"], tuple(step_matcher(site, step) for step in f["steps"]),
                             bool(f.get("visitors_ms")), f.get("window_days", 0) * DAY_MS, bool(f.get("visitors_by_ms")))
                 for f in site.funnels if f.get("visitors_ms") or f.get("window_days"))


def funnel_sketch(funnel_id: str) -> str:
    """The sketch dimension of a funnel's visitors: "funnel:<id>", value "<step number>:<JSON
    array of the visit's FUNNEL_DIMENSIONS values>". Reports read the funnel's whole and merge
    what matches their filters: on the bench's busy site ~380 sketches a day of a few visitors
    each (12.5 KB) for a 4-step funnel."""
    return f"funnel:{funnel_id}"


class Progress(NamedTuple):
    step: int  # the steps reached so far (1 .. steps - 1)
    started_s: int  # when the first was (seconds since 1970): the window runs from then


class Carry:
    """A browser's progress through the funnels across visits, as its tracker keeps and sends
    it: "<funnel id>.<step>.<started_s>" per funnel in progress, space-separated. Entries of
    funnels that are gone, out of their window, or not well-formed are left out."""

    def __init__(self, funnels: Iterable[FunnelSteps], text: str | None):
        self.funnels = {f.id: f for f in funnels if f.window_ms}
        self.progress: dict[str, Progress] = {}
        for entry in (text or "").split():
            funnel_id, _, rest = entry.partition(".")
            step, _, started = rest.partition(".")
            funnel = self.funnels.get(funnel_id)
            if funnel and step.isdigit() and started.isdigit() and 0 < int(step) < len(funnel.matchers):
                self.progress[funnel_id] = Progress(int(step), int(started))

    def at(self, ts_ms: int) -> dict[str, int]:
        """The step each funnel is at for an event at ts_ms (progress past its window is lost)."""
        return {funnel_id: p.step for funnel_id, p in self.progress.items()
                if 0 <= ts_ms - p.started_s * 1000 <= self.funnels[funnel_id].window_ms}

    def advance(self, steps: Iterable[str], ts_ms: int) -> None:
        """An event at ts_ms took these summary steps: each funnel goes as far as they take it;
        a funnel completed is done with (the next first step begins it again)."""
        steps = list(steps)
        at = self.at(ts_ms)
        for funnel in self.funnels.values():
            reached, last = at.get(funnel.id, 0), len(funnel.matchers)
            started = self.progress[funnel.id].started_s if reached else ts_ms // 1000
            for text in steps:
                if reached < last and funnel.matchers[reached](text):
                    reached += 1
            if 0 < reached < last:
                self.progress[funnel.id] = Progress(reached, started)
            else:
                self.progress.pop(funnel.id, None)

    def text(self) -> str:
        """What the browser keeps: the newest entries that fit in MAX_CARRY characters."""
        entries = [f"{i}.{p.step}.{p.started_s}" for i, p in sorted(self.progress.items(), key=lambda e: -e[1].started_s)]
        while len(" ".join(entries)) > MAX_CARRY:
            entries.pop()
        return " ".join(entries)


@dataclass(frozen=True)
class SiteGoals:
    """What the aggregator needs of a site's settings to count goals, outbound links,
    downloads, not-found pages and funnels' visitors, compiled once per site and batch."""
    pages: tuple[Goal, ...] = ()
    events: dict[str, tuple[Goal, ...]] = field(default_factory=dict)  # event name -> its goals
    outbound_links: bool = False
    download_extensions: frozenset[str] = frozenset()
    funnels: tuple[FunnelSteps, ...] = ()  # the funnels the aggregator follows (funnel_steps)

    @classmethod
    def of(cls, site) -> "SiteGoals":
        goals = goals_of(site)
        events: dict[str, list[Goal]] = {}
        for goal in goals:
            if goal.kind == "event":
                events.setdefault(goal.match, []).append(goal)
        return cls(tuple(g for g in goals if g.kind == "page"), {k: tuple(v) for k, v in events.items()},
                   site.outbound_links, frozenset(e.lower().lstrip(".") for e in site.download_extensions),
                   funnel_steps(site))

    @property
    def across_visits(self) -> bool:
        return any(f.window_ms for f in self.funnels)

    def steps_of(self, event: dict) -> list[str]:
        """The steps an event adds to its visit's summary, as the aggregator adds them."""
        kind = event["type"]
        if kind == "page_view":
            return [event["path"][:MAX_STEP_TEXT]]
        if kind == "conversion":
            return [conversion_key(event["name"])[:MAX_STEP_TEXT]]
        if kind != "custom":
            return []
        return [key[:MAX_STEP_TEXT] for key, defined in self.reached_by(event)[:MAX_KEYS_PER_EVENT]
                if key.startswith(("e:", "g:"))]

    def reached_by(self, event: dict) -> list[tuple[str, bool]]:
        """The keys an event reaches, each with whether it is a defined goal (whose
        completions are counted by key; conversions and events are counted by name)."""
        kind = event["type"]
        if kind == "page_view":
            return [(g.key, True) for g in self.pages if page_matches(g.match, event["path"])]
        if kind == "conversion":
            return [(conversion_key(event["name"]), False), (ANY_CONVERSION, False)]
        if kind != "custom":
            return []
        keys = [(event_key(event["name"]), False)]
        for goal in self.events.get(event["name"], ()):
            if not goal.prop or prop_text((event.get("props") or {}).get(goal.prop)) == goal.value:
                keys.append((goal.key, True))
        return keys


def prop_text(value) -> str | None:
    """A property's value as reports show it and conditions compare it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- keeping a site's goals and what it counts (the settings page)
CURRENCY = re.compile(r"[A-Z]{3}\Z")
EXTENSION = re.compile(r"[a-z0-9]{1,10}\Z")


def add_goal(store, site, name: str, kind: str, match: str, prop: str, value: str, now_ms: int) -> Goal:
    goal = new_goal(name, kind, match, prop, value, now_ms=now_ms, existing=goals_of(site))
    site.goals = [*site.goals, goal._asdict()]
    store.update_site(site)
    return goal


def rename_goal(store, site, goal_id: str, name: str) -> Goal:
    """A new name; the key stays, and with it the goal's history."""
    goal = _goal(site, goal_id)._replace(name=check_name(name))
    site.goals = [goal._asdict() if g["id"] == goal_id else g for g in site.goals]
    store.update_site(site)
    return goal


def delete_goal(store, site, goal_id: str) -> Goal:
    """The goal leaves every report; the page views and events it counted stay in theirs."""
    goal = _goal(site, goal_id)
    site.goals = [g for g in site.goals if g["id"] != goal_id]
    store.update_site(site)
    return goal


def _goal(site, goal_id: str) -> Goal:
    for goal in goals_of(site):
        if goal.id == goal_id:
            return goal
    raise NoSuchGoal(_("no such goal (deleted meanwhile?)"))


def set_counting(store, site, currency: str, outbound_links: bool, download_extensions: str) -> None:
    """The site's currency, and whether (and for which files) clicks count as outbound links
    and downloads. Counting changes from the next events on; figures already counted stay."""
    currency = currency.strip().upper()
    if not CURRENCY.match(currency):
        raise GoalError(_("a currency is a three-letter ISO 4217 code, such as EUR, USD or KRW"))
    extensions = list(dict.fromkeys(e.lower().lstrip(".") for e in re.split(r"[\s,]+", download_extensions) if e))
    bad = [e for e in extensions if not EXTENSION.match(e.lstrip("."))]
    if bad:
        raise GoalError(_("not a file extension: %(extensions)s", extensions=", ".join(bad[:3])))
    if len(extensions) > 50:
        raise GoalError(_("at most 50 download extensions"))
    site.currency, site.outbound_links, site.download_extensions = currency, outbound_links, extensions
    store.update_site(site)
