"""Funnels, journeys and cohorts through GET /api/stats and GET /api/funnels, on both backends:
the known history of test_journeys.py, with the same exact figures, asked over HTTP."""
import pytest

from app.analytics import funnels
from app.auth import api_keys
from tests.conftest import BACKENDS, T0
from tests.test_journeys import NOW, counted, history, signup_funnel  # noqa: F401  (history, counted: fixtures)

TWO_DAYS = "period=custom&from=2026-11-16&to=2026-11-17"  # test_journeys.TWO_DAYS


@pytest.fixture
def api(client, clock, history):
    """get(query) -> the JSON answer of /api/stats (or `path`) for the shop, asked as an admin at NOW."""
    clock.now = NOW

    def get(query, status=200, path="/api/stats"):
        answer = client.get(f"{path}?site=shop&{query}")
        assert answer.status_code == status, answer.json
        return answer.json
    return get


@pytest.fixture
def signup(store, history):
    funnel = signup_funnel(history)
    funnels.add_funnel(store, history, funnel)
    return funnel


def test_a_funnel_and_its_breakdown(api, signup):
    data = api(f"{TWO_DAYS}&funnel={signup.id}&funnel_breakdown=channel")["data"]
    assert set(data) == {"funnel"}  # no summary, chart or breakdowns: a report of its own
    report = data["funnel"]
    assert report["funnel"] == {"id": signup.id, "name": "Signup", "window_days": 0, "across_visits_since": None}
    assert [s["visits"] for s in report["steps"]] == [4, 3, 1]
    assert [s["conversion_from_previous"] for s in report["steps"]] == [100.0, 75.0, 33.3]
    assert [s["median_seconds_from_previous"] for s in report["steps"]] == [None, 30.0, 60.0]
    assert (report["entered"], report["completed"], report["conversion_rate"]) == (4, 1, 25.0)
    assert report["breakdown"]["dimension"] == "channel"
    assert {r["value"]: r["visits"] for r in report["breakdown"]["rows"]} == {"direct": [3, 2, 0], "search": [1, 1, 1]}
    phone = api(f"{TWO_DAYS}&funnel={signup.id}&device=mobile")["data"]["funnel"]
    assert [s["visits"] for s in phone["steps"]] == [1, 1, 0] and "breakdown" not in phone


def test_a_funnel_made_before_the_visits_counts_their_visitors(client, clock, counted):
    clock.now = NOW
    [funnel] = funnels.funnels_of(counted)
    report = client.get(f"/api/stats?site=shop&{TWO_DAYS}&funnel={funnel.id}").json["data"]["funnel"]
    assert [(s["visits"], s["visitors"]) for s in report["steps"]] == [(4, 3), (2, 1)]
    assert (report["visitor_conversion_rate"], report["visitors_since"]) == (33.3, "2026-11-01")
    filtered = client.get(f"/api/stats?site=shop&{TWO_DAYS}&funnel={funnel.id}&device=desktop").json["data"]["funnel"]
    assert [(s["visits"], s["visitors"]) for s in filtered["steps"]] == [(3, 2), (2, 1)]
    assert (filtered["visitor_conversion_rate"], filtered["visitors_since"]) == (50.0, "2026-11-01")
    by_device = client.get(f"/api/stats?site=shop&{TWO_DAYS}&funnel={funnel.id}&funnel_breakdown=device").json["data"]
    assert [(r["value"], r["visits"], r["visitors"]) for r in by_device["funnel"]["breakdown"]["rows"]] == [
        ("desktop", [3, 2], [2, 1]), ("mobile", [1, 0], [1, 0])]
    two = client.get(f"/api/stats?site=shop&{TWO_DAYS}&funnel={funnel.id}&device=desktop&source=Google").json["data"]
    assert [s["visitors"] for s in two["funnel"]["steps"]] == [1, 1]  # a1 (A), a computer from Google
    assert (two["funnel"]["visitor_conversion_rate"], two["funnel"]["visitors_since"]) == (100.0, "2026-11-01")


def test_the_funnels_of_a_site_are_listed(api, signup):
    assert api("", path="/api/funnels") == {"status": "success", "data": {"funnels": [
        {"id": signup.id, "name": "Signup", "window_days": 0, "across_visits_since": None, "steps": [
            {"kind": "page", "match": "/", "label": "Visited /"},
            {"kind": "page", "match": "/pricing", "label": "Visited /pricing"},
            {"kind": "conversion", "match": "signup", "label": "Converted: signup"}]}]}}


