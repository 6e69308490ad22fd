"""Execute: one agent at work. A turn goes through the persona's refusal rules, recalls related
episodes from memory, asks the planner for a tool and its arguments (or for the question to ask
when something is missing: ``input-required``), runs the tool under its deadline, returns the
result as an artifact and remembers the episode. Tool failures fail the task with the tool's
one-line reason; nothing an agent does can take the node down.

Memory is scoped by the turn's principal (who sent the task): a turn recalls only its own
requester's episodes, so neither the result's ``recalled`` ids nor the LLM planner's prompt can
carry another requester's task. A task with sealed parts is remembered only if the agent file
allows it (``memory.sealed``; by default its opened text never reaches the memory file)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import structlog

from noosphere.abe.authority import node_keys
from noosphere.abe.keys import AttributeKey
from noosphere.abe.sealed import SealedPartError, is_sealed, open_message
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.protocol.a2a import Artifact, Message, Part, Role, TaskState
from noosphere.protocol.base import one_line

from .memory import AgentMemoryError, EpisodicMemory, Recalled
from .persona import Persona
from .planner import EmbeddingPlanner, LlmPlanner, NoToolFits, Plan, Planner
from .spec import AgentSpec
from .tools import (
    InputFile,
    MissingArguments,
    Toolbox,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
    load_tool,
    run_tool,
)
from .tools.registry import resolve_object
from .turn import TaskAgent, Turn, TurnResult, TurnSink

log = structlog.get_logger("noosphere.agent")

MEMORY_FILENAME = "memory.db"


def build_toolbox(spec: AgentSpec) -> Toolbox:
    """The tools named by the agent's skills (each loaded once, in skill order)."""
    return load_skill_tools(spec)[0]


def load_skill_tools(spec: AgentSpec) -> tuple[Toolbox, dict[str, str]]:
    """The agent's toolbox and, for every skill that names a tool, the name of the tool serving
    it (a file or module reference like ``tools/flaky.py:FlakyArithmetic`` only tells its tool's
    name once loaded). Two skills naming the same tool share it; two *different* tools claiming
    one name are a ToolError (otherwise one skill would silently run the other's tool)."""
    toolbox = Toolbox()
    skill_tools: dict[str, str] = {}
    for skill in spec.skills:
        if skill.tool is None:
            continue
        tool = load_tool(skill.tool, base_dir=spec.base_dir)
        if tool.name in toolbox:
            existing = toolbox.get(tool.name)
            if type(existing) is not type(tool):
                raise ToolError(
                    f"skill {skill.name!r}: tool {skill.tool!r} is named {tool.name!r}, like the"
                    f" {type(existing).__name__} another skill uses; tool names must be unique"
                )
        else:
            toolbox.register(tool)
        skill_tools[skill.id] = tool.name
    return toolbox, skill_tools


def tool_input(messages: list[Message]) -> ToolInput:
    """Everything the requester said in this task, as a tool sees it (text of every user
    message, so an answer to a question completes the original request)."""
    texts: list[str] = []
    data: list[Any] = []
    files: list[InputFile] = []
    for message in messages:
        if message.role != Role.USER:
            continue
        for part in message.parts:
            if part.text is not None:
                texts.append(part.text)
            elif part.data is not None:
                data.append(part.data)
            elif part.raw is not None:
                files.append(InputFile(part.filename, part.media_type, part.content_bytes or b""))
    return ToolInput(text="\n".join(texts), data=tuple(data), files=tuple(files))


def result_artifact(plan: Plan, result: ToolResult, recalled: list[Recalled]) -> Artifact:
    parts = [Part.of_text(result.text)]
    if result.data is not None:
        if isinstance(result.data, str):
            parts.append(Part.of_text(result.data, media_type=result.media_type))
        else:
            parts.append(Part.of_data(result.data, media_type=result.media_type))
    return Artifact(
        artifact_id=str(uuid.uuid4()),
        name=f"{plan.tool.name} result",
        parts=parts,
        metadata={
            "noosphere": {
                "tool": plan.tool.name,
                "planner": plan.planner,
                "similarity": None if plan.similarity is None else round(plan.similarity, 4),
                "recalled": [
                    {"taskId": r.episode.task_id, "score": round(r.score, 4)} for r in recalled
                ],
            }
        },
    )


