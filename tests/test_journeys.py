"""Funnels, journeys and cohorts from a known history sent through the real pipeline, on both
backends, with exact expected figures; and the digests that keep reports fast."""
from datetime import date, datetime, timezone

import pytest

from app.analytics import cohorts, funnels, goals, journeys
from app.analytics.periods import Period, day_number
from app.analytics.summaries import DONE, Preparing, summaries, within
from app.analytics.goals import Carry, SiteGoals
from app.auth.sites import create_site
from app.ingest.enrich import Client
from app.seed import record_carried
from app.store.base import JOURNEY, Site

WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


def utc(text):
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


GOOGLE, TWITTER = "https://www.google.com/", "https://t.co/x"
# visitor -> the tracker's `first`: when it made the id, the landing page, the referrer
FIRST = {
    "A": [utc("2026-11-16T09:00:00"), "https://example.com/", GOOGLE],
    "B": [utc("2026-11-10T12:00:00"), "https://example.com/blog", TWITTER],
    "C": [utc("2026-11-16T13:00:00"), "https://example.com/", ""],
    "D": None,  # a visitor from before the tracker recorded first visits
}
# (visitor, visit, referrer, client, [(UTC time, type, path, name)]); Monday 16 and Tuesday 17 November
# in UTC (the site's zone); B's first visit a week before.
HISTORY = [
    ("B", "b0", TWITTER, IPHONE, [("2026-11-10T12:00:00", "page_view", "/blog", None)]),
    ("A", "a1", GOOGLE, WINDOWS, [                      # every step, in order
        ("2026-11-16T09:00:00", "page_view", "/", None),
        ("2026-11-16T09:00:30", "page_view", "/pricing", None),
        ("2026-11-16T09:00:31", "page_view", "/pricing", None),   # a reload: not a step
        ("2026-11-16T09:01:30", "conversion", "/pricing", "signup")]),
    ("B", "b1", "", IPHONE, [                           # steps out of order first
        ("2026-11-16T10:00:00", "page_view", "/pricing", None),
        ("2026-11-16T10:00:20", "page_view", "/", None),
        ("2026-11-16T10:00:50", "page_view", "/pricing", None)]),
    ("C", "c1", "", WINDOWS, [                          # a repeated step
        ("2026-11-16T13:00:00", "page_view", "/", None),
        ("2026-11-16T13:00:10", "page_view", "/blog", None),
        ("2026-11-16T13:00:40", "page_view", "/", None),
        ("2026-11-16T13:01:40", "page_view", "/pricing", None)]),
    ("D", "d1", "", WINDOWS, [("2026-11-16T15:00:00", "page_view", "/", None)]),
    ("A", "a2", "", WINDOWS, [                          # a later visit that skips the first step
        ("2026-11-17T08:00:00", "page_view", "/pricing", None),
        ("2026-11-17T08:00:45", "conversion", "/pricing", "signup")]),
    ("B", "b2", "", IPHONE, [                           # the last step, reached in a later visit
        ("2026-11-17T09:00:00", "conversion", "/pricing", "signup")]),
]
NOW = utc("2026-11-18T11:00:00")
TODAY = day_number(date(2026, 11, 18))
TWO_DAYS = Period("custom", date(2026, 11, 16), date(2026, 11, 17))


def send_history(store, settle, *made_first, window_days=0, by_value=True):
    """HISTORY through the real pipeline, one event a batch, each settled (as the aggregator
    would a moment later), so summaries move as visits grow. `made_first`: the steps of funnels
    made with the site, before any visit (across visits within `window_days`; not by_value: as
    a funnel made before LiveInsight noted its visitors by value)."""
    site = create_site(store, "Shop", ["example.com"], utc("2026-11-01T00:00:00"), site_id="shop")
    for i, steps in enumerate(made_first):
        funnel = funnels.new_funnel(site, f"Made first {i or ''}".strip(), steps, utc("2026-11-01T00:00:00"),
                                    window_days)
        funnels.add_funnel(store, site, funnel if by_value else funnel._replace(visitors_by_ms=0))
    last: dict[str, int] = {}  # visitor -> their browser's previous event (the tracker's li_l)
    carries: dict[str, str] = {}  # visitor -> their browser's progress in funnels across visits (li_c)
    for visitor, visit, referrer, client, events in HISTORY:
        for i, (when, kind, path, name) in enumerate(events):
            event = {"event_id": f"event-{visit}-{i:04d}", "type": kind, "timestamp": utc(when), "user_id": visitor,
                     "session_id": visit, "url": f"https://example.com{path}",
                     "referrer": referrer if i == 0 else "https://example.com/", "name": name,
                     "first": FIRST[visitor], "prev": last.get(visitor)}
            last[visitor] = utc(when)
            result = record_carried(store, site, [event], Client("81.2.69.1", client), utc(when) + 500, carries)
            assert result.accepted == 1, result
            settle()
    return site


