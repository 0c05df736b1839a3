"""The dashboard's words for its metrics: a label and a definition a site owner understands,
shown where the figure stands (open by tap or keyboard; the `glossary` template global in
formatting.py) and naming the chart's metrics (charts.py)."""
from __future__ import annotations

from dataclasses import dataclass

from app.i18n import lazy_gettext as _l



@dataclass(frozen=True)
class Term:
    label: str  # lazy (translated when shown): str(...) it where a plain str is needed
    text: str


GLOSSARY = {
    "visitors": Term(_l("Visitors"), _l(
        "People who visited, each counted once in the period (recognised by an anonymous id kept in their "
        "browser, not a cookie). With filters over several days, a person who came back on another day counts "
        "once for each day.")),
    "visits": Term(_l("Visits"), _l("Separate visits to the site. A visit ends after 30 minutes without activity.")),
    "pageviews": Term(_l("Page views"), _l("Pages opened, every time one is opened (a reload counts again).")),
    "views_per_visit": Term(_l("Views per visit"), _l(
        "Page views divided by visits: how many pages a visit opens on average.")),
    "bounce_rate": Term(_l("Bounce rate"), _l(
        "Visits that opened one page and did nothing else, of all visits. Lower is usually better.")),
    "visit_duration_s": Term(_l("Visit duration"), _l(
        "How long a visit lasts on average, from its first page to its last activity (the tracker notices an "
        "open, visible tab every so often).")),
    "time_on_page_s": Term(_l("Time on page"), _l(
        "How long a page stays open and visible on average, each time it is viewed.")),
    "conversion_rate": Term(_l("Conversion rate"), _l("Visits that reached a goal, of all visits.")),
    "conversions": Term(_l("Conversions"), _l("Times a goal was reached (a purchase, a sign-up…).")),
    "conversion_value": Term(_l("Value"), _l("The total value your pages reported with their conversions.")),
    "exit_rate": Term(_l("Exit rate"), _l(
        "Of the times this page was viewed, how often it was the visit's last page.")),
    "entries": Term(_l("Entries"), _l("Visits that started on this page.")),
    "exits": Term(_l("Exits"), _l("Visits that ended on this page.")),
    "visitors_summed": Term(_l("Visitors, summed by day"), _l(
        "With filters over several days, visitors are counted day by day and added up: a person who came back "
        "on another day counts once for each day.")),
    "current": Term(_l("Visitors now"), _l("People with the site open in the last 5 minutes.")),
}
