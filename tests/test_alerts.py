"""Alerts: which fire, when, once, and what they say. Traffic goes through the real pipeline
(record_batch, then the aggregator or the stream function) with an injected clock."""
from __future__ import annotations

import datetime
import multiprocessing
import uuid

import pytest

from app.aggregation import drain
from app.alerts import settings as alert_settings
from app.alerts.evaluate import fold_alerts, minute_alerts
from app.auth.sites import create_site
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.store.sqlite import SQLiteStore
from tests.conftest import CHROME_UA

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
# The day the traffic test watches: Wednesday 2026-11-18, UTC, 00:00.
DAY0 = int(datetime.datetime(2026, 11, 18, tzinfo=datetime.timezone.utc).timestamp() * 1000)


def page_views(start_ms: int, end_ms: int, per_hour: float, referrer: str = "", path: str = "/") -> list[dict]:
    """Page views spread evenly over [start, end), each a visit of its own."""
    count = round(per_hour * (end_ms - start_ms) / HOUR)
    step = (end_ms - start_ms) / max(count, 1)
    return [{"event_id": uuid.uuid4().hex, "type": "page_view", "timestamp": int(start_ms + i * step),
             "user_id": f"v-{uuid.uuid4().hex[:12]}", "session_id": uuid.uuid4().hex,
             "url": f"https://example.com{path}", "referrer": referrer, "title": "Page"} for i in range(count)]


def usual_day(day_ms: int) -> list[dict]:
    """60 page views an hour from 8:00 to 22:00, 4 an hour at night."""
    return (page_views(day_ms, day_ms + 8 * HOUR, 4) + page_views(day_ms + 8 * HOUR, day_ms + 22 * HOUR, 60)
            + page_views(day_ms + 22 * HOUR, day_ms + DAY, 4))


def send(store, site, events: list[dict]) -> None:
    """Each event as the tracker sends it, received when it happened; then folded."""
    for event in events:
        record_batch(store, site, [event], Client("198.51.100.23", CHROME_UA), event["timestamp"])


