"""app/dashboard/countries.py: names, flags and the map's numeric ids, all from Babel's data,
checked against real codes and the vendored world-atlas file the map draws."""
import json
from pathlib import Path

import pytest

from app.dashboard import countries
from app.dashboard.countries import (UNKNOWN, Country, alpha2_from_numeric, country, country_name, flag,
                                     is_known, numeric_id)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("code, name, emoji, numeric", [
    ("KR", "South Korea", "\U0001F1F0\U0001F1F7", "410"),
    ("US", "United States", "\U0001F1FA\U0001F1F8", "840"),
    ("AU", "Australia", "\U0001F1E6\U0001F1FA", "036"),
    ("GB", "United Kingdom", "\U0001F1EC\U0001F1E7", "826"),
])
def test_a_known_code_has_a_name_a_flag_and_a_numeric_id(code, name, emoji, numeric):
    assert country(code) == Country(code, name, emoji, numeric)
    assert (country_name(code), flag(code), numeric_id(code)) == (name, emoji, numeric)
    assert alpha2_from_numeric(numeric) == code


def test_names_in_korean():
    assert country_name("KR", "ko") == "대한민국"
    assert country_name("US", "ko") == "미국"
    assert country_name("KR", "ko-KR") == country_name("KR", "ko_KR") == "대한민국"


@pytest.mark.parametrize("code", ["", "ZZ", "zz", "EU", "AA", "K1", "KOR", "ÄB", "  ", None, 410, ["KR"]])
def test_an_unknown_or_invalid_code_is_unknown_and_never_raises(code):
    assert country(code) == Country("", UNKNOWN, "", None)
    assert country(code, "ko").name == UNKNOWN
    assert (country_name(code), flag(code), numeric_id(code)) == (UNKNOWN, "", None)


def test_codes_are_read_in_any_case_and_with_spaces():
    assert country(" kr ") == country("KR")


def test_an_unknown_locale_falls_back_to_english():
    for locale in ("xx", "!!", "", None, ["ko"]):
        assert country_name("KR", locale) == "South Korea"


def test_kosovo_has_a_name_and_flag_but_no_numeric_code():
    assert country("XK") == Country("XK", "Kosovo", "\U0001F1FD\U0001F1F0", None)


# Two-letter territories Babel names in English that are no country: CLDR's macro-regions,
# ISO 3166-1's exceptional reservations and the user-assigned codes (but XK).
NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "AC", "CP", "CQ", "DG", "EA", "IC", "TA", "XA", "XB", "ZZ"}


def test_the_known_codes_are_iso_3166_1s_249_and_kosovo():
    from babel import Locale
    named = {code for code in Locale.parse("en").territories if len(code) == 2 and code.isalpha()}
    known = {code for code in named if is_known(code)}
    assert named - known == NOT_COUNTRIES
    assert len(known) == 249 + 1 and "XK" in known
    for code in known:
        found = country(code)
        assert found.name not in (UNKNOWN, code), code
        assert found.flag == "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code)
        assert found.numeric is None or (len(found.numeric) == 3 and found.numeric.isdigit())


def test_the_numeric_id_is_the_current_code_the_map_uses_not_a_withdrawn_one():
    # CLDR's aliases: DE 276, 278 (GDR), 280 (FRG); YE 887, 720, 886; SD 729, 736.
    assert (numeric_id("DE"), numeric_id("YE"), numeric_id("SD"), numeric_id("SS")) == ("276", "887", "729", "728")
    assert alpha2_from_numeric("278") is alpha2_from_numeric("720") is alpha2_from_numeric("736") is None


def test_a_country_too_small_for_the_map_has_no_numeric_id():
    assert country("SG") == Country("SG", "Singapore", "\U0001F1F8\U0001F1EC", None)
    assert numeric_id("MC") is None and alpha2_from_numeric("702") is None


def test_alpha2_from_numeric_pads_and_refuses_what_is_not_a_code():
    assert alpha2_from_numeric("36") == alpha2_from_numeric(36) == "AU"
    for value in ("999", "", "abc", "-36", "0410", True, None, 4.1):
        assert alpha2_from_numeric(value) is None


def test_lookups_are_cached():
    countries._country.cache_clear()
    country("KR", "ko")
    country("kr", "ko")
    assert countries._country.cache_info().hits == 1
    assert countries._map_feature_ids.cache_info().currsize == 1  # the atlas is read once


def test_every_numeric_feature_of_the_vendored_world_atlas_maps_back_to_a_code():
    atlases = sorted((ROOT / "static" / "vendor").glob("world-atlas-*-countries-110m.json"))
    assert len(atlases) == 1, atlases
    features = json.loads(atlases[0].read_text())["objects"]["countries"]["geometries"]
    numeric = [f for f in features if str(f.get("id", "")).isdigit()]
    unmapped = sorted(f["properties"]["name"] for f in numeric if alpha2_from_numeric(f["id"]) is None)
    assert unmapped == []
    assert all(numeric_id(alpha2_from_numeric(f["id"])) == f["id"] for f in numeric)
    # No code has two of its CLDR numeric aliases on the map (which would leave the choice open).
    from babel.core import get_global
    on_map = {f["id"] for f in numeric}
    aliases_on_map = {}
    for number, codes in get_global("territory_aliases").items():
        for code in codes:
            if number in on_map and is_known(code):
                aliases_on_map.setdefault(code, set()).add(number)
    assert {code: ids for code, ids in aliases_on_map.items() if len(ids) > 1} == {}
    assert len(aliases_on_map) == len(numeric)
    # Shapes without an ISO 3166-1 numeric code: no alpha-2 code can point at them.
    without = sorted(f["properties"]["name"] for f in features if f not in numeric)
    assert without == ["Kosovo", "N. Cyprus", "Somaliland"]
    assert len(numeric) == len(features) - 3
