"""Execute: the tool contract. A tool turns a requester's message into validated arguments
(``parse``, deterministic, no LLM) and does one bounded job with them (``run``, blocking);
``run_tool`` runs it off the event loop under a deadline and turns every failure into a
one-line ``ToolError``."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from noosphere.errors import AgentError
from noosphere.protocol.base import describe_validation_error, one_line

if TYPE_CHECKING:
    from noosphere.models.embedding import Embedder

MAX_INPUT_BYTES = 200_000
"""Largest request (text + data + files) a built-in tool accepts: bounded work on bounded input."""

BoundedText = Annotated[str, Field(max_length=MAX_INPUT_BYTES)]
"""A string argument no longer than the input limit (checked again when args are validated)."""


class ToolError(AgentError):
    """A tool could not do its job; ``str(exc)`` is one line shown to the requester."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class MissingArguments(ToolError):
    """The request lacks something the tool needs: the task goes to input-required."""

    def __init__(self, question: str, fields: list[str]) -> None:
        super().__init__(question)
        self.question = one_line(question)
        self.fields = list(fields)


class ToolTimeout(ToolError):
    """The tool did not finish before its deadline."""


@dataclass(frozen=True)
class InputFile:
    """One file part of the request, already decoded from base64."""

    name: str | None
    media_type: str | None
    content: bytes

    def text(self) -> str:
        """The content as UTF-8 text (a BOM is dropped); ToolError if it is not text."""
        try:
            return self.content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ToolError(f"file {self.name or '(unnamed)'} is not UTF-8 text") from exc


@dataclass(frozen=True)
class ToolInput:
    """What the requester sent, already decoded from A2A message parts."""

    text: str
    data: Sequence[Any] = ()
    files: Sequence[InputFile] = ()

    def size(self) -> int:
        """Approximate size in bytes of everything sent (text, files and data parts)."""
        return (
            len(self.text.encode("utf-8"))
            + sum(len(f.content) for f in self.files)
            + sum(len(repr(item)) for item in self.data)
        )


@dataclass(frozen=True)
class ToolContext:
    """What a running tool may use besides its arguments."""

    embedder: Embedder


class ToolResult(BaseModel):
    """A tool's answer: always a human-readable text, plus structured data when there is one."""

    text: str
    data: Any | None = None
    media_type: str = "text/plain"


ArgsT = TypeVar("ArgsT", bound=BaseModel)


def check_size(request: ToolInput, limit: int = MAX_INPUT_BYTES) -> None:
    """ToolError when the request is larger than ``limit`` bytes."""
    size = request.size()
    if size > limit:
        raise ToolError(f"input too large: {size} bytes (the limit is {limit} bytes)")


class Tool(ABC, Generic[ArgsT]):
    """One capability of an agent: ``parse`` a request into ``args_model``, then ``run`` it."""

    name: ClassVar[str]
    description: ClassVar[str]
    examples: ClassVar[list[str]]
    args_model: ClassVar[type[BaseModel]]

    def parse(self, request: ToolInput) -> ArgsT:
        """Arguments from the request: a data part shaped like ``args_model`` wins, otherwise
        ``extract`` reads them from the text and files. Raises MissingArguments or ToolError."""
        check_size(request)
        structured = self.args_from_data(request)
        if structured is not None:
            return structured
        return self.extract(request)

    def args_from_data(self, request: ToolInput) -> ArgsT | None:
        """The first data part that is an object whose keys are all argument names, validated."""
        fields = set(self.args_model.model_fields)
        for item in request.data:
            if isinstance(item, dict) and item and set(item) <= fields:
                return self.validate(item)
        return None

    def extract(self, request: ToolInput) -> ArgsT:
        """Arguments from the free text and files; tools override this."""
        required = [n for n, f in self.args_model.model_fields.items() if f.is_required()]
        raise MissingArguments(
            f"Please send the arguments of {self.name} as a JSON object with: "
            + ", ".join(required or list(self.args_model.model_fields)),
            required,
        )

    def validate(self, args: BaseModel | Mapping[str, Any]) -> ArgsT:
        """``args`` checked against ``args_model``; a pydantic error is a one-line ToolError."""
        raw = args.model_dump() if isinstance(args, BaseModel) else dict(args)
        try:
            # args_model is type[ArgsT] by contract (a ClassVar cannot name the class's type var)
            return self.args_model.model_validate(raw)  # type: ignore[return-value]
        except ValidationError as exc:
            raise ToolError(
                f"bad arguments for tool {self.name!r}: {describe_validation_error(exc)}"
            ) from exc

    @abstractmethod
    def run(self, args: ArgsT, ctx: ToolContext) -> ToolResult:
        """Do the job (blocking; called in a worker thread)."""

    def json_schema(self) -> dict[str, Any]:
        """The tool in OpenAI function-calling shape: name, description, parameters."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.args_model.model_json_schema(),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '?')!r}>"


def check_tool(tool: object, where: str) -> Tool[Any]:
    """``tool`` if it is a complete Tool (name, description, examples, args_model)."""
    if not isinstance(tool, Tool):
        raise ToolError(f"{where}: {type(tool).__name__} is not a Tool")
    for attr, kind in (("name", str), ("description", str), ("examples", list)):
        if not isinstance(getattr(tool, attr, None), kind):
            raise ToolError(f"{where}: tool class {type(tool).__name__} lacks a {attr}")
    model = getattr(tool, "args_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ToolError(f"{where}: tool class {type(tool).__name__} lacks a pydantic args_model")
    if not tool.name:
        raise ToolError(f"{where}: tool class {type(tool).__name__} has an empty name")
    return tool


class Toolbox:
    """The tools one agent has, by name."""

    def __init__(self, tools: Iterable[Tool[Any]] = ()) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool[Any]) -> None:
        check_tool(tool, "toolbox")
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool[Any]:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise ToolError(f"no tool named {name!r} (known tools: {known})") from None

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.json_schema() for tool in self._tools.values()]

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools


async def run_tool(
    tool: Tool[Any],
    args: BaseModel | Mapping[str, Any],
    ctx: ToolContext,
    *,
    timeout: float,
) -> ToolResult:
    """Validate ``args``, run the tool in a worker thread under ``timeout`` seconds.

    Never lets a raw exception out: ToolError passes through, the deadline becomes ToolTimeout
    and anything else becomes ToolError("tool 'x' crashed: Type: message"). A timed-out thread
    cannot be killed; it finishes in the background (built-in tools bound their work so it ends).
    """
    valid = tool.validate(args)
    try:
        async with asyncio.timeout(timeout) as deadline:
            result = await asyncio.to_thread(tool.run, valid, ctx)
    except ToolError:
        raise
    except TimeoutError as exc:
        if deadline.expired():
            raise ToolTimeout(f"tool {tool.name!r} took longer than {float(timeout)} s") from exc
        raise ToolError(f"tool {tool.name!r} crashed: TimeoutError: {exc}") from exc
    except Exception as exc:
        raise ToolError(f"tool {tool.name!r} crashed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, ToolResult):
        raise ToolError(f"tool {tool.name!r} returned {type(result).__name__}, not a ToolResult")
    return result
