"""Goals, conversions, custom events and their properties, outbound links, downloads and
not-found pages: a known history sent through the real pipeline on both backends, and the
exact figures every report gives of it."""
import csv
import io

import pytest

from app.analytics import aggregate, goal_reports, stats
from app.analytics.goals import GoalError, new_goal, page_matches
from app.analytics.periods import parse_period
from tests.conftest import T0, csrf_token

DAY = 86_400_000
GOOGLE = "https://www.google.com/"
# (visitor, visit, referrer, [(type, path, extra)]): five visits of four visitors, today.
VISITS = [
    ("a", "s1", GOOGLE, [("page_view", "/", {}), ("page_view", "/pricing", {}),
                         ("custom", "/pricing", {"name": "signup", "props": {"plan": "pro", "seats": 3}}),
                         ("conversion", "/pricing", {"name": "Purchase", "value": 29}),
                         ("click", "/pricing", {"props": {"href": "https://github.com/example/x?ref=1"}}),
                         ("click", "/pricing", {"props": {"href": "https://example.com/files/guide.pdf"}}),
                         ("click", "/pricing", {"props": {"href": "https://example.com/about"}})]),
    ("b", "s2", "", [("page_view", "/blog/one", {}), ("page_view", "/blog/two", {}),
                     ("custom", "/blog/two", {"name": "signup", "props": {"plan": "free"}}),
                     ("conversion", "/blog/two", {"name": "Purchase", "value": 10}),
                     ("conversion", "/blog/two", {"name": "Purchase", "value": 5})]),
    ("a", "s3", "", [("page_view", "/pricing", {})]),
    ("c", "s4", "https://other.org/links?x=1", [  # a broken link elsewhere: the page's referrer, on both events
        ("page_view", "/missing", {}), ("custom", "/missing", {"name": "404", "referrer": "https://other.org/links?x=1"})]),
    ("d", "s5", "", [("page_view", "/", {})]),
]
GOALS = [("Pricing", "page", "/pricing", "", ""), ("Blog", "page", "/blog/*", "", ""),
         ("Pro signup", "event", "signup", "plan", "pro"), ("Signup", "event", "signup", "", "")]


def send_visits(ingest, make_event, start_ms):
    for visitor, visit, referrer, steps in VISITS:
        events = [make_event(type=kind, timestamp=start_ms + 10_000 * i, user_id=visitor, session_id=visit,
                             url=f"https://example.com{path}",
                             **{"referrer": referrer if i == 0 else "https://example.com/", **extra})
                  for i, (kind, path, extra) in enumerate(steps)]
        assert ingest(*events, at=events[-1]["timestamp"] + 1_000).accepted == len(events)


def define_goals(store, site, now_ms):
    for name, kind, match, prop, value in GOALS:
        goal = new_goal(name, kind, match, prop, value, now_ms=now_ms, existing=[])
        site.goals.append(goal._asdict())
    store.update_site(site)


@pytest.fixture
def today(site):
    return parse_period("today", site.timezone, T0)


def by_name(rows):
    return {r["name"]: r for r in rows}


