"""Alerts over real TLS on loopback, verified against a certificate authority made for the test
(tests/mail_and_hooks.py's LoopbackAuthority, trusted through SSL_CERT_FILE as a deployer's own
CA would be): email over STARTTLS with a login and over implicit TLS (smtps), and webhooks over
HTTPS; a server whose certificate is not trusted gets nothing, and no password is told."""
from __future__ import annotations

import hashlib
import hmac

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from app.alerts.channels import SmtpSettings, post_webhook, send_email
from tests.mail_and_hooks import PATH, LoopbackAuthority, Receiver, RecordingHandler
from tests.server import free_port

SENDER = "LiveInsight <alerts@example.com>"
PASSWORD = "s3cret-Pa55"


@pytest.fixture
def authority(tmp_path):
    return LoopbackAuthority(tmp_path)


@pytest.fixture
def trusted(authority, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.ca_file))
    return authority


def mail_server(authority, **tls):
    """aiosmtpd with the authority's certificate, a login required (over TLS only), and a
    handler keeping what it received and who logged in."""
    handler, logins = RecordingHandler(), []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"alerts", PASSWORD.encode())
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok)
    options = {"auth_required": True, "auth_require_tls": True, **tls}
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticate, **options)
    controller.start()
    return controller, handler, logins


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # smtps: see below
@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_email_goes_over_verified_tls_with_a_login(scheme, trusted):
    server_tls = trusted.server_context()
    # aiosmtpd counts only STARTTLS as TLS for its login rule: over smtps the whole session is.
    tls = {"tls_context": server_tls, "require_starttls": True} if scheme == "smtp+starttls" \
        else {"ssl_context": server_tls, "auth_require_tls": False}
    controller, handler, logins = mail_server(trusted, **tls)
    try:
        settings = SmtpSettings.from_url(f"{scheme}://alerts:{PASSWORD}@localhost:{controller.port}", SENDER)
        delivery = send_email(settings, ["owner@example.com"], "Spike on Example", "text", "<p>html</p>")
        assert delivery.ok, delivery.detail
        [envelope] = handler.envelopes
        assert envelope.rcpt_tos == ["owner@example.com"] and logins == ["alerts"]
    finally:
        controller.stop()


def test_a_mail_server_whose_certificate_is_not_trusted_gets_no_password(authority):
    controller, handler, logins = mail_server(authority, tls_context=authority.server_context(), require_starttls=True)
    try:
        settings = SmtpSettings.from_url(f"smtp+starttls://alerts:{PASSWORD}@localhost:{controller.port}", SENDER)
        delivery = send_email(settings, ["owner@example.com"], "Spike", "text")
        assert not delivery.ok and "certificate" in delivery.detail.lower()
        assert PASSWORD not in delivery.detail and handler.envelopes == [] and logins == []
    finally:
        controller.stop()


@pytest.fixture
def https_receiver(authority):
    receiver = Receiver(tls=authority.server_context())
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join(timeout=5)


def test_a_webhook_goes_over_verified_https_signed(https_receiver, trusted):
    url = https_receiver.url(host="localhost")
    assert url.startswith("https://localhost:")
    delivery = post_webhook(url, "hook-secret", b'{"a":1}', allow_private=True, timeout_s=5,
                            now=lambda: 1_795_000_000.2)
    assert delivery.ok and delivery.detail == "HTTP 204", delivery.detail
    [request] = https_receiver.requests
    expected = hmac.new(b"hook-secret", b'1795000000.{"a":1}', hashlib.sha256).hexdigest()
    assert request["path"] == PATH and request["headers"]["X-LiveInsight-Signature"] == f"t=1795000000,v1={expected}"


def test_a_webhook_whose_certificate_is_not_trusted_is_not_sent_nor_retried(https_receiver):
    sleeps = []
    delivery = post_webhook(https_receiver.url(host="localhost"), "hook-secret", b"{}", allow_private=True,
                            timeout_s=5, sleep=sleeps.append)
    assert not delivery.ok and "certificate" in delivery.detail.lower() and delivery.attempts == 1
    assert https_receiver.requests == [] and sleeps == []