def test_top_paths_and_the_pages_before_and_after_one(api):
    data = api(f"{TWO_DAYS}&paths=3&page_flow=/")["data"]
    assert set(data) == {"paths", "page_flow"}
    assert data["paths"]["visits"] == 5  # b2 viewed no page
    assert {tuple(p["pages"]): p["visits"] for p in data["paths"]["paths"]} == {
        ("/", "/pricing"): 1, ("/pricing", "/", "/pricing"): 1, ("/", "/blog", "/"): 1, ("/",): 1, ("/pricing",): 1}
    home = data["page_flow"]
    assert (home["page"], home["views"]) == ("/", 5)
    assert [(p["page"], p["views"]) for p in home["next"]] == [("/pricing", 3), ("(exit)", 1), ("/blog", 1)]
    assert [(p["page"], p["views"]) for p in home["previous"]] == [("(entrance)", 3), ("/blog", 1), ("/pricing", 1)]
    assert home["next"][0]["share"] == 60.0
    first = api(f"{TWO_DAYS}&paths=1")["data"]["paths"]
    assert [(p["pages"], p["visits"], p["share"]) for p in first["paths"]] == [(["/"], 3, 60.0), (["/pricing"], 2, 40.0)]
    assert len(api(f"{TWO_DAYS}&paths=3&limit=2")["data"]["paths"]["paths"]) == 2


def test_weekly_cohorts_all_and_by_the_first_visits_channel(api):
    weekly = api("cohorts=week&cohort_periods=2")["data"]  # the period is ignored: up to today
    assert set(weekly) == {"cohorts"}
    rows = weekly["cohorts"]["cohorts"]
    assert [(c["cohort"], c["visitors"]) for c in rows] == [("2026-11-09", 1), ("2026-11-16", 2)]
    assert [(r["offset"], r["visitors"], r["share"]) for r in rows[0]["retention"]] == [(0, 1, 100.0), (1, 1, 100.0)]
    assert [(r["visitors"], r["share"]) for r in rows[1]["retention"]] == [(2, 100.0)]
    search = api("cohorts=week&cohort_periods=2&channel=search")["data"]["cohorts"]
    assert search["filter"] == {"channel": "search"}
    assert [c["visitors"] for c in search["cohorts"]] == [0, 1]  # A came from Google


def test_all_four_at_once(api, signup):
    data = api(f"{TWO_DAYS}&funnel={signup.id}&paths=1&page_flow=/pricing&cohorts=month&cohort_periods=1")["data"]
    assert set(data) == {"funnel", "paths", "page_flow", "cohorts"}
    assert [(c["cohort"], c["visitors"]) for c in data["cohorts"]["cohorts"]] == [("2026-11-01", 3)]


REFUSED = [  # (query, status, what the message says)
    ("paths=6", 400, "paths"),
    ("funnel={funnel}&page=/", 400, "a funnel can be filtered by channel, source, device, country, not by page"),
    ("funnel=nope", 404, "no funnel 'nope'"),
    ("funnel={funnel}&funnel_breakdown=browser", 400, "funnel_breakdown"),
    ("cohorts=day", 400, "cohorts"),
    ("cohorts=week&browser=Chrome", 400, "channel or the source of the first visit"),
    ("cohorts=month&cohort_periods=14", 400, "at most 13 months back"),
    ("page_flow=pricing", 400, "beginning with /"),
    ("paths=2&goal=c:signup", 400, "journeys can be filtered by"),
]


def test_what_cannot_be_reported_is_refused_with_the_reason(api, signup):
    for query, status, message in REFUSED:  # one test, not one each: the history takes seconds to send
        answer = api(f"{TWO_DAYS}&{query.format(funnel=signup.id)}", status=status)
        assert answer["status"] == "error" and message in answer["message"], query


def test_a_secret_key_of_the_site_reads_them_and_nobody_else_does(anon_client, store, clock, signup):
    clock.now = NOW
    for path in ("/api/funnels?site=shop", f"/api/stats?site=shop&{TWO_DAYS}&funnel={signup.id}"):
        answer = anon_client.get(path)
        assert answer.status_code == 401 and answer.json["status"] == "error"
    secret = api_keys.create_key(store, "shop", "CI", "cli", T0)[1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert anon_client.get("/api/funnels", headers=headers).json["data"]["funnels"][0]["id"] == signup.id
    report = anon_client.get(f"/api/stats?{TWO_DAYS}&funnel={signup.id}", headers=headers).json["data"]["funnel"]
    assert [s["visits"] for s in report["steps"]] == [4, 3, 1]


@pytest.mark.parametrize("backend", BACKENDS[:1])  # the document does not depend on the store
def test_the_openapi_document_describes_them(anon_client):
    document = anon_client.get("/api/openapi.json").json
    parameters = {p["name"]: p for p in document["paths"]["/api/stats"]["get"]["parameters"]}
    assert parameters["paths"]["schema"]["maximum"] == 5 and parameters["page_flow"]["schema"]["pattern"] == "^/"
    assert parameters["cohorts"]["schema"]["enum"][:2] == ["week", "month"]
    schemas = document["components"]["schemas"]
    assert {"funnel", "paths", "page_flow", "cohorts"} <= set(schemas["StatsData"]["properties"])
    assert {"median_seconds_from_previous", "dropped"} <= set(schemas["FunnelStepFigures"]["properties"])
    assert "/api/funnels" in document["paths"]
    assert "still being prepared" in document["paths"]["/api/stats"]["get"]["responses"]["503"]["description"]
