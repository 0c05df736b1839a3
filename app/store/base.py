"""What a store is: the one interface between LiveInsight and its storage engines, one abstract
base per concern. Each backend (sqlite.py, dynamodb/) derives from `Store`, so Python refuses
to make one that misses an operation, and tests/test_store_contract.py checks that each does
what this says.

Shaped around what both SQLite and DynamoDB do well: small records for sites and accounts read
by key; immutable events appended to a log, keyed by a unique event_id; session and visitor
records read and written by key; additive counters read by key range. Nothing above the store
knows which engine it talks to. The records themselves are in records.py (re-exported here).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from typing import Callable, Iterable

from .records import *  # noqa: F401,F403  (the records every store trades in)
from .records import (
    Alert, ApiKey, AuditEntry, Changes, CounterKey, CounterRow, FoldOutcome, FoldResult, Invitation,
    LiveSocket, LogEntry, Membership, PublicLink, Session, Site, SketchRow, StoreError, UniqueKey, User, Visitor,
    VisitorData,
)

NO_SOCKETS = "this store keeps no WebSocket connections (the server pushes over its event streams)"

# The pure part of folding: (site_id, new events of that site, the sessions and visitors they
# touch as stored) -> the changes and the events that failed. app/aggregation.py provides it.
Fold = Callable[[str, list[dict], dict[str, Session], dict[str, Visitor]], FoldOutcome]


class AccountStore(ABC):
    """Sites and who may see them: accounts, memberships, invitations, links, keys, the audit log."""

    # -- sites
    @abstractmethod
    def create_site(self, site: Site) -> None: ...

    @abstractmethod
    def get_site(self, site_id: str) -> Site | None: ...

    @abstractmethod
    def get_site_by_key(self, tracker_key: str) -> Site | None: ...

    @abstractmethod
    def list_sites(self) -> list[Site]: ...

    @abstractmethod
    def set_rolled_up_month(self, site_id: str, month: int) -> None:
        """Record that the month rollups of `month` and every month before it are written."""

    @abstractmethod
    def update_site(self, site: Site) -> None:
        """Save the site's Site.EDITABLE fields."""

    @abstractmethod
    def delete_site(self, site_id: str) -> None:
        """The site, its memberships, invitations and links at once, and everything stored of its
        traffic: at once, or (DynamoDB) at the next purge at the latest."""

    # -- users and their logins
    @abstractmethod
    def create_user(self, user: User) -> None:
        """Raises Conflict when the email is taken."""

    @abstractmethod
    def get_user(self, user_id: str) -> User | None: ...

    @abstractmethod
    def get_user_by_email(self, email: str) -> User | None: ...

    @abstractmethod
    def list_users(self) -> list[User]: ...

    @abstractmethod
    def update_user(self, user: User) -> None:
        """Save a user's password hash, admin flag, logins and language (the email stays the same)."""

    @abstractmethod
    def delete_user(self, user_id: str) -> None:
        """The user and its memberships."""

    # -- memberships and invitations
    @abstractmethod
    def put_membership(self, membership: Membership) -> None: ...

    @abstractmethod
    def delete_membership(self, site_id: str, user_id: str) -> None: ...

    @abstractmethod
    def get_membership(self, site_id: str, user_id: str) -> Membership | None: ...

    @abstractmethod
    def site_members(self, site_id: str) -> list[Membership]: ...

    @abstractmethod
    def user_memberships(self, user_id: str) -> list[Membership]: ...

    @abstractmethod
    def put_invitation(self, invitation: Invitation) -> None:
        """Create or replace the invitation of (site_id, email)."""

    @abstractmethod
    def get_invitation(self, site_id: str, email: str) -> Invitation | None: ...

    @abstractmethod
    def site_invitations(self, site_id: str) -> list[Invitation]:
        """Oldest first."""

    @abstractmethod
    def email_invitations(self, email: str) -> list[Invitation]:
        """Oldest first."""

    @abstractmethod
    def delete_invitation(self, site_id: str, email: str) -> None: ...

    # -- public links, API keys, the audit log
    @abstractmethod
    def create_public_link(self, link: PublicLink) -> None: ...

    @abstractmethod
    def get_public_link(self, token_hash: str) -> PublicLink | None: ...

    @abstractmethod
    def list_public_links(self, site_id: str) -> list[PublicLink]: ...

    @abstractmethod
    def revoke_public_link(self, token_hash: str, revoked_ms: int) -> None: ...

    @abstractmethod
    def create_api_key(self, key: ApiKey) -> None: ...

    @abstractmethod
    def get_api_key(self, key_hash: str) -> ApiKey | None: ...

    @abstractmethod
    def list_api_keys(self, site_id: str) -> list[ApiKey]:
        """Oldest first, revoked ones included."""

    @abstractmethod
    def update_api_key(self, key: ApiKey) -> None:
        """Save last_used_ms, expires_ms and revoked_ms."""

    @abstractmethod
    def add_audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    def list_audit(self, site_id: str, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""

    # -- alerts that fired
    @abstractmethod
    def add_alert(self, alert: Alert) -> bool:
        """Keep an alert unless the site has one of its key already: True when it was added. Of
        several processes that find the same alert due at once, one adds it, and only that one
        sends it."""

    @abstractmethod
    def update_alert(self, alert: Alert) -> None:
        """Save an added alert's deliveries."""

    @abstractmethod
    def list_alerts(self, site_id: str, limit: int = 50) -> list[Alert]:
        """Newest first (by fired_ms)."""

    # Dashboards watching a site through a WebSocket API (the AWS deployment's live push,
    # app/live_sockets.py). The single box pushes over its own event streams instead: its store
    # keeps no sockets and raises StoreError.
    def add_live_socket(self, socket: LiveSocket) -> None:
        raise StoreError(NO_SOCKETS)

    def drop_live_socket(self, connection_id: str) -> LiveSocket | None:
        """Forget a connection; what it was, or None if unknown."""
        raise StoreError(NO_SOCKETS)

    def live_sockets(self, site_id: str) -> list[LiveSocket]:
        raise StoreError(NO_SOCKETS)

    def claim_live_push(self, site_id: str, now_ms: int, every_ms: int) -> bool:
        """Whether the caller may push the site's snapshot now: True at most once every
        `every_ms` however many functions ask at once."""
        raise StoreError(NO_SOCKETS)

    def hit_window(self, key: str, start_s: int, length_s: int, hits: int = 1) -> int:
        """Count `hits` requests in the rate window of `key` that began at `start_s`; how many it
        holds now (app/limits.py's `store://`: AWS's containers count together). Stores whose
        servers count in memory raise StoreError."""
        raise StoreError("this store keeps no rate windows: use LIVEINSIGHT_RATE_LIMIT_STORAGE=memory:// or redis://")


class TrafficStore(ABC):
    """What visitors send and what it adds up to: the event log, sessions and visitors,
    counters and sketches; reading them; a visitor's data; retention.

    The write path is the same on both backends: a request appends its events to the log
    (`append_events`) and answers; later, `fold` applies a batch of the log exactly once:
    the sessions, visitors, counter deltas and sketches the pure fold works out, and the
    checkpoint past the batch, all or nothing. Where the log is read from differs: the app's
    aggregator reads it with `read_log` (SQLite: `reads_own_log`); on AWS, Lambda reads the
    events table's stream and keeps the checkpoint, and `fold` skips what it applied before.
    """

    # True when the app itself reads the event log (app/aggregation.py's aggregator thread);
    # False when the platform delivers it (DynamoDB: the events stream, to the stream function).
    reads_own_log: bool

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction where the engine has them; nested uses join the outer one."""

    # -- the event log
    @abstractmethod
    def append_events(self, events: list[dict]) -> list[dict]:
        """Append events to the log, durably, ignoring any whose (site_id, event_id) is stored
        already. Returns the events that were new, in the order given."""

    @abstractmethod
    def read_log(self, limit: int) -> list[LogEntry]:
        """Up to `limit` events past the checkpoint, oldest first (stores that read their own
        log; the others raise StoreError)."""

    @abstractmethod
    def lead(self, wait: bool = True) -> bool:
        """Become the one reader of this store's log (held until the process ends or the store
        is closed; if the holder dies, a waiting reader takes over). With wait=False, answer at
        once whether this process leads. Stores that do not read their own log raise StoreError."""

    @abstractmethod
    def folded_since(self, position: int | None) -> tuple[int, set[str]]:
        """Where the checkpoint is now, and the sites with events folded after `position` up to
        it (None: from now on, none yet): what live push asks many times a second, so it must be
        cheap (stores that read their own log; the others raise StoreError)."""

    @abstractmethod
    def fold(self, entries: list[LogEntry], fold: Fold) -> FoldResult:
        """Apply a batch of the log exactly once: load what its events touch, call `fold` per
        site, write the changes, record the events that failed as set aside, and move the
        checkpoint past the batch, all or nothing. Entries applied before are skipped."""

    @abstractmethod
    def get_sessions(self, site_id: str, session_ids: Iterable[str]) -> dict[str, Session]: ...

    @abstractmethod
    def get_visitors(self, site_id: str, user_ids: Iterable[str]) -> dict[str, Visitor]: ...

    @abstractmethod
    def apply(self, changes: Changes) -> None:
        """Upsert the sessions and visitors and add the counter deltas, outside the log (the
        counts of dropped events, which are never appended)."""

    # -- reads
    def one_moment(self) -> AbstractContextManager[None]:
        """Reads inside may share what an earlier read inside fetched: a page that shows many
        figures of one moment (the live widgets) reads each counter partition's range once,
        not once a metric. A store whose reads cost a round trip each (DynamoDB) keeps them;
        the others need not. Nothing written inside is read back inside."""
        return nullcontext()

    @abstractmethod
    def recent_events(self, site_id: str, limit: int) -> list[dict]:
        """The newest raw events of a site, newest first."""

    @abstractmethod
    def read_counters(self, site_id: str, metric: str, dimension: str,
                      start_hour: int, end_hour: int, grain: str = "hour",
                      rollups: bool = False) -> list[CounterRow]:
        """Counter rows of a grain with start <= bucket < end, any value. `rollups` says the
        counters are ones only put_rollups writes, which lets a backend read less."""

    @abstractmethod
    def sum_counters(self, site_id: str, metric: str, dimension: str, start: int, end: int,
                     grain: str = "day", prefix: str = "", rollups: bool = False) -> dict[str, float]:
        """Counter totals per value over the buckets start <= bucket < end of a grain, of the
        values that begin with `prefix` (`rollups`: as read_counters)."""

    @abstractmethod
    def read_sketches(self, site_id: str, dimension: str, start_day: int, end_day: int,
                      values: Iterable[str] | None = None, grain: str = "day") -> list[SketchRow]:
        """Unique-visitor sketches of a grain with start_day <= bucket < end_day, of the given
        values (all values when None); one row per bucket and value."""

    @abstractmethod
    def put_rollups(self, counters: dict[CounterKey, float], sketches: dict[UniqueKey, bytes]) -> None:
        """Write counters and sketches whole, replacing what their keys held (month rollups,
        computed from the days; so writing them again changes nothing)."""

    # -- privacy
    @abstractmethod
    def visitor_data(self, site_id: str, user_id: str) -> VisitorData: ...

    @abstractmethod
    def erase_visitor(self, site_id: str, user_id: str) -> dict[str, int]:
        """Delete the visitor's raw events, visits and record; returns how many of each."""

    # -- retention
    @abstractmethod
    def purge(self, now_ms: int) -> dict[str, int]:
        """Delete raw events (once folded), sessions and visitors past 24 h and counters past
        retention."""


class Store(AccountStore, TrafficStore):
    """A whole backend: both concerns, and what operating it needs."""

    @abstractmethod
    def create_schema(self) -> None:
        """Create what is missing (tables, indexes) and upgrade what is old; safe to repeat."""

    @abstractmethod
    def open_schema(self) -> None:
        """Make the store ready for a command that uses it (create-site, create-user, ...): where
        the store is one file, as create_schema; where a deployment made the tables (DynamoDB: the
        stack), a StoreError unless they are there, so that a wrong name or region never makes
        new, empty ones."""

    @abstractmethod
    def check(self) -> None:
        """Raise StoreError unless the store answers (a health check: one cheap read)."""

    @abstractmethod
    def backup(self, path: str) -> None:
        """A consistent copy of everything into a new file at `path`, while writers go on
        (SQLite); a StoreError that says what to use instead where the engine has its own
        backups (DynamoDB: point-in-time recovery, on-demand backups)."""

    def close(self) -> None:
        """Release connections and threads (a store opens them lazily again if used)."""
