"""The tool contract: errors, Toolbox, run_tool (timeout, crash, bad args), load_tool refs,
input limits, and that the built-ins serve every example of the example agents."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from noosphere.agents.spec import load_agent_spec
from noosphere.agents.tools import (
    BUILTIN_TOOLS,
    MAX_INPUT_BYTES,
    InputFile,
    MissingArguments,
    Tool,
    Toolbox,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
    ToolTimeout,
    load_tool,
    load_toolbox,
    run_tool,
)
from noosphere.agents.tools.builtin import ArithmeticTool

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"
CTX = ToolContext(embedder=None)  # type: ignore[arg-type]  # these tools never embed


class SleepArgs(BaseModel):
    seconds: float


class SleepTool(Tool[SleepArgs]):
    name = "sleep"
    description = "Sleeps."
    examples = ["sleep a while"]
    args_model = SleepArgs

    def run(self, args: SleepArgs, ctx: ToolContext) -> ToolResult:
        time.sleep(args.seconds)
        return ToolResult(text="slept")


class CrashTool(Tool[SleepArgs]):
    name = "crash"
    description = "Divides by zero."
    examples = ["crash"]
    args_model = SleepArgs

    def run(self, args: SleepArgs, ctx: ToolContext) -> ToolResult:
        return ToolResult(text=str(1 / 0))


class RefusingTool(CrashTool):
    name = "refuse"

    def run(self, args: SleepArgs, ctx: ToolContext) -> ToolResult:
        raise ToolError("no thanks\nreally")


# -- errors and results ----------------------------------------------------------------------


def test_errors_are_one_line_and_missing_arguments_carry_the_question() -> None:
    assert str(ToolError("a\n  b")) == "a b"
    missing = MissingArguments("Which expression should I evaluate?", ["expression"])
    assert isinstance(missing, ToolError)
    assert missing.question == "Which expression should I evaluate?"
    assert missing.fields == ["expression"]
    assert issubclass(ToolTimeout, ToolError)


def test_tool_input_defaults_and_file_text() -> None:
    request = ToolInput(text="hi")
    assert request.data == () and request.files == ()
    assert InputFile("a.txt", "text/plain", "\ufeffhé".encode()).text() == "hé"
    with pytest.raises(ToolError, match=r"b\.bin is not UTF-8"):
        InputFile("b.bin", None, b"\xff\xfe\x00").text()


def test_json_schema_is_the_function_calling_shape() -> None:
    schema = ArithmeticTool().json_schema()
    assert schema["name"] == "arithmetic"
    assert schema["description"].startswith("Evaluate")
    assert schema["parameters"]["required"] == ["expression"]
    assert schema["parameters"]["properties"]["expression"]["type"] == "string"


def test_parse_takes_arguments_from_a_matching_data_part() -> None:
    args = ArithmeticTool().parse(ToolInput(text="", data=[{"expression": "1/2 + 1/3"}]))
    assert args.expression == "1/2 + 1/3"
    with pytest.raises(ToolError, match="bad arguments for tool 'arithmetic': expression"):
        ArithmeticTool().parse(ToolInput(text="", data=[{"expression": ""}]))


def test_default_extract_asks_for_the_required_arguments() -> None:
    with pytest.raises(MissingArguments) as info:
        SleepTool().parse(ToolInput(text="please sleep"))
    assert info.value.fields == ["seconds"]


def test_oversized_input_is_refused_before_parsing() -> None:
    big = "1+" * (MAX_INPUT_BYTES // 2) + "1"
    with pytest.raises(ToolError, match=r"^input too large: \d+ bytes \(the limit is 200000"):
        ArithmeticTool().parse(ToolInput(text=big))
    with pytest.raises(ToolError, match="input too large"):
        BUILTIN_TOOLS["summarize"]().parse(
            ToolInput(text="summarize", files=[InputFile("a.txt", "text/plain", b"a" * 300_000)])
        )


# -- toolbox ---------------------------------------------------------------------------------


def test_toolbox_registers_gets_and_lists() -> None:
    box = Toolbox([SleepTool(), CrashTool()])
    assert box.names == ["sleep", "crash"] and len(box) == 2 and "sleep" in box
    assert [t.name for t in box] == ["sleep", "crash"]
    assert [s["name"] for s in box.schemas()] == ["sleep", "crash"]
    assert isinstance(box.get("crash"), CrashTool)
    with pytest.raises(ValueError, match="already registered"):
        box.register(SleepTool())
    with pytest.raises(ToolError, match=r"no tool named 'nope' \(known tools: sleep, crash\)"):
        box.get("nope")


# -- run_tool --------------------------------------------------------------------------------


async def test_run_tool_returns_the_result() -> None:
    result = await run_tool(ArithmeticTool(), {"expression": "2^10"}, CTX, timeout=5)
    assert result.text == "2^10 = 1024"


async def test_run_tool_timeout_becomes_tool_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match=r"^tool 'sleep' took longer than 0\.2 s$"):
        await run_tool(SleepTool(), SleepArgs(seconds=1.0), CTX, timeout=0.2)
    assert time.monotonic() - started < 0.9


async def test_run_tool_crash_becomes_one_line_tool_error() -> None:
    with pytest.raises(ToolError) as info:
        await run_tool(CrashTool(), SleepArgs(seconds=0), CTX, timeout=5)
    assert type(info.value) is ToolError
    assert str(info.value) == "tool 'crash' crashed: ZeroDivisionError: division by zero"


async def test_run_tool_passes_tool_errors_through() -> None:
    with pytest.raises(ToolError, match=r"^no thanks really$"):
        await run_tool(RefusingTool(), SleepArgs(seconds=0), CTX, timeout=5)


async def test_run_tool_validates_arguments_first() -> None:
    with pytest.raises(ToolError, match=r"^bad arguments for tool 'sleep': seconds: "):
        await run_tool(SleepTool(), {"seconds": "soon"}, CTX, timeout=5)

    class Other(BaseModel):
        expression: int

    with pytest.raises(ToolError, match="expression: Input should be a valid string"):
        await run_tool(ArithmeticTool(), Other(expression=3), CTX, timeout=5)


# -- load_tool -------------------------------------------------------------------------------

TOOL_FILE = """
from pydantic import BaseModel
from noosphere.agents.tools import Tool, ToolResult

