"""Scheduled reports by email: a weekly and a monthly summary of a site, to the members who chose
it (each for themself, on the Alerts page).

- Due: the weekly report on Monday from SEND_HOUR in the site's time zone, for the Monday-Sunday
  week before; the monthly one on the 1st from SEND_HOUR, for the month before. A report is an
  `Alert` of kind "report" keyed by its period, so it goes once however many processes find it
  due; a server down at SEND_HOUR sends it when it is back within the period after, never later
  (by then the next report is the one due).
- Content (`Alert.details`): the key figures with their change against the period before, the
  top pages and sources, the goals, and the dashboard link of the period.
- Sending: one email per recipient, in their language (language.message_language), with an
  unsubscribe link of its own (a token signed with the app's SECRET_KEY, RFC 8058 one-click
  headers too) that works without logging in (app/dashboard/unsubscribe.py). Reports are not
  alerts: a mute does not stop them.
- Kept (the title, the text, the figures' labels and the period) in English, as alerts are; each
  email composes them anew in its reader's language (`report_words`, `shown_in_language`).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Iterable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_interval, format_skeleton
from itsdangerous import BadData, URLSafeSerializer

from app.analytics import goal_reports, stats
from app.analytics.periods import Period, day_start_ms
from app.i18n import DEFAULT_LANGUAGE, gettext as _, language, lazy_gettext as _l
from app.store.base import Alert, Site, Store, User

from .channels import Delivery
from .fired import not_added, remember
from .language import message_language, speaking
from .notify import NO_EMAIL, Notifier, readers
from .settings import REPORT_KINDS, AlertSettings

log = logging.getLogger(__name__)

SEND_HOUR = 8  # local time on the period's first day
TOP = 5  # pages and sources a report lists
MAX_GOALS = 10
HISTORY = 100  # recent alerts looked through for a report already added
SALT = "liveinsight-report-unsubscribe"
# (metric of stats.summary, its name in a report)
FIGURES = (("visitors", _l("Visitors")), ("visits", _l("Visits")), ("pageviews", _l("Page views")),
           ("bounce_rate", _l("Bounce rate")), ("visit_duration_s", _l("Visit duration")))
LOWER_IS_BETTER = {"bounce_rate"}


# -- when
def report_period(kind: str, tz_name: str, now_ms: int) -> Period | None:
    """The period whose report is due at `now_ms`: the week (Monday to Sunday) or the month before
    the current one; None before SEND_HOUR on the current one's first day."""
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz_name))
    today = local.date()
    start = today - timedelta(days=today.weekday()) if kind == "weekly" else today.replace(day=1)
    if today == start and local.hour < SEND_HOUR:
        return None
    last = start - timedelta(days=1)
    if kind == "weekly":  # compared with the 7 days before
        return Period("custom", last - timedelta(days=6), last)
    return Period("last_month", last.replace(day=1), last)  # compared with the whole month before


def period_label(kind: str, period: Period) -> str:
    """"November 2026"; "23–29 Nov 2026", "30 Nov – 6 Dec 2026", "28 Dec 2026 – 3 Jan 2027"; in
    another language as it writes them ("2026년 11월", "2026년 11월 23일~29일")."""
    first, last = period.first, period.last
    if (locale := language()) != DEFAULT_LANGUAGE:
        return format_skeleton("yMMMM", first, locale=locale) if kind == "monthly" else \
            format_interval(first, last, "yMMMd", locale=locale)
    if kind == "monthly":
        return f"{first:%B %Y}"
    if first.year != last.year:
        return f"{first:%-d %b %Y} – {last:%-d %b %Y}"
    if first.month != last.month:
        return f"{first:%-d %b} – {last:%-d %b %Y}"
    return f"{first.day}–{last.day} {last:%b %Y}"


def report_key(kind: str, period: Period) -> str:
    return f"report:{kind}@{period.first.isoformat()}"


