"""How an alert leaves the server: e-mail over SMTP and signed webhooks (plain JSON, Slack,
Discord). Each send returns a `Delivery` for the alert history and never raises; a setting that
cannot work raises `ChannelError` when it is checked. Webhook URLs come from users, so unless
private targets are allowed a webhook never reaches a private, loopback or link-local address
(cloud metadata included), even through DNS. Standard library only, and Flask-Babel's gettext for
what a person reads: a webhook URL refused (in the page's language) and a Slack message's link
(in the alert's: language.speaking). What a send did stays as the protocol says it.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Callable, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from app.i18n import gettext as _


_DETAIL_MAX = 200  # a few words for the history, not a stack trace


@dataclass(frozen=True)
class Delivery:
    """What one send did, as the alert history shows it. `detail` never holds a password,
    a secret, a signature or a URL's userinfo, path or query."""
    channel: str
    ok: bool
    detail: str
    attempts: int

    def as_dict(self) -> dict:
        return {"channel": self.channel, "ok": self.ok, "detail": self.detail, "attempts": self.attempts}


class ChannelError(ValueError):
    """A channel setting that cannot work; the message says why (shown to the user)."""


def _error_detail(error: BaseException, *secrets: str) -> str:
    """The error as "<ExceptionClass>: <message>", any secret masked: a server may echo what it got."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text if len(text) <= _DETAIL_MAX else text[:_DETAIL_MAX - 1] + "…"


# --- e-mail

_SMTP_SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "plain" | "starttls" | "tls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpSettings | None:
        """smtp://host:port (plain: a loopback relay), smtp+starttls://user:pass@host:587 or
        smtps://user:pass@host:465; "" turns e-mail off (None)."""
        url = url.strip()
        if not url:
            return None
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise ChannelError(f"the SMTP URL is not valid ({error})") from None
        scheme = parts.scheme.lower()
        if scheme not in _SMTP_SCHEMES:
            raise ChannelError("the SMTP URL must start with smtp://, smtp+starttls:// or smtps://")
        if not parts.hostname:
            raise ChannelError("the SMTP URL has no host")
        security, default_port = _SMTP_SCHEMES[scheme]
        return cls(host=parts.hostname, port=port or default_port, security=security,
                   username=unquote(parts.username or ""), password=unquote(parts.password or ""),
                   sender=sender.strip() or f"LiveInsight <alerts@{parts.hostname}>")


def email_message(sender: str, to: list[str], subject: str, text: str, html: str | None,
                  headers: dict[str, str] | None = None, host: str = "localhost") -> EmailMessage:
    """The message every mail channel sends (SMTP here; Amazon SES on AWS, app/lambda_handlers.py).
    A header with a line break raises ValueError."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # A domain of our own: make_msgid would otherwise ask for this machine's FQDN.
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or host)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _smtp_connection(settings: SmtpSettings, timeout_s: float) -> smtplib.SMTP:
    if settings.security == "tls":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout_s,
                                context=ssl.create_default_context())
    connection = smtplib.SMTP(settings.host, settings.port, timeout=timeout_s)
    if settings.security == "starttls":
        try:
            connection.starttls(context=ssl.create_default_context())
        except BaseException:
            connection.close()
            raise
    return connection


def send_email(settings: SmtpSettings, to: list[str], subject: str, text: str, html: str | None = None,
               *, timeout_s: float = 10, headers: dict[str, str] | None = None) -> Delivery:
    """One message (plain text, and an HTML alternative when given) to every recipient in one
    SMTP transaction. Never raises: a failure is a Delivery that is not ok."""
    channel = "email to " + ", ".join(to)
    if not to:
        return Delivery(channel, False, "no recipients", 0)
    try:
        # Built inside the try: a header with a line break (say, in a rule's name) is a ValueError.
        message = email_message(settings.sender, to, subject, text, html, headers, settings.host)
        with _smtp_connection(settings, timeout_s) as connection:
            if settings.username:
                connection.login(settings.username, settings.password)
            connection.send_message(message, from_addr=parseaddr(settings.sender)[1], to_addrs=to)
    except (OSError, smtplib.SMTPException, ValueError) as error:
        return Delivery(channel, False, _error_detail(error, settings.password), 1)
    return Delivery(channel, True, "sent", 1)


# --- webhooks

FORMATS = ("json", "slack", "discord")
_URL_MAX = 2000
_RESPONSE_MAX = 64 * 1024  # read (and drop) at most this much of a receiver's answer
_RETRY_AFTER_MAX_S = 30  # a longer Retry-After would hold the sender: the backoff applies instead
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local")
_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, legacy IPv4 forms too ("127.1", "0x7f000001"):
    the resolver accepts them, so the check must."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(char in "0123456789abcdefx." for char in host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_blocked_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, loopback, link-local (169.254.169.254: cloud metadata), multicast, reserved,
    unspecified or otherwise not global, IPv4 inside IPv6 (mapped, 6to4) included."""
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour):
            if embedded is not None and _is_blocked_address(embedded):
                return True
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global)


