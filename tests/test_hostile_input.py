"""Hostile input: strings strangers control (URLs, referrers, titles, event names, properties,
ids, user agents) go into every ingested field; the dashboard, reports, CSV and API show them
inert, the store keeps them whole and clean or refuses the event whole.

The browser half of this (a real Chromium proving no script runs) is tests/e2e/test_hostile_input.py.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from markupsafe import escape

from app.dashboard.widgets import BREAKDOWNS, WIDGETS
from tests.conftest import CHROME_UA
from tests.test_privacy import everything_stored

# (payload, what must never appear as is in a page)
PAYLOADS = [
    ("<script>window.__xss=1</script>", "<script>window"),
    ('"><img src=x onerror="window.__xss=1">', "<img src=x"),
    ("<svg/onload=window.__xss=1>", "<svg/onload"),
    ("javascript:window.__xss=1//", 'href="javascript:'),
    ("'); DROP TABLE events; --", None),
    ("{{ 7 * 7 }}{% raw %}", None),
]


def send(client, site, events, ua=CHROME_UA):
    return client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": events}),
                       content_type="text/plain", headers={"User-Agent": ua, "Origin": "https://example.com"})


def hostile_events(make_event, payload: str) -> list[dict]:
    """The payload in every field a tracker sends, one event or another."""
    query = f"?utm_source={quote(payload)}&utm_medium={quote(payload)}&utm_campaign={quote(payload)}"
    return [
        make_event(url=f"https://example.com/{payload}{query}", title=payload,
                   referrer=f"https://ref.example/{payload}", user_id=payload, session_id=payload),
        make_event(type="custom", name=payload, props={payload[:60]: payload}, user_id=payload, session_id=payload,
                   url=f"https://example.com/{payload}"),
        make_event(type="conversion", name=payload, value=1, user_id=payload, session_id=payload,
                   url=f"https://example.com/{payload}", event_id=(payload + "-event-id")[:64]),
    ]


def every_surface(client, site) -> dict[str, object]:
    """Every page, widget, CSV and API answer that shows ingested strings."""
    base = f"/sites/{site.site_id}"
    pages = {"overview": client.get(f"{base}?period=today"), "realtime": client.get(f"{base}/realtime"),
             "live": client.get(f"{base}/live", headers={"HX-Request": "true"})}
    for name in WIDGETS:
        pages[f"widget {name}"] = client.get(f"{base}/widgets/{name}?period=today", headers={"HX-Request": "true"})
    for name in BREAKDOWNS:
        pages[f"csv {name}"] = client.get(f"{base}/reports/{name}.csv?period=today")
    pages["api stats"] = client.get(f"/api/stats?site={site.site_id}&period=today&breakdown=page,source,utm_campaign")
    pages["api realtime"] = client.get(f"/api/realtime?site={site.site_id}")
    return pages


@pytest.mark.parametrize("payload, marker", PAYLOADS, ids=[p[:12] for p, _ in PAYLOADS])
def test_hostile_strings_are_stored_whole_and_shown_inert(client, store, site, make_event, settle, payload, marker):
    answer = send(client, site, hostile_events(make_event, payload), ua=f"Mozilla/5.0 {payload} Chrome/130.0")
    assert answer.status_code == 202 and answer.json["data"]["accepted"] == 3, answer.json
    settle()
    stored = {e["type"]: e for e in store.recent_events(site.site_id, 10)}
    assert stored["page_view"]["title"] == payload and stored["custom"]["name"] == payload
    assert stored["page_view"]["utm_campaign"] == payload and stored["custom"]["props"] == {payload[:60]: payload}
    surfaces = every_surface(client, site)
    shown = 0
    for name, response in surfaces.items():
        assert response.status_code == 200, name
        body = response.get_data(as_text=True)
        if name.startswith("api"):
            assert response.mimetype == "application/json", name  # never rendered as a page
        elif name.startswith("csv"):
            assert response.mimetype == "text/csv", name
        elif marker:
            assert marker not in body, f"{name} shows the payload as markup"
        shown += str(escape(payload)) in body
    assert shown, "the payload should be on the dashboard, as text"


def test_csv_cells_cannot_become_spreadsheet_formulas(client, store, site, make_event, settle):
    send(client, site, [make_event(url="https://example.com/a?utm_source=%3DHYPERLINK(%22http://evil%22)")])
    settle()
    csv = client.get(f"/sites/{site.site_id}/reports/utm_source.csv?period=today").get_data(as_text=True)
    assert "'=HYPERLINK" in csv and "\n=HYPERLINK" not in csv


def test_decoded_utm_values_are_cleaned_like_any_other_text(client, store, site, make_event, settle):
    """UTM parameters are percent-decoded: CR, NUL, ESC and a bidi override must not reach
    the store (a bare CR in a CSV cell made a spreadsheet start a row with =cmd)."""
    query = "utm_source=news%0D%3Dcmd%7C%27%20%2FC%20calc%27%21A0&utm_campaign=a%00b%1Bc%E2%80%AEd&utm_medium=x%0Ay"
    assert send(client, site, [make_event(url=f"https://example.com/a?{query}")]).json["data"]["accepted"] == 1
    settle()
    [event] = store.recent_events(site.site_id, 1)
    assert event["utm_source"] == "news =cmd|' /C calc'!A0" == event["source"]
    assert (event["utm_campaign"], event["utm_medium"]) == ("abcd", "x y")
    csv_text = client.get(f"/sites/{site.site_id}/reports/utm_source.csv?period=today").get_data(as_text=True)
    assert csv_text.splitlines()[1].startswith('"news =cmd')


def test_a_csv_cell_stays_one_inert_cell_whatever_it_holds():
    from app.dashboard.reports import csv_safe
    assert csv_safe("=1+1") == "'=1+1" and csv_safe("@SUM(A1)") == "'@SUM(A1)" and csv_safe("\tx") == "'\tx"
    assert csv_safe("ok\r=cmd\n+1\r\n-2") == "ok\n'=cmd\n'+1\n'-2"
    assert (csv_safe("/pricing"), csv_safe(3), csv_safe(None)) == ("/pricing", 3, "")


def test_every_csv_field_is_quoted(client, site, make_event, settle):
    send(client, site, [make_event(url="https://example.com/a?utm_source=plain")])
    settle()
    rows = client.get(f"/sites/{site.site_id}/reports/utm_source.csv?period=today").get_data(as_text=True)
    assert rows.endswith("\r\n") and all(line.startswith('"') and line.endswith('"') for line in rows.splitlines())


def test_control_characters_and_invalid_unicode_are_cleaned_not_stored(client, store, site, make_event, settle):
    dirty = "A\x00B\x1b[31mC\u202e\ud800D\r\nE"
    body = json.dumps({"key": site.tracker_key, "events": [make_event(title=dirty, name="", props={"k": dirty})]})
    assert "\\ud800" in body  # the JSON carries a lone surrogate, as a browser's JSON.stringify can
    answer = client.post("/api/events", data=body, content_type="text/plain",
                         headers={"User-Agent": CHROME_UA, "Origin": "https://example.com"})
    assert answer.status_code == 202 and answer.json["data"]["accepted"] == 1
    settle()
    [event] = store.recent_events(site.site_id, 1)
    assert event["title"] == "AB[31mC\ufffdD  E" and event["props"] == {"k": "AB[31mC\ufffdD  E"}


def test_a_deeply_nested_body_is_a_400(client, site):
    answer = client.post("/api/events", data="[" * 50_000, content_type="application/json",
                         headers={"User-Agent": CHROME_UA, "X-API-Key": site.tracker_key})
    assert answer.status_code == 400 and answer.json == {"status": "error", "message": "body is nested too deeply"}


def test_huge_numbers_refuse_their_event_and_keep_the_rest(client, store, site, make_event, settle):
    batch = [make_event(props={"n": 10 ** 400}), make_event(type="conversion", name="sale", value=1.7e308),
             make_event(type="conversion", name="sale", value=1.7e308), make_event(props={"n": float("inf")}),
             make_event(type="conversion", name="sale", value=1e12, title="kept")]
    body = json.dumps({"key": site.tracker_key, "events": batch}).replace("Infinity", "1e400")
    answer = client.post("/api/events", data=body, content_type="text/plain",
                         headers={"User-Agent": CHROME_UA, "Origin": "https://example.com"})
    assert answer.status_code == 202
    assert answer.json["data"]["accepted"] == 1 and [r["index"] for r in answer.json["data"]["rejected"]] == [0, 1, 2, 3]
    settle()
    assert [e["title"] for e in store.recent_events(site.site_id, 9)] == ["kept"]
    values = store.sum_counters(site.site_id, "conversion_value", "name", 0, 10 ** 6)
    assert values == {"sale": 1e12}


def test_a_body_that_is_not_utf8_is_refused_whole(client, store, site):
    answer = client.post("/api/events", data=b'{"key": "' + site.tracker_key.encode() + b'", "events": [{"title": "\xff\xfe"}]}',
                         content_type="text/plain", headers={"User-Agent": CHROME_UA})
    assert answer.status_code == 400 and answer.json["status"] == "error"
    assert store.recent_events(site.site_id, 1) == []


@pytest.mark.parametrize("field", ["url", "referrer", "title", "name", "user_id", "session_id", "event_id", "props"])
def test_an_event_with_a_10000_character_field_is_refused_whole(client, store, site, make_event, settle, field):
    long = "x" * 10_000
    values = {"url": f"https://example.com/{long}", "props": {"k": long}, "name": long}
    event = make_event(type="custom", name="n", title="unique-title-marker")
    marker = event["event_id"] if field == "title" else "unique-title-marker"  # in a field not too long
    event[field] = values.get(field, long)
    answer = send(client, site, [event, make_event(title="kept")])
    data = answer.json["data"]
    assert answer.status_code == 202 and data["accepted"] == 1
    assert [r["index"] for r in data["rejected"]] == [0] and field in data["rejected"][0]["error"]
    settle()
    assert marker not in everything_stored(store)  # nothing of it was kept
    assert [e["title"] for e in store.recent_events(site.site_id, 5)] == ["kept"]