def test_every_goal_kind_counts_exactly(store, site, ingest, make_event, today):
    define_goals(store, site, T0 - DAY)
    send_visits(ingest, make_event, T0 - 3_600_000)
    rows = by_name(goal_reports.goals(store, site, today)["rows"])
    figures = {name: (r["visits"], r["visitors"], r["conversions"], r["conversion_rate"], r["value"],
                      r["average_value"]) for name, r in rows.items()}
    assert figures == {
        "Pricing": (2, 1, 2, 40.0, None, None),      # s1 and s3, both visitor a; two page views
        "Blog": (1, 1, 2, 20.0, None, None),         # /blog/one and /blog/two, one visit
        "Pro signup": (1, 1, 1, 20.0, None, None),
        "Signup": (2, 2, 2, 40.0, None, None),
        "Purchase": (2, 2, 3, 40.0, 44.0, 14.67),    # a conversion name is a goal without setup
    }
    assert rows["Purchase"]["key"] == "c:Purchase" and rows["Pricing"]["counted_from"] is None
    # Conversion rate, converting visits and a report filtered by the goal agree.
    filtered = stats.summary(store, site, today, stats.Filters({"goal": "c:Purchase"}))["metrics"]
    assert (filtered["visits"]["value"], filtered["visitors"]["value"], filtered["pageviews"]["value"]) == (2, 2, 4)
    assert {m: filtered[m]["value"] for m in ("conversion_rate", "conversions", "conversion_value")} == {
        "conversion_rate": 40.0, "conversions": 3, "conversion_value": 44.0}  # the goal's own figures
    site_wide = stats.summary(store, site, today)["metrics"]
    assert {m: site_wide[m]["value"] for m in ("conversion_rate", "conversions", "conversion_value")} == {
        "conversion_rate": 40.0, "conversions": 3, "conversion_value": 44.0}  # visits with any conversion
    google = stats.summary(store, site, today, stats.Filters({"source": "Google"}))["metrics"]
    assert {m: google[m]["value"] for m in ("conversion_rate", "conversions", "conversion_value")} == {
        "conversion_rate": 100.0, "conversions": 1, "conversion_value": 29.0}
    pricing = stats.summary(store, site, today, stats.Filters({"goal": rows["Pricing"]["key"]}))["metrics"]
    assert (pricing["conversion_rate"]["value"], pricing["conversions"]["value"]) == (40.0, 2)
    sources = stats.breakdown(store, site, today, "source", stats.Filters({"goal": "c:Purchase"}))["rows"]
    assert {r["value"]: r["visits"] for r in sources} == {"Google": 1, "Direct": 1}
    assert "unavailable" in stats.breakdown(store, site, today, "page", stats.Filters({"goal": "c:Purchase"}))


def test_goals_with_a_session_filter_come_from_the_goal_cube(store, site, ingest, make_event, today):
    define_goals(store, site, T0 - DAY)
    send_visits(ingest, make_event, T0 - 3_600_000)
    rows = by_name(goal_reports.goals(store, site, today, stats.Filters({"source": "Google"}))["rows"])
    assert {n: (r["visits"], r["conversions"], r["conversion_rate"], r["value"]) for n, r in rows.items()} == {
        "Pricing": (1, 1, 100.0, None), "Blog": (0, 0, 0.0, None), "Pro signup": (1, 1, 100.0, None),
        "Signup": (1, 1, 100.0, None), "Purchase": (1, 1, 100.0, 29.0)}


def test_custom_events_properties_links_downloads_and_not_found(store, site, ingest, make_event, today):
    send_visits(ingest, make_event, T0 - 3_600_000)
    events = goal_reports.custom_events(store, site, today)["rows"]
    assert [(r["value"], r["events"], r["visits"], r["visitors"], r["visit_rate"]) for r in events] == [
        ("signup", 2, 2, 2, 40.0), ("404", 1, 1, 1, 20.0)]
    props = goal_reports.event_properties(store, site, today, "signup")["properties"]
    assert [(p["key"], [(r["value"], r["events"]) for r in p["rows"]]) for p in props] == [
        ("plan", [("free", 1), ("pro", 1)]), ("seats", [("3", 1)])]
    outbound = goal_reports.links(store, site, today, "outbound")["rows"]
    assert [(r["value"], r["events"], r["visitors"], r["urls"]) for r in outbound] == [
        ("github.com", 1, 1, [{"value": "https://github.com/example/x", "events": 1}])]
    urls = goal_reports.links(store, site, today, "outbound_url")["rows"]
    assert [r["value"] for r in urls] == ["https://github.com/example/x"]  # no query: it may hold tokens
    downloads = goal_reports.links(store, site, today, "downloads")["rows"]
    assert [(r["value"], r["events"], r["visitors"]) for r in downloads] == [
        ("https://example.com/files/guide.pdf", 1, 1)]
    missing = goal_reports.links(store, site, today, "not_found")["rows"]
    assert [(r["value"], r["events"], r["referrers"]) for r in missing] == [
        ("/missing", 1, [{"value": "https://other.org/links", "events": 1}])]


