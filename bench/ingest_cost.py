"""The write path's cost per event, in instructions: pipeline, append, fold, on SQLite.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python -m bench.ingest_cost 2000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python -m bench.ingest_cost 6000

Callgrind counts the instructions the process runs ("Collected" on its last line), which
unlike time does not drift with the machine; the difference between the two runs divided by
the difference in events is the cost of one event, without Python's start and the imports.
The events are a fixed, seeded mix of what trackers send (page views, heartbeats, clicks on
internal, outbound and file links, custom events with properties, conversions with a value;
visits from search engines, social networks, webmail, other sites, tagged links and ad clicks),
made here so that two versions of the app fold the very same events (`--app-root` runs
another checkout's app). With `--goals` the site has three goals; with `--funnels`, three
funnels too; with `--across`, the same three funnels across visits within 7 days, each batch
sending what the last answer about its visitor carried (the tracker's li_c).
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

DAY_MS = 86_400_000
NOW_MS = 1_795_000_000_000
CLIENTS = [("203.0.113.9", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/130.0.0.0 Safari/537.36"),
           ("198.51.100.7", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")]
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs/install", "/signup"]
LINKS = ["https://example.com/docs", "https://github.com/x", "https://example.com/files/guide.pdf"]
# Where visits come from: search engines, social networks, webmail, an AI assistant, a tagged
# link, an ad click, a long tail of other sites and nothing at all (a visit's first page only).
REFERRERS = ["https://www.google.com/", "https://www.google.co.kr/", "https://search.naver.com/search.naver?query=x",
             "https://m.search.daum.net/search?q=x", "https://t.co/abc", "https://l.facebook.com/",
             "https://m.blog.naver.com/someone/1", "https://mail.google.com/", "https://chatgpt.com/",
             "https://news.ycombinator.com/", "", "", ""]
LANDINGS = ["", "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=may", "?gclid=Cj0KCQ"]
GOALS = [{"id": "pricing", "name": "Pricing", "kind": "page", "match": "/pricing", "created_ms": 0},
         {"id": "blog", "name": "Blog", "kind": "event", "match": "play", "prop": "", "value": "", "created_ms": 0},
         {"id": "pro", "name": "Pro", "kind": "event", "match": "signup", "prop": "plan", "value": "pro",
          "created_ms": 0}]
# With --funnels, besides the goals: three funnels whose visitors the fold notes, also by value (a page, a goal,
# a pattern, an event step; the visits below reach their steps).
FUNNELS = [{"id": f"f{i}", "name": f"Funnel {i}", "steps": steps, "created_ms": 0, "visitors_ms": 1,
            "visitors_by_ms": 1}
           for i, steps in enumerate([
               [{"kind": "page", "match": "/"}, {"kind": "goal", "match": "pricing"}, {"kind": "page", "match": "/signup"}],
               [{"kind": "page", "match": "/blog/*"}, {"kind": "event", "match": "play"}],
               [{"kind": "page", "match": "/docs/**"}, {"kind": "page", "match": "/pricing"},
                {"kind": "goal", "match": "pro"}, {"kind": "conversion", "match": "Purchase"}]])]
ACROSS = [{**funnel, "window_days": 7} for funnel in FUNNELS]


def visits(count: int, seed: int = 7) -> list[list[dict]]:
    """`count` events in visits of about ten events each, all in the last hour before NOW_MS."""
    rng, out, n = random.Random(seed), [], 0
    last: dict[str, int] = {}  # a visitor's previous event, as the tracker's li_l keeps it
    while n < count:
        v, ts, events = len(out), NOW_MS - 3_600_000 + rng.randrange(3_000_000), []
        referrer = rng.choice(REFERRERS) if v % 4 else f"https://blog{v % 300}.example.net/post/{v}"
        landing = rng.choice(LANDINGS)
        for i in range(10):
            kind = rng.choices(["page_view", "heartbeat", "click", "custom", "conversion"], [30, 45, 12, 8, 5])[0]
            event = {"event_id": f"event-{v:06d}-{i:02d}", "type": kind, "timestamp": ts + i * 20_000, "user_id": f"u{v % 700}",
                     "session_id": f"s{v}", "url": f"https://example.com{rng.choice(PAGES)}{landing if i == 0 else ''}",
                     "referrer": referrer if i == 0 else "https://example.com/",
                     # what the tracker knows of the visitor's first visit (an app before cohorts ignores it)
                     "first": [NOW_MS - 30 * DAY_MS + v % 700 * 60_000, "https://example.com/", "https://www.google.com/"]}
            event["prev"] = last.get(event["user_id"])
            last[event["user_id"]] = event["timestamp"]
            if kind == "click":
                event["props"] = {"text": "a link", "href": rng.choice(LINKS)}
            elif kind == "custom":
                event.update(name=rng.choice(["play", "signup"]), props={"plan": rng.choice(["free", "pro"])})
            elif kind == "conversion":
                event.update(name="Purchase", value=rng.choice([9, 29]))
            events.append(event)
        out.append(events)
        n += len(events)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", type=int)
    parser.add_argument("--app-root", type=Path, help="a checkout whose app to run (default: this one)")
    parser.add_argument("--goals", action="store_true", help="the site has three goals")
    parser.add_argument("--funnels", action="store_true", help="the site has three goals and three funnels")
    parser.add_argument("--across", action="store_true", help="the same three funnels, across visits")
    args = parser.parse_args()
    if args.app_root:
        sys.path.insert(0, str(args.app_root.resolve()))
    from app.aggregation import drain
    from app.auth.sites import create_site
    from app.ingest.enrich import Client
    from app.ingest.pipeline import record_batch
    from app.store.sqlite import SQLiteStore

    store = SQLiteStore(str(Path(tempfile.mkdtemp()) / "cost.db"))
    store.create_schema()
    site = create_site(store, "Cost", ["example.com"], NOW_MS - DAY_MS, site_id="cost")
    if args.goals or args.funnels or args.across:
        site.goals = GOALS
        site.funnels = ACROSS if args.across else FUNNELS if args.funnels else []
        store.update_site(site)
    started, sent = time.process_time(), 0
    carries: dict[str, str] = {}  # visitor -> what their tracker keeps of the answers (--across)
    for i, batch in enumerate(visits(args.events)):
        ip, agent = CLIENTS[i % 2]
        user_id = batch[0]["user_id"]
        if args.across:
            for event in batch:
                event["carry"] = carries.get(user_id)
        result = record_batch(store, site, batch, Client(ip, agent), NOW_MS)
        sent += result.accepted
        if getattr(result, "carry", None) is not None:  # (an app before funnels across visits has none)
            carries[user_id] = result.carry
        if i % 50 == 49:
            drain(store)
    drain(store)
    print(f"{sent} events recorded and folded in {time.process_time() - started:.2f} s CPU", file=sys.stderr)


if __name__ == "__main__":
    main()
