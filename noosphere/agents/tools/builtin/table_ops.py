"""Execute: operations on records for the ``csv_json`` tool: resolve column names as people
write them, filter rows (``field op value``), group and aggregate (sum, mean, count, min, max)
and select columns."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, Field

from noosphere.agents.tools.base import ToolError
from noosphere.agents.tools.builtin.tables import Record

Operator = Literal["=", "!=", ">", ">=", "<", "<="]
Function = Literal["sum", "mean", "count", "min", "max"]


class RowFilter(BaseModel):
    field: str = Field(min_length=1)
    op: Operator | Literal["contains"] = "="
    value: str | int | float | bool | None


class Aggregate(BaseModel):
    func: Function
    field: str | None = Field(None, description="column to aggregate (not needed for count)")

    @property
    def output_name(self) -> str:
        return self.func if self.field is None else f"{self.func}_{self.field}"


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def find_column(name: str, available: Sequence[str]) -> str | None:
    """The column ``name`` refers to: exact, then case/space/underscore-insensitive, then the
    singular or plural form ("regions" for "region")."""
    if name in available:
        return name
    by_key = {_key(c): c for c in available}
    key = _key(name)
    for candidate in (key, key.removesuffix("s"), key + "s", key.removesuffix("es")):
        if candidate in by_key:
            return by_key[candidate]
    return None


def column(name: str, available: Sequence[str]) -> str:
    """``find_column`` or ToolError listing the columns."""
    found = find_column(name, available)
    if found is None:
        raise ToolError(f"no column {name!r}; the columns are: {', '.join(available)}")
    return found


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    if isinstance(left, bool) or isinstance(right, bool):
        return (left, right) if isinstance(left, bool) and isinstance(right, bool) else None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left, right
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold(), right.casefold()
    return None


def coerce(value: Any) -> Any:
    """A filter value typed like the data: numbers and booleans from their text."""
    if not isinstance(value, str):
        return value
    text = value.strip().strip("'\"")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and re.fullmatch(r"[-+]?\d+", text) else number


def matches(record: Record, condition: RowFilter) -> bool:
    actual, wanted = record.get(condition.field), coerce(condition.value)
    if condition.op == "contains":
        return wanted is not None and str(wanted).casefold() in str(actual or "").casefold()
    if actual is None or wanted is None:
        return (actual is None) == (wanted is None) if condition.op in ("=", "!=") else False
    pair = _comparable(actual, wanted)
    if pair is None:
        return condition.op == "!="
    left, right = pair
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[condition.op]


def _numbers(values: list[Any], field: str) -> list[int | float]:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError(f"column {field!r} has a non-numeric value {value!r}")
    return values


def aggregate(records: Sequence[Record], spec: Aggregate) -> Any:
    """One aggregate over the records of a group (None values are skipped)."""
    if spec.func == "count":
        if spec.field is None:
            return len(records)
        return sum(1 for r in records if r.get(spec.field) is not None)
    assert spec.field is not None
    values = [v for r in records if (v := r.get(spec.field)) is not None]
    if spec.func in ("min", "max"):
        if not values:
            return None
        try:
            return min(values) if spec.func == "min" else max(values)
        except TypeError as exc:
            raise ToolError(f"column {spec.field!r} mixes values that cannot be compared") from exc
    numbers = _numbers(values, spec.field)
    if all(isinstance(v, int) for v in numbers):
        total: int | float = sum(numbers)
    else:
        total = math.fsum(numbers)
    if spec.func == "sum":
        return total
    if not numbers:
        return None
    mean = Fraction(total) / len(numbers) if isinstance(total, int) else total / len(numbers)
    return int(mean) if mean == int(mean) else round(float(mean), 10)


def group(
    records: Sequence[Record], keys: Sequence[str], aggregates: Sequence[Aggregate]
) -> list[Record]:
    """One record per distinct key combination (first-seen order) with the aggregates."""
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for record in records:
        groups.setdefault(tuple(record.get(k) for k in keys), []).append(record)
    specs = list(aggregates) or [Aggregate(func="count")]
    return [
        dict(zip(keys, values, strict=True))
        | {spec.output_name: aggregate(members, spec) for spec in specs}
        for values, members in groups.items()
    ]


def select(records: Sequence[Record], names: Sequence[str]) -> list[Record]:
    return [{name: record.get(name) for name in names} for record in records]
