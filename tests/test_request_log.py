"""The server's log (app/request_log.py): one line per request with its status and time, every
line of a request tagged with its id, the id in the answer and on an error page, and nothing
in a line that should not be kept (addresses, query strings, tokens)."""
from __future__ import annotations

import logging
import re

import pytest

from app import create_app
from app.auth.links import create_link

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # logging is above the store

LINE = re.compile(r"^(GET|POST) (\S+) (\d{3}) (\d+\.\d) ms$")


def request_lines(caplog) -> list[tuple[str, str]]:
    """(request id, message) of each access line logged."""
    return [(record.request_id, record.getMessage()) for record in caplog.records if record.name == "app.requests"]


def test_each_request_is_one_line_with_method_path_status_time_and_its_id(anon_client, admin, caplog):
    caplog.set_level(logging.INFO, logger="app")
    response = anon_client.get("/login?next=/sites")
    (request_id, message), = request_lines(caplog)
    method, path, status, _ = LINE.fullmatch(message).groups()
    assert (method, path, status) == ("GET", "/login", "200")  # no query string
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert response.headers["X-Request-Id"] == request_id
    anon_client.get("/login")
    assert request_lines(caplog)[1][0] != request_id  # a new id per request


def test_a_not_found_and_an_api_error_are_logged_with_their_status(anon_client, caplog):
    caplog.set_level(logging.INFO, logger="app")
    anon_client.get("/no/such/page")
    anon_client.post("/api/events", data="not json", content_type="application/json")
    statuses = [LINE.fullmatch(message).group(3) for _, message in request_lines(caplog)]
    assert statuses == ["404", "400"]


def test_a_public_links_token_is_logged_as_its_pattern(anon_client, store, site, admin, clock, caplog):
    _, token = create_link(store, site.site_id, "Board", admin.user_id, clock.now_ms())
    caplog.set_level(logging.INFO, logger="app")
    assert anon_client.get(f"/share/{token}").status_code == 200
    assert anon_client.get("/share/not-a-link-of-anyone").status_code == 404  # refused before any view
    (_, seen), (missing_id, unknown) = request_lines(caplog)
    assert seen.startswith("GET /share/<token> 200 ") and unknown.startswith("GET /share/<token> 404 ")
    assert token not in caplog.text and "not-a-link" not in caplog.text and missing_id != "-"


def test_a_crash_logs_its_traceback_under_the_id_the_error_page_shows(app, anon_client, store, monkeypatch,
                                                                       caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a 500 page, not the exception
    def broken():
        raise RuntimeError("a bug in the store")
    monkeypatch.setattr(store, "check", broken)
    caplog.set_level(logging.INFO, logger="app")
    response = anon_client.get("/healthz")
    assert response.status_code == 500
    request_id = response.headers["X-Request-Id"]
    assert f"reference <code>{request_id}</code>" in response.get_data(as_text=True)
    crash = next(record for record in caplog.records if record.exc_info)
    assert crash.request_id == request_id and "a bug in the store" in crash.exc_text
    (line_id, message), = request_lines(caplog)
    assert line_id == request_id and message.startswith("GET /healthz 500 ")


def test_healthy_health_checks_are_not_logged_and_failing_ones_are(anon_client, store, monkeypatch, caplog):
    from app.store.base import StoreError
    caplog.set_level(logging.INFO, logger="app")
    assert anon_client.get("/healthz").status_code == 200
    assert request_lines(caplog) == []

    def down():
        raise StoreError("sqlite: disk I/O error")
    monkeypatch.setattr(store, "check", down)
    assert anon_client.get("/healthz").status_code == 503
    assert [message.split(" ")[:3] for _, message in request_lines(caplog)] == [["GET", "/healthz", "503"]]


@pytest.mark.parametrize("proxies, sent, kept", [
    (1, "0b7e4a65-3f2a-4c1d-9e8f-1234567890ab", True),  # Caddy's {http.request.uuid}
    (1, "bad id] INFO forged line", False),            # not an id: replaced
    (0, "0b7e4a65-3f2a-4c1d-9e8f-1234567890ab", False),  # no proxy trusted: anyone could send it
])
def test_a_trusted_proxys_request_id_is_kept(store, clock, proxies, sent, kept):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "PROXIES": proxies}, store=store, clock=clock)
    answered = app.test_client().get("/login", headers={"X-Request-Id": sent}).headers["X-Request-Id"]
    assert (answered == sent) is kept
    assert kept or re.fullmatch(r"[0-9a-f]{16}", answered)


def test_the_access_log_can_be_turned_off_keeping_ids_and_errors(store, clock, caplog):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "ACCESS_LOG": False}, store=store, clock=clock)
    caplog.set_level(logging.INFO, logger="app")
    response = app.test_client().get("/login")
    assert response.headers["X-Request-Id"] and request_lines(caplog) == []
