"""Month rollups: reports read from them say exactly what reports read from the days say."""
import copy
import random
from datetime import date, datetime, timedelta, timezone

import pytest

from app.analytics import funnels, rollups, stats
from app.analytics.aggregate import DAY_COUNTERS, SKETCH_DIMENSIONS
from app.analytics.periods import local_day_number, month_number, parse_period
from app.auth.sites import create_site
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from tests.conftest import T0
from tests.history import ANDROID, GB, IE, IPHONE, US, WINDOWS, utc

CLIENTS = [Client(GB, WINDOWS), Client(US, IPHONE), Client(IE, ANDROID)]
PAGES = ["/", "/pricing", "/blog", "/docs", "/signup"]
REFERRERS = ["", "https://www.google.com/", "https://t.co/x", "https://news.example/a"]


LINKS = ["https://example.com/about", "https://github.com/example", "https://example.com/guide.pdf"]


def visit_events(rng, n, start_ms):
    """One visit: a landing page, maybe more pages, heartbeats, a click, a conversion."""
    landing = rng.choice(PAGES) + ("?utm_source=mail&utm_campaign=fall" if rng.random() < 0.2 else "")
    steps = [("page_view", landing, {})]
    for _ in range(rng.choice([0, 0, 1, 2])):
        steps += [("heartbeat", steps[-1][1], {}), ("page_view", rng.choice(PAGES), {})]
    if rng.random() < 0.3:
        steps.append(("click", steps[-1][1], {"props": {"href": rng.choice(LINKS)}}))
    if rng.random() < 0.3:
        steps.append(("custom", steps[-1][1], {"name": "play", "props": {"video": rng.choice(["intro", "demo"])}}))
    if rng.random() < 0.15:
        steps.append(("conversion", steps[-1][1], {"name": "signup", "value": 9}))
    return [{"event_id": f"event-{n:04d}-{i:02d}", "type": kind, "timestamp": start_ms + 20_000 * i,
             "url": f"https://example.com{path}", **extra} for i, (kind, path, extra) in enumerate(steps)]


@pytest.fixture
def store(store, backend):
    """On DynamoDB, one write shard: a roll-up reads every daily counter and sketch of a month,
    a Query a shard each, and moto is slow with Queries (shards are merged alike whatever their
    number: test_dynamodb_store.py checks that)."""
    if backend == "dynamodb":
        store.shards = 1
    return store


@pytest.fixture
def months(store, backend, settle):
    """40 visits of 12 visitors from 2026-08-20 to 2026-11-17, in Paris's time zone.

    Ingesting and aggregating them takes moto 25 to 60 s on a 2-core machine (each counter
    update of each transaction is slow there), so on DynamoDB the history is built through the pipeline once and each
    later test starts from a copy of the tables as they were then."""
    if backend == "dynamodb" and _dynamodb_history:
        _moto_backend().tables = copy.deepcopy(_dynamodb_history["tables"])
        return store.get_site("months")
    site = _ingest_months(store, settle)
    if backend == "dynamodb":
        _dynamodb_history["tables"] = copy.deepcopy(_moto_backend().tables)
    return site


_dynamodb_history: dict = {}


def _moto_backend():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def _ingest_months(store, settle):
    site = create_site(store, "Months", ["example.com"], utc("2026-08-20T00:00:00"),
                       timezone="Europe/Paris", site_id="months")
    site.goals = [{"id": "pricing", "name": "Pricing", "kind": "page", "match": "/pricing"},
                  {"id": "demo", "name": "Demo played", "kind": "event", "match": "play", "prop": "video",
                   "value": "demo"}]
    # The same funnel twice: one whose visitors are noted by value, one made before they were.
    buy = {"id": "buy", "name": "Buy", "steps": [{"kind": "page", "match": "/"}, {"kind": "goal", "match": "pricing"}],
           "created_ms": utc("2026-08-20T00:00:00"), "visitors_ms": utc("2026-08-20T00:00:00"),
           "visitors_by_ms": utc("2026-08-20T00:00:00")}
    site.funnels = [buy, {**buy, "id": "older", "visitors_by_ms": 0}]
    store.update_site(site)
    rng = random.Random(7)
    start, span_s = datetime(2026, 8, 20, tzinfo=timezone.utc), 89 * 86_400
    for n in range(40):
        when = int((start + timedelta(seconds=rng.randrange(span_s))).timestamp() * 1000)
        visitor, client = rng.randrange(12), rng.choice(CLIENTS)
        events = visit_events(rng, n, when)
        for event in events:
            event.update(user_id=f"visitor-{visitor}", session_id=f"visit-{n}",
                         referrer=rng.choice(REFERRERS) if event is events[0] else "https://example.com/")
        result = record_batch(store, site, events, client, events[-1]["timestamp"] + 1_000)
        assert result.accepted == len(events), result
    settle()
    return site


PERIODS = [("12mo", {}), ("last_month", {}), ("month", {}),
           ("custom", {"start": "2026-09-01", "end": "2026-10-31"}),
           ("custom", {"start": "2026-08-25", "end": "2026-11-10"})]
FILTERS = [{}, {"country": "GB"}, {"source": "Google", "device": "mobile"}, {"page": "/pricing"}]


