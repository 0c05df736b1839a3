"""Live push on AWS (app/live_sockets.py): the realtime page's ticket, the WebSocket API's
$connect and $disconnect through the socket function, and the stream function posting each
folded site's snapshot to its sockets, under moto (API Gateway's management API included)."""
from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError

from app import lambda_handlers as handlers
from app import live_sockets
from app.auth import links
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.store.base import LiveSocket, Membership, StoreError, User
from tests.conftest import CHROME_UA
from tests.dynamodb_stream import stream_records

SOCKET_URL = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"
on_dynamodb = pytest.mark.parametrize("backend", ["dynamodb"])


@pytest.fixture
def sockets_on(app):
    app.config["LIVE_SOCKET_URL"] = SOCKET_URL
    return app


def test_a_members_realtime_page_gets_a_ticket_and_may_connect_to_the_socket(sockets_on, client, site, store, clock):
    page = client.get(f"/sites/{site.site_id}/realtime")
    html = page.get_data(as_text=True)
    assert f'data-live-socket="/sites/{site.site_id}/live/socket"' in html
    assert "Updates as visitors arrive" in html
    assert "connect-src 'self' wss://abc123.execute-api.us-east-1.amazonaws.com;" in page.headers["Content-Security-Policy"]
    answer = client.get(f"/sites/{site.site_id}/live/socket")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    url = answer.get_json()["url"]
    assert url.startswith(SOCKET_URL + "?ticket=")
    assert live_sockets.ticket_holder(["test-secret"], url.split("ticket=", 1)[1]) == (site.site_id, "admin-1", "en")
    korean = client.get(f"/sites/{site.site_id}/live/socket", headers={"Accept-Language": "ko"}).get_json()["url"]
    assert live_sockets.ticket_holder(["test-secret"], korean.split("ticket=", 1)[1])[2] == "ko"  # the page's
    assert live_sockets.ticket_holder(["another-key"], url.split("ticket=", 1)[1]) is None


def test_a_public_links_realtime_page_gets_a_ticket_naming_the_link(sockets_on, anon_client, site, store, clock):
    _, token = links.create_link(store, site.site_id, "TV", "admin-1", clock.now_ms())
    shared = anon_client.get(f"/share/{token}/realtime").get_data(as_text=True)
    assert f'data-live-socket="/share/{token}/live/socket"' in shared
    url = anon_client.get(f"/share/{token}/live/socket").get_json()["url"]
    assert live_sockets.ticket_holder(["test-secret"], url.split("ticket=", 1)[1]) == (
        site.site_id, live_sockets.LINK_VIEWER + links.token_hash(token), "en")
    assert anon_client.get(f"/sites/{site.site_id}/live/socket").status_code == 302  # a member's: to the login


def test_servers_without_a_socket_poll(app, client, site):
    page = client.get(f"/sites/{site.site_id}/realtime")
    assert "data-live-socket" not in page.get_data(as_text=True)
    assert "Updates every 5 seconds" in page.get_data(as_text=True)
    assert "connect-src 'self';" in page.headers["Content-Security-Policy"]
    assert client.get(f"/sites/{site.site_id}/live/socket").status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_single_box_keeps_no_sockets(store, site):
    with pytest.raises(StoreError, match="event streams"):
        store.live_sockets(site.site_id)


# ---------------------------------------------------------------- the store (DynamoDB)
@on_dynamodb
def test_sockets_are_kept_by_site_and_forgotten_by_connection(store, site, clock):
    now = clock.now_ms()
    store.add_live_socket(LiveSocket("c1", site.site_id, "u1", now))
    store.add_live_socket(LiveSocket("c2", site.site_id, "u2", now + 1))
    store.add_live_socket(LiveSocket("c3", "other", "u1", now))
    assert [s.connection_id for s in store.live_sockets(site.site_id)] == ["c1", "c2"]
    assert store.drop_live_socket("c1") == LiveSocket("c1", site.site_id, "u1", now)
    assert store.drop_live_socket("c1") is None
    assert [s.connection_id for s in store.live_sockets(site.site_id)] == ["c2"]
    store.delete_site(site.site_id)  # its sockets go with it; a late $disconnect finds nothing to do
    assert store.live_sockets(site.site_id) == []
    assert store.drop_live_socket("c2") is not None and store.drop_live_socket("c2") is None


@on_dynamodb
def test_a_site_is_pushed_at_most_once_a_second_however_many_ask(store, site, clock):
    now = clock.now_ms()
    assert store.claim_live_push(site.site_id, now, 1_000)
    assert not store.claim_live_push(site.site_id, now + 999, 1_000)
    assert store.claim_live_push("other", now + 999, 1_000)
    assert store.claim_live_push(site.site_id, now + 1_000, 1_000)


