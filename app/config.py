"""Settings from environment variables, with safe local defaults."""
from __future__ import annotations

import os


class Config:
    @classmethod
    def settings(cls) -> dict:
        """Every setting by name: what an app starts from (create_app), or, on Lambda, what a
        function without one reads."""
        return {name: getattr(cls, name) for name in dir(cls) if name.isupper()}

    # The instance folder (the secret key, the demo login): made 0700. Default: instance/ here.
    INSTANCE_PATH = os.path.abspath(os.environ.get("LIVEINSIGHT_INSTANCE",
                                                   os.path.join(os.path.dirname(__file__), "..", "instance")))
    # Where data lives: sqlite:///path.db or dynamodb://<table-prefix>. Default: the instance
    # folder's liveinsight.db, wherever the command runs from.
    STORE_URL = os.environ.get("LIVEINSIGHT_STORE", f"sqlite:///{INSTANCE_PATH}/liveinsight.db")
    # Largest request body and batch the ingestion API takes (the tracker sends <= 50 events).
    MAX_CONTENT_LENGTH = int(os.environ.get("LIVEINSIGHT_MAX_BODY_BYTES", 256 * 1024))
    MAX_BATCH_EVENTS = int(os.environ.get("LIVEINSIGHT_MAX_BATCH_EVENTS", 100))
    # The single box purges expired data from a background thread; Lambda uses a schedule.
    RETENTION_INTERVAL_S = int(os.environ.get("LIVEINSIGHT_RETENTION_INTERVAL_S", 3600))
    RUN_RETENTION_THREAD = os.environ.get("LIVEINSIGHT_RETENTION_THREAD", "1") == "1"
    # The site the /demo pages track (created by `flask seed-demo` / `make run`).
    DEMO_SITE_ID = os.environ.get("LIVEINSIGHT_DEMO_SITE", "demo")
    JSON_SORT_KEYS = False
    # Signs login sessions and CSRF tokens. Unset on the single box: a random key is made once
    # and kept in instance/secret_key (shared by the workers). Required on Lambda.
    SECRET_KEY = os.environ.get("LIVEINSIGHT_SECRET_KEY") or None
    SESSION_COOKIE_NAME = "liveinsight_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = int(os.environ.get("LIVEINSIGHT_SESSION_DAYS", 14)) * 86_400
    # CSRF tokens live as long as the login session, so a dashboard left open still logs out.
    WTF_CSRF_TIME_LIMIT = None
    # Rate limits (app/limits.py): "N per second|minute|hour|day", several joined by ";".
    RATE_LIMITS = os.environ.get("LIVEINSIGHT_RATE_LIMITS", "on") != "off"
    RATE_LIMIT_STORAGE = os.environ.get("LIVEINSIGHT_RATE_LIMIT_STORAGE", "memory://")
    RATE_LIMIT_INGEST = os.environ.get("LIVEINSIGHT_RATE_LIMIT_INGEST", "1000 per minute")  # per key and client
    # Per tracker key from every client together: AWS's stack sets it (a site's share of the
    # stage's throttle); empty, no such limit (the single box: its CPU is the limit).
    RATE_LIMIT_SITE = os.environ.get("LIVEINSIGHT_RATE_LIMIT_SITE", "")
    RATE_LIMIT_LOGIN = os.environ.get("LIVEINSIGHT_RATE_LIMIT_LOGIN", "10 per minute; 50 per hour")  # per client
    RATE_LIMIT_API = os.environ.get("LIVEINSIGHT_RATE_LIMIT_API", "120 per minute")  # per key or user
    # Rotated API keys keep working this long, so what uses them can be changed meanwhile.
    API_KEY_GRACE_S = int(os.environ.get("LIVEINSIGHT_API_KEY_GRACE_S", 24 * 3600))
    # How many reverse proxies (nginx, a load balancer) stand in front of the app and set
    # X-Forwarded-For/-Proto/-Host: 0 trusts none of those headers.
    PROXIES = int(os.environ.get("LIVEINSIGHT_PROXIES", 0))
    # Whether the server pushes the realtime page's widgets over Server-Sent Events: app/server.py
    # (gunicorn, the single box) turns it on; elsewhere (Lambda, tests' WSGI servers) the page polls.
    LIVE_PUSH = False
    # On AWS: the WebSocket API the realtime page connects to for pushes (app/live_sockets.py),
    # wss://<id>.execute-api.<region>.amazonaws.com/<stage>; template.yaml sets it. Empty: no socket.
    LIVE_SOCKET_URL = os.environ.get("LIVEINSIGHT_LIVE_SOCKET_URL", "")
    # One line per request in the server's log (app/request_log.py); "off" keeps errors only.
    ACCESS_LOG = os.environ.get("LIVEINSIGHT_ACCESS_LOG", "on") != "off"
    # Alerts (app/alerts/): email through this SMTP server (smtp://host:25, smtp+starttls://user:pass@host:587
    # or smtps://user:pass@host:465; unset: no email), from this sender (on AWS: through Amazon SES, from
    # this sender, which SES has verified); links in alerts begin with the public URL; webhooks may
    # reach private addresses (a LAN) only when allowed.
    SMTP_URL = os.environ.get("LIVEINSIGHT_SMTP_URL", "")
    MAIL_FROM = os.environ.get("LIVEINSIGHT_MAIL_FROM", "")
    PUBLIC_URL = os.environ.get("LIVEINSIGHT_PUBLIC_URL", "http://127.0.0.1:8000")
    # How long a request may spend making a funnel's or journey's digests of months that have
    # none yet (a first report over a year, filtered): past it, the page says how far it got and
    # asks again, the API and CSV answer 503 with Retry-After (app/analytics/summaries.py).
    REPORT_BUDGET_S = float(os.environ.get("LIVEINSIGHT_REPORT_BUDGET_S", 8))
    # Where the snippet loads tracker.js from, and so where the tracker sends its events (the
    # script's origin): on AWS, the tracker function's URL (template.yaml), which API Gateway
    # does not meter; empty: this app's own address.
    TRACKER_URL = os.environ.get("LIVEINSIGHT_TRACKER_URL", "")
    # "tracker": answer only what the snippet uses (tracker.js, /api/events, /healthz), as the
    # tracker function does on AWS; "all": everything.
    SERVES = os.environ.get("LIVEINSIGHT_SERVES", "all")
    WEBHOOKS_PRIVATE = os.environ.get("LIVEINSIGHT_WEBHOOKS_PRIVATE", "off") == "on"
