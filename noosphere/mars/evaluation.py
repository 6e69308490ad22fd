"""Recruit (MARS) evaluation: how well do the stages find the right agents for a task?

Inputs are two JSONL files. A card line is ``{"id","name","description","skills":[...]}`` (a skill
is a string or ``{"name","description","tags","examples"}``; read by ``profile_from_record``). A
query line is ``{"query": TEXT, "relevant": R}`` where R is a list of agent ids (grade 1 each), a
dict ``{id: grade}`` or a list of ``{"id","grade"}`` objects; grades are numbers >= 0 and at least
one must be > 0. Any malformed line fails with one line naming the file and line number.

Configurations (each returns at most ``depth`` agents per query, best first):

* ``bm25``: Okapi BM25 (``bm25s``) over one document per agent (name, description, skills with
  tags and examples), English stop words, no stemming. Baseline.
* ``dense``: one all-MiniLM-L6-v2 vector per agent of that same text, cosine. Baseline.
* ``dense-mpnet``: the same with all-mpnet-base-v2 (needs ``make models-mpnet``). Baseline.
* ``lexical``: the lexical half of MARS stage 1 alone (field-weighted BM25, ``lexical.py``).
* ``vector``: the vector half of stage 1 alone (skill-level faiss index, best skill cosine).
* ``hybrid``: MARS stage 1 as built (both halves fused, ``fusion.py``).
* ``hybrid+filter``: + stage 2 (re-scoring, ``rerank.py``; hard constraints and the relevance
  floor; rejected candidates are not returned).
* ``hybrid+filter+rank``: + stage 3 with neutral signals (no reputation, history, outcome or
  latency evidence; prices as the cards give them, 0 when absent).
* ``hybrid+filter+llm`` (only when asked for, with an LLM endpoint): stage 2 with the LLM judge
  vetoing candidates on top of the re-scoring; the report counts the judge's failures and vetoes.

The MARS configurations run through ``Recruiter.recruit`` one query at a time, so the time of each
stage (``stage_ms``: ``vector`` = stage 1, ``filter`` = stage 2, ``rank`` = stage 3) is what a node
pays per query; query vectors are computed before the clock starts (query embedding excluded).

With ``split``, queries are also scored in two halves: each ``subset`` of the query file (one
group if it has none) is ordered by query ``id`` (line number if none), shuffled with a fixed seed
and cut in half; the first halves form the ``tune`` half (what constants were chosen on), the
rest the ``report`` half.

Metrics, averaged over queries (relevant = grade > 0):

* Recall@k: the fraction of queries with at least one relevant agent in the top k (also called
  success@k or hit rate; with several relevant agents per query it is not the fraction of the
  relevant agents found).
* MRR: mean of 1 / rank of the first relevant agent within the top ``depth`` (0 if none).
* nDCG@10: graded, gain ``2**grade - 1``, discount ``log2(rank + 1)``, normalized by the ideal
  ordering of all of the query's judged agents.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noosphere.errors import InvalidData
from noosphere.models.embedding import MODEL_NAME, MPNET, Embedder
from noosphere.models.llm import LlmBackend
from noosphere.models.text import instruction_of

from .index import VectorIndex
from .lexical import LexicalIndex
from .profile import AgentProfile, profile_from_record
from .recruit import Recruiter, RecruitQuery

BASELINES = ("bm25", "dense", "dense-mpnet")
HALVES = ("lexical", "vector")  # the two halves of stage 1, each alone
STAGES = ("hybrid", "hybrid+filter", "hybrid+filter+rank")
CONFIGS = BASELINES + HALVES + STAGES
DEFAULT_CONFIGS = ("bm25", "dense", *HALVES, *STAGES)
LLM_STAGE = "hybrid+filter+llm"  # needs an LLM endpoint; never run by default
SPLIT_SEED = 16
METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")


class EvalError(InvalidData, ValueError):
    """An evaluation input is malformed (the message is one line with file and line number)."""


@dataclass(frozen=True, slots=True)
class EvalQuery:
    text: str
    relevant: dict[str, float]  # agent id -> grade (> 0 relevant, 0 judged not relevant)
    id: str = ""
    subset: str = ""


# ---- loading ---------------------------------------------------------------------------------


def _lines(path: Path) -> Iterable[tuple[int, Any]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc


def _str_list(value: Any, what: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")


def _check_card(record: Any) -> str:
    """The card's id; raises ValueError with what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("a card must be a JSON object")
    agent_id = record.get("id")
    if isinstance(agent_id, bool) or not isinstance(agent_id, str | int) or agent_id == "":
        raise ValueError('"id" must be a non-empty string')
    for key in ("name", "description"):
        if key in record and not isinstance(record[key], str):
            raise ValueError(f'"{key}" must be a string')
    skills = record.get("skills", [])
    if not isinstance(skills, list):
        raise ValueError('"skills" must be a list')
    for i, skill in enumerate(skills):
        if isinstance(skill, str):
            if not skill.strip():
                raise ValueError(f"skills[{i}] is empty")
            continue
        if not isinstance(skill, dict):
            raise ValueError(f"skills[{i}] must be a string or an object")
        if not isinstance(skill.get("name"), str) or not skill["name"].strip():
            raise ValueError(f'skills[{i}] needs a non-empty "name"')
        if "description" in skill and not isinstance(skill["description"], str):
            raise ValueError(f"skills[{i}].description must be a string")
        for key in ("tags", "examples"):
            if key in skill:
                _str_list(skill[key], f"skills[{i}].{key}")
    if not skills and not record.get("description") and not record.get("name"):
        raise ValueError("a card needs a name, a description or skills")
    price = record.get("price", 0)
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise ValueError('"price" must be a non-negative integer')
    return str(agent_id)