def test_a_site_can_turn_off_outbound_links_and_downloads(store, site, ingest, make_event, today):
    site.outbound_links, site.download_extensions = False, []
    store.update_site(site)
    send_visits(ingest, make_event, T0 - 3_600_000)
    assert goal_reports.links(store, site, today, "outbound")["rows"] == []
    assert goal_reports.links(store, site, today, "downloads")["rows"] == []


def test_a_page_goal_added_today_shows_the_days_before_from_page_views(store, site, ingest, make_event):
    send_visits(ingest, make_event, T0 - 2 * DAY)  # two days ago: before the goal existed
    define_goals(store, site, T0 - 60_000)
    ingest(make_event(session_id="today", timestamp=T0 - 30_000))  # a visit since: to /, no goal
    week = parse_period("7d", site.timezone, T0)
    rows = by_name(goal_reports.goals(store, site, week)["rows"])
    pricing, blog, signup = rows["Pricing"], rows["Blog"], rows["Signup"]
    assert (pricing["conversions"], pricing["visitors"], pricing["visits"]) == (2, 1, 0)
    assert (blog["conversions"], blog["visitors"]) == (2, 1)
    assert pricing["counted_from"] == week.last.isoformat()
    assert pricing["conversion_rate"] == 0.0  # of the visits since it was added: 0 of 1
    assert (signup["conversions"], signup["visits"]) == (0, 0)  # events cannot be matched afterwards


def test_a_propertys_distinct_values_a_day_are_bounded(store, site, ingest, make_event, today, monkeypatch):
    monkeypatch.setattr(aggregate, "MAX_PROP_VALUES", 2)
    for i, plan in enumerate(["a", "b", "c", "a", "d"]):  # one batch each: the bound holds across folds
        ingest(make_event(type="custom", name="signup", props={"plan": plan}, session_id=f"v{i}",
                          timestamp=T0 - 60_000 + i))
    rows = goal_reports.event_properties(store, site, today, "signup")["properties"][0]["rows"]
    assert [(r["value"], r["events"]) for r in rows] == [("(other)", 2), ("a", 2), ("b", 1)]


def test_changes_against_the_previous_period(store, site, ingest, make_event):
    define_goals(store, site, T0 - 3 * DAY)
    send_visits(ingest, make_event, T0 - DAY - 3_600_000)  # yesterday
    ingest(make_event(type="conversion", name="Purchase", value=100, session_id="today", timestamp=T0 - 60_000))
    row = by_name(goal_reports.goals(store, site, parse_period("today", site.timezone, T0))["rows"])["Purchase"]
    assert (row["conversions"], row["value"]) == (1, 100.0)
    assert row["change"]["conversions"] == round(100 * (1 - 3) / 3, 1)
    assert row["change"]["value"] == round(100 * (100 - 44) / 44, 1)


@pytest.mark.parametrize("match, path, expected", [
    ("/pricing", "/pricing", True), ("/pricing", "/pricing/x", False), ("/blog/*", "/blog/a", True),
    ("/blog/*", "/blog/a/b", False), ("/blog/**", "/blog/a/b", True), ("/order/*/thanks", "/order/12/thanks", True),
    ("/order/*/thanks", "/order/12/thanks/x", False), ("/a.b", "/aXb", False)])
def test_page_patterns(match, path, expected):
    assert page_matches(match, path) is expected


@pytest.mark.parametrize("args, message", [
    (("", "page", "pricing"), "beginning with /"), (("", "event", ""), "which page"),
    (("", "page", "/a", "plan", "pro"), "only event goals"), (("", "event", "signup", "plan"), "which value"),
    (("x" * 200, "event", "signup"), "at most"), (("", "url", "/a"), "page or an event")])
