"""POST /api/events through the Flask test client: success, partial batches and every error."""
import json

import pytest

from app.store.base import StoreError
from tests.conftest import CHROME_UA

UA = {"User-Agent": CHROME_UA}


def post(client, body, key=None, origin=None, content_type="application/json", raw=False, **headers):
    headers = {**UA, **headers}
    if key:
        headers["X-API-Key"] = key
    if origin:
        headers["Origin"] = origin
    data = body if raw else json.dumps(body)
    return client.post("/api/events", data=data, headers=headers, content_type=content_type)


def test_batch_is_accepted(client, site, make_event):
    response = post(client, {"events": [make_event(), make_event(type="heartbeat")]}, key=site.tracker_key)
    assert response.status_code == 202
    assert response.json == {"status": "success", "data": {
        "accepted": 2, "duplicates": 0, "dropped": {}, "rejected": []}}


def test_the_answer_carries_a_browsers_progress_in_funnels_across_visits(client, site, make_event, store, clock):
    """Li-Carry (readable cross-origin): what the tracker keeps and sends back as each event's
    `carry`; empty for a site without funnels across visits, and a bad carry is ignored."""
    first = post(client, {"events": [make_event(url="https://example.com/a")]}, key=site.tracker_key,
                 origin="https://example.com")
    assert first.status_code == 202 and first.headers["Li-Carry"] == ""
    site.funnels = [{"id": "f1", "name": "F", "window_days": 3, "created_ms": clock.now_ms(),
                     "steps": [{"kind": "page", "match": "/a"}, {"kind": "page", "match": "/b"},
                               {"kind": "page", "match": "/c"}]}]
    store.update_site(site)
    client.application.extensions["liveinsight.sites_by_key"].forget()
    response = post(client, {"events": [make_event(url="https://example.com/a"), make_event(url="https://example.com/b")]},
                    key=site.tracker_key, origin="https://example.com")
    assert response.status_code == 202 and "carry" not in response.json["data"]
    assert response.headers["Li-Carry"] == f"f1.2.{clock.now_ms() // 1000}"
    assert "Li-Carry" in response.headers["Access-Control-Expose-Headers"]
    done = post(client, {"events": [make_event(url="https://example.com/c", carry=response.headers["Li-Carry"])]},
                key=site.tracker_key)
    assert done.headers["Li-Carry"] == ""  # the journey is over
    odd = post(client, {"events": [make_event(carry=["not", "text"]), make_event(carry="x" * 401)]}, key=site.tracker_key)
    assert odd.json["data"]["accepted"] == 2 and odd.headers["Li-Carry"] == ""


def test_single_event_object_is_accepted(client, site, make_event):
    response = post(client, make_event(), key=site.tracker_key)
    assert response.status_code == 202 and response.json["data"]["accepted"] == 1


def test_sendbeacon_text_plain_with_key_in_body(client, site, make_event, store):
    body = {"key": site.tracker_key, "events": [make_event()]}
    response = post(client, body, content_type="text/plain;charset=UTF-8",
                    origin="https://example.com")
    assert response.status_code == 202
    assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert len(store.recent_events(site.site_id, 10)) == 1


def test_bare_array_of_events_with_header_key(client, site, make_event):
    response = post(client, [make_event(), make_event()], key=site.tracker_key)
    assert response.status_code == 202 and response.json["data"]["accepted"] == 2


def test_retried_batch_is_idempotent(client, site, make_event):
    batch = {"events": [make_event(), make_event()]}
    post(client, batch, key=site.tracker_key)
    again = post(client, batch, key=site.tracker_key)
    assert again.status_code == 202
    assert (again.json["data"]["accepted"], again.json["data"]["duplicates"]) == (0, 2)


def test_invalid_events_are_reported_and_valid_ones_kept(client, site, make_event, store):
    events = [make_event(), make_event(type="bogus"), "not an object", make_event(url="ftp://x")]
    response = post(client, {"events": events}, key=site.tracker_key)
    assert response.status_code == 202
    data = response.json["data"]
    assert data["accepted"] == 1
    assert [r["index"] for r in data["rejected"]] == [1, 2, 3]
    assert data["rejected"][0]["error"].startswith("type: Must be one of")
    assert data["rejected"][1]["error"] == "an event must be a JSON object"
    assert len(store.recent_events(site.site_id, 10)) == 1


