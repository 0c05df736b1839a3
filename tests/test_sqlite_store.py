"""What only the SQLite backend does: upgrading a file made by an earlier version, sharing the
file between threads and processes."""
import sqlite3
import subprocess
import sys
import threading
import time

from app.store.hll import add_visitors, count_visitors
from app.store.base import EVENT_FIELDS, User
from app.store.sqlite import SCHEMA_VERSION, SQLiteStore

# The tables of schema 2 that later schemas changed, as version 2 made them.
SCHEMA_2 = f"""
CREATE TABLE events ({", ".join(EVENT_FIELDS)}, PRIMARY KEY (site_id, event_id)) WITHOUT ROWID;
INSERT INTO events (site_id, event_id, type, ts, received_ms, user_id, session_id, props)
    VALUES ('s1', 'later', 'page_view', 7, 7, 'u1', 'v1', '{{}}'), ('s1', 'earlier', 'page_view', 6, 6, 'u1', 'v1', '{{}}');
CREATE TABLE users (user_id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                    created_ms INTEGER NOT NULL, is_admin INTEGER NOT NULL);
INSERT INTO users VALUES ('u1', 'ada@example.com', 'hash', 3, 1);
CREATE TABLE sites (site_id TEXT PRIMARY KEY, name TEXT NOT NULL, tracker_key TEXT NOT NULL UNIQUE,
                    domains TEXT NOT NULL, timezone TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE sketches (site_id TEXT NOT NULL, dimension TEXT NOT NULL, day INTEGER NOT NULL,
                       value TEXT NOT NULL, sketch BLOB NOT NULL,
                       PRIMARY KEY (site_id, dimension, day, value)) WITHOUT ROWID;
INSERT INTO sites VALUES ('s1', 'One', 'pk_one', '["one.example"]', 'UTC', 5);
PRAGMA user_version = 2;
"""


def test_a_schema_2_file_is_upgraded_and_keeps_its_data(tmp_path):
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_2)
    db.execute("INSERT INTO sketches VALUES ('s1', 'page', 20400, '/a', ?)", (add_visitors(None, ["u1", "u2"]),))
    db.commit()
    db.close()

    store = SQLiteStore(path)
    store.create_schema()
    site = store.get_site("s1")
    assert (site.name, site.created_ms, site.rolled_up_month) == ("One", 5, -1)
    # Its sources were counted in the older channels until now, the upgrade (schema 10).
    assert site.sources == [] and abs(site.sources_changed_ms - time.time() * 1000) < 60_000
    rows = store.read_sketches("s1", "page", 20400, 20401)
    assert [(r.value, count_visitors([r.sketch])) for r in rows] == [("/a", 2)]
    assert store.get_user("u1") == User("u1", "ada@example.com", "hash", 3, is_admin=True, logins=[])
    # The events became the event log, in the order they arrived, all of them folded already.
    assert [e["event_id"] for e in store.recent_events("s1", 10)] == ["later", "earlier"]
    assert store.read_log(10) == []
    store.append_events([{**store.recent_events("s1", 1)[0], "event_id": "new"}])
    assert [(e.position, e.event["event_id"]) for e in store.read_log(10)] == [(3, "new")]
    assert store._read("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    store.create_schema()  # and again: nothing left to do
    assert store.get_site("s1").rolled_up_month == -1


def schema_2_file(path) -> str:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_2)
    db.close()
    return str(path)


def test_an_upgrade_keeps_a_copy_of_the_file_as_it_was_first(tmp_path, caplog):
    path = schema_2_file(tmp_path / "old.db")
    SQLiteStore(path).create_schema()
    copy, = tmp_path.glob("old.db.schema-2-*.backup")
    old = sqlite3.connect(copy)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 2  # the older release opens it as it was
    assert old.execute("SELECT name FROM sites").fetchall() == [("One",)]
    assert str(copy) in caplog.text and "from schema 2 to" in caplog.text
    assert copy.stat().st_mode & 0o777 == 0o600
    SQLiteStore(path).create_schema()  # up to date: no second copy
    assert len(list(tmp_path.glob("*.backup"))) == 1