def test_bad_goals_are_refused_with_a_reason(args, message):
    with pytest.raises(GoalError, match=message):
        new_goal(*args, now_ms=T0, existing=[])


def test_the_same_goal_twice_is_refused():
    first = new_goal("A", "page", "https://example.com/pricing?x=1", now_ms=T0, existing=[])
    assert first.match == "/pricing"
    with pytest.raises(GoalError, match="already"):
        new_goal("B", "page", "/pricing", now_ms=T0, existing=[first])


# -- the pages, CSV and the stats API: what they show is the figures above, which both backends
# give alike, so these run on SQLite only.
PAGES_ONE_BACKEND = pytest.mark.parametrize("backend", ["sqlite"])

@PAGES_ONE_BACKEND
def test_an_admin_adds_renames_and_deletes_goals_in_settings(client, store, site):
    page = "/sites/example/settings"
    token = csrf_token(client, page)
    response = client.post("/sites/example/goals", data={
        "csrf_token": token, "name": "Bought", "kind": "page", "match": "/order/*/thanks"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#goals")
    goal = store.get_site("example").goals[0]
    assert (goal["name"], goal["match"]) == ("Bought", "/order/*/thanks")
    html = client.get(page).get_data(as_text=True)
    assert "Visited /order/*/thanks" in html and "counts from the moment it is added" in html

    bad = client.post("/sites/example/goals", data={"csrf_token": token, "kind": "page", "match": "order"})
    assert bad.status_code == 400 and "beginning with /" in bad.get_data(as_text=True)

    client.post(f"/sites/example/goals/{goal['id']}/rename", data={"csrf_token": token, "name": "Purchased"})
    assert store.get_site("example").goals[0]["name"] == "Purchased"
    blank = client.post(f"/sites/example/goals/{goal['id']}/rename", data={"csrf_token": token, "name": " "})
    assert blank.status_code == 400 and store.get_site("example").goals[0]["name"] == "Purchased"
    assert client.post("/sites/example/goals/nope/rename", data={"csrf_token": token, "name": "X"}).status_code == 404
    assert client.post("/sites/example/goals/nope/delete", data={"csrf_token": token}).status_code == 404
    client.post(f"/sites/example/goals/{goal['id']}/delete", data={"csrf_token": token})
    assert store.get_site("example").goals == []
    assert sorted(e.action for e in store.list_audit("example")) == ["goal.add", "goal.delete", "goal.rename"]


@PAGES_ONE_BACKEND
def test_currency_outbound_links_and_downloads_are_set_in_settings(client, store, site):
    token = csrf_token(client, "/sites/example/settings")
    response = client.post("/sites/example/counting", data={
        "csrf_token": token, "currency": "krw", "download_extensions": ".pdf, zip"})
    assert response.status_code == 302
    saved = store.get_site("example")
    assert (saved.currency, saved.outbound_links, saved.download_extensions) == ("KRW", False, ["pdf", "zip"])
    bad = client.post("/sites/example/counting", data={"csrf_token": token, "currency": "euro"})
    assert bad.status_code == 400 and "ISO 4217" in bad.get_data(as_text=True)


@PAGES_ONE_BACKEND
def test_a_viewer_cannot_change_goals(log_in, store, site, clock):
    from app.store.base import Membership, User
    viewer = User("viewer-1", "viewer@example.com", "x", clock.now_ms())
    store.create_user(viewer)
    store.put_membership(Membership("example", "viewer-1", "viewer", clock.now_ms()))
    client = log_in(viewer)
    response = client.post("/sites/example/goals", data={"csrf_token": csrf_token(client, "/sites/example/realtime"),
                                                         "kind": "page", "match": "/a"})
    assert response.status_code in (403, 404) and store.get_site("example").goals == []


@PAGES_ONE_BACKEND
def test_reports_show_goals_events_and_links_and_filter_by_a_goal(client, store, site, ingest, make_event):
    define_goals(store, site, T0 - DAY)
    send_visits(ingest, make_event, T0 - 3_600_000)
    html = client.get("/sites/example?period=today").get_data(as_text=True)
    for text in ("Goals and conversions", "Pro signup", "Sent event signup with plan = pro", "Purchase", "44.00",
                 "Conversion rate"):
        assert text in html, text
    tabs = {name: client.get(f"/sites/example/widgets/{name}?period=today", headers={"HX-Request": "true"})
            .get_data(as_text=True) for name in ("events", "outbound", "downloads", "not_found")}
    for name, text in (("events", "Custom events"), ("outbound", "github.com"),
                       ("downloads", "https://example.com/files/guide.pdf"), ("not_found", "/missing")):
        assert text in tabs[name], text
    key = store.get_site("example").goals[0]["id"]
    filtered = client.get(f"/sites/example?period=today&goal=g:{key}").get_data(as_text=True)
    assert "Goal: <strong>Pricing</strong>" in filtered and '"label": "Conversions"' in filtered
    props = client.get("/sites/example?period=today&goal=e:signup&goals_tab=events").get_data(as_text=True)
    assert "Properties of “signup”" in props and ">pro<" in props
    both = client.get(f"/sites/example?period=today&goal=g:{key}&page=/")
    assert both.status_code == 400


@PAGES_ONE_BACKEND
def test_goals_and_properties_download_as_csv(client, store, site, ingest, make_event):
    define_goals(store, site, T0 - DAY)
    send_visits(ingest, make_event, T0 - 3_600_000)
    rows = list(csv.DictReader(io.StringIO(client.get("/sites/example/reports/goals.csv?period=today").get_data(as_text=True))))
    purchase = next(r for r in rows if r["name"] == "Purchase")
    assert (purchase["conversions"], purchase["value"], purchase["conversion_rate"]) == ("3", "44.0", "40.0")
    assert "conversions_change_percent" in purchase
    props = client.get("/sites/example/reports/props.csv?period=today&event=signup").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(props)))[1:] == [["plan", "free", "1"], ["plan", "pro", "1"], ["seats", "3", "1"]]
    missing = client.get("/sites/example/reports/not_found.csv?period=today").get_data(as_text=True)
    assert "https://other.org/links (1)" in missing


