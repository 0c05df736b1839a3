"""A site's Alerts page: what fired (for every member), whether I get alerts and the weekly and
monthly reports by email (each member for themself), and, for admins, the rules, the webhooks, a
mute, and a test of each channel. Public links never reach it: it has no /share/ route. Each
change is written to the audit log."""
from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import force_locale

from app.alerts import settings as rules
from app.alerts.channels import FORMATS
from app.alerts.messages import alert_words, test_alert
from app.alerts.notify import NO_SMS
from app.alerts.settings import REPORT_KINDS, AlertSettings, AlertSettingsError
from app.alerts.traffic import BASELINE_WEEKS, MIN_WEEKS
from app.analytics.periods import local_day_number
from app.auth import audit
from app.auth.access import current_user, needs_role
from app.context import get_store, notifier_of, now_ms
from app.i18n import gettext as _, lazy_gettext as _l, ngettext

from .formatting import local_datetime
from .settings import actor
from .views import bp

HISTORY = 50  # alerts the page lists
WEEK_MS = 7 * 24 * 3_600_000
# What saving the report boxes says, by the reports chosen (in REPORT_KINDS' order).
REPORTS_CHOSEN = {
    ("weekly",): _l("You will get the weekly report by email."),
    ("monthly",): _l("You will get the monthly report by email."),
    ("weekly", "monthly"): _l("You will get the weekly and the monthly report by email."),
}


def _notifier():
    """The app's, linking from this request's address where no public URL is set (on AWS the web
    function cannot be told its own API's URL)."""
    notifier = notifier_of(current_app)
    if notifier.public_url:
        return notifier
    return replace(notifier, public_url=request.host_url.rstrip("/") + request.script_root)


def render_alerts(error: str | None = None, status: int = 200, new_webhook=None):
    """The page; `new_webhook` is one just made, whose secret this answer shows once."""
    store, site, now = get_store(), g.site, now_ms()
    settings, notifier = AlertSettings.of(site), _notifier()

    def emails(user_ids: list[str]) -> list[str]:  # who chose emails (or a report), for admins to see
        return [user.email for user in map(store.get_user, user_ids) if user]

    learning_until = site.created_ms + MIN_WEEKS * WEEK_MS
    return render_template(
        "pages/alerts.html", site=site, role=g.role, settings=settings, error=error, new_webhook=new_webhook,
        alerts=store.list_alerts(site.site_id, HISTORY), now=now, formats=FORMATS,
        sensitivities=rules.SENSITIVITIES, choices=_goal_choices(),
        me=current_user(), email_ready=notifier.mailer is not None, sms_ready=notifier.texter is not None,
        learning_until=learning_until if learning_until > now else None, baseline_weeks=BASELINE_WEEKS,
        recipients=emails(settings.recipients), report_kinds=REPORT_KINDS,
        report_recipients={kind: emails(ids) for kind, ids in settings.reports.items()},
        hosts={hook.id: webhook_host(hook.url) for hook in settings.webhooks}, describe=describe_rule,
        alert_words=alert_words, delivery_words=delivery_words,
    ), status


def _goal_choices() -> dict[str, str]:
    """What a goal alert can watch: the site's goals and the conversions of its last 30 days."""
    store, site = get_store(), g.site
    today = local_day_number(site.timezone, now_ms())
    names = store.sum_counters(site.site_id, "conversions", "name", today - 29, today + 1)
    return rules.goal_choices(site, sorted(names))