@pytest.fixture
def history(store, settle):
    return send_history(store, settle)


@pytest.fixture
def counted(store, settle):
    """The history, sent after the site got a funnel (/pricing, then signup): the aggregator
    notes the visitors of its steps."""
    return send_history(store, settle, [("page", "/pricing"), ("conversion", "signup")])


SIGNUP_STEPS = [("page", "/"), ("page", "/pricing"), ("conversion", "signup")]


def signup_funnel(site):
    return funnels.new_funnel(site, "Signup", SIGNUP_STEPS, NOW)


def test_a_visit_summary_names_no_one_and_moves_as_the_visit_grows(store, history):
    days = summaries(store, "shop", day_number(date(2026, 11, 16)), TODAY + 1)
    monday = {s.steps: s for s in days[day_number(date(2026, 11, 16))]}
    assert sum(s.visits for s in monday.values()) == 4  # one row per visit: the rows they left are gone
    a1 = monday[(("/", 0), ("/pricing", 30), ("c:signup", 90))]
    assert (a1.channel, a1.source, a1.device, a1.visits) == ("search", "Google", "desktop", 1)
    rows = store.read_counters("shop", "visits", JOURNEY, TODAY - 10, TODAY + 1, grain="day")
    assert not any(v in row.value for row in rows if row.n for v in ("a1", "b1", '"A"', "81.2.69"))


def test_funnel_steps_in_order_within_a_visit(store, history):
    report = funnels.funnel_report(store, history, signup_funnel(history), TWO_DAYS, TODAY)
    steps = report["steps"]
    assert [s["visits"] for s in steps] == [4, 3, 1]  # a1 b1 c1 d1 / a1 b1 c1 / a1
    assert [s["continued"] for s in steps] == [3, 1, None]
    assert [s["dropped"] for s in steps] == [1, 2, None]
    assert [s["conversion_from_previous"] for s in steps] == [100.0, 75.0, 33.3]
    assert [s["conversion_from_first"] for s in steps] == [100.0, 75.0, 25.0]
    # / -> /pricing: a1 30 s, b1 30 s (from its first /), c1 100 s (its first / counts); then 60 s
    assert [s["median_seconds_from_previous"] for s in steps] == [None, 30.0, 60.0]
    assert (report["entered"], report["completed"], report["conversion_rate"]) == (4, 1, 25.0)
    assert steps[2]["label"] == "Converted: signup"


def test_a_funnel_counts_each_visitor_once_from_the_day_it_was_made(store, counted):
    site = counted
    funnel = funnels.funnels_of(site)[0]
    report = funnels.funnel_report(store, site, funnel, TWO_DAYS, TODAY)
    # /pricing: a1 a2 (A), b1 (B), c1 (C); then signup: a1, a2 (A); b2 signed up without /pricing
    assert [s["visits"] for s in report["steps"]] == [4, 2]
    assert [s["visitors"] for s in report["steps"]] == [3, 1]
    assert (report["visitor_conversion_rate"], report["visitors_since"]) == (33.3, "2026-11-01")
    # A period from before it was made: the visitors of days no visit took its first step in are known.
    quiet_before = Period("custom", date(2026, 10, 31), date(2026, 11, 17))
    assert [s["visitors"] for s in funnels.funnel_report(store, site, funnel, quiet_before, TODAY)["steps"]] == [3, 1]
    # Not when a visit of the days before took its first step: made on the 17th, the 16th's are missing.
    on_17th = utc("2026-11-17T00:00:00")
    made_on_17th = funnels.Funnel.of({**funnel.record(), "visitors_ms": on_17th, "visitors_by_ms": on_17th})
    before = funnels.funnel_report(store, site, made_on_17th, TWO_DAYS, TODAY)
    assert ([s["visitors"] for s in before["steps"]], before["visitors_since"]) == ([None, None], "2026-11-17")
    only_17th = Period("custom", date(2026, 11, 17), date(2026, 11, 17))  # a2 (A) took both steps
    assert [s["visitors"] for s in funnels.funnel_report(store, site, made_on_17th, only_17th, TODAY)["steps"]] == [1, 1]
    # One made before funnel visitors were counted (its record has neither): none, and no day.
    record = funnel.record()
    del record["visitors_ms"], record["visitors_by_ms"]
    older = funnels.funnel_report(store, site, funnels.Funnel.of(record), TWO_DAYS, TODAY)
    assert ([s["visitors"] for s in older["steps"]], older["visitors_since"]) == ([None, None], None)


