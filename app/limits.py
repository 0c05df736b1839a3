"""Rate limits: ingestion per tracker key and client (and, where set, per key from every client),
login per client, the current-password check per user, the stats API per key or user. A view asks for a limit with
`@rate_limited(SETTING, key)`; `set_up_rate_limits` applies them when the app is made, parsed
by `parse_rates` ("1000 per minute; 20000 per day"). A check is one counter increment:
flask-limiter's own per-request machinery cost about a fifth of a single-event ingestion request.

Where the counters live (`LIVEINSIGHT_RATE_LIMIT_STORAGE`):
- `memory://` (the single box's default): each process's memory, so with several gunicorn
  workers a client may get up to workers x the limit;
- `redis://...`, `memcached://...`: a shared storage, through the `limits` library: exact;
- `store://`: the app's store (DynamoDB: a counter item a window, `hit_window`), which the
  AWS stack uses: every Lambda container counts in the same items, so a limit holds however
  many containers serve a client.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
import threading
from functools import wraps
from typing import Callable, NamedTuple

from flask import Flask, current_app, request
from werkzeug.exceptions import TooManyRequests

from app.context import get_store, now_ms


class Rate(NamedTuple):
    """So many requests a window of so many seconds, as the setting wrote it."""
    amount: int
    seconds: int
    text: str

    def __str__(self) -> str:
        return self.text


UNIT_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE = re.compile(r"(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?")


def parse_rates(setting: str) -> list[Rate]:
    """"10 per minute; 50 per hour" (also "10/minute", "100 per 5 minutes") -> its rates."""
    rates = []
    for part in filter(None, (p.strip() for p in re.split(r"[;,]", setting))):
        found = RATE.fullmatch(part.lower())
        if found is None:
            raise ValueError(f"not a rate limit: {part!r} (e.g. '1000 per minute')")
        amount, count, unit = found.groups()
        rates.append(Rate(int(amount), int(count or 1) * UNIT_S[unit], part))
    return rates


def client_id() -> str:
    """The client, as a keyed hash of its address: limits must tell clients apart, not keep
    their addresses (even in memory)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, (request.remote_addr or "").encode(), hashlib.sha256).hexdigest()[:20]


def rate_limited(setting: str, key: Callable[[], str] | None = None, methods: list[str] | None = None,
                 spread: int = 1):
    """Mark a view as limited by the config value `setting` ("1000 per minute"), counted per
    `key()` (default: per client); a view may have several. `spread`: in the store, count a
    key's window in that many items, each allowed its share (a site-wide key's one item would
    take every request of the site: past ~1,000 writes a second DynamoDB throttles it)."""
    def mark(view: Callable) -> Callable:
        view.rate_limits = [*getattr(view, "rate_limits", []), (setting, key, methods, spread)]
        return view
    return mark


def set_up_rate_limits(app: Flask) -> None:
    if not app.config["RATE_LIMITS"]:
        return
    uri = app.config["RATE_LIMIT_STORAGE"]
    counting = (MemoryWindows() if uri.startswith("memory://") else StoreWindows() if uri == "store://"
                else SharedWindows(uri))
    for endpoint, view in list(app.view_functions.items()):
        for setting, key, methods, spread in getattr(view, "rate_limits", []):
            if app.config[setting]:  # an empty setting: no such limit (and no cost per request)
                view = _limited(view, f"{endpoint}/{setting}", parse_rates(app.config[setting]),
                                key or client_id, methods, spread, counting)
        app.view_functions[endpoint] = view


