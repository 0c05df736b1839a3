"""What a site's alerts watch and where they go: the settings kept in `Site.alerts`, read into
dataclasses and checked when an owner changes them (the Alerts page, app/dashboard/alerts.py).

- The traffic rule: a spike or a drop of page views against the site's own baseline, at a
  sensitivity, above a minimum volume, then quiet for a cool-down.
- Goal rules: a goal (or any conversion) reached N times in a local day ("first sale of the
  day" is N = 1), or no conversion for H hours between two local hours.
- Webhooks, each with its own signing secret; phone numbers for text messages (Amazon SNS, on
  AWS); the members who get emails; a mute.
- The members who get the weekly and the monthly report (app/alerts/reports.py).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from app.analytics import goal_reports
from app.analytics.goals import ANY_CONVERSION, conversion_key, goals_of
from app.analytics.stats import StatsError
from app.i18n import gettext as _

from .channels import FORMATS, check_webhook_url


class AlertSettingsError(ValueError):
    """A setting that cannot be kept; the message says why (shown to the owner on the Alerts page,
    so it is in the page's language)."""


class Threshold(NamedTuple):
    """How far from normal a window must be to fire: `ratio` times the baseline (or a
    `ratio`-th of it for a drop), and `z` standard deviations away."""
    ratio: float
    z: float


SENSITIVITIES = {"low": Threshold(3.0, 5.0), "normal": Threshold(2.0, 4.0), "high": Threshold(1.5, 3.0)}
GOAL_RULE_KINDS = ("reached", "silence")
MAX_GOAL_RULES = 20
MAX_WEBHOOKS = 5
MAX_MUTE_HOURS = 7 * 24
MAX_PHONES = 5
PHONE = re.compile(r"\+[1-9][0-9]{6,14}\Z")  # E.164: what Amazon SNS takes
REPORT_KINDS = ("weekly", "monthly")


@dataclass
class TrafficRule:
    enabled: bool = False
    sensitivity: str = "normal"  # a key of SENSITIVITIES
    min_volume: int = 20  # page views in the 30-minute window below which nothing fires
    cooldown_h: int = 3  # after an alert, no other of the same direction for this long

    @property
    def threshold(self) -> Threshold:
        return SENSITIVITIES[self.sensitivity]


@dataclass
class GoalRule:
    id: str
    kind: str  # "reached": `goal` reached `threshold` times in a local day; "silence": no
    # conversion for `hours` between the local hours `from_h` and `to_h`
    goal: str = ANY_CONVERSION  # a goal's key (g:<id>), a conversion's (c:<name>), or any conversion
    threshold: int = 1
    hours: int = 2
    from_h: int = 9
    to_h: int = 18


@dataclass
class Webhook:
    id: str
    url: str
    format: str  # one of channels.FORMATS
    secret: str  # signs every request (channels.sign); shown to the owner once, when made
    created_ms: int = 0


@dataclass
class AlertSettings:
    traffic: TrafficRule = field(default_factory=TrafficRule)
    goal_rules: list[GoalRule] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)  # ids of the members who get emails
    muted_until_ms: int = 0
    # kind (REPORT_KINDS) -> ids of the members who get that report; not alerts: a mute leaves them be
    reports: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in REPORT_KINDS})
    phones: list[str] = field(default_factory=list)  # E.164 numbers alerts are texted to (where SMS is set up)

    @classmethod
    def of(cls, site) -> "AlertSettings":
        data = site.alerts or {}
        reports = data.get("reports", {})
        return cls(TrafficRule(**data.get("traffic", {})), [GoalRule(**r) for r in data.get("goal_rules", [])],
                   [Webhook(**w) for w in data.get("webhooks", [])], list(data.get("recipients", [])),
                   int(data.get("muted_until_ms", 0)), {kind: list(reports.get(kind, [])) for kind in REPORT_KINDS},
                   list(data.get("phones", [])))

    @property
    def watches(self) -> bool:
        """Anything to evaluate."""
        return self.traffic.enabled or bool(self.goal_rules)

    def muted(self, now_ms: int) -> bool:
        return now_ms < self.muted_until_ms

    def save(self, store, site) -> None:
        site.alerts = asdict(self)
        store.update_site(site)


