"""Execute: the ``readability`` tool. Word, sentence and syllable counts, Flesch reading ease,
Flesch-Kincaid grade level and the sentences that are too long, explained in plain words."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from noosphere.agents.tools.base import (
    BoundedText,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
)
from noosphere.agents.tools.inputs import document
from noosphere.agents.tools.sentences import split_sentences, words

LONG_SENTENCE_WORDS = 25
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_SOUNDED_ES = ("ses", "xes", "zes", "ches", "shes", "ges", "ces", "ees", "ies")
# Flesch reading ease bands (Flesch 1948) and what they mean.
_BANDS = (
    (90, "very easy"),
    (80, "easy"),
    (70, "fairly easy"),
    (60, "plain English"),
    (50, "fairly difficult"),
    (30, "difficult"),
    (float("-inf"), "very difficult"),
)


class ReadabilityArgs(BaseModel):
    text: BoundedText = Field(description="the text to assess")
    long_sentence_words: int = Field(LONG_SENTENCE_WORDS, ge=5, le=200)


def syllables(word: str) -> int:
    """Syllables of an English word: vowel groups, minus a silent final -e, -ed or -es
    ("make", "jumped", "makes", but not "table", "wanted", "boxes"); at least 1."""
    w = word.lower().strip("'\u2019")
    count = len(_VOWEL_GROUPS.findall(w))
    silent = (
        (w.endswith("e") and not w.endswith(("le", "ee", "ye")))
        or (w.endswith("ed") and not w.endswith(("ted", "ded", "eed")))
        or (w.endswith("es") and not w.endswith(_SOUNDED_ES))
    )
    return max(1, count - 1 if silent and count > 1 else count)


def band(ease: float) -> str:
    return next(label for floor, label in _BANDS if ease >= floor)


class ReadabilityTool(Tool[ReadabilityArgs]):
    name = "readability"
    description = (
        "Readability of a text: word, sentence and syllable counts, Flesch reading ease, "
        "Flesch-Kincaid grade level and a list of overly long sentences."
    )
    examples = [
        "how readable is this paragraph?",
        "compute the Flesch reading ease of this text",
        "what grade level is this essay?",
        "find the long sentences in this draft",
    ]
    args_model = ReadabilityArgs

    def extract(self, request: ToolInput) -> ReadabilityArgs:
        return ReadabilityArgs(text=document(request, "text should I assess").body)

    def run(self, args: ReadabilityArgs, ctx: ToolContext) -> ToolResult:
        sentences = split_sentences(args.text)
        per_sentence = [words(s) for s in sentences]
        all_words = [w for ws in per_sentence for w in ws]
        if not all_words:
            raise ToolError("the text has no words to assess")
        n_words, n_sentences = len(all_words), len(sentences)
        n_syllables = sum(syllables(w) for w in all_words)
        words_per_sentence = n_words / n_sentences
        syllables_per_word = n_syllables / n_words
        ease = round(206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word, 1)
        grade = round(0.39 * words_per_sentence + 11.8 * syllables_per_word - 15.59, 1)
        long = [
            {"index": i, "words": len(ws), "sentence": s}
            for i, (s, ws) in enumerate(zip(sentences, per_sentence, strict=True))
            if len(ws) > args.long_sentence_words
        ]
        text = (
            f"{n_words} words in {n_sentences} sentences ({n_syllables} syllables). "
            f"Flesch reading ease {ease} ({band(ease)}), Flesch-Kincaid grade {grade}. "
            + (
                f"{len(long)} sentence{' has' if len(long) == 1 else 's have'} more than "
                f"{args.long_sentence_words} words."
                if long
                else f"No sentence has more than {args.long_sentence_words} words."
            )
        )
        return ToolResult(
            text=text,
            data={
                "words": n_words,
                "sentences": n_sentences,
                "syllables": n_syllables,
                "words_per_sentence": round(words_per_sentence, 2),
                "syllables_per_word": round(syllables_per_word, 3),
                "flesch_reading_ease": ease,
                "flesch_kincaid_grade": grade,
                "interpretation": band(ease),
                "long_sentences": long,
            },
            media_type="application/json",
        )
