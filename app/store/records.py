"""The records stores keep and trade in (base.py says what a store does with them), the
store's errors, and the constants of time buckets and retention."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

HOUR_MS = 3_600_000
FIVE_MINUTES_MS = 300_000
MINUTE_MS = 60_000
DAY_MS = 24 * HOUR_MS
RAW_RETENTION_MS = DAY_MS  # raw events, live sessions and visitor markers
ROLLUP_RETENTION_DAYS = 400  # counters (13 months, with a margin)


# The stored event record: what ingestion produces and every backend keeps for 24 hours.
EVENT_FIELDS = (
    "site_id", "event_id", "type", "ts", "received_ms", "user_id", "session_id",
    "url", "path", "hostname", "title", "referrer", "name", "value", "props",
    "source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "browser", "os", "device", "country", "ip",
    # Cohorts (analytics/cohorts.py): when the tracker made the visitor's id, where that first
    # visit came from, and when this browser sent its previous event (the tracker's li_f, li_l).
    "first_ms", "first_source", "first_channel", "prev_ms",
    # Funnels across visits (analytics/goals.py Carry): where the browser was in them at this event.
    "carry",
)


def month_of_day(day: int) -> int:
    """The month bucket (year * 12 + month - 1) of a local day number (days since 1970-01-01)."""
    when = date(1970, 1, 1) + timedelta(days=day)
    return when.year * 12 + when.month - 1


def month_start_day(month: int) -> int:
    """The local day number a month bucket begins on."""
    return (date(month // 12, month % 12 + 1, 1) - date(1970, 1, 1)).days


class StoreError(Exception):
    """Any backend failure; the API turns it into a 503 so clients retry."""


class Conflict(StoreError):
    """A record that must be unique exists already (a user's email, a site id)."""


# When LiveInsight began to name sources from maintained referrer data (ingest/sources.py):
# a site stored before then (on DynamoDB; SQLite records its upgrade) counted in older channels.
SOURCES_RELEASED_MS = 1_796_256_000_000  # 2026-12-03 00:00 UTC

# What a new site counts as a download (Site.download_extensions).
DOWNLOAD_EXTENSIONS = ("pdf", "zip", "dmg", "exe", "msi", "pkg", "deb", "rpm", "apk", "csv", "xlsx", "docx",
                       "pptx", "epub", "mp3", "mp4", "gz", "7z", "iso")


@dataclass
class Site:
    site_id: str
    name: str
    tracker_key: str
    domains: list[str]
    timezone: str = "UTC"
    created_ms: int = 0
    # The last local month (see periods.month_number) whose month rollups are written, so
    # reports read that month and those before it from one row per value instead of ~30.
    rolled_up_month: int = -1
    # Privacy signals the site honours: events from a browser that sends them are not kept.
    honour_dnt: bool = False  # Do Not Track (DNT: 1)
    honour_gpc: bool = False  # Global Privacy Control (Sec-GPC: 1)
    # Referrer domains of this site's own to drop as spam, on top of the built-in list.
    blocked_referrers: list[str] = field(default_factory=list)
    # Goals an admin defined (analytics/goals.py reads them): dicts of id, name, kind, match,
    # and for an event goal an optional property condition (prop, value).
    goals: list[dict] = field(default_factory=list)
    currency: str = "EUR"  # what conversion values are in (ISO 4217)
    outbound_links: bool = True  # count clicks on links to other sites
    # Clicks on links to files with these extensions count as downloads; empty: none.
    download_extensions: list[str] = field(default_factory=lambda: list(DOWNLOAD_EXTENSIONS))
    # Funnels an admin defined (analytics/funnels.py reads them): dicts of id, name, steps
    # (each a dict of kind and match), and how many days a visitor has to go through them.
    funnels: list[dict] = field(default_factory=list)
    # Hosts the site names as sources itself (ingest/sources.py): dicts of host, name, channel.
    sources: list[dict] = field(default_factory=list)
    # When the rules that name this site's sources and channels last changed (its own rules, or
    # LiveInsight's on upgrading): reports of periods across it say so. 0: never since created.
    sources_changed_ms: int = SOURCES_RELEASED_MS
    # What the site's alerts watch and where they go (app/alerts/settings.py reads it): the
    # traffic rule, goal rules, webhooks (their signing secrets too: never shown again), who
    # gets emails, and until when alerts are muted.
    alerts: dict = field(default_factory=dict)

    # What an owner may change (update_site); the id, key, creation and rollup state stay.
    EDITABLE = ("name", "domains", "timezone", "honour_dnt", "honour_gpc", "blocked_referrers", "goals",
                "currency", "outbound_links", "download_extensions", "funnels", "sources", "sources_changed_ms",
                "alerts")


ROLES = ("viewer", "admin", "owner")  # each can do what the ones before it can


class Login(NamedTuple):
    """A browser a user is logged in with: the SHA-256 of the secret id its login cookie
    carries, and when the login began."""
    id_hash: str
    started_ms: int


@dataclass
class User:
    """Someone who logs in to the dashboard. `is_admin` runs the instance: creates users and
    acts as an owner of every site. `logins` are the user's live logins, oldest first: a
    cookie whose login is not here any more (logged out, or ended by a password change or
    "log out everywhere") opens nothing."""
    user_id: str
    email: str  # lower case, unique
    password_hash: str
    created_ms: int
    is_admin: bool = False
    logins: list[Login] = field(default_factory=list)
    language: str = ""  # the interface's language chosen in Account ("" = the browser's)


@dataclass
class Membership:
    """A user's role on one site (one of ROLES)."""
    site_id: str
    user_id: str
    role: str
    created_ms: int = 0


@dataclass
class Invitation:
    """A role on a site offered to whoever logs in with `email`. Nothing is granted until they
    accept, and inviting says nothing about whether the email has an account."""
    site_id: str
    email: str  # lower case
    role: str
    invited_by: str  # the inviter's email
    created_ms: int


@dataclass
class PublicLink:
    """A revocable read-only link to a site's dashboard; only the hash of its token is kept."""
    token_hash: str
    site_id: str
    label: str
    created_ms: int
    created_by: str  # a user id
    revoked_ms: int | None = None


@dataclass
class ApiKey:
    """A secret key for a site's stats API. Only the SHA-256 of the secret is kept; `prefix`
    (its first characters) tells keys apart in lists. A rotated key keeps working until
    `expires_ms` (the grace period); a revoked one stops at once."""
    key_hash: str
    site_id: str
    name: str
    prefix: str
    created_ms: int
    created_by: str  # a user's email, or "cli"
    last_used_ms: int | None = None
    expires_ms: int | None = None
    revoked_ms: int | None = None

    def valid_at(self, now_ms: int) -> bool:
        return self.revoked_ms is None and (self.expires_ms is None or now_ms < self.expires_ms)


@dataclass
class AuditEntry:
    """Something done to a site that its owners can look back on: privacy requests, keys,
    members, settings."""
    site_id: str
    ts_ms: int
    entry_id: str  # random, so two entries of one millisecond are both kept
    actor: str  # a user's email, or "cli"
    action: str  # e.g. "visitor.erase", "api_key.rotate"
    detail: str = ""


@dataclass
class Alert:
    """An alert that fired on a site: what its owners were told, and how each channel took it."""
    site_id: str
    key: str  # the rule and the period it speaks of: a site's alert of one key fires once
    fired_ms: int
    rule_id: str
    kind: str  # "spike", "drop", "goal", "silence" or "test"
    title: str
    text: str  # the message, plain text
    details: dict = field(default_factory=dict)  # the figures behind it, the dashboard link
    deliveries: list[dict] = field(default_factory=list)  # channels.Delivery.as_dict() each


@dataclass
class LiveSocket:
    """A dashboard connected to the AWS deployment's WebSocket API, watching a site's realtime
    page (app/live_sockets.py): whom to push the site's snapshots to."""
    connection_id: str  # API Gateway's
    site_id: str
    viewer: str  # a member's user id, or "link:<token hash>" for a public link
    connected_ms: int
    language: str = "en"  # the page's (app.i18n.LANGUAGES): snapshots are rendered in it


@dataclass
class VisitorData:
    """Everything stored about one visitor of one site that names them (GDPR access and
    erasure): raw events and visits, kept 24 hours, and the visitor record. Counters and
    sketches hold no visitor id (see docs/privacy.md)."""
    events: list[dict]
    sessions: list["Session"]
    visitor: "Visitor | None"


# Joins goal keys in Session.reached and Visitor.reached: a control character, which stored
# text never holds (ingest/schema.py clean_text).
KEY_SEPARATOR = "\x1f"


@dataclass(slots=True)  # the aggregator keeps many in memory
class Session:
    """One visit. Keyed by (site_id, session_id); `seq` counts 30-minute rollovers of the
    same browser session, so a returning tab after a long pause is a new visit."""
    site_id: str
    session_id: str
    user_id: str
    seq: int
    started_ms: int
    last_seen_ms: int
    entry_path: str | None = None
    exit_path: str | None = None
    last_pageview_ms: int = 0
    pageviews: int = 0
    interactions: int = 0  # clicks and conversions: what makes a session not a bounce
    events: int = 0
    source: str = ""
    channel: str = ""
    referrer: str = ""
    browser: str = ""
    os: str = ""
    device: str = ""
    country: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    page_time_ms: int = 0  # time on the current (exit) page so far
    first_of_day: bool = False  # the visitor's first visit of its local day
    reached: str = ""  # the goal keys this visit reached (analytics/goals.py), KEY_SEPARATOR-joined
    pages_day: int = -1  # the local day of `pages`
    pages: str = ""  # hashes of the pages viewed that day, space-separated (analytics/aggregate.py)
    journey: str = ""  # the visit's steps so far, a JSON list of [page or key, seconds] (analytics/journeys.py)

    @property
    def is_bounce(self) -> bool:
        return self.pageviews == 1 and self.interactions == 0

    @property
    def duration_ms(self) -> int:
        return self.last_seen_ms - self.started_ms


@dataclass(slots=True)
class Visitor:
    """What aggregation remembers of one visitor: the last buckets it was counted in."""
    site_id: str
    user_id: str
    last_hour: int
    last_seen_ms: int
    last_day: int = -1  # local day number
    last_5min: int = -1
    reached_day: int = -1  # the local day of `reached`
    reached: str = ""  # the goal keys the visitor's visits of that day reached, KEY_SEPARATOR-joined
    # Where the realtime counters have the visitor (analytics/aggregate.py): their latest
    # event's page (None: not counted there yet), its visit's source and duration so far.
    live_page: str | None = None
    live_source: str = ""
    live_duration_ms: int = 0


# Counters and sketches are kept per bucket of a grain: the epoch hour, the epoch 5 minutes,
# the epoch minute (the realtime widgets'), the local day number, or the local month number
# (written by analytics/rollups.py).
GRAINS = ("hour", "5min", "minute", "day", "month")
# The counter dimension of visit summaries (analytics/aggregate.py): a visit's row moves as it
# takes steps, so SQLite deletes the row a visit left, and DynamoDB keeps it at zero.
JOURNEY = "journey"


class CounterKey(NamedTuple):
    site_id: str
    hour: int  # the bucket: epoch hour, epoch 5 minutes, local day or local month, by grain
    metric: str  # pageviews, visitors, sessions, bounces, duration_ms, events, dropped, ...
    dimension: str  # "" for site totals, or page, entry, exit, source, channel, browser, ...
    value: str  # the dimension's value ("" for totals)
    grain: str = "hour"  # one of GRAINS


@dataclass
class CounterRow:
    hour: int  # the bucket, as in CounterKey
    value: str
    n: float


class UniqueKey(NamedTuple):
    """The visitors of one site, local day (or month) and dimension value, kept as a
    HyperLogLog sketch."""
    site_id: str
    day: int  # the bucket: a local day number, or a local month number for grain "month"
    dimension: str  # "" for the whole site
    value: str
    grain: str = "day"  # "day" or "month"


@dataclass
class SketchRow:
    day: int  # the bucket, as in UniqueKey
    value: str
    sketch: bytes  # a serialised HLL sketch (app/store/hll.py)


@dataclass
class Changes:
    """What one ingested batch changes besides the raw events: the output of aggregation."""
    sessions: list[Session] = field(default_factory=list)
    visitors: list[Visitor] = field(default_factory=list)
    counters: dict[CounterKey, float] = field(default_factory=dict)
    uniques: dict[UniqueKey, set[str]] = field(default_factory=dict)  # visitor ids to add


# -- the event log and folding it into sessions, visitors and counters
class LogEntry(NamedTuple):
    """An event and its place in the event log: a growing integer on SQLite, the stream
    record's sequence number on DynamoDB."""
    position: int | str
    event: dict


@dataclass
class FoldOutcome:
    """What folding a site's new events gives: the changes to apply, and the events that could
    not be folded (event, error), which are set aside and counted instead."""
    changes: Changes
    failed: list[tuple[dict, str]] = field(default_factory=list)


@dataclass
class FoldResult:
    folded: int = 0  # events applied now (not counting those applied before)
    set_aside: list[LogEntry] = field(default_factory=list)  # could not be folded: skipped, counted
    unapplied: list[LogEntry] = field(default_factory=list)  # a storage failure: deliver them again
