"""A site's Alerts page: what fired (for every member), whether I get alerts and the weekly and
monthly reports by email (each member for themself), and, for admins, the rules, the webhooks, a
mute, and a test of each channel. Public links never reach it: it has no /share/ route. Each
change is written to the audit log."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, url_for

from app.alerts import settings as rules
from app.alerts.channels import FORMATS
from app.alerts.messages import test_alert
from app.alerts.notify import NO_SMS
from app.alerts.settings import REPORT_KINDS, AlertSettings, AlertSettingsError
from app.alerts.traffic import BASELINE_WEEKS, MIN_WEEKS
from app.analytics.periods import local_day_number
from app.auth import audit
from app.auth.access import current_user, needs_role
from app.context import get_store, notifier_of, now_ms

from .formatting import local_datetime
from .settings import actor
from .views import bp

HISTORY = 50  # alerts the page lists
WEEK_MS = 7 * 24 * 3_600_000


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
    return _saved("You will get this site's alerts by email." if on else "You no longer get this site's alerts by email.",
                  "alerts.subscribe", f"{current_user().email}: {'on' if on else 'off'}", "me")


@bp.post("/sites/<site_id>/alerts/reports")
def subscribe_reports(site_id: str):
    me, chosen = current_user(), [kind for kind in REPORT_KINDS if request.form.get(kind) == "on"]
    for kind in REPORT_KINDS:
        rules.subscribe_report(get_store(), g.site, me.user_id, kind, kind in chosen)
    said = " and the ".join(chosen)
    return _saved(f"You will get the {said} report by email." if chosen else "You get no report by email.",
                  "alerts.reports", f"{me.email}: " + ", ".join(f"{kind} {'on' if kind in chosen else 'off'}"
                                                                 for kind in REPORT_KINDS), "reports")


@bp.post("/sites/<site_id>/alerts/traffic")
@needs_role("admin")
def traffic(site_id: str):
    form = request.form
    return _checked(lambda: _saved("Traffic alerts saved.", "alerts.traffic", rules.set_traffic(
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
        return _saved("Goal alert added.", "alerts.goal_add", describe_rule(rule, g.site), "goals")
    return _checked(add)


@bp.post("/sites/<site_id>/alerts/goals/<rule_id>/delete")
@needs_role("admin")
def delete_goal_rule(site_id: str, rule_id: str):
    def delete():
        rule = rules.delete_goal_rule(get_store(), g.site, rule_id)
        return _saved("Goal alert deleted.", "alerts.goal_delete", describe_rule(rule, g.site), "goals")
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
        return _saved("Webhook deleted.", "alerts.webhook_delete", webhook_host(hook.url), "webhooks")
    return _checked(delete)


@bp.post("/sites/<site_id>/alerts/webhooks/<webhook_id>/test")
@needs_role("admin")
def test_webhook(site_id: str, webhook_id: str):
    def send():
        hook = rules.find_webhook(AlertSettings.of(g.site), webhook_id)
        return _tested(lambda alert: _notifier().webhook(g.site, alert, hook, attempts=1),
                       f"the webhook {webhook_host(hook.url)}", "webhooks")
    return _checked(send)


@bp.post("/sites/<site_id>/alerts/phones")
@needs_role("admin")
def add_phone(site_id: str):
    def add():
        if _notifier().texter is None:
            raise AlertSettingsError(NO_SMS)
        phone = rules.add_phone(get_store(), g.site, request.form.get("phone", ""))
        return _saved(f"{phone} will get this site's alerts as text messages.", "alerts.phone_add", phone, "phones")
    return _checked(add)


@bp.post("/sites/<site_id>/alerts/phones/remove")
@needs_role("admin")
def remove_phone(site_id: str):
    phone = request.form.get("phone", "")

    def remove():
        rules.remove_phone(get_store(), g.site, phone)
        return _saved(f"{phone} removed.", "alerts.phone_remove", phone, "phones")
    return _checked(remove)


@bp.post("/sites/<site_id>/alerts/phones/test")
@needs_role("admin")
def test_phone(site_id: str):
    def send():
        phone = rules.find_phone(AlertSettings.of(g.site), request.form.get("phone", ""))
        return _tested(lambda alert: _notifier().text(g.site, alert, phone), f"a text to {phone}", "phones")
    return _checked(send)


@bp.post("/sites/<site_id>/alerts/test-email")
def test_email(site_id: str):
    me = current_user()
    return _tested(lambda alert: _notifier().email(g.site, alert, me.email), f"email to {me.email}", "me")


def _tested(send, channel: str, anchor: str):
    """A test alert through one channel, kept in the history with what the channel did."""
    alert = test_alert(g.site, channel, now_ms())
    get_store().add_alert(alert)
    delivery = send(alert)
    alert.deliveries = [delivery.as_dict()]
    get_store().update_alert(alert)
    flash(f"Test sent: {channel} took it." if delivery.ok else f"The test did not arrive: {delivery.detail}")
    return redirect(url_for("dashboard.alerts", site_id=g.site.site_id, _anchor=anchor))


@bp.post("/sites/<site_id>/alerts/mute")
@needs_role("admin")
def mute(site_id: str):
    def save():
        until = rules.mute(get_store(), g.site, request.form.get("hours", ""), now_ms())
        if not until:
            return _saved("Alerts are on again.", "alerts.unmute", "")
        when = local_datetime(until, g.site.timezone)
        return _saved(f"Alerts muted until {when}: they are still listed here.", "alerts.mute", f"until {when}")
    return _checked(save)


def describe_rule(rule: rules.GoalRule, site) -> str:
    """A goal alert in words, as the page and the audit log say it."""
    if rule.kind == "silence":
        return f"No conversion for {rule.hours} h between {rule.from_h}:00 and {rule.to_h}:00"
    name = rules.goal_name(site, rule.goal) or "a deleted goal"
    if rule.threshold == 1:
        return f"The first {name} of the day"
    return f"{rule.threshold} conversions in a day" if name == "conversion" else f"{rule.threshold} × {name} in a day"
