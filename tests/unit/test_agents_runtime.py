"""The agent runtime end to end with the real embedding model: every example agent routes every
skill example (and paraphrases) to the tool its skill names; a turn completes, asks for input,
is rejected (refusal rule or no fitting tool) or fails with the tool's reason; memory recalls
earlier tasks of the conversation across a restart; the LLM planner talks to a real local
OpenAI-compatible server and falls back to the embedding planner, saying so."""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_server import FakeOpenAI, Scripted, content_reply, tool_reply

from noosphere.agents.persona import Persona
from noosphere.agents.planner import OFFLINE_LABEL, EmbeddingPlanner, instruction_of
from noosphere.agents.runtime import AgentRuntime
from noosphere.agents.spec import AgentSpec, PersonaSpec, load_agent_spec
from noosphere.agents.tools import ToolError, ToolInput, load_tool
from noosphere.agents.turn import Turn
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend, LlmConfig, without_long_bounds
from noosphere.protocol.a2a import Artifact, Message, Part, Role, TaskState

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
AGENT_FILES = sorted(path for path in EXAMPLES.iterdir() if path.is_file())

#: Requests worded unlike any example, with the tool that must serve them.
PARAPHRASES: dict[str, list[tuple[str, str]]] = {
    "calculator.yaml": [
        ("compute 3/4 + 5/6", "arithmetic"),
        ("how much is 2 to the power of 20", "arithmetic"),
        ("calculate 12.5% of 80", "arithmetic"),
        ("how many kilograms is 150 pounds?", "unit_convert"),
        ("100 km/h in mph", "unit_convert"),
        ("what is 30 degrees celsius in fahrenheit", "unit_convert"),
    ],
    "data-wrangler.toml": [
        ('turn this JSON into CSV:\n[{"a": 1}]', "csv_json"),
        ("sum of amount grouped by region", "csv_json"),
        ("keep only the name and email columns", "csv_json"),
    ],
    "flaky-bargain.yaml": [
        ("compute 3 + 4", "flaky_arithmetic"),
        ("what is 99 divided by 3?", "flaky_arithmetic"),
    ],
    "scheduler.yaml": [
        ("what time is it in London when it is 3pm in Los Angeles?", "timezone"),
        ("convert 14:00 UTC to Asia/Kolkata", "timezone"),
        ("noon Berlin time in Sydney", "timezone"),
        ("count business days between 2026-01-05 and 2026-02-20", "business_days"),
        ("what date is 15 working days from 2026-06-01?", "business_days"),
        ("number of weekdays from 2026-04-01 to 2026-04-30", "business_days"),
    ],
    "summarizer.toml": [
        (
            "summarize this: The board met on Monday. Revenue grew 12%. The CFO resigned."
            " A new CFO will be named next month.",
            "summarize",
        ),
        ("give me a short summary of the following report", "summarize"),
        ("extract keywords from this text", "keywords"),
        ("which topics does this document cover?", "keywords"),
        ("tag this text with its main themes", "keywords"),
    ],
    "text-stats.json": [
        ("what is the Flesch reading ease of this text?", "readability"),
        ("is this paragraph easy to read?", "readability"),
        ("what grade level is this essay written at", "readability"),
    ],
}


@dataclass
class RecordingSink:
    progress_lines: list[str] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    async def progress(self, text: str) -> None:
        self.progress_lines.append(text)

    async def artifact(self, artifact: Artifact) -> None:
        self.artifacts.append(artifact)


def user(text: str) -> Message:
    return Message(message_id=str(uuid.uuid4()), role=Role.USER, parts=[Part.of_text(text)])


def agent_says(text: str) -> Message:
    return Message(message_id=str(uuid.uuid4()), role=Role.AGENT, parts=[Part.of_text(text)])


def make_turn(
    text: str,
    *,
    task_id: str | None = None,
    context_id: str = "ctx-1",
    history: tuple[Message, ...] = (),
) -> Turn:
    return Turn(
        task_id=task_id or str(uuid.uuid4()),
        context_id=context_id,
        message=user(text),
        history=history,
    )


