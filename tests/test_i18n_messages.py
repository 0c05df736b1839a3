"""The language of what leaves the server for a person: an alert or a report by email speaks its
recipient's language, else the site owners', else English (app/alerts/language.py); webhooks and
text messages the owners'; what the store keeps stays English. The CLI speaks the environment's
(LC_ALL, LC_MESSAGES, LANG: app/cli.py)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from email import message_from_bytes, policy

import pytest

from app import create_app
from app.alerts import settings as alert_settings
from app.alerts.evaluate import deliver_all, fold_alerts, minute_alerts
from app.alerts.language import message_language, speaking
from app.alerts.messages import alert_words, sources_shown
from app.cli import environment_language
from app.context import notifier_of
from app.store.base import Membership, User
from tests.conftest import ADMIN_PASSWORD_HASH, T0

LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def at(when: str) -> int:
    """An ISO time in UTC, as epoch milliseconds."""
    return int(datetime.fromisoformat(when).replace(tzinfo=timezone.utc).timestamp() * 1000)


def person(store, name: str, language: str = "", *, site=None, role: str = "viewer", since_ms: int = T0) -> User:
    user = User(f"{name}-1", f"{name}@example.com", ADMIN_PASSWORD_HASH, T0, language=language)
    store.create_user(user)
    if site is not None:
        store.put_membership(Membership(site.site_id, user.user_id, role, since_ms))
    return user


# -- which language
def test_a_message_speaks_its_recipients_language_else_the_owners_else_english(store, site):
    assert message_language(store, site) == "en"  # no owner has chosen: English
    chose_ko = person(store, "chose-ko", "ko", site=site)
    chose_none = person(store, "chose-none", site=site)
    # An earlier member who is not an owner does not speak for the site.
    person(store, "viewer-en", "en", site=site, role="admin", since_ms=T0 - 10)
    assert message_language(store, site, chose_ko) == "ko"
    assert message_language(store, site, "chose-ko@example.com") == "ko"  # by the address
    assert message_language(store, site, chose_none) == "en"
    assert message_language(store, site, "nobody@example.com") == "en"  # no account of that address

    # The owners': the first owner (by when they became one) who chose a language.
    person(store, "owner-none", site=site, role="owner", since_ms=T0 + 1)
    person(store, "owner-ko", "ko", site=site, role="owner", since_ms=T0 + 2)
    person(store, "owner-en", "en", site=site, role="owner", since_ms=T0 + 3)
    assert message_language(store, site) == "ko"
    assert message_language(store, site, chose_none) == "ko"
    assert message_language(store, site, "nobody@example.com") == "ko"
    assert message_language(store, site, chose_ko) == "ko"
    earliest = person(store, "owner-first", "en", site=site, role="owner", since_ms=T0)
    assert message_language(store, site, chose_none) == "en"
    assert message_language(store, site, chose_ko) == "ko"  # the recipient's own choice first

    # A language the interface no longer speaks counts as none.
    earliest.language = "xx"
    store.update_user(earliest)
    assert message_language(store, site) == "ko"
    chose_ko.language = "xx"
    store.update_user(chose_ko)
    assert message_language(store, site, chose_ko) == "ko"  # the owners'


def test_the_cli_speaks_the_language_of_its_environment(monkeypatch):
    for name in LOCALE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert environment_language() == "en"
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    assert environment_language() == "ko"
    monkeypatch.setenv("LANG", "de_DE.UTF-8")  # not a language of the interface
    assert environment_language() == "en"
    monkeypatch.setenv("LC_MESSAGES", "ko_KR")  # before LANG
    assert environment_language() == "ko"
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # before both
    assert environment_language() == "en"
    monkeypatch.setenv("LC_ALL", "ko")
    assert environment_language() == "ko"


def _setup_url(app, monkeypatch, lang: str) -> tuple[str, list[str]]:
    """`flask setup-url` with LANG=lang: its output, and the language it ran in."""
    from app.auth import views
    from app.i18n import language
    for name in LOCALE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", lang)
    spoken = []
    monkeypatch.setattr(views, "setup_token", lambda: spoken.append(language()) or "t0ken")
    with app.app_context():  # as `flask` gives every command
        result = app.test_cli_runner().invoke(args=["setup-url", "--base", "https://stats.example"])
    return result.output, spoken


def test_a_command_runs_in_the_language_of_lang(app, monkeypatch):
    output, spoken = _setup_url(app, monkeypatch, "ko_KR.UTF-8")
    assert spoken == ["ko"] and output == "https://stats.example/setup?token=t0ken\n"  # a URL stays a URL
    output, spoken = _setup_url(app, monkeypatch, "en_US.UTF-8")
    assert spoken == ["en"]


def test_a_command_says_what_went_wrong_in_english_under_an_english_lang(app, admin, monkeypatch):
    output, _ = _setup_url(app, monkeypatch, "en_US.UTF-8")
    assert "this instance has accounts already: log in, or use create-user" in output


def test_a_command_says_what_went_wrong_in_korean_under_a_korean_lang(app, admin, monkeypatch):
    output, _ = _setup_url(app, monkeypatch, "ko_KR.UTF-8")
    assert "이 인스턴스에는 이미 계정이 있습니다" in output and "accounts already" not in output


# -- alerts: each reader's language, the store's English
@pytest.fixture
def mail_app(store, clock, smtp_server):
    controller, _ = smtp_server
    return create_app({"TESTING": True, "SECRET_KEY": "t", "SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
                       "MAIL_FROM": "LiveInsight <alerts@liveinsight.example>", "WEBHOOKS_PRIVATE": True,
                       "PUBLIC_URL": "https://stats.example"}, store=store, clock=clock)


def _first_conversion(store, site, ingest, make_event, clock, mail_app, smtp_server, receiver, *readers):
    """The first conversion of the day, sent to `readers` by email and to a Slack webhook:
    {address: (subject, text, html)}, the webhook's text, and the alert kept."""
    _, mailbox = smtp_server
    for user in readers:
        alert_settings.subscribe(store, site, user.user_id, True)
    alert_settings.add_webhook(store, site, receiver.url("/hook"), "slack", clock.now_ms(), allow_private=True)
    alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", alert_settings.goal_choices(site, []))
    ingest(make_event(type="conversion", name="Purchase", value=30))
    deliver_all(store, notifier_of(mail_app), fold_alerts(store, [site.site_id], clock.now_ms()))
    mails = {}
    for envelope in mailbox.envelopes:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        mails[envelope.rcpt_tos[0]] = (mail["Subject"], mail.get_body(("plain",)).get_content(),
                                       mail.get_body(("html",)).get_content())
    [request] = receiver.requests
    [alert] = store.list_alerts(site.site_id)
    return mails, json.loads(request["body"])["text"], alert


