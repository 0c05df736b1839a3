"""The dashboard's words for its metrics: a label and a definition a site owner understands,
shown where the figure stands (open by tap or keyboard; the `glossary` template global in
formatting.py) and naming the chart's metrics (charts.py)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from app.i18n import N_, catalogue


@dataclass(frozen=True)
class Term:
    label: str
    text: str
    question: str = ""  # what the button that opens the definition says to a screen reader


QUESTION = N_("What is %(term)s?")


@functools.cache  # a report shows a dozen terms: translated once per language, not at each showing
def glossary_in(language: str) -> dict[str, Term]:
    """GLOSSARY, whose words are English, in a language."""
    words = catalogue(language)
    translated = {}
    for name, term in GLOSSARY.items():
        label = words.ugettext(term.label)
        translated[name] = Term(label, words.ugettext(term.text), words.ugettext(QUESTION) % {"term": label.lower()})
    return translated


GLOSSARY = {
    "visitors": Term(N_("Visitors"), N_(
        "People who visited, each counted once in the period (recognised by an anonymous id kept in their "
        "browser, not a cookie). With filters over several days, a person who came back on another day counts "
        "once for each day.")),
    "visits": Term(N_("Visits"), N_("Separate visits to the site. A visit ends after 30 minutes without activity.")),
    "pageviews": Term(N_("Page views"), N_("Pages opened, every time one is opened (a reload counts again).")),
    "views_per_visit": Term(N_("Views per visit"), N_(
        "Page views divided by visits: how many pages a visit opens on average.")),
    "bounce_rate": Term(N_("Bounce rate"), N_(
        "Visits that opened one page and did nothing else, of all visits. Lower is usually better.")),
    "visit_duration_s": Term(N_("Visit duration"), N_(
        "How long a visit lasts on average, from its first page to its last activity (the tracker notices an "
        "open, visible tab every so often).")),
    "time_on_page_s": Term(N_("Time on page"), N_(
        "How long a page stays open and visible on average, each time it is viewed.")),
    "conversion_rate": Term(N_("Conversion rate"), N_("Visits that reached a goal, of all visits.")),
    "conversions": Term(N_("Conversions"), N_("Times a goal was reached (a purchase, a sign-up…).")),
    "conversion_value": Term(N_("Value"), N_("The total value your pages reported with their conversions.")),
    "exit_rate": Term(N_("Exit rate"), N_(
        "Of the times this page was viewed, how often it was the visit's last page.")),
    "entries": Term(N_("Entries"), N_("Visits that started on this page.")),
    "exits": Term(N_("Exits"), N_("Visits that ended on this page.")),
    "visitors_summed": Term(N_("Visitors, summed by day"), N_(
        "With filters over several days, visitors are counted day by day and added up: a person who came back "
        "on another day counts once for each day.")),
    "current": Term(N_("Visitors now"), N_("People with the site open in the last 5 minutes.")),
}
