"""MARS evaluation: metrics on hand-computed rankings, JSONL validation with line numbers, and a
tiny end-to-end ``noosphere mars eval`` run through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from noosphere.cli import app
from noosphere.mars.evaluation import (
    CONFIGS,
    DEFAULT_CONFIGS,
    EvalError,
    EvalQuery,
    load_cards,
    load_queries,
    ndcg_at,
    parse_configs,
    parse_relevant,
    recall_at,
    reciprocal_rank,
    score,
    split_queries,
)

# ---- metrics ---------------------------------------------------------------------------------


def test_recall_is_a_hit_rate() -> None:
    relevant = {"b": 2.0, "d": 1.0, "z": 0.0}
    assert recall_at(["a", "b", "c"], relevant, 1) == 0.0
    assert recall_at(["a", "b", "c"], relevant, 2) == 1.0
    assert recall_at(["z", "a"], relevant, 5) == 0.0  # grade 0 is judged, not relevant
    assert recall_at([], relevant, 10) == 0.0


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(["a", "b", "c"], {"b": 1.0}) == 0.5
    assert reciprocal_rank(["a", "x", "c", "d"], {"d": 2.0, "c": 1.0}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a"], {"b": 1.0}) == 0.0


def test_ndcg_graded() -> None:
    # ranking a, b, c with b grade 2 (gain 3) at rank 2 and d grade 1 (gain 1) never retrieved:
    # DCG = 3 / log2(3) = 1.8927893; ideal = 3 / 1 + 1 / log2(3) = 3.6309298
    value = ndcg_at(["a", "b", "c"], {"b": 2.0, "d": 1.0}, 10)
    assert value == pytest.approx(0.5212960, abs=1e-7)
    assert value == pytest.approx((3 / math.log2(3)) / (3 + 1 / math.log2(3)))
    # the ideal order scores 1; the reversed order: (1 + 3 / log2(3)) / (3 + 1 / log2(3))
    assert ndcg_at(["b", "d"], {"b": 2.0, "d": 1.0}, 10) == pytest.approx(1.0)
    assert ndcg_at(["d", "b"], {"b": 2.0, "d": 1.0}, 10) == pytest.approx(0.7967076, abs=1e-7)
    # only the top k count
    assert ndcg_at(["a", "b"], {"b": 1.0}, 1) == 0.0


def test_score_averages_over_queries() -> None:
    queries = [EvalQuery("q1", {"a": 1.0}), EvalQuery("q2", {"c": 2.0})]
    metrics = score([["a", "b"], ["x", "y", "z", "w", "v", "c"]], queries)
    assert metrics["recall@1"] == 0.5
    assert metrics["recall@5"] == 0.5
    assert metrics["recall@10"] == 1.0
    assert metrics["mrr"] == pytest.approx((1 + 1 / 6) / 2)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(7)) / 2)


def test_relevant_forms() -> None:
    assert parse_relevant(["a", "b"]) == {"a": 1.0, "b": 1.0}
    assert parse_relevant({"a": 2, "b": 0}) == {"a": 2.0, "b": 0.0}
    assert parse_relevant([{"id": "a", "grade": 2}, {"id": "b"}]) == {"a": 2.0, "b": 1.0}


def test_configs_are_checked() -> None:
    assert parse_configs("dense, vector") == ["dense", "vector"]
    assert parse_configs(list(CONFIGS)) == list(CONFIGS)
    with pytest.raises(EvalError, match="unknown configuration rerank"):
        parse_configs("vector,rerank")


def test_split_is_stratified_fixed_and_disjoint() -> None:
    queries = [
        EvalQuery(f"q{i}", {"a": 1.0}, id=f"{s}/{i}", subset=s)
        for s, n in (("G1", 7), ("G2", 4))
        for i in range(n)
    ]
    tune, report = split_queries(queries)
    assert sorted(tune + report) == list(range(11)) and not set(tune) & set(report)
    assert sum(queries[i].subset == "G1" for i in tune) == 4  # ceil(7 / 2) of each subset
    assert sum(queries[i].subset == "G2" for i in tune) == 2
    assert split_queries(list(reversed(queries)))[0] == sorted(10 - i for i in tune)
    assert split_queries(queries, seed=1) != (tune, report)


# ---- validation ------------------------------------------------------------------------------

CARD = {"id": "a1", "name": "Clock", "description": "Time zones.", "skills": ["time zones"]}


def _write(path: Path, *lines: object) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"cards.jsonl:3: invalid JSON"),
        ([1, 2], r"cards.jsonl:3: a card must be a JSON object"),
        ({"name": "x"}, r'cards.jsonl:3: "id" must be a non-empty string'),
        ({"id": "a1", "name": "dup"}, r"cards.jsonl:3: duplicate id 'a1' \(line 1\)"),
        ({"id": "b", "skills": "math"}, r'cards.jsonl:3: "skills" must be a list'),
        ({"id": "b", "skills": [{"description": "x"}]}, r'skills\[0\] needs a non-empty "name"'),
        ({"id": "b", "skills": [{"name": "x", "tags": "t"}]}, r"skills\[0\].tags must be a list"),
        ({"id": "b", "name": "x", "price": -1}, r'"price" must be a non-negative integer'),
    ],
)
def test_card_errors_name_the_line(tmp_path: Path, line: object, message: str) -> None:
    path = _write(tmp_path / "cards.jsonl", CARD, "", line)  # the blank line 2 is skipped
    with pytest.raises(EvalError, match=message) as caught:
        load_cards(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": "x", "relevant": ["a1"]', r"queries.jsonl:2: invalid JSON"),
        ({"relevant": ["a1"]}, r'queries.jsonl:2: "query" must be a non-empty string'),
        ({"query": "x"}, r'queries.jsonl:2: missing "relevant"'),
        ({"query": "x", "relevant": "a1"}, r'queries.jsonl:2: "relevant" must be a list'),
        ({"query": "x", "relevant": ["zz"]}, r"queries.jsonl:2: unknown agent id 'zz'"),
        ({"query": "x", "relevant": {"a1": 0}}, r"queries.jsonl:2: no relevant agent"),
        ({"query": "x", "relevant": {"a1": "high"}}, r"grade of 'a1' must be a number"),
        ({"query": "x", "relevant": [{"id": "a1", "grade": -1}]}, r"must be >= 0"),
        ({"query": "x", "relevant": ["a1", {"id": "a1"}]}, r"'a1' listed twice"),
        ({"query": "x", "relevant": [3]}, r"relevant\[0\] must be an id"),
    ],
)
def test_query_errors_name_the_line(tmp_path: Path, line: object, message: str) -> None:
    path = _write(tmp_path / "queries.jsonl", {"query": "ok", "relevant": ["a1"]}, line)
    with pytest.raises(EvalError, match=message):
        load_queries(path, known={"a1"})


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="no cards"):
        load_cards(_write(tmp_path / "cards.jsonl", ""))
    with pytest.raises(EvalError, match="cannot read"):
        load_queries(tmp_path / "missing.jsonl")


# ---- end to end ------------------------------------------------------------------------------

AGENTS = [
    ("tz", "Zone Shifter", "Converts times between time zones.",
     "Time zone conversion", "Convert a time from one IANA zone to another.", "9am Tokyo in Paris"),
    ("fx", "Money Changer", "Currency exchange.",
     "Currency conversion", "Convert amounts between currencies.", "100 USD in EUR"),
    ("ocr", "Page Reader", "Reads text in images.",
     "Optical character recognition", "Read printed text from scanned images.", "OCR a receipt"),
    ("tts", "Voice Maker", "Speaks text aloud.",
     "Text to speech", "Synthesize speech audio from text.", "read this aloud as mp3"),
    ("sql", "Query Writer", "Writes SQL.",
     "SQL querying", "Write SQL queries over database tables.", "total sales per region"),
    ("git", "Branch Doctor", "Fixes git problems.",
     "Git repair", "Undo commits, resolve merges, recover branches.", "undo the last commit"),
    ("dns", "Name Resolver", "Looks up DNS records.",
     "DNS lookup", "Resolve hostnames and show MX and TXT records.", "MX records of example.com"),
    ("pdf", "Page Binder", "Merges and splits PDF files.",
     "PDF manipulation", "Merge, split and rotate PDF pages.", "merge three PDFs"),
    ("bmi", "Body Calc", "Health metrics.",
     "BMI", "Compute body mass index from height and weight.", "BMI for 180 cm and 75 kg"),
    ("wx", "Sky Watch", "Weather forecasts.",
     "Weather forecast", "Current weather and forecasts for a city.", "rain in London tomorrow"),
]  # fmt: skip
QUERIES = [
    ("what time is it in Sydney when it is noon in Berlin", {"tz": 2}),
    ("how many euros do I get for 500 dollars", {"fx": 2}),
    ("get the words out of a photographed page", {"ocr": 2}),
    ("make an audio narration of my article", {"tts": 2}),
    ("recover a branch I deleted by accident", {"git": 2}),
    ("which mail servers handle this domain", {"dns": 2}),
    ("combine several documents into one file", {"pdf": 2, "ocr": 1}),
    ("should I bring an umbrella in Seattle today", {"wx": 2}),
]


def test_cli_eval_end_to_end(tmp_path: Path) -> None:
    cards = _write(
        tmp_path / "cards.jsonl",
        *(
            {
                "id": i,
                "name": n,
                "description": d,
                "skills": [{"name": s, "description": sd, "tags": [i], "examples": [ex]}],
            }
            for i, n, d, s, sd, ex in AGENTS
        ),
    )
    queries = _write(tmp_path / "queries.jsonl", *({"query": q, "relevant": r} for q, r in QUERIES))
    runner = CliRunner()
    args = ["mars", "eval", "--cards", str(cards), "--queries", str(queries)]
    result = runner.invoke(app, [*args, "--json", "--limit", "7"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cards"] == 10 and report["queries"] == 7
    rows = {row["config"]: row for row in report["configs"]}
    assert list(rows) == list(DEFAULT_CONFIGS)
    for row in rows.values():
        for metric in ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"):
            assert 0.0 <= row[metric] <= 1.0
    # ten unrelated agents: the embedding stages find the right one almost always
    assert rows["vector"]["recall@1"] >= 0.8
    assert rows["hybrid+filter+rank"]["recall@5"] >= 0.8
    assert set(rows["hybrid+filter+rank"]["stage_ms"]) == {"vector", "filter", "rank"}
    assert set(rows["hybrid"]["stage_ms"]) == {"vector", "rank"}
    assert "stage_ms" not in rows["bm25"] and "tune" not in rows["bm25"]

    table = runner.invoke(app, [*args, "--configs", "bm25,vector"])
    assert table.exit_code == 0, table.output
    assert "nDCG@10" in table.stdout and "vector" in table.stdout

    bad = runner.invoke(app, [*args, "--configs", "vector,nope"])
    assert bad.exit_code == 1
    assert "unknown configuration nope" in bad.output
    both = runner.invoke(app, [*args, "--data", str(tmp_path)])
    assert both.exit_code == 1 and "not both" in both.output


def test_cli_eval_several_sets_with_halves_to_a_file(tmp_path: Path) -> None:
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        _write(
            folder / "cards.jsonl",
            *(
                {"id": i, "name": n, "description": d, "skills": [{"name": s, "description": sd}]}
                for i, n, d, s, sd, _ex in AGENTS
            ),
        )
        _write(folder / "queries.jsonl", *({"query": q, "relevant": r} for q, r in QUERIES))
    out = tmp_path / "results" / "eval.json"
    args = ["mars", "eval", "--data", str(tmp_path / "one"), "--data", str(tmp_path / "two")]
    result = CliRunner().invoke(
        app, [*args, "--split", "--configs", "lexical,hybrid", "--out", str(out), "--limit", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "R@1 tune" in result.stdout and "MARS eval one" in result.stdout
    document = json.loads(out.read_text())
    assert [d["name"] for d in document["datasets"]] == ["one", "two"]
    for dataset in document["datasets"]:
        assert dataset["split"] == {"seed": 16, "tune": 2, "report": 2}
        for row in dataset["configs"]:
            assert (
                set(row["tune"])
                == set(row["report"])
                == {
                    "recall@1",
                    "recall@5",
                    "recall@10",
                    "mrr",
                    "ndcg@10",
                }
            )