def test_each_email_is_in_its_readers_language_and_the_store_keeps_english(
        store, site, ingest, make_event, clock, mail_app, smtp_server, receiver):
    owner = person(store, "owner", "ko", site=site, role="owner")
    reader = person(store, "reader", "en", site=site)
    undecided = person(store, "undecided", site=site)
    mails, webhook_text, alert = _first_conversion(store, site, ingest, make_event, clock, mail_app, smtp_server,
                                                   receiver, owner, reader, undecided)
    assert sorted(mails) == ["owner@example.com", "reader@example.com", "undecided@example.com"]
    subject, text, html = mails["reader@example.com"]
    assert subject == "First conversion of the day on Example" and '<html lang="en">' in html
    assert "The first conversion of today came in by 11:06." in text and "Open the dashboard: " in text
    for address in ("owner@example.com", "undecided@example.com"):  # the owner's choice, and the owners'
        assert '<html lang="ko">' in mails[address][2]
    assert (alert.title, alert.text) == ("First conversion of the day on Example",
                                         "The first conversion of today came in by 11:06.")
    for address in ("owner@example.com", "undecided@example.com"):
        subject, text, html = mails[address]
        assert subject == "Example: 오늘 첫 전환"
        assert "오늘 첫 전환이 11:06에 들어왔습니다." in text and "대시보드 열기: https://stats.example/" in text
        assert "대시보드 열기</a>" in html and "Open the dashboard" not in html
    assert webhook_text.startswith("*Example: 오늘 첫 전환*") and "|대시보드 열기>" in webhook_text  # the owners'
    with speaking("ko"):
        assert alert_words(site, alert) == ("Example: 오늘 첫 전환", "오늘 첫 전환이 11:06에 들어왔습니다.")


