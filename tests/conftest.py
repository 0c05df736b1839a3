"""Fixtures: a store per backend, an app and client on it, a clock you can move, a site,
and events built the way the tracker sends them."""
from __future__ import annotations

import itertools
import uuid

import pytest

from app import create_app
from app.auth.sites import create_site
from app.clock import FixedClock
from app.store.sqlite import SQLiteStore

T0 = 1_795_000_000_000  # 2026-11-18T11:06:40Z: a fixed "now" for every test
BACKENDS = ["sqlite"]


def _sqlite_store(tmp_path):
    store = SQLiteStore(str(tmp_path / "liveinsight.db"))
    store.create_schema()
    return store


STORE_FACTORIES = {"sqlite": _sqlite_store}
# Backends whose aggregation runs outside the request (DynamoDB: the stream function) register
# here how a test makes what was ingested visible: settle(store) -> None.
SETTLERS: dict = {}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def store(backend, tmp_path):
    store = STORE_FACTORIES[backend](tmp_path)
    yield store
    if hasattr(store, "close"):
        store.close()


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def app(store, clock):
    return create_app({"TESTING": True, "STORE_URL": "unused://"}, store=store, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def site(store, clock):
    return create_site(store, "Example", ["example.com"], clock.now_ms(), site_id="example")


_ids = itertools.count()


@pytest.fixture
def make_event(clock):
    """A raw tracker event; override any field by keyword."""
    def make(**fields):
        event = {
            "event_id": uuid.uuid4().hex,
            "type": "page_view",
            "timestamp": clock.now_ms(),
            "user_id": "visitor-1",
            "session_id": "session-1",
            "url": "https://example.com/",
            "referrer": "",
            "title": "Home",
        }
        event.update(fields)
        return event
    return make


CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")


@pytest.fixture
def settle(backend, store):
    """Make everything ingested so far visible to reads: a no-op where aggregation runs
    inline (SQLite); on DynamoDB, the stream function over the new stream records."""
    def run():
        if backend in SETTLERS:
            SETTLERS[backend](store)
    return run


@pytest.fixture
def ingest(store, site, clock, settle):
    """Send raw events through the real pipeline, as one tracker batch, and settle them."""
    from app.ingest.enrich import Client
    from app.ingest.pipeline import record_batch

    def send(*events, ua=CHROME_UA, ip="198.51.100.23", at=None):
        result = record_batch(store, site, list(events), Client(ip, ua), at or clock.now_ms())
        settle()
        return result
    return send