def due_reports(store: Store, now_ms: int, sites: Iterable[Site] | None = None) -> list[tuple[Site, Alert]]:
    """The reports due now that no one has added yet: built and added, for the caller to send
    (`deliver_all`). One site failing does not stop the others."""
    added = []
    for site in store.list_sites() if sites is None else sites:
        chosen = AlertSettings.of(site).reports
        for kind in REPORT_KINDS:
            try:
                alert = _due(store, site, kind, chosen[kind], now_ms)
                if alert is not None:
                    if store.add_alert(alert):
                        added.append((site, alert))
                    remember(store, site, alert.key)
            except Exception:  # noqa: BLE001  (the next minute tries again)
                log.exception("the %s report of site %s could not be made", kind, site.site_id)
    return added


def _due(store: Store, site: Site, kind: str, user_ids: list[str], now_ms: int) -> Alert | None:
    """The report to add now: due, not added yet, about days the site existed, and for someone."""
    period = report_period(kind, site.timezone, now_ms) if user_ids else None
    if period is None or day_start_ms(site.timezone, period.last + timedelta(days=1)) <= site.created_ms:
        return None
    # A report stays due all its week or month: once known added, not built (nor looked for) again.
    key = report_key(kind, period)
    if not not_added(store, site, [key], lambda: store.list_alerts(site.site_id, HISTORY)) \
            or not readers(store, site, user_ids):
        return None
    return build_report(store, site, kind, period, now_ms)


# -- what
def build_report(store: Store, site: Site, kind: str, period: Period, now_ms: int) -> Alert:
    metrics = stats.summary(store, site, period)["metrics"]
    with speaking(DEFAULT_LANGUAGE):  # kept in English
        details = {
            "kind": kind, "period": period_label(kind, period),
            "from": period.first.isoformat(), "to": period.last.isoformat(),
            "figures": [_figure(name, str(title), metrics[name]) for name, title in FIGURES],
            "pages": _top(store, site, period, "page"), "sources": _top(store, site, period, "source"),
            "goals": [{"name": row["name"], "conversions": row["conversions"],
                       "conversion_rate": row["conversion_rate"]}
                      for row in goal_reports.goals(store, site, period)["rows"][:MAX_GOALS]],
            "path": dashboard_path(site, period.first, period.last),
        }
        title, text = report_words(site, details)
    return Alert(site.site_id, report_key(kind, period), now_ms, f"report:{kind}", "report", title, text, details)


def report_words(site: Site, details: dict) -> tuple[str, str]:
    """A report's title (its email's subject) and text (summary_text), in the language spoken now."""
    shown = shown_in_language(details)
    if shown["kind"] == "weekly":
        title = _("%(site)s: weekly report, %(period)s", site=site.name, period=shown["period"])
    else:
        title = _("%(site)s: monthly report, %(period)s", site=site.name, period=shown["period"])
    return title, summary_text(shown)


def shown_in_language(details: dict) -> dict:
    """A report's details with what is not data (the period, the figures' labels and values) in
    the language spoken now."""
    period = Period(details["kind"], date.fromisoformat(details["from"]), date.fromisoformat(details["to"]))
    labels = {metric: str(label) for metric, label in FIGURES}
    figures = [{**f, "label": labels.get(f["metric"], f["label"]), "shown": _shown(f["metric"], f["value"])}
               for f in details["figures"]]
    return {**details, "period": period_label(details["kind"], period), "figures": figures}


def dashboard_path(site: Site, first: date, last: date) -> str:
    """The overview of the report's days (the query of app/api/schemas.py)."""
    return f"/sites/{site.site_id}?" + urlencode({"period": "custom", "from": first.isoformat(),
                                                  "to": last.isoformat()})


def _top(store: Store, site: Site, period: Period, dimension: str) -> list[list]:
    """[[name as the dashboard shows it, visitors]] of the TOP rows."""
    from app.dashboard.formatting import dimension_label  # here: app.dashboard imports app.alerts
    rows = stats.breakdown(store, site, period, dimension, limit=TOP)["rows"]
    return [[dimension_label(row["value"], dimension), row["visitors"]] for row in rows]


