"""Secret API keys: made with a name and shown once, kept hashed, used by the stats API,
listed with their last use, rotated with a grace period, revoked (UI, API and CLI)."""
from __future__ import annotations

import re

import pytest

from app.auth import api_keys
from tests.conftest import T0, csrf_token
from tests.test_accounts import member

HOUR_MS = 3_600_000


def test_a_key_is_shown_once_and_kept_only_as_a_hash(store, site):
    key, secret = api_keys.create_key(store, site.site_id, " Grafana ", "ada@example.com", T0)
    assert secret.startswith("sk_") and len(secret) > 30
    assert key.name == "Grafana" and secret.startswith(key.prefix) and len(key.prefix) < len(secret) // 2
    [stored] = store.list_api_keys(site.site_id)
    assert secret not in repr(stored) and stored.key_hash == api_keys.key_hash(secret)
    with pytest.raises(api_keys.ApiKeyError):
        api_keys.create_key(store, site.site_id, "  ", "ada@example.com", T0)


def test_authentication_notes_the_last_use_once_a_minute(store, site):
    _, secret = api_keys.create_key(store, site.site_id, "CI", "cli", T0)
    assert api_keys.authenticate(store, secret, T0 + 1_000).last_used_ms == T0 + 1_000
    api_keys.authenticate(store, secret, T0 + 30_000)  # within the minute: not written again
    assert store.list_api_keys(site.site_id)[0].last_used_ms == T0 + 1_000
    api_keys.authenticate(store, secret, T0 + 61_000)
    assert store.list_api_keys(site.site_id)[0].last_used_ms == T0 + 61_000
    for wrong in ("sk_" + "x" * 32, secret[:-1], "pk_" + secret[3:], "", "sk_" + "a" * 200):
        assert api_keys.authenticate(store, wrong, T0) is None


def test_a_rotated_key_works_through_its_grace_period_and_a_revoked_one_stops(store, site):
    old, old_secret = api_keys.create_key(store, site.site_id, "CI", "cli", T0)
    new, new_secret = api_keys.rotate(store, old, "cli", T0 + HOUR_MS, grace_ms=2 * HOUR_MS)
    assert new.name == "CI" and new_secret != old_secret
    assert api_keys.authenticate(store, old_secret, T0 + 2 * HOUR_MS) is not None  # both work meanwhile
    assert api_keys.authenticate(store, new_secret, T0 + 2 * HOUR_MS) is not None
    assert api_keys.authenticate(store, old_secret, T0 + 3 * HOUR_MS) is None  # grace over
    assert api_keys.state(store.get_api_key(old.key_hash), T0 + 2 * HOUR_MS) == "expiring"
    assert api_keys.state(store.get_api_key(old.key_hash), T0 + 3 * HOUR_MS) == "expired"
    with pytest.raises(api_keys.ApiKeyError):
        api_keys.rotate(store, store.get_api_key(old.key_hash), "cli", T0 + 4 * HOUR_MS)
    api_keys.revoke(store, store.get_api_key(new.key_hash), "cli", T0 + 4 * HOUR_MS)
    assert api_keys.authenticate(store, new_secret, T0 + 4 * HOUR_MS) is None
    assert api_keys.state(store.get_api_key(new.key_hash), T0 + 4 * HOUR_MS) == "revoked"


# -- the stats API
@pytest.fixture
def secret(store, site):
    return api_keys.create_key(store, site.site_id, "CI", "cli", T0)[1]


@pytest.mark.parametrize("path", ["/api/stats?site=example&period=7d", "/api/realtime?site=example",
                                  "/api/stats?period=7d", "/api/realtime"])
def test_the_stats_api_takes_a_secret_key_as_bearer_or_header(anon_client, secret, path):
    for headers in ({"Authorization": f"Bearer {secret}"}, {"X-API-Key": secret}):
        answer = anon_client.get(path, headers=headers)
        assert answer.status_code == 200, answer.json
        assert answer.json["status"] == "success"


def test_the_stats_api_refuses_without_a_valid_key_of_the_site(anon_client, store, site, secret):
    from app.auth.sites import create_site
    other = create_site(store, "Other", ["other.example"], T0, site_id="other")
    cases = [({}, 401, "send a secret API key"),
             ({"Authorization": "Bearer sk_nope"}, 401, "unknown, revoked or expired"),
             ({"X-API-Key": site.tracker_key}, 401, "not the tracker key")]
    for headers, status, message in cases:
        answer = anon_client.get("/api/stats?site=example", headers=headers)
        assert (answer.status_code, answer.json["status"]) == (status, "error") and message in answer.json["message"]
    wrong_site = anon_client.get(f"/api/stats?site={other.site_id}", headers={"Authorization": f"Bearer {secret}"})
    assert wrong_site.status_code == 403 and "another site" in wrong_site.json["message"]


