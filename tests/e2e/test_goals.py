"""Goals in a real browser: an admin adds a page goal in Settings; a visitor sees a page marked
not found (data-404), buys something (liveinsight.conversion) and follows a link out; the
reports show the goal, the conversion with its value, the missing page and the link, and the
live view the conversion and the feed in words, at a phone's and a desk's size, with nothing
wider than its card and no error in the console."""
from __future__ import annotations

from playwright.sync_api import expect

from .conftest import log_in, wait_until

FLUSH_MS = 300
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}


def _shop_page(key: str, api: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script defer src="/liveinsight.min.js" data-key="{key}" data-api="{api}" data-flush-ms="{FLUSH_MS}"
        data-heartbeat-ms="100000" data-404></script>
</head><body><h1>Not here</h1>
<button id="buy" onclick="liveinsight.conversion('Purchase', 29)">Buy</button>
<a id="out" href="https://github.com/liveinsight">GitHub</a></body></html>"""


def test_goals_conversions_and_missing_pages_reach_the_reports(context, browser, live_server, page_server,
                                                               artifacts_dir):
    log_in(context, live_server)
    site_id = live_server.site.site_id
    settings = context.new_page()
    settings.goto(f"{live_server.url}/sites/{site_id}/settings#goals")
    settings.fill("#goals input[name=name]", "Saw the shop")
    settings.select_option("#goals select[name=kind]", "page")
    settings.fill("#goals input[name=match]", "/shop/*")
    with settings.expect_navigation():
        settings.click("#goals .goal-form button")
    expect(settings.locator("#goals")).to_contain_text("Visited /shop/*")

    page_server.pages["/"] = _shop_page(live_server.site.tracker_key, f"{live_server.url}/api/events")
    shop = context.new_page()
    shop.route("https://github.com/**", lambda route: route.fulfill(body="elsewhere"))  # no internet here
    shop.goto(f"{page_server.url}/shop/old-hat")
    shop.click("#buy")
    wait_until(lambda: {e["type"] for e in live_server.events()} >= {"page_view", "custom", "conversion"}, 10,
               "the page view, the not-found event and the conversion never all arrived")
    with shop.expect_navigation():
        shop.click("#out")  # the click leaves on pagehide, by beacon
    wait_until(lambda: any(e["type"] == "click" for e in live_server.events()), 10, "the outbound click never arrived")
    assert {e["name"] for e in live_server.events() if e["type"] == "custom"} == {"404"}

    for size, (width, height) in SIZES.items():
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        wait_until(lambda: "Saw the shop" in context.request.get(
            f"{live_server.url}/sites/{site_id}/widgets/goals?period=today").text()
            and "Purchase" in context.request.get(
            f"{live_server.url}/sites/{site_id}/widgets/goals?period=today").text(), 10,
            "the aggregator never folded the visit")
        page.goto(f"{live_server.url}/sites/{site_id}?period=today")
        goals = page.locator("#w-goals tbody tr")
        expect(goals).to_have_count(2)
        texts = [" ".join(t.split()) for t in goals.all_inner_texts()]
        assert any(t.startswith("Saw the shop") and " 1 100.0%" in t for t in texts), texts
        assert any(t.startswith("Purchase") and "29.00" in t for t in texts), texts
        wider = []
        for tab, text in (("not_found", "/shop/old-hat"), ("outbound", "github.com"), ("events", "404")):
            page.click(f"#tab-{tab}")  # the tab fetches its widget into the panel
            expect(page.locator(f"#w-{tab}")).to_contain_text(text)
            wider += page.evaluate("""id => { const card = document.getElementById(id);
                return card.scrollWidth > card.clientWidth + 1 ? [id] : []; }""", f"w-{tab}")
        assert wider == [], f"wider than their cards at {size}: {wider}"
        page.click("#tab-goals")
        page.screenshot(path=str(artifacts_dir / f"reports-goals-{size}.png"), full_page=True)
        # Filtering by the goal: the chart draws its conversions.
        page.click("#w-goals a.label >> text=Saw the shop")
        expect(page.locator(".chips")).to_contain_text("Saw the shop")
        # The click navigates: the new page's chips can show before its deferred Chart.js has run.
        page.wait_for_function(
            "() => [...document.querySelectorAll('canvas[data-chart]')].every(c => window.Chart && Chart.getChart(c))")
        expect(page.locator('[data-metric="conversion_rate"] .value')).to_have_text("100.0%")

        # The live view: the conversion, its value, and the feed in words.
        page.goto(f"{live_server.url}/sites/{site_id}/realtime")
        expect(page.get_by_test_id("conversions-30m")).to_have_text("1")
        expect(page.get_by_test_id("conversions-today")).to_contain_text("€29.00")
        expect(page.locator("#w-live-feed")).to_contain_text("Purchase (€29.00) on /shop/old-hat")
        expect(page.locator("#w-live-feed")).to_contain_text("Left for github.com")
        expect(page.locator("#w-live-feed")).to_contain_text("Page not found: /shop/old-hat")
        wider = page.evaluate("""() => ['w-conversions', 'w-live-feed'].filter(id => {
            const card = document.getElementById(id);
            return card.scrollWidth > card.clientWidth + 1; })""")
        assert wider == [], f"wider than their cards at {size}: {wider}"
        page.screenshot(path=str(artifacts_dir / f"live-conversions-{size}.png"), full_page=True)
        assert errors == [], f"console errors at {size}: {errors}"
        page.close()
