"""What the dashboard's charts draw: a series' points with dates a person reads ("Dec 2",
"14:00", "Week of Nov 30"), the bucket still counting, and the previous period beside it."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from app.analytics.stats import CHART_METRICS

from .words import GLOSSARY

LOCALE = "en"
# How the figures of a chartable metric (stats.CHART_METRICS) read, when not a count.
UNITS = {"views_per_visit": "ratio", "bounce_rate": "percent", "visit_duration_s": "seconds"}
AXIS_SKELETON = {"hour": "Hm", "day": "MMMd", "week": "MMMd", "month": "yMMM"}
TITLE_SKELETON = {"hour": "MMMEd", "day": "yMMMEd", "week": "yMMMd", "month": "yMMMM"}
COHORT_SKELETON = {"week": "yMMMd", "month": "yMMMM"}


def _parse(label: str) -> datetime:
    return datetime.fromisoformat(label) if "T" in label else datetime.combine(date.fromisoformat(label), datetime.min.time())


def axis_label(label: str, interval: str, locale: str = LOCALE) -> str:
    return format_skeleton(AXIS_SKELETON.get(interval, "MMMd"), _parse(label), locale=locale)


def title(label: str, interval: str, locale: str = LOCALE) -> str:
    moment = _parse(label)
    text = format_skeleton(TITLE_SKELETON.get(interval, "yMMMEd"), moment, locale=locale)
    if interval == "hour":
        return f"{text}, {format_skeleton('Hm', moment, locale=locale)}"
    return f"Week of {text}" if interval == "week" else text


def cohort_label(first_day: str, period: str, locale: str = LOCALE) -> str:
    """A retention cohort by its first day: "Nov 16, 2026" (its week's Monday), "November 2026"."""
    return format_skeleton(COHORT_SKELETON[period], _parse(first_day), locale=locale)


def hour_labels(hours_ms: list[int], timezone: str, locale: str = LOCALE) -> list[str]:
    """Epoch-ms hour starts as local "14:00"s."""
    zone = ZoneInfo(timezone)
    return [format_skeleton("Hm", datetime.fromtimestamp(h / 1000, zone), locale=locale) for h in hours_ms]


def main_chart(series: dict, selected: str) -> dict:
    """The overview chart's data: every chartable metric the series has (the page switches
    between them without a request; another is fetched), each with its previous period."""
    interval = series["interval"]
    metrics = {}
    for name in CHART_METRICS:
        if name in series:
            metrics[name] = {"label": GLOSSARY[name].label, "unit": UNITS.get(name, "count"), "data": series[name],
                             "previous": series.get(f"previous_{name}"), "unavailable": series.get(f"{name}_unavailable")}
    return {"labels": [axis_label(x, interval) for x in series["labels"]],
            "titles": [title(x, interval) for x in series["labels"]],
            "current": series.get("current"), "interval": interval,
            "selected": selected if selected in metrics else "visitors", "metrics": metrics}
