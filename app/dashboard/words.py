"""The dashboard's words for its metrics: a label and a definition a site owner understands,
shown where the figure stands (open by tap or keyboard; the `glossary` template global in
formatting.py) and naming the chart's metrics (charts.py)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    label: str
    text: str


GLOSSARY = {
    "visitors": Term("Visitors", "People who visited, each counted once in the period (recognised by an "
                     "anonymous id kept in their browser, not a cookie). With filters over several days, a person who "
                     "came back on another day counts once for each day."),
    "visits": Term("Visits", "Separate visits to the site. A visit ends after 30 minutes without activity."),
    "pageviews": Term("Page views", "Pages opened, every time one is opened (a reload counts again)."),
    "views_per_visit": Term("Views per visit", "Page views divided by visits: how many pages a visit opens on average."),
    "bounce_rate": Term("Bounce rate", "Visits that opened one page and did nothing else, of all visits. "
                        "Lower is usually better."),
    "visit_duration_s": Term("Visit duration", "How long a visit lasts on average, from its first page to its "
                             "last activity (the tracker notices an open, visible tab every so often)."),
    "time_on_page_s": Term("Time on page", "How long a page stays open and visible on average, each time it is viewed."),
    "conversion_rate": Term("Conversion rate", "Visits that reached a goal, of all visits."),
    "conversions": Term("Conversions", "Times a goal was reached (a purchase, a sign-up…)."),
    "conversion_value": Term("Value", "The total value your pages reported with their conversions."),
    "exit_rate": Term("Exit rate", "Of the times this page was viewed, how often it was the visit's last page."),
    "entries": Term("Entries", "Visits that started on this page."),
    "exits": Term("Exits", "Visits that ended on this page."),
    "visitors_summed": Term("Visitors, summed by day", "With filters over several days, visitors are counted "
                            "day by day and added up: a person who came back on another day counts once for each day."),
    "current": Term("Visitors now", "People with the site open in the last 5 minutes."),
}