def test_a_filtered_funnel_counts_the_visitors_of_the_visits_that_match(store, counted):
    site = counted
    funnel = funnels.funnels_of(site)[0]

    def figures(filters, period=TWO_DAYS, which=funnel):
        report = funnels.funnel_report(store, site, which, period, TODAY, filters)
        return [s["visits"] for s in report["steps"]], [s["visitors"] for s in report["steps"]], report["visitors_since"]
    # On a computer, /pricing: a1 a2 (A, on both days: once), c1 (C); signup: a1, a2 (A).
    assert figures({"device": "desktop"}) == ([3, 2], [2, 1], "2026-11-01")
    assert figures({"device": "mobile"}) == ([1, 0], [1, 0], "2026-11-01")  # b1; b2 signed up without /pricing
    assert figures({"source": "Google"}) == ([1, 1], [1, 1], "2026-11-01")  # a1 came from a search
    assert figures({"country": "DE"}) == ([0, 0], [0, 0], "2026-11-01")
    # Two filters: the sketches by every value, those that match (a1: a computer, from Google).
    assert figures({"device": "desktop", "source": "Google"}) == ([1, 1], [1, 1], "2026-11-01")
    assert figures({"device": "desktop", "country": "GB"}) == ([3, 2], [2, 1], "2026-11-01")  # every visit is from GB
    assert figures({"device": "mobile", "channel": "search"}) == ([0, 0], [0, 0], "2026-11-01")
    # Made on the 17th: the 16th's desktop visits reached /pricing before, so not over both days.
    made_on_17th = funnels.Funnel.of({**funnel.record(), "visitors_by_ms": utc("2026-11-17T00:00:00")})
    assert figures({"device": "desktop"}, which=made_on_17th) == ([3, 2], [None, None], "2026-11-17")
    assert figures({"device": "mobile"}, which=made_on_17th) == ([1, 0], [None, None], "2026-11-17")  # b1, the 16th
    assert figures({"country": "DE"}, which=made_on_17th) == ([0, 0], [0, 0], "2026-11-17")  # none before
    assert figures({"device": "desktop", "country": "GB"}, which=made_on_17th) == ([3, 2], [None, None], "2026-11-17")
    assert figures({"device": "mobile", "country": "DE"}, which=made_on_17th) == ([0, 0], [0, 0], "2026-11-17")
    only_17th = Period("custom", date(2026, 11, 17), date(2026, 11, 17))
    assert figures({"device": "desktop"}, only_17th, made_on_17th) == ([1, 1], [1, 1], "2026-11-17")  # a2


def test_a_funnel_made_before_visitors_were_noted_by_value_counts_them_without_filters(store, settle):
    """Its steps' visitors are in one sketch each (dimension "funnel"): none under a filter."""
    site = send_history(store, settle, [("page", "/pricing"), ("conversion", "signup")], by_value=False)
    [funnel] = funnels.funnels_of(site)
    assert funnel.visitors_by_ms == 0
    report = funnels.funnel_report(store, site, funnel, TWO_DAYS, TODAY)
    assert ([s["visitors"] for s in report["steps"]], report["visitors_since"]) == ([3, 1], "2026-11-01")
    filtered = funnels.funnel_report(store, site, funnel, TWO_DAYS, TODAY, {"device": "desktop"})
    assert ([s["visitors"] for s in filtered["steps"]], filtered["visitors_since"]) == ([None, None], None)
    assert not store.read_sketches("shop", funnels.funnel_sketch(funnel.id), 0, 10**6)  # none noted by value


