"""A visitor who opts out is not tracked, in a real browser: the site links to one of its pages
with #liveinsight-opt-out, and from then on the tracker sends nothing from that browser,
forgets the visitor id, and says so through liveinsight.visitorId(); #liveinsight-opt-in
(or liveinsight.optIn()) brings it back on the next page."""
from __future__ import annotations

from .conftest import wait_until
from .test_tracker_offline import FLUSH_MS, _page


def test_the_opt_out_link_stops_the_tracker_in_this_browser(context, live_server, page_server):
    page_server.pages["/"] = _page(live_server.site.tracker_key, "/liveinsight.min.js",
                                   api=f"{live_server.url}/api/events")
    posts: list[str] = []
    page = context.new_page()
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    page.goto(f"{page_server.url}/blog")
    wait_until(lambda: len(live_server.events()) == 1, 10, "the first page view never arrived")
    visitor = page.evaluate("liveinsight.visitorId()")
    assert visitor == live_server.events()[0]["user_id"]

    page.goto(f"{page_server.url}/privacy#liveinsight-opt-out")
    page.wait_for_function("() => window.liveinsight")
    assert page.evaluate("liveinsight.visitorId()") is None
    assert page.evaluate("localStorage.getItem('li_uid')") is None  # the id is forgotten
    sent_before = len(posts)
    page.evaluate("liveinsight.track('ignored', {}); liveinsight.conversion('ignored', 1)")
    page.goto(f"{page_server.url}/pricing")  # an ordinary page: still opted out
    page.wait_for_timeout(4 * FLUSH_MS)
    assert len(posts) == sent_before, "an opted-out browser sent events"
    assert [e["path"] for e in live_server.events()] == ["/blog"]

    page.evaluate("liveinsight.optIn()")
    page.goto(f"{page_server.url}/welcome-back")
    wait_until(lambda: len(live_server.events()) == 2, 10, "the opted-in page view never arrived")
    back = live_server.events()[0]
    assert back["path"] == "/welcome-back" and back["user_id"] != visitor  # a new visitor id