class Args(BaseModel):
    word: str

class Shout(Tool[Args]):
    name = "shout"
    description = "Upper-cases a word."
    examples = ["shout hello"]
    args_model = Args

    def run(self, args, ctx):
        return ToolResult(text=args.word.upper())

INSTANCE = Shout()
NOT_A_TOOL = 42
"""


def test_load_builtin_tools_by_name() -> None:
    assert isinstance(load_tool("arithmetic"), ArithmeticTool)
    assert isinstance(load_tool("builtin:arithmetic"), ArithmeticTool)
    assert sorted(BUILTIN_TOOLS) == [
        "arithmetic",
        "business_days",
        "csv_json",
        "keywords",
        "readability",
        "summarize",
        "timezone",
        "unit_convert",
    ]
    for name, cls in BUILTIN_TOOLS.items():
        assert load_tool(name).name == name == cls.name


def test_load_tool_from_module_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = load_tool("noosphere.agents.tools.builtin.arithmetic:ArithmeticTool")
    assert isinstance(tool, ArithmeticTool)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "shout.py").write_text(TOOL_FILE)
    from_file = load_tool("tools/shout.py:Shout", base_dir=tmp_path)
    assert from_file.name == "shout"
    assert from_file.run(from_file.validate({"word": "hi"}), CTX).text == "HI"
    assert load_tool(f"{tmp_path}/tools/shout.py:INSTANCE").name == "shout"
    monkeypatch.syspath_prepend(str(tmp_path / "tools"))
    assert load_tool("shout:Shout").name == "shout"
    box = load_toolbox(["arithmetic", "tools/shout.py:Shout"], base_dir=tmp_path)
    assert box.names == ["arithmetic", "shout"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "no built-in tool 'nope'"),
        ("builtin:nope", "no built-in tool 'nope'"),
        ("no_such_module_xyz:Tool", "cannot import 'no_such_module_xyz'"),
        ("noosphere.agents.tools.builtin.arithmetic:Missing", "has no attribute 'Missing'"),
        ("noosphere.agents.tools.builtin.arithmetic:ArithmeticArgs", "is not a Tool subclass"),
        ("noosphere.agents.tools.base:Tool", "cannot create Tool()"),
        ("tools/shout.py:NOT_A_TOOL", "NOT_A_TOOL is not a Tool subclass or instance"),
        ("tools/missing.py:Shout", "not found"),
        ("tools/broken.py:Shout", "broken.py failed to load: SyntaxError"),
        (":Shout", "expected 'module:Class'"),
    ],
)
def test_bad_refs_fail_with_one_line_naming_the_ref(tmp_path: Path, ref: str, message: str) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "shout.py").write_text(TOOL_FILE)
    (tmp_path / "tools" / "broken.py").write_text("def oops(:\n")
    with pytest.raises(ToolError) as info:
        load_tool(ref, base_dir=tmp_path)
    assert message in str(info.value)
    assert repr(ref) in str(info.value) and "\n" not in str(info.value)


def test_load_toolbox_rejects_duplicates() -> None:
    with pytest.raises(ToolError, match="already registered"):
        load_toolbox(["arithmetic", "builtin:arithmetic"])


# -- the example agents ----------------------------------------------------------------------

SAMPLE_CSV = "region,service,sales,latency\nEU,api,100,120\nUS,db,250,30\nEU,api,50,80\n"
SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park."


AGENT_FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".toml", ".yaml", ".json"))


def example_requests() -> list[tuple[str, str]]:
    """(tool ref, example) for every skill example of the example agents."""
    pairs = []
    for path in AGENT_FILES:
        for skill in load_agent_spec(path).skills:
            assert skill.tool, f"{path.name}: skill {skill.name!r} names no tool"
            pairs.extend((skill.tool, example) for example in skill.examples)
    return pairs


@pytest.mark.parametrize(("ref", "example"), example_requests())
def test_every_example_is_listed_and_parses(ref: str, example: str) -> None:
    tool = load_tool(ref, base_dir=EXAMPLES)
    assert example in tool.examples
    attachment: dict[str, Any] = {}
    if tool.name == "csv_json":
        attachment = {"files": [InputFile("data.csv", "text/csv", SAMPLE_CSV.encode())]}
    elif tool.name in ("summarize", "keywords", "readability"):
        attachment = {"files": [InputFile("doc.txt", "text/plain", SAMPLE_TEXT.encode())]}
    args = tool.parse(ToolInput(text=example, **attachment))
    assert isinstance(args, tool.args_model)