def test_a_funnel_broken_down_counts_the_visitors_of_each_values_visits(store, counted):
    site = counted
    funnel = funnels.funnels_of(site)[0]

    def rows(which=funnel, filters=None, period=TWO_DAYS):
        report = funnels.funnel_report(store, site, which, period, TODAY, filters, breakdown="device")
        return {r["value"]: (r["visits"], r["visitors"]) for r in report["breakdown"]["rows"]}
    assert rows() == {"desktop": ([3, 2], [2, 1]), "mobile": ([1, 0], [1, 0])}
    for filters in ({}, {"channel": "direct"}):  # each row as the funnel filtered by its value too
        for value, (visits, visitors) in rows(filters=filters).items():
            one = funnels.funnel_report(store, site, funnel, TWO_DAYS, TODAY, {**filters, "device": value})
            assert ([s["visits"] for s in one["steps"]], [s["visitors"] for s in one["steps"]]) == (visits, visitors)
    # Under a filter, from the sketches by every value: the same here (every visit is from GB).
    assert rows(filters={"country": "GB"}) == rows()
    assert rows(filters={"channel": "search"}) == {"desktop": ([1, 1], [1, 1])}  # a1
    # With visits before the sketches began: visits only.
    made_on_17th = funnels.Funnel.of({**funnel.record(), "visitors_by_ms": utc("2026-11-17T00:00:00")})
    assert rows(made_on_17th) == {"desktop": ([3, 2], None), "mobile": ([1, 0], None)}
    only_17th = Period("custom", date(2026, 11, 17), date(2026, 11, 17))  # a2 (desktop) took both steps
    assert rows(made_on_17th, period=only_17th) == {"desktop": ([1, 1], [1, 1])}


def test_a_funnels_visitors_take_its_steps_as_its_visits_do(store, settle):
    """Steps out of order (b1) and a repeated step (c1) bring the visitor as far as the visit."""
    site = send_history(store, settle, SIGNUP_STEPS)
    report = funnels.funnel_report(store, site, funnels.funnels_of(site)[0], TWO_DAYS, TODAY)
    assert [s["visits"] for s in report["steps"]] == [s["visitors"] for s in report["steps"]] == [4, 3, 1]


def test_a_funnel_across_visits_takes_up_a_visitors_journey_where_their_last_visit_left_it(store, settle):
    """b2 signs up the day after b1 reached /pricing: within the window, the journey's last step.
    a1 completed the funnel, so a2 (no / first) begins nothing; c1 and d1 never come back."""
    site = send_history(store, settle, SIGNUP_STEPS, window_days=7)
    funnel = funnels.funnels_of(site)[0]
    report = funnels.funnel_report(store, site, funnel, TWO_DAYS, TODAY)
    steps = report["steps"]
    assert [s["visits"] for s in steps] == [s["visitors"] for s in steps] == [4, 3, 2]
    assert (report["completed"], report["conversion_rate"], report["visitor_conversion_rate"]) == (2, 50.0, 50.0)
    # b2's step has no time from b1's: only a1's 60 s within a visit counts.
    assert [s["median_seconds_from_previous"] for s in steps] == [None, 30.0, 60.0]
    assert report["funnel"] == {"id": funnel.id, "name": "Made first", "window_days": 7,
                                "across_visits_since": "2026-11-01"}
    # b2's summary says where it began, and nothing of b1 but that step.
    tuesday = summaries(store, "shop", TODAY - 1, TODAY)[TODAY - 1]
    assert {s.steps for s in tuesday} == {(("/pricing", 0), ("c:signup", 45)),
                                          ((f"f:{funnel.id}:2", 0), ("c:signup", 0))}
    # Each day on its own: the 17th holds only b2's last step.
    only_17th = Period("custom", date(2026, 11, 17), date(2026, 11, 17))
    assert [s["visits"] for s in funnels.funnel_report(store, site, funnel, only_17th, TODAY)["steps"]] == [0, 0, 1]
    # The same steps within one visit: b2 takes no step.
    within = funnels.funnel_report(store, site, signup_funnel(site), TWO_DAYS, TODAY)
    assert [s["visits"] for s in within["steps"]] == [4, 3, 1]


