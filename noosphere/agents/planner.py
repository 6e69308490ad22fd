"""Execute: choosing the tool and its arguments for a request.

Two planners share one contract. ``EmbeddingPlanner`` is the offline default: it embeds the
request and picks the tool whose description, skills and examples are closest (cosine, with
all-MiniLM-L6-v2), then lets the tool parse its own arguments from the text; it is labelled
"offline embedding match, no LLM" wherever its output is shown. ``LlmPlanner`` asks any
OpenAI-compatible chat endpoint to call one of the tools (function calling) and falls back to the
embedding planner, saying so, when the endpoint fails or answers without a usable tool call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

from noosphere.errors import AgentError
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend, LlmError
from noosphere.models.text import instruction_of

from .memory import Recalled
from .persona import Persona
from .spec import SkillSpec
from .tools import Tool, Toolbox, ToolError, ToolInput

OFFLINE_LABEL = "offline embedding match (no LLM)"

#: Below this cosine similarity no tool is considered a fit for the request.
MIN_TOOL_SIMILARITY = 0.2


class NoToolFits(AgentError):
    """No tool of the agent matches the request well enough; the message says what came closest."""


@dataclass(frozen=True, slots=True)
class Plan:
    tool: Tool[Any]
    args: BaseModel
    planner: str  # shown to the requester: which planner decided, honestly labelled
    similarity: float | None = None  # for the embedding planner
    notes: list[str] = field(default_factory=list)


class Planner(Protocol):
    async def plan(self, request: ToolInput, recalled: list[Recalled]) -> Plan:
        """A tool and validated arguments; raises MissingArguments, ToolError or NoToolFits."""
        ...


class EmbeddingPlanner:
    def __init__(
        self,
        toolbox: Toolbox,
        skills: list[SkillSpec],
        embedder: Embedder,
        skill_tools: Mapping[str, str] | None = None,
    ) -> None:
        """``skill_tools`` maps a skill id to the name of the tool serving it (as loaded); without
        it a skill's tool reference must be the tool's name or ``builtin:<name>``."""
        self._toolbox = toolbox
        self._embedder = embedder
        self._texts: list[str] = []
        self._owners: list[str] = []
        for tool in toolbox:
            for text in (tool.description, *tool.examples):
                self._add(tool.name, text)
        for skill in skills:
            owner = self._owner(skill, skill_tools)
            if owner is None:
                continue
            for text in (f"{skill.name}: {skill.description}", *skill.examples):
                self._add(owner, text)
        self._vectors: np.ndarray | None = None

    def _owner(self, skill: SkillSpec, skill_tools: Mapping[str, str] | None) -> str | None:
        """The name of the tool in the toolbox that serves ``skill``, or None."""
        if skill.tool is None:
            return None
        name = skill_tools.get(skill.id) if skill_tools is not None else None
        if name is None:  # a built-in reference names its tool
            name = skill.tool.strip().removeprefix("builtin:").strip()
        return name if name in self._toolbox else None

    def _add(self, owner: str, text: str) -> None:
        if text.strip():
            self._owners.append(owner)
            self._texts.append(text)

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every tool with its best similarity to ``text`` or to its instruction (the words
        before a document it carries), best first (blocking)."""
        if self._vectors is None:
            self._vectors = self._embedder.encode(self._texts)
        queries = self._embedder.encode([text[:4000], instruction_of(text)])
        scores = (self._vectors @ queries.T).max(axis=1)
        best: dict[str, float] = {}
        for owner, score in zip(self._owners, scores.tolist(), strict=True):
            best[owner] = max(best.get(owner, -1.0), score)
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))

    async def plan(self, request: ToolInput, recalled: list[Recalled]) -> Plan:
        if not len(self._toolbox):
            raise NoToolFits("this agent has no tools")
        ranking = await asyncio.to_thread(self.rank, request.text or "(data only)")
        name, score = ranking[0]
        if score < MIN_TOOL_SIMILARITY:
            raise NoToolFits(
                f"no tool of this agent fits the request (closest: {name} at {score:.2f})"
            )
        tool = self._toolbox.get(name)
        args = await asyncio.to_thread(tool.parse, request)
        notes = [f"chose {name} (similarity {score:.2f})"]
        if len(ranking) > 1:
            notes.append(f"runner-up {ranking[1][0]} ({ranking[1][1]:.2f})")
        return Plan(tool, args, OFFLINE_LABEL, score, notes)


class LlmPlanner:
    def __init__(
        self,
        backend: LlmBackend,
        toolbox: Toolbox,
        persona: Persona,
        fallback: EmbeddingPlanner,
    ) -> None:
        self._backend = backend
        self._toolbox = toolbox
        self._persona = persona
        self._fallback = fallback

    async def plan(self, request: ToolInput, recalled: list[Recalled]) -> Plan:
        label = f"LLM function calling ({self._backend.config.model})"
        system = self._persona.system_prompt()
        if recalled:
            system += "\nRelated past tasks:\n" + "\n".join(
                f"- {r.episode.request[:200]} -> {r.episode.result[:200]}" for r in recalled
            )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": request.text},
        ]
        try:
            reply = await self._backend.chat(messages, tools=self._toolbox.schemas())
            if not reply.tool_calls:
                raise LlmError("the model answered without calling a tool")
            call = reply.tool_calls[0]
            tool = self._toolbox.get(call.name)
            args = tool.validate(call.arguments)
        except (LlmError, ToolError) as exc:
            plan = await self._fallback.plan(request, recalled)
            return Plan(
                plan.tool,
                plan.args,
                f"{OFFLINE_LABEL}, after the LLM failed: {exc}",
                plan.similarity,
                plan.notes,
            )
        return Plan(tool, args, label, None, [f"the model called {call.name}"])
