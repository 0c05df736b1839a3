"""Fixtures: a store per backend, an app and client on it, a clock you can move, a site,
and events built the way the tracker sends them."""
from __future__ import annotations

import itertools
import re
import sys
import uuid

import pytest

from app import create_app
from app.auth.sites import create_site
from app.clock import FixedClock
from app.auth.users import start_login
from app.store.base import User
from app.store.sqlite import SQLiteStore

# The real mail and webhook servers alerts go to (smtp_server, receiver).
pytest_plugins = ["tests.mail_and_hooks"]


def pytest_addoption(parser):
    parser.addoption("--switch-interval", type=float, default=None, metavar="SECONDS",
                     help="how often Python switches threads (sys.setswitchinterval; default 0.005): "
                          "1e-6 makes thread races show up (make stress)")


def pytest_configure(config):
    interval = config.getoption("--switch-interval")
    if interval:
        sys.setswitchinterval(interval)


@pytest.fixture(autouse=True)
def _english_environment(monkeypatch):
    """Commands speak the environment's language (app/cli.py): the suite's is English, whatever
    the machine's, unless a test sets another."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)


T0 = 1_795_000_000_000  # 2026-11-18T11:06:40Z: a fixed "now" for every test
BACKENDS = ["sqlite", "dynamodb"]
ADMIN_PASSWORD = "correct horse battery"
# Hashed once here: scrypt is slow on purpose, and most tests only need a logged-in session.
ADMIN_PASSWORD_HASH = ("scrypt:32768:8:1$ihY6YarlQ0pd4kVK$cc1f6efb9a977b6450773fb1acfa6349e06dc789d9d8bfa3"
                       "2156e691ceaba8bfea7050ff11f2e5dd6bed2bb9c9beb2c0a228ee9603861d453856cfc4e6c38ae9")


def _sqlite_store(tmp_path, request):
    store = SQLiteStore(str(tmp_path / "liveinsight.db"))
    store.create_schema()
    return store


# Fake credentials for moto; streams need account-id endpoints off (see TOOLCHAIN.md).
MOTO_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}


def _dynamodb_store(tmp_path, request):
    """DynamoDB under moto, with a mock (so a table set) of its own for each test. Four write
    shards rather than production's 16: the merging is the same, and moto is slow with items."""
    import moto
    from app.store.dynamodb import DynamoDBStore
    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in MOTO_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "LIVEINSIGHT_DYNAMODB_ENDPOINT", "LIVEINSIGHT_DYNAMODB_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    _one_moto_request_at_a_time(monkeypatch)  # so also its stream numbering (dynamodb_stream.py)
    _back_up_each_table_once_per_transaction(monkeypatch)
    _query_one_partition_not_the_whole_table(monkeypatch)
    mock = moto.mock_aws()
    mock.start()
    request.addfinalizer(mock.stop)
    store = DynamoDBStore("test", shards=4)
    store.create_schema()
    return store


def _one_moto_request_at_a_time(monkeypatch):
    """moto's backends are not thread-safe: an index Query walks every item of a table while
    another thread's delete changes it ("dictionary changed size during iteration", seen once in
    the cost test's purge, whose shards run in parallel), numbers two stream records alike, or
    swaps its `copy` for two transactions at once (below). The store sends requests from its
    thread pool, as it should to DynamoDB; moto answers them one at a time."""
    import threading
    from moto.core.botocore_stubber import BotocoreStubber
    process, one_at_a_time = BotocoreStubber.process_request, threading.RLock()

    def process_request(self, request):
        with one_at_a_time:
            return process(self, request)
    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


def _back_up_each_table_once_per_transaction(monkeypatch):
    """moto 5.2 copies a whole table for each action of a transaction, to roll back; the copies
    are identical (all taken before any action runs), so take one: same behaviour, and the
    DynamoDB tests take 40% less time. Swapping moto's `copy` is safe because moto answers one
    request at a time (above), though the store sends transactions from its thread pool."""
    import copy
    import types
    from moto.dynamodb import models
    transact = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        backups = {}

        def deepcopy(thing, memo=None):
            if not isinstance(thing, models.Table):
                return copy.deepcopy(thing, memo)
            if id(thing) not in backups:
                backups[id(thing)] = copy.deepcopy(thing)
            return backups[id(thing)]
        models.copy = types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return transact(self, transact_items)
        finally:
            models.copy = copy
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", transact_write_items)