def webhook_host(url: str) -> str:
    """What the page shows of a webhook's URL: its host. The path of many (Slack's, Discord's)
    is itself a secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def _saved(message: str, action: str, detail: str, anchor: str | None = None):
    audit.record(get_store(), g.site.site_id, actor(), action, detail, now_ms())
    flash(message)
    return redirect(url_for("dashboard.alerts", site_id=g.site.site_id, _anchor=anchor))


def _checked(change):
    """Run a change of the settings; a refused one shows the page again with why."""
    try:
        return change()
    except AlertSettingsError as exc:
        return render_alerts(error=str(exc), status=400)


@bp.get("/sites/<site_id>/alerts")
def alerts(site_id: str):
    return render_alerts()


@bp.post("/sites/<site_id>/alerts/me")
def subscribe(site_id: str):
    on = request.form.get("email") == "on"
    rules.subscribe(get_store(), g.site, current_user().user_id, on)
    return _saved(_("You will get this site's alerts by email.") if on else
                  _("You no longer get this site's alerts by email."),
                  "alerts.subscribe", f"{current_user().email}: {'on' if on else 'off'}", "me")


@bp.post("/sites/<site_id>/alerts/reports")
def subscribe_reports(site_id: str):
    me, chosen = current_user(), [kind for kind in REPORT_KINDS if request.form.get(kind) == "on"]
    for kind in REPORT_KINDS:
        rules.subscribe_report(get_store(), g.site, me.user_id, kind, kind in chosen)
    return _saved(str(REPORTS_CHOSEN[tuple(chosen)]) if chosen else _("You get no report by email."),
                  "alerts.reports", f"{me.email}: " + ", ".join(f"{kind} {'on' if kind in chosen else 'off'}"
                                                                 for kind in REPORT_KINDS), "reports")


@bp.post("/sites/<site_id>/alerts/traffic")
@needs_role("admin")
def traffic(site_id: str):
    form = request.form
    return _checked(lambda: _saved(_("Traffic alerts saved."), "alerts.traffic", rules.set_traffic(
        get_store(), g.site, form.get("enabled") == "on", form.get("sensitivity", ""), form.get("min_volume", ""),
        form.get("cooldown_h", "")), "traffic"))


@bp.post("/sites/<site_id>/alerts/goals")
@needs_role("admin")
def add_goal_rule(site_id: str):
    form = request.form

    def add():
        rule = rules.add_goal_rule(get_store(), g.site, form.get("kind", ""), form.get("goal", ""),
                                   form.get("threshold", "1"), form.get("hours", "2"), form.get("from_h", "9"),
                                   form.get("to_h", "18"), _goal_choices())
        return _saved(_("Goal alert added."), "alerts.goal_add", _logged(rule, g.site), "goals")
    return _checked(add)


@bp.post("/sites/<site_id>/alerts/goals/<rule_id>/delete")
@needs_role("admin")
def delete_goal_rule(site_id: str, rule_id: str):
    def delete():
        rule = rules.delete_goal_rule(get_store(), g.site, rule_id)
        return _saved(_("Goal alert deleted."), "alerts.goal_delete", _logged(rule, g.site), "goals")
    return _checked(delete)


@bp.post("/sites/<site_id>/alerts/webhooks")
@needs_role("admin")
def add_webhook(site_id: str):
    def add():
        hook = rules.add_webhook(get_store(), g.site, request.form.get("url", ""), request.form.get("format", ""),
                                 now_ms(), allow_private=current_app.config["WEBHOOKS_PRIVATE"])
        audit.record(get_store(), site_id, actor(), "alerts.webhook_add", f"{webhook_host(hook.url)} ({hook.format})",
                     now_ms())
        return render_alerts(new_webhook=hook)  # its secret, in this answer only
    return _checked(add)


@bp.post("/sites/<site_id>/alerts/webhooks/<webhook_id>/delete")
@needs_role("admin")
def delete_webhook(site_id: str, webhook_id: str):
    def delete():
        hook = rules.delete_webhook(get_store(), g.site, webhook_id)
        return _saved(_("Webhook deleted."), "alerts.webhook_delete", webhook_host(hook.url), "webhooks")
    return _checked(delete)


@bp.post("/sites/<site_id>/alerts/webhooks/<webhook_id>/test")
@needs_role("admin")
def test_webhook(site_id: str, webhook_id: str):
    def send():
        hook = rules.find_webhook(AlertSettings.of(g.site), webhook_id)
        host = webhook_host(hook.url)
        return _tested(lambda alert: _notifier().webhook(g.site, alert, hook, attempts=1),
                       _("the webhook %(host)s", host=host),
                       _("Test sent: the webhook %(host)s took it.", host=host), "webhooks")
    return _checked(send)


@bp.post("/sites/<site_id>/alerts/phones")
@needs_role("admin")
def add_phone(site_id: str):
    def add():
        if _notifier().texter is None:
            raise AlertSettingsError(str(NO_SMS))
        phone = rules.add_phone(get_store(), g.site, request.form.get("phone", ""))
        return _saved(_("%(phone)s will get this site's alerts as text messages.", phone=phone), "alerts.phone_add",
                      phone, "phones")
    return _checked(add)


@bp.post("/sites/<site_id>/alerts/phones/remove")
@needs_role("admin")
def remove_phone(site_id: str):
    phone = request.form.get("phone", "")

    def remove():
        rules.remove_phone(get_store(), g.site, phone)
        return _saved(_("%(phone)s removed.", phone=phone), "alerts.phone_remove", phone, "phones")
    return _checked(remove)


@bp.post("/sites/<site_id>/alerts/phones/test")
@needs_role("admin")
def test_phone(site_id: str):
    def send():
        phone = rules.find_phone(AlertSettings.of(g.site), request.form.get("phone", ""))
        return _tested(lambda alert: _notifier().text(g.site, alert, phone), _("a text to %(phone)s", phone=phone),
                       _("Test sent: a text to %(phone)s took it.", phone=phone), "phones")
    return _checked(send)


@bp.post("/sites/<site_id>/alerts/test-email")
def test_email(site_id: str):
    me = current_user()
    return _tested(lambda alert: _notifier().email(g.site, alert, me.email), _("email to %(email)s", email=me.email),
                   _("Test sent: email to %(email)s took it.", email=me.email), "me")


def _tested(send, channel: str, took_it: str, anchor: str):
    """A test alert through one channel, kept in the history with what the channel did. `channel`
    names it in the alert itself (in the page's language, as the test is); `took_it` is what the
    page says when the channel took it (a sentence of its own, so a translation can word it)."""
    alert = test_alert(g.site, channel, now_ms())
    get_store().add_alert(alert)
    delivery = send(alert)
    alert.deliveries = [delivery.as_dict()]
    get_store().update_alert(alert)
    flash(took_it if delivery.ok else _("The test did not arrive: %(detail)s", detail=delivery.detail))
    return redirect(url_for("dashboard.alerts", site_id=g.site.site_id, _anchor=anchor))


@bp.post("/sites/<site_id>/alerts/mute")
@needs_role("admin")
def mute(site_id: str):
    def save():
        until = rules.mute(get_store(), g.site, request.form.get("hours", ""), now_ms())
        if not until:
            return _saved(_("Alerts are on again."), "alerts.unmute", "")
        when = local_datetime(until, g.site.timezone)
        return _saved(_("Alerts muted until %(when)s: they are still listed here.", when=when), "alerts.mute",
                      f"until {when}")
    return _checked(save)


def describe_rule(rule: rules.GoalRule, site) -> str:
    """A goal alert in words, as the page says it (in its language) and the audit log (_logged)."""
    if rule.kind == "silence":
        return _("No conversion for %(hours)s h between %(start)s:00 and %(end)s:00",
                 hours=rule.hours, start=rule.from_h, end=rule.to_h)
    name = rules.goal_name(site, rule.goal)  # "conversion" for any conversion
    if rule.threshold == 1:
        return (_("The first conversion of the day") if name == "conversion" else
                _("The first %(goal)s of the day", goal=name or _("a deleted goal")))
    if name == "conversion":
        return ngettext("%(num)s conversion in a day", "%(num)s conversions in a day", rule.threshold)
    return _("%(num)s × %(goal)s in a day", num=rule.threshold, goal=name or _("a deleted goal"))


def _logged(rule: rules.GoalRule, site) -> str:
    """A goal alert as the audit log keeps it: in English, whatever language the page speaks."""
    with force_locale("en"):
        return describe_rule(rule, site)


# A delivery as the history keeps it (English, app/alerts/channels.py and notify.py): where it
# went ("webhook hooks.slack.com", "email to a@b.example", "text to +8210...") and what happened
# ("HTTP 503 after 4 attempts"); the page says them in its language.
DELIVERY_CHANNELS = ((re.compile(r"^webhook (.+)$"), _l("webhook %(target)s")),
                     (re.compile(r"^email to (.+)$"), _l("email to %(target)s")),
                     (re.compile(r"^text to (.+)$"), _l("text to %(target)s")))
AFTER_ATTEMPTS = re.compile(r"^(.*) after (\d+) attempts$")


def delivery_words(delivery: dict) -> tuple[str, str]:
    """A kept delivery's channel and detail in the page's language (unknown words as kept)."""
    channel = str(delivery.get("channel") or "")
    for pattern, words in DELIVERY_CHANNELS:
        if found := pattern.match(channel):
            channel = words % {"target": found.group(1)}
            break
    detail = str(delivery.get("detail") or "")
    if found := AFTER_ATTEMPTS.match(detail):
        return channel, _("%(reason)s after %(count)s attempts", reason=_known(found.group(1)), count=found.group(2))
    return channel, _known(detail)


def _known(text: str) -> str:
    """A message the catalogue knows (notify.NO_EMAIL) translated; anything else as it is."""
    return _(text) if text else text  # (gettext("") would be the catalogue's header)
