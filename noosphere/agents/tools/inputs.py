"""Execute: reading a request. Helpers the built-in tools share to find the document a request
carries (text after the instruction, data parts or text files) and small counts it asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from noosphere.agents.tools.base import MissingArguments, ToolInput

_INSTRUCTION_MAX = 200
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
}  # fmt: skip
_COUNT = r"(\d{1,4}|" + "|".join(_NUMBER_WORDS) + r")"
_TEXT_MEDIA = ("text/", "application/json", "application/xml")


@dataclass(frozen=True)
class Split:
    """A request's text cut into the instruction and the document it applies to."""

    instruction: str
    body: str


def split_instruction(text: str) -> Split:
    """The instruction is the text before the first colon of a short first line, or the short
    first line itself when more lines follow; the rest is the document. Otherwise there is no
    document in the text and everything is the instruction."""
    stripped = text.strip()
    first, _, rest = stripped.partition("\n")
    head, colon, tail = first.partition(":")
    if colon and len(head) <= _INSTRUCTION_MAX and (tail.strip() or rest.strip()):
        return Split(head.strip(), (tail + "\n" + rest).strip())
    if rest.strip() and len(first) <= _INSTRUCTION_MAX:
        return Split(first.strip(), rest.strip())
    return Split(stripped, "")


def is_text_file(media_type: str | None, name: str | None) -> bool:
    if media_type:
        return media_type.split(";")[0].strip().lower().startswith(_TEXT_MEDIA)
    return True  # untyped files are tried as UTF-8 text


def attached_text(request: ToolInput) -> str:
    """Text carried outside the message text: string data parts, {"text": ...} objects and
    text files, joined by blank lines."""
    pieces: list[str] = []
    for item in request.data:
        if isinstance(item, str):
            pieces.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            pieces.append(item["text"])
    pieces.extend(f.text() for f in request.files if is_text_file(f.media_type, f.name))
    return "\n\n".join(p.strip() for p in pieces if p.strip())


def document(request: ToolInput, what: str) -> Split:
    """The document a request is about, with the instruction that came with it; asks for the
    document (MissingArguments, field "text") when there is none. ``what`` names it in the
    question, e.g. "text to summarize"."""
    attached = attached_text(request)
    if attached:
        return Split(request.text.strip(), attached)
    split = split_instruction(request.text)
    if not split.body:
        raise MissingArguments(
            f"Which {what}? Send it after the instruction (on the next line) or as a text file.",
            ["text"],
        )
    return split


def requested_count(instruction: str, nouns: str, default: int, *, limit: int) -> int:
    """A count asked for in the instruction ("in 3 sentences", "top five keywords"), where
    ``nouns`` is a regex of the counted things; ``default`` when none, capped to 1..limit."""
    patterns = (
        rf"\b{_COUNT}\s+(?:\w+\s+){{0,2}}?(?:{nouns})\b",
        rf"\btop\s+{_COUNT}\b",
    )
    for pattern in patterns:
        match = re.search(pattern, instruction, re.IGNORECASE)
        if match:
            word = match.group(1).lower()
            value = _NUMBER_WORDS.get(word) or int(word)
            return max(1, min(value, limit))
    return default
