"""Sending an alert that fired: an email to each member who chose this site's alerts, and a
signed request to each of its webhooks; what each channel did is saved with the alert.

Settings (Config): LIVEINSIGHT_SMTP_URL and LIVEINSIGHT_MAIL_FROM (email; unset: no email; on AWS
the Lambda entry points send through Amazon SES instead: `mailer`), LIVEINSIGHT_PUBLIC_URL (what
links in alerts begin with), LIVEINSIGHT_WEBHOOKS_PRIVATE=on (let webhooks reach private
addresses: a LAN, the tests), the app's SECRET_KEY (signs the reports' unsubscribe links).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Callable, Protocol

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.auth.users import role_on
from app.i18n import gettext as _, install_gettext, lazy_gettext as _l, padded
from app.store.base import Alert, Site, Store, User

from .channels import Delivery, SmtpSettings, post_webhook, send_email, webhook_body
from .language import message_language, page_language, speaking
from .messages import alert_words, sources_shown
from .settings import AlertSettings, Webhook


class Mailer(Protocol):
    """Sends one message (plain text, an HTML alternative, extra headers such as List-Unsubscribe)
    and says what the mail server did: SMTP on the single box (channels.send_email), Amazon SES on
    AWS (app/lambda_handlers.py). A Notifier without one sends no email."""
    def __call__(self, to: list[str], subject: str, text: str, html: str, *,
                 headers: dict[str, str] | None = None) -> Delivery: ...


# What the history says of a channel that is not there (str() where kept: they are lazy).
NO_EMAIL = _l("email is not set up on this server (LIVEINSIGHT_SMTP_URL)")
NO_SMS = _l("text messages are sent through Amazon SNS on AWS only")
# (E.164 number, message) -> what the SMS service did; None: no text messages on this server.
Texter = Callable[[str, str], Delivery]
TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "templates")


@dataclass
class Notifier:
    mailer: Mailer | None
    public_url: str
    allow_private: bool
    webhook_backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    secret_key: str = field(default="", repr=False)  # signs unsubscribe links; "": reports go without one
    texter: Texter | None = None  # Amazon SNS on AWS (app/lambda_handlers.py)
    # The emails, from templates/emails/: no Flask app needed (the stream function has none).
    templates: Environment = field(default_factory=lambda: email_templates())

    @classmethod
    def from_config(cls, config: dict) -> "Notifier":
        smtp = SmtpSettings.from_url(config["SMTP_URL"], config["MAIL_FROM"])
        return cls(partial(send_email, smtp) if smtp else None, config["PUBLIC_URL"].rstrip("/"),
                   config["WEBHOOKS_PRIVATE"], secret_key=config.get("SECRET_KEY") or "")

    def link(self, path: str) -> str:
        return self.public_url + path

    def alert_url(self, alert: Alert) -> str:
        """Where the alert's figures are on the dashboard."""
        return self.link(alert.details.get("path", ""))

    def alerts_page(self, site: Site) -> str:
        return self.link(f"/sites/{site.site_id}/alerts")

    def message(self, site: Site, alert: Alert) -> dict:
        """What a webhook carries (channels.webhook_body formats it): its title and text in the
        language spoken now; its keys and details as kept."""
        fired = datetime.fromtimestamp(alert.fired_ms / 1000, timezone.utc).isoformat(timespec="seconds")
        details = {k: v for k, v in alert.details.items() if k != "path"}
        title, text = alert_words(site, alert)
        return {"title": title, "text": text, "url": self.alert_url(alert),
                "site": site.site_id, "kind": alert.kind, "fired_at": fired, "details": details}

    # Each channel composes in `lang` (language.message_language; None: a test from a page, in the
    # page's language) and sends outside it: what the history keeps of a send is not translated.
    def email(self, site: Site, alert: Alert, to: str, lang: str | None = None) -> Delivery:
        if self.mailer is None:
            return Delivery(f"email to {to}", False, str(NO_EMAIL), 0)
        url, settings_url = self.alert_url(alert), self.alerts_page(site)
        with speaking(lang or page_language()):
            title, words = alert_words(site, alert)
            text = "\n\n".join([
                words, _("Open the dashboard: %(url)s", url=url),
                _("You get this because you chose to receive alerts of %(site)s.", site=site.name) + " "
                + _("Change that, or mute alerts, here: %(url)s", url=settings_url)]) + "\n"
            html = self.templates.get_template("emails/alert.html").render(
                alert=alert, title=title, text=words, sources=sources_shown(alert.details.get("sources") or []),
                site=site, url=url, settings_url=settings_url)
        return self.mailer([to], title, text, html)

    def webhook(self, site: Site, alert: Alert, hook: Webhook, attempts: int = 4, lang: str | None = None) -> Delivery:
        """`attempts`: 1 for a test from the page, whose answer says at once whether it arrived."""
        with speaking(lang or page_language()):
            body = webhook_body(hook.format, self.message(site, alert))
        return post_webhook(hook.url, hook.secret, body, allow_private=self.allow_private, attempts=attempts,
                            backoff_s=self.webhook_backoff_s, sleep=self.sleep)

    def text(self, site: Site, alert: Alert, phone: str, lang: str | None = None) -> Delivery:
        """A text message: the title and the link (a phone shows a few lines, not the figures)."""
        if self.texter is None:
            return Delivery(f"text to {phone}", False, str(NO_SMS), 0)
        with speaking(lang or page_language()):
            title, _text = alert_words(site, alert)
        return self.texter(phone, f"{title}\n{self.alert_url(alert)}")

    def deliver(self, store: Store, site: Site, alert: Alert) -> list[Delivery]:
        """Send the alert everywhere it goes (nothing while the site's alerts are muted), each in
        its reader's language, and save what each channel did."""
        settings = AlertSettings.of(site)
        if alert.details.get("muted_until_ms"):
            return []
        done = [self.email(site, alert, user.email, message_language(store, site, user))
                for user in readers(store, site, settings.recipients)]
        if settings.webhooks or settings.phones:
            lang = message_language(store, site)  # no one in particular: the owners'
            done += [self.webhook(site, alert, hook, lang=lang) for hook in settings.webhooks]
            done += [self.text(site, alert, phone, lang) for phone in settings.phones]
        alert.deliveries = [d.as_dict() for d in done]
        store.update_alert(alert)
        return done


def email_templates() -> Environment:
    """templates/emails/, translated as the app's templates are (in the language spoken:
    language.speaking), with `ljust` and `rjust` counting a Korean character as two columns."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    install_gettext(env)
    env.filters.update(ljust=padded, rjust=lambda text, width: padded(text, width, right=True))
    return env


def readers(store: Store, site: Site, user_ids: list[str]) -> list[User]:
    """Of these users, those who may still see the site: its members and the instance admins."""
    return [user for user in map(store.get_user, user_ids) if user and role_on(store, user, site.site_id)]