@PAGES_ONE_BACKEND
def test_the_stats_api_answers_goals_events_props_and_links(client, store, site, ingest, make_event):
    define_goals(store, site, T0 - DAY)
    send_visits(ingest, make_event, T0 - 3_600_000)
    data = client.get("/api/stats?site=example&period=today&breakdown=goals,events,props,outbound,downloads,"
                      "not_found,source&event=signup").get_json()["data"]
    assert {r["name"]: r["conversions"] for r in data["breakdowns"]["goals"]["rows"]} == {
        "Pricing": 2, "Blog": 2, "Pro signup": 1, "Signup": 2, "Purchase": 3}
    assert data["breakdowns"]["props"]["rows"][0] == {"property": "plan", "value": "free", "events": 1}
    assert data["breakdowns"]["outbound"]["rows"][0]["value"] == "github.com"
    assert data["summary"]["metrics"]["conversion_rate"]["value"] == 40.0
    goal = client.get("/api/stats?site=example&period=today&goal=c:Purchase&breakdown=source").get_json()["data"]
    assert goal["summary"]["metrics"]["visits"]["value"] == 2 and goal["timeseries"]["conversions"] == [3]
    assert client.get("/api/stats?site=example&breakdown=props").status_code == 400
    assert "page or by a goal" in client.get("/api/stats?site=example&goal=c:&page=/").get_json()["message"]
    spec = client.get("/api/openapi.json").get_data(as_text=True)
    assert "not_found" in spec and "c:<name> a conversion name" in spec


# -- realtime
MINUTE = 60_000