def _is_blocked_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(_BLOCKED_SUFFIXES)


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL, stripped, if a webhook can be posted to it; else ChannelError saying why."""
    url = url.strip()
    if len(url) > _URL_MAX:
        raise ChannelError(_("the webhook URL is longer than %(max)s characters", max=_URL_MAX))
    if any(char <= " " or char == "\x7f" for char in url):
        raise ChannelError(_("the webhook URL contains spaces or control characters"))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise ChannelError(_("the webhook URL is not valid")) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ChannelError(_("the webhook URL must start with https:// or http://"))
    if "@" in parts.netloc:
        raise ChannelError(_("the webhook URL must not contain a user name or password"))
    host = parts.hostname
    if not host:
        raise ChannelError(_("the webhook URL has no host"))
    if not allow_private:
        address = _ip_literal(host)
        if _is_blocked_name(host) or (address is not None and _is_blocked_address(address)):
            raise ChannelError(_("the webhook URL points to a private or local address"))
    return url


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header: "t=<timestamp>,v1=<hex HMAC-SHA256 of '<timestamp>.' + body>". The
    receiver checks it with the secret and rejects old timestamps, against replay."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to addresses already checked, never resolving the host again (DNS rebinding);
    the Host header still names the host."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect_any(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As _PinnedHTTPConnection, with TLS verified against the host's name."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self.port, self.timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _connect_any(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """The first of the addresses that answers, as socket.create_connection does for names."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as failure:
            error = failure
    raise error


class _Target(NamedTuple):
    secure: bool
    host: str
    port: int
    path: str  # path and query, non-ASCII percent-encoded (http.client sends ASCII only)

    @classmethod
    def of(cls, url: str) -> _Target:
        parts = urlsplit(url)
        secure = parts.scheme.lower() == "https"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(secure, parts.hostname or "", parts.port or (443 if secure else 80),
                   quote(path, safe=_PRINTABLE_ASCII))


class _Outcome(NamedTuple):
    ok: bool
    detail: str
    retry: bool = False
    wait_s: float | None = None  # a Retry-After to honour instead of the backoff


