"""Execute: splitting prose into sentences and words, shared by the text tools (summary,
readability). Rule based: sentence ends, blank lines and list items, with common abbreviations."""

from __future__ import annotations

import re

_ABBREVIATION_TEXT = (
    "mr mrs ms dr prof sr jr st vs etc e.g i.e cf al fig no approx inc ltd co corp dept est "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
_BLOCKS = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_END = re.compile(r"([.!?…]+[\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019.-][A-Za-z0-9]+)*")


def _ends_with_abbreviation(chunk: str) -> bool:
    last = chunk.rsplit(None, 1)[-1].rstrip(".").lower() if chunk.strip() else ""
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order, whitespace collapsed, empty ones dropped."""
    sentences: list[str] = []
    for block in _BLOCKS.split(text):
        block = " ".join(block.split())
        start = 0
        for match in _END.finditer(block):
            candidate = block[start : match.end(1)]
            if match.group(1) == "." and _ends_with_abbreviation(candidate):
                continue
            sentences.append(candidate.strip())
            start = match.end()
        if block[start:].strip():
            sentences.append(block[start:].strip())
    return [s for s in sentences if any(c.isalnum() for c in s)]


def words(text: str) -> list[str]:
    """Word tokens (letters and digits, with inner apostrophes, hyphens and dots)."""
    return _WORD.findall(text)