def test_bot_events_are_dropped_and_counted(client, site, make_event):
    response = post(client, {"events": [make_event()]}, key=site.tracker_key,
                    **{"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert response.status_code == 202
    assert response.json["data"] == {"accepted": 0, "duplicates": 0, "dropped": {"bot": 1}, "rejected": []}


@pytest.mark.parametrize("body, message", [
    (b"", "empty body"),
    (b"{not json", "body is not valid JSON"),
    (b"\xff\xfe", "body is not valid JSON"),
    (b"42", "body must be a JSON object or an array of events"),
    (b'{"events": {"a": 1}}', "'events' must be an array"),
    (b'{"events": []}', "no events in the batch"),
])
def test_bad_body_is_400_with_json_error(client, site, body, message):
    response = post(client, body, key=site.tracker_key, raw=True)
    assert response.status_code == 400
    assert response.json["status"] == "error"
    assert message in response.json["message"]


def test_missing_key_is_401(client, site, make_event):
    response = post(client, {"events": [make_event()]})
    assert response.status_code == 401
    assert response.json == {"status": "error",
                             "message": "missing tracker key: send it in X-API-Key or a 'key' field"}


def test_unknown_key_is_401_readable_by_the_page(client, site, make_event):
    response = post(client, {"events": [make_event()]}, key="pk_nope", origin="https://example.com")
    assert response.status_code == 401 and response.json["message"] == "unknown tracker key"
    assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"


@pytest.mark.parametrize("origin, status", [
    ("https://example.com", 202),
    ("https://www.example.com", 202),
    ("http://shop.example.com:8080", 202),
    ("https://evil.com", 403),
    ("https://example.com.evil.com", 403),
    ("https://notexample.com", 403),
    ("null", 403),  # a sandboxed iframe, data: or file: page: any site could post for this one
])
def test_origin_must_be_one_of_the_sites_domains(client, site, make_event, store, origin, status):
    response = post(client, {"events": [make_event()]}, key=site.tracker_key, origin=origin)
    assert response.status_code == status
    if status == 403:
        assert response.json["status"] == "error"
        assert store.recent_events(site.site_id, 10) == []


def test_body_over_the_limit_is_413(client, site, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = post(client, {"events": [], "pad": "x" * 2000}, key=site.tracker_key)
    assert response.status_code == 413
    assert response.json["status"] == "error"


def test_a_chunked_body_over_the_limit_is_413_too(client, site, app):
    """No Content-Length (Transfer-Encoding: chunked): the body is read up to the limit only."""
    import io
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = b'{"events": [' + b" " * limit + b"]}"
    response = client.post("/api/events", input_stream=io.BytesIO(body), content_type="application/json",
                           headers={**UA, "X-API-Key": site.tracker_key, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413 and response.json["status"] == "error"


def test_too_many_events_is_413(client, site, make_event, app):
    app.config["MAX_BATCH_EVENTS"] = 3
    response = post(client, {"events": [make_event() for _ in range(4)]}, key=site.tracker_key)
    assert response.status_code == 413
    assert response.json["message"] == "at most 3 events per request"


def test_store_failure_is_503_with_retry_after(client, site, make_event, store, monkeypatch):
    def broken(events):
        raise StoreError("disk on fire")
    monkeypatch.setattr(store, "append_events", broken)
    response = post(client, {"events": [make_event()]}, key=site.tracker_key, origin="https://example.com")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["status"] == "error"
    # The tracker must be able to read the status and Retry-After cross-origin.
    assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After, Li-Carry"


def test_preflight_for_a_site_domain(client, site):
    response = client.options("/api/events", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Vary"] == "Origin"


def test_preflight_for_a_foreign_origin_is_refused(client, site):
    response = client.options("/api/events", headers={
        "Origin": "https://evil.com", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.json["status"] == "error"


def test_wrong_method_is_json_405(client):
    response = client.get("/api/events")
    assert response.status_code == 405 and response.json["status"] == "error"


def test_ingestion_keeps_sites_for_five_seconds_and_forgets_them_when_edited_here(client, store, site, make_event,
                                                                                    clock, app):
    """Every ingestion request looks its site up by key: kept 5 s (SitesByKey)."""
    from app.auth.sites import set_privacy
    from tests.conftest import csrf_token
    gpc = {"Sec-GPC": "1"}
    assert post(client, {"events": [make_event()]}, key=site.tracker_key, **gpc).json["data"]["accepted"] == 1
    set_privacy(store, site, False, True, [])  # changed by another process
    assert post(client, {"events": [make_event()]}, key=site.tracker_key, **gpc).json["data"]["accepted"] == 1
    clock.advance(5_000)
    assert post(client, {"events": [make_event()]}, key=site.tracker_key, **gpc).json["data"]["dropped"] == {"gpc": 1}
    # changed through this process's settings page: at once
    assert client.post(f"/sites/{site.site_id}/privacy", data={"csrf_token": csrf_token(client)}).status_code == 302
    assert post(client, {"events": [make_event()]}, key=site.tracker_key, **gpc).json["data"]["accepted"] == 1