def test_ingestion_moves_a_carry_by_the_steps_the_aggregator_adds_to_the_summary(store, site, ingest, make_event,
                                                                                 clock):
    """SiteGoals.steps_of (pipeline.carried_on) says what a visit's summary takes, also for an
    event that reaches more goals than an event counts (5)."""
    props = {f"p{i}": "x" for i in range(goals.MAX_KEYS_PER_EVENT + 1)}
    for prop in props:
        goals.add_goal(store, site, f"Played {prop}", "event", "play", prop, "x", clock.now_ms())
    page = make_event(url="https://example.com/a")
    play = make_event(type="custom", name="play", props=props, timestamp=clock.now_ms() + 1_000)
    assert ingest(page).accepted == ingest(play, at=clock.now_ms() + 1_500).accepted == 1  # each folded in turn
    [summary] = [s for day in summaries(store, site.site_id, 0, 10**6).values() for s in day]
    taken = [step for event in ({"type": "page_view", "path": "/a"}, {"type": "custom", "name": "play", "props": props})
             for step in SiteGoals.of(site).steps_of(event)]
    assert [text for text, _ in summary.steps] == taken
    assert len(taken) == 1 + goals.MAX_KEYS_PER_EVENT  # the page, the event, and the first 4 of its 6 goals


def test_a_journey_across_visits_ends_with_its_window_or_its_last_step():
    """goals.Carry, what the browser keeps: a step begins a journey; past the window it is
    gone; the last step ends it; what is not a funnel's in progress is left out."""
    site = Site("s", "S", "k", ["example.com"], funnels=[
        {"id": "f1", "name": "F", "steps": [{"kind": "page", "match": "/a"}, {"kind": "page", "match": "/b"},
                                            {"kind": "event", "match": "buy"}], "window_days": 2},
        {"id": "f2", "name": "G", "steps": [{"kind": "page", "match": "/a"}, {"kind": "page", "match": "/c"}]}])
    goals = SiteGoals.of(site)
    day = 86_400_000
    carry = Carry(goals.funnels, None)
    carry.advance(["/a"], 10 * day)
    assert carry.text() == f"f1.1.{10 * 86_400}"  # f2 is within a visit: not carried
    later = Carry(goals.funnels, carry.text())
    assert later.at(12 * day) == {"f1": 1} and later.at(12 * day + 1) == {}  # the window: 2 days
    later.advance(["/b"], 11 * day)
    assert later.text() == f"f1.2.{10 * 86_400}"  # the window runs from the first step
    later.advance(["e:buy"], 11 * day)
    assert later.text() == ""  # done: the next /a begins again
    expired = Carry(goals.funnels, f"f1.2.{10 * 86_400}")
    expired.advance(["/b", "e:buy"], 13 * day)
    assert expired.text() == ""  # too late to go on, and no first step to begin again
    odd = Carry(goals.funnels, "f1.3.5 f2.1.5 gone.1.5 f1 .. f1.x.5 " + "f1.1.99999999999")
    assert odd.progress == {"f1": (1, 99999999999)}  # step 3 is past the last but one
    assert len(Carry(goals.funnels, " ".join(f"f1.1.{i}" for i in range(100))).text()) <= 400


def test_a_funnel_skips_the_summaries_that_never_reach_its_first_step_unread(store, history, monkeypatch):
    """Summaries without the first step's text (its quoted path, its pattern's literal start,
    its event's key) are skipped before they are parsed; the figures are those of every
    summary read."""
    from app.analytics import summaries as summaries_module
    assert funnels._needle(history, {"kind": "page", "match": "/pricing"}) == '"/pricing"'
    assert funnels._needle(history, {"kind": "page", "match": "/pri*/x"}) == '"/pri'
    assert funnels._needle(history, {"kind": "page", "match": '/café"'}) == '"/café\\""'
    assert funnels._needle(history, {"kind": "conversion", "match": "signup"}) == '"c:signup"'
    parse, parsed, needle = summaries_module._parse, [], funnels._needle
    monkeypatch.setattr(summaries_module, "_parse", lambda value: parsed.append(value) or parse(value))
    fresh = TODAY - 1  # both days not sealed: worked out at each request, nothing kept between

    def report(funnel: funnels.Funnel, needle) -> tuple[dict, int]:
        monkeypatch.setattr(funnels, "_needle", needle)
        summaries_module._keys.clear()
        parsed.clear()
        return funnels.funnel_report(store, history, funnel, TWO_DAYS, fresh), len(parsed)
    # the two days' 6 summaries: a1, b1, c1, d1, a2, b2
    for first, reaching in [(("page", "/blog"), 1), (("page", "/pri*"), 4), (("conversion", "signup"), 3),
                            (("page", "/"), 4)]:
        funnel = funnels.new_funnel(history, "F", [first, ("page", "/pricing")], NOW)
        skipping = report(funnel, needle)
        assert skipping == (report(funnel, lambda site, step: "")[0], reaching)


