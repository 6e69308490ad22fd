"""The csv_json tool: CSV <-> JSON with type inference, select, filter and group-by aggregate,
data from data parts, files or a block in the text, and row counts in every answer."""

from __future__ import annotations

import pytest

from noosphere.agents.tools import InputFile, MissingArguments, ToolContext, ToolError, ToolInput
from noosphere.agents.tools.builtin import CsvJsonTool
from noosphere.agents.tools.builtin.tables import read_csv, write_csv

CTX = ToolContext(embedder=None)  # type: ignore[arg-type]
TOOL = CsvJsonTool()
SALES = (
    "region,product,sales,day,active,zip\n"
    "EU,apples,100,2026-01-05,true,01234\n"
    "US,pears,250.5,2026-01-06,false,94110\n"
    "EU,pears,50,2026-01-07,true,\n"
)
LATENCY = [
    {"service": "api", "latency": 120},
    {"service": "db", "latency": 30},
    {"service": "api", "latency": 81},
]


def run(text: str, **parts: object):  # type: ignore[no-untyped-def]
    return TOOL.run(TOOL.parse(ToolInput(text=text, **parts)), CTX)  # type: ignore[arg-type]


def test_csv_to_json_infers_types_per_column() -> None:
    result = run("convert this CSV to JSON\n" + SALES)
    assert result.media_type == "application/json"
    assert result.data == [
        {
            "region": "EU",
            "product": "apples",
            "sales": 100.0,
            "day": "2026-01-05",
            "active": True,
            "zip": "01234",
        },
        {
            "region": "US",
            "product": "pears",
            "sales": 250.5,
            "day": "2026-01-06",
            "active": False,
            "zip": "94110",
        },
        {
            "region": "EU",
            "product": "pears",
            "sales": 50.0,
            "day": "2026-01-07",
            "active": True,
            "zip": "",
        },
    ]
    assert result.text.startswith("3 rows in, 3 rows out; CSV -> JSON.\n[")


def test_records_to_csv_table() -> None:
    result = run("turn these records into a CSV table", data=[LATENCY])
    assert result.media_type == "text/csv"
    assert result.data == "service,latency\napi,120\ndb,30\napi,81\n"
    assert (
        result.text
        == "3 rows in, 3 rows out; JSON -> CSV.\nservice,latency\napi,120\ndb,30\napi,81"
    )


def test_total_sales_by_region_from_a_csv_file() -> None:
    result = run("total sales by region", files=[InputFile("s.csv", "text/csv", SALES.encode())])
    assert result.data == "region,sum_sales\nEU,150\nUS,250.5\n"
    assert result.text.startswith(
        "3 rows in, 2 rows out (grouped by region: sum of sales); CSV -> CSV."
    )


def test_average_latency_per_service_from_a_data_part() -> None:
    result = run("average latency per service", data=[LATENCY])
    assert result.data == [
        {"service": "api", "mean_latency": 100.5},
        {"service": "db", "mean_latency": 30},
    ]


def test_filter_select_and_fenced_block() -> None:
    text = f"select region and sales where sales > 60 and active = true\n```csv\n{SALES}```"
    result = run(text)
    assert result.data == "region,sales\nEU,100\n"
    assert "3 rows in, 1 row out (kept rows where sales > 60; kept rows where active = true; " in (
        result.text
    )
    counted = run("count orders per region as json\n" + SALES)
    assert counted.data == [{"region": "EU", "count": 2}, {"region": "US", "count": 1}]
    eu = run("max sales where region is eu\n" + SALES)
    assert eu.data == "max_sales\n100\n"


def test_json_file_and_structured_arguments() -> None:
    json_file = InputFile("l.json", "application/json", b'{"items": [{"a": 1}, {"a": 2}]}')
    assert run("to csv", files=[json_file]).data == "a\n1\n2\n"
    args = TOOL.validate(
        {
            "records": LATENCY,
            "where": [{"field": "service", "op": "contains", "value": "AP"}],
            "aggregates": [{"func": "min", "field": "latency"}, {"func": "count"}],
            "output": "json",
        }
    )
    assert TOOL.run(args, CTX).data == [{"min_latency": 81, "count": 2}]


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("total revenue by region\n" + SALES, "no column 'revenue'; the columns are: region"),
        ("sum product by region\n" + SALES, "column 'product' has a non-numeric value 'apples'"),
        ("where sales ~ 3\n" + SALES, "cannot read the condition 'sales ~ 3'"),
        ("convert\na,b\n1,2,3\n", "CSV row 2 has 3 fields, the header 2"),
        ("convert\na,a\n1,2\n", "unique, non-empty column names"),
        ("convert to csv\n[1, 2]", "JSON input must be a list of objects"),
        ("convert to csv\n[{", "invalid JSON at line 1 column 3"),
    ],
)
def test_errors_are_one_line(request_text: str, message: str) -> None:
    with pytest.raises(ToolError) as info:
        run(request_text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_data_asks_for_it() -> None:
    with pytest.raises(MissingArguments) as info:
        TOOL.parse(ToolInput(text="convert this CSV to JSON"))
    assert info.value.fields == ["records", "csv"]


def test_csv_round_trip_and_sniffed_delimiter() -> None:
    header, records = read_csv("a;b\n1;x\n2;y\n")
    assert header == ["a", "b"] and records == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert write_csv(records) == "a,b\n1,x\n2,y\n"
