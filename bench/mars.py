"""Recruit benchmark: candidate search (stage 1: vector and lexical halves), re-scoring (stage 2)
and ranking (stage 3) of MARS at 1k, 10k, 100k and 1M agent cards on this machine, with memory,
index build and update time, and the recall of the approximate vector index against exact
search. The lexical half (``LexicalIndex``, tantivy BM25) indexes every card's text too.

Cards (synthetic, with real embeddings): a pool of ``--pool`` distinct skill texts is generated
from word lists in this file (domain, verb, object, qualifier, audience, e.g. "Invoice
reconciliation: reconcile vendor invoices against purchase orders in spreadsheets for small
businesses") and embedded once with all-MiniLM-L6-v2 (``noosphere.models.embedding``); the
vectors are cached as .npy under bench/.cache/ (keyed by the pool size and seed). Every card has
1 to 3 skills (uniform); the vector of a skill is ``normalize(a + 0.3 * b)`` where ``a`` is the
real vector of one pool text (the skill's text) and ``b`` the real vector of another pool text
chosen at random, so no two cards are identical although 1M cards share a pool of 30k texts.
Embedding 1M texts would take about half an hour here; the mixing keeps the vectors on the
model's manifold. The cards are ``AgentProfile`` objects (skill objects are shared between
cards that use the same pool text) with random prices, latencies and freshness.

Queries: ``--queries`` task texts written with other templates and synonyms than the pool
(held-out paraphrases, e.g. "Looking for an agent to double-check supplier bills ..."), embedded
with the real model.

For every card count (``--cards``), in this process, one after the other:

* build: ``Recruiter.profiles`` filled, then every card's vectors inserted with
  ``VectorIndex.upsert`` (what ``Recruiter.upsert_many`` does after embedding; the embedder is
  bypassed), timed as a whole, including the switch to IVF-SQ8 past ``exact_threshold``
  vectors (training on the vectors held at that moment). Memory: RSS growth (psutil) while the
  profiles are created and while the index is built (freed memory of the previous card count is
  returned with malloc_trim first), and the faiss index's own bytes (codes, ids, centroids);
* latency over the queries (garbage collection on, as in a node): ``search`` =
  ``VectorIndex.search(q, 50)`` alone; ``lexical`` = ``LexicalIndex.search(text, 50)`` alone;
  ``rank`` = stage 3 (``ranking.rank`` with ``NoSignals``) on those candidates alone;
  ``vector+rank`` = ``Recruiter.recruit`` with stage 1 on vectors alone and the filter off
  (``use_lexical=False, use_filter=False``, candidates 50, top 5) and an embedder stub
  returning the query's precomputed vector, through the real async path
  (``asyncio.to_thread``): the figure before stage 1 had a lexical half; ``search+rank`` = the
  same with the hybrid stage 1; ``pipeline`` = all three stages (stage 2 re-scoring, hard
  constraints, the examples' vectors read back);
  ``embed+search+rank`` = the same with the real embedder (its cache cleared, so one model
  forward pass per query); ``exact scan`` = a brute-force inner product scan over all vectors
  for one query (``faiss.knn``, what the exact index costs at that size);
* recall against exact search (ground truth: ``faiss.knn`` over the float32 vectors, grouped
  to the best skill per agent): ``recall@10`` = share of the exact 10 best agents returned by
  ``VectorIndex.search(q, 10)``; ``recall 10@50`` = share of them among the 50 candidates a
  recruit takes; ``vec recall@10`` = the faiss index alone on vector ids;
* an nprobe sweep (``--nprobe-sweep``) wherever the index is approximate;
* at the largest card count, variants built directly with faiss on the same vectors (same ids,
  so ``VectorIndex.search`` runs unchanged): IVF-SQ8 and IVF-Flat with ``--alt-nlist`` lists
  (one shared quantizer, trained on 64 vectors per list), each swept over nprobe too;
* updates: ``upsert`` of 1000 existing cards with new vectors, then ``remove`` of 1000 others,
  one call per card, ms per card.

Output: rich tables, the goal lines (at 1k cards: the full pipeline at most 5 ms per query on
average; at 1M cards: the full pipeline p50 under 20 ms and recall@10 of the vector index at
least 0.95, both with the default indexes), and JSON (``--json``, default
bench/results/mars.json) with machine info and every figure.

faiss runs single queries with one OpenMP thread per core by default; on a 2-core machine that
is busy with other work, ``--faiss-threads 1`` made a flat search of 20k vectors about 7x faster
(the threads wait for each other), so the option is there to compare.

Run time: about 8 minutes on 2 cores with ``--queries 300 --faiss-threads 1`` (the run behind
bench/results/mars.json), most of it at 1M cards; more with 500 queries. The first run embeds
the pool (several minutes on a busy 2-core machine). Peak RSS about 11 GB at 1M cards.

``--smoke`` runs every stage above (pool embedding, build with the switch to IVF-SQ8, search,
rank, recruit through the stub and the real embedder, exact scan, recall, nprobe sweep,
variants, updates) at tiny sizes, to check that the benchmark works (about 45 s on a busy
2-core machine, most of it loading the model): a pool of 300 texts embedded into a temporary
cache directory (bench/.cache is not touched) and its JSON in a temporary file unless ``--json``
is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import math
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil
from benchkit import BenchParser, check_args, machine_info, stop_on_signals, write_results

from noosphere.mars.index import VectorIndex
from noosphere.mars.profile import AgentProfile, SkillProfile
from noosphere.mars.ranking import NoSignals, RankingWeights, rank
from noosphere.mars.recruit import Recruiter, RecruitQuery
from noosphere.models.embedding import Embedder
from noosphere.models.text import instruction_of

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "mars.json"
CACHE_DIR = BENCH_DIR / ".cache"
MIX = 0.3
CANDIDATES = 50
TOP = 5
GOAL_CARDS = 1_000_000
SMALL_GOAL_CARDS = 1_000
SMALL_GOAL_MS = 5.0
GOAL_P50_MS = 20.0
GOAL_RECALL = 0.95
NOW_MS = 1_800_000_000_000
MB = 2**20
# --smoke: the larger card count passes exact_threshold (IVF-SQ8, sweep, variants).
SMOKE = {
    "cards": [300, 2000],
    "queries": 20,
    "pool": 300,
    "exact_threshold": 1000,
    "nprobe_sweep": [4, 16],
    "alt_nlist": 16,
    "exact_scans": 5,
    "updates": 20,
}


def progress(message: str) -> None:
    print(f"[mars] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- word lists

# domain: (skill title, verbs, objects); verbs and objects read "<verb> <object>".
DOMAINS: dict[str, tuple[str, list[str], list[str]]] = {
    "accounting": (
        "Bookkeeping",
        ["reconcile", "categorize", "audit", "prepare"],
        ["vendor invoices", "bank statements", "expense reports", "payroll records",
         "quarterly VAT returns", "general ledger entries"],
    ),
    "legal": (
        "Legal review",
        ["review", "draft", "summarize", "redline"],
        ["employment contracts", "non-disclosure agreements", "privacy policies",
         "lease agreements", "terms of service", "GDPR compliance checklists"],
    ),
    "translation": (
        "Translation",
        ["translate", "localize", "proofread", "transcreate"],
        ["marketing copy", "technical manuals", "subtitles", "legal documents",
         "mobile app strings", "medical leaflets"],
    ),
    "software": (
        "Software engineering",
        ["write", "refactor", "debug", "review"],
        ["Python scripts", "REST APIs", "React components", "SQL queries", "unit tests",
         "Rust command-line tools", "Kubernetes manifests"],
    ),
    "data": (
        "Data analysis",
        ["analyze", "clean", "visualize", "forecast"],
        ["sales data", "customer churn", "web traffic logs", "survey results",
         "time series of sensor readings", "A/B test outcomes"],
    ),
    "ml": (
        "Machine learning",
        ["train", "fine-tune", "evaluate", "deploy"],
        ["image classifiers", "text embedding models", "recommendation models",
         "fraud detection models", "speech recognition models", "tabular regression models"],
    ),
    "writing": (
        "Copywriting",
        ["write", "edit", "rewrite", "shorten"],
        ["blog posts", "product descriptions", "press releases", "newsletters",
         "landing page copy", "grant proposals"],
    ),
    "design": (
        "Graphic design",
        ["design", "sketch", "retouch", "animate"],
        ["logos", "social media banners", "slide decks", "infographics", "app icons",
         "packaging mockups"],
    ),
    "security": (
        "Security",
        ["audit", "scan", "harden", "pen-test"],
        ["web applications", "cloud IAM policies", "smart contracts", "Docker images",
         "TLS configurations", "password policies"],
    ),
    "devops": (
        "Operations",
        ["monitor", "automate", "migrate", "scale"],
        ["CI pipelines", "PostgreSQL databases", "Terraform modules", "log aggregation",
         "backup jobs", "DNS records"],
    ),
    "research": (
        "Research",
        ["survey", "summarize", "compare", "fact-check"],
        ["academic papers", "patent filings", "market reports", "clinical trials",
         "news articles", "competitor pricing"],
    ),
    "health": (
        "Health coaching",
        ["plan", "track", "explain", "personalize"],
        ["meal plans", "workout routines", "sleep schedules", "blood test results",
         "medication reminders", "physiotherapy exercises"],
    ),
    "travel": (
        "Travel planning",
        ["plan", "book", "compare", "optimize"],
        ["flight itineraries", "hotel stays", "train connections", "visa requirements",
         "road trips", "conference travel"],
    ),
    "education": (
        "Tutoring",
        ["teach", "quiz", "explain", "grade"],
        ["algebra homework", "chemistry lessons", "essay drafts", "language vocabulary",
         "history exams", "programming exercises"],
    ),
    "hr": (
        "Recruiting",
        ["screen", "rank", "interview", "onboard"],
        ["job applicants", "engineering candidates", "job descriptions", "reference checks",
         "salary benchmarks", "new hires"],
    ),
    "support": (
        "Customer support",
        ["answer", "triage", "route", "escalate"],
        ["support tickets", "refund requests", "live chat questions", "product complaints",
         "warranty claims", "shipping inquiries"],
    ),
    "media": (
        "Audio and video",
        ["transcribe", "edit", "caption", "dub"],
        ["podcast episodes", "interview recordings", "YouTube videos", "webinars",
         "voice memos", "training videos"],
    ),
    "realestate": (
        "Real estate",
        ["appraise", "list", "inspect", "compare"],
        ["apartments", "commercial properties", "rental yields", "mortgage offers",
         "building permits", "renovation quotes"],
    ),
    "science": (
        "Scientific computing",
        ["simulate", "model", "fit", "replicate"],
        ["protein structures", "climate data", "fluid dynamics", "chemical reactions",
         "population genetics", "particle physics events"],
    ),
    "ecommerce": (
        "Online retail",
        ["optimize", "price", "catalogue", "promote"],
        ["Shopify stores", "product listings", "inventory levels", "discount campaigns",
         "marketplace ads", "customer reviews"],
    ),
    "finance": (
        "Financial analysis",
        ["value", "model", "stress-test", "report on"],
        ["startup cap tables", "stock portfolios", "cash flow forecasts", "loan applications",
         "crypto token treasuries", "annual reports"],
    ),
    "logistics": (
        "Logistics",
        ["route", "schedule", "track", "consolidate"],
        ["delivery fleets", "warehouse picking", "container shipments", "last-mile parcels",
         "cold chain transport", "customs declarations"],
    ),
}  # fmt: skip

QUALIFIERS = [
    "in spreadsheets", "with citations", "in plain English", "under tight deadlines",
    "following ISO standards", "using open-source tools", "in German and French",
    "with weekly reports", "on a fixed budget", "with step-by-step explanations",
    "in Markdown", "for regulatory filings", "at scale", "with privacy guarantees",
    "in real time", "from scanned PDFs", "with charts", "in Japanese",
    "for accessibility", "with version history",
]  # fmt: skip
AUDIENCES = [
    "for small businesses", "for startups", "for hospitals", "for universities",
    "for law firms", "for NGOs", "for freelancers", "for government agencies",
    "for online shops", "for families", "for banks", "for game studios",
]  # fmt: skip

# Held-out paraphrases for the queries: other verbs, other templates.
VERB_SYNONYMS: dict[str, str] = {
    "reconcile": "match up", "categorize": "sort out", "audit": "check thoroughly",
    "prepare": "put together", "review": "look over", "draft": "write up",
    "summarize": "give me the gist of", "redline": "mark up changes to",
    "translate": "convert into another language", "localize": "adapt for a local market",
    "proofread": "check for typos", "transcreate": "creatively adapt", "write": "produce",
    "refactor": "clean up the code of", "debug": "find the bug in", "analyze": "dig into",
    "clean": "tidy up", "visualize": "make charts of", "forecast": "predict",
    "train": "build and train", "fine-tune": "adapt", "evaluate": "benchmark",
    "deploy": "ship to production", "edit": "polish", "rewrite": "rephrase",
    "shorten": "condense", "design": "create a design for", "sketch": "rough out",
    "retouch": "touch up", "animate": "add motion to", "scan": "check for vulnerabilities in",
    "harden": "lock down", "pen-test": "try to break into", "monitor": "keep an eye on",
    "automate": "script away the manual work of", "migrate": "move", "scale": "grow",
    "survey": "give an overview of", "compare": "weigh up", "fact-check": "verify claims in",
    "plan": "organize", "track": "keep a log of", "explain": "walk me through",
    "personalize": "tailor", "book": "reserve", "optimize": "improve", "teach": "help me learn",
    "quiz": "test me on", "grade": "mark", "screen": "shortlist", "rank": "order by merit",
    "interview": "run interviews with", "onboard": "get started", "answer": "respond to",
    "triage": "prioritize", "route": "assign", "escalate": "hand off urgent",
    "transcribe": "turn into text", "caption": "add subtitles to", "dub": "voice over",
    "appraise": "estimate the value of", "list": "advertise", "inspect": "check the state of",
    "simulate": "run simulations of", "model": "build a model of", "fit": "fit curves to",
    "replicate": "reproduce results on", "price": "set prices for", "catalogue": "organize",
    "promote": "market", "value": "put a price on", "stress-test": "test worst cases for",
    "report on": "write a report about", "schedule": "plan the timing of",
    "consolidate": "combine",
}  # fmt: skip
QUERY_TEMPLATES = [
    "I need someone to {verb} our {obj} {qual}.",
    "Looking for an agent that can {verb} {obj} {aud}.",
    "Can you {verb} my {obj}? Ideally {qual}.",
    "Task: {verb} the {obj} {aud}, results {qual}.",
    "We want help to {verb} {obj}; it is {aud}.",
    "Please {verb} these {obj} {qual}",
]


def pool_texts(size: int, seed: int) -> list[str]:
    """``size`` distinct skill texts, deterministic for (size, seed)."""
    rng = random.Random(seed)
    combos = [
        (domain, verb, obj, qual, aud)
        for domain, (_, verbs, objects) in DOMAINS.items()
        for verb in verbs
        for obj in objects
        for qual in QUALIFIERS
        for aud in AUDIENCES
    ]
    if size > len(combos):
        raise SystemExit(f"--pool is at most {len(combos)}")
    texts = []
    for domain, verb, obj, qual, aud in rng.sample(combos, size):
        title = DOMAINS[domain][0]
        texts.append(f"{title}: {verb} {obj} {qual} {aud}")
    return texts


def query_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        _, verbs, objects = DOMAINS[rng.choice(list(DOMAINS))]
        verb = VERB_SYNONYMS.get(v := rng.choice(verbs), v)
        text = rng.choice(QUERY_TEMPLATES).format(
            verb=verb,
            obj=rng.choice(objects),
            qual=rng.choice(QUALIFIERS),
            aud=rng.choice(AUDIENCES),
        )
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def pool_vectors(
    embedder: Embedder, texts: list[str], seed: int, cache_dir: Path
) -> tuple[np.ndarray, bool]:
    path = cache_dir / f"mars-pool-{len(texts)}-{seed}.npy"
    if path.exists():
        vectors = np.load(path)
        if vectors.shape == (len(texts), 384):
            return vectors, True
    progress(f"embedding a pool of {len(texts)} texts (once; cached in {path})")
    vectors = np.concatenate(
        [embedder.encode(texts[i : i + 2048]) for i in range(0, len(texts), 2048)]
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, False


# ----------------------------------------------------------------------------------- the cards


class Cards:
    """``n`` cards: profiles and their skill vectors (rows in vector-id order)."""

    def __init__(self, n: int, pool: np.ndarray, texts: list[str], seed: int) -> None:
        rng = np.random.default_rng(seed + n)
        self.n = n
        self.counts = rng.integers(1, 4, size=n)  # 1..3 skills
        total = int(self.counts.sum())
        primary = rng.integers(0, len(pool), size=total)
        secondary = rng.integers(0, len(pool), size=total)
        self.primary = primary
        self.vectors = mix(pool, primary, secondary)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.owner = np.repeat(np.arange(n), self.counts)  # vector row -> card number
        self.prices = rng.integers(0, 200, size=n).tolist()
        self.latencies = rng.uniform(200, 20_000, size=n).tolist()
        self.ages = rng.uniform(0, 3_600_000, size=n).tolist()
        self._rng = rng
        self._texts = texts

    @staticmethod
    def agent_id(i: int) -> str:
        return f"agent-{i:07d}"

    def profiles(self) -> dict[str, AgentProfile]:
        skills: dict[int, SkillProfile] = {}

        def skill(p: int) -> SkillProfile:
            s = skills.get(p)
            if s is None:
                name, _, description = self._texts[p].partition(": ")
                s = skills[p] = SkillProfile(name=name, description=description)
            return s

        out = {}
        primary = self.primary.tolist()
        offsets = self.offsets.tolist()
        for i in range(self.n):
            first = skill(primary[offsets[i]])
            issued = NOW_MS - int(self.ages[i])
            out[self.agent_id(i)] = AgentProfile(
                agent_id=self.agent_id(i),
                name=f"{first.name} agent {i}",
                description=f"Offers {first.description}",
                skills=tuple(skill(p) for p in primary[offsets[i] : offsets[i + 1]]),
                price=self.prices[i],
                latency_ms=self.latencies[i],
                issued_at=issued,
                expires_at=issued + 3_600_000,
            )
        return out

    def card_vectors(self, i: int) -> np.ndarray:
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]


def mix(pool: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((len(a), pool.shape[1]), dtype=np.float32)
    for start in range(0, len(a), 200_000):
        stop = start + 200_000
        chunk = pool[a[start:stop]] + MIX * pool[b[start:stop]]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start:stop] = chunk
    return out


# ---------------------------------------------------------------------------------- measuring


def rss() -> int:
    return psutil.Process().memory_info().rss


def release_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank_ = max(1, math.ceil(len(ordered) * pct / 100))
    return ordered[min(rank_, len(ordered)) - 1]


def stats(samples: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": sum(samples) / len(samples) if samples else None,
        "max_ms": max(samples) if samples else None,
        "samples": len(samples),
    }


def time_each(fn: Callable[[int], Any], count: int, warmup: int = 5) -> list[float]:
    for i in range(min(warmup, count)):
        fn(i)
    out = []
    for i in range(count):
        started = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - started) * 1e3)
    return out


def faiss_bytes(index: faiss.Index) -> int:
    """Bytes held by the faiss index (vectors or codes, ids, centroids; maps not counted)."""
    if isinstance(index, faiss.IndexIVF):
        return index.ntotal * (index.code_size + 8) + index.nlist * index.d * 4
    if isinstance(index, faiss.IndexIDMap2):
        return index.ntotal * (index.d * 4 + 8)
    return index.ntotal * index.d * 4


def describe(index: VectorIndex) -> str:
    raw = index._index
    if isinstance(raw, faiss.IndexIVFScalarQuantizer):
        return f"IVF{raw.nlist}-SQ8 nprobe {raw.nprobe}"
    if isinstance(raw, faiss.IndexIVFFlat):
        return f"IVF{raw.nlist}-Flat nprobe {raw.nprobe}"
    return "exact (flat)"


def ground_truth(cards: Cards, queries: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """Exact 10 best agents per query (card numbers) and the exact 10 best vector ids."""
    fetch = min(len(cards.vectors), 100)
    _, ids = faiss.knn(queries, cards.vectors, fetch, metric=faiss.METRIC_INNER_PRODUCT)
    agents = []
    for row in ids:
        seen: list[int] = []
        for vector_id in row.tolist():
            card = int(cards.owner[vector_id])
            if card not in seen:
                seen.append(card)
                if len(seen) == 10:
                    break
        agents.append(seen)
    return agents, ids[:, :10]


def recall(
    index: VectorIndex, queries: np.ndarray, truth: list[list[int]], truth_vectors: np.ndarray
) -> dict[str, float]:
    at10 = at50 = vec = 0.0
    for q, exact, exact_vectors in zip(queries, truth, truth_vectors, strict=True):
        want = {Cards.agent_id(i) for i in exact}
        got10 = {h.agent_id for h in index.search(q, 10)}
        got50 = {h.agent_id for h in index.search(q, CANDIDATES)}
        at10 += len(want & got10) / len(want)
        at50 += len(want & got50) / len(want)
        _, ids = index._index.search(q.reshape(1, -1), 10)
        vec += len(set(ids[0].tolist()) & set(exact_vectors.tolist())) / 10
    n = len(queries)
    return {"recall_at_10": at10 / n, "recall_10_at_50": at50 / n, "vector_recall_at_10": vec / n}


class StubEmbedder:
    """Returns the precomputed vector of every text a recruit embeds for a query (the query and
    its instruction part: ``Recruiter._search`` embeds both), so stages 1+3 run without the
    model. A text it was not given is a bug in this benchmark, not a miss: KeyError."""

    def __init__(self, by_text: dict[str, np.ndarray]) -> None:
        self._by_text = by_text

    def encode_one(self, text: str) -> np.ndarray:
        return self._by_text[text]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._by_text[t] for t in texts])


def recruit_latency(
    recruiter: Recruiter, texts: list[str], *, use_filter: bool = False, use_lexical: bool = True
) -> list[float]:
    async def run() -> list[float]:
        out = []
        for i, text in enumerate([*texts[:5], *texts]):
            query = RecruitQuery(
                task=text,
                top=TOP,
                candidates=CANDIDATES,
                use_filter=use_filter,
                use_lexical=use_lexical,
            )
            started = time.perf_counter()
            result = await recruiter.recruit(query, requester="bench", now_ms=NOW_MS)
            elapsed = (time.perf_counter() - started) * 1e3
            if not result.chosen:
                raise RuntimeError("recruit chose nobody")
            if i >= 5:
                out.append(elapsed)
        return out

    return asyncio.run(run())


def search_latencies(index: VectorIndex, queries: np.ndarray) -> list[float]:
    return time_each(lambda i: index.search(queries[i], CANDIDATES), len(queries))


def sweep(
    index: VectorIndex,
    label: str,
    nprobes: list[int],
    queries: np.ndarray,
    truth: list[list[int]],
    truth_vectors: np.ndarray,
    profiles: dict[str, AgentProfile],
) -> list[dict[str, Any]]:
    raw = index._index
    default = raw.nprobe
    weights = RankingWeights()
    signals = NoSignals()
    rows = []
    for nprobe in nprobes:
        raw.nprobe = nprobe

        def stage13(i: int) -> None:
            hits = index.search(queries[i], CANDIDATES)
            rank(
                [(profiles[h.agent_id], h.score) for h in hits],
                requester="bench",
                signals=signals,
                weights=weights,
                now_ms=NOW_MS,
            )

        search = search_latencies(index, queries)
        both = time_each(stage13, len(queries))
        rows.append(
            {
                "variant": label,
                "nlist": raw.nlist,
                "nprobe": nprobe,
                "search": stats(search),
                "search_rank_direct": stats(both),
                **recall(index, queries, truth, truth_vectors),
            }
        )
        progress(
            f"  {label} nprobe {nprobe}: search p50 {rows[-1]['search']['p50_ms']:.2f} ms,"
            f" recall@10 {rows[-1]['recall_at_10']:.3f}"
        )
    raw.nprobe = default
    return rows


def build_variants(
    main: VectorIndex, cards: Cards, nlist: int, seed: int
) -> list[tuple[str, VectorIndex, dict[str, Any]]]:
    """IVF-SQ8 and IVF-Flat with ``nlist`` lists over the same vectors and ids."""
    rng = np.random.default_rng(seed)
    sample_size = min(len(cards.vectors), 64 * nlist)
    sample = cards.vectors[np.sort(rng.choice(len(cards.vectors), sample_size, replace=False))]
    quantizer = faiss.IndexFlatIP(main.dimension)
    started = time.perf_counter()
    sq8 = faiss.IndexIVFScalarQuantizer(
        quantizer,
        main.dimension,
        nlist,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    sq8.train(sample)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    _, assign = quantizer.search(cards.vectors, 1)
    assign_s = time.perf_counter() - started
    ids = np.arange(len(cards.vectors), dtype=np.int64)
    flat = faiss.IndexIVFFlat(quantizer, main.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    flat.is_trained = True
    out = []
    for label, ivf in ((f"IVF{nlist}-SQ8", sq8), (f"IVF{nlist}-Flat", flat)):
        started = time.perf_counter()
        for start in range(0, len(ids), 100_000):
            stop = start + 100_000
            x = np.ascontiguousarray(cards.vectors[start:stop])
            ivf.add_core(
                len(x),
                faiss.swig_ptr(x),
                faiss.swig_ptr(ids[start:stop]),
                faiss.swig_ptr(np.ascontiguousarray(assign[start:stop, 0])),
            )
        ivf.nprobe = main.nprobe
        variant = VectorIndex(dimension=main.dimension, nprobe=main.nprobe)
        variant._index = ivf
        variant._approximate = True
        variant._owner = main._owner
        variant._ids = main._ids
        info = {
            "variant": label,
            "nlist": nlist,
            "train_vectors": sample_size,
            "train_s": train_s,
            "assign_s": assign_s,
            "add_s": time.perf_counter() - started,
            "faiss_mb": faiss_bytes(ivf) / MB,
        }
        out.append((label, variant, info))
    return out


def measure(
    n: int,
    args: argparse.Namespace,
    pool: np.ndarray,
    texts: list[str],
    qtexts: list[str],
    queries: np.ndarray,
    stub_vectors: dict[str, np.ndarray],
    embedder: Embedder,
    largest: bool,
) -> dict[str, Any]:
    release_memory()
    progress(f"{n} cards: generating vectors")
    cards = Cards(n, pool, texts, args.seed)
    before = rss()
    started = time.perf_counter()
    profiles = cards.profiles()
    profiles_s = time.perf_counter() - started
    after_profiles = rss()

    progress(f"{n} cards: building the index ({len(cards.vectors)} vectors)")
    index = VectorIndex(exact_threshold=args.exact_threshold, nprobe=args.nprobe)
    stub = Recruiter(StubEmbedder(stub_vectors), index=index)  # type: ignore[arg-type]
    stub.index = index  # Recruiter(index=...) replaces an empty index (``index or ...``)
    stub.profiles = profiles
    started = time.perf_counter()
    for i in range(n):
        index.upsert(Cards.agent_id(i), cards.card_vectors(i))
    build_s = time.perf_counter() - started
    after_index = rss()
    progress(f"{n} cards: building the lexical index")
    started = time.perf_counter()
    for profile in profiles.values():
        stub.lexical.upsert(profile)
    stub.lexical.commit()
    lexical_build_s = time.perf_counter() - started
    after_lexical = rss()
    row: dict[str, Any] = {
        "cards": n,
        "vectors": len(cards.vectors),
        "index": describe(index),
        "approximate": index.approximate,
        "profiles_s": profiles_s,
        "build_s": build_s,
        "build_us_per_card": build_s / n * 1e6,
        "rss_profiles_mb": (after_profiles - before) / MB,
        "rss_index_mb": (after_index - after_profiles) / MB,
        "faiss_mb": faiss_bytes(index._index) / MB,
        "lexical_build_s": lexical_build_s,
        "lexical_build_us_per_card": lexical_build_s / n * 1e6,
        "rss_lexical_mb": (after_lexical - after_index) / MB,
    }
    if index.approximate:
        row["nlist"] = index._index.nlist

    progress(f"{n} cards: exact ground truth")
    started = time.perf_counter()
    truth, truth_vectors = ground_truth(cards, queries)
    row["ground_truth_s"] = time.perf_counter() - started
    row.update(recall(index, queries, truth, truth_vectors))

    progress(f"{n} cards: latency")
    weights, signals = RankingWeights(), NoSignals()
    hits = [index.search(q, CANDIDATES) for q in queries]
    row["search"] = stats(search_latencies(index, queries))
    row["rank"] = stats(
        time_each(
            lambda i: rank(
                [(profiles[h.agent_id], h.score) for h in hits[i]],
                requester="bench",
                signals=signals,
                weights=weights,
                now_ms=NOW_MS,
            ),
            len(queries),
        )
    )
    row["lexical"] = stats(
        time_each(lambda i: stub.lexical.search(qtexts[i], CANDIDATES), len(qtexts))
    )
    row["vector_rank"] = stats(recruit_latency(stub, qtexts, use_lexical=False))
    row["search_rank"] = stats(recruit_latency(stub, qtexts))
    row["pipeline"] = stats(recruit_latency(stub, qtexts, use_filter=True))
    real = Recruiter(embedder, index=index, lexical=stub.lexical)
    real.index, real.profiles = index, profiles
    embedder._cache.clear()
    row["embed_search_rank"] = stats(recruit_latency(real, qtexts))
    scans = min(len(queries), args.exact_scans)
    row["exact_scan"] = stats(
        time_each(
            lambda i: faiss.knn(
                queries[i : i + 1], cards.vectors, CANDIDATES, metric=faiss.METRIC_INNER_PRODUCT
            ),
            scans,
            warmup=2,
        )
    )

    row["sweep"] = []
    if index.approximate:
        progress(f"{n} cards: nprobe sweep")
        row["sweep"] += sweep(
            index, "default", args.nprobe_sweep, queries, truth, truth_vectors, profiles
        )
    row["variants"] = []
    if largest and args.alt_nlist:
        progress(f"{n} cards: variants with {args.alt_nlist} lists")
        for label, variant, info in build_variants(index, cards, args.alt_nlist, args.seed):
            progress(f"  {label}: train {info['train_s']:.0f} s, add {info['add_s']:.0f} s")
            row["variants"].append(info)
            row["sweep"] += sweep(
                variant, label, args.nprobe_sweep, queries, truth, truth_vectors, profiles
            )
            variant._index = faiss.IndexFlatIP(index.dimension)
            del variant
            release_memory()

    progress(f"{n} cards: updates")
    rng = random.Random(args.seed + n)
    changed = rng.sample(range(n), min(args.updates, n // 2))
    removed = rng.sample(sorted(set(range(n)) - set(changed)), min(args.updates, n // 2))
    fresh = mix(
        pool,
        np.asarray(rng.choices(range(len(pool)), k=3 * len(changed))),
        np.asarray(rng.choices(range(len(pool)), k=3 * len(changed))),
    )

    def update(j: int) -> None:
        i = changed[j]
        index.upsert(Cards.agent_id(i), fresh[3 * j : 3 * j + int(cards.counts[i])])
        stub.lexical.upsert(profiles[Cards.agent_id(i)])  # queued; committed by a search

    def remove(j: int) -> None:
        stub.remove(Cards.agent_id(removed[j]))

    row["upsert"] = stats(time_each(update, len(changed), warmup=0))
    row["remove"] = stats(time_each(remove, len(removed), warmup=0))
    row["updates"] = len(changed)
    return row


# ------------------------------------------------------------------------------------- output


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def pair(s: dict[str, Any]) -> str:
    return f"{fmt(s['p50_ms'], '.2f')} / {fmt(s['p99_ms'], '.2f')}"


def console() -> Any:
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=220)


def goal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    small = next((r for r in rows if r["cards"] == SMALL_GOAL_CARDS), None)
    small_goal: dict[str, Any] = {"evaluated": small is not None}
    if small is not None:
        small_goal.update(
            cards=SMALL_GOAL_CARDS,
            pipeline_p50_ms=small["pipeline"]["p50_ms"],
            pipeline_mean_ms=small["pipeline"]["mean_ms"],
            pass_=small["pipeline"]["mean_ms"] <= SMALL_GOAL_MS,
        )
    row = next((r for r in rows if r["cards"] == GOAL_CARDS), None)
    if row is None:
        return {
            "evaluated": False,
            "reason": f"{GOAL_CARDS} cards were not measured",
            "small": small_goal,
        }
    p50 = row["pipeline"]["p50_ms"]
    latency_ok = p50 < GOAL_P50_MS
    recall_ok = row["recall_at_10"] >= GOAL_RECALL
    meeting = [
        {"variant": s["variant"], "nlist": s["nlist"], "nprobe": s["nprobe"]}
        for s in row["sweep"]
        if s["search_rank_direct"]["p50_ms"] < GOAL_P50_MS and s["recall_at_10"] >= GOAL_RECALL
    ]
    return {
        "evaluated": True,
        "cards": GOAL_CARDS,
        "index": row["index"],
        "pipeline_p50_ms": p50,
        "search_rank_p50_ms": row["search_rank"]["p50_ms"],
        "vector_rank_p50_ms": row["vector_rank"]["p50_ms"],
        "recall_at_10": row["recall_at_10"],
        "latency_pass": latency_ok,
        "recall_pass": recall_ok,
        "pass": latency_ok and recall_ok,
        "swept_configurations_meeting_goal": meeting,
        "small": small_goal,
    }


def print_report(
    rows: list[dict[str, Any]], embed: dict[str, Any], args: argparse.Namespace
) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"cards: 1-3 skills each, skill vector = normalize(a + {MIX} b) of real all-MiniLM-L6-v2"
        f" vectors of {args.pool} generated skill texts; {args.queries}"
        f" held-out paraphrase queries embedded with the real model; faiss threads"
        f" {faiss.omp_get_max_threads()}"
    )
    table = Table(
        title=f"Recruit stages 1+3, {args.queries} queries, candidates {CANDIDATES}:"
        " p50 / p99 ms (VectorIndex defaults unless set)"
    )
    columns = [
        "cards",
        "vectors",
        "index",
        "build s",
        "lex build s",
        "RSS prof MB",
        "RSS idx MB",
        "RSS lex MB",
        "faiss MB",
        "search",
        "lexical",
        "rank",
        "vector+rank",
        "search+rank",
        "pipeline",
        "embed+search+rank",
        "exact scan",
        "recall@10",
        "10@50",
        "vec r@10",
        "upsert ms",
        "remove ms",
    ]
    for name in columns:
        table.add_column(name, justify="left" if name == "index" else "right")
    for r in rows:
        table.add_row(
            f"{r['cards']:,}",
            f"{r['vectors']:,}",
            r["index"],
            f"{r['build_s']:.1f}",
            f"{r['lexical_build_s']:.1f}",
            f"{r['rss_profiles_mb']:.0f}",
            f"{r['rss_index_mb']:.0f}",
            f"{r['rss_lexical_mb']:.0f}",
            f"{r['faiss_mb']:.0f}",
            pair(r["search"]),
            pair(r["lexical"]),
            pair(r["rank"]),
            pair(r["vector_rank"]),
            pair(r["search_rank"]),
            pair(r["pipeline"]),
            pair(r["embed_search_rank"]),
            pair(r["exact_scan"]),
            f"{r['recall_at_10']:.3f}",
            f"{r['recall_10_at_50']:.3f}",
            f"{r['vector_recall_at_10']:.3f}",
            pair(r["upsert"]),
            pair(r["remove"]),
        )
    out.print(table)
    out.print(
        f"query embedding alone (encode_one, one forward pass): {pair(embed)} ms p50 / p99;"
        " search = VectorIndex.search; lexical = LexicalIndex.search; vector+rank ="
        " Recruiter.recruit with stage 1 on vectors alone, no stage 2, query vector precomputed"
        " (the figure before the lexical half); search+rank = the same with hybrid stage 1;"
        " pipeline = all three stages; embed+search+rank = search+rank with the real embedder;"
        " exact scan = brute-force scan of all vectors for one query; upsert/remove = one card"
        " per call, existing cards (upsert: vectors + a queued lexical document)"
    )

    sweeps = [(r["cards"], s) for r in rows for s in r["sweep"]]
    if sweeps:
        sw = Table(title="nprobe sweep: latency (p50 / p99 ms) against recall")
        for name in (
            "cards",
            "index",
            "nlist",
            "nprobe",
            "search",
            "search+rank",
            "recall@10",
            "10@50",
            "vec r@10",
        ):
            sw.add_column(name, justify="left" if name == "index" else "right")
        for i, (cards, s) in enumerate(sweeps):
            nxt = sweeps[i + 1][1] if i + 1 < len(sweeps) else None
            sw.add_row(
                f"{cards:,}",
                s["variant"],
                str(s["nlist"]),
                str(s["nprobe"]),
                pair(s["search"]),
                pair(s["search_rank_direct"]),
                f"{s['recall_at_10']:.3f}",
                f"{s['recall_10_at_50']:.3f}",
                f"{s['vector_recall_at_10']:.3f}",
                end_section=nxt is not None and nxt["variant"] != s["variant"],
            )
        out.print(sw)
        out.print(
            "search+rank here = VectorIndex.search + ranking.rank called directly (no asyncio);"
            " 'default' = the index VectorIndex built, other rows = variants on the same vectors"
        )
    for r in rows:
        for v in r["variants"]:
            out.print(
                f"{r['cards']:,} cards, {v['variant']}: trained on {v['train_vectors']:,} vectors"
                f" in {v['train_s']:.1f} s, assignment {v['assign_s']:.1f} s, add"
                f" {v['add_s']:.1f} s, {v['faiss_mb']:.0f} MB"
            )

    g = goal(rows)
    small = g["small"]
    if small["evaluated"]:
        out.print(
            f"goal: at {SMALL_GOAL_CARDS:,} cards, the full pipeline (query embedding excluded)"
            f" at most {SMALL_GOAL_MS:g} ms per query: mean {small['pipeline_mean_ms']:.2f} ms,"
            f" p50 {small['pipeline_p50_ms']:.2f} ms => {'PASS' if small['pass_'] else 'FAIL'}"
        )
    if g["evaluated"]:
        verdict = "PASS" if g["pass"] else "FAIL"
        out.print(
            f"goal: at {GOAL_CARDS:,} cards on this machine, the full pipeline p50 under"
            f" {GOAL_P50_MS:g} ms and recall@10 >= {GOAL_RECALL} ({g['index']}): p50"
            f" {g['pipeline_p50_ms']:.2f} ms ({'PASS' if g['latency_pass'] else 'FAIL'}),"
            f" recall@10 {g['recall_at_10']:.3f} ({'PASS' if g['recall_pass'] else 'FAIL'})"
            f" => {verdict}"
        )
        if g["swept_configurations_meeting_goal"]:
            configs = ", ".join(
                f"{c['variant']} nlist {c['nlist']} nprobe {c['nprobe']}"
                for c in g["swept_configurations_meeting_goal"]
            )
            out.print(f"swept configurations that meet the goal: {configs}")
        else:
            out.print("no swept configuration meets the goal")
    else:
        out.print(f"goal: not evaluated ({g['reason']})")


# ----------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = BenchParser("bench/mars.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument(
        "--cards",
        type=int,
        nargs="+",
        default=[1_000, 10_000, 100_000, 1_000_000],
        help="card counts",
    )
    parser.add_argument("--queries", type=int, default=500, help="queries per card count")
    parser.add_argument("--pool", type=int, default=30_000, help="distinct embedded skill texts")
    parser.add_argument(
        "--exact-threshold",
        type=int,
        default=50_000,
        help="VectorIndex exact_threshold (vectors; the index's default)",
    )
    parser.add_argument(
        "--nprobe", type=int, default=32, help="VectorIndex nprobe (the index's default)"
    )
    parser.add_argument(
        "--nprobe-sweep",
        type=int,
        nargs="*",
        default=[8, 16, 32, 64, 128],
        help="nprobe values swept wherever the index is approximate",
    )
    parser.add_argument(
        "--alt-nlist",
        type=int,
        default=1024,
        help="lists of the IVF-SQ8 / IVF-Flat variants at the largest card count (0: none)",
    )
    parser.add_argument(
        "--exact-scans", type=int, default=50, help="queries timed for the exact scan"
    )
    parser.add_argument("--updates", type=int, default=1000, help="cards upserted and removed")
    parser.add_argument(
        "--faiss-threads",
        type=int,
        default=0,
        help="faiss.omp_set_num_threads before measuring (0: faiss's default, one per core)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of texts and cards")
    args = parser.parse_args(argv)
    check_args(
        parser,
        [
            (all(100 <= n <= 5_000_000 for n in args.cards), "--cards values must be 100..5M"),
            (1 <= args.queries <= 10_000, "--queries must be in 1..10000"),
            (args.pool >= 1_000 or args.smoke, "--pool must be >= 1000"),
            (args.nprobe >= 1, "--nprobe must be >= 1"),
            (all(p >= 1 for p in args.nprobe_sweep), "--nprobe-sweep values must be >= 1"),
            (args.alt_nlist == 0 or args.alt_nlist >= 16, "--alt-nlist must be 0 or >= 16"),
            (args.exact_scans >= 1, "--exact-scans must be >= 1"),
            (args.updates >= 1, "--updates must be >= 1"),
            (args.faiss_threads >= 0, "--faiss-threads must be >= 0"),
        ],
    )
    args.cards = sorted(set(args.cards))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    info = machine_info(("faiss-cpu", "numpy", "sentence-transformers", "torch"))
    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)
    info["faiss_omp_threads"] = faiss.omp_get_max_threads()
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    # A smoke run embeds its small pool into a temporary directory, never into bench/.cache.
    smoke_cache = (
        tempfile.TemporaryDirectory(prefix="noosphere-bench-mars-") if args.smoke else None
    )
    cache_dir = Path(smoke_cache.name) if smoke_cache is not None else CACHE_DIR
    try:
        embedder = Embedder()
        embedder.load()
        texts = pool_texts(args.pool, args.seed)
        pool, cached = pool_vectors(embedder, texts, args.seed, cache_dir)

        qtexts = query_texts(args.queries, args.seed)
        overlap = set(qtexts) & set(texts)
        if overlap:
            raise RuntimeError(f"{len(overlap)} queries are pool texts")
        progress(f"embedding {len(qtexts)} queries one by one")
        embedder.encode(["warm up the model", "and its tokenizer"])
        vectors: list[np.ndarray] = []
        embed_ms = time_each(lambda i: vectors.append(embedder.encode_one(qtexts[i])), len(qtexts))
        queries = np.ascontiguousarray(np.stack(vectors[-len(qtexts) :]))
        embed = stats(embed_ms)
        stub_vectors = dict(zip(qtexts, queries, strict=True))
        parts = sorted({instruction_of(t) for t in qtexts} - set(stub_vectors))
        if parts:
            progress(f"embedding {len(parts)} distinct instruction parts of the queries")
            stub_vectors |= dict(zip(parts, embedder.encode(parts), strict=True))
        for n in args.cards:
            rows.append(
                measure(
                    n,
                    args,
                    pool,
                    texts,
                    qtexts,
                    queries,
                    stub_vectors,
                    embedder,
                    n == args.cards[-1],
                )
            )
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        if smoke_cache is not None:
            smoke_cache.cleanup()
    print_report(rows, embed, args)
    total = time.monotonic() - started
    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        "benchmark": "bench/mars.py",
        "machine": info,
        "parameters": parameters,
        "cards_model": {
            "skills_per_card": "1..3 uniform",
            "skill_vector": f"normalize(a + {MIX} * b), a, b real vectors of pool texts",
            "pool_texts": args.pool,
            "pool_cached": cached,
            "query_texts_sample": qtexts[:5],
            "pool_texts_sample": texts[:5],
        },
        "candidates": CANDIDATES,
        "query_embedding": embed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "results": rows,
        "goal": goal(rows),
        "total_run_s": total,
    }
    write_results(args.json, payload)
    console().print(f"total run time {total:.0f} s; results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
