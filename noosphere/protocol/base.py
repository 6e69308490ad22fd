"""Wire formats (all phases): the pydantic base every wire model derives from: camelCase on the
wire, snake_case in Python, unknown fields rejected unless a model opts in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base for wire models: camelCase aliases, strict about unknown fields, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as it goes on the wire (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_signable(self) -> dict[str, Any]:
        """The dict a signature covers. Python mode keeps non-finite floats as floats, so
        canonical JSON refuses them instead of pydantic turning them into ``null``."""
        return self.model_dump(mode="python", by_alias=True, exclude_none=True)


def one_line(text: str) -> str:
    """Collapse a multi-line message (YAML, SQLite, pydantic) to one line for CLI errors."""
    return " ".join(text.split())


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as one line: ``field.path: message``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(value)"
    message = first["msg"].removeprefix("Value error, ")
    more = exc.error_count() - 1
    return one_line(f"{where}: {message}" + (f" (and {more} more problems)" if more else ""))
