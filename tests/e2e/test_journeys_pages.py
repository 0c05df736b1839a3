"""The funnels and journeys pages, used in Chromium at a phone's and a desk's size: an admin adds
a funnel across visits with the form and sees its report, and a page of a path shows what came before and
after it. The pages alone are audited in test_pages.py (PAGES); these audit them after use."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.analytics import funnels, journeys
from app.analytics.periods import local_day_number, parse_period
from app.clock import SystemClock

from .conftest import DESKTOP_CHROME_UA
from .test_pages import VIEWPORTS, Seeded, audit, prepare, seeded, settle  # noqa: F401  (seeded is a fixture)


def _open(browser, seeded: Seeded, viewport: str, path: str):
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS[viewport], storage_state=seeded.admin_state)
    context.set_default_timeout(15_000)
    prepare(context)
    page = context.new_page()
    page.goto(seeded.server.url + path)
    settle(page)
    return context, page


def _week(seeded: Seeded):
    """The site, the last 7 days and today's day number, as the server reads them now."""
    site = seeded.server.store.get_site(seeded.site_id)
    now = SystemClock().now_ms()
    return site, parse_period("7d", site.timezone, now), local_day_number(site.timezone, now)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_an_admin_adds_a_funnel_with_the_form_and_sees_its_report(viewport, seeded: Seeded, browser):
    store = seeded.server.store
    context, page = _open(browser, seeded, viewport, f"/sites/{seeded.site_id}/funnels?period=7d")
    try:
        name = f"Docs then pricing ({viewport})"
        page.click("#add-funnel > summary")
        form = page.locator("#add-funnel form")
        form.get_by_label("Name", exact=True).fill(name)
        form.get_by_label("Step 1: the page").fill("/")
        form.get_by_label("Step 2: what the visit does").select_option(label="Read the docs")  # a goal
        form.get_by_label("Step 3: the page").fill("/pricing")
        # One step too few first: the form comes back with the reason and what was typed.
        form.get_by_label("Step 1: the page").fill("")
        form.get_by_label("Step 3: the page").fill("")
        with page.expect_navigation():
            form.get_by_role("button", name="Add funnel").click()
        expect(page.locator("#add-funnel .form-error")).to_have_text("a funnel has 2 to 8 steps, not 1")
        expect(page.locator("#add-funnel").get_by_label("Name", exact=True)).to_have_value(name)
        form = page.locator("#add-funnel form")
        form.get_by_label("Step 1: the page").fill("/")
        form.get_by_label("Step 3: the page").fill("/pricing")
        form.get_by_label("Count the steps").select_option(label="across a visitor's visits within 7 days")
        with page.expect_navigation():
            form.get_by_role("button", name="Add funnel").click()

        [added] = [f for f in funnels.funnels_of(store.get_site(seeded.site_id)) if f.name == name]
        assert f"funnel={added.id}" in page.url and added.window_days == 7
        expect(page.locator("#w-funnel .note")).to_contain_text("within 7 days of the first step")
        site, week, today = _week(seeded)
        report = funnels.funnel_report(store, site, added, week, today)
        expect(page.get_by_role("status")).to_contain_text(f"Funnel '{name}' added")
        expect(page.locator(".panel-card h2.panel-title")).to_have_text(name)
        expect(page.locator(".step-label")).to_have_text(["Visited /", "Read the docs", "Visited /pricing"])
        expect(page.locator(".step-visits strong")).to_have_text([f"{s['visits']:,}" for s in report["steps"]])
        expect(page.locator(".funnel-summary")).to_contain_text(f"{report['completed']:,} of {report['entered']:,}")

        # Its widget refreshes with the funnel it shows.
        with page.expect_response(lambda r: "/widgets/funnel" in r.url and f"funnel={added.id}" in r.url):
            page.evaluate("() => htmx.trigger('#w-funnel', 'visibilitychange')")
        expect(page.locator(".step-label")).to_have_count(3)
        settle(page)
        problems = audit(page)

        with page.expect_navigation():
            page.get_by_role("button", name=f"Delete the funnel “{name}”").click()
        expect(page.get_by_role("status")).to_contain_text(f"Funnel '{name}' deleted")
        assert name not in [f.name for f in funnels.funnels_of(store.get_site(seeded.site_id))]
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_page_of_a_path_shows_what_came_before_and_after_it(viewport, seeded: Seeded, browser):
    context, page = _open(browser, seeded, viewport, f"/sites/{seeded.site_id}/journeys?period=7d")
    try:
        title = page.locator("#before-after h2.panel-title")
        expect(title).to_have_text("Before and after /")  # the most common first page of the demo's
        page.locator("#w-paths a.page-chip", has_text=re.compile(r"^/pricing$")).first.click()
        expect(title).to_have_text("Before and after /pricing")
        assert "page_flow=/pricing" in page.url
        site, week, today = _week(seeded)
        flow = journeys.next_and_previous(seeded.server.store, site, week, today, "/pricing")
        expect(page.locator("#w-page-flow")).to_contain_text(f"/pricing was viewed {flow['views']:,} times")
        came_from = page.locator("#w-page-flow .flow-rows").first.locator("li")
        expect(came_from.first).to_contain_text("Started here" if flow["previous"][0]["page"] == journeys.ENTRANCE
                                                 else flow["previous"][0]["page"])
        # A page of the "went to" list leads on in turn.
        went_to = page.locator("#w-page-flow .flow-rows").nth(1).locator("a.page-chip").first
        next_page = went_to.inner_text()
        went_to.click()
        expect(title).to_have_text(f"Before and after {next_page}")
        settle(page)
        problems = audit(page)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_first_report_over_months_shows_how_far_it_got_then_the_report(viewport, seeded: Seeded, browser,
                                                                          artifacts_dir):
    """Past REPORT_BUDGET_S (0 here: a month a request) the journeys page shows each widget's
    progress, asks again by itself, and ends with the report; three months before the demo's
    traffic, filtered (by the viewport's device: each test makes its own digests)."""
    app = seeded.server.app
    budget, app.config["REPORT_BUDGET_S"] = app.config["REPORT_BUDGET_S"], 0
    device = "mobile" if viewport == "phone" else "desktop"
    context, page = _open(browser, seeded, viewport, f"/sites/{seeded.site_id}/journeys?period=custom"
                                                     f"&from=2026-08-01&to=2026-10-31&device={device}")
    try:
        paths = page.locator("#w-paths")
        expect(paths.get_by_role("status")).to_have_text(
            re.compile(r"Preparing this report from its history: [12] of 3 months done…"))
        expect(paths).to_have_attribute("aria-busy", "true")
        page.screenshot(path=str(artifacts_dir / f"page-journeys-preparing-{viewport}.png"), full_page=True)
        problems = audit(page)
        # It goes on by itself, a month a request (2 s apart), to the report: no visit then.
        expect(paths).to_contain_text("No visit viewed a page in this period with these filters.", timeout=20_000)
        expect(paths).not_to_have_attribute("aria-busy", "true")
        settle(page)
        problems += audit(page)
    finally:
        app.config["REPORT_BUDGET_S"] = budget
        context.close()
    assert problems == [], "\n".join(problems)
