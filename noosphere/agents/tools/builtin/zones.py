"""Execute: naming time zones. Resolves IANA names (any case), UTC/GMT and city names, the
latter derived from the IANA database itself plus a few big cities that are not zone names,
and finds zone mentions in free text."""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass

from noosphere.agents.tools.base import ToolError

# Big cities the IANA database does not name (it names one city per zone).
EXTRA_CITIES = {
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "washington": "America/New_York",
    "boston": "America/New_York",
    "miami": "America/New_York",
    "atlanta": "America/New_York",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "austin": "America/Chicago",
    "beijing": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai",
    "mumbai": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "osaka": "Asia/Tokyo",
    "kyoto": "Asia/Tokyo",
    "munich": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "barcelona": "Europe/Madrid",
    "milan": "Europe/Rome",
    "geneva": "Europe/Zurich",
    "saint petersburg": "Europe/Moscow",
    "rio de janeiro": "America/Sao_Paulo",
    "são paulo": "America/Sao_Paulo",
    "utc": "UTC",
    "gmt": "UTC",
    "z": "UTC",
}
_CITY_AREAS = (
    "Africa/", "America/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/", "Pacific/"
)  # fmt: skip
# Zone cities that are also everyday English words: not read as places in free text.
_NOT_CITY_TEXT = (
    "center chatham easter jersey knox midway oral regina resolute stanley victoria virgin wake"
)
_NOT_CITIES = frozenset(_NOT_CITY_TEXT.split())
_IANA = re.compile(r"\b[A-Za-z][A-Za-z_-]*(?:/[A-Za-z0-9_+-]+)+")


@dataclass(frozen=True)
class ZoneMention:
    start: int
    end: int
    zone: str


@functools.cache
def _cities() -> dict[str, str]:
    """Lower-case city -> IANA key: the last part of each regional key, and EXTRA_CITIES."""
    cities: dict[str, str] = {}
    for key in sorted(zoneinfo.available_timezones()):
        if key.startswith(_CITY_AREAS):
            city = key.rsplit("/", 1)[-1].replace("_", " ").lower()
            if city not in _NOT_CITIES:
                cities.setdefault(city, key)
    return cities | EXTRA_CITIES


@functools.cache
def _names() -> dict[str, str]:
    """Lower-case name -> IANA key: cities and every zone key (legacy ones included)."""
    return _cities() | {key.lower(): key for key in zoneinfo.available_timezones()}


@functools.cache
def _city_pattern() -> re.Pattern[str]:
    cities = sorted((n for n in _cities() if len(n) > 1), key=len, reverse=True)
    alternatives = "|".join(re.escape(c) for c in cities)
    return re.compile(rf"(?<![\w/])(?:{alternatives})(?![\w/])", re.IGNORECASE)


def resolve_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone for an IANA key (any case) or a city name; ToolError if unknown."""
    key = _names().get(" ".join(name.replace("_", " ").split()).lower()) or _names().get(
        name.strip().lower()
    )
    if key is None:
        raise ToolError(f"unknown time zone {name!r} (use an IANA name like Europe/Paris)")
    return zoneinfo.ZoneInfo(key)


def find_zones(text: str) -> list[ZoneMention]:
    """Zone mentions in ``text`` in order: IANA names first, then city names elsewhere."""
    mentions: list[ZoneMention] = []
    for m in _IANA.finditer(text):
        key = _names().get(m.group().lower())
        if key:
            mentions.append(ZoneMention(m.start(), m.end(), key))
    taken = [(z.start, z.end) for z in mentions]
    for m in _city_pattern().finditer(text):
        if not any(s <= m.start() < e for s, e in taken):
            mentions.append(ZoneMention(m.start(), m.end(), _cities()[m.group().lower()]))
    return sorted(mentions, key=lambda z: z.start)
