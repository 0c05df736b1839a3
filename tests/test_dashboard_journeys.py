"""The funnels, journeys and retention pages, their forms, public links and CSV files, on both
backends, from the known history of tests/test_journeys.py: the pages show its exact figures."""
import csv
import io
import re

import pytest

from app.analytics import funnels, goals
from app.auth import links
from app.store.base import Membership, User
from tests.conftest import csrf_token
from tests.test_journeys import SIGNUP_STEPS, NOW, counted, history, send_history, signup_funnel  # noqa: F401  (history, counted: fixtures)

BASE = "/sites/shop"
WEEK = "period=7d"  # 12 to 18 November: the visits of the 16th and 17th (B's first visit, the 10th, is before)


@pytest.fixture
def shop(history, store, clock):
    """The history's site at the history's "now", with its signup funnel."""
    clock.now = NOW
    funnels.add_funnel(store, history, signup_funnel(history))
    return history


def text_of(html: str) -> str:
    """The page's words, tags out and spaces folded, to read figures as a person does."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


# -- funnels
def test_the_funnels_page_shows_the_funnel_step_by_step(shop, client):
    response = client.get(f"{BASE}/funnels?{WEEK}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    words = text_of(html)
    assert "25% of the visits that entered this funnel went through every step: 1 of 4." in words
    heads = re.findall(r'<span class="step-label">([^<]+)</span>\s*<span class="step-visits"><strong>(\d+)</strong>', html)
    assert heads == [("Visited /", "4"), ("Visited /pricing", "3"), ("Converted: signup", "1")]
    assert "3 continued · 1 dropped off (25%)" in words and "1 continued · 2 dropped off (67%)" in words
    assert "75% of step 1 · median time from step 1: 30s" in words
    assert "33% of step 2 · median time from step 2: 1m 0s" in words
    assert re.findall(r'class="funnel-bar" max="100" value="([\d.]+)"', html) == ["100.0", "75.0", "25.0"]
    assert "within that one visit" in words and "before the funnel was made" in words
    # Made at NOW, after visits took its first step in this period: their visitors are unknown.
    assert "visitor" not in words.split("Visitors are counted since")[0].split("went through every step")[1]
    assert "Visitors are counted since the funnel was made (Nov 18, 2026, 11:00): choose a period" in words
    assert f'hx-get="{BASE}/widgets/funnel?period=7d"' in html  # refreshed like the overview's widgets
    assert f'href="{BASE}/reports/funnel.csv?period=7d&amp;funnel=' in html
    assert 'action="/sites/shop/funnels?period=7d"' in html  # the admin's form


def test_a_funnel_made_before_the_visits_shows_their_visitors(counted, client, clock):
    clock.now = NOW
    two_days = "period=custom&from=2026-11-16&to=2026-11-17"
    text = text_of(client.get(f"{BASE}/funnels?{two_days}").get_data(as_text=True))
    assert "4 visits · 3 visitors" in text and "2 visits · 1 visitor " in text
    assert "went through every step: 2 of 4. Of the visitors: 33% (1 of 3)." in text and "counted since the funnel was made (Nov 1, 2026, 00:00)" in text
    [funnel] = funnels.funnels_of(counted)
    steps = read_csv(client.get(f"{BASE}/reports/funnel.csv?{two_days}&funnel={funnel.id}"))
    assert [row[:4] for row in steps[1:]] == [["1", "Visited /pricing", "4", "3"], ["2", "Converted: signup", "2", "1"]]
    # Filtered, the visitors of the visits that match.
    filtered = text_of(client.get(f"{BASE}/funnels?{two_days}&device=desktop").get_data(as_text=True))
    assert "3 visits · 2 visitors" in filtered and "2 visits · 1 visitor " in filtered
    assert "Of the visitors: 50% (1 of 2)." in filtered and "counted since the funnel was made (Nov 1, 2026, 00:00)" in filtered
    steps = read_csv(client.get(f"{BASE}/reports/funnel.csv?{two_days}&device=desktop&funnel={funnel.id}"))
    assert [row[:4] for row in steps[1:]] == [["1", "Visited /pricing", "3", "2"], ["2", "Converted: signup", "2", "1"]]
    by_device = read_csv(client.get(f"{BASE}/reports/funnel.csv?{two_days}&funnel={funnel.id}&funnel_breakdown=device"))
    assert by_device[1:] == [["desktop", "3", "2", "2", "1", "66.7"], ["mobile", "1", "0", "1", "0", "0.0"]]
    two = text_of(client.get(f"{BASE}/funnels?{two_days}&device=desktop&country=GB").get_data(as_text=True))
    assert "3 visits · 2 visitors" in two and "2 visits · 1 visitor " in two  # every visit is from GB


def test_a_funnel_made_before_visitors_were_noted_by_value_says_why_it_has_none_under_a_filter(
        store, settle, client, clock):
    send_history(store, settle, [("page", "/pricing"), ("conversion", "signup")], by_value=False)
    clock.now = NOW
    two_days = "period=custom&from=2026-11-16&to=2026-11-17"
    text = text_of(client.get(f"{BASE}/funnels?{two_days}").get_data(as_text=True))
    assert "4 visits · 3 visitors" in text
    filtered = text_of(client.get(f"{BASE}/funnels?{two_days}&device=desktop").get_data(as_text=True))
    assert "3 visits" in filtered and "3 visits ·" not in filtered
    assert ("This funnel was made before LiveInsight counted the visitors of funnels under a filter: remove the "
            "filter to see them, or make it again.") in filtered


def test_a_funnel_broken_down_by_channel_and_filtered(shop, client):
    html = client.get(f"{BASE}/funnels?{WEEK}&funnel_breakdown=channel").get_data(as_text=True)
    table = html[html.index('class="breakdown funnel-breakdown"'):]
    rows = [text_of(row).split() for row in re.findall(r"<tr><td>(.*?)</tr>", table, re.S)]
    assert rows == [["Direct", "3", "2", "0", "0%"], ["Organic", "search", "1", "1", "1", "100%"]]  # channels by name
    assert '<option value="channel" selected>' in html
    phone = text_of(client.get(f"{BASE}/funnels?{WEEK}&device=mobile").get_data(as_text=True))
    assert "0% of the visits that entered this funnel went through every step: 0 of 1." in phone
    # A filter chosen on the overview that a funnel cannot apply: said, not failed.
    paged = client.get(f"{BASE}/funnels?{WEEK}&page=/pricing")
    assert paged.status_code == 200
    assert "so the page filter is not applied here" in text_of(paged.get_data(as_text=True))
    assert "1 of 4" in text_of(paged.get_data(as_text=True))


@pytest.mark.parametrize("query, message", [
    ("funnel_breakdown=browser", "a funnel can be broken down by channel, source, device, country"),
    ("funnel=nope", "no funnel &#39;nope&#39; on this site"),
])
def test_a_funnel_asked_for_wrongly_is_a_400_in_words(shop, client, query, message):
    response = client.get(f"{BASE}/funnels?{WEEK}&{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_an_admin_adds_a_funnel_with_the_form_and_deletes_it(shop, client, store):
    goal = goals.add_goal(store, shop, "Saw pricing", "page", "/pricing", "", "", NOW)
    token = csrf_token(client)
    sent = client.post(f"{BASE}/funnels?{WEEK}", data={
        "csrf_token": token, "name": "Home to pricing",
        "kind": ["page", f"goal:{goal.id}", "page", "event"], "match": ["/", "", "", ""]})
    [added] = [f for f in funnels.funnels_of(store.get_site("shop")) if f.name == "Home to pricing"]
    assert sent.status_code == 302 and sent.headers["Location"] == f"{BASE}/funnels?period=7d&funnel={added.id}"
    assert added.steps == ({"kind": "page", "match": "/"}, {"kind": "goal", "match": goal.id})
    assert [(e.action, e.detail) for e in store.list_audit("shop")] == [
        ("funnel.add", "Home to pricing: Visited / → Saw pricing")]
    page = client.get(sent.headers["Location"])
    words = text_of(page.get_data(as_text=True))
    assert "Funnel &#39;Home to pricing&#39; added" in words and "75% of the visits" in words  # 4 -> 3 (a page goal)

    deleted = client.post(f"{BASE}/funnels/{added.id}/delete?{WEEK}&funnel={added.id}", data={"csrf_token": token})
    assert deleted.status_code == 302 and deleted.headers["Location"] == f"{BASE}/funnels?period=7d"
    assert [f.name for f in funnels.funnels_of(store.get_site("shop"))] == ["Signup"]
    assert sorted(e.action for e in store.list_audit("shop")) == ["funnel.add", "funnel.delete"]
    assert client.post(f"{BASE}/funnels/{added.id}/delete", data={"csrf_token": token}).status_code == 404


def test_a_funnel_across_visits_shows_visitors_who_came_back_to_finish(store, settle, client, clock):
    site = send_history(store, settle, SIGNUP_STEPS, window_days=7)
    clock.now = NOW
    html = client.get(f"{BASE}/funnels?period=custom&from=2026-11-16&to=2026-11-17").get_data(as_text=True)
    words = text_of(html)
    heads = re.findall(r'<span class="step-label">([^<]+)</span>\s*<span class="step-visits"><strong>(\d+)</strong>', html)
    assert heads == [("Visited /", "4"), ("Visited /pricing", "3"), ("Converted: signup", "2")]  # b2 came back
    assert "went through every step: 2 of 4. Of the visitors: 50% (2 of 4)." in words
    assert "a visitor who comes back within 7 days of the first step takes up where they left off" in words
    assert "from when it was made (Nov 1, 2026, 00:00)" in words and "within that one visit" not in words
    [funnel] = funnels.funnels_of(site)
    listed = client.get("/api/funnels?site=shop").json["data"]["funnels"]
    assert [(f["id"], f["window_days"], f["across_visits_since"]) for f in listed] == [(funnel.id, 7, "2026-11-01")]


def test_an_admin_chooses_a_funnels_window_across_visits(shop, client, store):
    form = client.get(f"{BASE}/funnels").get_data(as_text=True)
    assert '<option value="0">within one visit</option>' in form
    assert '<option value="7">across a visitor\'s visits within 7 days</option>' in form
    token = csrf_token(client)
    sent = client.post(f"{BASE}/funnels", data={"csrf_token": token, "name": "Over a week", "window_days": "7",
                                                "kind": ["page", "page"], "match": ["/", "/pricing"]})
    assert sent.status_code == 302
    assert [f.window_days for f in funnels.funnels_of(store.get_site("shop"))] == [0, 7]
    assert [e.detail for e in store.list_audit("shop")] == ["Over a week: Visited / → Visited /pricing (across visits within 7 days)"]
    refused = client.post(f"{BASE}/funnels", data={"csrf_token": token, "name": "Over a year", "window_days": "365",
                                                   "kind": ["page", "page"], "match": ["/", "/pricing"]})
    assert refused.status_code == 400
    assert "a funnel counts across visits within 1 to 30 days, or 0 for within one visit" in refused.get_data(as_text=True)


def test_a_funnel_the_form_cannot_keep_is_a_400_with_what_was_typed(shop, client, store):
    response = client.post(f"{BASE}/funnels", data={
        "csrf_token": csrf_token(client), "name": "Too short", "kind": ["page", "page"], "match": ["/only", ""]})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<p class="form-error" role="alert">a funnel has 2 to 8 steps, not 1</p>' in html
    assert 'value="Too short"' in html and 'value="/only"' in html
    assert '<details class="card add-funnel" id="add-funnel" open>' in html  # the form stays open
    fifth = client.post(f"{BASE}/funnels", data={
        "csrf_token": csrf_token(client), "name": "Five", "kind": ["page"] * 5 + ["event"] * 3,
        "match": ["/", "", "", "", "pricing", "", "", ""]})
    html = fifth.get_data(as_text=True)
    assert fifth.status_code == 400 and "a page step is a path beginning with /" in html
    assert html.index('value="pricing"') < html.index('<ol class="step-rows" start="6">')  # row 5 in sight
    assert html.count('<option value="event" selected>') == 3
    assert len(funnels.funnels_of(store.get_site("shop"))) == 1


def test_a_viewer_sees_the_funnels_but_cannot_change_them(shop, store, log_in, clock):
    store.create_user(User("viewer-1", "viewer@example.com", "x", clock.now_ms()))
    store.put_membership(Membership("shop", "viewer-1", "viewer", clock.now_ms()))
    viewer = log_in(store.get_user("viewer-1"))
    html = viewer.get(f"{BASE}/funnels?{WEEK}").get_data(as_text=True)
    assert "1 of 4" in text_of(html) and re.findall(r'<form method="post" action="([^"]+)"', html) == ["/logout"]
    [funnel] = funnels.funnels_of(store.get_site("shop"))
    token = csrf_token(viewer)
    assert viewer.post(f"{BASE}/funnels", data={"csrf_token": token, "name": "x", "kind": ["page", "page"],
                                                "match": ["/", "/a"]}).status_code == 403
    assert viewer.post(f"{BASE}/funnels/{funnel.id}/delete", data={"csrf_token": token}).status_code == 403
    assert len(funnels.funnels_of(store.get_site("shop"))) == 1


def test_a_site_without_funnels_says_what_one_is(history, store, client, clock):
    clock.now = NOW
    words = text_of(client.get(f"{BASE}/funnels").get_data(as_text=True))
    assert "No funnels yet. A funnel is a few steps" in words and "Add one with the form below." in words


# -- journeys
def test_the_journeys_page_shows_top_paths_and_what_came_before_and_after_the_top_first_page(shop, client):
    html = client.get(f"{BASE}/journeys?{WEEK}").get_data(as_text=True)
    paths = [text_of(p).split() for p in re.findall(r'<p class="path-pages">(.*?)</p>', html, re.S)]
    assert paths == [["/", "→", "(left)"], ["/", "→", "then", "/blog", "→", "then", "/"],  # a visit each: by their pages
                     ["/", "→", "then", "/pricing", "→", "(left)"], ["/pricing", "→", "(left)"],
                     ["/pricing", "→", "then", "/", "→", "then", "/pricing"]]
    assert f'href="{BASE}/journeys?period=7d&amp;page_flow=/blog#before-after"' in html
    words = text_of(html)
    assert "Before and after / " in words and "/ was viewed 5 times" in words
    came_from, went_to = re.findall(r'<ol class="flow-rows">(.*?)</ol>', html, re.S)
    assert text_of(came_from).split() == ["Started", "here", "3", "60%", "/blog", "1", "20%", "/pricing", "1", "20%"]
    assert text_of(went_to).split() == ["/pricing", "3", "60%", "Left", "the", "site", "1", "20%", "/blog", "1", "20%"]


def test_choosing_a_page_and_a_path_length(shop, client):
    html = client.get(f"{BASE}/journeys?{WEEK}&paths=1&page_flow=/pricing").get_data(as_text=True)
    figures = re.findall(r'<p class="path-figures"><strong>(\d+)</strong> visits <span class="muted">(\d+%)', html)
    assert figures == [("3", "60%"), ("2", "40%")]
    came_from, went_to = re.findall(r'<ol class="flow-rows">(.*?)</ol>', html, re.S)
    assert text_of(came_from).split() == ["/", "3", "60%", "Started", "here", "2", "40%"]
    assert text_of(went_to).split() == ["Left", "the", "site", "4", "80%", "/", "1", "20%"]
    assert f'hx-get="{BASE}/widgets/paths?period=7d&amp;paths=1&amp;page_flow=/pricing"' in html
    bad = client.get(f"{BASE}/journeys?{WEEK}&paths=9")
    assert bad.status_code == 400 and "a path has 1 to 5 pages" in bad.get_data(as_text=True)
    assert client.get(f"{BASE}/journeys?{WEEK}&paths=two").status_code == 400


# -- retention
def test_the_retention_page_is_a_heat_map_of_cohorts(shop, client):
    html = client.get(f"{BASE}/retention?cohort_periods=2").get_data(as_text=True)
    rows = [text_of(r).split() for r in re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", html, re.S)]
    assert rows == [["Nov", "9,", "2026", "1", "100%", "(1", "visitors)", "100%", "(1", "visitors)"],
                    ["Nov", "16,", "2026", "2", "100%", "(2", "visitors)"]]
    assert "Week of first visit" in html
    assert html.count('class="num heat heat-10"') == 3 and html.count('<td class="future">') == 1
    assert 'title="2 of 2 visitors"' in html
    assert "Visitors from before the tracker recorded first visits are in no cohort." in text_of(html)
    monthly = client.get(f"{BASE}/retention?cohorts=month&cohort_periods=1").get_data(as_text=True)
    assert re.search(r'<th scope="row">November 2026</th><td class="num">3</td>', monthly)
    search = client.get(f"{BASE}/retention?cohort_periods=2&channel=search").get_data(as_text=True)
    assert re.findall(r'<th scope="row">[^<]+</th><td class="num">(\d+)</td>', search) == ["0", "1"]
    both = client.get(f"{BASE}/retention?channel=search&source=Twitter")
    assert both.status_code == 400 and "(one of them)" in both.get_data(as_text=True)
    assert client.get(f"{BASE}/retention?cohorts=year").status_code == 400


# -- public links, fragments, CSV
def test_public_links_show_the_three_pages_read_only(shop, store, anon_client):
    _, token = links.create_link(store, "shop", "TV", "admin-1", NOW)
    share = f"/share/{token}"
    for page in ("funnels", "journeys", "retention"):
        response = anon_client.get(f"{share}/{page}?{WEEK}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200, page
        assert 'method="post"' not in html and f'href="{BASE}' not in html and "Settings</a>" not in html, page
        assert f'href="{share}/funnels' in html and f'hx-get="{share}/widgets/' in html, page
    assert "1 of 4" in text_of(anon_client.get(f"{share}/funnels?{WEEK}").get_data(as_text=True))
    assert read_csv(anon_client.get(f"{share}/reports/paths.csv?{WEEK}"))[2] == ["/ → /blog → /", "1", "20.0"]
    assert anon_client.post(f"{share}/funnels", data={"name": "x"}).status_code == 405


def test_a_widget_is_its_fragment_for_htmx_and_its_page_otherwise(shop, client):
    fragment = client.get(f"{BASE}/widgets/page-flow?{WEEK}&page_flow=/pricing", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="w-page-flow"') and "/pricing was viewed 5 times" in text_of(html)
    page = client.get(f"{BASE}/widgets/cohorts?cohort_periods=2").get_data(as_text=True)
    assert "<h1 class=\"page-title\">Retention</h1>" in page and page.count('<th scope="row">') == 2


def test_csv_files_of_the_funnel_paths_pages_and_cohorts(shop, client):
    [funnel] = funnels.funnels_of(shop)
    steps = read_csv(client.get(f"{BASE}/reports/funnel.csv?{WEEK}&funnel={funnel.id}"))
    assert steps[0] == ["step", "label", "visits", "visitors", "continued", "dropped_off", "dropped_off_percent",
                        "conversion_from_previous_percent", "conversion_from_first_percent", "median_seconds_from_previous"]
    # Its visitors are counted from NOW, when it was made: none in a period that began before.
    assert steps[1:] == [["1", "Visited /", "4", "", "3", "1", "25.0", "100.0", "100.0", ""],
                         ["2", "Visited /pricing", "3", "", "1", "2", "66.7", "75.0", "75.0", "30.0"],
                         ["3", "Converted: signup", "1", "", "", "", "", "33.3", "25.0", "60.0"]]
    by_channel = read_csv(client.get(f"{BASE}/reports/funnel.csv?{WEEK}&funnel_breakdown=channel"))
    assert by_channel == [["channel", "step_1_visits", "step_2_visits", "step_3_visits", "step_1_visitors",
                           "step_2_visitors", "step_3_visitors", "conversion_rate_percent"],
                          ["direct", "3", "2", "0", "", "", "", "0.0"], ["search", "1", "1", "1", "", "", "", "100.0"]]
    paths = read_csv(client.get(f"{BASE}/reports/paths.csv?{WEEK}&paths=2"))
    assert paths == [["path", "visits", "share_percent"], ["/ → (left)", "1", "20.0"], ["/ → /blog", "1", "20.0"],
                     ["/ → /pricing", "1", "20.0"], ["/pricing → (left)", "1", "20.0"], ["/pricing → /", "1", "20.0"]]
    flow = read_csv(client.get(f"{BASE}/reports/page_flow.csv?{WEEK}&page_flow=/pricing"))
    assert flow[0] == ["page", "direction", "other_page", "views", "share_percent"]
    assert flow[1:] == [["/pricing", "came from", "/", "3", "60.0"], ["/pricing", "came from", "(entrance)", "2", "40.0"],
                        ["/pricing", "went to", "(exit)", "4", "80.0"], ["/pricing", "went to", "/", "1", "20.0"]]
    response = client.get(f"{BASE}/reports/cohorts.csv?cohort_periods=2")
    assert response.headers["Content-Disposition"] == 'attachment; filename="shop-cohorts-week-2026-11-18.csv"'
    assert read_csv(response) == [
        ["cohort", "visitors", "week_0_visitors", "week_0_percent", "week_1_visitors", "week_1_percent"],
        ["2026-11-09", "1", "1", "100.0", "1", "100.0"], ["2026-11-16", "2", "2", "100.0", "", ""]]
    assert client.get(f"{BASE}/reports/paths.csv?{WEEK}&paths=0").status_code == 400


def test_the_report_tabs_pass_the_period_and_filters_on(shop, client):
    html = client.get(f"{BASE}?period=7d&device=mobile&metric=pageviews").get_data(as_text=True)
    tabs = dict(re.findall(r'<a href="([^"]+)"[^>]*>(?:<span[^>]*></span>)?(\w+)</a>',
                           html[html.index('class="site-tabs"'):html.index("</nav>", html.index('class="site-tabs"'))]))
    assert {name: url for url, name in tabs.items()} == {
        "Overview": f"{BASE}?period=7d&amp;device=mobile", "Realtime": f"{BASE}/realtime",
        "Funnels": f"{BASE}/funnels?period=7d&amp;device=mobile", "Journeys": f"{BASE}/journeys?period=7d&amp;device=mobile",
        "Retention": f"{BASE}/retention", "Alerts": f"{BASE}/alerts", "Settings": f"{BASE}/settings"}


def test_a_first_report_over_a_year_says_how_far_it_got_and_goes_on(shop, log_in, admin, app, clock):
    """Past REPORT_BUDGET_S a report over months that have no digests yet stops: the page says
    how far it got and asks again in a moment, the CSV and the API answer 503 with Retry-After,
    and each request goes on from where the last stopped, to the same figures."""
    app.config["REPORT_BUDGET_S"] = 0  # each request makes one month
    clock.now += 365 * 86_400_000  # a year on: November 2026 and the months after it have no digest
    client = log_in(admin)
    year = "period=custom&from=2026-11-01&to=2027-10-31"
    html = client.get(f"{BASE}/funnels?{year}").get_data(as_text=True)
    assert "Preparing this report from its history: 1 of 12 months done" in text_of(html)
    assert 'hx-trigger="load delay:2s"' in html and 'aria-busy="true"' in html
    widget = f"{BASE}/widgets/funnel?{year}"
    progress = [1]
    for _ in range(12):
        html = client.get(widget, headers={"HX-Request": "true"}).get_data(as_text=True)
        done = re.search(r"history: (\d+) of 12 months done", text_of(html))
        if done is None:
            break
        progress.append(int(done.group(1)))
    assert progress == list(range(1, 12))
    assert "25% of the visits that entered this funnel went through every step: 1 of 4." in text_of(html)
    assert "load delay" not in html and "aria-busy" not in html  # refreshed as any widget again

    # Reports not asked yet, from the CSV and the API (three months): 503 with Retry-After, then
    # the answer.
    months = "period=custom&from=2026-11-01&to=2027-01-31"
    csv_url = f"{BASE}/reports/paths.csv?{months}&paths=2"
    answers = [client.get(csv_url) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200] and answers[0].headers["Retry-After"] == "2"
    assert "This report is being prepared from its history: 1 of 3 months done." in text_of(answers[0].get_data(as_text=True))
    assert read_csv(answers[-1])[0] == ["path", "visits", "share_percent"]
    api = f"/api/stats?site=shop&{months}&paths=3"
    answers = [client.get(api) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200] and answers[0].headers["Retry-After"] == "2"
    assert answers[1].json == {"status": "error", "message": "this report is being prepared from its history: "
                                                             "2 of 3 months done: retry in 2 s"}
    assert answers[-1].json["data"]["paths"]["visits"] == 6  # the history's visits that viewed a page