def _figure(metric: str, label: str, figures: dict) -> dict:
    """A key figure with its change, as the emails show them; `better`: whether the change is
    good news (None: no change), for its colour."""
    value, change = figures["value"], figures["change"]
    return {"metric": metric, "label": label, "value": value, "change": change, "shown": _shown(metric, value),
            "change_shown": "—" if change is None else f"{change:+.0f}%",
            "better": None if not change else (change < 0) == (metric in LOWER_IS_BETTER)}


def _shown(metric: str, value: float | None) -> str:
    """A key figure as the emails show it, in the language spoken now."""
    from app.dashboard.formatting import duration, number, percent  # here: app.dashboard imports app.alerts
    return {"bounce_rate": percent, "visit_duration_s": duration}.get(metric, number)(value)


def summary_text(details: dict) -> str:
    """The report in a paragraph, in the language spoken now: the Alerts page's history shows it."""
    sentences = ["; ".join(f"{f['label']} {f['shown']} ({f['change_shown']})" for f in details["figures"]) + "."]
    if details["pages"]:
        sentences.append(_("Top pages: %(pages)s.", pages=", ".join(f"{page} ({n})" for page, n in details["pages"])))
    if details["sources"]:
        sentences.append(_("Top sources: %(sources)s.",
                           sources=", ".join(f"{source} ({n})" for source, n in details["sources"])))
    if details["goals"]:
        sentences.append(_("Goals: %(goals)s.",
                           goals=", ".join(f"{g['name']} ({g['conversions']})" for g in details["goals"])))
    return " ".join(sentences)


# -- sending
def send_report(store: Store, notifier: Notifier, site: Site, alert: Alert) -> list[Delivery]:
    """One email to each member who chose this report and may still see the site, in their
    language; what each took is saved with the report."""
    users = readers(store, site, AlertSettings.of(site).reports[alert.details["kind"]])
    done = [_email(notifier, site, alert, user, message_language(store, site, user)) for user in users]
    alert.deliveries = [d.as_dict() for d in done]
    store.update_alert(alert)
    return done


def _email(notifier: Notifier, site: Site, alert: Alert, user: User, lang: str) -> Delivery:
    if notifier.mailer is None:
        return Delivery(f"email to {user.email}", False, str(NO_EMAIL), 0)
    kind = alert.details["kind"]
    stop_url = None
    if notifier.secret_key:  # else the email says where to stop it: the Alerts page
        stop_url = notifier.link("/unsubscribe/" + unsubscribe_token(notifier.secret_key, site.site_id,
                                                                      user.user_id, kind))
    with speaking(lang):
        title, _text = report_words(site, alert.details)
        page = {"alert": alert, "title": title, "site": site, "kind": kind,
                "details": shown_in_language(alert.details), "stop_url": stop_url,
                "url": notifier.alert_url(alert), "alerts_url": notifier.alerts_page(site)}
        text = notifier.templates.get_template("emails/report.txt").render(page)
        html = notifier.templates.get_template("emails/report.html").render(page)
    # RFC 8058: a mail client's own "Unsubscribe" button POSTs List-Unsubscribe=One-Click there.
    headers = {"List-Unsubscribe": f"<{stop_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"} \
        if stop_url else None
    return notifier.mailer([user.email], title, text, html, headers=headers)


# -- unsubscribing
def unsubscribe_token(secret_key: str, site_id: str, user_id: str, kind: str) -> str:
    """What an unsubscribe link carries: who stops which report of which site, signed. It does
    not expire: a report read months later must still be stoppable."""
    return URLSafeSerializer(secret_key, salt=SALT).dumps([site_id, user_id, kind])


def read_unsubscribe_token(secret_keys: list[str], token: str) -> tuple[str, str, str] | None:
    """(site id, user id, kind) of a token signed with any of the keys (oldest first, the current
    last: a rotated key's links still work); None for a forged or damaged one."""
    try:
        site_id, user_id, kind = URLSafeSerializer(secret_keys, salt=SALT).loads(token)
    except (BadData, ValueError, TypeError):
        return None
    return (site_id, user_id, kind) if kind in REPORT_KINDS else None