def test_a_logged_in_member_reads_the_api_of_their_sites_only(store, site, log_in):
    from app.auth.sites import create_site
    viewer = log_in(member(store, site, "viewer"))
    assert viewer.get("/api/stats?site=example").status_code == 200
    create_site(store, "Other", ["other.example"], T0, site_id="other")
    assert viewer.get("/api/stats?site=other").status_code == 404  # not theirs: as if absent
    assert viewer.get("/api/realtime").status_code == 400  # no key: the site must be named


# -- the settings page
def test_admins_create_rotate_and_revoke_keys_on_the_settings_page(store, site, log_in, clock):
    admin = log_in(member(store, site, "admin"))
    created = admin.post("/sites/example/keys", data={"name": "Grafana", "csrf_token": csrf_token(admin)})
    clock.advance(1)
    secret = re.search(r'<code class="secret" id="new-api-key">(sk_[^<]+)</code>', created.get_data(as_text=True)).group(1)
    assert admin.get("/api/stats?site=example", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page = admin.get("/sites/example/settings").get_data(as_text=True)
    assert secret not in page and "Grafana" in page and "api_key.create" in page  # listed, audited
    [key] = store.list_api_keys("example")
    rotated = admin.post(f"/sites/example/keys/{key.key_hash}/rotate", data={"csrf_token": csrf_token(admin)})
    new_secret = re.search(r'<code class="secret" id="new-api-key">(sk_[^<]+)</code>', rotated.get_data(as_text=True)).group(1)
    assert "expiring" in rotated.get_data(as_text=True)
    clock.advance(1)
    for one in (secret, new_secret):  # the grace period
        assert admin.get("/api/realtime", headers={"X-API-Key": one}).status_code == 200
    admin.post(f"/sites/example/keys/{key.key_hash}/revoke", data={"csrf_token": csrf_token(admin)})
    assert admin.get("/api/realtime", headers={"X-API-Key": secret}).status_code == 401
    assert [e.action for e in store.list_audit("example")][:3] == ["api_key.revoke", "api_key.rotate", "api_key.create"]
    assert all(secret not in e.detail and new_secret not in e.detail for e in store.list_audit("example"))


def test_viewers_cannot_manage_keys(store, site, log_in):
    viewer = log_in(member(store, site, "viewer"))
    assert viewer.post("/sites/example/keys", data={"name": "x", "csrf_token": csrf_token(viewer)}).status_code == 403
    assert store.list_api_keys("example") == []


def test_a_key_of_another_site_is_not_found_from_this_one(store, site, log_in):
    from app.auth.sites import create_site
    create_site(store, "Other", ["other.example"], T0, site_id="other")
    theirs, _ = api_keys.create_key(store, "other", "Theirs", "cli", T0)
    admin = log_in(member(store, site, "admin"))
    answer = admin.post(f"/sites/example/keys/{theirs.key_hash}/revoke", data={"csrf_token": csrf_token(admin)})
    assert answer.status_code == 404 and store.get_api_key(theirs.key_hash).revoked_ms is None


# -- the command line
def test_key_commands(app, store, site, clock):
    runner = app.test_cli_runner()
    with app.app_context():
        created = runner.invoke(args=["create-api-key", "example", "Backup job"])
        secret = created.output.strip().splitlines()[-1]
        [key] = store.list_api_keys("example")
        listed = runner.invoke(args=["list-api-keys", "example"])
        rotated = runner.invoke(args=["rotate-key", "example", key.prefix, "--grace-hours", "1"])
        new_secret = rotated.output.strip().splitlines()[-1]
        revoked = runner.invoke(args=["revoke-key", "example", api_keys.key_hash(new_secret)])
        missing = runner.invoke(args=["revoke-key", "example", "sk_nothing"])
    assert created.exit_code == 0 and api_keys.key_hash(secret) == key.key_hash
    assert key.prefix in listed.output and "active" in listed.output and "Backup job" in listed.output
    assert rotated.exit_code == 0 and store.get_api_key(key.key_hash).expires_ms == T0 + HOUR_MS
    assert revoked.exit_code == 0 and store.get_api_key(api_keys.key_hash(new_secret)).revoked_ms == T0
    assert missing.exit_code == 1 and "no key" in missing.output
    assert [e.actor for e in store.list_audit("example")] == ["cli"] * 3