def meta(artifact: Artifact) -> dict[str, Any]:
    assert artifact.metadata is not None
    return artifact.metadata["noosphere"]


def skill_tool_names(runtime: AgentRuntime) -> dict[str, str]:
    """Skill name -> the name of the tool its reference loads."""
    spec = runtime.spec
    return {
        skill.name: load_tool(skill.tool, base_dir=spec.base_dir).name
        for skill in spec.skills
        if skill.tool is not None
    }


@pytest.fixture
def runtimes(tmp_path: Path, embedder: Embedder) -> Iterator[dict[str, AgentRuntime]]:
    made: dict[str, AgentRuntime] = {}
    for path in AGENT_FILES:
        home = tmp_path / path.stem
        home.mkdir()
        made[path.name] = AgentRuntime.create(load_agent_spec(path), home, embedder)
    yield made
    for runtime in made.values():
        runtime.close()


@pytest.fixture
def calculator(tmp_path: Path, embedder: Embedder) -> Iterator[AgentRuntime]:
    runtime = AgentRuntime.create(load_agent_spec(EXAMPLES / "calculator.yaml"), tmp_path, embedder)
    yield runtime
    runtime.close()


# -- routing ---------------------------------------------------------------------------------


def test_every_example_file_is_covered() -> None:
    assert {path.name for path in AGENT_FILES} == set(PARAPHRASES)


async def test_every_skill_example_routes_to_its_tool(
    runtimes: dict[str, AgentRuntime],
) -> None:
    misrouted: list[str] = []
    for file, runtime in runtimes.items():
        assert isinstance(runtime.planner, EmbeddingPlanner)
        tools = skill_tool_names(runtime)
        for skill in runtime.spec.skills:
            for example in skill.examples:
                ranking = runtime.planner.rank(example)
                name, score = ranking[0]
                if name != tools[skill.name]:
                    misrouted.append(f"{file}: {example!r} -> {name}, not {tools[skill.name]}")
                # The skill's own examples are indexed for its tool, whatever the reference
                # (built-in name or a user's file.py:Class), so each matches itself.
                assert score > 0.99, (file, example, ranking)
    assert misrouted == []


async def test_paraphrases_route_to_the_right_tool(runtimes: dict[str, AgentRuntime]) -> None:
    misrouted: list[str] = []
    for file, cases in PARAPHRASES.items():
        planner = runtimes[file].planner
        for text, tool in cases:
            name, score = planner.rank(text)[0]
            if name != tool:
                misrouted.append(f"{file}: {text!r} -> {name} ({score:.2f}), not {tool}")
    assert misrouted == []


async def test_plan_parses_arguments_and_labels_the_planner(calculator: AgentRuntime) -> None:
    plan = await calculator.planner.plan(ToolInput("convert 5 miles to km"), [])
    assert plan.tool.name == "unit_convert"
    assert plan.args.model_dump() == {"value": "5", "from_unit": "miles", "to_unit": "km"}
    assert plan.planner == OFFLINE_LABEL
    assert plan.similarity is not None and plan.similarity > 0.99
    assert plan.notes[0].startswith("chose unit_convert")
    assert plan.notes[1].startswith("runner-up arithmetic")


