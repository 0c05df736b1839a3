"""How figures, times and dimension values read on the dashboard (Jinja filters and globals), in
the request's language (app/i18n.py): "12,345" and "2분 7초", "Dec 3, 2026, 14:05" and
"2026년 12월 3일 14:05"."""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_interval, format_skeleton
from babel.numbers import NumberPattern, get_decimal_symbol, get_group_symbol, parse_pattern

from app.analytics.periods import Period
from app.i18n import (DEFAULT_LANGUAGE, LANGUAGES, gettext as _, language, lazy_gettext as _l,
                      money as sum_in_language)
from app.ingest.enrich import UNRECOGNISED
from app.ingest.sources import DIRECT_SOURCE

from . import countries
from .views import bp
from .words import Term, glossary_in

EMPTY_LABELS = {"source": _l("Direct / none"), "country": _l("Unknown"), "channel": _l("Direct")}
# app.ingest.sources.CHANNELS's names, as a reader reads them (tests/test_i18n.py: the same keys).
CHANNEL_LABELS = {
    "direct": _l("Direct"), "search": _l("Organic search"), "paid": _l("Paid search"), "social": _l("Social"),
    "email": _l("Email"), "ai": _l("AI assistants"), "referral": _l("Referral"), "campaign": _l("Campaign"),
}
DEVICE_LABELS = {"desktop": _l("Desktop"), "mobile": _l("Mobile"), "tablet": _l("Tablet")}