def load_cards(path: Path) -> list[AgentProfile]:
    """The profiles of a cards JSONL file (blank lines skipped, ids unique)."""
    profiles: list[AgentProfile] = []
    seen: dict[str, int] = {}
    for number, record in _lines(path):
        try:
            agent_id = _check_card(record)
        except ValueError as exc:
            raise EvalError(f"{path}:{number}: {exc}") from exc
        if agent_id in seen:
            raise EvalError(f"{path}:{number}: duplicate id {agent_id!r} (line {seen[agent_id]})")
        seen[agent_id] = number
        profiles.append(profile_from_record(record))
    if not profiles:
        raise EvalError(f"{path}: no cards")
    return profiles


def _grade(value: Any, agent_id: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"grade of {agent_id!r} must be a number")
    if value < 0:
        raise ValueError(f"grade of {agent_id!r} must be >= 0")
    return float(value)


def parse_relevant(raw: Any) -> dict[str, float]:
    """``relevant`` in any accepted form as {id: grade}; raises ValueError."""
    pairs: list[tuple[str, float]] = []
    if isinstance(raw, dict):
        pairs = [(str(k), _grade(v, str(k))) for k, v in raw.items()]
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            if isinstance(item, str) and item:
                pairs.append((item, 1.0))
            elif isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
                pairs.append((item["id"], _grade(item.get("grade", 1), item["id"])))
            else:
                raise ValueError(f'relevant[{i}] must be an id or {{"id", "grade"}}')
    else:
        raise ValueError(
            '"relevant" must be a list of ids, a dict id -> grade or a list of {"id", "grade"}'
        )
    grades: dict[str, float] = {}
    for agent_id, grade in pairs:
        if agent_id in grades:
            raise ValueError(f"agent {agent_id!r} listed twice")
        grades[agent_id] = grade
    if not any(g > 0 for g in grades.values()):
        raise ValueError("no relevant agent (every query needs a grade > 0)")
    return grades


def load_queries(path: Path, known: Iterable[str] | None = None) -> list[EvalQuery]:
    """The queries of a JSONL file; with ``known`` ids, every judged id must be one of them."""
    ids = set(known) if known is not None else None
    queries: list[EvalQuery] = []
    for number, record in _lines(path):
        try:
            if not isinstance(record, dict):
                raise ValueError("a query must be a JSON object")
            text = record.get("query")
            if not isinstance(text, str) or not text.strip():
                raise ValueError('"query" must be a non-empty string')
            if "relevant" not in record:
                raise ValueError('missing "relevant"')
            relevant = parse_relevant(record["relevant"])
            if ids is not None:
                unknown = sorted(a for a in relevant if a not in ids)
                if unknown:
                    raise ValueError("unknown agent id " + ", ".join(map(repr, unknown[:3])))
        except ValueError as exc:
            raise EvalError(f"{path}:{number}: {exc}") from exc
        queries.append(
            EvalQuery(
                text.strip(),
                relevant,
                id=str(record.get("id", number)),
                subset=str(record.get("subset", "")),
            )
        )
    if not queries:
        raise EvalError(f"{path}: no queries")
    return queries


