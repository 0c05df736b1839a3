"""SQLite backend: one file in WAL mode, one connection per thread, the only SQL in the project.

The event log is the events table in the order rows were appended (`seq`, AUTOINCREMENT: never
reused). A request's append is its own short transaction. The app's aggregator (one per file,
app/aggregation.py) reads the log past the checkpoint (`read_log`) and `fold`s a batch: the
sessions, visitors, counters and sketches it changes and the new checkpoint commit together,
so each event counts exactly once whatever crashes when. The sessions and visitors it wrote
stay in memory (`_Hot`) for the next batches: it is their only writer, and it forgets them when
anything else deletes traffic data (an erasure, a site deleted, a purge: `log_state.erasures`)
or another process has folded meanwhile (the checkpoint moved without it).

Writers (gunicorn workers, their threads, the CLI) take turns on an exclusive lock of
`<file>.writer-lock` before `BEGIN IMMEDIATE`: the kernel hands the lock to the next writer as
soon as it is released, where SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries
and left a third of the CPU idle under load. The busy timeout stays, for writers that do not
take the lock.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from dataclasses import astuple, fields
from operator import attrgetter
from typing import Iterable, Iterator

from . import hll
from .base import Fold, Store
from .records import (
    DAY_MS, DOWNLOAD_EXTENSIONS, EVENT_FIELDS, FIVE_MINUTES_MS, HOUR_MS, JOURNEY, MINUTE_MS, RAW_RETENTION_MS,
    ROLLUP_RETENTION_DAYS, Alert, ApiKey, AuditEntry, Changes, Conflict, CounterKey, CounterRow, FoldOutcome,
    FoldResult, Invitation, LogEntry, Login, Membership, PublicLink, Session, Site, SketchRow, StoreError, UniqueKey,
    User, Visitor, VisitorData, month_of_day,
)

log = logging.getLogger(__name__)

SESSION_FIELDS = tuple(f.name for f in fields(Session))
EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
PROPS = EVENT_FIELDS.index("props")
VISITOR_FIELDS = tuple(f.name for f in fields(Visitor))
# Flat row tuples; dataclasses.astuple deep-copies every field and was a quarter of ingestion.
session_row = attrgetter(*SESSION_FIELDS)
visitor_row = attrgetter(*VISITOR_FIELDS)

# 'checkpoint': the last log position folded; 'erasures': bumped whenever traffic data is
# deleted (erasure, site deletion, purge), so the aggregator forgets what it keeps in memory.
LOG_STATE = """
CREATE TABLE IF NOT EXISTS log_state (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT OR IGNORE INTO log_state VALUES ('checkpoint', 0), ('erasures', 0);
"""
# In SCHEMA, and in the migration that fills the live widgets' counters (a file that old may
# have had none yet).
COUNTERS = """
CREATE TABLE IF NOT EXISTS counters (
    site_id TEXT NOT NULL,
    grain TEXT NOT NULL,
    metric TEXT NOT NULL,
    dimension TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    value TEXT NOT NULL,
    n REAL NOT NULL,
    PRIMARY KEY (site_id, grain, metric, dimension, bucket, value)
) WITHOUT ROWID;
"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sites (
    site_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tracker_key TEXT NOT NULL UNIQUE,
    domains TEXT NOT NULL,
    timezone TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    rolled_up_month INTEGER NOT NULL DEFAULT -1,
    honour_dnt INTEGER NOT NULL DEFAULT 0,
    honour_gpc INTEGER NOT NULL DEFAULT 0,
    blocked_referrers TEXT NOT NULL DEFAULT '[]',
    goals TEXT NOT NULL DEFAULT '[]',
    currency TEXT NOT NULL DEFAULT 'EUR',
    outbound_links INTEGER NOT NULL DEFAULT 1,
    download_extensions TEXT NOT NULL DEFAULT '{json.dumps(DOWNLOAD_EXTENSIONS)}',
    funnels TEXT NOT NULL DEFAULT '[]',
    sources TEXT NOT NULL DEFAULT '[]',
    sources_changed_ms INTEGER NOT NULL DEFAULT 0,
    alerts TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    is_admin INTEGER NOT NULL,
    logins TEXT NOT NULL DEFAULT '[]',
    language TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS invitations (
    site_id TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (site_id, email)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invitations_by_email ON invitations (email);
CREATE TABLE IF NOT EXISTS memberships (
    site_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (site_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships (user_id);
CREATE TABLE IF NOT EXISTS public_links (
    token_hash TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    label TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX IF NOT EXISTS public_links_by_site ON public_links (site_id, created_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_used_ms INTEGER,
    expires_ms INTEGER,
    revoked_ms INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_by_site ON api_keys (site_id, created_ms);
CREATE TABLE IF NOT EXISTS audit_log (
    site_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (site_id, ts_ms, entry_id)
) WITHOUT ROWID;
-- Alerts that fired (app/alerts/): a key fires once per site, which is what keeps two
-- processes that wake together from sending one alert twice.
CREATE TABLE IF NOT EXISTS alerts (
    site_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fired_ms INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    details TEXT NOT NULL,
    deliveries TEXT NOT NULL,
    PRIMARY KEY (site_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (site_id, fired_ms);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the place in the event log
    {", ".join(EVENT_FIELDS)}
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (site_id, event_id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (site_id, received_ms, ts);
{LOG_STATE}
-- Events the aggregator could not fold (app/aggregation.py): skipped, counted, kept 24 hours.
CREATE TABLE IF NOT EXISTS set_aside (
    seq INTEGER PRIMARY KEY,
    site_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    error TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    {", ".join(SESSION_FIELDS)},
    PRIMARY KEY (site_id, session_id)
) WITHOUT ROWID;
-- What the purge deletes by (the realtime widgets read counters: analytics/realtime.py).
CREATE INDEX IF NOT EXISTS sessions_seen ON sessions (last_seen_ms);
CREATE TABLE IF NOT EXISTS visitors (
    {", ".join(VISITOR_FIELDS)},
    PRIMARY KEY (site_id, user_id)
) WITHOUT ROWID;
{COUNTERS}
CREATE TABLE IF NOT EXISTS sketches (
    site_id TEXT NOT NULL,
    grain TEXT NOT NULL,
    dimension TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    value TEXT NOT NULL,
    sketch BLOB NOT NULL,
    PRIMARY KEY (site_id, grain, dimension, bucket, value)
) WITHOUT ROWID;
"""
SCHEMA_VERSION = 14
EVENT_FIELDS_V5 = EVENT_FIELDS[:EVENT_FIELDS.index("first_ms")]  # the events' columns until schema 9
# How a file of an older schema becomes the current one: version -> the SQL that upgrades it
# to the next version (run in one transaction).
MIGRATIONS = {
    # 2 -> 3: month rollups: sketches get a grain, sites remember their last rolled-up month.
    2: """
    ALTER TABLE sites ADD COLUMN rolled_up_month INTEGER NOT NULL DEFAULT -1;
    CREATE TABLE sketches_v3 (
        site_id TEXT NOT NULL, grain TEXT NOT NULL, dimension TEXT NOT NULL,
        bucket INTEGER NOT NULL, value TEXT NOT NULL, sketch BLOB NOT NULL,
        PRIMARY KEY (site_id, grain, dimension, bucket, value)
    ) WITHOUT ROWID;
    INSERT INTO sketches_v3 SELECT site_id, 'day', dimension, day, value, sketch FROM sketches;
    DROP TABLE sketches;
    ALTER TABLE sketches_v3 RENAME TO sketches;
    """,
    # 3 -> 4: privacy options and blocked referrers of a site (API keys and the audit log are
    # new tables, which SCHEMA creates).
    3: """
    ALTER TABLE sites ADD COLUMN honour_dnt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sites ADD COLUMN honour_gpc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sites ADD COLUMN blocked_referrers TEXT NOT NULL DEFAULT '[]';
    """,
    # 4 -> 5: logins end server-side (a user's live logins); invitations are a new table.
    4: """
    ALTER TABLE users ADD COLUMN logins TEXT NOT NULL DEFAULT '[]';
    """,
    # 5 -> 6: the events table becomes the event log (a seq per row); every event stored so
    # far was aggregated when it was appended, so the checkpoint starts past them all.
    5: f"""
    CREATE TABLE events_v6 (seq INTEGER PRIMARY KEY AUTOINCREMENT, {", ".join(EVENT_FIELDS_V5)});
    INSERT INTO events_v6 ({", ".join(EVENT_FIELDS_V5)})
        SELECT {", ".join(EVENT_FIELDS_V5)} FROM events ORDER BY received_ms, ts;
    DROP TABLE events;
    ALTER TABLE events_v6 RENAME TO events;
    {LOG_STATE}
    UPDATE log_state SET n = (SELECT COALESCE(MAX(seq), 0) FROM events) WHERE name = 'checkpoint';
    """,
    # 6 -> 7: goals and what else a site counts; visits and visitors remember the goals reached.
    # (A file older than schema 6 may have no sessions or visitors yet: make their schema-6 form.)
    6: f"""
    CREATE TABLE IF NOT EXISTS sessions ({", ".join(SESSION_FIELDS[:SESSION_FIELDS.index("reached")])},
        PRIMARY KEY (site_id, session_id))
        WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS visitors ({", ".join(VISITOR_FIELDS[:VISITOR_FIELDS.index("reached_day")])},
        PRIMARY KEY (site_id, user_id))
        WITHOUT ROWID;
    ALTER TABLE sites ADD COLUMN goals TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sites ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';
    ALTER TABLE sites ADD COLUMN outbound_links INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE sites ADD COLUMN download_extensions TEXT NOT NULL DEFAULT '{json.dumps(DOWNLOAD_EXTENSIONS)}';
    ALTER TABLE sessions ADD COLUMN reached TEXT NOT NULL DEFAULT '';
    ALTER TABLE visitors ADD COLUMN reached_day INTEGER NOT NULL DEFAULT -1;
    ALTER TABLE visitors ADD COLUMN reached TEXT NOT NULL DEFAULT '';
    """,
    # 7 -> 8: visits remember the pages they viewed that day (a page's visits count once).
    7: """
    ALTER TABLE sessions ADD COLUMN pages_day INTEGER NOT NULL DEFAULT -1;
    ALTER TABLE sessions ADD COLUMN pages TEXT NOT NULL DEFAULT '';
    """,
    # 8 -> 9: funnels, journeys and cohorts: a site's funnels, a visit's steps so far, and what
    # events say of the visitor's first visit and of the browser's previous event.
    8: """
    ALTER TABLE sites ADD COLUMN funnels TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN journey TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN first_ms;
    ALTER TABLE events ADD COLUMN first_source;
    ALTER TABLE events ADD COLUMN first_channel;
    ALTER TABLE events ADD COLUMN prev_ms;
    """,
    # 9 -> 10: a site's own traffic sources, and when sources began to be named otherwise: now.
    9: """
    ALTER TABLE sites ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sites ADD COLUMN sources_changed_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE sites SET sources_changed_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
    """,
    # 10 -> 11: a site's alert settings (the alerts that fired are a new table, which SCHEMA creates).
    10: """
    ALTER TABLE sites ADD COLUMN alerts TEXT NOT NULL DEFAULT '{}';
    """,
    # 11 -> 12: the interface's language a user chose ('' = the browser's).
    11: """
    ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT '';
    """,
    # 12 -> 13: realtime widgets read minute counters: visitors remember where those count them
    # (analytics/aggregate.py), each put there now by their latest visit, so the widgets count
    # them from the first minute after the upgrade; sessions need no covering index for them
    # (SCHEMA, run after the migrations, makes the purge's one).
    12: f"""
    ALTER TABLE visitors ADD COLUMN live_page TEXT;
    ALTER TABLE visitors ADD COLUMN live_source TEXT NOT NULL DEFAULT '';
    ALTER TABLE visitors ADD COLUMN live_duration_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE visitors SET (live_page, live_source, live_duration_ms) = (
        SELECT COALESCE(s.exit_path, ''), s.source, s.last_seen_ms - s.started_ms FROM sessions s
        WHERE s.site_id = visitors.site_id AND s.user_id = visitors.user_id ORDER BY s.last_seen_ms DESC LIMIT 1)
    WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.site_id = visitors.site_id AND s.user_id = visitors.user_id);
    {COUNTERS}
    INSERT INTO counters (site_id, grain, metric, dimension, bucket, value, n)
        SELECT site_id, 'minute', 'visitors', 'live', last_seen_ms / 60000, '', COUNT(*)
        FROM visitors WHERE live_page IS NOT NULL GROUP BY site_id, last_seen_ms / 60000
        UNION ALL
        SELECT site_id, 'minute', 'visitors', 'live_page', last_seen_ms / 60000, live_page, COUNT(*)
        FROM visitors WHERE live_page IS NOT NULL GROUP BY site_id, last_seen_ms / 60000, live_page
        UNION ALL
        SELECT site_id, 'minute', 'duration_ms', 'live', last_seen_ms / 60000, '', SUM(live_duration_ms)
        FROM visitors WHERE live_page IS NOT NULL GROUP BY site_id, last_seen_ms / 60000
        UNION ALL
        SELECT site_id, 'minute', 'visitors', 'live_source', last_seen_ms / 60000, live_source, COUNT(*)
        FROM visitors WHERE live_page IS NOT NULL GROUP BY site_id, last_seen_ms / 60000, live_source;
    DROP INDEX IF EXISTS sessions_live;
    """,
    # 13 -> 14: funnels across visits: where the browser was in them at each event.
    13: """
    ALTER TABLE events ADD COLUMN carry;
    """,
}
SITE_COLUMNS = tuple(f.name for f in fields(Site))
JSON_SITE_COLUMNS = ("domains", "blocked_referrers", "goals", "download_extensions", "funnels", "sources", "alerts")
API_KEY_FIELDS = tuple(f.name for f in fields(ApiKey))
INVITATION_FIELDS = tuple(f.name for f in fields(Invitation))
USER_COLUMNS = "user_id, email, password_hash, created_ms, is_admin, logins, language"
AUDIT_FIELDS = tuple(f.name for f in fields(AuditEntry))
ALERT_FIELDS = tuple(f.name for f in fields(Alert))


def _placeholders(names: Iterable[str]) -> str:
    return ", ".join("?" for _ in names)


class _Hot:
    """The sessions and visitors the aggregator wrote last, by key, most recent last: what the
    next batches touch most. Bounded; it is only a cache of what the store holds."""

    def __init__(self, most: int = 20_000):
        self.most = most
        self.sessions: OrderedDict[tuple[str, str], Session] = OrderedDict()
        self.visitors: OrderedDict[tuple[str, str], Visitor] = OrderedDict()

    @staticmethod
    def _take(table: OrderedDict, site_id: str, keys: set[str], load) -> dict:
        found = {key: table[site_id, key] for key in keys if (site_id, key) in table}
        missing = keys - found.keys()
        if missing:
            found.update(load(site_id, missing))
        return found

    def sessions_of(self, store: "SQLiteStore", site_id: str, session_ids: set[str]) -> dict[str, Session]:
        return self._take(self.sessions, site_id, session_ids, store.get_sessions)

    def visitors_of(self, store: "SQLiteStore", site_id: str, user_ids: set[str]) -> dict[str, Visitor]:
        return self._take(self.visitors, site_id, user_ids, store.get_visitors)

    def keep(self, changes: Changes) -> None:
        for table, records, key in ((self.sessions, changes.sessions, attrgetter("site_id", "session_id")),
                                    (self.visitors, changes.visitors, attrgetter("site_id", "user_id"))):
            for record in records:
                table[key(record)] = record
                table.move_to_end(key(record))
            while len(table) > self.most:
                table.popitem(last=False)

    def forget(self) -> None:
        self.sessions.clear()
        self.visitors.clear()


class SQLiteStore(Store):
    reads_own_log = True  # the app's aggregator reads the event log (app/aggregation.py)

    def __init__(self, path: str, busy_timeout_ms: int = 10_000):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._hot = _Hot()
        self._erasures: int | None = None  # log_state.erasures when _hot was last right
        self._checkpoint: int | None = None  # the checkpoint this store's last fold wrote
        self._leader_lock: int | None = None  # the aggregator lock, once this process leads

    # -- connections: created lazily, one per thread (sqlite3 objects are not thread-safe)
    @property
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            if self.path != ":memory:":
                self._make_private()
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
            self._local.db = db
            self._local.depth = 0
        return db

    def _make_private(self) -> None:
        """The file holds password hashes and visitors' data: readable by this user only. A
        missing folder is made 0700; the file is made (or tightened to) 0600, and SQLite gives
        its -wal and -shm files the mode of the file.

        The file is opened here only when it does not exist yet: a process's POSIX locks on a
        file are all dropped when it closes any descriptor of it, so opening and closing an
        existing file beside this process's connections would drop their locks, and another
        process closing its last connection would then delete the WAL they are writing to."""
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700)
        if not os.path.exists(self.path):
            try:
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass  # another process made it meanwhile (0600 too)
        for path in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
            if os.path.exists(path) and os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
        lock = getattr(self._local, "lock", None)
        if lock is not None:
            os.close(lock)
            self._local.lock = None
        if self._leader_lock is not None:
            os.close(self._leader_lock)  # another process may lead now
            self._leader_lock = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

    def create_schema(self) -> None:
        """Under the writer lock, so that of several processes started at once (an upgrade's
        restart) one upgrades and the others find it done."""
        with self._errors():
            db = self._db  # opened first: it makes the file's folder, where the lock lives
            with self._writer_lock():
                version = db.execute("PRAGMA user_version").fetchone()[0]
                has_tables = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sites'").fetchone()
                if version != SCHEMA_VERSION and (version or has_tables):
                    self._back_up_before_upgrade(version)
                    self._migrate(version)
                # WAL is a property of the file: set it once here, never per connection.
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def open_schema(self) -> None:
        self.create_schema()  # the file is the store: making it is all there is to set up

    def _back_up_before_upgrade(self, version: int) -> None:
        """A copy of the file as the older release left it, beside it, before any step runs:
        what to go back to (with the older release) if an upgrade goes wrong."""
        if self.path == ":memory:" or version > SCHEMA_VERSION:
            return  # nothing to keep, or a newer file that _migrate refuses untouched
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        copy = f"{self.path}.schema-{version}-{stamp}.backup"
        self.backup(copy)
        log.warning("upgrading %s from schema %d to %d; a copy of it as it was: %s",
                    self.path, version, SCHEMA_VERSION, copy)

    def _migrate(self, version: int) -> None:
        """Upgrade a file of an older schema step by step, each step in one transaction."""
        while version != SCHEMA_VERSION:
            if version not in MIGRATIONS:
                raise StoreError(f"{self.path} was made by another version of LiveInsight "
                                 f"(schema {version}, this one needs {SCHEMA_VERSION}): move it away")
            self._db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[version]}; "
                                   f"PRAGMA user_version = {version + 1}; COMMIT;")
            version += 1

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested uses join the outer one."""
        db = self._db
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self._writer_lock():
            with self._errors():
                db.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            try:
                yield
            except BaseException:
                self._local.depth = 0
                db.execute("ROLLBACK")
                raise
            self._local.depth = 0
            with self._errors():
                db.execute("COMMIT")

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """The file's writers' turn, across processes and threads (a descriptor per thread: a
        lock is shared by every user of one descriptor)."""
        if self.path == ":memory:":
            yield
            return
        lock = getattr(self._local, "lock", None)
        if lock is None:
            lock = self._local.lock = os.open(f"{self.path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, sql: str, rows: list[tuple]) -> None:
        with self._errors(), self.transaction():
            self._db.executemany(sql, rows)

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._errors():
            return self._db.execute(sql, args).fetchall()

    # -- sites
    @staticmethod
    def _site_row(site: Site, columns: tuple[str, ...]) -> tuple:
        return tuple(json.dumps(getattr(site, c)) if c in JSON_SITE_COLUMNS else getattr(site, c) for c in columns)

    def create_site(self, site: Site) -> None:
        self._write(f"INSERT INTO sites ({', '.join(SITE_COLUMNS)}) VALUES ({_placeholders(SITE_COLUMNS)})",
                    [self._site_row(site, SITE_COLUMNS)])

    @staticmethod
    def _site(row: tuple) -> Site:
        values = dict(zip(SITE_COLUMNS, row))
        for column in JSON_SITE_COLUMNS:
            values[column] = json.loads(values[column])
        for column in ("honour_dnt", "honour_gpc", "outbound_links"):
            values[column] = bool(values[column])
        return Site(**values)

    def _sites(self, where: str = "", args: tuple = ()) -> list[Site]:
        return [self._site(r) for r in self._read(f"SELECT {', '.join(SITE_COLUMNS)} FROM sites {where}", args)]

    def get_site(self, site_id: str) -> Site | None:
        return next(iter(self._sites("WHERE site_id = ?", (site_id,))), None)

    def get_site_by_key(self, tracker_key: str) -> Site | None:
        return next(iter(self._sites("WHERE tracker_key = ?", (tracker_key,))), None)

    def list_sites(self) -> list[Site]:
        return self._sites("ORDER BY created_ms")

    def set_rolled_up_month(self, site_id: str, month: int) -> None:
        self._write("UPDATE sites SET rolled_up_month = ? WHERE site_id = ?", [(month, site_id)])

    def update_site(self, site: Site) -> None:
        self._write(f"UPDATE sites SET {', '.join(f'{c} = ?' for c in Site.EDITABLE)} WHERE site_id = ?",
                    [(*self._site_row(site, Site.EDITABLE), site.site_id)])

    # Every table with a site_id column: what deleting a site deletes.
    SITE_TABLES = ("memberships", "invitations", "public_links", "api_keys", "audit_log", "alerts", "events", "set_aside",
                   "sessions", "visitors", "counters", "sketches", "sites")

    def delete_site(self, site_id: str) -> None:
        with self._errors(), self.transaction():
            for table in self.SITE_TABLES:
                self._db.execute(f"DELETE FROM {table} WHERE site_id = ?", (site_id,))
            self._traffic_deleted()

    # -- accounts
    def create_user(self, user: User) -> None:
        try:
            self._write(f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(user.user_id, user.email, user.password_hash, user.created_ms, int(user.is_admin),
                          json.dumps(user.logins), user.language)])
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise Conflict(f"a user with the email {user.email!r} exists already") from exc
            raise

    @staticmethod
    def _user(row: tuple) -> User:
        user_id, email, password_hash, created_ms, is_admin, logins, language = row
        return User(user_id, email, password_hash, created_ms, bool(is_admin),
                    [Login(*login) for login in json.loads(logins)], language)

    def _users(self, where: str, args: tuple = ()) -> list[User]:
        return [self._user(r) for r in self._read(f"SELECT {USER_COLUMNS} FROM users {where}", args)]

    def get_user(self, user_id: str) -> User | None:
        return next(iter(self._users("WHERE user_id = ?", (user_id,))), None)

    def get_user_by_email(self, email: str) -> User | None:
        return next(iter(self._users("WHERE email = ?", (email,))), None)

    def list_users(self) -> list[User]:
        return self._users("ORDER BY email")

    def update_user(self, user: User) -> None:
        self._write("UPDATE users SET password_hash = ?, is_admin = ?, logins = ?, language = ? WHERE user_id = ?",
                    [(user.password_hash, int(user.is_admin), json.dumps(user.logins), user.language, user.user_id)])

    def delete_user(self, user_id: str) -> None:
        with self._errors(), self.transaction():
            self._db.execute("DELETE FROM memberships WHERE user_id = ?", (user_id,))
            self._db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))

    def put_membership(self, membership: Membership) -> None:
        self._write("INSERT OR REPLACE INTO memberships (site_id, user_id, role, created_ms) "
                    "VALUES (?, ?, ?, ?)", [astuple(membership)])

    def delete_membership(self, site_id: str, user_id: str) -> None:
        self._write("DELETE FROM memberships WHERE site_id = ? AND user_id = ?", [(site_id, user_id)])

    def get_membership(self, site_id: str, user_id: str) -> Membership | None:
        rows = self._read("SELECT * FROM memberships WHERE site_id = ? AND user_id = ?", (site_id, user_id))
        return Membership(*rows[0]) if rows else None

    def site_members(self, site_id: str) -> list[Membership]:
        rows = self._read("SELECT * FROM memberships WHERE site_id = ? ORDER BY created_ms, user_id", (site_id,))
        return [Membership(*r) for r in rows]

    def user_memberships(self, user_id: str) -> list[Membership]:
        rows = self._read("SELECT * FROM memberships WHERE user_id = ? ORDER BY created_ms, site_id", (user_id,))
        return [Membership(*r) for r in rows]

    def put_invitation(self, invitation: Invitation) -> None:
        self._write(f"INSERT OR REPLACE INTO invitations ({', '.join(INVITATION_FIELDS)}) "
                    f"VALUES ({_placeholders(INVITATION_FIELDS)})", [astuple(invitation)])

    def _invitations(self, where: str, args: tuple) -> list[Invitation]:
        rows = self._read(f"SELECT {', '.join(INVITATION_FIELDS)} FROM invitations {where} "
                          "ORDER BY created_ms, site_id, email", args)
        return [Invitation(*r) for r in rows]

    def get_invitation(self, site_id: str, email: str) -> Invitation | None:
        return next(iter(self._invitations("WHERE site_id = ? AND email = ?", (site_id, email))), None)

    def site_invitations(self, site_id: str) -> list[Invitation]:
        return self._invitations("WHERE site_id = ?", (site_id,))

    def email_invitations(self, email: str) -> list[Invitation]:
        return self._invitations("WHERE email = ?", (email,))

    def delete_invitation(self, site_id: str, email: str) -> None:
        self._write("DELETE FROM invitations WHERE site_id = ? AND email = ?", [(site_id, email)])

    def create_public_link(self, link: PublicLink) -> None:
        self._write("INSERT INTO public_links (token_hash, site_id, label, created_ms, created_by, revoked_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [astuple(link)])

    def get_public_link(self, token_hash: str) -> PublicLink | None:
        rows = self._read("SELECT * FROM public_links WHERE token_hash = ?", (token_hash,))
        return PublicLink(*rows[0]) if rows else None

    def list_public_links(self, site_id: str) -> list[PublicLink]:
        rows = self._read("SELECT * FROM public_links WHERE site_id = ? ORDER BY created_ms", (site_id,))
        return [PublicLink(*r) for r in rows]

    def revoke_public_link(self, token_hash: str, revoked_ms: int) -> None:
        self._write("UPDATE public_links SET revoked_ms = ? WHERE token_hash = ? AND revoked_ms IS NULL",
                    [(revoked_ms, token_hash)])

    def create_api_key(self, key: ApiKey) -> None:
        self._write(f"INSERT INTO api_keys ({', '.join(API_KEY_FIELDS)}) VALUES ({_placeholders(API_KEY_FIELDS)})",
                    [astuple(key)])

    def get_api_key(self, key_hash: str) -> ApiKey | None:
        rows = self._read(f"SELECT {', '.join(API_KEY_FIELDS)} FROM api_keys WHERE key_hash = ?", (key_hash,))
        return ApiKey(*rows[0]) if rows else None

    def list_api_keys(self, site_id: str) -> list[ApiKey]:
        rows = self._read(f"SELECT {', '.join(API_KEY_FIELDS)} FROM api_keys WHERE site_id = ? "
                          "ORDER BY created_ms, key_hash", (site_id,))
        return [ApiKey(*r) for r in rows]

    def update_api_key(self, key: ApiKey) -> None:
        self._write("UPDATE api_keys SET last_used_ms = ?, expires_ms = ?, revoked_ms = ? WHERE key_hash = ?",
                    [(key.last_used_ms, key.expires_ms, key.revoked_ms, key.key_hash)])

    def add_audit(self, entry: AuditEntry) -> None:
        self._write(f"INSERT INTO audit_log ({', '.join(AUDIT_FIELDS)}) VALUES ({_placeholders(AUDIT_FIELDS)})",
                    [astuple(entry)])

    def list_audit(self, site_id: str, limit: int = 100) -> list[AuditEntry]:
        rows = self._read(f"SELECT {', '.join(AUDIT_FIELDS)} FROM audit_log WHERE site_id = ? "
                          "ORDER BY ts_ms DESC, entry_id DESC LIMIT ?", (site_id, limit))
        return [AuditEntry(*r) for r in rows]

    # -- alerts that fired
    def add_alert(self, alert: Alert) -> bool:
        row = (*astuple(alert)[:-2], json.dumps(alert.details), json.dumps(alert.deliveries))
        with self._errors(), self.transaction():
            return bool(self._db.execute(f"INSERT OR IGNORE INTO alerts ({', '.join(ALERT_FIELDS)}) "
                                         f"VALUES ({_placeholders(ALERT_FIELDS)})", row).rowcount)

    def update_alert(self, alert: Alert) -> None:
        self._write("UPDATE alerts SET deliveries = ? WHERE site_id = ? AND key = ?",
                    [(json.dumps(alert.deliveries), alert.site_id, alert.key)])

    def list_alerts(self, site_id: str, limit: int = 50) -> list[Alert]:
        rows = self._read(f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts WHERE site_id = ? "
                          "ORDER BY fired_ms DESC, key DESC LIMIT ?", (site_id, limit))
        return [Alert(*r[:-2], details=json.loads(r[-2]), deliveries=json.loads(r[-1])) for r in rows]

    # -- the event log
    def append_events(self, events: list[dict]) -> list[dict]:
        sql = f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES ({_placeholders(EVENT_FIELDS)})"
        new = []
        with self._errors(), self.transaction():
            db = self._db
            for event in events:
                row = [event.get(name) for name in EVENT_FIELDS]
                row[PROPS] = json.dumps(event.get("props") or {})
                if db.execute(sql, row).rowcount:
                    new.append(event)
        return new

    @staticmethod
    def _event(row: tuple) -> dict:
        event = dict(zip(EVENT_FIELDS, row))
        event["props"] = json.loads(event["props"] or "{}")
        return event

    def read_log(self, limit: int) -> list[LogEntry]:
        rows = self._read(f"SELECT seq, {EVENT_COLUMNS} FROM events "
                          "WHERE seq > (SELECT n FROM log_state WHERE name = 'checkpoint') ORDER BY seq LIMIT ?",
                          (limit,))
        return [LogEntry(row[0], self._event(row[1:])) for row in rows]

    def folded_since(self, position: int | None) -> tuple[int, set[str]]:
        with self._errors():
            checkpoint = self._db.execute("SELECT n FROM log_state WHERE name = 'checkpoint'").fetchone()[0]
            if position is None or position >= checkpoint:
                return checkpoint, set()
            rows = self._db.execute("SELECT DISTINCT site_id FROM events WHERE seq > ? AND seq <= ?",
                                    (position, checkpoint)).fetchall()
        return checkpoint, {row[0] for row in rows}

    def lead(self, wait: bool = True) -> bool:
        """An exclusive lock of `<file>.aggregator-lock`, kept by this process: the kernel frees
        it when the process dies, and a reader blocked in `lead()` gets it at once."""
        if self._leader_lock is not None:
            return True
        lock = os.open(f"{self.path}.aggregator-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(lock)
            return False
        self._leader_lock = lock
        return True

    def _log_state(self) -> tuple[int, int]:
        state = dict(self._db.execute("SELECT name, n FROM log_state").fetchall())
        return state["checkpoint"], state["erasures"]

    def _traffic_deleted(self) -> None:
        """Inside a transaction that deleted sessions or visitors: the aggregator must forget
        what it keeps of them."""
        self._db.execute("UPDATE log_state SET n = n + 1 WHERE name = 'erasures'")

    def fold(self, entries: list[LogEntry], fold: Fold) -> FoldResult:
        if not entries:
            return FoldResult()
        # The pure work first, from what this aggregator keeps in memory, outside the write lock.
        planned = self._plan(entries, fold, self._hot)
        with self._errors(), self.transaction():
            checkpoint, erasures = self._log_state()
            first, last = entries[0].position, entries[-1].position
            present = {row[0] for row in self._db.execute(
                "SELECT seq FROM events WHERE seq BETWEEN ? AND ?", (first, last))}
            fresh = [e for e in entries if e.position > checkpoint and e.position in present]
            if (erasures, checkpoint) != (self._erasures, self._checkpoint) or len(fresh) != len(entries):
                # Something else changed the traffic data (an erasure, a purge, another
                # process's fold): forget what memory holds and work it out again from the store.
                self._hot.forget()
                self._erasures = erasures
                planned = self._plan(fresh, fold, None)
            for outcome in planned.values():
                self._apply(outcome.changes)
            failed = [(e, error) for outcome in planned.values() for e, error in outcome.failed]
            self._db.executemany(
                "INSERT OR REPLACE INTO set_aside (seq, site_id, event_id, received_ms, error) "
                "SELECT seq, site_id, event_id, received_ms, ? FROM events WHERE site_id = ? AND event_id = ?",
                [(error[:1000], e["site_id"], e["event_id"]) for e, error in failed])
            self._db.execute("UPDATE log_state SET n = max(n, ?) WHERE name = 'checkpoint'", (last,))
            self._checkpoint = max(checkpoint, last)
        for outcome in planned.values():
            self._hot.keep(outcome.changes)
        failed_ids = {(e["site_id"], e["event_id"]) for e, _ in failed}
        return FoldResult(folded=len(fresh) - len(failed_ids),
                          set_aside=[e for e in fresh if (e.event["site_id"], e.event["event_id"]) in failed_ids])

    def _plan(self, entries: list[LogEntry], fold: Fold, hot: _Hot | None) -> dict[str, FoldOutcome]:
        """Each site's new events folded into its sessions, visitors and counters, as the hot
        records (or, without them, the store) have them now."""
        by_site: dict[str, list[dict]] = defaultdict(list)
        for entry in entries:
            by_site[entry.event["site_id"]].append(entry.event)
        planned = {}
        for site_id, events in by_site.items():
            session_ids, user_ids = {e["session_id"] for e in events}, {e["user_id"] for e in events}
            if hot is None:
                sessions, visitors = self.get_sessions(site_id, session_ids), self.get_visitors(site_id, user_ids)
            else:
                sessions = hot.sessions_of(self, site_id, session_ids)
                visitors = hot.visitors_of(self, site_id, user_ids)
            planned[site_id] = fold(site_id, events, sessions, visitors)
        return planned

    def _by_keys(self, table: str, key: str, columns: tuple, site_id: str,
                 keys: Iterable[str]) -> list[tuple]:
        keys = list(dict.fromkeys(keys))
        rows: list[tuple] = []
        for i in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = keys[i:i + 500]
            rows += self._read(
                f"SELECT {', '.join(columns)} FROM {table} "
                f"WHERE site_id = ? AND {key} IN ({_placeholders(chunk)})", (site_id, *chunk))
        return rows

    def get_sessions(self, site_id: str, session_ids: Iterable[str]) -> dict[str, Session]:
        rows = self._by_keys("sessions", "session_id", SESSION_FIELDS, site_id, session_ids)
        return {s.session_id: s for s in (Session(*r) for r in rows)}

    def get_visitors(self, site_id: str, user_ids: Iterable[str]) -> dict[str, Visitor]:
        rows = self._by_keys("visitors", "user_id", VISITOR_FIELDS, site_id, user_ids)
        return {v.user_id: v for v in (Visitor(*r) for r in rows)}

    def apply(self, changes: Changes) -> None:
        with self._errors(), self.transaction():
            self._apply(changes)

    def _apply(self, changes: Changes) -> None:
        """Upsert sessions and visitors, add counter deltas, merge sketches (in a transaction)."""
        db = self._db
        db.executemany(
            f"INSERT OR REPLACE INTO sessions ({', '.join(SESSION_FIELDS)}) "
            f"VALUES ({_placeholders(SESSION_FIELDS)})",
            [session_row(s) for s in changes.sessions])
        db.executemany(
            f"INSERT OR REPLACE INTO visitors ({', '.join(VISITOR_FIELDS)}) "
            f"VALUES ({_placeholders(VISITOR_FIELDS)})",
            [visitor_row(v) for v in changes.visitors])
        db.executemany(
            "INSERT INTO counters (site_id, grain, metric, dimension, bucket, value, n) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site_id, grain, metric, dimension, bucket, value) "
            "DO UPDATE SET n = n + excluded.n",
            [(k.site_id, k.grain, k.metric, k.dimension, k.hour, k.value, n)
             for k, n in changes.counters.items()])
        # A visit's summary moves to a new row at each step (aggregate.py): drop the emptied one.
        db.executemany(
            "DELETE FROM counters WHERE site_id = ? AND grain = ? AND metric = ? AND dimension = ? "
            "AND bucket = ? AND value = ? AND n = 0",
            [(k.site_id, k.grain, k.metric, k.dimension, k.hour, k.value)
             for k, n in changes.counters.items() if n < 0 and k.dimension == JOURNEY])
        if changes.uniques:
            self._add_uniques(changes.uniques)

    def _add_uniques(self, uniques: dict[UniqueKey, set[str]]) -> None:
        """Merge visitor ids into the stored sketches (inside the caller's transaction)."""
        db, keys, stored = self._db, list(uniques), {}
        for i in range(0, len(keys), 150):  # 5 variables a key, under SQLite's limit
            chunk = keys[i:i + 150]
            rows = db.execute(
                "SELECT site_id, bucket, dimension, value, grain, sketch FROM sketches "
                "WHERE (site_id, grain, dimension, bucket, value) IN "
                f"(VALUES {', '.join(['(?, ?, ?, ?, ?)'] * len(chunk))})",
                [part for k in chunk for part in (k.site_id, k.grain, k.dimension, k.day, k.value)]).fetchall()
            stored.update({UniqueKey(*row[:5]): row[5] for row in rows})
        merged = {k: hll.add_visitors(stored.get(k), ids) for k, ids in uniques.items()}
        # Most visitors of a busy day are in its sketches already: a sketch that did not change
        # (8 KB when dense) is not written again.
        self._put_sketches({k: sketch for k, sketch in merged.items() if sketch != stored.get(k)})

    def _put_sketches(self, sketches: dict[UniqueKey, bytes]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO sketches (site_id, grain, dimension, bucket, value, sketch) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(k.site_id, k.grain, k.dimension, k.day, k.value, sketch) for k, sketch in sketches.items()])

    def put_rollups(self, counters: dict[CounterKey, float], sketches: dict[UniqueKey, bytes]) -> None:
        with self._errors(), self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO counters (site_id, grain, metric, dimension, bucket, value, n) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(k.site_id, k.grain, k.metric, k.dimension, k.hour, k.value, n) for k, n in counters.items()])
            self._put_sketches(sketches)

    # -- reads
    def recent_events(self, site_id: str, limit: int) -> list[dict]:
        rows = self._read(f"SELECT {EVENT_COLUMNS} FROM events WHERE site_id = ? "
                          "ORDER BY received_ms DESC, ts DESC LIMIT ?", (site_id, limit))
        return [self._event(row) for row in rows]

    def read_counters(self, site_id: str, metric: str, dimension: str,
                      start_hour: int, end_hour: int, grain: str = "hour",
                      rollups: bool = False) -> list[CounterRow]:
        rows = self._read(
            "SELECT bucket, value, n FROM counters WHERE site_id = ? AND grain = ? AND metric = ? "
            "AND dimension = ? AND bucket >= ? AND bucket < ?",
            (site_id, grain, metric, dimension, start_hour, end_hour))
        return [CounterRow(*r) for r in rows]

    def sum_counters(self, site_id: str, metric: str, dimension: str, start: int, end: int,
                     grain: str = "day", prefix: str = "", rollups: bool = False) -> dict[str, float]:
        # Summed here rather than in Python: a year of a page breakdown is ~200,000 rows. Text
        # compares by code point, so the values with a prefix lie between it and it + U+10FFFF
        # (a condition only when there is a prefix: it costs every row it looks at).
        where, args = "", (site_id, grain, metric, dimension, start, end)
        if prefix:
            where, args = " AND value >= ? AND value < ?", (*args, prefix, prefix + "\U0010ffff")
        return dict(self._read(
            "SELECT value, SUM(n) FROM counters WHERE site_id = ? AND grain = ? AND metric = ? "
            f"AND dimension = ? AND bucket >= ? AND bucket < ?{where} GROUP BY value", args))

    def read_sketches(self, site_id: str, dimension: str, start_day: int, end_day: int,
                      values: Iterable[str] | None = None, grain: str = "day") -> list[SketchRow]:
        sql = ("SELECT bucket, value, sketch FROM sketches WHERE site_id = ? AND grain = ? "
               "AND dimension = ? AND bucket >= ? AND bucket < ?")
        args = (site_id, grain, dimension, start_day, end_day)
        if values is None:
            return [SketchRow(*r) for r in self._read(sql, args)]
        values = list(dict.fromkeys(values))
        rows = []
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            rows += self._read(f"{sql} AND value IN ({_placeholders(chunk)})", (*args, *chunk))
        return [SketchRow(*r) for r in rows]

    # -- privacy
    def visitor_data(self, site_id: str, user_id: str) -> VisitorData:
        events = [self._event(row) for row in self._read(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE site_id = ? AND user_id = ? ORDER BY ts, event_id",
            (site_id, user_id))]
        sessions = [Session(*r) for r in self._read(
            f"SELECT {', '.join(SESSION_FIELDS)} FROM sessions WHERE site_id = ? AND user_id = ? "
            "ORDER BY started_ms", (site_id, user_id))]
        return VisitorData(events, sessions, self.get_visitors(site_id, [user_id]).get(user_id))

    def erase_visitor(self, site_id: str, user_id: str) -> dict[str, int]:
        with self._errors(), self.transaction():
            self._traffic_deleted()
            return {table: self._db.execute(f"DELETE FROM {table} WHERE site_id = ? AND user_id = ?",
                                            (site_id, user_id)).rowcount
                    for table in ("events", "sessions", "visitors")}

    # -- retention
    def purge(self, now_ms: int) -> dict[str, int]:
        raw_cutoff = now_ms - RAW_RETENTION_MS
        rollup_cutoff = now_ms - ROLLUP_RETENTION_DAYS * DAY_MS
        # Buckets before these are past retention, per grain (days: a day of margin for zones;
        # a month goes when its last day does).
        cutoffs = {"hour": rollup_cutoff // HOUR_MS, "5min": raw_cutoff // FIVE_MINUTES_MS,
                   "minute": raw_cutoff // MINUTE_MS, "day": rollup_cutoff // DAY_MS - 1}
        cutoffs["month"] = month_of_day(cutoffs["day"])
        deleted = {}
        with self._errors(), self.transaction():
            db = self._db
            # Only events folded already: an aggregator that was stopped must still count the rest.
            deleted["events"] = db.execute(
                "DELETE FROM events WHERE received_ms < ? "
                "AND seq <= (SELECT n FROM log_state WHERE name = 'checkpoint')", (raw_cutoff,)).rowcount
            db.execute("DELETE FROM set_aside WHERE received_ms < ?", (raw_cutoff,))
            deleted["sessions"] = db.execute(
                "DELETE FROM sessions WHERE last_seen_ms < ?", (raw_cutoff,)).rowcount
            deleted["visitors"] = db.execute(
                "DELETE FROM visitors WHERE last_seen_ms < ?", (raw_cutoff,)).rowcount
            if deleted["sessions"] or deleted["visitors"]:
                self._traffic_deleted()
            deleted["counters"] = sum(
                db.execute("DELETE FROM counters WHERE grain = ? AND bucket < ?", (grain, cutoff)).rowcount
                for grain, cutoff in cutoffs.items())
            deleted["sketches"] = sum(
                db.execute("DELETE FROM sketches WHERE grain = ? AND bucket < ?", (grain, cutoffs[grain])).rowcount
                for grain in ("day", "month"))
            deleted["alerts"] = db.execute("DELETE FROM alerts WHERE fired_ms < ?", (rollup_cutoff,)).rowcount
        return deleted

    # -- operations
    def check(self) -> None:
        self._read("SELECT 1 FROM sites LIMIT 1")

    def backup(self, path: str) -> None:
        """SQLite's online backup, in one step: a snapshot of one moment, taken under a read
        transaction, so writers (WAL) go on meanwhile. The copy is private, like the file."""
        if os.path.exists(path):
            raise StoreError(f"{path} exists already: back up into a new file")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(path)
        try:
            with self._errors():
                self._db.backup(target)
        finally:
            target.close()