def every_report(store, site, periods):
    """The overview's reports, and the funnels' (their visitors, also by a value, are sketches)."""
    today, [funnel, older] = local_day_number(site.timezone, T0), funnels.funnels_of(site)
    return [stats.report(store, site, parse_period(name, site.timezone, T0, **kw), stats.Filters(f),
                         breakdowns=stats.BREAKDOWNS, limit=100)
            for name, kw in periods for f in FILTERS] + [
        funnels.funnel_report(store, site, funnel, parse_period(name, site.timezone, T0, **kw), today, f)
        for name, kw in periods for f in ({}, {"device": "desktop"}, {"source": "Google"},
                                          {"device": "desktop", "source": "Google"})] + [
        funnels.funnel_report(store, site, older, parse_period(name, site.timezone, T0, **kw), today)
        for name, kw in periods]


def reading_each_range_once(store, monkeypatch) -> list[str]:
    """The 20 reports read the same ranges again and again (a filter changes what is kept, not
    what is read): each distinct read goes to the store once, later ones get its answer, which
    keeps the comparison whole and takes DynamoDB under moto a third of the time. Returns the
    grains read, as they are read."""
    grains: list[str] = []
    for method in ("sum_counters", "read_counters", "read_sketches"):
        original, answers = getattr(store, method), {}

        def read(*args, _original=original, _answers=answers, **kwargs):
            key = repr((args, sorted(kwargs.items())))
            if key not in _answers:
                grains.append(kwargs.get("grain", args[5] if len(args) > 5 else "?"))
                _answers[key] = _original(*args, **kwargs)
            return copy.deepcopy(_answers[key])
        monkeypatch.setattr(store, method, read)
    return grains


@pytest.mark.timeout(240)  # it builds the DynamoDB history (see `months`)
def test_the_history_is_counted_whole(store, months):
    """First in the module: on DynamoDB it builds the history the later tests copy, so that
    none of them pays for it on top of its own work (each stays well within the time limit)."""
    start, end = utc("2026-08-01T00:00:00") // 86_400_000, utc("2026-12-01T00:00:00") // 86_400_000
    assert store.sum_counters(months.site_id, "sessions", "", start, end, "day") == {"": 40}


@pytest.mark.parametrize("periods, visits", [(PERIODS[:3], 40), (PERIODS[3:], 30)], ids=["to-date", "custom"])
def test_reports_read_from_month_rollups_equal_reports_read_from_days(store, months, monkeypatch, periods, visits):
    with monkeypatch.context() as days:
        reading_each_range_once(store, days)
        from_days = every_report(store, months, periods)
    assert from_days[0]["summary"]["metrics"]["visits"]["value"] == visits  # the history is all there
    by_value = [r["steps"][0]["visitors"] for r in from_days if "steps" in r]
    assert len(by_value) == 5 * len(periods) and None not in by_value  # the funnels' visitors, also filtered
    assert by_value[1] and by_value[2] and by_value[3]  # over the first period: computers, Google, both
    assert by_value[:4 * len(periods):4] == by_value[4 * len(periods):]  # the older funnel's: the same visitors

    assert rollups.roll_up_site(store, months, T0) == [month_number(date(2026, m, 1)) for m in (8, 9, 10)]
    site = store.get_site(months.site_id)
    assert site.rolled_up_month == month_number(date(2026, 10, 1))

    grains = reading_each_range_once(store, monkeypatch)
    assert every_report(store, site, periods) == from_days
    assert "month" in grains  # the reports did read the rollups


def test_every_daily_counter_and_sketch_is_rolled_up(store, months):
    start, end = (utc("2026-08-01T00:00:00") // 86_400_000, utc("2026-12-01T00:00:00") // 86_400_000)
    counters, sketches = {}, {}
    for month in rollups.months_to_roll_up(months, T0):
        c, s = rollups.month_rollups(store, months, month)
        counters.update(c)
        sketches.update(s)
    assert {(k.metric, k.dimension) for k in counters} == {
        pair for pair in DAY_COUNTERS if store.sum_counters(months.site_id, *pair, start, end, "day")}
    assert {k.dimension for k in sketches} == set(SKETCH_DIMENSIONS) | {"funnel:buy"}  # the newer funnel's


def test_which_months_are_due(store):
    site = create_site(store, "S", ["s.example"], utc("2026-05-10T12:00:00"), site_id="s")
    due = lambda when: list(rollups.months_to_roll_up(site, utc(when)))  # noqa: E731
    may, sep, oct_ = (month_number(date(2026, m, 1)) for m in (5, 9, 10))
    assert due("2026-05-31T12:00:00") == []  # the site's first month is not over
    assert due("2026-11-03T12:00:00") == list(range(may, sep + 1))  # October ended 2 days ago
    assert due("2026-11-04T12:00:00") == list(range(may, oct_ + 1))  # 3 days: settled
    site.rolled_up_month = sep
    assert due("2026-11-04T12:00:00") == [oct_]
    # Not further back than retention, whatever the site's age.
    site.created_ms, site.rolled_up_month = utc("2020-01-01T00:00:00"), -1
    assert due("2026-11-04T12:00:00")[0] == month_number(date(2025, 9, 1))


def test_rolling_a_month_up_again_changes_nothing(store, months):
    rollups.roll_up_site(store, months, T0)
    september = month_number(date(2026, 9, 1))
    before = store.sum_counters(months.site_id, "pageviews", "page", september, september + 1, "month")
    store.put_rollups(*rollups.month_rollups(store, months, september))
    assert store.sum_counters(months.site_id, "pageviews", "page", september, september + 1, "month") == before
    assert rollups.roll_up_site(store, store.get_site(months.site_id), T0) == []  # nothing due


def test_the_retention_job_rolls_up_then_purges(store, months):
    from app.retention import run_retention
    done = run_retention(store, T0)
    assert done["rolled_up_months"] == {"months": [month_number(date(2026, m, 1)) for m in (8, 9, 10)]}
    assert set(done["deleted"]) >= {"events", "counters"}