def split_queries(
    queries: Sequence[EvalQuery], seed: int = SPLIT_SEED
) -> tuple[list[int], list[int]]:
    """Positions of the tuning half and of the report half (see the module docstring)."""
    groups: dict[str, list[int]] = {}
    for i, query in enumerate(queries):
        groups.setdefault(query.subset, []).append(i)
    tune: list[int] = []
    report: list[int] = []
    for subset in sorted(groups):
        members = sorted(groups[subset], key=lambda i: (queries[i].id, i))
        random.Random(f"{seed}:{subset}").shuffle(members)
        half = (len(members) + 1) // 2
        tune += members[:half]
        report += members[half:]
    return sorted(tune), sorted(report)


# ---- metrics ---------------------------------------------------------------------------------


def recall_at(ranking: Sequence[str], relevant: Mapping[str, float], k: int) -> float:
    """1.0 if any relevant (grade > 0) agent is in the top ``k``, else 0.0."""
    return float(any(relevant.get(a, 0) > 0 for a in ranking[:k]))


def reciprocal_rank(ranking: Sequence[str], relevant: Mapping[str, float]) -> float:
    for rank, agent_id in enumerate(ranking, 1):
        if relevant.get(agent_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, float], k: int) -> float:
    def dcg(grades: Iterable[float]) -> float:
        return sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(grades))

    ideal = dcg(sorted((g for g in relevant.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg(relevant.get(a, 0.0) for a in ranking[:k]) / ideal


def score(rankings: Sequence[Sequence[str]], queries: Sequence[EvalQuery]) -> dict[str, float]:
    """Mean Recall@1/5/10, MRR and nDCG@10 of one ranking per query."""
    if len(rankings) != len(queries):
        raise ValueError("one ranking per query")
    n = max(len(queries), 1)
    sums = dict.fromkeys(METRICS, 0.0)
    for ranking, query in zip(rankings, queries, strict=True):
        rel = query.relevant
        sums["recall@1"] += recall_at(ranking, rel, 1)
        sums["recall@5"] += recall_at(ranking, rel, 5)
        sums["recall@10"] += recall_at(ranking, rel, 10)
        sums["mrr"] += reciprocal_rank(ranking, rel)
        sums["ndcg@10"] += ndcg_at(ranking, rel, 10)
    return {name: value / n for name, value in sums.items()}


# ---- baselines -------------------------------------------------------------------------------


def agent_text(profile: AgentProfile) -> str:
    """One document per agent: name, description and every skill with its tags and examples."""
    return "\n".join(
        [f"{profile.name}: {profile.description}"] + [s.text() for s in profile.skills]
    )


def _top(ids: Sequence[str], scores: np.ndarray, k: int, *, positive: bool) -> list[str]:
    order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), ids[i]))
    return [ids[i] for i in order if not positive or scores[i] > 0][:k]


class Bm25Baseline:
    def __init__(self, profiles: Sequence[AgentProfile]) -> None:
        import bm25s

        self._bm25s = bm25s
        self.ids = [p.agent_id for p in profiles]
        tokens = bm25s.tokenize(
            [agent_text(p) for p in profiles], stopwords="en", show_progress=False
        )
        self.model = bm25s.BM25()
        self.model.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[str]:
        tokens = self._bm25s.tokenize(
            [query], stopwords="en", return_ids=False, show_progress=False
        )[0]
        if not tokens:
            return []
        return _top(self.ids, self.model.get_scores(tokens), k, positive=True)


class DenseBaseline:
    def __init__(self, profiles: Sequence[AgentProfile], embedder: Embedder) -> None:
        self.ids = [p.agent_id for p in profiles]
        self.embedder = embedder
        self.matrix = embedder.encode([agent_text(p) for p in profiles])

    def search(self, query: str, k: int) -> list[str]:
        return _top(self.ids, self.matrix @ self.embedder.encode_one(query), k, positive=False)


# ---- running ---------------------------------------------------------------------------------


@dataclass
class ConfigResult:
    config: str
    metrics: dict[str, float]
    seconds: float
    queries: int
    rejected_relevant: float | None = None  # filter configs: relevant agents rejected per query
    halves: dict[str, dict[str, float]] = field(default_factory=dict)  # tune / report metrics
    stage_ms: dict[str, float] = field(default_factory=dict)  # MARS: mean ms per query
    judge: dict[str, float] | None = None  # the LLM stage: failures, vetoes, relevant vetoed

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"config": self.config}
        out.update({k: round(v, 4) for k, v in self.metrics.items()})
        out["seconds"] = round(self.seconds, 2)
        out["ms_per_query"] = round(1000 * self.seconds / max(self.queries, 1), 3)
        if self.stage_ms:
            out["stage_ms"] = {k: round(v, 3) for k, v in self.stage_ms.items()}
        if self.rejected_relevant is not None:
            out["rejected_relevant_per_query"] = round(self.rejected_relevant, 3)
        if self.judge is not None:
            out["judge"] = {k: round(v, 3) for k, v in self.judge.items()}
        for half, metrics in self.halves.items():
            out[half] = {k: round(v, 4) for k, v in metrics.items()}
        return out


