"""Execute: the ``unit_convert`` tool. Physical unit conversion with pint ("convert 5 miles to
km", "72 F in celsius", "3 GB to MiB"): one lazily created registry per process, used under a
lock; magnitudes are exact Fractions where pint's factors allow."""

from __future__ import annotations

import re
import threading
from fractions import Fraction
from typing import TYPE_CHECKING, SupportsFloat

from pydantic import BaseModel, Field

from noosphere.agents.tools.base import (
    MissingArguments,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
)

if TYPE_CHECKING:
    import pint

MAX_UNIT_CHARS = 100
SIGNIFICANT_DIGITS = 10

# Temperature words pint reads otherwise (F is farad, C is coulomb in SI).
TEMPERATURE_ALIASES = {
    "f": "degF",
    "°f": "degF",
    "fahrenheit": "degF",
    "degrees f": "degF",
    "degrees fahrenheit": "degF",
    "c": "degC",
    "°c": "degC",
    "celsius": "degC",
    "centigrade": "degC",
    "degrees c": "degC",
    "degrees celsius": "degC",
    "k": "kelvin",
    "kelvins": "kelvin",
}

_VALUE = r"[-+]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?(?:/\d+)?"
_FORWARD = re.compile(
    rf"(?P<value>{_VALUE})\s*(?P<from>[^\d\s].*?)\s+(?:to|in|into|as)\s+(?P<to>.+?)[\s?.!]*$",
    re.IGNORECASE,
)
_HOW_MANY = re.compile(
    rf"how\s+many\s+(?P<to>.+?)\s+(?:is|are|in|make|makes)\s+(?P<value>{_VALUE})\s*"
    rf"(?P<from>[^\d\s].*?)[\s?.!]*$",
    re.IGNORECASE,
)
_LEAD = re.compile(r"^.*?\b(?:convert|conversion of|change|express|what\s+is|what's)\s+", re.I)

_registry: pint.UnitRegistry | None = None
_lock = threading.Lock()


def registry() -> pint.UnitRegistry:
    """The process-wide pint registry (created on first use: loading it takes ~0.3 s)."""
    global _registry
    with _lock:
        if _registry is None:
            import pint

            _registry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
        return _registry


class UnitConvertArgs(BaseModel):
    value: float | str = Field(
        description="the quantity, exact as text ('2,340', '1/3', '0.1') or a number"
    )
    from_unit: str = Field(min_length=1, max_length=MAX_UNIT_CHARS, description="e.g. 'miles'")
    to_unit: str = Field(min_length=1, max_length=MAX_UNIT_CHARS, description="e.g. 'km'")


def exact_value(value: float | str) -> Fraction:
    """The quantity as an exact Fraction ("2,340" -> 2340, "1/3", "0.1" -> 1/10)."""
    try:
        return Fraction(str(value).replace(",", "").strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise ToolError(f"{value!r} is not a number") from exc


def unit_expression(unit: str) -> str:
    """The unit in pint's syntax: temperature words mapped, "per" and spaces handled."""
    cleaned = " ".join(unit.strip().strip(".?!").split())
    alias = TEMPERATURE_ALIASES.get(cleaned.lower())
    if alias:
        return alias
    cleaned = re.sub(r"\s+per\s+", " / ", cleaned, flags=re.IGNORECASE)
    return cleaned.replace(" ", "_") if "/" not in cleaned else cleaned


def _number(magnitude: SupportsFloat) -> str:
    return f"{float(magnitude):.{SIGNIFICANT_DIGITS}g}"


def convert(value: Fraction, from_unit: str, to_unit: str) -> tuple[SupportsFloat, str, str]:
    """(magnitude, canonical from unit, canonical to unit); ToolError for unknown units or
    incompatible dimensions."""
    import pint

    ureg = registry()
    with _lock:
        try:
            source = ureg.Quantity(value, unit_expression(from_unit))
            target = ureg.Unit(unit_expression(to_unit))
            result = source.to(target)
        except pint.UndefinedUnitError as exc:
            names = ", ".join(repr(n) for n in exc.unit_names) if exc.unit_names else "?"
            raise ToolError(f"unknown unit {names}") from exc
        except pint.DimensionalityError as exc:
            raise ToolError(
                f"cannot convert {from_unit} ({exc.dim1}) to {to_unit} ({exc.dim2})"
            ) from exc
        except (pint.PintError, ValueError, TypeError, AttributeError, SyntaxError) as exc:
            raise ToolError(f"cannot read units {from_unit!r} -> {to_unit!r}: {exc}") from exc
        return result.magnitude, str(source.units), str(result.units)


class UnitConvertTool(Tool[UnitConvertArgs]):
    name = "unit_convert"
    description = (
        "Convert a quantity between units of length, mass, time, temperature, data size, speed "
        "and any other physical unit pint knows."
    )
    examples = [
        "convert 5 miles to km",
        "72 F in celsius",
        "3 GB to MiB",
        "60 mph in m/s",
        "how many ounces in 2 kg?",
        "convert 100 kilometers per hour to miles per hour",
    ]
    args_model = UnitConvertArgs

    def extract(self, request: ToolInput) -> UnitConvertArgs:
        text = request.text.strip()
        match = _HOW_MANY.search(text) or _FORWARD.search(_LEAD.sub("", text, count=1))
        if match is None or not re.search(r"\d", match.group("value")):
            raise MissingArguments(
                "What should I convert? Say it like 'convert 5 miles to km'.",
                ["value", "from_unit", "to_unit"],
            )
        return UnitConvertArgs(
            value=match.group("value"),
            from_unit=match.group("from").strip(),
            to_unit=match.group("to").strip(),
        )

    def run(self, args: UnitConvertArgs, ctx: ToolContext) -> ToolResult:
        value = exact_value(args.value)
        magnitude, from_canonical, to_canonical = convert(value, args.from_unit, args.to_unit)
        shown_value = args.value.strip() if isinstance(args.value, str) else _number(value)
        result = _number(magnitude)
        return ToolResult(
            text=f"{shown_value} {args.from_unit} = {result} {args.to_unit}",
            data={
                "value": shown_value,
                "from_unit": from_canonical,
                "to_unit": to_canonical,
                "result": float(magnitude),
                "result_text": result,
            },
            media_type="application/json",
        )