def write_agent(tmp_path: Path, body: str, tool_source: str | None = None) -> AgentSpec:
    if tool_source is not None:
        (tmp_path / "mytools.py").write_text(textwrap.dedent(tool_source), encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return load_agent_spec(path)


CLONE_TOOL = """
    from noosphere.agents.tools.builtin.arithmetic import ArithmeticTool

    class Clone(ArithmeticTool):  # forgot to rename itself
        description = "Arithmetic, again."
"""


def test_two_tools_claiming_one_name_are_refused(tmp_path: Path, embedder: Embedder) -> None:
    spec = write_agent(
        tmp_path,
        """
        name: Clash
        description: Two tools, one name.
        skills:
          - {name: A, description: Arithmetic., tool: arithmetic}
          - {name: B, description: Arithmetic again., tool: "mytools.py:Clone"}
        """,
        CLONE_TOOL,
    )
    home = tmp_path / "home"
    home.mkdir()
    with pytest.raises(ToolError, match="tool names must be unique"):
        AgentRuntime.create(spec, home, embedder)
    assert not (home / "memory.db").exists()  # the bad tool was found before opening memory


def test_two_skills_may_share_a_tool(tmp_path: Path, embedder: Embedder) -> None:
    spec = load_agent_spec(EXAMPLES / "data-wrangler.toml")
    runtime = AgentRuntime.create(spec, tmp_path, embedder)
    try:
        assert runtime.toolbox.names == ["csv_json"]
    finally:
        runtime.close()


# -- run_turn --------------------------------------------------------------------------------


async def test_turn_completes_with_artifact_and_progress(calculator: AgentRuntime) -> None:
    sink = RecordingSink()
    result = await calculator.run_turn(make_turn("convert 5 miles to km"), sink)
    assert result.state == TaskState.COMPLETED
    assert "8.04672" in result.text
    assert result.text.endswith(
        f"[Exact Calculator · tool unit_convert · planner: {OFFLINE_LABEL}]"
    )
    assert sink.progress_lines == [
        "recalling related tasks",
        "planning",
        f"running tool unit_convert; planner: {OFFLINE_LABEL}",
    ]
    [artifact] = sink.artifacts
    assert artifact.name == "unit_convert result"
    info = meta(artifact)
    assert info["tool"] == "unit_convert"
    assert info["planner"] == OFFLINE_LABEL
    assert isinstance(info["similarity"], float) and info["similarity"] > 0.9
    assert info["recalled"] == []
    assert "8.04672" in (artifact.parts[0].text or "")


async def test_missing_arguments_then_answer_completes(calculator: AgentRuntime) -> None:
    first = user("convert 5 miles")
    sink = RecordingSink()
    asked = await calculator.run_turn(make_turn("convert 5 miles", task_id="t-ask"), sink)
    assert asked.state == TaskState.INPUT_REQUIRED
    assert "convert" in asked.text.lower()
    assert "to_unit" in asked.metadata["missing"]
    assert sink.artifacts == []

    history = (first, agent_says(asked.text))
    done = await calculator.run_turn(make_turn("to km", task_id="t-ask", history=history), sink)
    assert done.state == TaskState.COMPLETED, done.text
    assert "8.04672" in done.text
    assert meta(sink.artifacts[0])["tool"] == "unit_convert"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I need tax advice about 15% of 2,340", "tax advice"),
        ("Any TAX\n  ADVICE for me?", "tax advice"),  # case and spacing do not matter
        ("what is the right medication dosage for my dog", "medical dosage"),  # by meaning
    ],
)
async def test_refusal_rule_rejects(calculator: AgentRuntime, text: str, rule: str) -> None:
    sink = RecordingSink()
    result = await calculator.run_turn(make_turn(text), sink)
    assert result.state == TaskState.REJECTED
    assert repr(rule) in result.text
    assert "Exact Calculator" in result.text
    assert sink.progress_lines == [] and sink.artifacts == []


async def test_no_tool_fits_rejects_naming_the_closest(calculator: AgentRuntime) -> None:
    sink = RecordingSink()
    result = await calculator.run_turn(make_turn("write a poem about the sea"), sink)
    assert result.state == TaskState.REJECTED
    assert re.search(r"closest: (arithmetic|unit_convert) at 0\.\d\d", result.text), result.text
    assert sink.artifacts == []


