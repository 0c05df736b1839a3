"""Headers that make the browser enforce the app's promises, and a trusted reverse proxy."""
from __future__ import annotations

import json

import pytest

from app import create_app
from app.auth import links
from tests.conftest import CHROME_UA, T0, csrf_token

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # nothing here depends on the store


def policy(response) -> dict[str, str]:
    return {part.split()[0]: part.partition(" ")[2] for part in response.headers["Content-Security-Policy"].split("; ")}


@pytest.mark.parametrize("path", ["/sites/example", "/sites/example/realtime", "/sites/example/settings",
                                  "/account", "/api/stats?site=example"])
def test_every_page_has_a_strict_policy_and_cannot_be_framed(client, site, path):
    response = client.get(path)
    assert response.status_code == 200
    csp = policy(response)
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"  # no inline script or style
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


@pytest.mark.parametrize("path", [
    "/sites/example", "/sites/example/realtime", "/sites/example/settings", "/account",
    "/sites/example/widgets/current-visitors", "/sites/example/reports/pages.csv",
    "/api/stats?site=example", "/api/realtime?site=example"])
def test_no_answer_about_a_site_or_an_account_is_kept_by_a_cache(client, site, path):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_secrets_shown_once_are_not_kept_by_a_cache(client, site):
    token = csrf_token(client)
    for path, data in (("/sites/example/keys", {"name": "Grafana"}), ("/sites/example/links", {"label": "TV"})):
        response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", path


def test_static_files_and_the_tracker_stay_cacheable(anon_client):
    for path in ("/tracker.js", "/static/css/app.css"):
        with anon_client.get(path) as response:
            assert response.status_code == 200 and "no-store" not in response.headers.get("Cache-Control", "")


def test_pages_have_no_inline_script_or_style(client, site):
    for path in ("/sites/example", "/sites/example/realtime", "/sites/example/settings"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert "<script " not in html.replace('<script defer src="/static/', "")


def test_a_public_link_may_be_embedded(store, site, anon_client):
    _, token = links.create_link(store, "example", "TV", "u1", T0)
    response = anon_client.get(f"/share/{token}")
    assert response.status_code == 200
    assert policy(response)["frame-ancestors"] == "*" and "X-Frame-Options" not in response.headers


def test_hsts_over_https(client, site):
    response = client.get("/sites/example", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_behind_a_trusted_proxy_the_forwarded_client_and_scheme_count(store, clock, site, make_event):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "PROXIES": 1}, store=store, clock=clock)
    client = app.test_client()
    sent = client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                       content_type="text/plain",
                       headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "81.2.69.160",
                                "X-Forwarded-Proto": "https"})
    assert sent.status_code == 202
    [event] = store.recent_events(site.site_id, 1)
    assert (event["ip"], event["country"]) == ("81.2.69.0", "GB")  # the visitor, not the proxy
    assert sent.headers["Strict-Transport-Security"]  # the proxy said HTTPS
    # Without the setting, forwarded headers are not trusted (anyone can send them).
    untrusted = create_app({"TESTING": True, "SECRET_KEY": "x"}, store=store, clock=clock).test_client()
    untrusted.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                   content_type="text/plain", headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "81.2.69.160"})
    assert sorted(e["ip"] for e in store.recent_events(site.site_id, 2)) == ["127.0.0.0", "81.2.69.0"]
