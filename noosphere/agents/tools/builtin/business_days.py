"""Execute: the ``business_days`` tool. Counts business days between two dates (both included)
or adds N business days to a date, skipping weekends (numpy's business-day calendar); public
holidays are not considered, and every answer says so."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from noosphere.agents.tools.base import MissingArguments, Tool, ToolContext, ToolInput, ToolResult
from noosphere.agents.tools.builtin.dates import find_dates, find_month

MAX_DAYS = 100_000
CAVEAT = "weekends skipped; public holidays not considered"

_OFFSET = re.compile(
    r"(?P<n>\d{1,6})\s+(?:business|working|work|week)[\s-]*days?\s+(?P<dir>after|from|since|"
    r"before|prior to|until)\b",
    re.IGNORECASE,
)
_TODAY = re.compile(r"\btoday\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:in|during|for)\s+(?:the\s+year\s+)?(?P<year>\d{4})\b", re.IGNORECASE)


class BusinessDaysArgs(BaseModel):
    start: date = Field(description="first date (ISO)")
    end: date | None = Field(None, description="last date, included: count business days")
    add: int | None = Field(
        None, ge=-MAX_DAYS, le=MAX_DAYS, description="business days to add (negative: before)"
    )

    @model_validator(mode="after")
    def _one_question(self) -> BusinessDaysArgs:
        if (self.end is None) == (self.add is None):
            raise ValueError("give either end (to count) or add (to offset), not both")
        if self.end is not None and abs((self.end - self.start).days) > MAX_DAYS * 2:
            raise ValueError("the date range is too long")
        return self


def count_business_days(start: date, end: date) -> int:
    """Business days from ``start`` to ``end``, both included (negative if end < start)."""
    if end < start:
        return -count_business_days(end, start)
    return int(np.busday_count(start, end + timedelta(days=1)))


def add_business_days(start: date, days: int) -> date:
    """The date ``days`` business days after ``start`` (before, if negative); a weekend start
    counts from the adjacent business day."""
    roll: Literal["backward", "forward"] = "backward" if days >= 0 else "forward"
    offset = np.busday_offset(np.datetime64(start, "D"), days, roll=roll)
    return date.fromisoformat(str(offset))


def _day(value: date) -> str:
    return f"{value:%a %Y-%m-%d}"


def _days(count: int) -> str:
    return f"{abs(count)} business day{'' if abs(count) == 1 else 's'}"


class BusinessDaysTool(Tool[BusinessDaysArgs]):
    name = "business_days"
    description = (
        "Count business (working) days between two dates or in a month, or add a number of "
        "business days to a date; weekends are skipped, holidays are not considered."
    )
    examples = [
        "10 business days after 2026-12-18",
        "how many working days in March 2027",
        "business days between 2026-01-05 and 2026-02-27",
        "what date is 5 working days before 2027-01-04?",
    ]
    args_model = BusinessDaysArgs

    def extract(self, request: ToolInput) -> BusinessDaysArgs:
        text = request.text
        dates = find_dates(text)
        offset = _OFFSET.search(text)
        if offset:
            after = [d.value for d in dates if d.start >= offset.end()]
            if after or _TODAY.search(text, offset.end()):
                sign = -1 if offset.group("dir").lower() in ("before", "prior to", "until") else 1
                start = after[0] if after else date.today()
                return BusinessDaysArgs(start=start, add=sign * int(offset.group("n")))
        if len(dates) >= 2:
            return BusinessDaysArgs(start=dates[0].value, end=dates[1].value)
        month = find_month(text)
        if month:
            return BusinessDaysArgs(start=month[0], end=month[1])
        year = _YEAR.search(text)
        if year:
            y = int(year.group("year"))
            return BusinessDaysArgs(start=date(y, 1, 1), end=date(y, 12, 31))
        raise MissingArguments(
            "Which dates? For example '10 business days after 2026-12-18' or "
            "'business days between 2026-01-05 and 2026-01-30'.",
            ["start", "end", "add"],
        )

    def run(self, args: BusinessDaysArgs, ctx: ToolContext) -> ToolResult:
        if args.add is not None:
            result = add_business_days(args.start, args.add)
            direction = "after" if args.add >= 0 else "before"
            text = f"{_days(args.add)} {direction} {_day(args.start)} is {_day(result)}"
            data = {"start": args.start.isoformat(), "add": args.add, "date": result.isoformat()}
        else:
            assert args.end is not None
            count = count_business_days(args.start, args.end)
            text = f"{_days(count)} from {_day(args.start)} to {_day(args.end)}, both included"
            data = {"start": args.start.isoformat(), "end": args.end.isoformat(), "count": count}
        return ToolResult(
            text=f"{text} ({CAVEAT}).",
            data=data | {"caveat": CAVEAT},
            media_type="application/json",
        )
