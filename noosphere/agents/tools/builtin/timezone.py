"""Execute: the ``timezone`` tool. Converts a date and time between IANA time zones with
zoneinfo ("9am in New York is what time in Tokyo?"), saying when a local time falls in a
daylight-saving gap or overlap."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from noosphere.agents.tools.base import (
    MissingArguments,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
)
from noosphere.agents.tools.builtin.dates import find_dates, find_time
from noosphere.agents.tools.builtin.zones import find_zones, resolve_zone


class TimezoneArgs(BaseModel):
    when: str | None = Field(
        None,
        max_length=64,
        description="local date and time in from_zone, ISO ('2026-03-29T01:30') or a time "
        "('09:00', today's date); omitted means now",
    )
    from_zone: str = Field(min_length=1, max_length=64, description="IANA zone or city")
    to_zone: str = Field(min_length=1, max_length=64, description="IANA zone or city")


def local_datetime(when: str | None, zone: ZoneInfo) -> datetime:
    """``when`` read as a wall-clock time in ``zone`` (now when None)."""
    if when is None:
        return datetime.now(zone).replace(second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(when)
    except ValueError:
        try:
            clock = time.fromisoformat(when)
        except ValueError as exc:
            raise ToolError(f"{when!r} is not an ISO date-time or time") from exc
        parsed = datetime.combine(datetime.now(zone).date(), clock)
    if parsed.tzinfo is not None:
        return parsed.astimezone(zone)
    return parsed.replace(tzinfo=zone)


def dst_note(local: datetime) -> str | None:
    """Why the wall-clock time is special in its zone, if it is (DST gap or overlap)."""
    if local.replace(fold=0).utcoffset() == local.replace(fold=1).utcoffset():
        return None
    naive = local.replace(tzinfo=None)
    round_trip = local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None)
    if round_trip != naive:
        return (
            f"{naive:%Y-%m-%d %H:%M} does not exist in {local.tzinfo} (clocks jump forward); "
            "it is read with the offset before the change"
        )
    return (
        f"{naive:%Y-%m-%d %H:%M} happens twice in {local.tzinfo} (clocks go back); "
        "the first occurrence is used"
    )


def describe(moment: datetime) -> str:
    offset = moment.strftime("%z")
    return (
        f"{moment:%a %Y-%m-%d %H:%M} {moment.tzname()} "
        f"({moment.tzinfo}, UTC{offset[:3]}:{offset[3:]})"
    )


class TimezoneTool(Tool[TimezoneArgs]):
    name = "timezone"
    description = (
        "Convert a date and time from one time zone to another (IANA names or city names), "
        "accounting for daylight saving time."
    )
    examples = [
        "9am in New York is what time in Tokyo?",
        "convert 2026-03-29 01:30 Europe/Paris to UTC",
        "what time is 14:00 London in Sydney?",
        "when it is 6pm in Berlin, what time is it in San Francisco?",
        "what time is it now in Singapore?",
    ]
    args_model = TimezoneArgs

    def extract(self, request: ToolInput) -> TimezoneArgs:
        text = request.text
        dates = find_dates(text)
        clock = find_time(text, skip=dates)
        zones = find_zones(text)
        if not zones:
            raise MissingArguments(
                "Which time zones should I convert between (e.g. New York, Asia/Tokyo)?",
                ["from_zone", "to_zone"],
            )
        anchors = [*dates[:1], *([clock] if clock else [])]
        if len(zones) == 1:
            if anchors:
                raise MissingArguments("Which time zone should I convert to?", ["to_zone"])
            return TimezoneArgs(when=None, from_zone="UTC", to_zone=zones[0].zone)
        if anchors:  # the zone written closest to the time (after it, on a tie) is its zone
            first, last = min(a.start for a in anchors), max(a.end for a in anchors)
            source = min(
                zones,
                key=lambda z: (z.start - last, 0) if z.start >= last else (first - z.end, 1),
            )
        else:
            source = zones[0]
        target = next(z for z in zones if z is not source)
        when: str | None = None
        if dates or clock:
            day = dates[0].value.isoformat() if dates else None
            hhmm = clock.value.isoformat("minutes") if clock else "00:00"
            when = f"{day}T{hhmm}" if day else hhmm
        return TimezoneArgs(when=when, from_zone=source.zone, to_zone=target.zone)

    def run(self, args: TimezoneArgs, ctx: ToolContext) -> ToolResult:
        source_zone, target_zone = resolve_zone(args.from_zone), resolve_zone(args.to_zone)
        local = local_datetime(args.when, source_zone)
        converted = local.astimezone(target_zone)
        note = dst_note(local)
        days = (converted.date() - local.date()).days
        shift = {1: " (next day)", -1: " (previous day)"}.get(days, "")
        text = f"{describe(local)} is {describe(converted)}{shift}."
        if note:
            text += f" Note: {note}."
        return ToolResult(
            text=text,
            data={
                "from": local.isoformat(),
                "to": converted.isoformat(),
                "from_zone": str(source_zone),
                "to_zone": str(target_zone),
                "note": note,
            },
            media_type="application/json",
        )
