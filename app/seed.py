"""Realistic demo traffic, sent through the real ingestion pipeline.

Visits follow a daily curve, arrive from a mix of sources and devices, read a few pages with
heartbeats while they stay, sometimes click and sometimes convert. Each visit's events are
recorded in tracker-sized batches at the moment they would have arrived.
"""
from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Iterator

from app.aggregation import drain
from app.analytics.goals import goals_of
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.store.base import DAY_MS, Site, Store

PAGES = ["/", "/pricing", "/blog", "/blog/launch", "/blog/how-we-measure", "/docs", "/docs/install",
         "/about", "/contact", "/signup", "/old-pricing"]
PAGE_WEIGHTS = [30, 14, 10, 6, 5, 9, 7, 4, 3, 6, 1]
# What visitors click: a page of the site, another site, a file.
LINKS = [("Learn more", "https://{host}/docs"), ("GitHub", "https://github.com/liveinsight/liveinsight"),
         ("Download the guide", "https://{host}/files/guide.pdf")]
# The demo site's goals (make run): a page goal and an event goal with a property condition.
DEMO_GOALS = [("Read the docs", "page", "/docs/**", "", ""), ("Pro sign-up", "event", "Signed up", "plan", "pro")]


def demo_funnels(site: Site) -> list[tuple[str, list[tuple[str, str]], int]]:
    """The demo site's funnels (make run): (name, steps, window across visits in days). The
    first has every kind of step but an event (a page, DEMO_GOALS' docs, a page, a conversion)
    within a visit; the second an event, across a week of visits."""
    docs = next(g for g in goals_of(site) if g.kind == "page")
    return [("From the home page to a purchase", [("page", "/"), ("goal", docs.id), ("page", "/pricing"),
                                                  ("conversion", "Purchase")], 0),
            ("Pricing to sign-up, within a week", [("page", "/pricing"), ("event", "Signed up")], 7)]


REFERRERS = [("", 40), ("https://www.google.com/", 22), ("https://search.naver.com/search.naver?query=x", 6),
             ("https://duckduckgo.com/", 4), ("https://news.ycombinator.com/item?id=1", 5), ("https://t.co/abc", 4),
             ("https://www.reddit.com/r/analytics/", 3), ("https://m.blog.naver.com/someone/1", 2),
             ("https://blog.example.org/post", 4), ("https://www.linkedin.com/feed/", 3), ("https://chatgpt.com/", 3),
             ("https://mail.google.com/", 2), ("campaign", 5), ("ad", 3)]
# The landing pages' parameters of a tagged link and of a click on a search ad.
LANDING_QUERIES = {"campaign": "?utm_source=newsletter&utm_medium=email&utm_campaign=autumn", "ad": "?gclid=demo"}
USER_AGENTS = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", 35),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", 15),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0", 10),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", 20),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36", 15),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", 5),
]
BOT_USER_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEARTBEAT_MS = 30_000
FLUSH_MS = 5_000


@dataclass
class Visit:
    start_ms: int
    events: list[dict]
    client: Client


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _hourly_rate(hour_of_day: int) -> float:
    """Visits per hour: quiet at night, a peak in the afternoon."""
    return 0.25 + 0.75 * math.exp(-((hour_of_day - 15) ** 2) / 18)


