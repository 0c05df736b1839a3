"""What the dashboard's charts draw: a series' points with dates a person reads ("Dec 2",
"14:00", "Week of Nov 30"; in the request's language unless asked in another), the bucket
still counting, and the previous period beside it."""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from app.analytics.stats import CHART_METRICS
from app.i18n import gettext as _, language, lazy_gettext as _l

from .words import glossary_in

# How the figures of a chartable metric (stats.CHART_METRICS) read, when not a count.
UNITS = {"views_per_visit": "ratio", "bounce_rate": "percent", "visit_duration_s": "seconds"}
AXIS_SKELETON = {"hour": "Hm", "day": "MMMd", "week": "MMMd", "month": "yMMM"}
TITLE_SKELETON = {"hour": "MMMEd", "day": "yMMMEd", "week": "yMMMd", "month": "yMMMM"}
COHORT_SKELETON = {"week": "yMMMd", "month": "yMMMM"}
# What the chart and its table call an interval (stats.timeseries: hour, day, week or month).
INTERVAL_NAMES = {"hour": _l("Hour"), "day": _l("Day"), "week": _l("Week"), "month": _l("Month")}
# The chart's title: a metric's label per interval ("Visitors per day").
PER_INTERVAL = {"hour": _l("%(metric)s per hour"), "day": _l("%(metric)s per day"),
                "week": _l("%(metric)s per week"), "month": _l("%(metric)s per month")}
# Under the chart, when its last bucket is still counting.
STILL_COUNTING = {"hour": _l("the last hour is still counting (dotted)"),
                  "day": _l("the last day is still counting (dotted)"),
                  "week": _l("the last week is still counting (dotted)"),
                  "month": _l("the last month is still counting (dotted)")}


def _parse(label: str) -> datetime:
    return datetime.fromisoformat(label) if "T" in label else datetime.combine(date.fromisoformat(label), datetime.min.time())


# Dates in words are remembered: a chart asks for the same days at every refresh, and Babel
# takes tens of microseconds for each (60 a chart).
@lru_cache(maxsize=4096)
def _label_text(skeleton: str, label: str, locale: str) -> str:
    """A bucket's label ("2026-12-02", "2026-12-02T14:00") in a CLDR skeleton's words."""
    return format_skeleton(skeleton, _parse(label), locale=locale)


@lru_cache(maxsize=4096)
def _hour_text(hour_ms: int, timezone: str, locale: str) -> str:
    return format_skeleton("Hm", datetime.fromtimestamp(hour_ms / 1000, ZoneInfo(timezone)), locale=locale)


def axis_label(label: str, interval: str, locale: str | None = None) -> str:
    return _label_text(AXIS_SKELETON.get(interval, "MMMd"), label, locale or language())


def title(label: str, interval: str, locale: str | None = None) -> str:
    locale = locale or language()
    text = _label_text(TITLE_SKELETON.get(interval, "yMMMEd"), label, locale)
    if interval == "hour":
        return f"{text}, {_label_text('Hm', label, locale)}"
    return _("Week of %(date)s", date=text) if interval == "week" else text


def cohort_label(first_day: str, period: str, locale: str | None = None) -> str:
    """A retention cohort by its first day: "Nov 16, 2026" (its week's Monday), "November 2026"."""
    return _label_text(COHORT_SKELETON[period], first_day, locale or language())


def hour_labels(hours_ms: list[int], timezone: str, locale: str | None = None) -> list[str]:
    """Epoch-ms hour starts as local "14:00"s."""
    locale = locale or language()
    return [_hour_text(h, timezone, locale) for h in hours_ms]


def main_chart(series: dict, selected: str) -> dict:
    """The overview chart's data: every chartable metric the series has (the page switches
    between them without a request; another is fetched), each with its previous period.
    It is JSON in the page (dashboard.js draws it), so its words are plain translated strs:
    a metric's title and previous period's label, and what a missing figure reads as."""
    interval = series["interval"]
    metrics = {}
    for name in CHART_METRICS:
        if name in series:
            label = glossary_in(language())[name].label
            metrics[name] = {"label": label, "unit": UNITS.get(name, "count"), "data": series[name],
                             "previous": series.get(f"previous_{name}"), "unavailable": series.get(f"{name}_unavailable"),
                             "title": PER_INTERVAL[interval] % {"metric": label},
                             "previous_label": _("%(metric)s, previous period", metric=label)}
    return {"labels": [axis_label(x, interval) for x in series["labels"]],
            "titles": [title(x, interval) for x in series["labels"]],
            "current": series.get("current"), "interval": interval,
            "interval_name": str(INTERVAL_NAMES[interval]),
            "still_counting": str(STILL_COUNTING[interval]),
            "no_value": _("no visits"),
            "selected": selected if selected in metrics else "visitors", "metrics": metrics}
