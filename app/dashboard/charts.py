"""What the dashboard's charts draw: a series' points with dates a person reads ("Dec 2",
"14:00", "Week of Nov 30"; in the request's language unless asked in another), the bucket
still counting, and the previous period beside it."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from app.analytics.stats import CHART_METRICS
from app.i18n import gettext as _, language, lazy_gettext as _l

from .words import GLOSSARY

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


def axis_label(label: str, interval: str, locale: str | None = None) -> str:
    return format_skeleton(AXIS_SKELETON.get(interval, "MMMd"), _parse(label), locale=locale or language())


def title(label: str, interval: str, locale: str | None = None) -> str:
    moment, locale = _parse(label), locale or language()
    text = format_skeleton(TITLE_SKELETON.get(interval, "yMMMEd"), moment, locale=locale)
    if interval == "hour":
        return f"{text}, {format_skeleton('Hm', moment, locale=locale)}"
    return _("Week of %(date)s", date=text) if interval == "week" else text


def cohort_label(first_day: str, period: str, locale: str | None = None) -> str:
    """A retention cohort by its first day: "Nov 16, 2026" (its week's Monday), "November 2026"."""
    return format_skeleton(COHORT_SKELETON[period], _parse(first_day), locale=locale or language())


def hour_labels(hours_ms: list[int], timezone: str, locale: str | None = None) -> list[str]:
    """Epoch-ms hour starts as local "14:00"s."""
    zone, locale = ZoneInfo(timezone), locale or language()
    return [format_skeleton("Hm", datetime.fromtimestamp(h / 1000, zone), locale=locale) for h in hours_ms]


def main_chart(series: dict, selected: str) -> dict:
    """The overview chart's data: every chartable metric the series has (the page switches
    between them without a request; another is fetched), each with its previous period.
    It is JSON in the page (dashboard.js draws it), so its words are plain translated strs:
    a metric's title and previous period's label, and what a missing figure reads as."""
    interval = series["interval"]
    metrics = {}
    for name in CHART_METRICS:
        if name in series:
            label = str(GLOSSARY[name].label)
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