def test_the_page_flow_works_out_only_the_fresh_summaries_that_hold_its_page(store, history, monkeypatch):
    from app.analytics import summaries as summaries_module
    parse, parsed = summaries_module._parse, []
    monkeypatch.setattr(summaries_module, "_parse", lambda value: parsed.append(value) or parse(value))
    summaries_module._keys.clear()
    flow = journeys.next_and_previous(store, history, TWO_DAYS, TODAY - 1, "/blog")  # both days fresh
    assert len(parsed) == 1  # c1, of the days' six visits the one that viewed /blog: / /blog / /pricing
    assert (flow["views"], flow["previous"], flow["next"]) == (
        1, [{"page": "/", "views": 1, "share": 100.0}], [{"page": "/", "views": 1, "share": 100.0}])


def test_only_the_fresh_days_summaries_are_remembered_between_requests(store, history):
    """A request that makes the sealed days' digests does not fill the memory of the fresh days'
    keys with summaries it will not meet again (that pushed the fresh days' out, and the next
    requests worked them out afresh: the page flow's p95 tail)."""
    from app.analytics import summaries as summaries_module
    summaries_module._keys.clear()
    journeys.top_paths(store, history, TWO_DAYS, TODAY, 3)  # the 16th sealed (its digest made), the 17th fresh
    fresh = {row.value for row in store.read_counters("shop", "visits", JOURNEY, TODAY - 1, TODAY, grain="day")
             if row.n > 0}
    assert {value for _, value in summaries_module._keys} == fresh and len(fresh) == 2  # a2, b2


def test_funnel_breakdown_and_filter(store, history):
    funnel = signup_funnel(history)
    report = funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY, breakdown="channel")
    rows = {r["value"]: r["visits"] for r in report["breakdown"]["rows"]}
    assert rows == {"direct": [3, 2, 0], "search": [1, 1, 1]}
    assert {r["visitors"] for r in report["breakdown"]["rows"]} == {None}  # made now: none before
    phone = funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY, filters={"device": "mobile"})
    assert [s["visits"] for s in phone["steps"]] == [1, 1, 0]  # b1
    with pytest.raises(funnels.FunnelError):
        funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY, filters={"page": "/"})


@pytest.mark.parametrize("dimension,value", [("device", "desktop"), ("device", "mobile"), ("channel", "direct"),
                                             ("source", "Google"), ("country", "GB")])
def test_a_funnel_filtered_by_one_value_reads_the_unfiltered_digest(store, history, dimension, value):
    """Over sealed days and months, one filter is read from the unfiltered digest's keys of its
    value, with the same figures (times included) as a digest of its own, which the breakdown's
    path still makes."""
    funnel = signup_funnel(history)
    later, november = day_number(date(2027, 1, 10)), Period("custom", date(2026, 11, 1), date(2026, 11, 30))
    asked = ((TWO_DAYS, TODAY), (november, later))
    ones = [funnels.funnel_report(store, history, funnel, period, today, {dimension: value}) for period, today in asked]
    assert not store.read_counters("shop", DONE, funnels.funnel_digest(history, funnel, {dimension: value}),
                                   0, 10**6, "day")  # no digest of its own
    for one, (period, today) in zip(ones, asked):
        own = funnels.funnel_report(store, history, funnel, period, today, {dimension: value}, breakdown="device")
        assert one["steps"] == own["steps"] and one["entered"] > 0


