"""13 months of one busy site's rollups, ≈100 million events, its visit summaries and cohort
counters, for bench section (f).

    .venv/bin/python -m bench.history            # build the cached history (or top it up) and print its size
    .venv/bin/python -m bench.history --force    # build it again from scratch
    .venv/bin/python -m bench.history --days 7 --path /tmp/h.db   # a small one, to look at

Raw events live 24 hours, so a year of history cannot be made by sending events: what a year
leaves behind is rollups. This module writes them THROUGH THE STORE, one local day at a time
(`SQLiteStore.apply(Changes(counters=..., uniques=...))`, a day per call), in the shape
`app.analytics.aggregate` gives them: the same CounterKeys (grain, metric, dimension, value),
cube values made by the real `session_cube`/`page_cube`, summaries made by the real
`_journey_value`, and visitor-id sets per day and dimension value from which the store builds its
HLL sketches. No SQL writes here.

The day is simulated from visits, not made up figure by figure, so every rollup agrees with
every other (the page cube sums to the page counters, the session cube to each dimension...):

- ~40,000 visits and ~30,000 visitors a day (a weekly and a yearly rhythm around that), the
  visitors drawn from a pool of 3,000,000 with a Zipf-like return rate: a few thousand
  regulars come almost daily, most come once or twice a year. Visitors over a week, a month,
  a year are far below the sum of daily visitors, as on a real site (see `visitor_overlap`).
- A visit belongs to one "profile": its channel, source, UTM source/medium/campaign, browser,
  OS, device, country and entry page, plus two pages it tends to go on to. 20,000 profiles
  exist; each day draws ~2,000 of them (Zipf), which bounds the day's session-cube cells to
  ~2,000 and page-cube cells to ~4,000-5,000, and lets the cube's values vary across the year.
- Page views per visit: 45 % of visits have one, the rest 1 + geometric(mean 5) (3.75 in all);
  time on page exponential (mean 30 s), a heartbeat every 30 s; 8 % of page views have a click
  (30 % of them to another site, 10 % a file download); conversions ("signup", "purchase" with
  a value) and a custom event ("download", with the file and its format as properties).
- Three goals (GOALS: /pricing, /docs/**, the download of guide.pdf) defined from the first
  day, counted as aggregate() counts them: goal visits and completions, the goal cube (a cell
  per profile and goal key, conversions and value included) and goal sketches.
  That is ~150,000 page views and ~253,000 events a day: ≈100 M events over 395 days.
- 500 pages (Zipf), 40 sources in 4 channels plus campaigns (10 UTM sources, 5 mediums,
  20 campaigns), 10 browsers, 8 OS, 3 devices, 60 countries.
- Visit summaries (dimension "journey", what funnels and journeys read) of a quarter of the
  visits, drawn at random: ~10,000 visits a day, ~300,000 a month, in ~6,000 rows a day (one-page
  visits of a profile alike share a row; visits of more pages are nearly all unique). A visit's
  steps are its pages at the time spent on the pages before it, in whole seconds, a reload not
  a step; its conversions at a random moment of its last page, its custom event ("download") at
  a random moment of a random page, followed by the event goal's step for guide.pdf; at most
  MAX_STEPS. (Only a quarter, so the summaries are those of the issue's busy site: the other
  reports count all 40,000 visits, funnels and journeys 10,000 of them.)
- Cohort counters (dimension cohort_week:... and cohort_month:..., by channel and by source of
  the first visit), counted as aggregate._count_cohort counts them, for every visitor of the day.
  A pool visitor's browser keeps an id for a lifetime between LIFETIME_DAYS (30 and 365 days,
  hashed from the visitor's number, with a hashed phase), then makes a new one. An id's cohort
  is the first day the visitor was drawn in its life, and a visitor is counted in a week or a
  month unless drawn before in that week or month with the same id: both exact, from the draws
  of earlier days (`Returns` replays the 365 days before the first day it is asked for, ~15 s,
  then keeps up day by day), so nothing is approximated but the first visit's channel and
  source: those of a profile hashed from the visitor and the id (not the profile of the visit
  that made the id). About 10,000 of a day's ~30,000 visitors are new (~60,000 a week, ~260,000
  a month); a week's cohort keeps ~9 % the week after and ~5 % three months on, a month's ~21 %
  the month after and ~1 % ten months on.
- A funnel (FUNNEL_STEPS: /, /pricing, /docs/**, the signup conversion), defined from the start,
  and the visitors of the summarised visits that reached each of its steps (the step's daily
  sketch and the visit's channel, source, device and country, as the aggregator notes them:
  goals.FunnelSteps on the summary's steps in order, goals.funnel_sketch).

Each day's content depends only on GENERATOR_VERSION and the day (cohort counters included: the
draws they depend on are replayed, not remembered from the days written), so a cached history can be
topped up day by day (`ensure`) and is the same as one generated fresh. Change anything that
changes the data: bump GENERATOR_VERSION (the cache is keyed by it).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.analytics import funnels
from app.analytics.aggregate import (
    COHORT_PERIODS, MAX_STEPS, SESSION_DIMENSIONS, _journey_dims, _journey_value, cohort_dimension, goal_cube,
    page_cube, period_start, session_cube,
)
from app.analytics.goals import (ANY_CONVERSION, FunnelSteps, conversion_key, event_key, funnel_sketch,
                                 page_matches, step_matcher)
from app.analytics.periods import day_from_number, day_number, day_start_ms, local_today
from app.auth.sites import create_site
from app.store.base import HOUR_MS, JOURNEY, Changes, CounterKey, Session, UniqueKey
from app.analytics.rollups import roll_up_site
from app.store.sqlite import SQLiteStore

GENERATOR_VERSION = 10  # 2: schema 3 (month rollups, written as the server's retention job would); 3: goals;
# 4: the visits that viewed each page (page-cube "sessions"); 5: visit summaries, cohort counters, a funnel;
# 6: the funnel's visitors per step (sketches); 7: the same funnel across visits; 8: the funnel's visitors
# per step by each visit's channel, source, device and country; 9: and by all four at once; 10: only that
SITE_ID = "history"
SITE_NAME = "Bench history (13 months)"
DOMAIN = "history.example"
TIMEZONE = "Europe/Berlin"
DAYS = 395  # 13 months of local days, today included
MAX_TOP_UP_DAYS = 31  # a cache older than this is built again rather than topped up

VISITS_PER_DAY = 40_000
VISITORS_PER_DAY = 30_000
VISITOR_POOL = 3_000_000
VISITOR_ZIPF_OFFSET = 100  # return rate of the visitor of rank i ~ 1 / (i + offset)
PAGES = 500
PROFILES = 20_000
PROFILES_PER_DAY = 2_000
ONE_PAGE_VISITS = 0.45
MORE_PAGES_MEAN = 5.0  # visits with more than one page view: 1 + geometric(mean 5)
MAX_PAGES_PER_VISIT = 60
TIME_ON_PAGE_MEAN_MS = 31_000
HEARTBEAT_MS = 30_000
CLICKS_PER_VIEW = 0.08
CONVERSIONS = (("signup", 0.010, None), ("purchase", 0.003, 49.0))  # name, share of visits, value
CUSTOMS = (("download", 0.020),)
# The site's goals (two pages, one event with a property condition), and what the custom event
# "download" carries: a file among FILES (Zipf) and its format.
GOALS = [{"id": "pricing", "name": "Saw pricing", "kind": "page", "match": "/pricing"},
         {"id": "docs", "name": "Read the docs", "kind": "page", "match": "/docs/**"},
         {"id": "guide", "name": "Got the guide", "kind": "event", "match": "download", "prop": "file",
          "value": "guide.pdf"}]
FILES = ["guide.pdf"] + [f"whitepaper-{i}.pdf" for i in range(1, 20)] + [f"release-{i}.zip" for i in range(1, 11)]
# Clicks: the share that leave for another site (OUTBOUND hosts, Zipf) or download a file.
OUTBOUND_SHARE, DOWNLOAD_SHARE = 0.30, 0.10
OUTBOUND = ["github.com", "twitter.com", "linkedin.com", "youtube.com", "stackoverflow.com", "npmjs.com",
            "pypi.org", "docs.python.org", "developer.mozilla.org", "news.ycombinator.com", "reddit.com",
            "medium.com", "dev.to", "producthunt.com", "g2.com", "wikipedia.org", "aws.amazon.com",
            "cloud.google.com", "azure.microsoft.com", "status.history.example"]
# Visit summaries (aggregate.py, dimension JOURNEY) are written for this share of the visits:
# ~10,000 a day, ~300,000 a month, the busy site the funnels and journeys are specified for.
SUMMARY_SHARE = 0.25
# Cohorts: a visitor's id lives a while, then their browser makes a new one (storage cleared, a
# new device); each pool visitor's ids live a number of days between these two (per visitor).
LIFETIME_DAYS = (30, 365)
NEVER = -(2 ** 30)  # "drawn last on": never
# The site's funnel (Site.funnels): steps the simulated visits take: the home page (the most
# viewed page, the second most common entry), the page most often viewed right after it, a page
# goal's pattern (the docs), the signup conversion. Over 30 days: ~81,000 visits enter, ~18,500
# go on to /pricing, ~1,500 to the docs, ~13 sign up after that (signups are drawn regardless of
# the pages a visit saw). A fixed id: the bench asks for it by id, and a top-up keeps it.
FUNNEL_ID, FUNNEL_NAME = "signup", "Docs to signup"
FUNNEL_STEPS = (("page", "/"), ("page", "/pricing"), ("page", "/docs/**"), ("conversion", "signup"))
# The same steps across visits within 7 days, with no visitors noted: what its reports cost (it reads
# every summary, not only those holding its first step). The simulated visits carry no progress
# (no summary begins with a carried step), so its figures are the funnel's.
ACROSS_FUNNEL_ID, ACROSS_FUNNEL_NAME = "signup-7d", "Docs to signup within a week"
# Local hour of a visit's start (Berlin: quiet nights, busy office hours and evenings).
HOURS = np.array([2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7, 5, 3], float)
WEEKDAYS = np.array([1.06, 1.08, 1.07, 1.05, 0.98, 0.84, 0.92])  # Monday first

RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- catalogs

def _zipf(n: int, a: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


def _pages() -> list[str]:
    top = ["/", "/pricing", "/features", "/signup", "/login", "/blog/", "/docs/", "/about",
           "/contact", "/customers", "/integrations", "/changelog", "/careers", "/security",
           "/docs/getting-started", "/docs/api", "/docs/tracker", "/docs/self-hosting"]
    pages = list(top)
    i = 0
    while len(pages) < PAGES:
        i += 1
        pages.append(f"/blog/post-{i}" if i % 3 else f"/docs/guide/topic-{i}")
    return pages[:PAGES]


SEARCH = ["Google", "Bing", "DuckDuckGo", "Yahoo", "Yandex", "Baidu", "Ecosia", "Brave",
          "Startpage", "Qwant", "Kagi"]
SOCIAL = ["Facebook", "Twitter", "LinkedIn", "Reddit", "Hacker News", "YouTube", "Instagram",
          "Pinterest", "TikTok", "Mastodon", "Bluesky", "Threads"]
REFERRALS = ["github.com", "stackoverflow.com", "dev.to", "medium.com", "producthunt.com",
             "alternativeto.net", "g2.com", "capterra.com", "heise.de", "t3n.de", "golem.de",
             "smashingmagazine.com", "css-tricks.com", "wikipedia.org", "lobste.rs", "indiehackers.com"]
# 40 sources: Direct, 11 search engines, 12 social networks, 16 referring sites.
SOURCES = [("direct", "Direct")] + [("search", s) for s in SEARCH] + \
          [("social", s) for s in SOCIAL] + [("referral", s) for s in REFERRALS]
UTM_SOURCES = ["newsletter", "google", "facebook", "linkedin", "twitter", "partner-a",
               "partner-b", "producthunt", "bing", "reddit"]
UTM_MEDIUMS = ["email", "cpc", "social", "referral", "display"]
UTM_CAMPAIGNS = [f"{kind}-{n}" for kind in ("spring", "summer", "autumn", "winter", "launch")
                 for n in range(1, 5)]
CAMPAIGN_SHARE = 0.15
DEVICES = [("desktop", 0.55), ("mobile", 0.40), ("tablet", 0.05)]
# OS, then browser, by device (8 OS and 10 browsers in all).
OS_BY_DEVICE = {
    "desktop": [("Windows", 0.55), ("Mac OS X", 0.30), ("Linux", 0.07), ("Ubuntu", 0.04),
                ("Chrome OS", 0.03), ("Other", 0.01)],
    "mobile": [("Android", 0.58), ("iOS", 0.41), ("Other", 0.01)],
    "tablet": [("iOS", 0.65), ("Android", 0.35)],
}
BROWSERS_BY_OS = {
    "Windows": [("Chrome", 0.62), ("Edge", 0.25), ("Firefox", 0.10), ("Opera", 0.03)],
    "Mac OS X": [("Safari", 0.50), ("Chrome", 0.40), ("Firefox", 0.08), ("Edge", 0.02)],
    "Linux": [("Firefox", 0.55), ("Chrome", 0.45)],
    "Ubuntu": [("Firefox", 0.70), ("Chrome", 0.30)],
    "Chrome OS": [("Chrome", 1.0)],
    "Other": [("Other", 1.0)],
    "Android": [("Chrome Mobile", 0.75), ("Samsung Internet", 0.15), ("Firefox Mobile", 0.05),
                ("Opera", 0.05)],
    "iOS": [("Mobile Safari", 0.85), ("Chrome Mobile iOS", 0.15)],
}
COUNTRIES = ["DE", "US", "AT", "CH", "GB", "FR", "NL", "PL", "IT", "ES", "SE", "IN", "CA", "BE",
             "DK", "CZ", "NO", "FI", "BR", "AU", "JP", "IE", "PT", "HU", "RO", "UA", "TR", "GR",
             "SK", "SI", "HR", "BG", "RS", "LT", "LV", "EE", "LU", "MX", "AR", "CL", "CO", "ZA",
             "NG", "EG", "IL", "AE", "SA", "SG", "KR", "TW", "HK", "CN", "ID", "VN", "TH", "PH",
             "MY", "NZ", "RU", "BY"]


def _pick(rng: np.random.Generator, table: list[tuple[str, float]]) -> str:
    names, weights = zip(*table)
    w = np.array(weights)
    return names[rng.choice(len(names), p=w / w.sum())]


class Catalog:
    """Pages and the 20,000 visit profiles, the same for every day of one GENERATOR_VERSION."""

    def __init__(self):
        rng = np.random.default_rng([GENERATOR_VERSION, 0])
        self.pages = _pages()
        page_p = _zipf(PAGES, 1.1)
        source_p = _zipf(len(SOURCES), 1.2)
        country_p = _zipf(len(COUNTRIES), 1.3)
        sessions, entries, more_pages = [], [], []
        for _ in range(PROFILES):
            if rng.random() < CAMPAIGN_SHARE:
                utm = (UTM_SOURCES[rng.choice(len(UTM_SOURCES), p=_zipf(len(UTM_SOURCES)))],
                       UTM_MEDIUMS[rng.integers(len(UTM_MEDIUMS))],
                       UTM_CAMPAIGNS[rng.choice(len(UTM_CAMPAIGNS), p=_zipf(len(UTM_CAMPAIGNS), 0.8))])
                channel, source = "campaign", utm[0]
            else:
                utm = ("", "", "")
                channel, source = SOURCES[rng.choice(len(SOURCES), p=source_p)]
            device = _pick(rng, DEVICES)
            os_name = _pick(rng, OS_BY_DEVICE[device])
            browser = _pick(rng, BROWSERS_BY_OS[os_name])
            entry, second, third = (int(x) for x in rng.choice(PAGES, size=3, replace=False, p=page_p))
            session = Session(site_id=SITE_ID, session_id="", user_id="", seq=0, started_ms=0,
                              last_seen_ms=0, entry_path=self.pages[entry], channel=channel,
                              source=source, utm_source=utm[0], utm_medium=utm[1], utm_campaign=utm[2],
                              browser=browser, os=os_name, device=device,
                              country=COUNTRIES[rng.choice(len(COUNTRIES), p=country_p)])
            sessions.append(session)
            entries.append(entry)
            more_pages.append((entry, second, third))
        self.sessions = sessions  # one Session per profile: what cube values are made from
        self.pages_of = np.array(more_pages, dtype=np.int64)  # [profile] -> entry, 2nd, 3rd page
        self.session_cubes = [session_cube(s) for s in sessions]
        self.values = {d: [getattr(s, d) for s in sessions] for d in SESSION_DIMENSIONS}
        self.values["entry"] = [s.entry_path for s in sessions]
        self.profile_p = _zipf(PROFILES, 1.0)
        self.profile_cdf = np.cumsum(self.profile_p)
        # dimension -> (its values, each profile's value as an index into them)
        self.dimension_index = {}
        for dimension, values in self.values.items():
            names = sorted(set(values))
            position = {v: i for i, v in enumerate(names)}
            self.dimension_index[dimension] = (names, np.array([position[v] for v in values]))
        self._page_cubes: dict[int, str] = {}

    def page_cube(self, profile: int, page: int) -> str:
        key = profile * PAGES + page
        cube = self._page_cubes.get(key)
        if cube is None:
            cube = self._page_cubes[key] = page_cube(self.sessions[profile], self.pages[page])
        return cube


_catalog: Catalog | None = None


def catalog() -> Catalog:
    global _catalog
    if _catalog is None:
        _catalog = Catalog()
    return _catalog


# --------------------------------------------------------------------------- one day

def day_scale(day: int) -> float:
    """Traffic of a day relative to the average: a weekly rhythm and a yearly season."""
    weekday = day_from_number(day).weekday()
    season = 1 + 0.12 * np.sin(2 * np.pi * (day % 365) / 365)
    return float(WEEKDAYS[weekday] / WEEKDAYS.mean() * season)


def draw_visitors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` distinct visitor numbers from the pool, the visitor of rank i with a weight
    ~ 1 / (i + offset): inverse CDF of the continuous law, so no 3M-entry table."""
    span = (VISITOR_POOL + VISITOR_ZIPF_OFFSET) / VISITOR_ZIPF_OFFSET
    seen = np.empty(0, dtype=np.int64)
    while len(seen) < count:
        u = rng.random(int((count - len(seen)) * 1.3) + 64)
        drawn = (VISITOR_ZIPF_OFFSET * span ** u - VISITOR_ZIPF_OFFSET).astype(np.int64)
        seen = np.unique(np.concatenate([seen, drawn]))
    return rng.permutation(seen)[:count]