def _visit(rng: random.Random, site: Site, start_ms: int, user_id: str) -> Visit:
    host = site.domains[0] if site.domains else "example.com"
    referrer = _pick(rng, REFERRERS)
    query = LANDING_QUERIES.get(referrer, "")
    if query:
        referrer = ""
    session_id = uuid.UUID(int=rng.getrandbits(128)).hex
    ts, events = start_ms, []

    def event(kind: str, path: str, **extra) -> None:
        events.append({"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "type": kind,
                       "timestamp": ts, "user_id": user_id, "session_id": session_id,
                       "url": f"https://{host}{path}{query if not events else ''}",
                       "referrer": referrer if not events else f"https://{host}/", **extra})

    path = rng.choices(PAGES, PAGE_WEIGHTS)[0]
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6])):
        event("page_view", path)
        dwell = int(rng.expovariate(1 / 60_000)) + 3_000
        for _ in range(min(dwell // HEARTBEAT_MS, 9)):  # heartbeats while the page is read
            ts += HEARTBEAT_MS
            event("heartbeat", path)
        ts += dwell % HEARTBEAT_MS
        if rng.random() < 0.25:
            text, href = rng.choice(LINKS)
            event("click", path, props={"text": text, "href": href.format(host=host)})
        if path == "/" and rng.random() < 0.2:
            event("custom", path, name="Played video", props={"video": rng.choice(["intro", "tour"])})
        if path == "/signup" and rng.random() < 0.5:
            event("custom", path, name="Signed up", props={"plan": rng.choice(["free", "free", "pro"])})
        if path == "/pricing" and rng.random() < 0.15:
            event("conversion", path, name="Purchase", value=rng.choice([9, 29, 99]))
        if path == "/old-pricing":
            event("custom", path, name="404")
        path = rng.choices(PAGES, PAGE_WEIGHTS)[0]
        ts += rng.randint(1_000, 5_000)
    ip = f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return Visit(start_ms, events, Client(ip=ip, user_agent=_pick(rng, USER_AGENTS)))


def plan_visits(site: Site, days: float, end_ms: int, visits_per_day: int = 300,
                seed: int = 7) -> list[Visit]:
    """Visits over `days` days ending at end_ms, in start order, with returning visitors."""
    rng = random.Random(seed)
    visits, known_users = [], []
    first_visits: dict[str, list] = {}  # what each visitor's tracker keeps: li_f
    last_events: dict[str, int] = {}  # and li_l
    start_ms = end_ms - int(days * DAY_MS)
    hour_ms = 3_600_000
    peak_per_hour = visits_per_day / sum(_hourly_rate(h) for h in range(24))
    for hour_start in range(start_ms, end_ms, hour_ms):
        hour_of_day = (hour_start // hour_ms) % 24
        for _ in range(_poisson(rng, peak_per_hour * _hourly_rate(hour_of_day))):
            at = hour_start + rng.randrange(hour_ms)
            if at >= end_ms - 60_000:
                continue
            returning = known_users and rng.random() < 0.3
            user_id = rng.choice(known_users) if returning else uuid.UUID(int=rng.getrandbits(128)).hex
            known_users.append(user_id)
            visits.append(_remembered(_visit(rng, site, at, user_id), first_visits, last_events))
    # A few bots, which ingestion must drop and count.
    for _ in range(max(1, int(days * 5))):
        bot = _visit(rng, site, start_ms + rng.randrange(max(1, end_ms - start_ms - 60_000)), "bot")
        visits.append(Visit(bot.start_ms, bot.events[:1], Client("66.249.66.1", BOT_USER_AGENT)))
    return sorted(visits, key=lambda v: v.start_ms)


def _remembered(visit: Visit, first_visits: dict[str, list], last_events: dict[str, int]) -> Visit:
    """What the tracker adds to each event from the visitor's storage: their first visit
    (recorded with their id, at their first visit of the demo) and their previous event."""
    for event in visit.events:
        user_id = event["user_id"]
        first = first_visits.setdefault(user_id, [event["timestamp"], event["url"], event["referrer"]])
        event.update(first=first, prev=last_events.get(user_id))
        last_events[user_id] = event["timestamp"]
    return visit


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def tracker_batches(visits: list[Visit], end_ms: int) -> Iterator[tuple[int, Client, list[dict]]]:
    """(arrival time, client, events) per flush, in arrival order, as trackers would send."""
    batches = []
    for visit in visits:
        chunk: list[dict] = []
        for event in visit.events:
            if chunk and event["timestamp"] - chunk[0]["timestamp"] >= FLUSH_MS:
                batches.append((chunk[-1]["timestamp"] + 200, visit.client, chunk))
                chunk = []
            chunk.append(event)
        batches.append((chunk[-1]["timestamp"] + 200, visit.client, chunk))
    batches.sort(key=lambda b: b[0])
    return iter([b for b in batches if b[0] <= end_ms])


def record_carried(store: Store, site: Site, events: list[dict], client: Client, arrival_ms: int,
                   carries: dict[str, str]):
    """record_batch, with what each visitor's tracker keeps of the answers (li_c, in `carries`:
    user id -> carry) sent as the events' carry, as the tracker would (funnels across visits)."""
    user_id = events[0]["user_id"]
    for event in events:
        event["carry"] = carries.get(user_id)
    result = record_batch(store, site, events, client, arrival_ms)
    if result.carry is not None:
        carries[user_id] = result.carry
    return result


def seed(store: Store, site: Site, batches, on_batch=lambda: None) -> dict:
    """Record planned batches, each at its own arrival time, then fold them if no server's
    aggregator is running to do it (on AWS the stream function does). Returns the totals."""
    totals = {"accepted": 0, "duplicates": 0, "dropped": 0, "rejected": 0}
    carries: dict[str, str] = {}
    for arrival_ms, client, events in batches:
        result = record_carried(store, site, events, client, arrival_ms, carries)
        totals["accepted"] += result.accepted
        totals["duplicates"] += result.duplicates
        totals["dropped"] += sum(result.dropped.values())
        totals["rejected"] += len(result.rejected)
        on_batch()
    if store.reads_own_log:
        drain(store)
    return totals
