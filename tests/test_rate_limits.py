"""Rate limits: ingestion per tracker key and client, login per client, the stats API per key
or user; a 429 says when to retry. Limits do not depend on the store: SQLite only."""
from __future__ import annotations

import json
import re

import pytest

from app import create_app
from app.auth import api_keys
from tests.conftest import ADMIN_PASSWORD, T0
from tests.test_accounts import login

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])
LIMITS = {"RATE_LIMIT_INGEST": "3 per minute", "RATE_LIMIT_LOGIN": "2 per minute",
          "RATE_LIMIT_API": "2 per minute"}


@pytest.fixture
def app(store, clock):
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret", **LIMITS}, store=store, clock=clock)


def send(client, site, make_event, ip="198.51.100.7", key=None):
    return client.post("/api/events", data=json.dumps({"key": key or site.tracker_key, "events": [make_event()]}),
                       content_type="text/plain", environ_base={"REMOTE_ADDR": ip},
                       headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36",
                                "Origin": "https://example.com"})


def test_ingestion_is_limited_per_key_and_client_with_retry_after(anon_client, site, make_event, store):
    assert [send(anon_client, site, make_event).status_code for _ in range(3)] == [202] * 3
    refused = send(anon_client, site, make_event)
    assert refused.status_code == 429 and refused.json["status"] == "error"
    assert "3 per minute" in refused.json["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # the window resets within a minute (rounded up)
    # The tracker reads the answer (CORS) and backs off for Retry-After.
    assert refused.headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
    assert send(anon_client, site, make_event, ip="198.51.100.8").status_code == 202  # another client
    from app.auth.sites import create_site
    other = create_site(store, "Other", ["example.com"], T0, site_id="other")
    assert send(anon_client, other, make_event).status_code == 202  # another key
    assert len(store.recent_events("example", 10)) == 4  # nothing of the refused request was stored


def test_ingestion_is_limited_per_key_across_clients_where_set(app, anon_client, site, make_event, store):
    """A key's clients together (RATE_LIMIT_SITE, which the AWS stack sets): a flood from many
    addresses through one site's public key is refused before it takes every other site's share.
    Unset (the single box), there is no such limit."""
    assert [send(anon_client, site, make_event, ip=f"198.51.100.{n}").status_code for n in range(5)] == [202] * 5
    from app.auth.sites import create_site
    limited = create_app({**app.config, "RATE_LIMIT_SITE": "4 per minute"}, store=store,
                         clock=app.extensions["liveinsight.clock"]).test_client()
    answers = [send(limited, site, make_event, ip=f"198.51.100.{n}") for n in range(10, 15)]
    assert [a.status_code for a in answers] == [202] * 4 + [429]
    assert "4 per minute" in answers[-1].json["message"]
    other = create_site(store, "Other", ["example.com"], T0, site_id="other")
    assert send(limited, other, make_event, ip="198.51.100.9").status_code == 202  # another site's share


def test_login_is_limited_per_client(anon_client, admin):
    assert [login(anon_client, "admin@example.com", "wrong").status_code for _ in range(2)] == [401, 401]
    refused = login(anon_client, "admin@example.com", ADMIN_PASSWORD)  # even the right password
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many requests" in refused.get_data(as_text=True)
    assert anon_client.get("/login").status_code == 200  # the form itself is not limited


def test_current_password_checks_on_the_account_page_are_limited_per_user(app, admin, log_in):
    def change(client, current):
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").get_data(as_text=True)).group(1)
        return client.post("/account", data={"current": current, "new": "a new password",
                                              "new2": "a new password", "csrf_token": token})
    browser = log_in(admin)
    assert [change(browser, "guess one").status_code, change(browser, "guess two").status_code] == [400, 400]
    refused = change(log_in(admin), ADMIN_PASSWORD)  # another browser of the same user: same count
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert browser.get("/account").status_code == 200  # the page itself is not limited


def test_the_stats_api_is_limited_per_key(anon_client, store, site):
    one = api_keys.create_key(store, site.site_id, "one", "cli", T0)[1]
    second = api_keys.create_key(store, site.site_id, "two", "cli", T0)[1]
    assert [anon_client.get("/api/realtime", headers={"X-API-Key": one}).status_code for _ in range(3)] == [200, 200, 429]
    assert anon_client.get("/api/realtime", headers={"X-API-Key": second}).status_code == 200


def test_limits_can_be_turned_off(store, clock, site, make_event):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "RATE_LIMITS": False, **LIMITS}, store=store, clock=clock)
    client = app.test_client()
    assert {send(client, site, make_event).status_code for _ in range(5)} == {202}