# -- changes an owner makes; each checks, saves, and returns what the audit log should say
def set_traffic(store, site, enabled: bool, sensitivity: str, min_volume: str, cooldown_h: str) -> str:
    if sensitivity not in SENSITIVITIES:
        raise AlertSettingsError(_("sensitivity is one of %(choices)s", choices=", ".join(SENSITIVITIES)))
    settings = AlertSettings.of(site)
    settings.traffic = TrafficRule(enabled, sensitivity, _whole(min_volume, _("the minimum volume"), 1, 1_000_000),
                                   _whole(cooldown_h, _("the cool-down"), 1, 48))
    settings.save(store, site)
    rule = settings.traffic
    return (f"traffic alerts {'on' if enabled else 'off'}: {rule.sensitivity}, at least {rule.min_volume} "
            f"page views, {rule.cooldown_h} h cool-down")


def goal_choices(site, conversion_names: list[str]) -> dict[str, str]:
    """What a goal rule can watch, as the form lists it: key -> label."""
    choices = {ANY_CONVERSION: _("Any conversion")}
    choices.update({g.key: g.name for g in goals_of(site)})
    choices.update({conversion_key(n): _("%(name)s (conversion)", name=n) for n in conversion_names})
    return choices


def goal_name(site, key: str) -> str | None:
    """What an alert calls the goal a rule watches (as the reports do; any conversion is
    "conversion"); None for a goal deleted since."""
    if key == ANY_CONVERSION:
        return "conversion"
    try:
        return goal_reports.goal_name(site, key)
    except StatsError:
        return None


def add_goal_rule(store, site, kind: str, goal: str, threshold: str, hours: str, from_h: str, to_h: str,
                  choices: dict[str, str]) -> GoalRule:
    settings = AlertSettings.of(site)
    if len(settings.goal_rules) >= MAX_GOAL_RULES:
        raise AlertSettingsError(_("a site has at most %(num)s goal alerts", num=MAX_GOAL_RULES))
    rule_id = secrets.token_hex(4)
    if kind == "reached":
        if goal not in choices:
            raise AlertSettingsError(_("choose one of the site's goals or conversions"))
        rule = GoalRule(rule_id, kind, goal, threshold=_whole(threshold, _("the number"), 1, 1_000_000))
    elif kind == "silence":
        start, end = _whole(from_h, _("the first hour"), 0, 23), _whole(to_h, _("the last hour"), 1, 24)
        length = _whole(hours, _("the number of hours"), 1, 24)
        if start >= end:
            raise AlertSettingsError(_("the hours the rule watches end after they begin (e.g. 9 to 18)"))
        if length > end - start:
            raise AlertSettingsError(_("%(hours)s hours do not fit between %(start)s:00 and %(end)s:00",
                                       hours=length, start=start, end=end))
        rule = GoalRule(rule_id, kind, ANY_CONVERSION, hours=length, from_h=start, to_h=end)
    else:
        raise AlertSettingsError(_("a goal alert is one of %(choices)s", choices=", ".join(GOAL_RULE_KINDS)))
    settings.goal_rules.append(rule)
    settings.save(store, site)
    return rule


def delete_goal_rule(store, site, rule_id: str) -> GoalRule:
    settings = AlertSettings.of(site)
    rule = _one(settings.goal_rules, lambda r: r.id == rule_id, _("no such goal alert (deleted meanwhile?)"))
    settings.goal_rules.remove(rule)
    settings.save(store, site)
    return rule


