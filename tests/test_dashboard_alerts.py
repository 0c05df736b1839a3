"""The Alerts page: who may see and change what, what a bad setting answers, the webhook's secret
shown once, and the test buttons against the real mail and webhook servers."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from app import create_app
from app.alerts.settings import AlertSettings
from app.auth import links
from app.store.base import Membership, User
from tests.conftest import ADMIN_PASSWORD_HASH, T0, csrf_token

PAGE = "/sites/example/alerts"


def member(store, site, role: str) -> User:
    user = User(f"{role}-1", f"{role}@example.com", ADMIN_PASSWORD_HASH, T0)
    store.create_user(user)
    store.put_membership(Membership(site.site_id, user.user_id, role, T0))
    return user


def post(client, path, **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client)})


@pytest.fixture
def servers_app(store, clock, smtp_server, receiver):
    """The app with email through the real SMTP server and webhooks allowed to loopback."""
    controller, _ = smtp_server
    return create_app({"TESTING": True, "SECRET_KEY": "t", "SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
                       "WEBHOOKS_PRIVATE": True, "PUBLIC_URL": "https://stats.example"}, store=store, clock=clock)


def test_an_admin_sets_the_rules_and_each_change_is_audited(client, store, site):
    assert post(client, f"{PAGE}/traffic", enabled="on", sensitivity="high", min_volume="50",
                cooldown_h="6").status_code == 302
    assert post(client, f"{PAGE}/goals", kind="reached", goal="c:", threshold="10").status_code == 302
    assert post(client, f"{PAGE}/goals", kind="silence", hours="3", from_h="8", to_h="20").status_code == 302
    settings = AlertSettings.of(store.get_site("example"))
    assert (settings.traffic.enabled, settings.traffic.sensitivity, settings.traffic.min_volume,
            settings.traffic.cooldown_h) == (True, "high", 50, 6)
    assert [(r.kind, r.threshold, r.hours, r.from_h, r.to_h) for r in settings.goal_rules] == [
        ("reached", 10, 2, 9, 18), ("silence", 1, 3, 8, 20)]
    html = client.get(PAGE).get_data(as_text=True)
    assert "10 conversions in a day" in html and "No conversion for 3 h between 8:00 and 20:00" in html
    assert post(client, f"{PAGE}/goals/{settings.goal_rules[0].id}/delete").status_code == 302
    assert len(AlertSettings.of(store.get_site("example")).goal_rules) == 1
    actions = sorted(e.action for e in store.list_audit("example"))  # one millisecond: any order
    assert actions == ["alerts.goal_add", "alerts.goal_add", "alerts.goal_delete", "alerts.traffic"]


@pytest.mark.parametrize("path, data, message", [
    ("traffic", {"sensitivity": "extreme", "min_volume": "5", "cooldown_h": "1"}, "sensitivity is one of"),
    ("traffic", {"sensitivity": "low", "min_volume": "five", "cooldown_h": "1"}, "the minimum volume is a whole number"),
    ("goals", {"kind": "reached", "goal": "g:nosuch", "threshold": "1"}, "choose one of the site"),
    ("goals", {"kind": "silence", "hours": "5", "from_h": "9", "to_h": "12"}, "5 hours do not fit between 9:00 and 12:00"),
    ("goals", {"kind": "silence", "hours": "1", "from_h": "18", "to_h": "9"}, "end after they begin"),
    ("goals", {"kind": "sometimes"}, "a goal alert is one of reached, silence"),
    ("webhooks", {"url": "http://169.254.169.254/latest/meta-data", "format": "json"}, "private"),
    ("webhooks", {"url": "ftp://hooks.example/x", "format": "json"}, "http"),
    ("webhooks", {"url": "https://hooks.example/x", "format": "teams"}, "format is one of"),
    ("mute", {"hours": "1000"}, "between 0 and 168"),
])
def test_a_setting_that_cannot_work_is_refused_with_why(client, store, site, path, data, message):
    response = post(client, f"{PAGE}/{path}", **data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert store.get_site("example").alerts == {}  # nothing saved


def test_viewers_see_what_fired_and_choose_their_email_but_change_no_rule(store, site, log_in):
    viewer_user = member(store, site, "viewer")
    viewer = log_in(viewer_user)
    html = viewer.get(PAGE).get_data(as_text=True)
    assert "What fired" in html and "Add a webhook" not in html and "Alert me on unusual traffic" not in html
    assert post(viewer, f"{PAGE}/me", email="on").status_code == 302
    assert AlertSettings.of(store.get_site("example")).recipients == [viewer_user.user_id]
    for path, data in (("traffic", {"sensitivity": "low", "min_volume": "1", "cooldown_h": "1"}),
                       ("webhooks", {"url": "https://hooks.example/x", "format": "json"}), ("mute", {"hours": "1"})):
        assert post(viewer, f"{PAGE}/{path}", **data).status_code == 403
    assert post(viewer, f"{PAGE}/me").status_code == 302  # unticked: off again
    assert AlertSettings.of(store.get_site("example")).recipients == []


def test_a_public_link_and_strangers_never_reach_the_alerts(anon_client, store, site, log_in):
    _, token = links.create_link(store, "example", "public", "cli", T0)
    assert anon_client.get(f"/share/{token}/alerts").status_code == 404
    assert "/alerts" not in anon_client.get(f"/share/{token}").get_data(as_text=True)
    assert anon_client.get(PAGE).status_code == 302  # to the login
    stranger = User("s-1", "s@example.com", ADMIN_PASSWORD_HASH, T0)
    store.create_user(stranger)
    assert log_in(stranger).get(PAGE).status_code == 404


def test_a_webhooks_secret_is_shown_once_and_its_test_arrives_signed(servers_app, store, site, admin, log_in,
                                                                      receiver):
    from app.auth.users import start_login
    client = servers_app.test_client()
    login = start_login(store, admin, T0, 10**9)
    with client.session_transaction() as session:
        session.update(uid=admin.user_id, login=login)
    created = post(client, f"{PAGE}/webhooks", url=receiver.url("/hook/SECRETPATH"), format="json")
    hook = AlertSettings.of(store.get_site("example")).webhooks[0]
    assert created.status_code == 200 and hook.secret in created.get_data(as_text=True)
    page = client.get(PAGE).get_data(as_text=True)
    assert hook.secret not in page and "SECRETPATH" not in page  # shown once; the path may be a secret
    tested = post(client, f"{PAGE}/webhooks/{hook.id}/test")
    assert tested.status_code == 302
    [request] = receiver.requests
    stamp, signature = (part.split("=", 1)[1] for part in request["headers"]["X-LiveInsight-Signature"].split(","))
    assert signature == hmac.new(hook.secret.encode(), f"{stamp}.".encode() + request["body"],
                                 hashlib.sha256).hexdigest()
    history = client.get(PAGE).get_data(as_text=True)
    assert "Test alert from Example" in history and "Test sent: the webhook" in history
    receiver.statuses = [500]
    post(client, f"{PAGE}/webhooks/{hook.id}/test")
    assert "The test did not arrive: HTTP 500" in client.get(PAGE).get_data(as_text=True)
    assert len(receiver.requests) == 2  # one attempt: the page answers at once
    assert hook.secret not in repr(store.list_audit("example")) + repr(store.list_alerts("example"))


def test_a_member_sends_themself_a_test_email(servers_app, store, site, log_in, smtp_server):
    _, mailbox = smtp_server
    viewer_user = member(store, site, "viewer")
    from app.auth.users import start_login
    client = servers_app.test_client()
    with client.session_transaction() as session:
        session.update(uid=viewer_user.user_id, login=start_login(store, viewer_user, T0, 10**9))
    assert post(client, f"{PAGE}/test-email").status_code == 302
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["viewer@example.com"]
    assert b"Subject: Test alert from Example" in envelope.content
    assert "Test sent: email to viewer@example.com took it." in client.get(PAGE).get_data(as_text=True)


def test_without_text_messages_a_number_is_refused_and_the_page_says_what_to_do(client, store, site):
    response = post(client, f"{PAGE}/phones", phone="+82 10 1234 5678")
    assert response.status_code == 400 and "Amazon SNS on AWS only" in response.get_data(as_text=True)
    assert "point" in client.get(PAGE).get_data(as_text=True) and AlertSettings.of(store.get_site("example")).phones == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_alerts_are_texted_through_amazon_sns(store, site, clock, admin, monkeypatch, ingest, make_event):
    """On AWS (LIVEINSIGHT_SMS=sns) the functions text through SNS: here under moto."""
    import moto
    from moto.sns.models import sns_backends

    from app.alerts.evaluate import deliver_all, fold_alerts
    from app.auth.users import start_login
    from app.lambda_handlers import _sns_texter
    from app.alerts import settings as alert_settings
    from app.context import notifier_of
    from tests.conftest import MOTO_ENV
    for name, value in MOTO_ENV.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        app = create_app({"TESTING": True, "SECRET_KEY": "t", "PUBLIC_URL": "https://stats.example"},
                         store=store, clock=clock)
        notifier_of(app).texter = _sns_texter()
        client = app.test_client()
        with client.session_transaction() as session:
            session.update(uid=admin.user_id, login=start_login(store, admin, T0, 10**9))
        assert post(client, f"{PAGE}/phones", phone="+82 (10) 1234-5678").status_code == 302
        assert post(client, f"{PAGE}/phones", phone="010-1234-5678").status_code == 400  # no country code
        assert AlertSettings.of(store.get_site("example")).phones == ["+821012345678"]
        assert post(client, f"{PAGE}/phones/test", phone="+821012345678").status_code == 302
        site = store.get_site("example")
        alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", alert_settings.goal_choices(site, []))
        ingest(make_event(type="conversion", name="Purchase", value=5))
        deliver_all(store, notifier_of(app), fold_alerts(store, ["example"], clock.now_ms()))
        texts = sns_backends[MOTO_ENV.get("MOTO_ACCOUNT_ID", "123456789012")][MOTO_ENV["AWS_DEFAULT_REGION"]].sms_messages
        sent = [(number, message) for _, (number, message, *_) in texts.items()]
        assert [number for number, _ in sent] == ["+821012345678", "+821012345678"]
        assert sent[1][1] == "First conversion of the day on Example\nhttps://stats.example/sites/example?period=today"
        assert "Test sent: a text to +821012345678 took it." in client.get(PAGE).get_data(as_text=True)
        assert post(client, f"{PAGE}/phones/remove", phone="+821012345678").status_code == 302
        assert AlertSettings.of(store.get_site("example")).phones == []
        for action in ("test", "remove"):  # a number removed meanwhile: said, nothing sent
            refused = post(client, f"{PAGE}/phones/{action}", phone="+821012345678")
            assert refused.status_code == 400 and "no such number" in refused.get_data(as_text=True)
        assert len(texts) == 2
