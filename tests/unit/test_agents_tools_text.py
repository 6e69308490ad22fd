"""The text tools: extractive summary and key phrases with the real embedding model (one
model for the module), readability counts, and how they find the document in a request."""

from __future__ import annotations

import pytest

from noosphere.agents.tools import InputFile, MissingArguments, ToolContext, ToolError, ToolInput
from noosphere.agents.tools.builtin import KeywordsTool, ReadabilityTool, SummarizeTool
from noosphere.agents.tools.builtin.keywords import candidate_phrases
from noosphere.agents.tools.builtin.readability import syllables
from noosphere.agents.tools.inputs import requested_count, split_instruction
from noosphere.agents.tools.sentences import split_sentences
from noosphere.models.embedding import Embedder

REPORT = (
    "At 09:14 UTC the payment API started returning HTTP 500 errors for most requests. "
    "The on-call engineer was paged at 09:16 and began investigating. "
    "Database connection pool exhaustion was identified as the root cause at 09:41. "
    "A configuration change deployed the previous evening had reduced the pool size from 100 "
    "to 10 connections. "
    "The team rolled back the configuration at 09:52 and error rates returned to normal by "
    "10:05. "
    "The cafeteria will serve pasta for lunch on Friday. "
    "About 12,000 payment attempts failed during the incident. "
    "Follow-up actions include adding an alert on pool saturation and requiring review for "
    "configuration changes."
)


@pytest.fixture(scope="module")
def ctx() -> ToolContext:
    embedder = Embedder()
    embedder.load()
    return ToolContext(embedder=embedder)


def test_summary_of_the_incident_report(ctx: ToolContext) -> None:
    tool = SummarizeTool()
    args = tool.parse(ToolInput(text="summarize this incident report in 3 sentences:\n" + REPORT))
    assert args.sentences == 3
    result = tool.run(args, ctx)
    assert result.data["indices"] == [0, 2, 4]
    assert result.data["total_sentences"] == 8
    assert result.text == (
        "At 09:14 UTC the payment API started returning HTTP 500 errors for most requests. "
        "Database connection pool exhaustion was identified as the root cause at 09:41. "
        "The team rolled back the configuration at 09:52 and error rates returned to normal by "
        "10:05."
    )


def test_summary_from_a_file_with_a_word_count(ctx: ToolContext) -> None:
    tool = SummarizeTool()
    request = ToolInput(
        text="tl;dr of these meeting notes in two sentences",
        files=[InputFile("notes.txt", "text/plain", REPORT.encode())],
    )
    result = tool.run(tool.parse(request), ctx)
    assert len(result.data["sentences"]) == 2
    assert "pasta" not in result.text
    short = tool.run(tool.validate({"text": "Only one sentence here.", "sentences": 3}), ctx)
    assert short.text == "Only one sentence here."


def test_summary_needs_a_document() -> None:
    with pytest.raises(MissingArguments) as info:
        SummarizeTool().parse(ToolInput(text="summarize this incident report in 3 sentences"))
    assert info.value.fields == ["text"]
    with pytest.raises(ToolError, match="no sentence to summarize"):
        SummarizeTool().run(SummarizeTool().validate({"text": " ... "}), None)  # type: ignore[arg-type]


def test_key_phrases_of_the_report(ctx: ToolContext) -> None:
    tool = KeywordsTool()
    args = tool.parse(ToolInput(text="what are the main topics of this article?\n" + REPORT))
    assert args.top == 8
    result = tool.run(args, ctx)
    phrases = [item["phrase"] for item in result.data]
    assert phrases[0] == "connection pool exhaustion"
    assert len(phrases) == 8 and len(set(phrases)) == 8
    assert "payment attempts failed" in phrases
    assert result.text == "Key phrases: " + ", ".join(phrases)
    scores = [item["score"] for item in result.data]
    assert scores == sorted(scores, reverse=True)
    top3 = tool.run(tool.parse(ToolInput(text="list 3 key phrases:\n" + REPORT)), ctx)
    assert len(top3.data) == 3


def test_candidate_phrases_skip_stopwords_and_punctuation() -> None:
    assert candidate_phrases("The pool size, and the pool.") == ["pool", "size", "pool size"]
    with pytest.raises(ToolError, match="no words"):
        KeywordsTool().run(KeywordsTool().validate({"text": "the and of"}), None)  # type: ignore[arg-type]


def test_readability_scores() -> None:
    tool = ReadabilityTool()
    text = "how readable is this paragraph?\nThe cat sat on the mat. It was a sunny day."
    result = tool.run(tool.parse(ToolInput(text=text)), None)  # type: ignore[arg-type]
    assert result.data["words"] == 11
    assert result.data["sentences"] == 2
    assert result.data["syllables"] == 12
    # 206.835 - 1.015 * 5.5 - 84.6 * 12/11 = 108.96 ; 0.39 * 5.5 + 11.8 * 12/11 - 15.59 = -0.6
    assert result.data["flesch_reading_ease"] == 109.0
    assert result.data["flesch_kincaid_grade"] == -0.6
    assert result.text == (
        "11 words in 2 sentences (12 syllables). Flesch reading ease 109.0 (very easy), "
        "Flesch-Kincaid grade -0.6. No sentence has more than 25 words."
    )


def test_readability_lists_long_sentences() -> None:
    long = "Word " + " ".join(["word"] * 29) + "."
    tool = ReadabilityTool()
    result = tool.run(tool.validate({"text": f"Short one. {long}"}), None)  # type: ignore[arg-type]
    assert result.data["long_sentences"] == [{"index": 1, "words": 30, "sentence": long}]
    assert result.text.endswith("1 sentence has more than 25 words.")


def test_syllables() -> None:
    words = ["make", "jumped", "table", "wanted", "boxes", "the", "readability"]
    assert {w: syllables(w) for w in words} == {
        "make": 1,
        "jumped": 1,
        "table": 2,
        "wanted": 2,
        "boxes": 2,
        "the": 1,
        "readability": 5,
    }


def test_sentence_splitting() -> None:
    text = "Dr. Smith arrived at 9 a.m. on Monday. He left!\n\n- first item\n- second item"
    assert split_sentences(text) == [
        "Dr. Smith arrived at 9 a.m. on Monday.",
        "He left!",
        "- first item",
        "- second item",
    ]


def test_instruction_split_and_counts() -> None:
    assert split_instruction("summarize: one. two.").body == "one. two."
    assert split_instruction("tl;dr\nbody text").instruction == "tl;dr"
    assert split_instruction("just one line").body == ""
    assert requested_count("summarize in 4 sentences", "sentences?", 3, limit=50) == 4
    assert requested_count("in five short sentences", "sentences?", 3, limit=50) == 5
    assert requested_count("top 100 keywords", "keywords?", 8, limit=30) == 30
    assert requested_count("summarize", "sentences?", 3, limit=50) == 3