# ---------------------------------------------------------------- $connect and $disconnect
@pytest.fixture
def socket_function(store, monkeypatch):
    """The socket function's handler against the test's store, its session secret in moto."""
    import boto3
    arn = boto3.client("secretsmanager").create_secret(Name="session", SecretString="current-key")["ARN"]
    secret = handlers.SessionSecret(arn)
    monkeypatch.setattr(handlers, "_store", lambda: store)
    monkeypatch.setattr(handlers, "_session_secret", lambda: secret)
    return arn


def socket_event(route: str, connection_id: str, ticket: str | None = None) -> dict:
    event = {"requestContext": {"routeKey": route, "eventType": route.strip("$").upper(),
                                "connectionId": connection_id, "stage": "prod"}}
    if ticket is not None:
        event["queryStringParameters"] = {"ticket": ticket}
    return event


@on_dynamodb
def test_connect_keeps_a_member_or_link_with_a_good_ticket_and_refuses_the_rest(socket_function, store, site, clock, monkeypatch):
    import boto3
    store.create_user(User("u1", "member@example.com", "x", clock.now_ms()))
    store.put_membership(Membership(site.site_id, "u1", "viewer", clock.now_ms()))
    store.create_user(User("u2", "stranger@example.com", "x", clock.now_ms()))

    def connect(connection_id, ticket):
        return handlers.live_socket(socket_event("$connect", connection_id, ticket), None)["statusCode"]
    assert connect("c1", live_sockets.ticket("current-key", site.site_id, "u1", "en")) == 200
    assert [(s.connection_id, s.viewer) for s in store.live_sockets(site.site_id)] == [("c1", "u1")]
    refused = {
        "no ticket": None, "forged": "x.y.z",
        "another key": live_sockets.ticket("another-key", site.site_id, "u1", "en"),
        "not a member": live_sockets.ticket("current-key", site.site_id, "u2", "en"),
        "no such user": live_sockets.ticket("current-key", site.site_id, "nobody", "en"),
        "no such site": live_sockets.ticket("current-key", "gone", "u1", "en"),
    }
    assert {why: connect(f"c-{why}", ticket) for why, ticket in refused.items()} == {why: 403 for why in refused}
    # A key rotated since the page asked still opens; a ticket older than TICKET_MAX_AGE_S does not.
    old_ticket = live_sockets.ticket("current-key", site.site_id, "u1", "en")
    boto3.client("secretsmanager").put_secret_value(SecretId=socket_function, SecretString="next-key")
    handlers._session_secret().read_at = float("-inf")
    assert connect("c2", old_ticket) == 200
    monkeypatch.setattr(live_sockets, "TICKET_MAX_AGE_S", -1)
    assert connect("c3", live_sockets.ticket("next-key", site.site_id, "u1", "en")) == 403
    # A member removed meanwhile is refused at the next connection.
    monkeypatch.setattr(live_sockets, "TICKET_MAX_AGE_S", 60)
    store.delete_membership(site.site_id, "u1")
    assert connect("c4", live_sockets.ticket("next-key", site.site_id, "u1", "en")) == 403
    assert sorted(s.connection_id for s in store.live_sockets(site.site_id)) == ["c1", "c2"]

    # A public link's page connects while the link is not revoked (and only to its site).
    _, token = links.create_link(store, site.site_id, "TV", "u1", clock.now_ms())
    by_link = live_sockets.LINK_VIEWER + links.token_hash(token)
    assert connect("c5", live_sockets.ticket("next-key", site.site_id, by_link, "en")) == 200
    assert connect("c6", live_sockets.ticket("next-key", "other-site", by_link, "en")) == 403
    store.revoke_public_link(links.token_hash(token), clock.now_ms())
    assert connect("c7", live_sockets.ticket("next-key", site.site_id, by_link, "en")) == 403
    assert handlers.live_socket(socket_event("$disconnect", "c5"), None)["statusCode"] == 200
    assert handlers.live_socket(socket_event("$disconnect", "c1"), None)["statusCode"] == 200
    assert handlers.live_socket(socket_event("$disconnect", "never-connected"), None)["statusCode"] == 200
    assert [s.connection_id for s in store.live_sockets(site.site_id)] == ["c2"]
    assert handlers.live_socket(socket_event("$default", "c2"), None)["statusCode"] == 400


