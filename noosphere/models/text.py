"""Recruit and Execute (shared): which part of a request's text to embed. The planner matches
tools on it and MARS searches agents with it, so both read a request the same way."""

from __future__ import annotations

import re

_SEPARATOR_COLON = re.compile(r":(?:\s|$)")
#: A head of at most this many words before a colon may be a label ("Task:", "Quick question:").
_LABEL_WORDS = 3
_MAX_INSTRUCTION = 300


def instruction_of(text: str) -> str:
    """The instruction part of a request: up to a colon or the first line or sentence, so
    "summarize this: <long report>" is matched on "summarize this". Only a colon that ends a
    word counts, not one inside a time ("9:30") or a URL ("https://..."). A capitalized head of
    at most three words followed, on the same line, by a request of three words or more is a
    label, not an instruction: "Task: list every person in a document" is read as "list every
    person in a document" (and "Task: summarize this: <report>" as "summarize this")."""
    head = text.strip().split("\n", 1)[0]
    colon = _SEPARATOR_COLON.search(head)
    if colon is not None and 0 < colon.start() <= 200:
        before, after = head[: colon.start()], head[colon.end() :].strip()
        if _is_label(before, after):
            return instruction_of(text.strip()[colon.end() :])
        return before
    match = re.search(r"[.?!]\s", head)
    if match and match.start() < _MAX_INSTRUCTION:
        return head[: match.start() + 1]
    return head[:_MAX_INSTRUCTION]


def _is_label(before: str, after: str) -> bool:
    words = before.split()
    return (
        0 < len(words) <= _LABEL_WORDS
        and words[0][0].isupper()
        and len(after.split()) >= 3
        and len(after) <= _MAX_INSTRUCTION
    )
