"""Countries as the dashboard shows them: a name in the reader's language, a flag, and the id of
the country's shape on the map.

Events store a country as an ISO 3166-1 alpha-2 code ("KR", "AU"), or "" when the address was
not found (app/ingest/enrich.py). From such a code:

- the name comes from Babel (CLDR), in any locale Babel has ("en", "ko", "ko_KR", "pt-BR");
- the flag emoji is the code's two letters as Unicode regional indicator symbols (K -> U+1F1F0);
- the numeric id is the ISO 3166-1 numeric code as three digits ("410"), which is what
  world-atlas (static/vendor/world-atlas-*-countries-110m.json) uses as its features' ids; None
  for a country the map does not draw (most small islands). Babel has numeric codes only as
  CLDR aliases, which list withdrawn codes too (DE: 276, 278, 280; YE: 720, 886, 887) with
  nothing to tell the current one: the current one is the alias that is a feature id of the
  vendored map (no code has two; tests/test_countries.py checks it).

A code is recognised, from Babel's data alone (pycountry, 23 MB, does not fit the Lambda
package), when Babel names it in English and CLDR both gives it a numeric code and records the
languages of people living there. The first excludes the macro-regions (EZ, UN, QO) and the
exceptional reservations (AC, CP, CQ, DG, EA, IC, TA); the second the user-assigned codes
numbered 958-999 (EU, XA, XB, ZZ), but for XK (Kosovo: used by geolocation data, with a flag but
no ISO numeric code). That is ISO 3166-1's 249 codes and XK. Anything else ("", "ZZ", "EU",
"K1", None) is unknown: named UNKNOWN, no flag, no numeric id. Nothing here raises; lookups are
cached.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

UNKNOWN = "Unknown"
DEFAULT_LOCALE = "en"
# The vendored world-atlas countries (static/vendor/, beside app/ here and in the Lambda package).
WORLD_ATLAS_GLOB = "world-atlas-*-countries-110m.json"
VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor"
_REGIONAL_INDICATOR_A = 0x1F1E6


class Country(NamedTuple):
    code: str            # the normalised alpha-2 code ("KR"); "" when unknown
    name: str            # in the asked locale; UNKNOWN when unknown
    flag: str            # "🇰🇷"; "" when unknown
    numeric: str | None  # "410", the map feature's id; None when unknown or not on the map


def normalise_code(code: object) -> str:
    """The code in upper case if it is two ASCII letters a country could have, else ""."""
    if not isinstance(code, str):
        return ""
    code = code.strip().upper()
    if len(code) == 2 and code.isascii() and code.isalpha() and is_known(code):
        return code
    return ""


def country(code: object, locale: str = DEFAULT_LOCALE) -> Country:
    """All of a code's facts at once; never raises."""
    normalised = normalise_code(code)
    if not normalised:
        return Country("", UNKNOWN, "", None)
    return _country(normalised, _locale_name(locale) if isinstance(locale, str) else DEFAULT_LOCALE)


def country_name(code: object, locale: str = DEFAULT_LOCALE) -> str:
    """The country's name in `locale` ("KR", "ko" -> "대한민국"); UNKNOWN when unknown."""
    return country(code, locale).name


def flag(code: object) -> str:
    """The flag emoji of a recognised code ("KR" -> "🇰🇷"); "" otherwise."""
    normalised = normalise_code(code)
    return _flag(normalised) if normalised else ""


def numeric_id(code: object) -> str | None:
    """The ISO 3166-1 numeric code, zero-padded to three digits ("KR" -> "410", "AU" -> "036"),
    that is the country's feature id on the vendored map; None when unknown or not on the map
    (XK, which has no numeric code; SG, too small for it)."""
    normalised = normalise_code(code)
    return _numeric_by_alpha2().get(normalised) if normalised else None