class MemoryWindows:
    """Fixed-window counters in this process's memory. `limits` has them too, but its memory
    storage starts a timer thread to expire keys whenever the last one has ended: at a few
    hundred requests a second that was a tenth of an ingestion request's CPU. Here a window's
    counts are dropped when a later window begins."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[int, dict[tuple, int]] = {}  # window length (s) -> (scope, key, start) -> hits

    def hit(self, rate: Rate, scope: str, key: str, now: float, spread: int = 1) -> tuple[bool, float]:
        """Count one request at `now` (epoch seconds, the app's clock); returns whether it is
        within the rate and when its window ends. Counted exactly: `spread` is for the store."""
        length = rate.seconds
        start = now // length * length
        with self.lock:
            counts = self.counts.setdefault(length, {})
            if counts and next(iter(counts))[2] != start:  # a new window: the old counts are over
                counts = self.counts[length] = {k: n for k, n in counts.items() if k[2] == start}
            n = counts[scope, key, start] = counts.get((scope, key, start), 0) + 1
        return n <= rate.amount, start + length


class StoreWindows:
    """Fixed-window counters in the app's store (`store.hit_window`): on AWS, one count for all
    of a stage's Lambda containers. A window's item expires by itself.

    A write a request would be most of what a quiet site's request costs there, so a container
    reserves a limit's requests in chunks of 1 % (RESERVED_SHARE) of what an item allows: one
    write counts a chunk against the limit at once and the container lets that many through
    before it writes again. Nothing gets past a limit (a chunk that does not fit is granted
    only what is left); what a container reserved and did not use is lost to its window, at
    most a chunk each (the next window starts again). Limits under 100 an item (logins, the
    stats API) are counted a request at a time, exactly, as before."""

    RESERVED_SHARE = 100

    def __init__(self):
        self.lock = threading.Lock()
        self.reserved: dict[tuple[str, int], int] = {}  # (scope#seconds#key, window end) -> requests left

    def hit(self, rate: Rate, scope: str, key: str, now: float, spread: int = 1) -> tuple[bool, float]:
        """As MemoryWindows.hit; with `spread`, counted in one of that many items, chosen at
        random, each allowing its share of the rate."""
        start = int(now // rate.seconds * rate.seconds)
        name, end, share = f"{scope}#{rate.seconds}#{key}", start + rate.seconds, math.ceil(rate.amount / spread)
        with self.lock:
            left = self.reserved.get((name, end), 0)
            if left:
                self.reserved[name, end] = left - 1
                return True, end
        chunk = max(1, share // self.RESERVED_SHARE)
        item = name + (f"#{random.randrange(spread)}" if spread > 1 else "")
        granted = min(chunk, share - (get_store().hit_window(item, start, rate.seconds, chunk) - chunk))
        if granted > 1:
            with self.lock:  # what ended is dropped here, when a container reserves: seldom
                self.reserved = {k: n for k, n in self.reserved.items() if k[1] > now}
                self.reserved[name, end] = self.reserved.get((name, end), 0) + granted - 1
        return granted >= 1, end


class SharedWindows:
    """Fixed-window counters in a shared storage (`redis://`, `memcached://`: the `limits`
    library's URLs), exact across processes and machines."""

    def __init__(self, uri: str):
        from limits.storage import storage_from_string  # the single box's only (not on Lambda)
        from limits.strategies import FixedWindowRateLimiter
        self.counting = FixedWindowRateLimiter(storage_from_string(uri))

    def hit(self, rate: Rate, scope: str, key: str, now: float, spread: int = 1) -> tuple[bool, float]:
        """As MemoryWindows.hit, but windows follow the storage's clock (the `limits` library's)."""
        from limits import RateLimitItemPerSecond
        limit = RateLimitItemPerSecond(rate.amount, rate.seconds)
        allowed = self.counting.hit(limit, scope, key)
        return allowed, self.counting.get_window_stats(limit, scope, key).reset_time


def _limited(view: Callable, scope: str, limits: list[Rate], key: Callable[[], str], methods: list[str] | None,
             spread: int, counting: MemoryWindows | StoreWindows | SharedWindows) -> Callable:
    """The view, refusing with 429 (TooManyRequests with the limit and Retry-After) a request
    over any of its limits, counted per scope (the view and setting) and key()."""
    @wraps(view)
    def limited(*args, **kwargs):
        if methods is None or request.method in methods:
            identity, now = key(), now_ms() / 1000
            for limit in limits:
                allowed, reset_at = counting.hit(limit, scope, identity, now, spread)
                if not allowed:
                    raise TooManyRequests(str(limit), retry_after=max(1, math.ceil(reset_at - now)))
        return view(*args, **kwargs)
    return limited
