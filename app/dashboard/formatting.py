"""How figures, times and dimension values read on the dashboard (Jinja filters and globals)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.ingest.sources import CHANNELS

from . import countries
from .views import bp
from .words import GLOSSARY, Term

EMPTY_LABELS = {"source": "Direct / none", "country": "Unknown", "channel": "Direct"}


@bp.app_template_filter("ago")
def ago(elapsed_ms: int) -> str:
    """A short, human "how long ago": just now, 12s ago, 4 min ago, 3 h ago."""
    seconds = max(0, int(elapsed_ms) // 1000)
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """127.4 -> "2m 7s"; None -> "—"."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


@bp.app_template_filter("number")
def number(value: float | None) -> str:
    """12345 -> "12,345"; None -> "—"."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


@bp.app_template_filter("percent")
def percent(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


@bp.app_template_filter("rate")
def rate(value: float | None) -> str:
    """A share as a reader compares shares: 0.9%, 13%, 100% (a decimal only below 10%)."""
    return percent(value, 1 if value and value < 10 else 0)


@bp.app_template_filter("dimension_label")
def dimension_label(value: str, dimension: str) -> str:
    """What a dimension value means to a reader: an empty one in words, a country or channel by name."""
    if dimension == "country":
        return countries.country(value).name
    if dimension == "channel" and value in CHANNELS:
        return CHANNELS[value]
    return value if value else EMPTY_LABELS.get(dimension, "(none)")


@bp.app_template_filter("datetime")
def local_datetime(ms: int, timezone: str) -> str:
    """Epoch milliseconds as the site's local date and time."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


FILTER_NAMES = {"page": "Page", "entry": "Entry page", "source": "Source", "channel": "Channel",
                "utm_source": "UTM source", "utm_medium": "UTM medium", "utm_campaign": "Campaign",
                "country": "Country", "device": "Device", "browser": "Browser", "os": "OS", "goal": "Goal"}


@bp.app_context_processor
def names() -> dict:
    return {"filter_names": FILTER_NAMES, "world_atlas": f"vendor/{countries.atlas_file().name}"}


@bp.app_template_global()
def glossary(term: str) -> Term | None:
    return GLOSSARY.get(term)


@bp.app_template_global()
def flag(code: str) -> str:
    return countries.country(code).flag


@bp.app_template_global()
def map_rows(rows: list[dict], metric: str) -> list[dict]:
    """Breakdown rows by country as the map draws them: its shape's id, name and figure."""
    drawn = []
    for row in rows:
        c = countries.country(row["value"])
        if c.numeric:
            drawn.append({"id": c.numeric, "name": c.name, "value": row[metric] or 0})
    return drawn
