"""Execute: the ``summarize`` tool. Extractive summary: the document's sentences are embedded,
ranked by similarity to the document centroid with MMR for diversity, and the top N are
returned in their original order (never a word that is not in the source)."""

from __future__ import annotations

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

DEFAULT_SENTENCES = 3
MAX_SENTENCES = 50
DIVERSITY = 0.3


class SummarizeArgs(BaseModel):
    text: BoundedText = Field(description="the document to summarize")
    sentences: int = Field(DEFAULT_SENTENCES, ge=1, le=MAX_SENTENCES)


class SummarizeTool(Tool[SummarizeArgs]):
    name = "summarize"
    description = (
        "Extractive summary of a document: picks its most representative, non-redundant "
        "sentences with sentence embeddings and returns them in their original order."
    )
    examples = [
        "summarize this incident report in 3 sentences",
        "tl;dr of these meeting notes",
        "give me a short summary of this article",
        "summarize the attached document in five sentences",
    ]
    args_model = SummarizeArgs

    def extract(self, request: ToolInput) -> SummarizeArgs:
        split = document(request, "text should I summarize")
        count = requested_count(
            split.instruction, r"sentences?|points?|lines?", DEFAULT_SENTENCES, limit=MAX_SENTENCES
        )
        return SummarizeArgs(text=split.body, sentences=count)

    def run(self, args: SummarizeArgs, ctx: ToolContext) -> ToolResult:
        sentences = split_sentences(args.text)
        if not sentences:
            raise ToolError("there is no sentence to summarize in the text")
        if len(sentences) <= args.sentences:
            chosen = list(range(len(sentences)))
        else:
            vectors = ctx.embedder.encode(sentences)
            chosen = sorted(mmr(centroid(vectors), vectors, args.sentences, diversity=DIVERSITY))
        summary = [sentences[i] for i in chosen]
        return ToolResult(
            text=" ".join(summary),
            data={
                "sentences": summary,
                "indices": chosen,
                "total_sentences": len(sentences),
            },
            media_type="application/json",
        )
