"""A known history: five visits by three visitors over three local days of a site in
Europe/Paris (UTC+1 in November), sent through the real ingestion pipeline."""
from datetime import datetime, timezone

import pytest

from app.auth.sites import create_site
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from tests.conftest import T0

WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/130.0.0.0 Mobile Safari/537.36")
GB, US, IE = "81.2.69.1", "8.8.8.8", "2a00:1450:4001:80b::200e"


def utc(text):
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


# (visitor, session, client, referrer, [(UTC time, type, path, extra)])
HISTORY = [
    ("A", "v1", Client(GB, WINDOWS), "https://www.google.com/", [   # Mon 16, 10:00 Paris
        ("2026-11-16T09:00:00", "page_view", "/", {}),
        ("2026-11-16T09:00:30", "heartbeat", "/", {}),
        ("2026-11-16T09:01:00", "page_view", "/pricing", {}),
        ("2026-11-16T09:01:20", "click", "/pricing", {}),
        ("2026-11-16T09:02:00", "heartbeat", "/pricing", {})]),
    ("B", "v2", Client(US, IPHONE), "https://t.co/x", [              # Mon 16, 23:30 Paris
        ("2026-11-16T22:30:00", "page_view", "/blog", {})]),
    ("A", "v3", Client(GB, WINDOWS), "", [                           # Tue 17, 00:30 Paris
        ("2026-11-16T23:30:00", "page_view", "/", {}),
        ("2026-11-16T23:30:30", "heartbeat", "/", {})]),
    ("C", "v4", Client(IE, ANDROID), "", [                           # Tue 17, 15:00 Paris
        ("2026-11-17T14:00:00", "page_view", "/docs", {}),
        ("2026-11-17T14:00:40", "page_view", "/docs/install", {}),
        ("2026-11-17T14:01:40", "heartbeat", "/docs/install", {})]),
    ("B", "v5", Client(US, IPHONE), "", [                            # Wed 18, 09:00 Paris
        ("2026-11-18T08:00:00", "page_view", "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=autumn", {}),
        ("2026-11-18T08:00:10", "page_view", "/signup", {}),
        ("2026-11-18T08:00:20", "conversion", "/signup", {"name": "signup", "value": 29})]),
]


@pytest.fixture
def paris(store, settle):
    site = create_site(store, "Paris", ["example.com"], T0, timezone="Europe/Paris", site_id="paris")
    for visitor, session, client, referrer, events in HISTORY:
        for i, (when, kind, path, extra) in enumerate(events):
            event = {"event_id": f"event-{session}-{i:04d}", "type": kind, "timestamp": utc(when),
                     "user_id": visitor, "session_id": session, "url": f"https://example.com{path}",
                     "referrer": referrer if i == 0 else "https://example.com/", **extra}
            result = record_batch(store, site, [event], client, utc(when) + 500)
            assert result.accepted == 1, result
    settle()
    return site


