"""Test tools: one that sleeps for the number of seconds in the request, one that crashes."""

from __future__ import annotations

import re
import time

from pydantic import BaseModel, Field

from noosphere.agents.tools import MissingArguments, Tool, ToolContext, ToolInput, ToolResult


class WaitArgs(BaseModel):
    seconds: float = Field(ge=0, le=60)


class WaitTool(Tool[WaitArgs]):
    name = "wait"
    description = "Wait for a number of seconds, then report how long it waited."
    examples = ["wait 3 seconds", "sleep for 10 seconds"]
    args_model = WaitArgs

    def extract(self, request: ToolInput) -> WaitArgs:
        match = re.search(r"(\d+(?:\.\d+)?)\s*s", request.text)
        if match is None:
            raise MissingArguments("How many seconds should I wait?", ["seconds"])
        return WaitArgs(seconds=float(match.group(1)))

    def run(self, args: WaitArgs, ctx: ToolContext) -> ToolResult:
        time.sleep(args.seconds)
        return ToolResult(text=f"waited {args.seconds:g} s")


class CrashArgs(BaseModel):
    pass


class CrashTool(Tool[CrashArgs]):
    name = "crash"
    description = "Crash on purpose with a division by zero."
    examples = ["crash now", "please crash"]
    args_model = CrashArgs

    def extract(self, request: ToolInput) -> CrashArgs:
        return CrashArgs()

    def run(self, args: CrashArgs, ctx: ToolContext) -> ToolResult:
        return ToolResult(text=str(1 / 0))