# -- reports
def test_a_report_is_in_its_readers_language(store, site, ingest, make_event, clock, mail_app, smtp_server):
    """English for who chose it; for who chose Korean, <html lang="ko"> and the period as Korean writes it
    (Babel's, no catalogue needed)."""
    _, mailbox = smtp_server
    korean_reader, english_reader = person(store, "ko", "ko", site=site), person(store, "en", "en", site=site)
    for user in (korean_reader, english_reader):
        alert_settings.subscribe_report(store, site, user.user_id, "weekly", True)
    ingest(make_event(url="https://example.com/launch", timestamp=at("2026-11-24T10:00")), at=at("2026-11-24T10:00"))
    clock.now = at("2026-11-30T08:00")
    deliver_all(store, notifier_of(mail_app), minute_alerts(store, clock.now_ms()))
    mails = {e.rcpt_tos[0]: message_from_bytes(e.content, policy=policy.default) for e in mailbox.envelopes}
    english, korean_mail = mails["en@example.com"], mails["ko@example.com"]
    assert english["Subject"] == "Example: weekly report, 23–29 Nov 2026"
    assert '<html lang="en">' in english.get_body(("html",)).get_content()
    assert "2026년 11월 23일~29일" in korean_mail["Subject"]
    assert '<html lang="ko">' in korean_mail.get_body(("html",)).get_content()
    [report] = store.list_alerts(site.site_id)
    assert report.title == "Example: weekly report, 23–29 Nov 2026"  # kept in English
    assert report.details["figures"][0]["label"] == "Visitors"


def test_a_report_is_in_its_readers_language_in_korean(store, site, ingest, make_event, clock, mail_app,
                                                       smtp_server):
    _, mailbox = smtp_server
    reader = person(store, "ko", "ko", site=site)
    alert_settings.subscribe_report(store, site, reader.user_id, "weekly", True)
    ingest(make_event(url="https://example.com/launch", timestamp=at("2026-11-24T10:00")), at=at("2026-11-24T10:00"))
    clock.now = at("2026-11-30T08:00")
    deliver_all(store, notifier_of(mail_app), minute_alerts(store, clock.now_ms()))
    [envelope] = mailbox.envelopes
    mail = message_from_bytes(envelope.content, policy=policy.default)
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert mail["Subject"] == "Example 주간 보고서 (2026년 11월 23일~29일)"
    assert text.startswith("Example 주간 보고서, 2026년 11월 23일~29일\n(변화: 지난주 대비)")
    assert "방문자" in text and "상위 페이지 (방문자)" in text and "받지 않기: https://stats.example/unsubscribe/" in text
    assert "주간 보고서 중지</a> 또는 <a" in html and "Visitors" not in html


def test_a_traffic_alerts_kept_sources_name_direct_visits_in_the_readers_language():
    """The names ingestion gives no source ("Direct", and "" for events before it named one) are
    kept in English with the alert, and said in the reader's language; real sources as they are."""
    kept = [["Direct", 5], ["Direct / none", 2], ["Google", 1]]
    with speaking("ko"):
        assert sources_shown(kept) == [["직접", 5], ["직접 / 없음", 2], ["Google", 1]]
    with speaking("en"):
        assert sources_shown(kept) == kept


def _cli_in(lang: str, store, clock, monkeypatch, args: list[str]) -> str:
    """`flask <args>` with LANG=lang, in an app made in that environment (as `flask` makes it)."""
    monkeypatch.setenv("LANG", lang)
    app = create_app({"TESTING": True, "STORE_URL": "unused://", "SECRET_KEY": "test-secret"}, store=store, clock=clock)
    with app.app_context():
        return app.test_cli_runner().invoke(args=args).output


def test_a_commands_help_and_clicks_words_read_in_the_language_of_lang(store, clock, monkeypatch):
    korean = _cli_in("ko_KR.UTF-8", store, clock, monkeypatch, ["create-site", "--help"])
    assert korean.startswith("사용법: ") and "사이트를 만듭니다." in korean  # Click's word, the command's help
    assert "'오늘'의 기준이 되는 IANA 시간대입니다." in korean and "이 도움말을 보여 주고 끝냅니다." in korean
    assert "Usage" not in korean and "Create a site" not in korean
    error = _cli_in("ko_KR.UTF-8", store, clock, monkeypatch, ["create-site"])
    assert "오류: 빠진 인수: 'NAME'." in error
    # An app made in an English environment afterwards: English (the Korean app's help did not stay).
    english = _cli_in("C.UTF-8", store, clock, monkeypatch, ["create-site", "--help"])
    assert english.startswith("Usage: ") and "Create a site; the last line printed" in english
    assert "IANA time zone for 'today'." in english and "사이트" not in english
