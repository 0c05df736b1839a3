"""Rate limits, with flask-limiter: ingestion per tracker key and client, login per client,
the stats API per key or user. A view asks for a limit with `@rate_limited(SETTING, key)`;
`set_up_rate_limits` applies them when the app is made.

Counters live in each process's memory (`LIVEINSIGHT_RATE_LIMIT_STORAGE=memory://`), so with
several gunicorn workers a client may get up to workers x the limit; a shared storage
(`redis://...`, `memcached://...`) makes it exact. On Lambda they are off: every container would
count on its own, so API Gateway's throttling limits there (see README).
"""
from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Callable

from flask import Flask, current_app, request


def client_id() -> str:
    """The client, as a keyed hash of its address: limits must tell clients apart, not keep
    their addresses (even in memory)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, (request.remote_addr or "").encode(), hashlib.sha256).hexdigest()[:20]


def rate_limited(setting: str, key: Callable[[], str] | None = None, methods: list[str] | None = None):
    """Mark a view as limited by the config value `setting` ("1000 per minute"), counted per
    `key()` (default: per client)."""
    def mark(view: Callable) -> Callable:
        view.rate_limit = (setting, key, methods)
        return view
    return mark


def set_up_rate_limits(app: Flask) -> None:
    if not app.config["RATE_LIMITS"]:
        return
    from flask_limiter import Limiter  # not in the Lambda package, where limits are off
    # No X-RateLimit headers on every answer (ingestion answers are many): a 429 says when to
    # retry (retry_after_s), and a 503's own Retry-After must not be overwritten.
    limiter = Limiter(client_id, app=app, storage_uri=app.config["RATE_LIMIT_STORAGE"],
                      strategy="fixed-window", headers_enabled=False)
    # flask-limiter checks each request twice: in a before_request hook (for app-wide and
    # blueprint limits, which are not used here) and in the limited view itself. The hook alone
    # costs about a fifth of a single-event ingestion, and runs on every dashboard poll too.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    for endpoint, view in list(app.view_functions.items()):
        if hasattr(view, "rate_limit"):
            setting, key, methods = view.rate_limit
            app.view_functions[endpoint] = limiter.limit(app.config[setting], key_func=key, methods=methods)(view)
    app.extensions["liveinsight.limiter"] = limiter


def retry_after_s() -> int:
    """Seconds until the limit this request broke lets it through again."""
    limiter = current_app.extensions.get("liveinsight.limiter")
    limit = limiter.current_limit if limiter else None
    return max(1, math.ceil(limit.reset_at - time.time())) if limit else 60