def test_a_funnel_covers_days_before_it_was_defined_and_keeps_a_digest_of_sealed_days(store, history):
    funnel = signup_funnel(history)  # defined now, on the 18th
    first = funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY)
    monday = day_number(date(2026, 11, 16))
    name = funnels.funnel_digest(history, funnel, {})
    marks = {row.hour for row in store.read_counters("shop", DONE, name, monday - 1, TODAY + 1, "day")}
    assert marks == {monday}  # the 16th is sealed (over for more than a day); the 17th is not yet
    assert funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY) == first
    # Months later: November is sealed as a whole and read as one month digest.
    later = day_number(date(2027, 1, 10))
    november = Period("custom", date(2026, 11, 1), date(2026, 11, 30))
    assert funnels.funnel_report(store, history, funnel, november, later)["steps"] == first["steps"]
    month = store.read_counters("shop", DONE, name, 0, 10**6, grain="month")
    assert [row.hour for row in month] == [2026 * 12 + 10]
    assert funnels.funnel_report(store, history, funnel, november, later)["steps"] == first["steps"]


def test_top_paths(store, history):
    paths = journeys.top_paths(store, history, TWO_DAYS, TODAY, length=3)
    assert paths["visits"] == 5  # b2 viewed no page
    assert {tuple(p["pages"]): p["visits"] for p in paths["paths"]} == {
        ("/", "/pricing"): 1, ("/pricing", "/", "/pricing"): 1, ("/", "/blog", "/"): 1, ("/",): 1, ("/pricing",): 1}
    first = journeys.top_paths(store, history, TWO_DAYS, TODAY, length=1)
    assert [(p["pages"], p["visits"], p["share"]) for p in first["paths"]] == [(["/"], 3, 60.0), (["/pricing"], 2, 40.0)]


def test_next_and_previous_pages(store, history):
    home = journeys.next_and_previous(store, history, TWO_DAYS, TODAY, "/")
    assert home["views"] == 5
    assert [(p["page"], p["views"]) for p in home["next"]] == [("/pricing", 3), ("(exit)", 1), ("/blog", 1)]
    assert [(p["page"], p["views"]) for p in home["previous"]] == [("(entrance)", 3), ("/blog", 1), ("/pricing", 1)]
    assert home["next"][0]["share"] == 60.0


def test_weekly_and_monthly_cohorts(store, history):
    weekly = cohorts.cohort_table(store, history, TODAY, "week", 2)
    assert [(c["cohort"], c["visitors"]) for c in weekly["cohorts"]] == [("2026-11-09", 1), ("2026-11-16", 2)]
    assert [(r["visitors"], r["share"]) for r in weekly["cohorts"][0]["retention"]] == [(1, 100.0), (1, 100.0)]
    assert [(r["visitors"], r["share"]) for r in weekly["cohorts"][1]["retention"]] == [(2, 100.0)]
    search = cohorts.cohort_table(store, history, TODAY, "week", 2, {"channel": "search"})
    assert [c["visitors"] for c in search["cohorts"]] == [0, 1]  # A came from Google
    social = cohorts.cohort_table(store, history, TODAY, "week", 2, {"source": "Twitter"})
    assert [c["visitors"] for c in social["cohorts"]] == [1, 0]
    monthly = cohorts.cohort_table(store, history, TODAY, "month", 1)
    assert [(c["cohort"], c["visitors"]) for c in monthly["cohorts"]] == [("2026-11-01", 3)]  # A, B, C; D unknown


def test_summaries_digests_and_cohorts_go_after_13_months(store, history):
    funnel = signup_funnel(history)
    funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY)  # writes the 16th's digest
    name = funnels.funnel_digest(history, funnel, {})
    kept = [("visits", JOURNEY), (DONE, name), ("visitors", "cohort_week:channel:search")]
    assert all(store.read_counters("shop", m, d, 0, 10**6, grain="day") for m, d in kept)
    store.purge(NOW + 402 * 86_400_000)
    assert not any(store.read_counters("shop", m, d, 0, 10**6, grain="day") for m, d in kept)
    assert journeys.top_paths(store, history, TWO_DAYS, TODAY)["visits"] == 0


