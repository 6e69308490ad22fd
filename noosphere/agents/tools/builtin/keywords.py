"""Execute: the ``keywords`` tool. KeyBERT-style key phrases: candidate 1-3 word phrases without
stopwords are embedded and ranked by similarity to the document, with MMR so the phrases cover
different topics instead of repeating one."""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, Field

from noosphere.agents.tools.base import (
    BoundedText,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
)
from noosphere.agents.tools.inputs import document, requested_count
from noosphere.agents.tools.ranking import centroid, mmr
from noosphere.agents.tools.sentences import split_sentences

DEFAULT_KEYWORDS = 8
MAX_KEYWORDS = 30
MAX_CANDIDATES = 1_000
DIVERSITY = 0.3

_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each even ever every
    few for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just let like made make many may me might more most much must my myself
    new no nor not now of off on once one only or other our ours ourselves out over own per put
    quite rather really said same see seem shall she should since so some still such than that the
    their theirs them themselves then there these they this those though through thus to too two
    under until up upon us use used using very via was way we well were what when where whether
    which while who whom whose why will with within without would yet you your yours yourself
    yourselves get got also however therefore etc"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_CLAUSE = re.compile(r"[.,;:!?()\[\]{}\"\u201c\u201d\u2014\u2013]+|\s-\s|\n")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'\u2019-]*[A-Za-z0-9]|[A-Za-z]")


class KeywordsArgs(BaseModel):
    text: BoundedText = Field(description="the document")
    top: int = Field(DEFAULT_KEYWORDS, ge=1, le=MAX_KEYWORDS, description="how many phrases")


def candidate_phrases(text: str, max_words: int = 3) -> list[str]:
    """Lower-case 1..max_words phrases of consecutive non-stopwords within a clause, most
    frequent first (ties: first seen), capped at MAX_CANDIDATES."""
    counts: Counter[str] = Counter()
    for clause in _CLAUSE.split(text):
        run: list[str] = []
        for token in [*_TOKEN.findall(clause.lower()), ""]:
            if token and token not in STOPWORDS and len(token) > 1:
                run.append(token)
                continue
            for size in range(1, max_words + 1):
                for i in range(len(run) - size + 1):
                    counts[" ".join(run[i : i + size])] += 1
            run = []
    return [phrase for phrase, _ in counts.most_common(MAX_CANDIDATES)]


class KeywordsTool(Tool[KeywordsArgs]):
    name = "keywords"
    description = (
        "Extract the key phrases and main topics of a document (embedding similarity to the "
        "document with diversity), most representative first."
    )
    examples = [
        "what are the main topics of this article?",
        "extract the keywords of this text",
        "list 5 key phrases of these meeting notes",
        "tag this document with its key topics",
    ]
    args_model = KeywordsArgs

    def extract(self, request: ToolInput) -> KeywordsArgs:
        split = document(request, "text should I extract key phrases from")
        top = requested_count(
            split.instruction,
            r"key\s*words?|key\s*phrases?|phrases?|topics?"
            r"|tags?|terms?",
            DEFAULT_KEYWORDS,
            limit=MAX_KEYWORDS,
        )
        return KeywordsArgs(text=split.body, top=top)

    def run(self, args: KeywordsArgs, ctx: ToolContext) -> ToolResult:
        candidates = candidate_phrases(args.text)
        if not candidates:
            raise ToolError("the text has no words to extract key phrases from")
        sentences = split_sentences(args.text) or [args.text]
        vectors = ctx.embedder.encode([*sentences, *candidates])
        doc, phrase_vectors = centroid(vectors[: len(sentences)]), vectors[len(sentences) :]
        chosen = mmr(doc, phrase_vectors, args.top, diversity=DIVERSITY)
        scores = phrase_vectors[chosen] @ doc
        order = sorted(zip(chosen, scores, strict=True), key=lambda item: -float(item[1]))
        ranked = [{"phrase": candidates[i], "score": round(float(s), 4)} for i, s in order]
        return ToolResult(
            text="Key phrases: " + ", ".join(candidates[i] for i, _ in order),
            data=ranked,
            media_type="application/json",
        )
