"""Publish: the agent file. A TOML, YAML or JSON file describes one agent (name, description,
persona, skills with tags, examples and the tool that serves each, price, attributes); the node
turns it into a signed card and an agent runtime."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from noosphere.errors import SetupError
from noosphere.protocol.base import describe_validation_error, one_line

_SLUG = re.compile(r"[^a-z0-9]+")
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_.-]*:[A-Za-z0-9_.@-]+$")


class AgentFileError(SetupError, ValueError):
    """The agent file cannot be read or does not describe a valid agent."""


def slugify(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "agent"


class SkillSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=2000)
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_modes: list[str] = Field(default_factory=list)
    output_modes: list[str] = Field(default_factory=list)
    tool: str | None = Field(
        None,
        description="the tool serving this skill: a built-in name, module:Class or file.py:Class",
    )

    @model_validator(mode="after")
    def _default_id(self) -> SkillSpec:
        if not self.id:
            self.id = slugify(self.name)
        return self


class PriceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(0, ge=0, description="in the token's smallest unit")
    token: str = "NOOS"
    unit: str = "task"


class PersonaSpec(BaseModel):
    """Who the agent is: its system prompt, style, goals and what it refuses to do."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("", max_length=8000)
    style: str = Field("", max_length=1000)
    goals: list[str] = Field(default_factory=list)
    refuse: list[str] = Field(
        default_factory=list, description="requests about these topics are rejected, with reason"
    )


class MemorySpec(BaseModel):
    """What the agent's episodic memory (``HOME/memory.db``) may keep.

    ``sealed``: what happens to a task whose parts were sealed under an attribute policy (opened
    in memory for the turn). ``"none"`` (the default) stores nothing of it: the requester sealed
    the text so that only holders of certain attributes read it, and a copy at rest in the
    memory file would outlive the task, escape key revocation and reach every backup of the
    home. ``"principal"`` stores it like any task, in the sending principal's scope only (only
    that requester's later tasks recall it), for agents whose requesters want that."""

    model_config = ConfigDict(extra="forbid")

    sealed: Literal["none", "principal"] = Field(
        "none", description="keep sealed tasks in memory: none (default) or principal-scoped"
    )


class AgentSpec(BaseModel):
    """One agent as its operator describes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=4000)
    version: str = "1.0.0"
    organization: str = "noosphere community"
    organization_url: str = "https://github.com/noosphere"
    persona: PersonaSpec = Field(default_factory=PersonaSpec)
    memory: MemorySpec = Field(default_factory=MemorySpec)
    skills: list[SkillSpec] = Field(min_length=1)
    tool_timeout_s: float = Field(10.0, gt=0, le=600)
    runtime: str | None = Field(
        None,
        description="a custom agent class (module:Class or file.py:Class) instead of the"
        " standard persona + tools + memory runtime",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="free-form settings read by a custom runtime"
    )
    _base_dir: Path | None = PrivateAttr(None)  # the agent file's folder: tool paths are relative

    @property
    def base_dir(self) -> Path | None:
        return self._base_dir

    price: PriceSpec = Field(default_factory=PriceSpec)
    access: Literal["operator", "peers", "anyone"] = Field(
        "peers",
        description="who may send it tasks: the node's operator only, signed noosphere peers"
        " (and the operator), or anyone (also anonymous A2A clients, rate-limited per address)",
    )
    attributes: list[str] = Field(default_factory=list)
    input_modes: list[str] = Field(default_factory=lambda: ["text/plain"])
    output_modes: list[str] = Field(default_factory=lambda: ["text/plain"])

    @model_validator(mode="after")
    def _default_id(self) -> AgentSpec:
        if not self.id:
            self.id = slugify(self.name)
        elif self.id != slugify(self.id):
            raise ValueError(f"id {self.id!r} must be lowercase letters, digits and dashes")
        skill_ids = [s.id for s in self.skills]
        if len(set(skill_ids)) != len(skill_ids):
            raise ValueError("skill ids must be unique")
        return self

    @field_validator("persona", mode="before")
    @classmethod
    def _persona_text(cls, value: object) -> object:
        return {"prompt": value} if isinstance(value, str) else value

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: list[str]) -> list[str]:
        for attr in value:
            if not _ATTRIBUTE.match(attr):
                raise ValueError(f"attribute {attr!r} must look like name:value (e.g. org:acme)")
        return sorted(set(value))


def load_agent_spec(path: Path) -> AgentSpec:
    """Read an agent file (.toml, .yaml/.yml or .json); errors name the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentFileError(f"{path}: cannot read agent file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise AgentFileError(f"{path}: agent files must be UTF-8 text ({exc.reason})") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise AgentFileError(f"{path}: agent files are .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise AgentFileError(
            f"{path}: not valid {suffix[1:].upper()}: {one_line(str(exc))}"
        ) from exc
    if not isinstance(data, dict):
        raise AgentFileError(f"{path}: the agent file must be a mapping of fields")
    try:
        spec = AgentSpec.model_validate(data)
    except ValidationError as exc:
        raise AgentFileError(f"{path}: {describe_validation_error(exc)}") from exc
    spec._base_dir = path.resolve().parent
    return spec