@bp.app_template_filter("ago")
def ago(elapsed_ms: int) -> str:
    """A short, human "how long ago": just now, 12s ago, 4 min ago, 3 h ago."""
    seconds = max(0, int(elapsed_ms) // 1000)
    if seconds < 5:
        return _("just now")
    if seconds < 60:
        return _("%(n)ss ago", n=seconds)
    if seconds < 3600:
        return _("%(n)s min ago", n=seconds // 60)
    return _("%(n)s h ago", n=seconds // 3600)


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """127.4 -> "2m 7s" ("2분 7초"); None -> "—"."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return _("%(s)ss", s=seconds)
    if seconds < 3600:
        return _("%(m)sm %(s)ss", m=seconds // 60, s=seconds % 60)
    return _("%(h)sh %(m)sm", h=seconds // 3600, m=seconds % 3600 // 60)


@lru_cache(maxsize=64)
def _pattern(language: str, pattern: str) -> tuple[NumberPattern, Locale]:
    """A number pattern parsed once, with the language's Babel locale."""
    return parse_pattern(pattern), Locale.parse(language)


def _writes_figures_as_python(language: str) -> bool:
    """Whether a language writes "1,234.5" and "12%" as Python's format does (English and
    Korean do; German writes "1.234,5")."""
    locale = Locale.parse(language)
    return (get_group_symbol(locale), get_decimal_symbol(locale), locale.decimal_formats[None].pattern,
            locale.percent_formats[None].pattern) == (",", ".", "#,##0.###", "#,##0%")


# A report formats a few hundred figures: when every language of the interface writes them as
# Python does, Python writes them (twenty times faster than Babel's patterns); else Babel does.
PYTHON_WRITES_FIGURES = all(_writes_figures_as_python(code) for code in LANGUAGES)


def _formatted(value: float, decimals: int, percent: bool = False) -> str:
    if PYTHON_WRITES_FIGURES:
        return f"{value:,.{decimals}f}" + ("%" if percent else "")
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + ("%" if percent else "")
    parsed, locale = _pattern(language(), pattern)
    return parsed.apply(value / 100 if percent else value, locale)


@bp.app_template_filter("number")
def number(value: float | None) -> str:
    """12345 -> "12,345" (in the language's digits and separators); None -> "—"."""
    if value is None:
        return "—"
    return _formatted(value, 0 if float(value).is_integer() else 2)


@bp.app_template_filter("money")
def money(value: float | None, currency: str) -> str:
    """A sum in the site's currency as the language writes it, to the currency's own minor
    unit: "€1,234.50", "₩1,235", "US$12.00" (Korean); None -> "—"."""
    return "—" if value is None else sum_in_language(value, currency)


@bp.app_template_filter("percent")
def percent(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return _formatted(value, digits, percent=True)


@bp.app_template_filter("rate")
def rate(value: float | None) -> str:
    """A share as a reader compares shares: 0.9%, 13%, 100% (a decimal only below 10%)."""
    return percent(value, 1 if value and value < 10 else 0)


@bp.app_template_filter("dimension_label")
def dimension_label(value: str, dimension: str) -> str:
    """What a dimension value means to a reader: an empty one in words, a country, channel or
    device by its name in the reader's language."""
    if dimension == "country":
        known = countries.country(value, language())
        return known.name if known.code else str(EMPTY_LABELS["country"])
    if dimension == "source" and value == DIRECT_SOURCE:
        return str(CHANNEL_LABELS["direct"])
    if dimension == "channel" and value in CHANNEL_LABELS:
        return str(CHANNEL_LABELS[value])
    if dimension == "device" and value in DEVICE_LABELS:
        return str(DEVICE_LABELS[value])
    if dimension in ("browser", "os") and value == UNRECOGNISED:
        return _("Other")
    return value if value else str(EMPTY_LABELS.get(dimension) or _("(none)"))


@bp.app_template_filter("datetime")
def local_datetime(ms: int, timezone: str) -> str:
    """Epoch milliseconds as the site's local date and time: "Dec 3, 2026, 14:05"."""
    moment = datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone))
    locale = language()
    pattern = Locale.parse(locale).datetime_formats["medium"]  # how the language joins a date and a time
    return pattern.format(format_skeleton("Hm", moment, locale=locale), format_skeleton("yMMMd", moment, locale=locale))


# periods.PERIODS's names, as a reader reads them (tests/test_i18n.py: the same in English).
PERIOD_NAMES = {"today": _l("Today"), "yesterday": _l("Yesterday"), "7d": _l("Last 7 days"),
                "30d": _l("Last 30 days"), "month": _l("This month"), "last_month": _l("Last month"),
                "12mo": _l("Last 12 months"), "custom": _l("Custom range")}


@bp.app_template_filter("period_label")
def period_label(period: Period) -> str:
    """A period's days: "Wed, Nov 18, 2026", "Oct 20 – Nov 18, 2026" ("2026년 10월 20일~11월 18일")."""
    return _days_text(period.first, period.last, language())


@lru_cache(maxsize=1024)  # every page shows its period: Babel's interval takes a tenth of a millisecond
def _days_text(first: date, last: date, locale: str) -> str:
    if first == last:
        return format_skeleton("yMMMEd", first, locale=locale)
    return format_interval(first, last, "yMMMd", locale=locale)


FILTER_NAMES = {"page": _l("Page"), "entry": _l("Entry page"), "source": _l("Source"), "channel": _l("Channel"),
                "utm_source": _l("UTM source"), "utm_medium": _l("UTM medium"), "utm_campaign": _l("Campaign"),
                "country": _l("Country"), "device": _l("Device"), "browser": _l("Browser"), "os": _l("OS"),
                "goal": _l("Goal")}


@bp.app_context_processor
def names() -> dict:
    return {"filter_names": FILTER_NAMES, "period_names": PERIOD_NAMES, "channel_names": CHANNEL_LABELS,
            "world_atlas": f"vendor/{countries.atlas_file().name}"}


@bp.app_template_global()
def glossary(term: str) -> Term | None:
    return glossary_in(language()).get(term)


@bp.app_template_global()
def flag(code: str) -> str:
    return countries.country(code).flag


@bp.app_template_global()
def map_names() -> dict[str, str]:
    """The names the map gives countries without a row: in the reader's language; none in
    English, which the vendored atlas speaks already."""
    return {} if language() == DEFAULT_LANGUAGE else countries.map_names(language())


@bp.app_template_global()
def map_rows(rows: list[dict], metric: str) -> list[dict]:
    """Breakdown rows by country as the map draws them: its shape's id, name and figure."""
    drawn = []
    for row in rows:
        c = countries.country(row["value"], language())
        if c.numeric:
            drawn.append({"id": c.numeric, "name": c.name, "value": row[metric] or 0})
    return drawn
