"""The rate limit settings and the fixed-window counters of app/limits.py: in memory (the single
box's default) and in the store (AWS: every Lambda container counts in the same DynamoDB items)."""
import json

import pytest

from app import create_app
from app import limits as rate_limits
from app.limits import Rate, parse_rates
from app.store.base import StoreError
from tests.conftest import CHROME_UA
from tests.test_accounts import login


def test_settings_are_read_as_the_limits_library_reads_them():
    assert parse_rates("10 per minute; 50 per hour") == [Rate(10, 60, "10 per minute"), Rate(50, 3600, "50 per hour")]
    assert parse_rates("1000/second, 5 per 10 minutes") == [Rate(1000, 1, "1000/second"), Rate(5, 600, "5 per 10 minutes")]
    assert str(parse_rates("3 per day")[0]) == "3 per day"
    for wrong in ("10 per fortnight", "ten per minute", "10"):
        with pytest.raises(ValueError, match="not a rate limit"):
            parse_rates(wrong)


def test_counts_in_memory_start_again_each_window():
    now = 1_000_020.0
    windows, [per_minute] = rate_limits.MemoryWindows(), parse_rates("2 per minute")
    assert [windows.hit(per_minute, "ingest", "a", now)[0] for _ in range(3)] == [True, True, False]
    assert windows.hit(per_minute, "ingest", "b", now) == (True, 1_000_020.0 // 60 * 60 + 60)  # another key
    now += 60  # the next window
    assert windows.hit(per_minute, "ingest", "a", now)[0] is True
    assert sum(len(counts) for counts in windows.counts.values()) == 1  # the last window's counts are gone


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_containers_sharing_the_store_share_each_limit(store, site, admin, make_event, clock):
    """Two apps on one DynamoDB store, as two Lambda containers: the ingestion limit (per key and
    client) and the login limit (per client) count both; the next window starts again."""
    settings = {"TESTING": True, "SECRET_KEY": "test-secret", "RATE_LIMIT_STORAGE": "store://",
                "RATE_LIMIT_INGEST": "3 per minute", "RATE_LIMIT_LOGIN": "2 per minute"}
    containers = [create_app(settings, store=store, clock=clock).test_client() for _ in range(2)]

    def send(client, ip="198.51.100.7"):
        return client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                           content_type="text/plain", environ_base={"REMOTE_ADDR": ip},
                           headers={"User-Agent": CHROME_UA, "Origin": "https://example.com"}).status_code
    assert [send(containers[n % 2]) for n in range(4)] == [202, 202, 202, 429]
    assert send(containers[1], ip="198.51.100.8") == 202  # another client
    tries = [login(c, "x@example.com", "wrong").status_code for c in containers + containers]
    assert tries == [401, 401, 429, 429]
    clock.advance(60_000)
    assert send(containers[0]) == 202


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_a_keys_limit_across_clients_is_spread_over_items_each_allowed_its_share(store, site, make_event, clock,
                                                                                 monkeypatch):
    """RATE_LIMIT_SITE counts in 8 items a window (spread=8), so no one item takes a busy site's
    every request; each allows an eighth. Items chosen in turn here (at random in use)."""
    import itertools
    turns = itertools.cycle(range(8))
    monkeypatch.setattr(rate_limits.random, "randrange", lambda n: next(turns) % n)
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "RATE_LIMIT_STORAGE": "store://",
                      "RATE_LIMIT_SITE": "16 per minute"}, store=store, clock=clock)
    client = app.test_client()
    statuses = [client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                            content_type="text/plain", environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
                            headers={"User-Agent": CHROME_UA}).status_code for n in range(20)]
    assert statuses == [202] * 16 + [429] * 4
    assert len({key for key in _window_items(store) if "RATE_LIMIT_SITE" in key}) == 8


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_a_large_limit_is_reserved_a_hundredth_at_a_time_and_never_exceeded(store, site, make_event, clock):
    """A container counts 1 % of a limit against it in one write and lets that many through
    before writing again (StoreWindows.RESERVED_SHARE); the last chunk is granted what is left,
    so two containers taking turns let through exactly the limit."""
    writes = []
    store.client.meta.events.register("before-parameter-build.dynamodb.UpdateItem",
                                      lambda params, **_: writes.append(params["Key"]["pk"]["S"]))
    settings = {"TESTING": True, "SECRET_KEY": "k", "RATE_LIMIT_STORAGE": "store://", "RATE_LIMIT_INGEST": "205 per minute"}
    containers = [create_app(settings, store=store, clock=clock).test_client() for _ in range(2)]

    def send(client) -> int:
        return client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                           content_type="text/plain", environ_base={"REMOTE_ADDR": "198.51.100.7"},
                           headers={"User-Agent": CHROME_UA}).status_code
    statuses = [send(containers[n % 2]) for n in range(210)]
    assert statuses == [202] * 205 + [429] * 5
    counted = [pk for pk in writes if pk.startswith("RATE#")]
    assert len(counted) == 103 + 5  # a write per 2 requests (205 // 100), the last granted 1; then one per refusal
    clock.advance(60_000)  # the next window starts again, reserving anew
    assert send(containers[0]) == 202


def _window_items(store) -> list[str]:
    """The partition keys of the rate window items (a test may scan: moto)."""
    items = store.client.scan(TableName=store.aggregates_table, ProjectionExpression="pk")["Items"]
    return [item["pk"]["S"] for item in items if item["pk"]["S"].startswith("RATE#")]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_store_that_keeps_no_windows_says_which_storages_to_use(store):
    with pytest.raises(StoreError, match="memory://"):
        store.hit_window("ingest#60#key", 0, 60)
