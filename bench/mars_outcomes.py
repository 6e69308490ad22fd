"""Recruit learning from outcomes (Feedback -> Recruit): does recruit quality improve as this node's
rated tasks accumulate? A simulation on bench/data/mars-dev with the real pipeline and model.

The queries are split in two: every fourth query (by line) is held out for evaluation, the others
form the stream of tasks this node submits, in a fixed shuffled order. For each streamed task the
node recruits (full pipeline, stage 3 with its ``outcome`` feature), gives the task to the top
agent and rates it; the rating is drawn from the agent's true fitness for the task, unknown to the
recruiter: a specialist built for the capability (grade 2) succeeds with probability 0.9, an
agent that merely also lists it (grade 1) 0.5, any other agent 0.1, and a success is rated 1, a
failure 0. The rating goes to ``Recruiter.record_outcome`` (what the node does when its operator
rates a task). At checkpoints (after 0, 100, 200, ... rated tasks) the held-out queries are
recruited without recording anything and scored: Recall@1 (any relevant agent first), nDCG@10
(graded), and ``specialist@1`` (a grade-2 agent first, the one most likely to succeed). The same
run with the outcome weight set to 0 is the control: it must stay flat, since nothing else
learns.

Output: a table per checkpoint and JSON (default bench/results/mars-outcomes.json). ``--smoke``:
a few queries and checkpoints, the same code paths."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchkit import BenchParser, machine_info, stop_on_signals, write_results

from noosphere.mars.evaluation import EvalQuery, load_cards, load_queries, ndcg_at, recall_at
from noosphere.mars.profile import AgentProfile
from noosphere.mars.ranking import RankingWeights
from noosphere.mars.recruit import Recruiter, RecruitQuery
from noosphere.models.embedding import Embedder

BENCH_DIR = Path(__file__).resolve().parent
DATA = BENCH_DIR / "data" / "mars-dev"
DEFAULT_JSON = BENCH_DIR / "results" / "mars-outcomes.json"
SUCCESS = {2: 0.9, 1: 0.5, 0: 0.1}  # grade -> probability that the task succeeds
NOW_MS = 1_800_000_000_000
SMOKE = {"limit": 64, "checkpoints": [0, 16, 48]}


def progress(message: str) -> None:
    print(f"[mars-outcomes] {message}", file=sys.stderr, flush=True)


async def recruit_top(recruiter: Recruiter, task: str, top: int) -> list[str]:
    result = await recruiter.recruit(
        RecruitQuery(task=task, top=top, candidates=50), requester="sim", now_ms=NOW_MS
    )
    return [c.profile.agent_id for c in result.chosen]


async def evaluate(recruiter: Recruiter, held_out: Sequence[EvalQuery]) -> dict[str, float]:
    r1 = nd = spec = 0.0
    for query in held_out:
        ranking = await recruit_top(recruiter, query.text, 10)
        r1 += recall_at(ranking, query.relevant, 1)
        nd += ndcg_at(ranking, query.relevant, 10)
        spec += float(bool(ranking) and query.relevant.get(ranking[0], 0) >= 2)
    n = max(len(held_out), 1)
    return {"recall@1": r1 / n, "ndcg@10": nd / n, "specialist@1": spec / n}


async def simulate(
    profiles: Sequence[AgentProfile],
    stream: Sequence[EvalQuery],
    held_out: Sequence[EvalQuery],
    embedder: Embedder,
    checkpoints: Sequence[int],
    *,
    outcome_weight: float,
    seed: int,
) -> list[dict[str, Any]]:
    recruiter = Recruiter(embedder, weights=RankingWeights(outcome=outcome_weight))
    recruiter.upsert_many(list(profiles))
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    rated = successes = 0
    for step, query in enumerate([None, *stream]):
        if query is not None:
            ranking = await recruit_top(recruiter, query.text, 1)
            if ranking:
                grade = int(query.relevant.get(ranking[0], 0))
                success = rng.random() < SUCCESS[min(grade, 2)]
                recruiter.record_outcome(query.text, ranking[0], 1.0 if success else 0.0)
                rated += 1
                successes += success
        if step in checkpoints:
            metrics = await evaluate(recruiter, held_out)
            rows.append(
                {"rated": rated, "stream_success": successes / rated if rated else None, **metrics}
            )
            progress(f"outcome weight {outcome_weight}: {rated} rated, {metrics}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = BenchParser("bench/mars_outcomes.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument("--limit", type=int, default=None, help="use the first N queries only")
    parser.add_argument(
        "--checkpoints",
        type=int,
        nargs="+",
        default=[0, 100, 200, 400, 800, 1572],
        help="numbers of rated tasks after which the held-out queries are scored",
    )
    parser.add_argument(
        "--weight",
        type=float,
        default=RankingWeights().outcome,
        help="stage 3 weight of the outcome feature",
    )
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    stop_on_signals()
    started = time.perf_counter()
    profiles = load_cards(DATA / "cards.jsonl")
    queries = load_queries(DATA / "queries.jsonl", known=[p.agent_id for p in profiles])
    if args.limit:
        queries = queries[: args.limit]
    held_out = queries[::4]
    stream = [q for i, q in enumerate(queries) if i % 4]
    random.Random(args.seed).shuffle(stream)
    checkpoints = sorted({c for c in args.checkpoints if c <= len(stream)} | {0})
    embedder = Embedder()
    embedder.cache_size = 4 * (len(queries) + sum(len(p.texts()) for p in profiles))
    progress(f"embedding {len(profiles)} cards and {len(queries)} queries")
    embedder.encode([q.text for q in queries])

    runs = {}
    for label, weight in (("outcome", args.weight), ("control", 0.0)):
        runs[label] = asyncio.run(
            simulate(
                profiles,
                stream,
                held_out,
                embedder,
                checkpoints,
                outcome_weight=weight,
                seed=args.seed,
            )
        )
    print(
        "rated | R@1 outcome | R@1 control | nDCG@10 outcome | nDCG@10 control |"
        " specialist@1 outcome | specialist@1 control"
    )
    for a, b in zip(runs["outcome"], runs["control"], strict=True):
        cells = [f"{a['rated']:5d}"]
        for metric in ("recall@1", "ndcg@10", "specialist@1"):
            cells += [f"{a[metric]:.3f}", f"{b[metric]:.3f}"]
        print(" | ".join(cells))
    payload = {
        "benchmark": "bench/mars_outcomes.py",
        "machine": machine_info(["sentence-transformers", "tantivy", "faiss-cpu"]),
        "parameters": {
            "cards": len(profiles),
            "stream": len(stream),
            "held_out": len(held_out),
            "success_probability_by_grade": SUCCESS,
            "outcome_weight": args.weight,
            "seed": args.seed,
            "checkpoints": checkpoints,
        },
        "outcome": runs["outcome"],
        "control": runs["control"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results(args.json, payload)
    progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
