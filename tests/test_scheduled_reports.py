"""Scheduled reports by email: when each is due (an injected clock, local time zones), what it says
(traffic through the real pipeline, against the stats the dashboard shows), how it is sent (the
real SMTP server), stopping it from the email without a login, and choosing it on the Alerts page."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from app.alerts import fired
from app.alerts.evaluate import deliver_all, minute_alerts
from app.alerts.reports import (
    due_reports, read_unsubscribe_token, report_period, send_report, unsubscribe_token,
)
from app.alerts.settings import AlertSettings, mute, subscribe_report
from app.analytics import goals, stats
from app.analytics.periods import Period
from app.auth.sites import create_site
from app.context import notifier_of
from app.store.base import Membership, User
from tests.conftest import ADMIN_PASSWORD_HASH, T0, csrf_token

MINUTE = 60_000
HOUR = 60 * MINUTE


def at(when: str, tz: str = "UTC") -> int:
    """An ISO local time in a zone, as epoch milliseconds."""
    return int(datetime.fromisoformat(when).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def member(store, site, name: str, role: str = "viewer") -> User:
    user = User(f"{name}-1", f"{name}@example.com", ADMIN_PASSWORD_HASH, T0)
    store.create_user(user)
    store.put_membership(Membership(site.site_id, user.user_id, role, T0))
    return user


def added(store, now_ms: int) -> list[tuple[str, str]]:
    return sorted((site.site_id, alert.key) for site, alert in due_reports(store, now_ms))


# -- when a report is due
def test_the_weekly_report_is_due_from_monday_8_local_time_once(store, admin):
    site = create_site(store, "Acme", ["acme.example"], at("2026-10-01T00:00"), site_id="acme")
    subscribe_report(store, site, admin.user_id, "weekly", True)
    assert added(store, at("2026-11-30T07:59")) == []  # Monday, before 8:00
    assert added(store, at("2026-11-30T08:00")) == [("acme", "report:weekly@2026-11-23")]
    assert added(store, at("2026-11-30T08:00")) == []  # once
    fired._KNOWN.clear()  # a process that starts afresh finds it in the history
    assert added(store, at("2026-12-02T15:00")) == []
    assert added(store, at("2026-12-07T08:00")) == [("acme", "report:weekly@2026-11-30")]
    [latest, first] = store.list_alerts("acme")
    assert (first.kind, first.rule_id, first.fired_ms) == ("report", "report:weekly", at("2026-11-30T08:00"))
    assert first.title == "Acme: weekly report, 23–29 Nov 2026"
    assert latest.title == "Acme: weekly report, 30 Nov – 6 Dec 2026"


def test_the_monthly_report_is_due_on_the_1st_and_compares_with_the_whole_month_before(store, admin):
    site = create_site(store, "Acme", ["acme.example"], at("2026-11-10T00:00"), site_id="acme")
    subscribe_report(store, site, admin.user_id, "monthly", True)
    assert added(store, at("2026-11-30T23:00")) == []  # October ended before the site existed
    assert added(store, at("2026-12-01T07:59")) == []
    assert added(store, at("2026-12-01T08:00")) == [("acme", "report:monthly@2026-11-01")]
    assert added(store, at("2026-12-15T12:00")) == []
    [report] = store.list_alerts("acme")
    assert report.title == "Acme: monthly report, November 2026"
    assert report.details["path"] == "/sites/acme?period=custom&from=2026-11-01&to=2026-11-30"
    november = report_period("monthly", "UTC", at("2026-12-01T08:00"))
    assert (november.first, november.last) == (date(2026, 11, 1), date(2026, 11, 30))
    assert (november.previous().first, november.previous().last) == (date(2026, 10, 1), date(2026, 10, 31))


def test_a_site_ahead_of_utc_gets_its_reports_at_8_of_its_own_morning(store, admin):
    site = create_site(store, "Seoul", ["seoul.example"], at("2026-10-01T00:00"), "Asia/Seoul", site_id="seoul")
    for kind in ("weekly", "monthly"):
        subscribe_report(store, site, admin.user_id, kind, True)
    # Monday 30 November, 8:00 in Seoul is Sunday 23:00 in UTC; 1 December 8:00 is 30 November 23:00.
    assert added(store, at("2026-11-29T22:59")) == [("seoul", "report:monthly@2026-10-01")]  # catching up
    assert added(store, at("2026-11-29T23:00")) == [("seoul", "report:weekly@2026-11-23")]
    assert added(store, at("2026-11-30T22:59")) == []
    assert added(store, at("2026-11-30T23:00")) == [("seoul", "report:monthly@2026-11-01")]


def test_a_server_down_at_8_catches_up_within_the_week_but_never_sends_a_stale_report(store, admin, site):
    acme = create_site(store, "Acme", ["acme.example"], at("2026-10-01T00:00"), site_id="acme")
    nobody = create_site(store, "Nobody", ["nobody.example"], at("2026-10-01T00:00"), site_id="nobody")
    for s in (acme, site):  # `site` was made on Wednesday 18 November
        subscribe_report(store, s, admin.user_id, "weekly", True)
    subscribe_report(store, nobody, "deleted-user", "weekly", True)  # no one left to send it to
    assert added(store, at("2026-11-19T12:00")) == [("acme", "report:weekly@2026-11-09")]  # not before a site
    assert added(store, at("2026-11-23T08:00")) == [("acme", "report:weekly@2026-11-16"),
                                                    ("example", "report:weekly@2026-11-16")]
    # Down from then until Wednesday of the next week: it catches up.
    assert added(store, at("2026-12-02T11:00")) == [("acme", "report:weekly@2026-11-23"),
                                                    ("example", "report:weekly@2026-11-23")]
    # Down again until the Monday after the next, before 8:00: the week of 30 November is not sent.
    assert added(store, at("2026-12-14T07:00")) == []
    assert added(store, at("2026-12-14T08:00")) == [("acme", "report:weekly@2026-12-07"),
                                                    ("example", "report:weekly@2026-12-07")]
    assert store.list_alerts("nobody") == []


# -- what a report says
def test_a_report_has_the_figures_of_its_week_with_their_change_and_the_top_pages_sources_and_goals(
        store, site, ingest, make_event, clock, admin, log_in):
    goals.add_goal(store, site, "Pricing", "page", "/pricing", "", "", at("2026-11-01T00:00"))
    subscribe_report(store, site, admin.user_id, "weekly", True)
    google, hn = "https://www.google.com/", "https://news.ycombinator.com/item?id=1"

    def visit(visitor: str, when: str, *paths: str, referrer: str = "") -> None:
        for i, path in enumerate(paths):
            ts = at(when) + i * 2 * MINUTE
            ingest(make_event(user_id=visitor, session_id=f"{visitor}-{when}", url=f"https://example.com{path}",
                              referrer=referrer, timestamp=ts), at=ts)

    visit("a", "2026-11-17T10:00", "/")  # the week before: 2 visitors
    visit("b", "2026-11-19T10:00", "/pricing", "/")
    visit("v1", "2026-11-24T10:00", "/", "/pricing", referrer=google)  # the report's week: 4 visitors
    visit("v2", "2026-11-25T12:00", "/", referrer=hn)
    visit("v3", "2026-11-26T09:00", "/docs")
    visit("v4", "2026-11-27T18:00", "/", referrer=google)
    visit("v5", "2026-11-30T07:00", "/")  # this week: not in the report

    clock.now = at("2026-11-30T09:00")
    [(_, report)] = due_reports(store, clock.now_ms())
    details = report.details
    week = Period("custom", date(2026, 11, 23), date(2026, 11, 29))
    metrics = stats.summary(store, site, week)["metrics"]
    assert [(f["metric"], f["value"], f["change"]) for f in details["figures"]] == [
        (name, metrics[name]["value"], metrics[name]["change"])
        for name in ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration_s")]
    figures = {f["metric"]: f for f in details["figures"]}
    assert (figures["visitors"]["value"], figures["visitors"]["change"]) == (4, 100.0)
    assert (figures["pageviews"]["value"], figures["pageviews"]["change"]) == (5, 66.7)
    assert (figures["bounce_rate"]["shown"], figures["bounce_rate"]["better"]) == ("75%", False)  # 50% the week before
    assert details["pages"] == [["/", 3], ["/docs", 1], ["/pricing", 1]]
    assert details["sources"] == [["Google", 2], ["Direct", 1], ["Hacker News", 1]]
    assert details["goals"] == [{"name": "Pricing", "conversions": 1, "conversion_rate": 25.0}]
    assert details["period"] == "23–29 Nov 2026"
    assert report.text.startswith("Visitors 4 (+100%); Visits 4 (+100%); Page views 5 (+67%); Bounce rate 75% ")
    assert "Top pages: / (3), /docs (1), /pricing (1)." in report.text and "Goals: Pricing (1)." in report.text
    assert details["path"] == "/sites/example?period=custom&from=2026-11-23&to=2026-11-29"
    assert log_in(admin).get(details["path"]).status_code == 200  # the link opens that week


# -- sending
@pytest.fixture
def mail_app(store, clock, smtp_server):
    controller, _ = smtp_server
    return create_app({"TESTING": True, "SECRET_KEY": "mail-secret", "PUBLIC_URL": "https://stats.example/",
                       "SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
                       "MAIL_FROM": "LiveInsight <reports@liveinsight.example>"}, store=store, clock=clock)


def test_each_recipient_gets_one_email_with_a_text_and_an_html_part_and_their_own_unsubscribe_link(
        store, site, ingest, make_event, clock, admin, mail_app, smtp_server):
    _, mailbox = smtp_server
    viewer, gone = member(store, site, "vi"), member(store, site, "gone")
    for user in (admin, viewer, gone):
        subscribe_report(store, site, user.user_id, "weekly", True)
    store.delete_membership(site.site_id, gone.user_id)  # no longer sees the site: no report
    mute(store, site, "168", at("2026-11-29T12:00"))  # a mute is for alerts, not reports
    ingest(make_event(url="https://example.com/launch", timestamp=at("2026-11-24T10:00")), at=at("2026-11-24T10:00"))

    clock.now = at("2026-11-30T08:00")
    deliver_all(store, notifier_of(mail_app), minute_alerts(store, clock.now_ms()))

    mails = {e.rcpt_tos[0]: message_from_bytes(e.content, policy=policy.default) for e in mailbox.envelopes}
    assert sorted(mails) == ["admin@example.com", "vi@example.com"] and len(mailbox.envelopes) == 2
    link = "https://stats.example/sites/example?period=custom&from=2026-11-23&to=2026-11-29"
    stops = {}
    for address, user in (("admin@example.com", admin), ("vi@example.com", viewer)):
        mail = mails[address]
        assert mail["Subject"] == "Example: weekly report, 23–29 Nov 2026"
        text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
        assert link in text and f'href="{link.replace("&", "&amp;")}"' in html
        assert "/launch" in text and "/launch" in html
        [stop] = re.fullmatch(r"<(https://stats\.example/unsubscribe/[\w.-]+)>", mail["List-Unsubscribe"]).groups()
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f"Stop it: {stop}" in text and f'href="{stop}"' in html
        assert read_unsubscribe_token(["mail-secret"], stop.rsplit("/", 1)[1]) == ("example", user.user_id, "weekly")
        stops[address] = stop
    assert stops["admin@example.com"] != stops["vi@example.com"]
    [report] = store.list_alerts("example")
    assert sorted((d["channel"], d["ok"]) for d in report.deliveries) == [
        ("email to admin@example.com", True), ("email to vi@example.com", True)]

    # Without a secret key to sign with: no link, no headers, and the email says where to stop it.
    mailbox.envelopes.clear()
    send_report(store, replace(notifier_of(mail_app), secret_key=""), store.get_site("example"), report)
    mail = message_from_bytes(mailbox.envelopes[0].content, policy=policy.default)
    assert mail["List-Unsubscribe"] is None and mail["List-Unsubscribe-Post"] is None
    assert "Stop it on the Alerts page: https://stats.example/sites/example/alerts" in \
        mail.get_body(("plain",)).get_content()


# -- unsubscribing from the email
def test_the_unsubscribe_link_stops_only_that_report_of_that_member_without_a_login(
        store, site, admin, anon_client):
    viewer = member(store, site, "vi")
    for user, kind in ((viewer, "weekly"), (viewer, "monthly"), (admin, "weekly")):
        subscribe_report(store, site, user.user_id, kind, True)
    token = unsubscribe_token("test-secret", "example", viewer.user_id, "weekly")
    path = f"/unsubscribe/{token}"

    page = anon_client.get(path)
    assert page.status_code == 200
    assert "Stop the weekly report of <strong>Example</strong> to <strong>vi@example.com</strong>?" in page.get_data(
        as_text=True)
    stopped = anon_client.post(path)  # no CSRF token, no login cookie: the token is the authority
    assert stopped.status_code == 200 and "no longer gets the weekly report" in stopped.get_data(as_text=True)
    assert AlertSettings.of(store.get_site("example")).reports == {"weekly": [admin.user_id],
                                                                   "monthly": [viewer.user_id]}
    assert anon_client.post(path).status_code == 200  # again: the same
    assert "Already stopped" in anon_client.get(path).get_data(as_text=True)
    assert [(e.action, e.actor) for e in store.list_audit("example")] == [("alerts.reports", "vi@example.com")]

    # A mail client's one-click unsubscribe (RFC 8058)
    one_click = anon_client.post(f"/unsubscribe/{unsubscribe_token('test-secret', 'example', admin.user_id, 'weekly')}",
                                 data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert AlertSettings.of(store.get_site("example")).reports == {"weekly": [], "monthly": [viewer.user_id]}


@pytest.mark.parametrize("token", [
    unsubscribe_token("test-secret", "example", "vi-1", "weekly")[:-3] + "abc",  # tampered with
    unsubscribe_token("another-secret", "example", "vi-1", "weekly"),  # signed by someone else
    unsubscribe_token("test-secret", "example", "vi-1", "daily"),  # no such report
    "not-a-token",
])
def test_a_bad_unsubscribe_link_is_a_404_that_says_why_and_changes_nothing(store, site, anon_client, token):
    viewer = member(store, site, "vi")
    subscribe_report(store, site, viewer.user_id, "weekly", True)
    for answer in (anon_client.get(f"/unsubscribe/{token}"), anon_client.post(f"/unsubscribe/{token}")):
        assert answer.status_code == 404
        assert "This unsubscribe link is not valid" in answer.get_data(as_text=True)
    assert AlertSettings.of(store.get_site("example")).reports["weekly"] == [viewer.user_id]


# -- choosing reports on the Alerts page
def test_a_viewer_chooses_the_weekly_report_on_the_alerts_page_and_it_is_audited(store, site, admin, log_in):
    viewer_user = member(store, site, "vi")
    viewer = log_in(viewer_user)
    page = viewer.get("/sites/example/alerts").get_data(as_text=True)
    assert page.index('id="reports"') < page.index('id="history"') and "Reports by email" in page
    answer = viewer.post("/sites/example/alerts/reports",
                         data={"weekly": "on", "csrf_token": csrf_token(viewer)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/sites/example/alerts#reports")
    assert AlertSettings.of(store.get_site("example")).reports == {"weekly": [viewer_user.user_id], "monthly": []}
    [entry] = store.list_audit("example")
    assert (entry.action, entry.actor, entry.detail) == ("alerts.reports", "vi@example.com",
                                                         "vi@example.com: weekly on, monthly off")
    page = viewer.get("/sites/example/alerts").get_data(as_text=True)
    assert 'name="weekly" value="on" checked' in page and 'name="monthly" value="on">' in page
    assert "You will get the weekly report by email." in page
    assert "Weekly report:" not in page  # who gets each: for admins
    admin_page = " ".join(log_in(admin).get("/sites/example/alerts").get_data(as_text=True).split())
    assert "Weekly report: vi@example.com. Monthly report: nobody." in admin_page
