"""Execute: tabular data in and out, for the ``csv_json`` tool: CSV text to records with
per-column type inference (int, float, bool; ISO dates stay strings), JSON to records, and
records back to CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from noosphere.agents.tools.base import ToolError

Record = dict[str, Any]

_INT = re.compile(r"^[-+]?(?:0|[1-9]\d{0,17})$")
_FLOAT = re.compile(r"^[-+]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")  # no 01234
_BOOL = {"true": True, "false": False}
_DELIMITERS = ",;\t|"


def _column_type(values: Sequence[str]) -> type | None:
    """The narrowest type every non-empty value fits (int, float, bool) or None for text."""
    present = [v.strip() for v in values if v.strip()]
    if not present:
        return None
    if all(_INT.match(v) for v in present):
        return int
    if all(_FLOAT.match(v) for v in present):
        return float
    if all(v.lower() in _BOOL for v in present):
        return bool
    return None


def _convert(value: str, kind: type | None) -> Any:
    text = value.strip()
    if kind is None:
        return value
    if not text:
        return None
    if kind is bool:
        return _BOOL[text.lower()]
    return kind(text)


def read_csv(text: str) -> tuple[list[str], list[Record]]:
    """(header, records) of CSV text with a header row; the delimiter is sniffed."""
    lines = text.strip("\n")
    if not lines.strip():
        raise ToolError("the CSV is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(lines.split("\n", 1)[0], delimiters=_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(lines), dialect))
    header = [h.strip() for h in rows[0]]
    if any(not h for h in header) or len(set(header)) != len(header):
        raise ToolError("the CSV header needs unique, non-empty column names")
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    for number, row in enumerate(body, start=2):
        if len(row) > len(header):
            raise ToolError(f"CSV row {number} has {len(row)} fields, the header {len(header)}")
    padded = [row + [""] * (len(header) - len(row)) for row in body]
    kinds = [_column_type([row[i] for row in padded]) for i in range(len(header))]
    records = [
        {name: _convert(row[i], kinds[i]) for i, name in enumerate(header)} for row in padded
    ]
    return header, records


def read_json(value: Any) -> list[Record]:
    """Records from a JSON value: a list of objects, one object, or an object holding one list
    of objects (e.g. {"items": [...]})."""
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 and len(value) == 1 else [value]
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ToolError("JSON input must be a list of objects (records)")
    return [dict(r) for r in value]


def parse_json_text(text: str) -> list[Record]:
    try:
        return read_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ToolError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc


def columns(records: Sequence[Record]) -> list[str]:
    """All keys in first-seen order."""
    return list(dict.fromkeys(key for record in records for key in record))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # a float column's 100.0 is written back as 100
    return str(value)


def write_csv(records: Sequence[Record], header: Sequence[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(header) if header is not None else columns(records)
    writer.writerow(names)
    for record in records:
        writer.writerow([_cell(record.get(name)) for name in names])
    return out.getvalue()


def write_json(records: Sequence[Record]) -> str:
    return json.dumps(list(records), indent=2, ensure_ascii=False)
