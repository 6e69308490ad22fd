"""The unit conversion, time zone and business-day tools on realistic requests, with exact
answers, and their one-line refusals."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from noosphere.agents.tools import MissingArguments, ToolContext, ToolError, ToolInput
from noosphere.agents.tools.builtin import BusinessDaysTool, TimezoneTool, UnitConvertTool
from noosphere.agents.tools.builtin.zones import find_zones, resolve_zone

CTX = ToolContext(embedder=None)  # type: ignore[arg-type]
UNITS, ZONES, DAYS = UnitConvertTool(), TimezoneTool(), BusinessDaysTool()


def answer(tool: UnitConvertTool | TimezoneTool | BusinessDaysTool, text: str) -> str:
    return tool.run(tool.parse(ToolInput(text=text)), CTX).text


# -- unit_convert ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("convert 5 miles to km", "5 miles = 8.04672 km"),
        ("72 F in celsius", "72 F = 22.22222222 celsius"),
        ("-40 C to F", "-40 C = -40 F"),
        ("3 GB to MiB", "3 GB = 2861.022949 MiB"),
        ("60 mph in m/s", "60 mph = 26.8224 m/s"),
        ("how many ounces in 2 kg?", "2 kg = 70.5479239 ounces"),
        ("convert 2,500 feet to meters", "2,500 feet = 762 meters"),
        ("what is 1/4 cup in ml?", "1/4 cup = 59.14705912 ml"),
        ("convert 100 kilometers per hour to miles per hour",
         "100 kilometers per hour = 62.13711922 miles per hour"),
    ],
)  # fmt: skip
def test_unit_conversions(request_text: str, expected: str) -> None:
    assert answer(UNITS, request_text) == expected


def test_unit_conversion_data() -> None:
    result = UNITS.run(UNITS.parse(ToolInput(text="convert 5 miles to km")), CTX)
    assert result.data == {
        "value": "5",
        "from_unit": "mile",
        "to_unit": "kilometer",
        "result": 8.04672,
        "result_text": "8.04672",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"value": 5, "from_unit": "miles", "to_unit": "kg"},
         "cannot convert miles ([length]) to kg ([mass])"),
        ({"value": 5, "from_unit": "furlongz", "to_unit": "m"}, "unknown unit 'furlongz'"),
        ({"value": "five", "from_unit": "m", "to_unit": "km"}, "'five' is not a number"),
        ({"value": 1, "from_unit": "m", "to_unit": "km" * 60}, "to_unit"),
    ],
)  # fmt: skip
def test_unit_errors(args: dict[str, object], message: str) -> None:
    with pytest.raises(ToolError) as info:
        UNITS.run(UNITS.validate(args), CTX)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unit_request_without_quantity_asks() -> None:
    with pytest.raises(MissingArguments) as info:
        UNITS.parse(ToolInput(text="convert miles please"))
    assert info.value.fields == ["value", "from_unit", "to_unit"]


# -- timezone --------------------------------------------------------------------------------


def test_example_paris_to_utc_on_the_dst_change_day() -> None:
    assert answer(ZONES, "convert 2026-03-29 01:30 Europe/Paris to UTC") == (
        "Sun 2026-03-29 01:30 CET (Europe/Paris, UTC+01:00) is "
        "Sun 2026-03-29 00:30 UTC (UTC, UTC+00:00)."
    )


def test_example_new_york_to_tokyo_uses_today() -> None:
    args = ZONES.parse(ToolInput(text="9am in New York is what time in Tokyo?"))
    assert args.model_dump() == {
        "when": "09:00",
        "from_zone": "America/New_York",
        "to_zone": "Asia/Tokyo",
    }
    result = ZONES.run(args, CTX)
    today = datetime.now(ZoneInfo("America/New_York")).date()
    local = datetime(today.year, today.month, today.day, 9, tzinfo=ZoneInfo("America/New_York"))
    assert result.data["to"] == local.astimezone(ZoneInfo("Asia/Tokyo")).isoformat()


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("on 2026-07-01 at 9am in New York, what time is it in Tokyo?",
         "Wed 2026-07-01 09:00 EDT (America/New_York, UTC-04:00) is "
         "Wed 2026-07-01 22:00 JST (Asia/Tokyo, UTC+09:00)."),
        ("what time in Sydney is 2026-01-15 14:00 in London?",
         "Thu 2026-01-15 14:00 GMT (Europe/London, UTC+00:00) is "
         "Fri 2026-01-16 01:00 AEDT (Australia/Sydney, UTC+11:00) (next day)."),
        ("when it is 6pm on December 1, 2026 in Berlin, what time is it in San Francisco?",
         "Tue 2026-12-01 18:00 CET (Europe/Berlin, UTC+01:00) is "
         "Tue 2026-12-01 09:00 PST (America/Los_Angeles, UTC-08:00)."),
        ("convert 2026-03-29 02:30 Europe/Paris to UTC",
         "Sun 2026-03-29 02:30 CET (Europe/Paris, UTC+01:00) is "
         "Sun 2026-03-29 01:30 UTC (UTC, UTC+00:00). Note: 2026-03-29 02:30 does not exist in "
         "Europe/Paris (clocks jump forward); it is read with the offset before the change."),
        ("2026-10-25 02:30 in Paris to New York",
         "Sun 2026-10-25 02:30 CEST (Europe/Paris, UTC+02:00) is "
         "Sat 2026-10-24 20:30 EDT (America/New_York, UTC-04:00) (previous day). Note: "
         "2026-10-25 02:30 happens twice in Europe/Paris (clocks go back); the first occurrence "
         "is used."),
    ],
)  # fmt: skip
def test_timezone_conversions(request_text: str, expected: str) -> None:
    assert answer(ZONES, request_text) == expected


def test_zone_names() -> None:
    assert str(resolve_zone("new york")) == "America/New_York"
    assert str(resolve_zone("europe/paris")) == "Europe/Paris"
    assert str(resolve_zone("Mumbai")) == "Asia/Kolkata"
    with pytest.raises(ToolError, match="unknown time zone 'Atlantis'"):
        resolve_zone("Atlantis")
    assert [z.zone for z in find_zones("wake up in Jersey at 7 and call Tokyo")] == ["Asia/Tokyo"]


def test_timezone_asks_for_what_is_missing() -> None:
    with pytest.raises(MissingArguments) as info:
        ZONES.parse(ToolInput(text="what time is it at 9am?"))
    assert info.value.fields == ["from_zone", "to_zone"]
    with pytest.raises(MissingArguments) as info:
        ZONES.parse(ToolInput(text="9am in Paris"))
    assert info.value.fields == ["to_zone"]
    with pytest.raises(ToolError, match="'25:00' is not a valid time"):
        ZONES.parse(ToolInput(text="25:00 in Paris to Tokyo"))
    with pytest.raises(ToolError, match="'soon' is not an ISO date-time or time"):
        ZONES.run(ZONES.validate({"when": "soon", "from_zone": "UTC", "to_zone": "UTC"}), CTX)


# -- business_days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("10 business days after 2026-12-18",
         "10 business days after Fri 2026-12-18 is Fri 2027-01-01"),
        ("how many working days in March 2027",
         "23 business days from Mon 2027-03-01 to Wed 2027-03-31, both included"),
        ("business days between 2026-01-05 and 2026-02-27",
         "40 business days from Mon 2026-01-05 to Fri 2026-02-27, both included"),
        ("what date is 5 working days before 2027-01-04?",
         "5 business days before Mon 2027-01-04 is Mon 2026-12-28"),
        ("1 business day after Saturday December 19, 2026",
         "1 business day after Sat 2026-12-19 is Mon 2026-12-21"),
        ("working days in 2027", "261 business days from Fri 2027-01-01 to Fri 2027-12-31, "
         "both included"),
    ],
)  # fmt: skip
def test_business_days(request_text: str, expected: str) -> None:
    assert (
        answer(DAYS, request_text)
        == expected + " (weekends skipped; public holidays not considered)."
    )


def test_business_days_arguments() -> None:
    result = DAYS.run(DAYS.validate({"start": "2026-12-18", "add": 10}), CTX)
    assert result.data["date"] == "2027-01-01"
    with pytest.raises(ToolError, match=r"either end .* or add"):
        DAYS.validate({"start": "2026-12-18"})
    with pytest.raises(ToolError, match="is not a valid date"):
        DAYS.parse(ToolInput(text="business days between 2026-02-30 and 2026-03-05"))
    with pytest.raises(MissingArguments):
        DAYS.parse(ToolInput(text="how many business days?"))
    assert DAYS.parse(ToolInput(text="3 business days from today")).start == date.today()