def add_webhook(store, site, url: str, fmt: str, now_ms: int, *, allow_private: bool) -> Webhook:
    """A new webhook with a new secret (returned: the page shows it once)."""
    if fmt not in FORMATS:
        raise AlertSettingsError(_("a webhook's format is one of %(choices)s", choices=", ".join(FORMATS)))
    settings = AlertSettings.of(site)
    if len(settings.webhooks) >= MAX_WEBHOOKS:
        raise AlertSettingsError(_("a site has at most %(num)s webhooks", num=MAX_WEBHOOKS))
    try:
        url = check_webhook_url(url, allow_private=allow_private)
    except ValueError as exc:
        raise AlertSettingsError(str(exc)) from exc
    webhook = Webhook(secrets.token_hex(4), url, fmt, "whsec_" + secrets.token_urlsafe(24), now_ms)
    settings.webhooks.append(webhook)
    settings.save(store, site)
    return webhook


def delete_webhook(store, site, webhook_id: str) -> Webhook:
    settings = AlertSettings.of(site)
    webhook = find_webhook(settings, webhook_id)
    settings.webhooks.remove(webhook)
    settings.save(store, site)
    return webhook


def find_webhook(settings: AlertSettings, webhook_id: str) -> Webhook:
    return _one(settings.webhooks, lambda w: w.id == webhook_id, _("no such webhook (deleted meanwhile?)"))


def find_phone(settings: AlertSettings, phone: str) -> str:
    return _one(settings.phones, lambda p: p == phone, _("no such number (removed meanwhile?)"))


def _one(items: list, wanted, missing: str):
    """The first of a site's rules, webhooks or numbers that is `wanted`; refused with `missing`."""
    found = next((item for item in items if wanted(item)), None)
    if found is None:
        raise AlertSettingsError(missing)
    return found


def add_phone(store, site, number: str) -> str:
    """A number alerts are texted to, as E.164 (+82 10-1234-5678 -> +821012345678)."""
    phone = re.sub(r"[\s().-]", "", number)
    if not PHONE.match(phone):
        raise AlertSettingsError(_("a phone number begins with + and its country code, such as +82 10 1234 5678"))
    settings = AlertSettings.of(site)
    if phone in settings.phones:
        raise AlertSettingsError(_("that number gets this site's alerts already"))
    if len(settings.phones) >= MAX_PHONES:
        raise AlertSettingsError(_("a site texts at most %(num)s numbers", num=MAX_PHONES))
    settings.phones.append(phone)
    settings.save(store, site)
    return phone


def remove_phone(store, site, phone: str) -> None:
    settings = AlertSettings.of(site)
    settings.phones.remove(find_phone(settings, phone))
    settings.save(store, site)


def subscribe(store, site, user_id: str, on: bool) -> None:
    """Whether a member gets this site's alerts by email (each member chooses for themself)."""
    settings = AlertSettings.of(site)
    settings.recipients = [u for u in settings.recipients if u != user_id] + ([user_id] if on else [])
    settings.save(store, site)


def subscribe_report(store, site, user_id: str, kind: str, on: bool) -> None:
    """Whether a member gets the site's weekly or monthly report (each member chooses for themself)."""
    if kind not in REPORT_KINDS:
        raise AlertSettingsError(_("a report is one of %(choices)s", choices=", ".join(REPORT_KINDS)))
    settings = AlertSettings.of(site)
    settings.reports[kind] = [u for u in settings.reports[kind] if u != user_id] + ([user_id] if on else [])
    settings.save(store, site)


def mute(store, site, hours: str, now_ms: int) -> int:
    """No alert is sent until the returned time (0 hours: unmute). Alerts still fire and are kept."""
    length = _whole(hours, _("the number of hours"), 0, MAX_MUTE_HOURS)
    settings = AlertSettings.of(site)
    settings.muted_until_ms = now_ms + length * 3_600_000 if length else 0
    settings.save(store, site)
    return settings.muted_until_ms


def _whole(text: str, what: str, least: int, most: int) -> int:
    """`text` as a whole number from `least` to `most`; `what` names it in the message (translated)."""
    try:
        number = int(str(text).strip())
    except ValueError:
        raise AlertSettingsError(_("%(what)s is a whole number", what=what)) from None
    if not least <= number <= most:
        raise AlertSettingsError(_("%(what)s is between %(least)s and %(most)s", what=what, least=least, most=most))
    return number