def test_the_live_view_shows_conversions_rate_events_and_how_long_active_visits_last(store, site, ingest, make_event):
    from app.analytics import realtime
    steps = [("s1", -40, "page_view", {}), ("s1", -35, "conversion", {"name": "Purchase", "value": 29}),
             ("s2", -20, "page_view", {}), ("s2", -19, "conversion", {"name": "Purchase", "value": 10}),
             ("s2", -18, "custom", {"name": "play"}), ("s2", -1, "heartbeat", {}),
             ("s3", -3, "page_view", {}), ("s3", -2, "heartbeat", {})]
    for visit, minutes, kind, extra in steps:
        ingest(make_event(type=kind, session_id=visit, user_id=visit, timestamp=T0 + minutes * MINUTE, **extra))
    assert realtime.conversions_live(store, site, T0) == {
        "last_30_minutes": {"conversions": 1, "value": 10.0},  # s1's conversion is 35 minutes old
        "today": {"conversions": 2, "value": 39.0, "conversion_rate": 66.67},  # s1 and s2 of 3 visits
        "custom_events_24h": 1,
        "active_visit_duration_s": 600.0,  # s2 (19 min) and s3 (1 min) were active in the last 5 minutes
        "currency": "EUR",
    }
    assert realtime.realtime(store, site, T0)["conversions"]["today"]["conversions"] == 2


@pytest.mark.parametrize("event, words", [
    ({"type": "page_view"}, "Viewed /pricing"),
    ({"type": "conversion", "name": "Signed up", "value": 29}, "Signed up (€29.00) on /pricing"),
    ({"type": "conversion", "name": "Signed up", "value": None}, "Signed up on /pricing"),
    ({"type": "custom", "name": "play"}, "play on /pricing"),
    ({"type": "custom", "name": "404"}, "Page not found: /pricing"),
    ({"type": "click", "props": {"text": "Download PDF", "href": "https://example.com/a.pdf"}}, "Clicked 'Download PDF' on /pricing"),
    ({"type": "click", "props": {"text": "GitHub", "href": "https://github.com/x"}}, "Left for github.com"),
    ({"type": "click", "props": {}}, "Clicked on /pricing"),
    ({"type": "click", "props": {"text": "x", "href": "http://[broken/"}}, "Clicked 'x' on /pricing"),
    ({"type": "click", "props": {"text": "", "href": "https://example.com/docs"}}, "Clicked a link to /docs on /pricing"),
    ({"type": "heartbeat"}, "Still on /pricing")])
def test_the_live_feed_says_what_happened_in_words(site, event, words):
    from app.analytics.realtime import what_happened
    assert what_happened({"path": "/pricing", "hostname": "www.example.com", "name": "", **event}, site) == words


@PAGES_ONE_BACKEND
def test_the_live_dashboard_shows_the_conversions_widget_and_feed_words(client, site, ingest, make_event):
    ingest(make_event(type="conversion", name="Purchase", value=29, timestamp=T0 - MINUTE))
    html = client.get("/sites/example/realtime").get_data(as_text=True)
    assert 'data-testid="conversions-30m">1<' in html and "€29.00" in html and "Purchase (€29.00) on /" in html


def test_a_goal_added_during_the_period_divides_by_the_visits_since(store, site, ingest, make_event):
    """Its rate's two sides count the same days, with and without a filter."""
    ingest(make_event(session_id="before", timestamp=T0 - 2 * DAY))  # a visit before the goal: not in the rate
    define_goals(store, site, T0 - DAY - 60_000)
    send_visits(ingest, make_event, T0 - 3_600_000)
    week = parse_period("7d", site.timezone, T0)
    assert by_name(goal_reports.goals(store, site, week)["rows"])["Pricing"]["conversion_rate"] == 40.0  # 2 of 5
    direct = by_name(goal_reports.goals(store, site, week, stats.Filters({"source": "Direct"}))["rows"])
    assert direct["Pricing"]["conversion_rate"] == 33.33  # s3 of the direct visits since: s2, s3, s5 (not "before")


