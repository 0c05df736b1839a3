"""Sessions and rollups, built through the real pipeline with an injected clock."""
import json
from collections import defaultdict

from app.analytics.aggregate import aggregate
from app.store.base import HOUR_MS, Session
from tests.conftest import CHROME_UA as CHROME, T0

MIN = 60_000


def counts(store, metric, dimension="", site_id="example", grain="day"):
    """Counter totals over all time, by value ("" for site totals), zeros left out."""
    totals = defaultdict(float)
    for row in store.read_counters(site_id, metric, dimension, 0, 10**9, grain=grain):
        totals[row.value] += row.n
    return {k: v for k, v in totals.items() if v}


def total(store, metric, grain="day"):
    return counts(store, metric, grain=grain).get("", 0)


def only_session(store, session_id="session-1"):
    return store.get_sessions("example", [session_id])[session_id]


def test_single_page_view_is_a_bounced_session(ingest, make_event, store):
    ingest(make_event(url="https://example.com/a", referrer="https://www.google.com/"))
    assert (total(store, "sessions"), total(store, "bounces"), total(store, "pageviews")) == (1, 1, 1)
    assert total(store, "visitors") == 1
    assert counts(store, "sessions", "entry") == {"/a": 1}
    assert counts(store, "sessions", "exit") == {"/a": 1}
    assert counts(store, "sessions", "source") == {"Google": 1}
    assert counts(store, "sessions", "channel") == {"search": 1}
    assert counts(store, "sessions", "browser") == {"Chrome": 1}
    assert counts(store, "sessions", "device") == {"desktop": 1}
    assert counts(store, "pageviews", "page") == {"/a": 1}


def test_second_page_view_takes_back_the_bounce_and_moves_the_exit(ingest, make_event, store, clock):
    ingest(make_event(url="https://example.com/a"))
    ingest(make_event(url="https://example.com/b", timestamp=T0 + 10_000), at=T0 + 10_000)
    assert total(store, "bounces") == 0
    assert counts(store, "sessions", "exit") == {"/b": 1}
    assert counts(store, "sessions", "entry") == {"/a": 1}
    assert total(store, "duration_ms") == 10_000
    session = only_session(store)
    assert (session.pageviews, session.entry_path, session.exit_path) == (2, "/a", "/b")


def test_click_or_conversion_is_interaction_but_heartbeat_is_not(ingest, make_event, store):
    ingest(make_event(), make_event(type="heartbeat", timestamp=T0 + 30_000), at=T0 + 30_000)
    assert total(store, "bounces") == 1
    assert total(store, "duration_ms") == 30_000  # heartbeats make one-page visits measurable
    ingest(make_event(type="click", timestamp=T0 + 40_000), at=T0 + 40_000)
    assert total(store, "bounces") == 0
    ingest(make_event(session_id="s2"), make_event(session_id="s2", type="conversion", name="buy",
                                                   value=12.5))
    assert total(store, "bounces") == 0
    assert counts(store, "conversions", "name") == {"buy": 1}
    assert counts(store, "conversion_value", "name") == {"buy": 12.5}


def test_thirty_minutes_of_silence_starts_a_new_session(ingest, make_event, store):
    ingest(make_event())
    later = T0 + 31 * MIN
    ingest(make_event(url="https://example.com/back", timestamp=later), at=later)
    assert total(store, "sessions") == 2
    assert total(store, "bounces") == 2
    assert only_session(store).seq == 1
    assert only_session(store).entry_path == "/back"
    # 29 minutes later is still the same visit.
    ingest(make_event(type="click", timestamp=later + 29 * MIN), at=later + 29 * MIN)
    assert total(store, "sessions") == 2


