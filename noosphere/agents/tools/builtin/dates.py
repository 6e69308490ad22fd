"""Execute: reading dates and times in requests, shared by the time zone and business-day tools:
ISO dates, "March 2027", "December 18, 2026", clock times like "9am" or "13:45"."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time

from noosphere.agents.tools.base import ToolError

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name} | {
    name.lower(): i for i, name in enumerate(calendar.month_abbr) if name
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO = r"(?P<iso>\d{4}-\d{2}-\d{2})"
_MONTH_DAY_YEAR = (
    rf"(?P<mdy_m>{_MONTH})\.?\s+(?P<mdy_d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<mdy_y>\d{{4}})"
)
_DAY_MONTH_YEAR = (
    rf"(?P<dmy_d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<dmy_m>{_MONTH})\.?,?\s+(?P<dmy_y>\d{{4}})"
)
DATE = re.compile(rf"\b(?:{_ISO}|{_MONTH_DAY_YEAR}|{_DAY_MONTH_YEAR})\b", re.IGNORECASE)
MONTH_YEAR = re.compile(rf"\b(?P<month>{_MONTH})\.?\s+(?P<year>\d{{4}})\b", re.IGNORECASE)
_CLOCK = re.compile(
    r"(?<![\d:-])(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*"
    r"(?P<ampm>a\.?m\.?|p\.?m\.?)?(?![\d:])|\b(?P<word>noon|midday|midnight)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Found:
    """A value found in text, with where it was."""

    start: int
    end: int


@dataclass(frozen=True)
class FoundDate(Found):
    value: date


@dataclass(frozen=True)
class FoundTime(Found):
    value: time


def _make_date(year: str, month: str, day: str, raw: str) -> date:
    month_number = int(month) if month.isdigit() else _MONTHS[month.lower().rstrip(".")]
    try:
        return date(int(year), month_number, int(day))
    except ValueError as exc:
        raise ToolError(f"{raw!r} is not a valid date: {exc}") from exc


def find_dates(text: str) -> list[FoundDate]:
    """Every full date in ``text`` (ISO, "December 18, 2026", "18 Dec 2026"), in order."""
    found: list[FoundDate] = []
    for m in DATE.finditer(text):
        if m.group("iso"):
            y, mo, d = m.group("iso").split("-")
        elif m.group("mdy_m"):
            y, mo, d = m.group("mdy_y"), m.group("mdy_m"), m.group("mdy_d")
        else:
            y, mo, d = m.group("dmy_y"), m.group("dmy_m"), m.group("dmy_d")
        found.append(FoundDate(m.start(), m.end(), _make_date(y, mo, d, m.group())))
    return found


def find_month(text: str) -> tuple[date, date] | None:
    """First and last day of a month named with its year ("March 2027"), or None."""
    m = MONTH_YEAR.search(text)
    if m is None:
        return None
    year, month = int(m.group("year")), _MONTHS[m.group("month").lower()]
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def find_time(text: str, *, skip: Sequence[Found] = ()) -> FoundTime | None:
    """The first clock time in ``text`` outside the ``skip`` spans (dates): "9am", "9:30 pm",
    "13:45", "noon". A bare number counts only with am/pm."""
    for m in _CLOCK.finditer(text):
        if any(s.start <= m.start() < s.end for s in skip):
            continue
        if m.group("word"):
            value = time(0) if m.group("word").lower() == "midnight" else time(12)
            return FoundTime(m.start(), m.end(), value)
        ampm = (m.group("ampm") or "").lower().replace(".", "")
        if not ampm and m.group("m") is None:
            continue
        hour, minute, second = int(m.group("h")), int(m.group("m") or 0), int(m.group("s") or 0)
        if ampm:
            if not 1 <= hour <= 12:
                raise ToolError(f"{m.group().strip()!r} is not a valid time")
            hour = hour % 12 + (12 if ampm == "pm" else 0)
        try:
            return FoundTime(m.start(), m.end(), time(hour, minute, second))
        except ValueError as exc:
            raise ToolError(f"{m.group().strip()!r} is not a valid time") from exc
    return None