def alpha2_from_numeric(numeric: object) -> str | None:
    """The alpha-2 code of a map feature's id, an ISO 3166-1 numeric code ("410" or 410 -> "KR",
    "36" -> "AU"); None for any other number."""
    if isinstance(numeric, bool) or not isinstance(numeric, (str, int)):
        return None
    text = str(numeric).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        return None
    return _alpha2_by_numeric().get(text.zfill(3))


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    from babel import Locale  # loaded on first use: the Lambda handlers import lazily
    from babel.core import get_global
    numbered = {alpha2 for numeric, codes in get_global("territory_aliases").items() if numeric.isdigit()
                for alpha2 in codes}
    inhabited = {code for code, languages in get_global("territory_languages").items() if languages}
    return frozenset(code for code in Locale.parse(DEFAULT_LOCALE).territories
                     if len(code) == 2 and code.isalpha() and code in numbered and code in inhabited)


@lru_cache(maxsize=1)
def atlas_file() -> Path | None:
    """The vendored world-atlas countries, which the dashboard's map draws; None if missing."""
    return next(VENDOR.glob(WORLD_ATLAS_GLOB), None)


@lru_cache(maxsize=1)
def _map_feature_ids() -> frozenset[str]:
    """The numeric feature ids of the vendored world-atlas countries ("410"); empty (and no
    numeric ids) if the file is missing or unreadable."""
    try:
        features = json.loads(atlas_file().read_text(encoding="utf-8"))["objects"]["countries"]["geometries"]
        return frozenset(str(f["id"]) for f in features if str(f.get("id", "")).isdigit())
    except (AttributeError, OSError, ValueError, KeyError, TypeError):  # AttributeError: no file
        return frozenset()


@lru_cache(maxsize=1)
def _numeric_by_alpha2() -> dict[str, str]:
    """Each known code's numeric alias that is a map feature's id (CLDR's aliases also hold
    withdrawn codes: DE's 278 and 280 are not on the map, 276 is)."""
    from babel.core import get_global
    on_map, known = _map_feature_ids(), _known()
    return {alpha2: numeric for numeric, codes in get_global("territory_aliases").items() if numeric in on_map
            for alpha2 in codes if alpha2 in known}


@lru_cache(maxsize=1)
def _alpha2_by_numeric() -> dict[str, str]:
    return {numeric: alpha2 for alpha2, numeric in _numeric_by_alpha2().items()}


def is_known(code: str) -> bool:
    """Whether an upper-case alpha-2 code is a country (ISO 3166-1 or user-assigned XK)."""
    return code in _known()


def _flag(code: str) -> str:
    return "".join(chr(_REGIONAL_INDICATOR_A + ord(letter) - ord("A")) for letter in code)


@lru_cache(maxsize=64)
def _locale_name(locale: str) -> str:
    """The Babel locale identifier for `locale` ("ko-KR" -> "ko_KR"), else for its language alone
    ("ko": the Lambda package keeps only root, en and ko of Babel's locale data); DEFAULT_LOCALE
    when Babel knows neither."""
    from babel import Locale, UnknownLocaleError
    identifier = locale.strip().replace("-", "_")
    for candidate in (identifier, identifier.split("_")[0]):
        if not candidate:
            continue
        try:
            return str(Locale.parse(candidate))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return DEFAULT_LOCALE


@lru_cache(maxsize=8)
def map_names(locale: str) -> dict[str, str]:
    """Each map country's name in `locale`, by its shape's id ("410": "대한민국")."""
    locale = _locale_name(locale)
    return {numeric: _country(code, locale).name for code, numeric in sorted(_numeric_by_alpha2().items())}


@lru_cache(maxsize=64)
def _territories(locale: str) -> dict[str, str]:
    from babel import Locale
    return dict(Locale.parse(locale).territories)


@lru_cache(maxsize=4096)
def _country(code: str, locale: str) -> Country:
    name = _territories(locale).get(code) or _territories(DEFAULT_LOCALE).get(code) or code
    return Country(code, name, _flag(code), _numeric_by_alpha2().get(code))
