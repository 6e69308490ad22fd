"""Wire formats (all phases): the pydantic base every wire model derives from: camelCase on the
wire, snake_case in Python, unknown fields rejected unless a model opts in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
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