class AgentRuntime:
    """Persona + toolbox + memory + planner for one agent; implements ``TaskAgent``."""

    def __init__(
        self,
        spec: AgentSpec,
        toolbox: Toolbox,
        memory: EpisodicMemory,
        embedder: Embedder,
        llm: LlmBackend | None = None,
        skill_tools: Mapping[str, str] | None = None,
        attribute_keys: Sequence[AttributeKey] = (),
    ) -> None:
        self.spec = spec
        self.agent_id = spec.id
        self.attribute_keys = list(attribute_keys)  # opens parts sealed under a policy
        self.input_modes = frozenset(
            [*spec.input_modes, *(m for skill in spec.skills for m in skill.input_modes)]
        )
        self.output_modes = frozenset(
            [*spec.output_modes, *(m for skill in spec.skills for m in skill.output_modes)]
        )
        self.toolbox = toolbox
        self.memory = memory
        self.persona = Persona(spec, embedder)
        self._embedder = embedder
        self._ctx = ToolContext(embedder=embedder)
        offline = EmbeddingPlanner(toolbox, spec.skills, embedder, skill_tools)
        self.planner: Planner = (
            offline if llm is None else LlmPlanner(llm, toolbox, self.persona, offline)
        )

    @classmethod
    def create(
        cls, spec: AgentSpec, home: Path, embedder: Embedder, llm: LlmBackend | None = None
    ) -> AgentRuntime:
        toolbox, skill_tools = load_skill_tools(spec)  # before the memory: a bad tool leaks nothing
        keys = [key for key, _ in node_keys(home)]
        memory = EpisodicMemory(home / MEMORY_FILENAME, spec.id, embedder)
        return cls(spec, toolbox, memory, embedder, llm, skill_tools, keys)

    def close(self) -> None:
        self.memory.close()

    def tool_schemas(self) -> list[dict[str, Any]]:
        return self.toolbox.schemas()

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        """One turn; never raises (except cancellation): an unexpected error in a planner, a
        tool's ``parse`` or the embedder fails the task with a one-line reason."""
        try:
            return await self._run_turn(turn, sink)
        except Exception as exc:
            log.exception("agent turn crashed", agent=self.agent_id, task=turn.task_id)
            return TurnResult(
                TaskState.FAILED,
                one_line(f"{self.spec.name} failed: {type(exc).__name__}: {exc}"),
            )

    async def _run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        sealed = any(is_sealed(p) for m in (*turn.history, turn.message) for p in m.parts)
        try:  # sealed parts are opened here, in memory; the node stores only the sealed form
            messages = [open_message(m, self.attribute_keys) for m in (*turn.history, turn.message)]
        except SealedPartError as exc:
            return TurnResult(TaskState.REJECTED, f"{self.spec.name} cannot read this task: {exc}")
        turn = dataclasses.replace(turn, message=messages[-1], history=tuple(messages[:-1]))
        request = tool_input(messages)
        refusal = await asyncio.to_thread(self.persona.refusal, turn.message.text)
        if refusal is not None:
            return TurnResult(
                TaskState.REJECTED,
                f"{self.spec.name} does not take requests about {refusal.rule!r}",
            )
        await sink.progress("recalling related tasks")
        if request.text.strip():  # the request's vector, from a pass shared with the turns in
            # flight (no thread held while it forms): recall, planner and memory hit the cache
            await self._embedder.aencode([request.text])
        recalled = await self._recall(request.text, turn)
        await sink.progress(
            "planning" + (f" with {len(recalled)} related tasks" if recalled else "")
        )
        try:
            plan = await self.planner.plan(request, recalled)
        except MissingArguments as exc:
            return TurnResult(TaskState.INPUT_REQUIRED, exc.question, {"missing": exc.fields})
        except NoToolFits as exc:
            return TurnResult(TaskState.REJECTED, str(exc))
        except ToolError as exc:
            return TurnResult(TaskState.FAILED, str(exc))
        await sink.progress(f"running tool {plan.tool.name}; planner: {plan.planner}")
        try:
            result = await run_tool(
                plan.tool, plan.args, self._ctx, timeout=self.spec.tool_timeout_s
            )
        except MissingArguments as exc:
            return TurnResult(TaskState.INPUT_REQUIRED, exc.question, {"missing": exc.fields})
        except ToolError as exc:
            await self._remember(turn, request.text, str(exc), "failed", sealed=sealed)
            return TurnResult(TaskState.FAILED, str(exc))
        await sink.artifact(result_artifact(plan, result, recalled))
        await self._remember(turn, request.text, result.text, "completed", sealed=sealed)
        label = f"[{self.spec.name} · tool {plan.tool.name} · planner: {plan.planner}]"
        return TurnResult(TaskState.COMPLETED, f"{result.text}\n\n{label}")

    async def _recall(self, text: str, turn: Turn) -> list[Recalled]:
        """The requester's own related episodes (never another principal's)."""
        try:
            return await asyncio.to_thread(
                self.memory.recall,
                text,
                principal=turn.principal,
                k=3,
                context_id=turn.context_id,
            )
        except AgentMemoryError as exc:
            log.warning("memory recall failed", agent=self.agent_id, error=str(exc))
            return []

    async def _remember(
        self, turn: Turn, request: str, result: str, outcome: str, *, sealed: bool
    ) -> None:
        if sealed and self.spec.memory.sealed == "none":
            return  # the opened text of a sealed task never reaches the memory file
        try:
            await asyncio.to_thread(
                self.memory.remember,
                principal=turn.principal,
                task_id=turn.task_id,
                context_id=turn.context_id,
                request=request[:4000],
                result=result[:4000],
                outcome=outcome,
            )
        except AgentMemoryError as exc:
            log.warning("memory write failed", agent=self.agent_id, error=str(exc))


def create_agent(
    spec: AgentSpec, home: Path, embedder: Embedder, llm: LlmBackend | None = None
) -> TaskAgent:
    """The agent an agent file describes: the standard runtime (persona, tools, memory,
    planner), or the class its ``runtime`` names ("module:Class" or "file.py:Class" with a
    ``create(spec, home, embedder, llm)`` classmethod returning a ``TaskAgent``)."""
    if spec.runtime is None:
        return AgentRuntime.create(spec, home, embedder, llm)
    cls, attr = resolve_object(spec.runtime, base_dir=spec.base_dir, kind="agent runtime")
    factory = getattr(cls, "create", None)
    if not callable(factory):
        raise ToolError(f"agent runtime {spec.runtime!r}: {attr} has no create() classmethod")
    try:
        agent = factory(spec, home, embedder, llm)
    except Exception as exc:
        raise ToolError(
            f"agent runtime {spec.runtime!r}: create() failed: {type(exc).__name__}: {exc}"
        ) from exc
    missing = [
        name
        for name in ("agent_id", "input_modes", "output_modes", "run_turn", "tool_schemas", "close")
        if not hasattr(agent, name)
    ]
    if missing:
        raise ToolError(f"agent runtime {spec.runtime!r}: the agent lacks {', '.join(missing)}")
    return cast(TaskAgent, agent)