def _query_one_partition_not_the_whole_table(monkeypatch):
    """moto 5.2 answers a Query on a table's own key by sorting every item of the table and
    keeping those of the partition, so each Query costs the whole table; give it the
    partition's items only (the same items, in the same order). Index queries are left as
    they are. Thread-local: the store queries shards from several threads at once."""
    import inspect
    import threading
    from moto.dynamodb.models.table import Table
    query, all_items, asked = Table.query, Table.all_items, threading.local()
    signature = inspect.signature(query)

    def partition_items(self):
        if getattr(asked, "table", None) is self:
            return sorted(self.items.get(asked.hash_key, {}).values(), key=lambda item: item.range_key)
        return all_items(self)

    def partition_query(self, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs).arguments
        if call.get("index_name") or not self.range_key_attr:
            return query(self, *args, **kwargs)
        asked.table, asked.hash_key = self, call["hash_key"]
        try:
            return query(self, *args, **kwargs)
        finally:
            asked.table = asked.hash_key = None
    monkeypatch.setattr(Table, "all_items", partition_items)
    monkeypatch.setattr(Table, "query", partition_query)


def _settle_dynamodb(store):
    """Run the stream function over the events stream's new records, as Lambda would."""
    from app.lambda_handlers import aggregate_records
    from tests.dynamodb_stream import stream_records
    from app.store.dynamodb import DynamoDBStore
    if isinstance(store, DynamoDBStore):
        assert aggregate_records(store, stream_records(store)) == {"batchItemFailures": []}


def _settle_sqlite(store):
    """Fold the event log, as the server's aggregator does a moment after events arrive."""
    from app.aggregation import drain
    drain(store)


STORE_FACTORIES = {"sqlite": _sqlite_store, "dynamodb": _dynamodb_store}
# Aggregation runs off the request path (SQLite: the server's aggregator; DynamoDB: the stream
# function): how a test makes what was ingested visible, settle(store) -> None.
SETTLERS = {"sqlite": _settle_sqlite, "dynamodb": _settle_dynamodb}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def store(backend, tmp_path, request):
    store = STORE_FACTORIES[backend](tmp_path, request)
    yield store
    if hasattr(store, "close"):
        store.close()


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def app(store, clock):
    return create_app({"TESTING": True, "STORE_URL": "unused://", "SECRET_KEY": "test-secret"},
                      store=store, clock=clock)


@pytest.fixture
def anon_client(app):
    """A browser nobody has logged in with."""
    return app.test_client()


@pytest.fixture
def admin(store, clock):
    """An instance admin (password "correct horse battery")."""
    user = User("admin-1", "admin@example.com", ADMIN_PASSWORD_HASH, clock.now_ms(), is_admin=True)
    store.create_user(user)
    return user


@pytest.fixture
def log_in(app, store, clock):
    """log_in(user) -> a test client with a login of that user (no password round trip)."""
    def make(user):
        client = app.test_client()
        login = start_login(store, user, clock.now_ms(), int(app.permanent_session_lifetime.total_seconds() * 1000))
        with client.session_transaction() as session:
            session.update(uid=user.user_id, login=login)
        return client
    return make


@pytest.fixture
def client(log_in, admin):
    """A browser logged in as an instance admin: what most dashboard tests need."""
    return log_in(admin)


def csrf_token(client, page: str = "/account") -> str:
    """The CSRF token a page's forms carry (every page of a logged-in user has the logout form)."""
    html = client.get(page).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


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
def poison_breaks_folding(monkeypatch):
    """aggregate() fails on any events with one of the page /poison among them: a bug that only
    that event shows, which folding must set aside without holding back the rest."""
    from app import aggregation
    real = aggregation.aggregate

    def breaks_on_poison(events, *args, **kwargs):
        if any(e["path"] == "/poison" for e in events):
            raise ValueError("a bug that only this event shows")
        return real(events, *args, **kwargs)
    monkeypatch.setattr(aggregation, "aggregate", breaks_on_poison)


@pytest.fixture
def settle(backend, store):
    """Make everything ingested so far visible to reads: the aggregator over the event log
    (SQLite), the stream function over the new stream records (DynamoDB)."""
    return lambda: SETTLERS[backend](store)


@pytest.fixture
def unfolded(backend, store):
    """unfolded() -> the log entries appended since the last call and not folded yet: what the
    aggregator reads (SQLite) or Lambda delivers from the stream (DynamoDB)."""
    def read():
        if backend == "sqlite":
            return store.read_log(100_000)
        from app.store.base import LogEntry
        from app.store.dynamodb import event_from_item
        from tests.dynamodb_stream import stream_records
        return [LogEntry(r["dynamodb"]["SequenceNumber"], event_from_item(r["dynamodb"]["NewImage"]))
                for r in stream_records(store) if r["eventName"] == "INSERT"]
    return read


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
