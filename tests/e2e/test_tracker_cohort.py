"""What the tracker sends for cohort retention, in a real browser: every event carries `first`,
the visitor's first visit ([ms, landing URL, referrer], recorded once in localStorage 'li_f'
when the tracker makes the visitor id 'li_uid'), and `prev`, the time of this browser's
previous event on the site ('li_l', across pages, reloads and tabs). A visitor whose id
predates li_f sends no `first` (unknown, never invented); opting out forgets li_f, li_l and li_c.

The events are read from the requests the browser sends (fetch or beacon, deduplicated by
event_id), not from the server, which may not keep these fields as sent. The test pages flush
every 100 ms and send no heartbeats, so the only events are the ones a test makes.
"""
from __future__ import annotations

import json

from playwright.sync_api import BrowserContext, Page

from .conftest import wait_until

FLUSH_MS = 100


def _tracked_page(key: str, api: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cohort test</title>
<script defer src="/liveinsight.min.js" data-key="{key}" data-api="{api}"
        data-flush-ms="{FLUSH_MS}" data-heartbeat-ms="1000000"></script>
</head><body><h1>Cohort test</h1></body></html>"""


# A page without the tracker: where the visitor comes from, or where a test sets up storage.
OUTSIDE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Outside</title></head>
<body><a id="go" href="/landing?utm_source=newsletter">Go</a></body></html>"""


class SentEvents:
    """Every event the browser context POSTs to the endpoint, once each, in the order sent."""

    def __init__(self, context: BrowserContext, endpoint: str):
        self.by_id: dict[str, dict] = {}
        context.on("request", lambda request: self._seen(request, endpoint))

    def _seen(self, request, endpoint):
        if request.method == "POST" and request.url == endpoint and request.post_data:
            for event in json.loads(request.post_data)["events"]:
                self.by_id.setdefault(event["event_id"], event)

    def wait_for(self, page: Page, count: int, what: str) -> list[dict]:
        """The events sent so far, once there are `count` of them (no more: fails if more)."""
        events = wait_until(lambda: len(self.by_id) >= count and list(self.by_id.values()), 10,
                            f"{what} never arrived (sent: {list(self.by_id.values())})", page=page)
        assert len(events) == count, f"unexpected events: {events}"
        return events


def _setup(context, live_server, page_server) -> SentEvents:
    endpoint = f"{live_server.url}/api/events"
    page_server.pages["/"] = _tracked_page(live_server.site.tracker_key, endpoint)
    page_server.pages["/outside"] = OUTSIDE
    return SentEvents(context, endpoint)


def _storage(page: Page, name: str):
    return page.evaluate("name => localStorage.getItem(name)", name)


def test_a_new_visitor_sends_its_first_visit_and_the_time_of_its_previous_event(context, live_server, page_server):
    sent = _setup(context, live_server, page_server)
    page = context.new_page()
    page.goto(f"{page_server.url}/outside")
    before = page.evaluate("Date.now()")
    with page.expect_navigation():
        page.click("#go")  # a link, so the landing page has a referrer
    page.wait_for_function("() => window.liveinsight")
    after = page.evaluate("Date.now()")
    landing = f"{page_server.url}/landing?utm_source=newsletter"
    assert page.url == landing

    [view] = sent.wait_for(page, 1, "the landing page view")
    first = view["first"]
    assert first == [first[0], landing, f"{page_server.url}/outside"]
    assert before <= first[0] <= view["timestamp"] <= after  # made with the visitor id, on landing
    assert json.loads(_storage(page, "li_f")) == first
    assert view["user_id"] == _storage(page, "li_uid")
    assert view.get("prev") is None  # no earlier event in this browser

    page.evaluate("liveinsight.track('one')")
    one = sent.wait_for(page, 2, "the first custom event")[-1]
    page.evaluate("liveinsight.conversion('two', 5)")
    two = sent.wait_for(page, 3, "the conversion")[-1]
    assert (one["name"], two["name"]) == ("one", "two")
    assert one["prev"] == view["timestamp"] and two["prev"] == one["timestamp"]

    # A reload, then a page in another tab: the same first visit, prev from the page before.
    page.reload()
    again = sent.wait_for(page, 4, "the reloaded page view")[-1]
    other_tab = context.new_page()
    other_tab.goto(f"{page_server.url}/pricing")
    elsewhere = sent.wait_for(other_tab, 5, "the other tab's page view")[-1]
    assert (again["type"], elsewhere["type"]) == ("page_view", "page_view")
    assert again["prev"] == two["timestamp"] and elsewhere["prev"] == again["timestamp"]
    events = list(sent.by_id.values())
    assert all(e["first"] == first and e["user_id"] == view["user_id"] for e in events)
    assert json.loads(_storage(other_tab, "li_f")) == first  # recorded once, never rewritten
    assert _storage(other_tab, "li_l") == str(elsewhere["timestamp"])


def test_a_visitor_from_before_li_f_sends_no_first_visit(context, live_server, page_server):
    sent = _setup(context, live_server, page_server)
    page = context.new_page()
    page.goto(f"{page_server.url}/outside")
    page.evaluate("localStorage.setItem('li_uid', 'visitor-from-before-li-f')")

    page.goto(f"{page_server.url}/shop")
    [view] = sent.wait_for(page, 1, "the page view")
    page.reload()
    events = sent.wait_for(page, 2, "the reloaded page view")
    assert [e["user_id"] for e in events] == ["visitor-from-before-li-f"] * 2
    assert [e.get("first") for e in events] == [None, None]  # unknown: not invented
    assert _storage(page, "li_f") is None
    assert events[1]["prev"] == view["timestamp"]  # prev does not depend on li_f


def test_opting_out_forgets_the_first_visit_and_the_last_event(context, live_server, page_server):
    sent = _setup(context, live_server, page_server)
    page = context.new_page()
    page.goto(f"{page_server.url}/blog")
    sent.wait_for(page, 1, "the page view")
    assert _storage(page, "li_f") and _storage(page, "li_l")
    wait_until(lambda: _storage(page, "li_c") == "", 10, "the answer's Li-Carry was never kept", page=page)

    page.goto(f"{page_server.url}/privacy#liveinsight-opt-out")  # the opt-out link
    page.wait_for_function("() => window.liveinsight")
    assert [_storage(page, name) for name in ("li_uid", "li_f", "li_l", "li_q", "li_c")] == [None] * 5

    # Back in on the next page: a new visitor, with a new first visit; then the API's opt-out.
    page.evaluate("liveinsight.optIn(); liveinsight.track('ignored'); liveinsight.notFound()")  # this page: nothing
    page.goto(f"{page_server.url}/welcome-back")
    back = sent.wait_for(page, 2, "the opted-in page view")[-1]
    assert back["type"] == "page_view" and back["first"][1] == f"{page_server.url}/welcome-back" and back.get("prev") is None
    assert _storage(page, "li_f") and _storage(page, "li_l")
    page.evaluate("liveinsight.optOut()")
    assert [_storage(page, name) for name in ("li_uid", "li_f", "li_l", "li_q", "li_c")] == [None] * 5
    assert _storage(page, "li_out")