async def test_tool_failure_fails_with_its_reason(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLAKY_FAILURE_RATE", "1")
    spec = load_agent_spec(EXAMPLES / "flaky-bargain.yaml")
    runtime = AgentRuntime.create(spec, tmp_path, embedder)
    try:
        sink = RecordingSink()
        result = await runtime.run_turn(make_turn("what is 12*12?", task_id="t-flaky"), sink)
        assert result.state == TaskState.FAILED
        assert result.text == "gave up halfway (this agent is deliberately unreliable)"
        assert sink.artifacts == []
        assert sink.progress_lines[-1].startswith("running tool flaky_arithmetic")
        [episode] = runtime.memory.get("t-flaky")
        assert episode.outcome == "failed"

        monkeypatch.setenv("FLAKY_FAILURE_RATE", "0")
        ok = await runtime.run_turn(make_turn("what is 12*12?"), sink)
        assert ok.state == TaskState.COMPLETED
        assert "144" in ok.text
    finally:
        runtime.close()


BROKEN_TOOL = """
    from pydantic import BaseModel
    from noosphere.agents.tools import Tool, ToolResult

    class Args(BaseModel):
        text: str

    class Broken(Tool[Args]):
        name = "broken"
        description = "Reverse a piece of text."
        examples = ["reverse this text"]
        args_model = Args

        def extract(self, request):
            raise RuntimeError("parser bug")

        def run(self, args, ctx):
            return ToolResult(text=args.text[::-1])
"""


async def test_a_crashing_parser_fails_the_turn_without_raising(
    tmp_path: Path, embedder: Embedder
) -> None:
    spec = write_agent(
        tmp_path,
        """
        name: Broken
        description: Reverses text.
        skills:
          - {name: Reverse, description: Reverse text., tool: "mytools.py:Broken"}
        """,
        BROKEN_TOOL,
    )
    runtime = AgentRuntime.create(spec, tmp_path, embedder)
    try:
        result = await runtime.run_turn(make_turn("reverse this text please"), RecordingSink())
    finally:
        runtime.close()
    assert result.state == TaskState.FAILED
    assert "RuntimeError: parser bug" in result.text
    assert "\n" not in result.text


# -- memory ----------------------------------------------------------------------------------


async def test_second_turn_recalls_the_first_even_after_restart(
    tmp_path: Path, embedder: Embedder
) -> None:
    spec = load_agent_spec(EXAMPLES / "calculator.yaml")
    runtime = AgentRuntime.create(spec, tmp_path, embedder)
    try:
        sink = RecordingSink()
        first = await runtime.run_turn(make_turn("convert 5 miles to km", task_id="t1"), sink)
        assert first.state == TaskState.COMPLETED
        second = await runtime.run_turn(make_turn("convert 10 miles to km", task_id="t2"), sink)
        assert second.state == TaskState.COMPLETED
        recalled = meta(sink.artifacts[1])["recalled"]
        assert [r["taskId"] for r in recalled] == ["t1"]
        assert recalled[0]["score"] > 0.5
        assert sink.progress_lines[4] == "planning with 1 related tasks"
    finally:
        runtime.close()

    restarted = AgentRuntime.create(spec, tmp_path, embedder)
    try:
        sink = RecordingSink()
        third = await restarted.run_turn(make_turn("convert 2 miles to km", task_id="t3"), sink)
        assert third.state == TaskState.COMPLETED
        ids = [r["taskId"] for r in meta(sink.artifacts[0])["recalled"]]
        assert ids == ["t2", "t1"]  # this conversation's tasks, newest first
        other = await restarted.run_turn(
            make_turn("what is 2 + 2?", task_id="t4", context_id="ctx-other"), sink
        )
        assert other.state == TaskState.COMPLETED
        assert "t4" not in [r["taskId"] for r in meta(sink.artifacts[1])["recalled"]]
    finally:
        restarted.close()


# -- LLM planner against a real local OpenAI-compatible server --------------------------------

CONVERT_ARGS = '{"value": "5", "from_unit": "miles", "to_unit": "km"}'


def llm_runtime(server: FakeOpenAI, tmp_path: Path, embedder: Embedder) -> AgentRuntime:
    config = LlmConfig(base_url=server.base_url, model="test-model", max_retries=1)
    backend = LlmBackend(config, backoff=0.01)
    spec = load_agent_spec(EXAMPLES / "calculator.yaml")
    return AgentRuntime.create(spec, tmp_path, embedder, backend)


@pytest.fixture
async def with_llm(
    server: FakeOpenAI, tmp_path: Path, embedder: Embedder
) -> AsyncIterator[AgentRuntime]:
    runtime = llm_runtime(server, tmp_path, embedder)
    yield runtime
    runtime.close()
    backend = getattr(runtime.planner, "_backend", None)
    if backend is not None:
        await backend.aclose()


async def test_llm_tool_call_runs_the_tool(server: FakeOpenAI, with_llm: AgentRuntime) -> None:
    server.then(tool_reply("unit_convert", CONVERT_ARGS))
    sink = RecordingSink()
    text = "I walked five miles today; how far is that in kilometres?"
    result = await with_llm.run_turn(make_turn(text), sink)
    assert result.state == TaskState.COMPLETED, result.text
    assert "8.04672" in result.text
    label = "LLM function calling (test-model)"
    assert result.text.endswith(f"planner: {label}]")
    info = meta(sink.artifacts[0])
    assert info["tool"] == "unit_convert"
    assert info["planner"] == label
    assert info["similarity"] is None

    [seen] = server.requests
    body = seen["body"]
    assert body["model"] == "test-model"
    system, question = body["messages"]
    assert system == {"role": "system", "content": with_llm.persona.system_prompt()}
    assert "meticulous calculator" in system["content"]
    assert question == {"role": "user", "content": text}
    tools = {t["function"]["name"]: t for t in body["tools"]}
    assert set(tools) == {"arithmetic", "unit_convert"}
    schema = with_llm.toolbox.get("unit_convert").json_schema()
    # what is sent is the tool's schema less the length bounds too long for a grammar
    assert tools["unit_convert"] == {"type": "function", "function": without_long_bounds(schema)}
    assert set(schema["parameters"]["properties"]) == {"value", "from_unit", "to_unit"}


async def test_llm_sees_recalled_tasks(server: FakeOpenAI, with_llm: AgentRuntime) -> None:
    server.then(tool_reply("unit_convert", CONVERT_ARGS), tool_reply("unit_convert", CONVERT_ARGS))
    await with_llm.run_turn(make_turn("convert 5 miles to km", task_id="a"), RecordingSink())
    await with_llm.run_turn(make_turn("and 5 miles in km again?", task_id="b"), RecordingSink())
    assert "Related past tasks" not in server.requests[0]["body"]["messages"][0]["content"]
    system = server.requests[1]["body"]["messages"][0]["content"]
    assert "Related past tasks:\n- convert 5 miles to km -> " in system


@pytest.mark.parametrize(
    ("replies", "reason", "calls"),
    [
        ([Scripted(status=500, body={"error": {"message": "overloaded"}})] * 2, "HTTP 500", 2),
        ([content_reply("5 miles is about 8 km")], "without calling a tool", 1),
        ([tool_reply("launch_rockets", "{}")], "no tool named 'launch_rockets'", 1),
        ([tool_reply("unit_convert", '{"value": "5"}')], "bad arguments for tool", 1),
        ([tool_reply("unit_convert", '{"value": "5", "from_unit"')], "arguments are not JSON", 1),
    ],
    ids=["http-500", "no-tool-call", "unknown-tool", "bad-arguments", "arguments-not-json"],
)
async def test_llm_failure_falls_back_to_embedding_planner(
    server: FakeOpenAI,
    with_llm: AgentRuntime,
    replies: list[Scripted],
    reason: str,
    calls: int,
) -> None:
    server.then(*replies)
    sink = RecordingSink()
    result = await with_llm.run_turn(make_turn("convert 5 miles to km"), sink)
    assert result.state == TaskState.COMPLETED, result.text
    assert "8.04672" in result.text
    planner = meta(sink.artifacts[0])["planner"]
    assert planner.startswith(f"{OFFLINE_LABEL}, after the LLM failed: ")
    assert reason in planner
    assert f"planner: {planner}]" in result.text
    assert meta(sink.artifacts[0])["similarity"] > 0.99
    assert len(server.requests) == calls


async def test_refused_request_never_reaches_the_llm(
    server: FakeOpenAI, with_llm: AgentRuntime
) -> None:
    result = await with_llm.run_turn(make_turn("give me tax advice"), RecordingSink())
    assert result.state == TaskState.REJECTED
    assert server.requests == []


# -- persona ---------------------------------------------------------------------------------


def test_system_prompt_has_identity_style_goals_and_refusals(embedder: Embedder) -> None:
    spec = load_agent_spec(EXAMPLES / "calculator.yaml")
    prompt = Persona(spec, embedder).system_prompt()
    assert prompt.startswith(f"You are Exact Calculator: {spec.description}")
    assert "You are a meticulous calculator." in prompt
    assert "Style: terse, exact" in prompt
    assert "Goals: exact results; explicit units" in prompt
    assert "Refuse any request about: medical dosage; tax advice" in prompt


def test_string_persona_becomes_the_prompt(embedder: Embedder) -> None:
    spec = load_agent_spec(EXAMPLES / "data-wrangler.toml")
    assert isinstance(spec.persona, PersonaSpec)
    assert spec.persona.prompt.startswith("You are a precise data engineer.")
    assert spec.persona.refuse == [] and spec.persona.goals == []
    persona = Persona(spec, embedder)
    prompt = persona.system_prompt()
    assert "You are a precise data engineer." in prompt
    assert "Style:" not in prompt and "Refuse" not in prompt
    assert persona.refusal("drop every row about tax advice") is None

    inline = AgentSpec.model_validate(
        {
            "name": "Inline",
            "description": "d",
            "persona": "Be brief.",
            "skills": [{"name": "s", "description": "d", "tool": "arithmetic"}],
        }
    )
    assert inline.persona == PersonaSpec(prompt="Be brief.")


def test_word_rules_match_whole_words_only(embedder: Embedder) -> None:
    spec = AgentSpec.model_validate(
        {
            "name": "Coder",
            "description": "d",
            "persona": {"refuse": ["C++", "war"]},
            "skills": [{"name": "s", "description": "d", "tool": "arithmetic"}],
        }
    )
    persona = Persona(spec, embedder)
    hit = persona.refusal("port this c++ code to Rust")
    assert hit is not None and hit.rule == "C++" and hit.similarity == 1.0
    assert persona.refusal("what is the software award for 2026?") is None
    assert persona.refusal("") is None


# -- instruction_of --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instruction"),
    [
        ("summarize this: " + "The report is long. " * 200, "summarize this"),
        ("  summarize this:\nline one\nline two", "summarize this"),
        ("tl;dr of these meeting notes\nAlice: hi\nBob: hello", "tl;dr of these meeting notes"),
        ("Summarize the report. It is long and detailed.", "Summarize the report."),
        ("what is 17/3 + 2^10?", "what is 17/3 + 2^10?"),
        ("convert 9:30 Europe/Paris to Asia/Tokyo", "convert 9:30 Europe/Paris to Asia/Tokyo"),
        ("summarize https://example.org/a: it is long", "summarize https://example.org/a"),
        ("x" * 500, "x" * 300),
    ],
)
def test_instruction_of(text: str, instruction: str) -> None:
    assert instruction_of(text) == instruction


async def test_a_fresh_request_costs_one_forward_pass(
    calculator: AgentRuntime, embedder: Embedder
) -> None:
    """Refusal check, memory recall, tool choice and memory write share the request's vector."""
    await calculator.run_turn(make_turn("what is 3*7?"), RecordingSink())  # warm tool vectors
    before = embedder.forward_passes
    result = await calculator.run_turn(make_turn("what is 1234*5678?"), RecordingSink())
    assert result.state == TaskState.COMPLETED
    assert embedder.forward_passes - before == 1


def test_embedding_cache_returns_equal_vectors_and_stays_bounded() -> None:
    small = Embedder(cache_size=2)
    first = small.encode(["alpha", "beta", "alpha"])
    assert small.forward_passes == 1
    assert np.array_equal(first[0], first[2])
    again = small.encode(["beta"])
    assert small.forward_passes == 1
    assert np.array_equal(again[0], first[1])
    small.encode(["gamma", "delta"])  # evicts alpha and beta
    small.encode(["alpha"])
    assert small.forward_passes == 3
    assert len(small._cache) == 2