@pytest.mark.parametrize("backend", ["sqlite"])  # what the demo sends does not depend on the store
def test_the_demo_traffic_fills_the_retention_table(store, settle):
    """make run's demo site: its visitors carry what the tracker keeps (first visit, previous
    event, progress in funnels across visits)."""
    from app.seed import DEMO_GOALS, demo_funnels, plan_visits, seed, tracker_batches
    site = create_site(store, "Demo", ["demo.example"], NOW - 3 * 86_400_000, site_id="demo")
    for goal in DEMO_GOALS:
        goals.add_goal(store, site, *goal, NOW - 3 * 86_400_000)
    for name, steps, window_days in demo_funnels(site):
        funnels.add_funnel(store, site, funnels.new_funnel(site, name, steps, NOW - 3 * 86_400_000, window_days))
    seed(store, site, tracker_batches(plan_visits(site, 3, NOW, visits_per_day=300), NOW))
    settle()  # on AWS the stream function folds what the demo sends
    weekly = cohorts.cohort_table(store, site, TODAY, "week", 2)
    assert sum(c["visitors"] for c in weekly["cohorts"]) > 20
    # ... and their carry: returning visitors finish the funnel across visits in a later visit.
    across = funnels.funnels_of(site)[1]
    within = funnels.Funnel.of({**across.record(), "window_days": 0})
    three_days = Period("custom", date(2026, 11, 15), date(2026, 11, 18))
    counted = [[s["visits"] for s in funnels.funnel_report(store, site, f, three_days, TODAY)["steps"]]
               for f in (across, within)]
    assert counted[0][1] > counted[1][1] > 0
    assert counted[0][0] < counted[1][0]  # a journey enters once, however many of its visits see /pricing


def test_the_retention_job_makes_the_digests_no_request_has_made_yet(store, history):
    from app.retention import run_retention
    funnel = signup_funnel(history)
    funnels.add_funnel(store, history, funnel)
    done = run_retention(store, NOW)
    assert done["journey_reports"]["shop"] == 1 + 5 + 1  # the funnel, paths of 1 to 5 pages, the page flow
    monday = day_number(date(2026, 11, 16))
    marks = store.read_counters("shop", DONE, funnels.funnel_digest(history, funnel, {}), 0, 10**6, grain="day")
    assert monday in {row.hour for row in marks} and max(row.hour for row in marks) == TODAY - 2


def test_the_retention_job_reads_each_days_summaries_once_for_all_reports(store, history, monkeypatch):
    funnels.add_funnel(store, history, signup_funnel(history))
    reads, read_counters = [], store.read_counters

    def counting(site_id, metric, dimension, start, end, *args, **kwargs):
        if dimension == JOURNEY:
            reads.append((start, end))
        return read_counters(site_id, metric, dimension, start, end, *args, **kwargs)
    monkeypatch.setattr(store, "read_counters", counting)
    assert journeys.keep_digests(store, history, NOW) == 7
    assert reads and len(reads) == len(set(reads)), reads  # seven reports, one read of each month's days


def test_next_and_previous_without_a_page_says_which_to_give(store, history):
    with pytest.raises(journeys.JourneyError, match=r"say which page \(page=/path\)"):
        journeys.next_and_previous(store, history, TWO_DAYS, TODAY, "")


def test_a_report_over_months_without_digests_goes_on_where_the_last_request_stopped(store, history):
    """Within a budget (summaries.within) a report stops after each month it had to make, says
    how far it got, and the next request reads those months at once and makes one more."""
    funnel = signup_funnel(history)
    expected = funnels.funnel_report(store, history, funnel, TWO_DAYS, TODAY)["steps"]
    a_year_on = day_number(date(2027, 11, 20))
    year = Period("custom", date(2026, 11, 1), date(2027, 10, 31))  # 12 sealed months, none made yet
    progress = []
    with within(0):
        for _ in range(13):
            try:
                report = funnels.funnel_report(store, history, funnel, year, a_year_on)
                break
            except Preparing as preparing:
                progress.append((preparing.done, preparing.total))
    assert progress == [(month, 12) for month in range(1, 12)]
    assert report["steps"] == expected
    with within(0):  # every month kept: at once now
        assert funnels.funnel_report(store, history, funnel, year, a_year_on)["steps"] == expected
