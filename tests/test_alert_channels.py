"""Alert channels against real servers on loopback: e-mail through an SMTP server (aiosmtpd) and
webhooks through an HTTP server, with retries, signatures, the private-address guard and the
three body formats. No real sleeping: the backoff goes through an injected sleep."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from email import message_from_bytes, policy

import pytest

from app.alerts.channels import (FORMATS, ChannelError, Delivery, SmtpSettings, check_webhook_url,
                                 post_webhook, send_email, sign, webhook_body)
from tests.mail_and_hooks import PATH
from tests.server import free_port

SECRET = "whsec-very-secret-1234"


def test_send_email_delivers_text_html_and_headers_to_every_recipient(smtp_server):
    controller, handler = smtp_server
    settings = SmtpSettings.from_url(f"smtp://127.0.0.1:{controller.port}", "")
    delivery = send_email(settings, ["a@example.com", "b@example.org"], "Visits spiked — 3×",
                          "Plain text body", "<p>HTML body</p>", timeout_s=2,
                          headers={"List-Unsubscribe": "<https://example.com/unsubscribe>"})
    assert delivery == Delivery("email to a@example.com, b@example.org", True, "sent", 1)
    assert delivery.as_dict() == {"channel": "email to a@example.com, b@example.org", "ok": True,
                                  "detail": "sent", "attempts": 1}
    [envelope] = handler.envelopes
    assert envelope.mail_from == "alerts@127.0.0.1"
    assert envelope.rcpt_tos == ["a@example.com", "b@example.org"]
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "Visits spiked — 3×"
    assert message["From"] == "LiveInsight <alerts@127.0.0.1>"
    assert message["List-Unsubscribe"] == "<https://example.com/unsubscribe>"
    assert message["Date"] and message["Message-ID"]
    assert message.get_body(("plain",)).get_content().strip() == "Plain text body"
    assert message.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"


def test_send_email_without_html_is_plain_text_only(smtp_server):
    controller, handler = smtp_server
    settings = SmtpSettings.from_url(f"smtp://127.0.0.1:{controller.port}", "Alerts <me@example.net>")
    assert send_email(settings, ["a@example.com"], "Subject", "Only text", timeout_s=2).ok
    message = message_from_bytes(handler.envelopes[0].original_content, policy=policy.default)
    assert handler.envelopes[0].mail_from == "me@example.net"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Only text"


def test_send_email_to_a_closed_port_fails_fast_without_the_password():
    settings = SmtpSettings.from_url(f"smtp://u:s3cret@127.0.0.1:{free_port()}", "")
    started = time.monotonic()
    delivery = send_email(settings, ["a@example.com"], "Subject", "Text", timeout_s=0.5)
    assert time.monotonic() - started < 2
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.detail.startswith("ConnectionRefusedError")
    assert "s3cret" not in delivery.detail and "s3cret" not in repr(delivery)


def test_send_email_with_a_line_break_in_a_header_fails_without_raising():
    settings = SmtpSettings.from_url(f"smtp://127.0.0.1:{free_port()}", "")
    delivery = send_email(settings, ["a@example.com"], "Subject\r\nBcc: x@evil.example", "Text", timeout_s=0.5)
    assert not delivery.ok and delivery.detail.startswith("ValueError")


@pytest.mark.parametrize("url, expected", [
    ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525, "plain", "", "")),
    ("smtp://relay.example", ("relay.example", 25, "plain", "", "")),
    ("smtp+starttls://me%40example.com:p%3Ass%2Fw@mail.example:587", ("mail.example", 587, "starttls", "me@example.com", "p:ss/w")),
    ("smtp+starttls://u:p@mail.example", ("mail.example", 587, "starttls", "u", "p")),
    ("smtps://u:p@mail.example", ("mail.example", 465, "tls", "u", "p")),
    ("  SMTPS://u:p@Mail.Example:2465 ", ("mail.example", 2465, "tls", "u", "p")),
])
def test_smtp_settings_from_url(url, expected):
    settings = SmtpSettings.from_url(url, "")
    assert (settings.host, settings.port, settings.security, settings.username, settings.password) == expected
    assert settings.sender == f"LiveInsight <alerts@{expected[0]}>"


def test_smtp_settings_from_an_empty_url_is_email_off():
    assert SmtpSettings.from_url("", "x@example.com") is None
    assert SmtpSettings.from_url("   ", "") is None


@pytest.mark.parametrize("url", ["http://mail.example", "smtp+ssl://mail.example", "mail.example:25",
                                 "smtp://", "smtp://u:p@:25", "smtp://mail.example:99999", "smtp://mail.example:x"])
def test_smtp_settings_from_a_bad_url_is_a_channel_error(url):
    with pytest.raises(ChannelError):
        SmtpSettings.from_url(url, "")


def test_smtp_settings_repr_hides_the_password():
    settings = SmtpSettings.from_url("smtps://user:hunter2%21@mail.example", "Me <me@example.com>")
    assert settings.password == "hunter2!" and settings.sender == "Me <me@example.com>"
    assert "hunter2" not in repr(settings) and "user" in repr(settings)


# --- webhooks

def post(url, *, allow_private=True, sleeps=None, **options):
    """post_webhook with a recording sleep and a fixed clock."""
    sleep = (sleeps if sleeps is not None else []).append
    options.setdefault("timeout_s", 2)
    return post_webhook(url, SECRET, b'{"a":1}', allow_private=allow_private, sleep=sleep,
                        now=lambda: 1_795_000_000.7, **options)


def assert_no_secrets(delivery: Delivery):
    text = json.dumps(delivery.as_dict())
    for part in (SECRET, "PATHPART", "QUERYPART", "v1="):
        assert part not in text


def test_post_webhook_signs_the_body(receiver):
    delivery = post(receiver.url())
    assert delivery == Delivery("webhook 127.0.0.1", True, "HTTP 204", 1)
    [request] = receiver.requests
    assert request["method"] == "POST" and request["path"] == PATH and request["body"] == b'{"a":1}'
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "LiveInsight-Webhook/1"
    expected = hmac.new(SECRET.encode(), b'1795000000.{"a":1}', hashlib.sha256).hexdigest()
    assert headers["X-LiveInsight-Signature"] == f"t=1795000000,v1={expected}"
    assert sign(SECRET, 1795000000, b'{"a":1}') == f"t=1795000000,v1={expected}"


def test_post_webhook_retries_5xx_with_exponential_backoff(receiver):
    receiver.statuses = [503, 500, 204]
    sleeps = []
    delivery = post(receiver.url(), sleeps=sleeps)
    assert delivery == Delivery("webhook 127.0.0.1", True, "HTTP 204 after 3 attempts", 3)
    assert sleeps == [1.0, 2.0] and len(receiver.requests) == 3


def test_post_webhook_gives_up_after_all_attempts(receiver):
    receiver.statuses = [500]
    sleeps = []
    delivery = post(receiver.url(), sleeps=sleeps, backoff_s=0.5)
    assert delivery == Delivery("webhook 127.0.0.1", False, "HTTP 500 after 4 attempts", 4)
    assert sleeps == [0.5, 1.0, 2.0] and len(receiver.requests) == 4
    assert_no_secrets(delivery)


def test_post_webhook_does_not_retry_a_4xx(receiver):
    receiver.statuses = [404, 204]
    sleeps = []
    delivery = post(receiver.url(), sleeps=sleeps)
    assert delivery == Delivery("webhook 127.0.0.1", False, "HTTP 404", 1)
    assert sleeps == [] and len(receiver.requests) == 1


def test_post_webhook_honours_a_short_retry_after_on_429(receiver):
    receiver.statuses = [429, 204]
    receiver.extra_headers = {"Retry-After": "3"}
    sleeps = []
    assert post(receiver.url(), sleeps=sleeps).ok
    assert sleeps == [3.0]


def test_post_webhook_ignores_a_long_retry_after(receiver):
    receiver.statuses = [503, 204]
    receiver.extra_headers = {"Retry-After": "3600"}
    sleeps = []
    assert post(receiver.url(), sleeps=sleeps).ok
    assert sleeps == [1.0]


def test_post_webhook_does_not_follow_a_redirect(receiver):
    receiver.statuses = [302]
    delivery = post(receiver.url())
    assert delivery == Delivery("webhook 127.0.0.1", False, "HTTP 302: redirects are not followed", 1)
    assert [request["path"] for request in receiver.requests] == [PATH]


def test_post_webhook_retries_a_refused_connection():
    sleeps = []
    started = time.monotonic()
    delivery = post(f"http://127.0.0.1:{free_port()}{PATH}", sleeps=sleeps, timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert not delivery.ok and delivery.attempts == 4 and sleeps == [1.0, 2.0, 4.0]
    assert delivery.detail.startswith("ConnectionRefusedError") and delivery.detail.endswith("after 4 attempts")
    assert_no_secrets(delivery)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LocalHost.", "api.localhost", "metadata.google.internal",
                                  "printer.local", "10.0.0.1", "192.168.1.10", "172.16.0.1", "100.64.0.1",
                                  "169.254.169.254", "0.0.0.0", "224.0.0.1", "240.0.0.1", "127.1", "2130706433",
                                  "[::1]", "[::]", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]", "[fe80::1]",
                                  "[fd00::1]", "[2002:7f00:1::]"])
def test_private_hosts_are_refused_unless_allowed(receiver, host):
    url = f"http://{host}:{receiver.port}{PATH}"
    with pytest.raises(ChannelError, match="private or local"):
        check_webhook_url(url, allow_private=False)
    delivery = post(url, allow_private=False)
    assert not delivery.ok and delivery.attempts == 0 and "private or local" in delivery.detail
    assert receiver.requests == []
    assert_no_secrets(delivery)
    assert check_webhook_url(url, allow_private=True) == url


def test_public_urls_pass_the_check():
    for url in ("https://hooks.slack.com/services/T0/B0/XYZ", "http://93.184.216.34/hook",
                "https://[2606:4700::1111]:8443/x?y=1", "  https://example.com/hook  "):
        assert check_webhook_url(url, allow_private=False) == url.strip()


@pytest.mark.parametrize("url, reason", [
    ("ftp://example.com/hook", "https:// or http://"),
    ("example.com/hook", "https:// or http://"),
    ("https:///hook", "no host"),
    ("https://user:pass@example.com/hook", "user name or password"),
    ("https://token@example.com/hook", "user name or password"),
    ("https://example.com/" + "a" * 2000, "longer than 2000"),
    ("https://example.com/a b", "spaces or control"),
    ("https://example.com:99999/hook", "not valid"),
    ("https://[::1/hook", "not valid"),
])
def test_bad_webhook_urls_are_a_channel_error(url, reason):
    with pytest.raises(ChannelError, match=reason):
        check_webhook_url(url, allow_private=True)


@pytest.fixture
def fake_dns(monkeypatch):
    """hook.example resolves to 127.0.0.1 (DNS is out of reach here); counts its look-ups."""
    real = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, *args, **kwargs):
        if host == "hook.example":
            lookups.append(host)
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_a_name_resolving_to_a_private_address_is_refused_without_connecting(receiver, fake_dns):
    url = receiver.url(host="hook.example")
    assert check_webhook_url(url, allow_private=False) == url  # a name passes; its addresses do not
    sleeps = []
    delivery = post(url, allow_private=False, sleeps=sleeps)
    assert delivery == Delivery("webhook hook.example", False,
                                "hook.example resolves to a private or local address", 1)
    assert receiver.requests == [] and sleeps == [] and fake_dns == ["hook.example"]


def test_the_checked_address_is_connected_to_with_the_original_host_header(receiver, fake_dns):
    receiver.statuses = [500, 204]
    delivery = post(receiver.url(host="hook.example"))
    assert delivery == Delivery("webhook hook.example", True, "HTTP 204 after 2 attempts", 2)
    # One look-up per attempt, none behind it (DNS rebinding), and the Host header names the host.
    assert fake_dns == ["hook.example", "hook.example"]
    assert [request["headers"]["Host"] for request in receiver.requests] == [f"hook.example:{receiver.port}"] * 2


def test_an_invalid_url_is_a_failed_delivery_not_an_exception():
    delivery = post("https://user:" + SECRET + "@example.com" + PATH)
    assert delivery == Delivery("webhook example.com", False,
                                "the webhook URL must not contain a user name or password", 0)
    assert_no_secrets(delivery)


# --- bodies

MESSAGE = {"title": "Visits <up> & away", "text": "Ünïcode text <@here> & more", "url": "https://li.example/s/1?a=1&b=2",
           "site": "example.com", "kind": "spike", "fired_at": "2026-11-18T11:06:40Z", "details": {"visits": 42}}


def test_json_body_is_the_message_with_a_version():
    body = webhook_body("json", MESSAGE)
    assert json.loads(body) == {**MESSAGE, "version": 1}
    assert "Ünïcode".encode() in body and b": " not in body and b", " not in body


def test_slack_body_escapes_its_control_characters():
    assert json.loads(webhook_body("slack", MESSAGE)) == {"text": (
        "*Visits &lt;up&gt; &amp; away*\nÜnïcode text &lt;@here&gt; &amp; more\n"
        "<https://li.example/s/1?a=1&amp;b=2|Open the dashboard>")}


def test_discord_body_mentions_no_one_and_fits_2000_characters():
    short = json.loads(webhook_body("discord", MESSAGE))
    assert short == {"content": "**Visits <up> & away**\nÜnïcode text <@here> & more\nhttps://li.example/s/1?a=1&b=2",
                     "allowed_mentions": {"parse": []}}
    long = json.loads(webhook_body("discord", {**MESSAGE, "text": "x" * 5000}))
    assert len(long["content"]) == 2000 and long["content"].endswith("…\nhttps://li.example/s/1?a=1&b=2")
    assert long["allowed_mentions"] == {"parse": []}


def test_unknown_body_format_is_a_channel_error():
    assert FORMATS == ("json", "slack", "discord")
    with pytest.raises(ChannelError, match="unknown webhook format"):
        webhook_body("teams", MESSAGE)