def _resolve(target: _Target, allow_private: bool) -> list[str]:
    """The host's addresses, refused if any is private: a name may point anywhere."""
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private and any(_is_blocked_address(ipaddress.ip_address(a)) for a in addresses):
        # Which address is not said: that would tell a user how internal names resolve.
        raise ChannelError(_("%(host)s resolves to a private or local address", host=target.host))
    return addresses


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds if short enough to wait for (an HTTP date gets the backoff)."""
    try:
        seconds = int((value or "").strip())
    except ValueError:
        return None
    return float(seconds) if 0 <= seconds <= _RETRY_AFTER_MAX_S else None


def _judge(status: int, retry_after: str | None) -> _Outcome:
    if 200 <= status < 300:
        return _Outcome(True, f"HTTP {status}")
    if 300 <= status < 400:
        return _Outcome(False, f"HTTP {status}: redirects are not followed")
    if status == 429 or status >= 500:
        wait_s = _retry_after(retry_after) if status in (429, 503) else None
        return _Outcome(False, f"HTTP {status}", retry=True, wait_s=wait_s)
    return _Outcome(False, f"HTTP {status}")


def _exchange(target: _Target, addresses: list[str], body: bytes, headers: dict[str, str],
              timeout_s: float) -> _Outcome:
    kind = _PinnedHTTPSConnection if target.secure else _PinnedHTTPConnection
    connection = kind(target.host, target.port, addresses, timeout_s)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        with connection.getresponse() as response:
            response.read(_RESPONSE_MAX)
            return _judge(response.status, response.getheader("Retry-After"))
    finally:
        connection.close()


def _attempt(target: _Target, secret: str, body: bytes, allow_private: bool, timeout_s: float,
             now: Callable[[], float]) -> _Outcome:
    """One POST; what went wrong, and whether another try may do better."""
    try:
        addresses = _resolve(target, allow_private)
    except ChannelError as error:
        return _Outcome(False, str(error))
    except socket.gaierror as error:
        # Only a temporary resolver failure is worth another try, not a name that does not exist.
        return _Outcome(False, f"cannot resolve {target.host}", retry=error.errno == socket.EAI_AGAIN)
    except (OSError, ValueError) as error:
        return _Outcome(False, _error_detail(error, secret))
    headers = {"Content-Type": "application/json", "User-Agent": "LiveInsight-Webhook/1",
               "X-LiveInsight-Signature": sign(secret, int(now()), body)}
    try:
        return _exchange(target, addresses, body, headers, timeout_s)
    except ssl.SSLCertVerificationError as error:
        return _Outcome(False, _error_detail(error, secret))  # will not verify next time either
    except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, garbled
        return _Outcome(False, _error_detail(error, secret), retry=True)
    except Exception as error:  # noqa: BLE001 - a send never raises; the class name says enough
        return _Outcome(False, type(error).__name__)


def _webhook_channel(url: str) -> str:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        host = None
    return f"webhook {host}" if host else "webhook (no valid URL)"


def post_webhook(url: str, secret: str, body: bytes, *, allow_private: bool, attempts: int = 4,
                 backoff_s: float = 1.0, timeout_s: float = 5, sleep: Callable[[float], object] = time.sleep,
                 now: Callable[[], float] = time.time) -> Delivery:
    """POST a signed body, retrying connection failures, 429 and 5xx with exponential backoff
    (or a short Retry-After). Redirects are not followed. Never raises."""
    channel = _webhook_channel(url)
    try:
        url = check_webhook_url(url, allow_private=allow_private)
    except ChannelError as error:
        return Delivery(channel, False, str(error), 0)
    target = _Target.of(url)
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        outcome = _attempt(target, secret, body, allow_private, timeout_s, now)
        if outcome.ok or not outcome.retry or attempt == attempts:
            break
        sleep(outcome.wait_s if outcome.wait_s is not None else backoff_s * 2 ** (attempt - 1))
    detail = outcome.detail if attempt == 1 else f"{outcome.detail} after {attempt} attempts"
    return Delivery(channel, outcome.ok, detail, attempt)


def _slack_escape(text: str) -> str:
    """Slack's control characters in message text (nothing else is to be escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_body(message: dict) -> dict:
    lines = [f"*{_slack_escape(message['title'])}*", _slack_escape(message["text"])]
    if message.get("url"):
        # "|" would end the link's address early.
        label = _slack_escape(_("Open the dashboard"))
        lines.append(f"<{_slack_escape(message['url']).replace('|', '%7C')}|{label}>")
    return {"text": "\n".join(lines)}


_DISCORD_MAX = 2000  # characters in a message's content


def _discord_body(message: dict) -> dict:
    head = f"**{message['title']}**\n{message['text']}"
    tail = f"\n{message['url']}" if message.get("url") else ""
    if len(head) + len(tail) > _DISCORD_MAX:
        # Cut the text, not the link at the end.
        head = head[:max(0, _DISCORD_MAX - len(tail) - 1)] + "…"
    # An alert never pings @everyone, a role or a user, whatever its text says.
    return {"content": (head + tail)[:_DISCORD_MAX], "allowed_mentions": {"parse": []}}


def webhook_body(fmt: str, message: dict) -> bytes:
    """The body to post for a format: our own JSON (with "version": 1), Slack's or Discord's."""
    if fmt == "json":
        payload = {**message, "version": 1}
    elif fmt == "slack":
        payload = _slack_body(message)
    elif fmt == "discord":
        payload = _discord_body(message)
    else:
        raise ChannelError(f"unknown webhook format {fmt!r} (one of {', '.join(FORMATS)})")
    # default=str: a detail that is not JSON (a datetime, say) must not stop the alert.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
