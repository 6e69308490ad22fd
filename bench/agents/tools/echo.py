"""The echo tool of bench/rpc.py's agent (bench/agents/echo.yaml): returns the request text.
Trivial on purpose, so the benchmark measures the node (RPC, task manager, store, agent
runtime), not the tool."""

from __future__ import annotations

from pydantic import BaseModel, Field

from noosphere.agents.tools import Tool, ToolContext, ToolInput, ToolResult


class EchoArgs(BaseModel):
    text: str = Field(max_length=200_000, description="the text to send back")


class EchoTool(Tool[EchoArgs]):
    name = "echo"
    description = "Echo: send the request text back unchanged."
    examples = ["hello", "echo this back to me"]
    args_model = EchoArgs

    def extract(self, request: ToolInput) -> EchoArgs:
        return EchoArgs(text=request.text)

    def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
        return ToolResult(text=args.text)
