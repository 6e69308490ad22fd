"""Execute: the agent toolbox. Tools turn a task's message into validated arguments and do one
bounded, deterministic job; ``run_tool`` runs one off the event loop under a deadline."""

from __future__ import annotations

from noosphere.agents.tools.base import (
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
    run_tool,
)
from noosphere.agents.tools.registry import BUILTIN_TOOLS, load_tool, load_toolbox

__all__ = [
    "BUILTIN_TOOLS",
    "MAX_INPUT_BYTES",
    "InputFile",
    "MissingArguments",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolInput",
    "ToolResult",
    "ToolTimeout",
    "Toolbox",
    "load_tool",
    "load_toolbox",
    "run_tool",
]
