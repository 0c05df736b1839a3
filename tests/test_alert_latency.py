"""The single box, as `make run` serves it (gunicorn, two workers): a goal alert leaves seconds
after the event that reached it, through the aggregator and the alerts thread of the process
that leads the store, to a real webhook receiver on loopback."""
from __future__ import annotations

import statistics
import time
import uuid

import pytest

from app.alerts import settings as alert_settings
from app.auth.sites import create_site
from app.store.sqlite import SQLiteStore
from tests.server import Server

SITES = 20  # one "first conversion of the day" each: 20 alerts to time


@pytest.fixture
def served(tmp_path, receiver):
    server = Server(tmp_path, LIVEINSIGHT_WEBHOOKS_PRIVATE="on")
    store = SQLiteStore(str(server.db_path))
    store.create_schema()
    now = int(time.time() * 1000)
    sites = []
    for n in range(SITES):
        site = create_site(store, f"Shop {n}", ["example.com"], now, site_id=f"shop-{n}")
        alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "",
                                     alert_settings.goal_choices(site, []))
        alert_settings.add_webhook(store, site, receiver.url(f"/hook/{site.site_id}"), "json", now, allow_private=True)
        sites.append(site)
    store.close()
    server.start()
    yield server, sites
    server.stop()


def test_a_reached_goal_alert_arrives_within_seconds_of_its_event(served, receiver, record_property):
    server, sites = served
    delays = []
    for site in sites:
        sent = time.monotonic()
        status, _ = server.send_events(site, [{
            "event_id": uuid.uuid4().hex, "type": "conversion", "name": "Purchase", "value": 12,
            "timestamp": int(time.time() * 1000), "user_id": "buyer", "session_id": uuid.uuid4().hex,
            "url": "https://example.com/checkout"}])
        assert status == 202
        deadline = sent + 15
        while not any(r["path"] == f"/hook/{site.site_id}" for r in receiver.requests):
            assert time.monotonic() < deadline, f"no alert for {site.site_id} within 15 s:\n{server.log()}"
            time.sleep(0.01)
        delays.append(time.monotonic() - sent)
    p95 = statistics.quantiles(delays, n=20)[-1]
    record_property("alert_delay_median_s", round(statistics.median(delays), 3))
    record_property("alert_delay_p95_s", round(p95, 3))
    print(f"event -> webhook: median {statistics.median(delays):.3f} s, p95 {p95:.3f} s over {len(delays)} alerts")
    assert p95 <= 10
    assert len(receiver.requests) == SITES  # each alert once, though two workers run