def test_processes_starting_together_upgrade_once(tmp_path):
    """An upgrade's restart starts several processes on the old file at once: the writer lock
    lets one upgrade (and copy) while the others wait, then find nothing to do."""
    path = schema_2_file(tmp_path / "old.db")
    stores = [SQLiteStore(path) for _ in range(4)]
    start, errors = threading.Barrier(len(stores)), []

    def upgrade(store):
        start.wait(timeout=10)
        try:
            store.create_schema()
        except Exception as error:  # noqa: BLE001 - collected, then asserted empty
            errors.append(error)
    threads = [threading.Thread(target=upgrade, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    assert len(list(tmp_path.glob("*.backup"))) == 1
    assert stores[0].get_site("s1").name == "One"


def test_a_command_run_beside_the_server_leaves_the_servers_writes_visible(tmp_path):
    """A server process whose second thread opens its connection, then a command (another
    process) that opens the file and closes it, as `bin/liveinsight create-site` does. POSIX
    locks belong to a process and closing any descriptor of a file drops them all: opening and
    closing the file by hand beside SQLite dropped the server's lock, so the command, closing
    last as it thought, deleted the WAL under the running server, and everything the server
    wrote after that was lost to every other process (seen in the crash test behind Caddy)."""
    path = str(tmp_path / "shared.db")
    server = SQLiteStore(path)
    server.create_schema()
    server.create_user(User("u1", "one@example.com", "hash", 1))
    second_thread = threading.Thread(target=server.check)
    second_thread.start()
    second_thread.join(timeout=10)
    command = ("import sys; from app.store.sqlite import SQLiteStore; store = SQLiteStore(sys.argv[1]); "
               "print(len(store.list_users())); store.close()")
    run = lambda: subprocess.run([sys.executable, "-c", command, path], capture_output=True, text=True,  # noqa: E731
                                 timeout=60, check=True).stdout.strip()
    assert run() == "1"
    server.create_user(User("u2", "two@example.com", "hash", 2))
    assert run() == "2"
    server.close()


def test_writers_take_turns_on_the_writer_lock(tmp_path):
    """Every write transaction holds an exclusive lock of <file>.writer-lock, which the kernel
    hands to the next writer (process or thread) as soon as it is free."""
    import fcntl
    import os

    store = SQLiteStore(str(tmp_path / "locked.db"))
    store.create_schema()
    other = os.open(str(tmp_path / "locked.db.writer-lock"), os.O_RDWR | os.O_CREAT)  # another writer's

    def free() -> bool:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(other, fcntl.LOCK_UN)
        return True

    with store.transaction():
        assert not free()
        with store.transaction():  # nested: joins the outer one, takes nothing more
            assert not free()
    assert free()
    os.close(other)


def test_the_database_files_and_instance_folder_are_private(tmp_path):
    """They hold password hashes and visitors' data: this user only, whatever the umask."""
    import os
    import stat

    from app import create_app

    old_umask = os.umask(0o022)
    try:
        store = SQLiteStore(str(tmp_path / "new-folder" / "liveinsight.db"))
        store.create_schema()
        with store.transaction():
            store.put_rollups({}, {})
        (tmp_path / "old.db").touch(mode=0o644)  # a file an earlier version made readable by all
        SQLiteStore(str(tmp_path / "old.db")).create_schema()
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")}, store=store)
    finally:
        os.umask(old_umask)

    def mode(path) -> int:
        return stat.S_IMODE(os.stat(path).st_mode)
    assert mode(tmp_path / "new-folder") == 0o700
    for name in ("liveinsight.db", "liveinsight.db-wal", "liveinsight.db-shm", "liveinsight.db.writer-lock"):
        assert mode(tmp_path / "new-folder" / name) == 0o600, name
    assert mode(tmp_path / "old.db") == 0o600
    assert mode(app.instance_path) == 0o700 and mode(os.path.join(app.instance_path, "secret_key")) == 0o600


def test_a_backup_is_a_private_consistent_copy_into_a_new_file(tmp_path):
    import os
    import stat

    from app.store.base import Site, StoreError
    store = SQLiteStore(str(tmp_path / "live.db"))
    store.create_schema()
    store.create_site(Site("s1", "One", "pk_one", ["one.example"], "UTC", 5))
    store.backup(str(tmp_path / "copy.db"))
    copy = SQLiteStore(str(tmp_path / "copy.db"))
    assert copy.get_site("s1").name == "One"
    assert stat.S_IMODE(os.stat(tmp_path / "copy.db").st_mode) == 0o600
    try:
        store.backup(str(tmp_path / "copy.db"))
    except StoreError as error:
        assert "exists already" in str(error)
    else:
        raise AssertionError("a backup must not overwrite a file")


def test_the_purge_keeps_the_live_widgets_minute_counters_a_day(tmp_path):
    """On AWS TTL deletes them (tests/test_dynamodb_store.py); here the purge does."""
    from app.store.base import HOUR_MS, Changes, CounterKey
    store = SQLiteStore(str(tmp_path / "live.db"))
    store.create_schema()
    now = 1_780_000_000_000
    store.apply(Changes(counters={CounterKey("s1", (now - 2 * HOUR_MS) // 60_000, "visitors", "live", "", "minute"): 1,
                                  CounterKey("s1", (now - 25 * HOUR_MS) // 60_000, "visitors", "live", "", "minute"): 1}))
    store.purge(now)
    assert [r.hour for r in store.read_counters("s1", "visitors", "live", 0, 10**9, grain="minute")] == [
        (now - 2 * HOUR_MS) // 60_000]
