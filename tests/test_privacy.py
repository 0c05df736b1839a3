"""Privacy: IP addresses never stored, privacy signals a site honours, referrer spam and
foreign pages, and GDPR requests about one visitor (UI and CLI), each in the audit log."""
from __future__ import annotations

import json
import sqlite3

import pytest

from app.analytics import stats
from app.analytics.periods import parse_period
from app.auth.sites import set_privacy
from app.privacy import visitor_fingerprint
from tests.conftest import CHROME_UA, T0, csrf_token
from tests.test_accounts import member


def send(client, site, *events, ip="198.51.100.23", **headers):
    return client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": list(events)}),
                       content_type="text/plain", environ_base={"REMOTE_ADDR": ip},
                       headers={"User-Agent": CHROME_UA, "Origin": "https://example.com", **headers})


def everything_stored(store) -> str:
    """Every value of every record the store holds, as one text (whatever the backend)."""
    if hasattr(store, "path"):
        db = sqlite3.connect(store.path)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [row for table in tables for row in db.execute(f"SELECT * FROM {table}")]
        db.close()
        return repr(rows)
    tables = [store.sites_table, store.events_table, store.aggregates_table, store.accounts_table]
    return repr([store.client.scan(TableName=t)["Items"] for t in tables])


@pytest.mark.parametrize("raw, masked", [("198.51.100.23", "198.51.100.0"),
                                         ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::")])
def test_no_ip_address_is_stored_anywhere(client, store, site, make_event, settle, raw, masked):
    assert send(client, site, make_event(), make_event(type="heartbeat"), ip=raw).json["data"]["accepted"] == 2
    settle()
    stored = everything_stored(store)
    assert raw not in stored and raw.replace(":", "") not in stored
    assert masked in stored  # the masked address is what is kept
    assert [e["ip"] for e in store.recent_events(site.site_id, 5)] == [masked, masked]


@pytest.mark.parametrize("option, header", [("honour_gpc", {"Sec-GPC": "1"}), ("honour_dnt", {"DNT": "1"})])
def test_privacy_signals_the_site_honours_keep_nothing(client, store, site, make_event, settle, clock,
                                                      option, header):
    assert send(client, site, make_event(), **header).json["data"]["accepted"] == 1  # not honoured yet
    set_privacy(store, site, option == "honour_dnt", option == "honour_gpc", [])
    clock.advance(5_000)  # a site changed elsewhere reaches ingestion within 5 s (SitesByKey)
    answer = send(client, site, make_event(), make_event(type="heartbeat"), **header)
    assert answer.status_code == 202
    assert answer.json["data"]["accepted"] == 0
    assert answer.json["data"]["dropped"] == {option.removeprefix("honour_"): 2}
    assert send(client, site, make_event()).json["data"]["accepted"] == 1  # browsers without the signal
    settle()
    assert len(store.recent_events(site.site_id, 10)) == 2
    period = parse_period("today", site.timezone, T0)
    assert stats.filtered(store, site, period) == {option.removeprefix("honour_"): 2}


def test_referrer_spam_is_dropped_and_counted_for_the_owner(client, store, site, make_event, settle):
    set_privacy(store, site, False, False, ["spammy.example"])
    answer = send(client, site, make_event(referrer="https://www.semalt.com/crawler"),
                  make_event(referrer="http://buy.spammy.example/x"),
                  make_event(referrer="https://news.ycombinator.com/item?id=1"))
    assert answer.json["data"]["accepted"] == 1 and answer.json["data"]["dropped"] == {"spam": 2}
    bot = send(client, site, make_event(), **{"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert bot.json["data"]["dropped"] == {"bot": 1}
    settle()
    assert [e["source"] for e in store.recent_events(site.site_id, 10)] == ["Hacker News"]
    report = client.get("/api/stats?site=example&period=today").json["data"]
    assert report["filtered"] == {"spam": 2, "bot": 1}
    widget = client.get("/sites/example/widgets/filtered?period=today", headers={"HX-Request": "true"})
    html = widget.get_data(as_text=True)
    assert "Referrer spam" in html and "Bots" in html and "Not counted" in html


def test_events_from_pages_on_other_domains_are_refused(client, store, site, make_event):
    answer = send(client, site, make_event(url="https://copycat.example/page"), make_event(url="https://blog.example.com/a"))
    data = answer.json["data"]
    assert data["accepted"] == 1  # a subdomain of the site's domain is the site
    assert data["rejected"] == [{"index": 0, "error": "url: copycat.example is not one of the site's domains"}]


def test_privacy_settings_are_saved_from_the_settings_page(store, site, log_in):
    admin = log_in(member(store, site, "admin"))
    saved = admin.post("/sites/example/privacy", data={"honour_gpc": "on", "blocked_referrers": "Spam.example\nbad.example",
                                                       "csrf_token": csrf_token(admin)})
    assert saved.status_code == 302
    site = store.get_site("example")
    assert (site.honour_gpc, site.honour_dnt, site.blocked_referrers) == (True, False, ["bad.example", "spam.example"])
    assert store.list_audit("example")[0].action == "site.privacy"
    bad = admin.post("/sites/example/privacy", data={"blocked_referrers": "not a domain!", "csrf_token": csrf_token(admin)})
    assert bad.status_code == 400 and "not a domain" in bad.get_data(as_text=True)
    assert store.get_site("example").honour_gpc  # nothing half-saved


def test_a_visitors_data_is_downloaded_then_erased_from_the_settings_page(store, site, log_in, ingest, make_event):
    ingest(make_event(user_id="visitor-ada", session_id="s1"), make_event(user_id="visitor-ada", session_id="s1", type="click"))
    ingest(make_event(user_id="visitor-bob", session_id="s2"))
    admin = log_in(member(store, site, "admin"))
    download = admin.post("/sites/example/visitors/export", data={"visitor_id": "visitor-ada", "csrf_token": csrf_token(admin)})
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    document = download.json
    assert document["visitor_id"] == "visitor-ada" and len(document["events"]) == 2
    assert {e["user_id"] for e in document["events"]} == {"visitor-ada"} and len(document["visits"]) == 1
    unconfirmed = admin.post("/sites/example/visitors/erase", data={"visitor_id": "visitor-ada", "csrf_token": csrf_token(admin)})
    assert unconfirmed.status_code == 400 and len(store.visitor_data("example", "visitor-ada").events) == 2
    erased = admin.post("/sites/example/visitors/erase", data={"visitor_id": "visitor-ada", "confirm": "on",
                                                               "csrf_token": csrf_token(admin)})
    assert erased.status_code == 302
    assert store.visitor_data("example", "visitor-ada").events == []
    assert len(store.visitor_data("example", "visitor-bob").events) == 1
    audit = store.list_audit("example")
    assert {e.action for e in audit} == {"visitor.export", "visitor.erase"}
    assert all("visitor-ada" not in e.detail and visitor_fingerprint("visitor-ada") in e.detail for e in audit)
    viewer = log_in(member(store, site, "viewer"))
    assert viewer.post("/sites/example/visitors/export", data={"visitor_id": "visitor-bob",
                                                               "csrf_token": csrf_token(viewer)}).status_code == 403


def test_visitor_commands(app, store, site, ingest, make_event, tmp_path):
    ingest(make_event(user_id="visitor-ada", session_id="s1"))
    runner = app.test_cli_runner()
    out = tmp_path / "ada.json"
    with app.app_context():
        exported = runner.invoke(args=["export-visitor", "example", "visitor-ada", "--output", str(out)])
        refused = runner.invoke(args=["erase-visitor", "example", "visitor-ada"], input="n\n")
        assert refused.exit_code == 1 and len(store.visitor_data("example", "visitor-ada").events) == 1
        erased = runner.invoke(args=["erase-visitor", "example", "visitor-ada", "--yes"])
    assert exported.exit_code == 0 and len(json.loads(out.read_text())["events"]) == 1
    assert erased.exit_code == 0 and "1 events" in erased.output
    assert store.visitor_data("example", "visitor-ada").events == []
    assert [e.actor for e in store.list_audit("example")] == ["cli", "cli"]


def test_the_site_is_edited_from_the_settings_page(store, site, log_in):
    admin = log_in(member(store, site, "admin"))
    saved = admin.post("/sites/example/settings", data={"name": "Renamed", "domains": "example.com, shop.example",
                                                        "timezone": "Europe/Paris", "csrf_token": csrf_token(admin)})
    assert saved.status_code == 302
    edited = store.get_site("example")
    assert (edited.name, edited.domains, edited.timezone) == ("Renamed", ["example.com", "shop.example"], "Europe/Paris")
    assert edited.tracker_key == site.tracker_key
    bad = admin.post("/sites/example/settings", data={"name": "X", "domains": "", "timezone": "Mars/Olympus",
                                                      "csrf_token": csrf_token(admin)})
    assert bad.status_code == 400 and store.get_site("example").name == "Renamed"
    viewer = log_in(member(store, site, "viewer"))
    assert viewer.post("/sites/example/settings", data={"name": "Mine", "domains": "example.com", "timezone": "UTC",
                                                        "csrf_token": csrf_token(viewer)}).status_code == 403