def test_traffic_alerts_fire_on_a_spike_and_a_drop_and_not_on_a_slow_rise_or_a_quiet_night(tmp_path):
    store = SQLiteStore(str(tmp_path / "alerts.db"))
    store.create_schema()
    site = create_site(store, "Example", ["example.com"], DAY0 - 5 * WEEK, site_id="example")
    alert_settings.set_traffic(store, site, True, "normal", "20", "3")
    for week in (4, 3, 2, 1):  # the same weekday of the four weeks before: the baseline
        send(store, site, usual_day(DAY0 - week * WEEK))
    drain(store)
    today = (
        page_views(DAY0, DAY0 + 3 * HOUR, 4) + page_views(DAY0 + 4 * HOUR, DAY0 + 8 * HOUR, 4)  # 3-4 h: none
        + page_views(DAY0 + 8 * HOUR, DAY0 + 10 * HOUR, 60)
        + page_views(DAY0 + 10 * HOUR, DAY0 + 10 * HOUR + 20 * MINUTE, 600,  # a spike from a link on HN
                     "https://news.ycombinator.com/item?id=1", "/launch")
        + page_views(DAY0 + 10 * HOUR + 20 * MINUTE, DAY0 + 14 * HOUR, 60)
        # 14:00-15:00: the site is down
        + page_views(DAY0 + 15 * HOUR, DAY0 + 17 * HOUR, 60)
        + page_views(DAY0 + 17 * HOUR, DAY0 + 22 * HOUR, 78)  # an evening 30% busier: a slow rise
        + page_views(DAY0 + 22 * HOUR, DAY0 + DAY, 4))
    fired = []
    for minute in range(DAY0 + MINUTE, DAY0 + DAY + MINUTE, MINUTE):  # every minute, as the schedule does
        send(store, site, [e for e in today if minute - MINUTE <= e["timestamp"] < minute])
        drain(store)
        fired += [(alert.kind, (alert.fired_ms - DAY0) // MINUTE) for _, alert in minute_alerts(store, minute)]
    assert fired == [("spike", 10 * 60 + 4), ("drop", 14 * 60 + 23)]  # (kind, minute of the day)
    spike, drop = sorted(store.list_alerts("example"), key=lambda a: a.fired_ms)
    assert spike.title == "Traffic spike on Example: 2.2x the usual"
    assert spike.details["since_ms"] == DAY0 + 10 * HOUR
    assert spike.details["sources"][0][0] == "Hacker News" and spike.details["pages"][0][0] == "/launch"
    assert spike.details["path"] == "/sites/example?period=today&source=Hacker+News"
    assert "since 10:00" in spike.text and "/launch" in spike.text
    assert drop.title.startswith("Traffic drop on Example: ") and drop.details["since_ms"] == DAY0 + 14 * HOUR
    store.close()


def test_a_goal_reached_n_times_today_fires_once_that_day(store, site, ingest, make_event, clock):
    from app.analytics import goals
    signup = goals.add_goal(store, site, "Sign-up", "page", "/welcome", "", "", clock.now_ms() - HOUR)
    reached = alert_settings.add_goal_rule(store, site, "reached", signup.key, "2", "", "", "",
                                           alert_settings.goal_choices(site, []))
    first_sale = alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "",
                                              alert_settings.goal_choices(site, []))

    def fired():
        return [(alert.rule_id, alert.title) for _, alert in fold_alerts(store, [site.site_id], clock.now_ms())]

    ingest(make_event(url="https://example.com/welcome", session_id="a"))
    assert fired() == []
    ingest(make_event(type="conversion", name="Purchase", value=30, session_id="a"))
    assert fired() == [(first_sale.id, "First conversion of the day on Example")]
    ingest(make_event(url="https://example.com/welcome", session_id="b", user_id="visitor-2"))
    assert fired() == [(reached.id, "Sign-up: 2 today on Example")]
    ingest(make_event(url="https://example.com/welcome", session_id="c", user_id="visitor-3"))
    assert fired() == []  # once a day
    alert = next(a for a in store.list_alerts(site.site_id) if a.rule_id == reached.id)
    assert alert.text == "Sign-up today: 2 by 11:06 (the alert is set at 2)."
    assert alert.details["path"] == f"/sites/{site.site_id}?period=today&goal={signup.key.replace(':', '%3A')}"
    clock.advance(DAY)  # the next day counts again
    ingest(make_event(url="https://example.com/welcome", session_id="d", user_id="visitor-4"))
    ingest(make_event(url="https://example.com/welcome", session_id="e", user_id="visitor-5"))
    assert [rule for rule, _ in fired()] == [reached.id]


@pytest.mark.parametrize("backend", ["sqlite"])  # the process's memory, not the store's
def test_what_a_process_remembers_of_a_site_is_not_the_same_ids_next_site_and_is_bounded(store, site, monkeypatch):
    """A key without a rule id (a traffic alert's, a report's) must not be taken as sent for a
    site deleted and made again under the same id; and the memory forgets past MOST_KNOWN."""
    from dataclasses import replace

    from app.alerts import fired
    reads = []

    def history():
        reads.append(1)
        return []
    fired.remember(store, site, "spike@2026-12-03T10")
    assert fired.not_added(store, site, ["spike@2026-12-03T10"], history) == set() and reads == []
    made_again = replace(site, created_ms=site.created_ms + MINUTE)
    assert fired.not_added(store, made_again, ["spike@2026-12-03T10"], history) == {"spike@2026-12-03T10"}
    monkeypatch.setattr(fired, "MOST_KNOWN", 2)
    for key in ("a", "b", "c"):
        fired.remember(store, site, key)
    assert fired.not_added(store, site, ["a"], history) == {"a"} and len(reads) == 2  # forgotten: read again


def test_no_conversion_for_hours_within_the_watched_hours_fires_once(store, site, ingest, make_event, clock):
    site.timezone = "Asia/Seoul"
    store.update_site(site)
    rule = alert_settings.add_goal_rule(store, site, "silence", "", "", "2", "9", "18",
                                        alert_settings.goal_choices(site, []))
    day = int(datetime.datetime(2026, 11, 19, tzinfo=datetime.timezone(datetime.timedelta(hours=9)))
              .timestamp() * 1000)  # Seoul's midnight
    clock.now = day + 9 * HOUR + 30 * MINUTE
    ingest(make_event(type="conversion", name="Purchase", timestamp=clock.now))

    def fired_at(hour: float) -> list[str]:
        return [alert.text for _, alert in minute_alerts(store, day + int(hour * HOUR))]

    assert fired_at(8.9) == [] and fired_at(11.5) == []  # before the hours; 2 h after 9:30 is 11:35
    assert fired_at(11.6) == ["The last conversion came by 09:35; none since. (Watched: 9:00 to 18:00, Asia/Seoul.)"]
    assert fired_at(12) == [] and fired_at(17.9) == []  # once that day
    assert fired_at(24 + 10.9) == []  # the next day: no conversion since 9:00, not yet 2 hours
    assert fired_at(24 + 11.1)[0].startswith("No conversion since 9:00")
    assert [a.rule_id for a in store.list_alerts(site.site_id)] == [rule.id, rule.id]


def _evaluate_in_a_process(path: str, now_ms: int, start, results) -> None:
    store = SQLiteStore(path)
    start.wait(10)
    results.put([alert.key for _, alert in minute_alerts(store, now_ms)])
    store.close()


def test_two_processes_that_wake_together_fire_one_alert(tmp_path):
    path = str(tmp_path / "two.db")
    store = SQLiteStore(path)
    store.create_schema()
    site = create_site(store, "Example", ["example.com"], DAY0 - WEEK, site_id="example")
    alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", alert_settings.goal_choices(site, []))
    send(store, site, [{**page_views(DAY0 + HOUR, DAY0 + 2 * HOUR, 1)[0], "type": "conversion", "name": "Sale"}])
    drain(store)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_evaluate_in_a_process, args=(path, DAY0 + 3 * HOUR, start, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    keys = sorted((results.get(timeout=30) for _ in workers), key=len)
    for worker in workers:
        worker.join(10)
    assert keys[0] == [] and len(keys[1]) == 1  # one process added and sends it; the other found it taken
    assert [a.key for a in store.list_alerts("example")] == keys[1]
    store.close()


def test_an_alert_goes_by_email_to_the_members_who_chose_it_and_to_signed_webhooks(
        store, site, ingest, make_event, clock, admin, smtp_server, receiver, caplog):
    import hashlib
    import hmac
    import json
    from email import message_from_bytes, policy

    from app import create_app
    from app.alerts.evaluate import deliver_all
    from app.context import notifier_of
    from app.auth.members import add_member
    from app.auth.users import create_user
    from app.store.base import Membership

    controller, mailbox = smtp_server
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
                      "MAIL_FROM": "LiveInsight <alerts@liveinsight.example>", "WEBHOOKS_PRIVATE": True,
                      "PUBLIC_URL": "https://stats.example/"}, store=store, clock=clock)
    notifier = notifier_of(app)
    viewer = create_user(store, "vi@example.com", "a long password 1", clock.now_ms())
    gone = create_user(store, "gone@example.com", "a long password 2", clock.now_ms())
    add_member(store, site.site_id, viewer.email, "viewer", clock.now_ms())
    store.put_membership(Membership(site.site_id, gone.user_id, "viewer", clock.now_ms()))
    for user in (admin, viewer, gone):
        alert_settings.subscribe(store, site, user.user_id, True)
    store.delete_membership(site.site_id, gone.user_id)  # no longer sees the site: no email
    hook = alert_settings.add_webhook(store, site, receiver.url("/hook"), "slack", clock.now_ms(), allow_private=True)
    alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", alert_settings.goal_choices(site, []))

    ingest(make_event(type="conversion", name="Purchase", value=30))
    deliver_all(store, notifier, fold_alerts(store, [site.site_id], clock.now_ms()))

    mails = {e.rcpt_tos[0]: message_from_bytes(e.content, policy=policy.default) for e in mailbox.envelopes}
    assert sorted(mails) == ["admin@example.com", "vi@example.com"]
    mail = mails["vi@example.com"]
    assert mail["Subject"] == "First conversion of the day on Example"
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    link = f"https://stats.example/sites/{site.site_id}?period=today"
    assert "The first conversion of today came in by 11:06." in text and link in text
    assert f'href="{link}"' in html and f"https://stats.example/sites/{site.site_id}/alerts" in html
    [request] = receiver.requests
    timestamp, signature = (p.split("=", 1)[1] for p in request["headers"]["X-LiveInsight-Signature"].split(","))
    expected = hmac.new(hook.secret.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert json.loads(request["body"])["text"].startswith("*First conversion of the day on Example*")
    [alert] = store.list_alerts(site.site_id)
    assert [(d["channel"], d["ok"]) for d in alert.deliveries] == [
        ("email to admin@example.com", True), ("email to vi@example.com", True),
        ("webhook 127.0.0.1", True)]

    # Muted: the next alert is kept, marked, and sent nowhere.
    alert_settings.mute(store, site, "48", clock.now_ms())
    clock.advance(DAY)
    ingest(make_event(type="conversion", name="Purchase", value=30, session_id="next-day"))
    deliver_all(store, notifier, fold_alerts(store, [site.site_id], clock.now_ms()))
    assert len(mailbox.envelopes) == 2 and len(receiver.requests) == 1
    latest = store.list_alerts(site.site_id)[0]
    assert latest.details["muted_until_ms"] == clock.now_ms() - DAY + 48 * HOUR and latest.deliveries == []
    # The webhook's secret is in no log line and no alert.
    assert hook.secret not in caplog.text and hook.secret not in repr(store.list_alerts(site.site_id))


def test_a_minute_reads_past_weeks_once_an_hour_and_tries_no_alert_fired_already(tmp_path, monkeypatch):
    """What keeps a minute's evaluation cheap on DynamoDB: the baseline's hours (a week old or
    more: they no longer change) are read once per process and hour, and an alert of its period
    already added is not added again (a conditional write each minute, on AWS), nor looked for
    in the history when this process added it (a read each minute or fold)."""
    store = SQLiteStore(str(tmp_path / "cheap.db"))
    store.create_schema()
    site = create_site(store, "Example", ["example.com"], DAY0 - 5 * WEEK, site_id="example")
    alert_settings.set_traffic(store, site, True, "normal", "20", "3")
    alert_settings.add_goal_rule(store, site, "silence", "", "", "1", "0", "24", alert_settings.goal_choices(site, []))
    reads, adds, histories = [], [], []
    real_read, real_add, real_list = store.read_counters, store.add_alert, store.list_alerts
    monkeypatch.setattr(store, "read_counters", lambda *a, **k: reads.append(k.get("grain")) or real_read(*a, **k))
    monkeypatch.setattr(store, "add_alert", lambda alert: adds.append(alert.key) or real_add(alert))
    monkeypatch.setattr(store, "list_alerts", lambda *a, **k: histories.append(a) or real_list(*a, **k))
    now = DAY0 + 10 * HOUR + 5 * MINUTE
    assert [alert.kind for _, alert in minute_alerts(store, now)] == ["silence"]  # none since midnight
    first = reads.count("hour")
    reads.clear()
    histories.clear()
    assert minute_alerts(store, now + MINUTE) == []
    assert reads.count("hour") == 0 < first  # the same hours of the same weeks: kept
    assert adds == [adds[0]]  # the silence alert of the day: added once, not tried again
    assert histories == []  # nor looked for: this process added it
    store.close()
