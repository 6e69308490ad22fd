"""Recruit and Execute (shared): which part of a request's text to embed. The planner matches
tools on it and MARS searches agents with it, so both read a request the same way."""

from __future__ import annotations

import re

_SEPARATOR_COLON = re.compile(r":(?:\s|$)")


def instruction_of(text: str) -> str:
    """The instruction part of a request: up to a colon or the first line or sentence, so
    "summarize this: <long report>" is matched on "summarize this". Only a colon that ends a
    word counts, not one inside a time ("9:30") or a URL ("https://...")."""
    head = text.strip().split("\n", 1)[0]
    colon = _SEPARATOR_COLON.search(head)
    if colon is not None and 0 < colon.start() <= 200:
        return head[: colon.start()]
    match = re.search(r"[.?!]\s", head)
    return head[: match.start() + 1] if match and match.start() < 300 else head[:300]