# ---------------------------------------------------------------- the stream function's pushes
def posted(connection_id: str) -> bytes:
    """What moto's API Gateway management API received for a connection."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID
    connections = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].connections
    return b"".join(c.data for id, c in connections.items() if unquote(id) == connection_id)  # as in the URL


@on_dynamodb
def test_a_folded_batch_is_pushed_to_the_sites_sockets(store, site, clock, make_event, monkeypatch):
    monkeypatch.setenv("LIVEINSIGHT_LIVE_SOCKET_URL", SOCKET_URL)
    monkeypatch.setattr(handlers, "_store", lambda: store)
    for cached in (handlers._connections, handlers._render_app):
        cached.cache_clear()
    rendered = []
    render = handlers._render_snapshot
    monkeypatch.setattr(handlers, "_render_snapshot",
                        lambda site_id, language: rendered.append(site_id) or render(site_id, language))
    now = int(time.time() * 1000)  # the function renders at the real time
    store.add_live_socket(LiveSocket("watching", site.site_id, "admin-1", now))

    record_batch(store, site, [make_event(url="https://example.com/pushed-page", timestamp=now)],
                 Client("198.51.100.23", CHROME_UA), now)
    assert handlers.stream({"Records": stream_records(store)}, None) == {"batchItemFailures": []}
    html = posted("watching").decode()
    assert rendered == [site.site_id]
    assert html.startswith("<section") and 'data-testid="current-visitors">1<' in html and "/pushed-page" in html
    assert "\n" not in html  # white space collapsed
    # No URL: a function renders it outside the page's request, which on AWS is under /<stage>.
    assert not re.search(r'(?:href|src|action|hx-[a-z]+)="/', html)
    # A site nobody watches is not rendered.
    other = store.get_site(site.site_id)
    other.site_id, other.tracker_key = "unwatched", "pk_unwatched"
    store.create_site(other)
    record_batch(store, other, [make_event()], Client("198.51.100.23", CHROME_UA), clock.now_ms())
    handlers.stream({"Records": stream_records(store)[1:]}, None)
    assert rendered == [site.site_id]
    for cached in (handlers._connections, handlers._render_app):
        cached.cache_clear()


@on_dynamodb
def test_push_closes_old_sockets_and_forgets_gone_ones(store, site, clock):
    now = clock.now_ms()
    for connection_id, age_ms in (("fresh", 0), ("gone", 1_000), ("old", live_sockets.MAX_SOCKET_MS)):
        store.add_live_socket(LiveSocket(connection_id, site.site_id, "admin-1", now - age_ms))
    calls = []

    def send(ids, data):
        calls.append(("send", sorted(ids), data))
        return ["gone"]

    def close(ids):
        calls.append(("close", sorted(ids)))
        return []
    done = live_sockets.push(store, [site.site_id, site.site_id], lambda site_id, language: "<p>\n  hi </p>", send, close, now)
    assert calls == [("close", ["old"]), ("send", ["fresh", "gone"], "<p> hi </p>")]
    assert done == {"sites": 1, "sent": 2, "closed": 1, "gone": 1}
    # "old" stays until its $disconnect (API Gateway sends one when it closes); "gone" is forgotten now.
    assert sorted(s.connection_id for s in store.live_sockets(site.site_id)) == ["fresh", "old"]
    calls.clear()
    assert live_sockets.push(store, [site.site_id], lambda site_id, language: "<p></p>", send, close, now + 500)["sites"] == 0
    assert calls == []  # pushed under a second ago
    # A site gone since: its sockets are closed, nothing rendered is sent.
    live_sockets.push(store, [site.site_id], lambda site_id, language: None, send, close, now + 1_000)
    assert calls == [("close", ["fresh", "old"])]


@on_dynamodb
def test_each_language_watching_gets_the_snapshot_rendered_in_it(store, site, clock):
    now = clock.now_ms()
    for connection_id, language in (("en-1", "en"), ("ko-1", "ko"), ("ko-2", "ko")):
        store.add_live_socket(LiveSocket(connection_id, site.site_id, "admin-1", now, language))
    sent, rendered = {}, []

    def render(site_id, language):
        rendered.append(language)
        return f"<p>{language}</p>"
    done = live_sockets.push(store, [site.site_id], render, lambda ids, data: sent.update({i: data for i in ids}) or [],
                             lambda ids: [], now)
    assert rendered == ["en", "ko"]  # once per language, whatever the number of its sockets
    assert sent == {"en-1": "<p>en</p>", "ko-1": "<p>ko</p>", "ko-2": "<p>ko</p>"}
    assert done == {"sites": 1, "sent": 3, "closed": 0, "gone": 0}


def test_a_connection_api_gateway_no_longer_has_is_named_gone():
    def call(connection_id):
        if connection_id == "gone":
            raise ClientError({"Error": {"Code": "GoneException", "Message": "gone"}}, "PostToConnection")
        if connection_id == "failing":
            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "slow down"}}, "PostToConnection")
    assert handlers._each_connection(call, ["ok", "gone", "failing"]) == ["gone"]
