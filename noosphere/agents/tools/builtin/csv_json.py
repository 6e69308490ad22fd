"""Execute: the ``csv_json`` tool. Converts CSV to JSON records and back, and can select
columns, filter rows and group-and-aggregate on the way ("total sales by region"); reads the
data from data parts, CSV/JSON files or a block in the text, and reports rows in and out."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from noosphere.agents.tools.base import (
    BoundedText,
    MissingArguments,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
)
from noosphere.agents.tools.builtin import table_ops as ops
from noosphere.agents.tools.builtin.tables import (
    Record,
    columns,
    parse_json_text,
    read_csv,
    read_json,
    write_csv,
    write_json,
)
from noosphere.agents.tools.inputs import split_instruction

MAX_RECORDS = 100_000
PREVIEW_LINES = 40
Format = Literal["json", "csv"]

_FENCE = re.compile(r"```[ \t]*(?P<tag>\w*)[ \t]*\n(?P<body>.*?)\n?```", re.DOTALL)
_OUTPUT = re.compile(
    r"\b(?:to|into|as|in)\s+(?:an?\s+)?(?P<fmt>csv|json)\b|\b(?P<fmt2>csv|json)"
    r"\s+(?:table|file|output|format|records)\b",
    re.IGNORECASE,
)
_STOP = r"(?=$|[,.;?!]|\s+(?:where|and|then|to|into|as|in|with|select|by|per|grouped|group)\b)"
_GROUP = re.compile(
    rf"\b(?:grouped\s+by|group\s+by|by|per|for\s+each|for\s+every)\s+(?P<key>[\w-]+(?:\s[\w-]+)??){_STOP}",
    re.IGNORECASE,
)
_FUNCTIONS: dict[str, ops.Function] = {
    "total": "sum", "sum": "sum", "average": "mean", "mean": "mean", "avg": "mean",
    "count": "count", "number": "count", "how many": "count", "min": "min", "minimum": "min",
    "lowest": "min", "smallest": "min", "max": "max", "maximum": "max", "highest": "max",
    "largest": "max",
}  # fmt: skip
_AGGREGATE = re.compile(
    r"\b(?P<func>" + "|".join(sorted(_FUNCTIONS, key=len, reverse=True)) + r")\b"
    r"(?:\s+(?:of|the|number|rows?|records?))*\s+(?P<field>[\w-]+(?:\s[\w-]+)?)",
    re.IGNORECASE,
)
_WHERE = re.compile(
    r"\b(?:where|filter(?:\s+rows)?(?:\s+where)?)\s+(?P<clause>.+?)"
    r"(?=$|[;?!]|\.(?:\s|$)|\s+(?:grouped|group|select|then)\b)",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"^(?P<field>[\w .-]+?)\s*(?P<op>>=|<=|!=|==|=|>|<|\bis\s+not\b|\bis\b|\bequals\b|"
    r"\bcontains\b|\bover\b|\babove\b|\bunder\b|\bbelow\b|\bat\s+least\b|\bat\s+most\b)\s*"
    r"(?P<value>.+)$",
    re.IGNORECASE,
)
_OP_WORDS = {
    "==": "=",
    "is": "=",
    "equals": "=",
    "is not": "!=",
    "over": ">",
    "above": ">",
    "under": "<",
    "below": "<",
    "at least": ">=",
    "at most": "<=",
}
_SELECT = re.compile(
    r"\b(?:select|only|keep|just)\s+(?:the\s+)?(?:columns?\s+|fields?\s+)?"
    r"(?P<cols>[\w-]+(?:\s*(?:,|\band\b)\s*[\w-]+)*)",
    re.IGNORECASE,
)


class CsvJsonArgs(BaseModel):
    records: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_RECORDS, description="input records (JSON objects)"
    )
    csv: BoundedText | None = Field(None, description="input CSV text with a header row")
    output: Format | None = Field(
        None,
        description="output format; default: the other format for a plain conversion, "
        "the input format when rows are filtered, grouped or selected",
    )
    select: list[str] = Field(default_factory=list, description="columns to keep, in order")
    where: list[ops.RowFilter] = Field(default_factory=list, description="all must hold")
    group_by: list[str] = Field(default_factory=list)
    aggregates: list[ops.Aggregate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> CsvJsonArgs:
        if (self.records is None) == (self.csv is None):
            raise ValueError("give the data as either records or csv")
        return self


def _sniff(text: str) -> tuple[Format, str]:
    stripped = text.strip()
    return ("json" if stripped[:1] in "[{" else "csv"), stripped


def find_data(request: ToolInput) -> tuple[str, list[Record] | str | None]:
    """(instruction, data) where data is records, CSV text, or None when the request has none."""
    for item in request.data:
        if isinstance(item, list | dict):
            return request.text, read_json(item)
    for file in request.files:
        kind = (file.media_type or "").lower()
        name = (file.name or "").lower()
        if "csv" in kind or name.endswith(".csv"):
            return request.text, file.text()
        if "json" in kind or name.endswith(".json"):
            return request.text, parse_json_text(file.text())
        if kind.startswith("text/") or not kind:
            fmt, body = _sniff(file.text())
            return request.text, parse_json_text(body) if fmt == "json" else body
    fence = _FENCE.search(request.text)
    if fence:
        instruction = (request.text[: fence.start()] + request.text[fence.end() :]).strip()
        tag, body = fence.group("tag").lower(), fence.group("body")
        fenced = tag if tag in ("csv", "json") else _sniff(body)[0]
        return instruction, parse_json_text(body) if fenced == "json" else body
    split = split_instruction(request.text)
    if not split.body:
        return split.instruction, None
    fmt, body = _sniff(split.body)
    return split.instruction, parse_json_text(body) if fmt == "json" else body


def _conditions(instruction: str, names: list[str]) -> list[ops.RowFilter]:
    found: list[ops.RowFilter] = []
    for where in _WHERE.finditer(instruction):
        for part in re.split(r"\s+and\s+", where.group("clause").strip(), flags=re.IGNORECASE):
            m = _CONDITION.match(part.strip())
            if m is None:
                raise ToolError(f"cannot read the condition {part.strip()!r} (use: field > value)")
            op = " ".join(m.group("op").lower().split())
            found.append(
                ops.RowFilter(
                    field=ops.column(m.group("field").strip(), names),
                    # an operator word or symbol: RowFilter's validation refuses anything else
                    op=_OP_WORDS.get(op, op),  # type: ignore[arg-type]
                    value=m.group("value").strip().strip("'\""),
                )
            )
    return found


def _resolve_phrase(phrase: str, names: list[str]) -> str | None:
    """The column named by a one- or two-word phrase (the whole phrase, then its first word)."""
    words = phrase.split()
    return ops.find_column(phrase, names) or ops.find_column(words[0], names)


def _aggregates(instruction: str, names: list[str]) -> list[ops.Aggregate]:
    found: list[ops.Aggregate] = []
    for m in _AGGREGATE.finditer(instruction):
        func = _FUNCTIONS[" ".join(m.group("func").lower().split())]
        field = _resolve_phrase(m.group("field"), names)
        if field is None and func != "count":
            raise ToolError(f"no column {m.group('field')!r}; the columns are: {', '.join(names)}")
        found.append(ops.Aggregate(func=func, field=None if func == "count" else field))
    return found


def operations(instruction: str, names: list[str]) -> dict[str, Any]:
    """select / where / group_by / aggregates / output read from the instruction."""
    result: dict[str, Any] = {"where": _conditions(instruction, names)}
    group = _GROUP.search(instruction)
    head = instruction[: group.start()] if group else instruction
    if group:
        key = _resolve_phrase(group.group("key"), names)
        result["group_by"] = [key or ops.column(group.group("key"), names)]
    aggregates = _aggregates(_WHERE.sub(" ", head), names)
    if aggregates or group:
        result["aggregates"] = aggregates
    select = _SELECT.search(instruction)
    if select:
        cols = re.split(r"\s*(?:,|\band\b)\s*", select.group("cols"), flags=re.IGNORECASE)
        result["select"] = [ops.column(c, names) for c in cols if c]
    output = _OUTPUT.search(instruction)
    if output:
        result["output"] = (output.group("fmt") or output.group("fmt2")).lower()
    return result


def _describe(args: CsvJsonArgs) -> list[str]:
    steps = [f"kept rows where {f.field} {f.op} {f.value}" for f in args.where]
    if args.group_by or args.aggregates:
        aggs = ", ".join(
            a.func if a.field is None else f"{a.func} of {a.field}"
            for a in args.aggregates or [ops.Aggregate(func="count")]
        )
        where = f" by {', '.join(args.group_by)}" if args.group_by else " over all rows"
        steps.append(f"grouped{where}: {aggs}")
    if args.select:
        steps.append(f"selected {', '.join(args.select)}")
    return steps


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


class CsvJsonTool(Tool[CsvJsonArgs]):
    name = "csv_json"
    description = (
        "Convert CSV to JSON records and back (with type inference), select columns, filter "
        "rows (field op value) and group-by aggregate (sum, mean, count, min, max)."
    )
    examples = [
        "convert this CSV to JSON",
        "turn these records into a CSV table",
        "total sales by region",
        "average latency per service",
        "select name and email where age > 30",
        "count orders per status",
    ]
    args_model = CsvJsonArgs

    def extract(self, request: ToolInput) -> CsvJsonArgs:
        instruction, data = find_data(request)
        if data is None:
            raise MissingArguments(
                "Which data? Send CSV or JSON records as a file, a data part, or after the "
                "instruction (on the next lines).",
                ["records", "csv"],
            )
        names = read_csv(data)[0] if isinstance(data, str) else columns(data)
        source = {"csv": data} if isinstance(data, str) else {"records": data}
        return self.validate(source | operations(instruction, names))

    def run(self, args: CsvJsonArgs, ctx: ToolContext) -> ToolResult:
        if args.csv is not None:
            header, records = read_csv(args.csv)
            source: Format = "csv"
        else:
            records = [dict(r) for r in args.records or []]
            header, source = columns(records), "json"
        rows_in = len(records)
        for condition in args.where:
            ops.column(condition.field, header)
            records = [r for r in records if ops.matches(r, condition)]
        if args.group_by or args.aggregates:
            keys = [ops.column(k, header) for k in args.group_by]
            for spec in args.aggregates:
                if spec.field is not None:
                    ops.column(spec.field, header)
            records = ops.group(records, keys, args.aggregates)
            header = columns(records) or keys
        if args.select:
            names = [ops.column(c, header) for c in args.select]
            records, header = ops.select(records, names), names
        changed = bool(args.where or args.group_by or args.aggregates or args.select)
        output = args.output or (source if changed else ("json" if source == "csv" else "csv"))
        content = write_csv(records, header) if output == "csv" else write_json(records)
        steps = _describe(args)
        summary = (
            f"{_rows(rows_in)} in, {_rows(len(records))} out"
            + (f" ({'; '.join(steps)})" if steps else "")
            + f"; {source.upper()} -> {output.upper()}."
        )
        lines = content.splitlines()
        preview = "\n".join(lines[:PREVIEW_LINES])
        if len(lines) > PREVIEW_LINES:
            preview += f"\n… ({len(lines) - PREVIEW_LINES} more lines in the data part)"
        return ToolResult(
            text=f"{summary}\n{preview}",
            data=content if output == "csv" else json.loads(content),
            media_type="text/csv" if output == "csv" else "application/json",
        )
