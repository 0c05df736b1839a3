"""The tracker's own front door: an app that serves only what the snippet uses (SERVES =
"tracker", the tracker function on AWS), and a snippet that points at it (TRACKER_URL)."""
import html
import json

import pytest

from app import create_app
from app.auth.users import start_login
from tests.conftest import CHROME_UA


@pytest.fixture
def door(store, clock):
    """The tracker function's app: no login, no dashboard."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "SERVES": "tracker"}, store=store, clock=clock)
    return app.test_client()


def test_the_tracker_door_takes_events_and_serves_the_tracker(door, site, make_event, store):
    posted = door.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                       content_type="text/plain", headers={"User-Agent": CHROME_UA, "Origin": "https://example.com"})
    assert posted.status_code == 202 and posted.json["data"]["accepted"] == 1
    assert posted.headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert len(store.recent_events(site.site_id, 10)) == 1
    preflight = door.options("/api/events", headers={"Origin": "https://example.com",
                                                      "Access-Control-Request-Method": "POST"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://example.com"
    script = door.get("/tracker.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    script.close()
    assert door.get("/healthz").json == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/login", "/setup", "/sites/example", "/api/stats?site=example",
                                  "/api/realtime?site=example", "/api/openapi.json", "/account", "/static/favicon.svg"])
def test_the_tracker_door_opens_nothing_else(door, anon_client, site, path):
    with anon_client.get(path) as whole:  # the whole app answers it
        assert whole.status_code != 404, path
    with door.get(path) as response:
        assert response.status_code == 404, path
        assert "Set-Cookie" not in response.headers


def test_the_tracker_door_refuses_an_unknown_setting(store, clock):
    with pytest.raises(ValueError, match="LIVEINSIGHT_SERVES"):
        create_app({"TESTING": True, "SECRET_KEY": "k", "SERVES": "dashboard"}, store=store, clock=clock)


def test_the_snippet_points_at_the_tracker_door_when_there_is_one(store, clock, site, admin):
    for tracker_url, source in (("", "http://localhost/tracker.js"),
                                ("https://abc.lambda-url.us-east-1.on.aws/", "https://abc.lambda-url.us-east-1.on.aws/tracker.js")):
        app = create_app({"TESTING": True, "SECRET_KEY": "k", "TRACKER_URL": tracker_url}, store=store, clock=clock)
        browser = app.test_client()
        login = start_login(store, admin, clock.now_ms(), 3_600_000)
        with browser.session_transaction() as session:
            session.update(uid=admin.user_id, login=login)
        page = html.unescape(browser.get(f"/sites/{site.site_id}/settings").get_data(as_text=True))
        assert f'<script defer src="{source}" data-key="{site.tracker_key}"></script>' in page, tracker_url