def day_visitors(day: int) -> tuple[np.random.Generator, float, np.ndarray]:
    """The day's random stream, its traffic relative to the average and its visitors (numbers
    in the pool): how generate_day begins, also replayed alone for earlier days (Returns)."""
    rng = np.random.default_rng([GENERATOR_VERSION, 1, day])
    scale = day_scale(day) * (1 + 0.03 * rng.standard_normal())
    return rng, scale, draw_visitors(rng, int(round(VISITORS_PER_DAY * scale)))


def _groups(keys: np.ndarray, members: np.ndarray) -> dict[int, np.ndarray]:
    """Distinct members per key: {key: members...}."""
    pairs = np.unique(keys.astype(np.int64) * (int(members.max()) + 1) + members)
    k, m = np.divmod(pairs, int(members.max()) + 1)
    bounds = np.flatnonzero(np.diff(k)) + 1
    return {int(kk[0]): mm for kk, mm in zip(np.split(k, bounds), np.split(m, bounds))}


def _hash(x: np.ndarray, salt: int) -> np.ndarray:
    """A well-mixed 64-bit hash of non-negative integers (splitmix64), the same on every run."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def id_born(ids: np.ndarray, day: int) -> np.ndarray:
    """The day the current id of each pool visitor began its life, as of `day`: a visitor's ids
    follow one another, each living the visitor's lifetime (hashed from the visitor's number,
    within LIFETIME_DAYS), from a phase also hashed from it (so lives do not all end together)."""
    low, high = LIFETIME_DAYS
    life = low + (_hash(ids, 1) % np.uint64(high - low + 1)).astype(np.int64)
    phase = (_hash(ids, 2) % life.astype(np.uint64)).astype(np.int64)
    return (day + phase) // life * life - phase


class Returns:
    """Who came before, for cohorts: per pool visitor, the last day they were drawn and the
    first day their current id was drawn (the day the tracker made it: their cohort).

    Kept in the process that generates days, which asks for them in order: each day adds its
    visitors. A day asked for out of order replays the draws (`day_visitors`) of the
    LIFETIME_DAYS[1] days before it first: nothing older changes what a day counts (an id is
    younger than that), so a day's counters are the same however the history is made."""

    def __init__(self):
        self.last = np.full(VISITOR_POOL, NEVER, np.int32)
        self.first = np.zeros(VISITOR_POOL, np.int32)
        self.next_day: int | None = None

    def visit(self, day: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The day's visitors come: (the first day of each one's id, the day the id was born,
        the day they were drawn last before today, or NEVER)."""
        if self.next_day is None or not day - LIFETIME_DAYS[1] <= self.next_day <= day:
            self.last.fill(NEVER)
            self.next_day = day - LIFETIME_DAYS[1]
        while self.next_day < day:
            self._note(self.next_day, day_visitors(self.next_day)[2])
        return self._note(day, ids)

    def _note(self, day: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        born = id_born(ids, day)
        before = self.last[ids].astype(np.int64)
        first = np.where(before >= born, self.first[ids], day)  # drawn already in this id's life, or new today
        self.first[ids], self.last[ids] = first, day
        self.next_day = day + 1
        return first, born, before


_returns: Returns | None = None


def returns() -> Returns:
    global _returns
    if _returns is None:
        _returns = Returns()
    return _returns


def visit_summaries(day: int, profile: np.ndarray, views: np.ndarray, starts: np.ndarray, page: np.ndarray,
                    on_page: np.ndarray, events: list[tuple[tuple[str, ...], np.ndarray, bool]]
                    ) -> tuple[dict[str, int], dict[int, list[int]]]:
    """The summaries (aggregate.py's JOURNEY values) of SUMMARY_SHARE of the day's visits, each
    with how many visits have it; and, per step of the funnel, the visits that reached it (whose
    visitors the aggregator notes in the step's sketch).

    A visit's steps are its pages in order, each at the time spent on the pages before it
    (whole seconds from the visit's start, as the aggregator counts them), and its events:
    `events` holds (the steps an event is, the visits that sent it, whether on the last page).
    An event comes at a random moment of its page's time: a conversion on the last page (what
    the visit came for), a custom event on any. As in aggregate._take_step, a step repeating
    the one before it is no new step (a reload) and a summary keeps its first MAX_STEPS."""
    cat = catalog()
    rng = np.random.default_rng([GENERATOR_VERSION, 2, day])  # a stream of its own: the other figures stay put
    n_visits = len(views)
    chosen = np.flatnonzero(rng.random(n_visits) < SUMMARY_SHARE)
    offset = np.cumsum(on_page) - on_page  # each page view's start, from the day's first visit's...
    offset -= offset[np.repeat(starts, views)]  # ...then from its own visit's
    # Steps sort by place (2k: the visit's k-th page, 2k + 1: an event on it), then time.
    extra: dict[int, list[tuple]] = defaultdict(list)
    for order, (steps, hit, on_last) in enumerate(events):
        view = starts + views - 1 if on_last else starts + (rng.random(n_visits) * views).astype(np.int64)
        ms = offset[view] + (rng.random(n_visits) * on_page[view]).astype(np.int64)
        place = 2 * (view - starts) + 1
        for v in np.intersect1d(np.flatnonzero(hit), chosen, assume_unique=True).tolist():
            extra[v] += [(int(place[v]), int(ms[v]), (order, i), step) for i, step in enumerate(steps)]
    pages, offsets = page.tolist(), offset.tolist()
    first_view, n_views, profiles = starts.tolist(), views.tolist(), profile.tolist()
    counts: dict[str, int] = defaultdict(int)
    funnel, reached = funnel_steps(), defaultdict(list)
    for v in chosen.tolist():
        s = first_view[v]
        timeline = [(2 * k, offsets[s + k], (), cat.pages[pages[s + k]]) for k in range(n_views[v])]
        if v in extra:
            timeline = sorted(timeline + extra[v])
        steps: list[list] = []
        for _, ms, _, step in timeline:
            if steps and steps[-1][0] == step:
                continue
            if len(steps) == MAX_STEPS:
                break
            steps.append([step, ms // 1000])
        counts[_journey_value(cat.sessions[profiles[v]],
                              json.dumps(steps, separators=(",", ":"), ensure_ascii=False))] += 1
        texts: list[str] = []
        for step, _ in steps:  # as the aggregator notes them, a step at a time
            taken_to = funnel.taken_to(texts, step)
            if taken_to:
                reached[taken_to].append(v)
            texts.append(step)
    return counts, reached


@lru_cache(maxsize=1)
def funnel_steps() -> FunnelSteps:
    """The funnel as the aggregator follows visits through it (FUNNEL_STEPS has no goal step)."""
    no_goals = SimpleNamespace(goals=[])
    return FunnelSteps(FUNNEL_ID, tuple(step_matcher(no_goals, {"kind": kind, "match": match})
                                        for kind, match in FUNNEL_STEPS))


def cohort_counts(day: int, pool_ids: np.ndarray) -> dict[tuple[int, str, str], int]:
    """The day's cohort counters (aggregate._count_cohort): (bucket, dimension, cohort) -> visitors.

    Each visitor drawn today is counted in this week's and this month's bucket unless drawn
    earlier in that week or month in the same id's life (exact, from Returns), under the week
    or month of the first day their id was drawn, by the channel and by the source of that
    first visit: those of a profile hashed from the visitor and the id's birth (what the tracker
    kept of the first visit; drawn as visits' profiles are, not the profile of a visit that day)."""
    cat = catalog()
    first, born, before = returns().visit(day, pool_ids)
    u = (_hash(born * (1 << 22) + pool_ids, 3) >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
    first_profile = np.minimum(np.searchsorted(cat.profile_cdf, u, side="right"), PROFILES - 1)
    days, inverse = np.unique(first, return_inverse=True)
    counts: dict[tuple[int, str, str], int] = {}
    for period in COHORT_PERIODS:
        bucket = period_start(period, day)
        counted = before < np.maximum(born, bucket)  # not seen yet this period, with this id
        cohort = np.array([period_start(period, d) for d in days.tolist()])[inverse][counted]
        for by in ("channel", "source"):  # as _count_cohort: a table of every visitor sums the channels
            names, index = cat.dimension_index[by]
            keys, n = np.unique(cohort * len(names) + index[first_profile[counted]], return_counts=True)
            for k, visitors in zip(keys.tolist(), n.tolist()):
                start, value = divmod(k, len(names))
                counts[(bucket, cohort_dimension(period, by, names[value]), str(start))] = visitors
    return counts


def generate_day(site_id: str, day: int, tz: str = TIMEZONE) -> tuple[Changes, dict]:
    """The rollups one local day of the site leaves behind, as aggregate() shapes them, and
    what the day held (visits, page views, events...)."""
    cat = catalog()
    rng, scale, pool_ids = day_visitors(day)
    n_visits = int(round(VISITS_PER_DAY * scale))
    n_visitors = len(pool_ids)

    # Visitors and their visits: one each, the rest to visitors already drawn.
    owner = np.concatenate([np.arange(n_visitors), rng.integers(0, n_visitors, n_visits - n_visitors)])
    first_visit = np.zeros(n_visits, bool)
    first_visit[:n_visitors] = True  # a visitor's first visit of the day: the cube's visitor
    user_ids = np.array([f"v{i}" for i in pool_ids.tolist()], dtype=object)

    # Profiles of the day (~2,000 of the 20,000), then each visit's profile among them.
    day_profiles = np.empty(0, dtype=np.int64)
    while len(day_profiles) < PROFILES_PER_DAY:
        day_profiles = np.unique(np.concatenate([
            day_profiles, rng.choice(PROFILES, PROFILES_PER_DAY, p=cat.profile_p)]))
    day_profiles = day_profiles[:PROFILES_PER_DAY]  # sorted: most popular first
    profile = day_profiles[rng.choice(PROFILES_PER_DAY, n_visits, p=_zipf(PROFILES_PER_DAY))]

    # Page views of each visit.
    views = np.where(rng.random(n_visits) < ONE_PAGE_VISITS, 1,
                     1 + rng.geometric(1 / MORE_PAGES_MEAN, n_visits))
    views = np.minimum(views, MAX_PAGES_PER_VISIT)
    n_views = int(views.sum())
    visit_of = np.repeat(np.arange(n_visits), views)
    starts = np.cumsum(views) - views
    position = np.arange(n_views) - np.repeat(starts, views)
    slot = np.where(position == 0, 0, rng.choice(3, n_views, p=[0.15, 0.5, 0.35]))
    page = cat.pages_of[profile[visit_of], slot]
    last = position == views[visit_of] - 1
    spent = rng.exponential(TIME_ON_PAGE_MEAN_MS, n_views).astype(np.int64)
    heartbeats = spent // HEARTBEAT_MS
    # Time on page: to the next page view, or to the last heartbeat on the exit page.
    on_page = np.where(last, heartbeats * HEARTBEAT_MS, spent)
    clicks = rng.random(n_views) < CLICKS_PER_VIEW
    duration = np.bincount(visit_of, on_page, n_visits).astype(np.int64)
    interactions = np.bincount(visit_of, clicks, n_visits).astype(np.int64)
    conversions, reached = {}, {}  # reached: goal key -> (visits that reached it, completions a visit)
    for name, share, value in CONVERSIONS:
        hit = rng.random(n_visits) < share
        conversions[name] = (int(hit.sum()), value)
        reached[conversion_key(name)] = (hit, hit.astype(np.int64))
        interactions += hit
    customs = {}
    for name, share in CUSTOMS:
        hit = rng.random(n_visits) < share
        customs[name] = int(hit.sum())
        reached[event_key(name)] = (hit, hit.astype(np.int64))
    bounce = (views == 1) & (interactions == 0)
    exit_page = page[starts + views - 1]

    # Buckets: the day's epoch hours (23 or 25 on DST days), each visit's local start hour.
    first = day_start_ms(tz, day_from_number(day)) // HOUR_MS
    hours = (day_start_ms(tz, day_from_number(day + 1)) // HOUR_MS) - first
    hour = np.minimum(rng.choice(24, n_visits, p=HOURS / HOURS.sum()), hours - 1)

    counters: dict[CounterKey, float] = defaultdict(float)

    def add(grain: str, bucket: int, metric: str, n: float, dimension: str = "", value: str = "") -> None:
        if n:
            counters[CounterKey(site_id, bucket, metric, dimension, value, grain)] += n

    figures = {"sessions": n_visits, "pageviews": n_views, "bounces": int(bounce.sum()),
               "duration_ms": int(duration.sum())}
    # Site totals by day and by hour.
    add("day", day, "visitors", n_visitors)
    for metric, n in figures.items():
        add("day", day, metric, n)
    per_hour = {"sessions": np.bincount(hour, minlength=hours), "pageviews": np.bincount(hour, views, hours),
                "bounces": np.bincount(hour, bounce, hours), "duration_ms": np.bincount(hour, duration, hours),
                "visitors": np.bincount(np.unique(owner * 32 + hour) % 32, minlength=hours)}
    for metric, counts in per_hour.items():
        for h, n in enumerate(counts.tolist()):
            add("hour", first + h, metric, int(n))
    n_heartbeats, n_clicks = int(heartbeats.sum()), int(clicks.sum())
    events = {"page_view": n_views, "heartbeat": n_heartbeats, "click": n_clicks,
              "conversion": sum(n for n, _ in conversions.values()), "custom": sum(customs.values())}
    for kind, n in events.items():
        add("day", day, "events", n, "type", kind)
    for name, (n, value) in conversions.items():
        add("day", day, "conversions", n, "name", name)
        if value is not None:
            add("day", day, "conversion_value", n * value, "name", name)
    for name, n in customs.items():
        add("day", day, "customs", n, "name", name)

    # The session cube: one cell per profile of the day (profiles with equal values share it),
    # and each session dimension (and entry) as the cube summed by that dimension's value.
    cell = {"sessions": np.bincount(profile, minlength=PROFILES),
            "visitors": np.bincount(profile[first_visit], minlength=PROFILES),
            "pageviews": np.bincount(profile, views, PROFILES),
            "bounces": np.bincount(profile, bounce, PROFILES),
            "duration_ms": np.bincount(profile, duration, PROFILES)}
    used = np.flatnonzero(cell["sessions"])
    for metric, counts in cell.items():
        for p, n in zip(used.tolist(), counts[used].astype(np.int64).tolist()):
            add("day", day, metric, n, "session", cat.session_cubes[p])
        if metric == "visitors":  # dimension counters: sessions, page views, bounces, duration
            continue
        for dimension, (names, index) in cat.dimension_index.items():
            sums = np.bincount(index[used], counts[used], len(names)).astype(np.int64)
            for v in np.flatnonzero(sums).tolist():
                add("day", day, metric, int(sums[v]), dimension, names[v])
    for p, n in enumerate(np.bincount(exit_page, minlength=PAGES).tolist()):
        add("day", day, "sessions", n, "exit", cat.pages[p])

    # Pages and the page cube: (profile, page) pairs, then the real page_cube value.
    view_key = profile[visit_of] * PAGES + page
    keys, inverse = np.unique(view_key, return_inverse=True)
    cube_views = np.bincount(inverse, minlength=len(keys)).tolist()
    cube_time = np.bincount(inverse, on_page, len(keys)).astype(np.int64).tolist()
    # The visits that viewed each page, once a visit (the aggregator's page-cube "sessions").
    visit_pages = np.unique(visit_of.astype(np.int64) * PAGES + page)
    seen_key = profile[visit_pages // PAGES] * PAGES + visit_pages % PAGES
    cube_visits = dict(zip(*(a.tolist() for a in np.unique(seen_key, return_counts=True))))
    for k, n, ms in zip(keys.tolist(), cube_views, cube_time):
        p, pg = divmod(k, PAGES)
        path = cat.pages[pg]
        cube = cat.page_cube(p, pg)
        add("day", day, "pageviews", n, "page_cube", cube)
        add("day", day, "time_on_page_ms", ms, "page_cube", cube)
        add("day", day, "sessions", cube_visits[k], "page_cube", cube)
        add("day", day, "pageviews", n, "page", path)
        add("day", day, "time_on_page_ms", ms, "page", path)

    # Goals: the page goals' visits from the page views, the event goal from the downloads'
    # files; conversions and custom events by name (drawn above); any conversion.
    for goal in GOALS:
        if goal["kind"] == "page":
            matching = np.array([page_matches(goal["match"], path) for path in cat.pages])[page]
            completions = np.bincount(visit_of, matching, n_visits).astype(np.int64)
            reached[f"g:{goal['id']}"] = (completions > 0, completions)
    downloads = reached[event_key("download")][0]
    file_of = np.where(downloads, rng.choice(len(FILES), n_visits, p=_zipf(len(FILES))), -1)
    guide = file_of == FILES.index("guide.pdf")
    reached["g:guide"] = (guide, guide.astype(np.int64))
    for f, n in enumerate(np.bincount(file_of[downloads], minlength=len(FILES)).tolist()):
        add("day", day, "props", n, "prop", json.dumps(["download", "file", FILES[f]], separators=(",", ":")))
        add("day", day, "props", n, "prop", json.dumps(["download", "format", FILES[f][-3:]], separators=(",", ":")))
    any_conversion = np.zeros(n_visits, bool)
    for name, _, _ in CONVERSIONS:
        any_conversion |= reached[conversion_key(name)][0]
    reached[ANY_CONVERSION] = (any_conversion, any_conversion.astype(np.int64))
    purchase_value = dict((n, v) for n, _, v in CONVERSIONS)["purchase"]
    goal_ids: dict[str, list] = {}
    for key, (hit, completions) in reached.items():
        add("day", day, "goal_visits", int(hit.sum()), "goal", key)
        if key.startswith("g:"):
            add("day", day, "goal_events", int(completions.sum()), "goal", key)
        visits = np.flatnonzero(hit)
        goal_ids[key] = visits
        p_of = profile[visits]
        cell = {"sessions": np.bincount(p_of, minlength=PROFILES),
                "visitors": np.bincount(np.unique(p_of * n_visitors + owner[visits]) // n_visitors, minlength=PROFILES),
                "pageviews": np.bincount(p_of, views[visits], PROFILES),
                "bounces": np.bincount(p_of, bounce[visits], PROFILES),
                "duration_ms": np.bincount(p_of, duration[visits], PROFILES),
                "conversions": np.bincount(p_of, completions[visits], PROFILES)}
        if key in (conversion_key("purchase"), ANY_CONVERSION):
            bought = reached[conversion_key("purchase")][1][visits]
            cell["conversion_value"] = np.bincount(p_of, bought * purchase_value, PROFILES)
        for p in np.flatnonzero(cell["sessions"]).tolist():
            value = goal_cube(cat.sessions[p], key)
            for metric, counts in cell.items():
                add("day", day, metric, float(counts[p]), "goal_cube", value)

    # Visit summaries of a quarter of the visits: conversions, then the custom event (the guide's
    # download also the event goal's step: a goal with a property condition is a step of its own).
    download = reached[event_key("download")][0]
    summary_events = [((conversion_key(name),), reached[conversion_key(name)][0], True) for name, _, _ in CONVERSIONS]
    summary_events += [((event_key("download"),), download & ~guide, False),
                       ((event_key("download"), "g:guide"), guide, False)]
    summaries, funnel_visits = visit_summaries(day, profile, views, starts, page, on_page, summary_events)
    for value, n in summaries.items():
        add("day", day, "visits", n, JOURNEY, value)
    cohorts = cohort_counts(day, pool_ids)
    for (bucket, dimension, cohort), n in cohorts.items():
        add("day", bucket, "visitors", n, dimension, cohort)

    # Clicks: some leave for another site, some download a file.
    click_visits = visit_of[clicks]
    kind = rng.random(len(click_visits))
    out = kind < OUTBOUND_SHARE
    down = (kind >= OUTBOUND_SHARE) & (kind < OUTBOUND_SHARE + DOWNLOAD_SHARE)
    host_of = rng.choice(len(OUTBOUND), int(out.sum()), p=_zipf(len(OUTBOUND)))
    file_clicked = rng.choice(len(FILES), int(down.sum()), p=_zipf(len(FILES)))
    for h, n in enumerate(np.bincount(host_of, minlength=len(OUTBOUND)).tolist()):
        add("day", day, "outbound", n, "host", OUTBOUND[h])
        add("day", day, "outbound", n, "url", f"https://{OUTBOUND[h]}/")
    for f, n in enumerate(np.bincount(file_clicked, minlength=len(FILES)).tolist()):
        add("day", day, "downloads", n, "file", f"https://{DOMAIN}/files/{FILES[f]}")

    # Visitor ids per day and value: the site, each session dimension value, entry, page, goal,
    # outbound host, downloaded file.
    uniques: dict[UniqueKey, set[str]] = {UniqueKey(site_id, day, "", ""): set(user_ids.tolist())}
    for key, visits in goal_ids.items():
        if len(visits):
            uniques[UniqueKey(site_id, day, "goal", key)] = set(user_ids[owner[visits]].tolist())
    for h in np.unique(host_of).tolist():
        uniques[UniqueKey(site_id, day, "outbound", OUTBOUND[h])] = set(
            user_ids[owner[click_visits[out][host_of == h]]].tolist())
    for f in np.unique(file_clicked).tolist():
        uniques[UniqueKey(site_id, day, "download", f"https://{DOMAIN}/files/{FILES[f]}")] = set(
            user_ids[owner[click_visits[down][file_clicked == f]]].tolist())
    by_profile = {p: user_ids[members].tolist() for p, members in _groups(profile, owner).items()}
    for dimension, values in cat.values.items():
        ids: dict[str, set[str]] = defaultdict(set)
        for p, members in by_profile.items():
            ids[values[p]].update(members)
        for value, visitor_ids in ids.items():
            uniques[UniqueKey(site_id, day, dimension, value)] = visitor_ids
    for pg, members in _groups(page, owner[visit_of]).items():
        uniques[UniqueKey(site_id, day, "page", cat.pages[pg])] = set(user_ids[members].tolist())
    for step, visits in funnel_visits.items():  # the funnel's visitors by the visits' values
        by_values: dict[str, set[str]] = defaultdict(set)
        for p, visitor in zip(profile[visits].tolist(), user_ids[owner[visits]].tolist()):
            by_values[_journey_dims(cat.sessions[p])].add(visitor)
        for values, visitor_ids in by_values.items():
            uniques[UniqueKey(site_id, day, funnel_sketch(FUNNEL_ID), f"{step}:{values}")] = visitor_ids

    session_cells = sum(1 for k in counters if k.dimension == "session" and k.metric == "sessions")
    page_cells = sum(1 for k in counters if k.dimension == "page_cube" and k.metric == "pageviews")
    figures.update(summary_rows=len(summaries), summary_visits=sum(summaries.values()), cohort_rows=len(cohorts))
    figures.update(visitors=n_visitors, events=sum(events.values()), session_cube_cells=session_cells,
                   page_cube_cells=page_cells, counter_rows=len(counters), sketches=len(uniques),
                   visitor_ids=sum(len(s) for s in uniques.values()))
    return Changes(counters=dict(counters), uniques=uniques), figures


def visitor_overlap(days: int = 30, end_day: int = 20_000) -> dict:
    """Exact distinct visitors over `days` days vs the sum of daily visitors (no store)."""
    seen: set[int] = set()
    total = 0
    for day in range(end_day - days + 1, end_day + 1):
        ids = day_visitors(day)[2]
        total += len(ids)
        seen.update(ids.tolist())
    return {"days": days, "distinct": len(seen), "sum_of_daily": total}


# --------------------------------------------------------------------------- the cache

def cache_paths(results: Path = RESULTS) -> tuple[Path, Path]:
    stem = results / f"history-v{GENERATOR_VERSION}"
    return stem.with_suffix(".db"), stem.with_suffix(".json")


def _log(message: str) -> None:
    print(f"[history {time.strftime('%H:%M:%S')}] {message}", flush=True)


def write_days(store: SQLiteStore, site_id: str, days: range, log=_log) -> dict:
    """Generate `days` and apply them through the store, a day per apply(); the totals.
    A second process simulates the next days while this one applies (SQLite has one writer)."""
    totals: dict[str, float] = defaultdict(float)
    started, apply_s = time.monotonic(), 0.0
    ahead = 3  # days simulated in advance: bounded, each is ~40 MB of visitor ids
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        pending = [pool.submit(generate_day, site_id, day) for day in days[:ahead]]
        for i, day in enumerate(days):
            changes, figures = pending.pop(0).result()
            if i + ahead < len(days):
                pending.append(pool.submit(generate_day, site_id, days[i + ahead]))
            t0 = time.monotonic()
            store.apply(changes)
            apply_s += time.monotonic() - t0
            for key, n in figures.items():
                totals[key] += n
            if (i + 1) % 30 == 0 or i + 1 == len(days):
                log(f"  {i + 1}/{len(days)} days, {totals['events'] / 1e6:,.1f} M events, "
                    f"{time.monotonic() - started:,.0f} s (of which store.apply {apply_s:,.0f} s)")
    totals = {k: int(v) for k, v in totals.items()}
    totals.update(days=len(days), apply_s=round(apply_s, 1))
    return totals


def measure(path: Path, site_id: str) -> dict:
    """What the file holds, counted by SQLite itself (read-only): rows, cube cells, sketches."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counters = dict(db.execute(
            "SELECT grain, COUNT(*) FROM counters WHERE site_id = ? GROUP BY grain", (site_id,)).fetchall())
        cubes = dict(db.execute(
            "SELECT dimension, COUNT(*) FROM counters WHERE site_id = ? AND grain = 'day' "
            "AND dimension IN ('session', 'page_cube') GROUP BY dimension", (site_id,)).fetchall())
        distinct = dict(db.execute(
            "SELECT dimension, COUNT(DISTINCT value) FROM counters WHERE site_id = ? AND grain = 'day' "
            "AND metric = 'sessions' AND dimension = 'session' GROUP BY dimension", (site_id,)).fetchall())
        distinct.update(db.execute(
            "SELECT dimension, COUNT(DISTINCT value) FROM counters WHERE site_id = ? AND grain = 'day' "
            "AND metric = 'pageviews' AND dimension = 'page_cube' GROUP BY dimension", (site_id,)).fetchall())
        sketches, sketch_bytes, first, last = db.execute(
            "SELECT COUNT(*), SUM(LENGTH(sketch)), MIN(bucket), MAX(bucket) FROM sketches "
            "WHERE site_id = ? AND grain = 'day'", (site_id,)).fetchone()
        month_rows = db.execute("SELECT COUNT(*) FROM counters WHERE site_id = ? AND grain = 'month'",
                                (site_id,)).fetchone()[0]
        month_sketches = db.execute("SELECT COUNT(*) FROM sketches WHERE site_id = ? AND grain = 'month'",
                                    (site_id,)).fetchone()[0]
        summary_rows, summary_visits, summary_days = db.execute(
            "SELECT COUNT(*), SUM(n), COUNT(DISTINCT bucket) FROM counters WHERE site_id = ? AND grain = 'day' "
            "AND metric = 'visits' AND dimension = ?", (site_id, JOURNEY)).fetchone()
        cohort_rows = db.execute(  # the dimensions cohort_week:... and cohort_month:... ('`' follows '_')
            "SELECT COUNT(*) FROM counters WHERE site_id = ? AND grain = 'day' AND metric = 'visitors' "
            "AND dimension >= 'cohort_' AND dimension < 'cohort`'", (site_id,)).fetchone()[0]
    finally:
        db.close()
    return {"counter_rows": sum(counters.values()), "counter_rows_by_grain": counters,
            "month_counter_rows": month_rows, "month_sketches": month_sketches,
            "cube_rows": cubes, "distinct_cube_values": distinct,
            "sketches": sketches, "sketch_bytes": sketch_bytes, "first_day": first, "last_day": last,
            "summary_rows": summary_rows, "summary_visits": int(summary_visits or 0), "summary_days": summary_days,
            "summary_storage": summary_storage(path, site_id, last), "cohort_rows": cohort_rows,
            "db_bytes": path.stat().st_size}


def summary_storage(path: Path, site_id: str, last_day: int, days: int = 30) -> dict:
    """What a month of visit summaries takes in a store: those of the `days` days up to
    last_day, read through the store and written into an empty one a day per apply(), as the
    generator writes them; the growth of its file, per visit summarised. (The counters table
    is one b-tree, so that is all they take. The aggregator writes a summary at each step of a
    visit and deletes the row it left, which may leave pages less full than this.)"""
    source = SQLiteStore(str(path))
    try:
        rows = source.read_counters(site_id, "visits", JOURNEY, last_day - days + 1, last_day + 1, grain="day")
    finally:
        source.close()
    by_day: dict[int, dict[CounterKey, float]] = defaultdict(dict)
    for row in rows:
        by_day[row.hour][CounterKey(site_id, row.hour, "visits", JOURNEY, row.value, "day")] = row.n
    with tempfile.TemporaryDirectory(prefix="liveinsight-summaries-") as tmp:
        copy = Path(tmp) / "summaries.db"
        store = SQLiteStore(str(copy))
        store.create_schema()
        store.close()  # the last connection: SQLite checkpoints into the file and removes the WAL
        empty = copy.stat().st_size
        store = SQLiteStore(str(copy))
        for day in sorted(by_day):
            store.apply(Changes(counters=by_day[day]))
        store.close()
        grown = copy.stat().st_size - empty
    visits = int(sum(row.n for row in rows))
    return {"days": len(by_day), "rows": len(rows), "visits": visits, "bytes": grown,
            "bytes_per_visit": round(grown / visits, 1) if visits else None,
            "bytes_per_row": round(grown / len(rows), 1) if rows else None,
            "value_bytes_per_row": round(sum(len(row.value.encode()) for row in rows) / len(rows), 1) if rows else None}


def build(path: Path, now_ms: int, days: int = DAYS, log=_log) -> dict:
    """A new history file: the site, then `days` local days up to today."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(str(path))
    store.create_schema()
    today = day_number(local_today(TIMEZONE, now_ms))
    first = today - days + 1
    site = create_site(store, SITE_NAME, [DOMAIN], day_start_ms(TIMEZONE, day_from_number(first)),
                       TIMEZONE, SITE_ID)
    site.goals = [{**goal, "created_ms": site.created_ms} for goal in GOALS]  # counted from the first day
    store.update_site(site)
    funnel = funnels.new_funnel(site, FUNNEL_NAME, FUNNEL_STEPS, site.created_ms)
    funnels.add_funnel(store, site, funnel._replace(id=FUNNEL_ID))
    funnels.add_funnel(store, site, funnel._replace(id=ACROSS_FUNNEL_ID, name=ACROSS_FUNNEL_NAME, visitors_ms=0,
                                                    window_days=7, visitors_by_ms=0))
    log(f"generating {days} days ({day_from_number(first)} .. {day_from_number(today)}) of site "
        f"{SITE_ID!r} ({TIMEZONE}) through SQLiteStore.apply, one day per call")
    started = time.monotonic()
    totals = write_days(store, SITE_ID, range(first, today + 1), log)
    generate_s = round(time.monotonic() - started, 1)
    rollup = roll_up(store, now_ms, log)
    store.close()  # the last connection: SQLite checkpoints and removes the WAL
    return {"version": GENERATOR_VERSION, "site_id": SITE_ID, "timezone": TIMEZONE,
            "generated": totals, "generate_s": generate_s, "rollup": rollup, "topped_up_days": 0}


def roll_up(store: SQLiteStore, now_ms: int, log=_log) -> dict:
    """The month rollups the server's retention job would have written by now."""
    started = time.monotonic()
    months = roll_up_site(store, store.get_site(SITE_ID), now_ms)
    took = round(time.monotonic() - started, 1)
    if months:
        log(f"rolled up {len(months)} month(s) in {took} s ({took / len(months):.1f} s a month)")
    return {"months": len(months), "seconds": took}


def ensure(now_ms: int, results: Path = RESULTS, force: bool = False, log=_log) -> dict:
    """The cached history, made or topped up to today if needed: its path and figures.
    Topping up adds the missing days in one transaction, then lets the store purge what is
    past rollup retention (as the server's retention thread would)."""
    results.mkdir(parents=True, exist_ok=True)
    path, meta_path = cache_paths(results)
    for stale in results.glob("history-v*.*"):  # caches of earlier generator versions: 1.5 GB each
        if stale.stem != path.stem:
            stale.unlink()
    today = day_number(local_today(TIMEZONE, now_ms))
    meta = None
    if not force and path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = None
    if meta and meta.get("version") == GENERATOR_VERSION and 0 <= today - meta["last_day"] <= MAX_TOP_UP_DAYS:
        store = SQLiteStore(str(path))
        store.create_schema()  # a cache made by an earlier schema is upgraded in place
        # Days already in the store past what the metadata says: an interrupted top-up.
        ahead = store.read_sketches(SITE_ID, "", meta["last_day"] + 1, today + 2)
        if ahead:
            store.close()
            meta = None
        elif today > meta["last_day"]:
            missing = range(meta["last_day"] + 1, today + 1)
            log(f"topping up the cached history {path.name}: {len(missing)} new day(s)")
            started = time.monotonic()
            with store.transaction():
                totals = write_days(store, SITE_ID, missing, log)
                store.purge(now_ms)
            meta["top_up_rollup"] = roll_up(store, now_ms, log)
            store.close()
            meta["topped_up_days"] = meta.get("topped_up_days", 0) + len(missing)
            meta["top_up_s"] = round(time.monotonic() - started, 1)
            for key, n in totals.items():
                if isinstance(n, int) and key in meta["generated"] and key != "days":
                    meta["generated"][key] += n
            meta["store"] = measure(path, SITE_ID)
            meta["last_day"] = meta["store"]["last_day"]
            meta_path.write_text(json.dumps(meta, indent=2) + "\n")
            return {**meta, "path": str(path), "cached": True}
        else:
            store.close()
            return {**meta, "path": str(path), "cached": True}
    tmp = path.with_suffix(".db.tmp")
    meta = build(tmp, now_ms, log=log)
    if Path(f"{tmp}-wal").exists():
        raise RuntimeError(f"{tmp}-wal left behind: the history file is not complete")
    os.replace(tmp, path)
    meta["store"] = measure(path, SITE_ID)
    meta["last_day"] = meta["store"]["last_day"]
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return {**meta, "path": str(path), "cached": False}


def describe(meta: dict) -> list[str]:
    g, s = meta.get("generated") or {}, meta["store"]
    days = g.get("days") or 1
    lines = [
        f"site {meta['site_id']!r} ({meta.get('timezone')}), days {day_from_number(s['first_day'])} .. "
        f"{day_from_number(s['last_day'])} ({s['last_day'] - s['first_day'] + 1} days)",
        f"equivalent to {g.get('events', 0):,} events ({g.get('pageviews', 0):,} page views, "
        f"{g.get('sessions', 0):,} visits, sum of daily visitors {g.get('visitors', 0):,})",
        f"{s['counter_rows']:,} counter rows ({', '.join(f'{k} {v:,}' for k, v in s['counter_rows_by_grain'].items())}), "
        f"of which cube cells: session {s['cube_rows'].get('session', 0):,}, "
        f"page_cube {s['cube_rows'].get('page_cube', 0):,} (per day: {g.get('session_cube_cells', 0) // days:,} "
        f"and {g.get('page_cube_cells', 0) // days:,} cells; distinct over the file: "
        f"{s['distinct_cube_values'].get('session', 0):,} and {s['distinct_cube_values'].get('page_cube', 0):,})",
        f"{s['sketches']:,} HLL sketches ({s['sketch_bytes'] / 2**20:,.0f} MiB) built from "
        f"{g.get('visitor_ids', 0):,} visitor ids; SQLite file {s['db_bytes'] / 2**20:,.0f} MiB",
        f"month rollups: {s.get('month_counter_rows', 0):,} counter rows and {s.get('month_sketches', 0):,} "
        f"sketches" + (f", {meta['rollup']['months']} months rolled up in {meta['rollup']['seconds']:,.0f} s"
                       if meta.get("rollup") else ""),
    ]
    if s.get("summary_days"):
        st = s["summary_storage"]
        lines.append(
            f"visit summaries: {s['summary_rows'] // s['summary_days']:,} rows a day for "
            f"{s['summary_visits'] // s['summary_days']:,} visits ({SUMMARY_SHARE:.0%} of the visits); "
            f"{st['days']} days ({st['visits']:,} visits, {st['rows']:,} rows) take "
            f"{st['bytes'] / 2**20:,.1f} MiB in a store: {st['bytes_per_visit']:,.0f} B a visit, "
            f"{st['bytes_per_row']:,.0f} B a row (its value {st['value_bytes_per_row']:,.0f} B)")
        lines.append(f"cohort counters: {s['cohort_rows']:,} rows; funnel {FUNNEL_ID!r}: "
                     + " > ".join(f"{kind} {match}" for kind, match in FUNNEL_STEPS))
    if "generate_s" in meta:
        lines.append(f"generated in {meta['generate_s']:,.0f} s (store.apply {g.get('apply_s', 0):,.0f} s of it; "
                     "visits simulated meanwhile in a second process)"
                     + (f"; topped up {meta['topped_up_days']} day(s) since" if meta.get("topped_up_days") else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="build the cached history again")
    parser.add_argument("--days", type=int, help="a history of this many days at --path (not the cache)")
    parser.add_argument("--path", type=Path, help="with --days: where to write it")
    parser.add_argument("--overlap", action="store_true",
                        help="print distinct vs summed daily visitors over 7, 30 and 365 days")
    args = parser.parse_args(argv)
    now = time.time_ns() // 1_000_000
    if args.overlap:
        for days in (7, 30, 365):
            o = visitor_overlap(days)
            print(f"{days:>3} days: {o['distinct']:,} distinct visitors, sum of daily {o['sum_of_daily']:,} "
                  f"({o['distinct'] / o['sum_of_daily']:.0%})")
        return 0
    if args.days:
        if not args.path:
            parser.error("--days needs --path")
        meta = build(args.path, now, args.days)
        meta["store"] = measure(args.path, SITE_ID)
    else:
        meta = ensure(now, force=args.force)
    for line in describe(meta):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