@dataclass
class EvalReport:
    cards: int
    queries: int
    depth: int
    candidates: int
    setup_seconds: float
    model: str = MODEL_NAME
    name: str = ""
    split: dict[str, int] | None = None  # seed and half sizes
    results: list[ConfigResult] = field(default_factory=list)
    total_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name} if self.name else {}
        out.update(
            {
                "cards": self.cards,
                "queries": self.queries,
                "depth": self.depth,
                "candidates": self.candidates,
                "model": self.model,
            }
        )
        if self.split is not None:
            out["split"] = self.split
        out["setup_seconds"] = round(self.setup_seconds, 2)
        out["total_seconds"] = round(self.total_seconds, 2)
        out["configs"] = [r.as_dict() for r in self.results]
        return out


def parse_configs(text: str | Sequence[str]) -> list[str]:
    names = text.split(",") if isinstance(text, str) else list(text)
    chosen = [n.strip() for n in names if n.strip()]
    unknown = [n for n in chosen if n not in (*CONFIGS, LLM_STAGE)]
    if unknown or not chosen:
        raise EvalError(
            f"unknown configuration {', '.join(unknown) or '(none)'}; choose from "
            + ", ".join((*CONFIGS, LLM_STAGE))
        )
    return list(dict.fromkeys(chosen))


async def run_eval(
    profiles: Sequence[AgentProfile],
    queries: Sequence[EvalQuery],
    configs: Sequence[str] = DEFAULT_CONFIGS,
    *,
    embedder: Embedder | None = None,
    depth: int = 10,
    candidates: int = 50,
    split: bool = False,
    name: str = "",
    progress: Callable[[str], None] | None = None,
    llm: LlmBackend | None = None,
    judge_schema: bool = False,
) -> EvalReport:
    """Index the cards once, then answer every query under each configuration (``llm`` is
    the endpoint the ``hybrid+filter+llm`` configuration's judge asks)."""
    started = time.perf_counter()
    configs = parse_configs(configs)
    if LLM_STAGE in configs and llm is None:
        raise EvalError(f"{LLM_STAGE} needs an LLM endpoint (NOOSPHERE_LLM_BASE_URL and _MODEL)")
    embedder = embedder or Embedder()
    say = progress or (lambda _msg: None)

    # Everything any configuration embeds, in one batched pass: the cache then serves each
    # query's vectors without further forward passes (query embedding is not timed).
    wanted: list[str] = [q.text for q in queries]
    wanted += [instruction_of(q.text) for q in queries]
    index_texts = sum(len(p.texts()) for p in profiles)
    embedder.cache_size = max(embedder.cache_size, len(wanted) + index_texts + len(profiles) + 64)
    say(f"embedding {len(set(wanted)) + index_texts} texts with {embedder.model_name}")
    await asyncio.to_thread(embedder.encode, list(dict.fromkeys(wanted)))

    recruiter: Recruiter | None = None
    if any(c in (*STAGES, LLM_STAGE) or c == "vector" for c in configs):
        recruiter = Recruiter(embedder, index=VectorIndex(dimension=embedder.dimension))
        await asyncio.to_thread(recruiter.upsert_many, list(profiles))
        recruiter.lexical.commit()
    lexical = None
    if "lexical" in configs:
        lexical = recruiter.lexical if recruiter is not None else LexicalIndex()
        if recruiter is None:
            for profile in profiles:
                lexical.upsert(profile)
            lexical.commit()
    bm25 = Bm25Baseline(profiles) if "bm25" in configs else None
    dense = (
        await asyncio.to_thread(DenseBaseline, profiles, embedder) if "dense" in configs else None
    )
    mpnet = None
    if "dense-mpnet" in configs:
        say("embedding the cards and queries with all-mpnet-base-v2")
        mpnet = await asyncio.to_thread(DenseBaseline, profiles, Embedder(model=MPNET))
        await asyncio.to_thread(mpnet.embedder.encode, [q.text for q in queries])
    halves = split_queries(queries) if split else None
    report = EvalReport(
        len(profiles),
        len(queries),
        depth,
        candidates,
        time.perf_counter() - started,
        model=embedder.model_name,
        name=name,
        split=None
        if halves is None
        else {"seed": SPLIT_SEED, "tune": len(halves[0]), "report": len(halves[1])},
    )
    now_ms = int(time.time() * 1000)
    for config in configs:
        say(f"running {config}")
        begun = time.perf_counter()
        rejected: float | None = None
        stage_ms: dict[str, float] = {}
        judged: dict[str, float] | None = None
        if config == LLM_STAGE:
            assert recruiter is not None and llm is not None
            rankings, rejected, judged = await _run_llm_stage(
                recruiter.with_judge(llm, json_schema=judge_schema),
                queries,
                depth,
                candidates,
                now_ms,
            )
        elif config == "bm25":
            assert bm25 is not None
            rankings = [bm25.search(q.text, depth) for q in queries]
        elif config == "dense":
            assert dense is not None
            rankings = [dense.search(q.text, depth) for q in queries]
        elif config == "dense-mpnet":
            assert mpnet is not None
            rankings = [mpnet.search(q.text, depth) for q in queries]
        elif config == "lexical":
            assert lexical is not None
            rankings = [[h.agent_id for h in lexical.search(q.text, depth)] for q in queries]
        else:
            assert recruiter is not None
            rankings, rejected, stage_ms = await _run_stages(
                recruiter, queries, config, depth, candidates, now_ms
            )
        seconds = time.perf_counter() - begun
        result = ConfigResult(
            config,
            score(rankings, queries),
            seconds,
            len(queries),
            rejected,
            stage_ms=stage_ms,
            judge=judged,
        )
        if halves is not None:
            for label, members in zip(("tune", "report"), halves, strict=True):
                result.halves[label] = score(
                    [rankings[i] for i in members], [queries[i] for i in members]
                )
        report.results.append(result)
    report.total_seconds = time.perf_counter() - started
    return report


