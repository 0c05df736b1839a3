"""Funnels across visits in a real browser: the tracker keeps what each answer's Li-Carry header
says (localStorage 'li_c', read cross-origin) and sends it as every event's `carry`, so a visit
in a new tab takes up the funnel where the visitor's last visit left it; the aggregator, running
as it does beside the app, counts that visit's step as the funnel's next one."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from app.analytics import funnels
from app.analytics.periods import Period, day_number

from .conftest import wait_until
from .test_tracker_cohort import _setup, _storage


def test_a_visit_in_a_new_tab_takes_up_the_funnel_where_the_last_visit_left_it(context, live_server, page_server):
    store, site = live_server.store, live_server.site
    funnel = funnels.new_funnel(site, "Product to checkout", [("page", "/product"), ("page", "/checkout")],
                                live_server.app.extensions["liveinsight.clock"].now_ms(), window_days=7)
    funnels.add_funnel(store, site, funnel)
    sent = _setup(context, live_server, page_server)

    first_visit = context.new_page()
    first_visit.goto(f"{page_server.url}/product")
    [product] = sent.wait_for(first_visit, 1, "the product page view")
    assert product["carry"] is None  # nothing answered yet
    carry = wait_until(lambda: _storage(first_visit, "li_c"), 10, "li_c was never kept", page=first_visit)
    assert re.fullmatch(rf"{funnel.id}\.1\.\d+", carry)  # the first step of two, and when
    first_visit.close()  # its visit ends with the tab (sessionStorage)

    second_visit = context.new_page()
    second_visit.goto(f"{page_server.url}/checkout")
    checkout = sent.wait_for(second_visit, 2, "the checkout page view")[-1]
    assert (checkout["carry"], checkout["session_id"] != product["session_id"]) == (carry, True)
    wait_until(lambda: _storage(second_visit, "li_c") == "", 10, "the finished journey stayed in li_c",
               page=second_visit)

    first_day = datetime.fromtimestamp(product["timestamp"] / 1000, timezone.utc).date()
    period = Period("custom", first_day, first_day + timedelta(days=1))  # should midnight come between
    day = day_number(datetime.now(timezone.utc).date())
    across = lambda: [s["visits"] for s in funnels.funnel_report(store, site, funnel, period, day)["steps"]]  # noqa: E731
    within = funnels.Funnel.of({**funnel.record(), "window_days": 0})
    wait_until(lambda: across() == [1, 1], 10, f"the second visit's step never counted: {across()}", page=second_visit)
    assert [s["visits"] for s in funnels.funnel_report(store, site, within, period, day)["steps"]] == [1, 0]
