"""Execute and Recruit against a REAL local LLM: llama.cpp's OpenAI-compatible server (built once
by ``make llm``) with SmolLM2-135M-Instruct. Chat completions, forced tool calls whose arguments
follow the tool's JSON schema, the LLM planner (it plans with the model or falls back, saying
so), timeouts, and malformed output (a tiny ``max_tokens`` cuts tool arguments; a grammar that
forbids JSON breaks the judge's answer) - each failure a one-line error or an honest fallback;
and the tool schemas the planner sends never carry the long length bounds that crashed
llama-cpp-python's server (``without_long_bounds``).
Skipped, with the reason, where the server is not built (it is never built by CI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from noosphere.agents.planner import OFFLINE_LABEL
from noosphere.agents.runtime import AgentRuntime
from noosphere.agents.spec import load_agent_spec
from noosphere.agents.tools import ToolInput
from noosphere.mars.filter import LlmJudge, Verdict
from noosphere.mars.profile import profile_from_record
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend, LlmConfig, LlmError
from noosphere.models.local_llm import MODEL_ALIAS, LocalLlmServer, find_build

from .support import EXAMPLES

pytestmark = pytest.mark.integration

BUILD, NOT_BUILT = find_build()
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ASK = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLlmServer]:
    if BUILD is None:
        pytest.skip(NOT_BUILT)
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with LocalLlmServer(BUILD, log_path=log) as running:
        yield running


def backend(server: LocalLlmServer, **config: Any) -> LlmBackend:
    fields: dict[str, Any] = {
        "base_url": server.ensure_running(),
        "model": MODEL_ALIAS,
        "timeout": 120.0,  # a shared 2-core machine; the wall-clock goals live in bench/
        "max_tokens": 64,
        "max_retries": 0,
    }
    return LlmBackend(LlmConfig(**(fields | config)))


async def test_a_plain_chat_completion(server: LocalLlmServer) -> None:
    async with backend(server) as llm:
        reply = await llm.chat(ASK)
    assert reply.content and reply.content.strip()
    assert reply.tool_calls == []
    assert reply.finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage["prompt_tokens"] > 10


async def test_a_forced_tool_call_follows_the_tools_schema(server: LocalLlmServer) -> None:
    """Naming the tool makes llama.cpp constrain the arguments to its JSON schema."""
    async with backend(server) as llm:
        reply = await llm.chat(ASK, tools=[WEATHER_TOOL], tool_choice="get_weather")
    [call] = reply.tool_calls
    assert call.name == "get_weather"
    assert isinstance(call.arguments.get("city"), str)


async def test_cut_tool_arguments_are_a_one_line_error(server: LocalLlmServer) -> None:
    async with backend(server, max_tokens=2) as llm:
        with pytest.raises(LlmError, match="arguments are not JSON") as info:
            await llm.chat(ASK, tools=[WEATHER_TOOL], tool_choice="get_weather")
    assert "\n" not in str(info.value)


async def test_a_slow_answer_times_out(server: LocalLlmServer) -> None:
    long_question = [{"role": "user", "content": "Tell a long story about a city. " * 40}]
    async with backend(server, timeout=0.05, max_tokens=32) as llm:
        with pytest.raises(LlmError, match=r"timed out after 0\.05 s"):
            await llm.chat(long_question)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
async def calculator(
    server: LocalLlmServer, tmp_path: Path, embedder: Embedder, request: pytest.FixtureRequest
) -> AsyncIterator[AgentRuntime]:
    llm = backend(server, **getattr(request, "param", {}))
    runtime = AgentRuntime.create(
        load_agent_spec(EXAMPLES / "calculator.yaml"), tmp_path, embedder, llm
    )
    yield runtime
    runtime.close()
    await llm.aclose()


@pytest.mark.parametrize("text", ["convert 5 miles to km", "what is 12 * 12?"])
async def test_the_llm_planner_plans_with_the_real_model(
    server: LocalLlmServer, calculator: AgentRuntime, text: str
) -> None:
    """The model either calls one of the agent's tools with arguments the tool accepts, or the
    planner falls back to the embedding match and says why: never a made-up tool, and the
    server survives every tool schema the agent has."""
    plan = await calculator.planner.plan(ToolInput(text=text), [])
    assert server.running()
    assert plan.tool.name in {tool.name for tool in calculator.toolbox}
    if plan.planner.startswith("LLM function calling"):
        assert plan.planner == f"LLM function calling ({MODEL_ALIAS})"
        assert plan.notes == [f"the model called {plan.tool.name}"]
    else:
        assert plan.planner.startswith(f"{OFFLINE_LABEL}, after the LLM failed: ")
        assert plan.tool.name == ("unit_convert" if "miles" in text else "arithmetic")


@pytest.mark.parametrize("calculator", [{"max_tokens": 1}], indirect=True)
async def test_the_planner_falls_back_when_the_output_is_cut(calculator: AgentRuntime) -> None:
    plan = await calculator.planner.plan(ToolInput(text="what is 12 * 12?"), [])
    assert plan.planner.startswith(f"{OFFLINE_LABEL}, after the LLM failed: ")
    assert plan.tool.name == "arithmetic"


@pytest.mark.parametrize("calculator", [{"timeout": 0.05}], indirect=True)
async def test_the_planner_falls_back_when_the_model_is_slow(calculator: AgentRuntime) -> None:
    plan = await calculator.planner.plan(ToolInput(text="what is 12 * 12?"), [])
    assert "timed out" in plan.planner and plan.tool.name == "arithmetic"


def verdicts() -> list[Verdict]:
    records = [
        {
            "id": "p/calc",
            "name": "Calculator",
            "skills": [{"name": "Arithmetic", "description": "exact arithmetic on numbers"}],
        },
        {
            "id": "p/weather",
            "name": "Weather",
            "skills": [{"name": "Forecast", "description": "weather forecasts for a city"}],
        },
    ]
    return [Verdict(profile_from_record(r), 0.5, 0) for r in records]


async def test_the_judge_answers_in_its_schema(server: LocalLlmServer) -> None:
    """In plain JSON mode a 135M model may ramble until max_tokens cuts its JSON; constrained
    to the judge's schema (ids from the listing, short reasons) it answers what was asked."""
    async with backend(server, max_tokens=256) as llm:
        judge = LlmJudge(llm, timeout_s=120, json_schema=True)
        vetoes, mode = await judge.vetoes("what is 2 + 2?", verdicts())
    assert mode == f"llm judge ({MODEL_ALIAS})", mode
    assert set(vetoes) <= {"p/calc", "p/weather"}
    assert all(reason.startswith("llm judge") for reason in vetoes.values())


async def test_a_grammar_that_breaks_json_keeps_the_offline_verdicts(
    server: LocalLlmServer,
) -> None:
    async with backend(server) as llm:
        judge = LlmJudge(llm, timeout_s=120, extra={"grammar": 'root ::= "no json here"'})
        vetoes, mode = await judge.vetoes("what is 2 + 2?", verdicts())
    assert vetoes == {}
    assert mode == "llm judge failed (JSONDecodeError); offline verdicts kept"