@PAGES_ONE_BACKEND
def test_a_public_link_shows_goals_and_their_csv_but_no_settings(anon_client, store, site, ingest, make_event):
    from app.auth.links import create_link
    define_goals(store, site, T0 - DAY)
    send_visits(ingest, make_event, T0 - 3_600_000)
    _, token = create_link(store, "example", "Team", "admin-1", T0)
    html = anon_client.get(f"/share/{token}?period=today").get_data(as_text=True)
    assert "Pro signup" in html and "Custom events" in anon_client.get(
        f"/share/{token}/widgets/events?period=today", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "/settings" not in html
    widget = anon_client.get(f"/share/{token}/widgets/goals?period=today&goal=c:Purchase",
                             headers={"HX-Request": "true"})
    assert widget.status_code == 200 and "44.00" in widget.get_data(as_text=True)
    rows = anon_client.get(f"/share/{token}/reports/goals.csv?period=today").get_data(as_text=True)
    assert "Purchase" in rows


def test_a_page_goal_added_after_a_period_shows_that_period_from_page_views_only(store, site, ingest, make_event):
    send_visits(ingest, make_event, T0 - 3_600_000)
    define_goals(store, site, T0)
    yesterday, today = (parse_period(p, site.timezone, T0 + DAY) for p in ("yesterday", "today"))
    pricing = by_name(goal_reports.goals(store, site, yesterday)["rows"])["Pricing"]
    # Added the same day, after the visits: its page views count, its visits from then on.
    assert (pricing["conversions"], pricing["visits"], pricing["conversion_rate"]) == (2, 0, 0.0)
    assert pricing["counted_from"] == yesterday.first.isoformat()
    assert by_name(goal_reports.goals(store, site, today)["rows"])["Pricing"]["conversions"] == 0  # not yesterday's


def test_an_event_reaches_at_most_five_goals_so_its_changes_fit_one_dynamodb_transaction(store, site, ingest,
                                                                                      make_event, today):
    site.goals = [new_goal(f"Goal {i}", "page", f"/{'*' * (i % 2) or 'pricing'}", now_ms=T0 - DAY,
                           existing=[])._replace(id=f"g{i}")._asdict() for i in range(8)]
    store.update_site(site)
    assert ingest(make_event(url="https://example.com/pricing")).accepted == 1
    rows = goal_reports.goals(store, site, today)["rows"]
    assert [r["visits"] for r in rows] == [1, 1, 1, 1, 1, 0, 0, 0]  # the first five, in the order they were added


@pytest.mark.parametrize("kind, extra", [
    ("page_view", {}), ("custom", {"name": "n", "props": {f"k{i}": "v" for i in range(20)}}),
    ("conversion", {"name": "n", "value": 9.0})])
def test_one_event_with_many_goals_stays_within_one_dynamodb_transaction(kind, extra):
    """The worst first event of a visit: every goal of the site matches it."""
    from app.analytics.aggregate import SESSION_DIMENSIONS, aggregate
    from app.analytics.goals import SiteGoals
    from app.store.base import Site
    from app.store.dynamodb.client import MAX_TRANSACTION_ACTIONS
    goals = [{"id": f"p{i}", "name": "", "kind": "page", "match": "/**"} for i in range(50)] + [
        {"id": f"e{i}", "name": "", "kind": "event", "match": "n"} for i in range(50)]
    event = {"site_id": "s", "event_id": "e1", "type": kind, "ts": T0, "user_id": "u", "session_id": "v",
             "path": "/a", "hostname": "h", "name": "", "value": None, "referrer": "", "props": {},
             **{d: "x" for d in SESSION_DIMENSIONS}, **extra}
    changes = aggregate([event], {}, {}, goals=SiteGoals.of(Site("s", "", "", [], goals=goals)))
    actions = 1 + len(changes.sessions) + len(changes.visitors) + len(changes.counters)  # marker, records, counters
    assert actions <= MAX_TRANSACTION_ACTIONS