def test_visitor_counts_once_per_hour_across_tabs(ingest, make_event, store):
    hour_start = (T0 // HOUR_MS) * HOUR_MS
    ingest(make_event(session_id="tab-1", timestamp=hour_start + MIN), at=hour_start + MIN)
    ingest(make_event(session_id="tab-2", timestamp=hour_start + 2 * MIN), at=hour_start + 2 * MIN)
    assert total(store, "sessions") == 2
    assert total(store, "visitors") == 1
    next_hour = hour_start + HOUR_MS + MIN
    ingest(make_event(session_id="tab-2", type="heartbeat", timestamp=next_hour), at=next_hour)
    assert total(store, "visitors", grain="hour") == 2
    assert total(store, "visitors") == 1  # one visitor that day
    per_hour = {r.hour: r.n for r in store.read_counters("example", "visitors", "", 0, 10**9)}
    assert per_hour == {T0 // HOUR_MS: 1, T0 // HOUR_MS + 1: 1}


def test_custom_events_count_by_name_and_type(ingest, make_event, store):
    ingest(make_event(), make_event(type="custom", name="video play", props={"id": 3}),
           make_event(type="custom", name="video play"))
    assert counts(store, "customs", "name") == {"video play": 2}
    assert counts(store, "events", "type") == {"page_view": 1, "custom": 2}


def test_a_retried_batch_changes_no_count(ingest, make_event, store):
    batch = [make_event(), make_event(url="https://example.com/b", timestamp=T0 + 5_000)]
    first = ingest(*batch, at=T0 + 5_000)
    before = {m: counts(store, m) for m in ("sessions", "bounces", "pageviews", "visitors", "duration_ms")}
    again = ingest(*batch, at=T0 + 9_000)
    assert (first.accepted, first.duplicates, again.accepted, again.duplicates) == (2, 0, 0, 2)
    assert {m: counts(store, m) for m in before} == before


def test_batching_does_not_change_the_figures(make_event, store, site):
    """Aggregating events one batch at a time gives the same counters as all at once."""
    from app.ingest.enrich import Client, Request
    from app.ingest.pipeline import process
    raw = [make_event(session_id=f"s{i % 3}", user_id=f"u{i % 2}",
                      type=["page_view", "heartbeat", "click", "page_view"][i % 4],
                      url=f"https://example.com/p{i % 5}", timestamp=T0 - 50 * MIN + i * 4 * MIN)
           for i in range(14)]
    request = Request(site, Client("1.2.3.4", CHROME), T0)
    events = [process(e, request) for e in raw]
    all_at_once = aggregate(events, {}, {}).counters
    sessions, visitors, incremental = {}, {}, defaultdict(float)
    for i in range(0, len(events), 3):
        changes = aggregate(events[i:i + 3], sessions, visitors)
        sessions.update({s.session_id: s for s in changes.sessions})
        visitors.update({v.user_id: v for v in changes.visitors})
        for key, n in changes.counters.items():
            incremental[key] += n
    assert {k: n for k, n in incremental.items() if n} == all_at_once


def test_aggregate_does_not_mutate_its_inputs(make_event, site):
    stored = Session("example", "session-1", "visitor-1", 0, T0, T0, "/", "/", T0, 1, 0, 1,
                     "Direct", "direct", "", "Chrome", "Windows", "desktop")
    snapshot = repr(stored)
    event = {"site_id": "example", "event_id": "e" * 8, "type": "page_view", "ts": T0 + 1000,
             "session_id": "session-1", "user_id": "visitor-1", "path": "/b", "source": "Direct",
             "channel": "direct", "referrer": "", "browser": "Chrome", "os": "Windows",
             "device": "desktop", "name": "", "value": None}
    changes = aggregate([event], {"session-1": stored}, {})
    assert repr(stored) == snapshot
    assert changes.sessions[0].pageviews == 2


def test_bots_are_dropped_and_counted(ingest, make_event, store):
    result = ingest(make_event(), make_event(), ua="Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert (result.accepted, result.dropped) == (0, {"bot": 2})
    assert counts(store, "dropped", "reason", grain="hour") == {"bot": 2}
    assert store.recent_events("example", 10) == []


def test_month_rollups_know_every_daily_counter_aggregation_writes(make_event, site):
    """DAY_COUNTERS (what month rollups sum) is derived from aggregate() itself; a history with
    every kind of visit writes no daily counter outside it."""
    import random

    from app.analytics.aggregate import DAY_COUNTERS, rolled_up
    from app.ingest.enrich import Client, Request
    from app.ingest.pipeline import process
    rng = random.Random(3)
    kinds = ["page_view", "heartbeat", "click", "custom", "conversion"]
    raw = [make_event(session_id=f"s{rng.randrange(6)}", user_id=f"u{rng.randrange(3)}", type=kind,
                      name="n" if kind in ("custom", "conversion") else "", value=rng.choice([None, 5]),
                      url=f"https://example.com/p{rng.randrange(4)}?utm_source=x",
                      timestamp=T0 - rng.randrange(20 * 3600) * 1000)
           for kind in (rng.choice(kinds) for _ in range(300))]
    request = Request(site, Client("81.2.69.1", CHROME), T0)
    written = {(k.metric, k.dimension) for k in aggregate([process(e, request) for e in raw], {}, {}).counters
               if k.grain == "day"}
    assert {c for c in written if rolled_up(c[1])} <= set(DAY_COUNTERS) and len(written) > 40
    assert ("visits", "journey") in written and ("visits", "journey") not in DAY_COUNTERS  # summaries: read by day


def page_visits(store):
    """The visits that viewed each page, from the page cube's cells (page, session dimensions)."""
    visits = defaultdict(float)
    for cell, n in counts(store, "sessions", "page_cube").items():
        visits[json.loads(cell)[0]] += n
    return dict(visits)


def test_a_visit_counts_once_for_each_page_it_viewed(ingest, make_event, store):
    # Three batches: the visit's memory of its pages is kept by the store between them.
    ingest(make_event(url="https://example.com/a"))
    ingest(make_event(url="https://example.com/b", timestamp=T0 + MIN), at=T0 + MIN)
    ingest(make_event(url="https://example.com/a", timestamp=T0 + 2 * MIN), at=T0 + 2 * MIN)
    ingest(make_event(session_id="s2", user_id="visitor-2", url="https://example.com/a"))
    assert page_visits(store) == {"/a": 2, "/b": 1}
    assert counts(store, "pageviews", "page") == {"/a": 3, "/b": 1}


def test_a_visit_over_midnight_counts_again_for_a_page_on_the_new_day(ingest, make_event, store):
    before_midnight = T0 - T0 % (24 * HOUR_MS) + 24 * HOUR_MS - MIN  # 23:59 UTC, the site's zone
    ingest(make_event(url="https://example.com/a", timestamp=before_midnight), at=before_midnight)
    ingest(make_event(url="https://example.com/a", timestamp=before_midnight + 2 * MIN), at=before_midnight + 2 * MIN)
    rows = store.read_counters("example", "sessions", "page_cube", 0, 10**9, grain="day")
    assert sorted((r.hour, r.n) for r in rows) == [(before_midnight // (24 * HOUR_MS), 1),
                                                    (before_midnight // (24 * HOUR_MS) + 1, 1)]


def test_a_visit_remembers_a_bounded_number_of_pages_and_never_more_visits_than_views(make_event, site):
    from app.analytics.aggregate import MAX_PAGES
    from app.ingest.enrich import Client, Request
    from app.ingest.pipeline import process
    request = Request(site, Client("1.2.3.4", CHROME), T0)
    paths = [f"/p{i}" for i in range(MAX_PAGES + 1)] + ["/p0", f"/p{MAX_PAGES}"]
    events = [process(make_event(url=f"https://example.com{p}", timestamp=T0 - 100_000 + i * 1000), request)
              for i, p in enumerate(paths)]
    changes = aggregate(events, {}, {})
    visits = {json.loads(k.value)[0]: n for k, n in changes.counters.items()
              if (k.metric, k.dimension) == ("sessions", "page_cube")}
    assert visits["/p0"] == 1  # remembered: counted once
    assert visits[f"/p{MAX_PAGES}"] == 2  # past the bound: each view counts, as many as its views
    assert len(changes.sessions[0].pages.split()) == MAX_PAGES


def test_a_visit_summary_keeps_its_steps_in_order_whatever_their_text(ingest, make_event, store, clock):
    """Steps are edited as JSON text: names with quotes and brackets, a repeated step, the
    cap of MAX_STEPS."""
    from app.analytics.aggregate import MAX_STEPS
    from app.analytics.summaries import summaries
    odd = 'say ["hi"], \\["'
    events = [make_event(type="page_view", url="https://example.com/a", timestamp=T0 - 50_000),
              make_event(type="custom", name=odd, timestamp=T0 - 40_000),
              make_event(type="custom", name=odd, timestamp=T0 - 39_000),  # the same again: no new step
              make_event(type="page_view", url="https://example.com/a", timestamp=T0 - 30_000)]
    events += [make_event(type="page_view", url=f"https://example.com/p{i}", timestamp=T0 - 29_000 + i * 1000)
               for i in range(MAX_STEPS)]
    for event in events:
        ingest(event)
    (day,) = summaries(store, "example", 0, 10**6).values()
    (summary,) = day
    assert summary.steps[:4] == (("/a", 0), (f"e:{odd}", 10), ("/a", 20), ("/p0", 21))
    assert len(summary.steps) == MAX_STEPS and summary.visits == 1
