"""Execute: the built-in tools every agent file can name (``tools = ["arithmetic", ...]``)."""

from __future__ import annotations

from noosphere.agents.tools.builtin.arithmetic import ArithmeticTool
from noosphere.agents.tools.builtin.business_days import BusinessDaysTool
from noosphere.agents.tools.builtin.csv_json import CsvJsonTool
from noosphere.agents.tools.builtin.keywords import KeywordsTool
from noosphere.agents.tools.builtin.readability import ReadabilityTool
from noosphere.agents.tools.builtin.summarize import SummarizeTool
from noosphere.agents.tools.builtin.timezone import TimezoneTool
from noosphere.agents.tools.builtin.units import UnitConvertTool

__all__ = [
    "ArithmeticTool",
    "BusinessDaysTool",
    "CsvJsonTool",
    "KeywordsTool",
    "ReadabilityTool",
    "SummarizeTool",
    "TimezoneTool",
    "UnitConvertTool",
]