async def _run_stages(
    recruiter: Recruiter,
    queries: Sequence[EvalQuery],
    config: str,
    depth: int,
    candidates: int,
    now_ms: int,
) -> tuple[list[list[str]], float | None, dict[str, float]]:
    use_filter = "filter" in config
    use_ranking = config.endswith("rank")
    lost = 0
    totals: dict[str, float] = {}
    rankings = []
    for query in queries:  # one at a time: the stage times are a lone query's
        request = RecruitQuery(
            task=query.text,
            top=depth,
            candidates=candidates,
            use_filter=use_filter,
            use_ranking=use_ranking,
            use_lexical=config != "vector",
        )
        result = await recruiter.recruit(request, requester="eval", now_ms=now_ms)
        lost += sum(1 for r in result.rejected if query.relevant.get(r.profile.agent_id, 0) > 0)
        for stage, ms in result.timings_ms.items():
            totals[stage] = totals.get(stage, 0.0) + ms
        rankings.append([c.profile.agent_id for c in result.chosen])
    n = max(len(queries), 1)
    stage_ms = {stage: total / n for stage, total in totals.items()}
    return rankings, (lost / n if use_filter else None), stage_ms


async def _run_llm_stage(
    judged: Recruiter,
    queries: Sequence[EvalQuery],
    depth: int,
    candidates: int,
    now_ms: int,
) -> tuple[list[list[str]], float, dict[str, float]]:
    """Stages 1 + 2 with the LLM judge, one query at a time (a local server answers one request
    at a time); with the judge's record."""
    rankings: list[list[str]] = []
    lost = failures = vetoes = relevant_vetoed = 0
    for query in queries:
        request = RecruitQuery(
            task=query.text, top=depth, candidates=candidates, use_filter=True, use_ranking=False
        )
        result = await judged.recruit(request, requester="eval", now_ms=now_ms)
        failures += "failed" in result.filter_mode
        for rejection in result.rejected:
            relevant = query.relevant.get(rejection.profile.agent_id, 0) > 0
            lost += relevant
            if rejection.reason.startswith("llm judge"):
                vetoes += 1
                relevant_vetoed += relevant
        rankings.append([c.profile.agent_id for c in result.chosen])
    count = max(len(queries), 1)
    record = {
        "failed_share": failures / count,
        "vetoes_per_query": vetoes / count,
        "relevant_vetoed_per_query": relevant_vetoed / count,
    }
    return rankings, lost / count, record
