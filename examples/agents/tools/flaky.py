"""A user-written tool for the demo's deliberately unreliable agent (examples/agents/
flaky-bargain.yaml): exact arithmetic that gives up on a share of its tasks, so MARS has a real
bad record to learn from. It shows how to plug your own Python tool into an agent: subclass
``noosphere.agents.tools.Tool`` (here a built-in one) and name ``file.py:Class`` as a skill's
``tool`` in the agent file.

FLAKY_FAILURE_RATE (0..1, default 0.5) sets how often it gives up."""

from __future__ import annotations

import os
import random

from noosphere.agents.tools import ToolContext, ToolError, ToolResult
from noosphere.agents.tools.builtin.arithmetic import ArithmeticArgs, ArithmeticTool


class FlakyArithmetic(ArithmeticTool):
    name = "flaky_arithmetic"
    description = "Evaluate arithmetic expressions, cheaply and unreliably."

    def run(self, args: ArithmeticArgs, ctx: ToolContext) -> ToolResult:
        rate = float(os.environ.get("FLAKY_FAILURE_RATE", "0.5"))
        if random.random() < rate:
            raise ToolError("gave up halfway (this agent is deliberately unreliable)")
        return super().run(args, ctx)
