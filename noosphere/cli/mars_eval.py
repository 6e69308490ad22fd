"""The ``noosphere mars`` commands (Recruit): ``mars eval`` scores the recruiting pipeline's
stages and two baselines on an evaluation set (cards and graded queries as JSONL), offline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from noosphere.mars.evaluation import EvalReport

from .kit import JsonOption, err, fail, out, print_json

mars_app = typer.Typer(
    help="Recruiting (MARS): evaluate the pipeline offline.", no_args_is_help=True
)

ALL_CONFIGS = "bm25,dense,vector,vector+filter,vector+filter+rank"
LLM_CONFIG = "vector+filter+llm"


@mars_app.command("eval")
def mars_eval(
    cards: Annotated[
        Path, typer.Option("--cards", help="Agent cards, JSONL: {id, name, description, skills}.")
    ],
    queries: Annotated[Path, typer.Option("--queries", help="Queries, JSONL: {query, relevant}.")],
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N queries.")
    ] = None,
    configs: Annotated[
        str,
        typer.Option(
            "--configs",
            help=f"Comma list of {ALL_CONFIGS}; {LLM_CONFIG} adds the LLM judge"
            " (endpoint from NOOSPHERE_LLM_BASE_URL / NOOSPHERE_LLM_MODEL).",
        ),
    ] = ALL_CONFIGS,
    candidates: Annotated[
        int, typer.Option("--candidates", min=1, max=1000, help="Stage 1 candidate pool.")
    ] = 50,
    judge_schema: Annotated[
        bool,
        typer.Option(
            "--judge-schema",
            help="Constrain the LLM judge's answer to its JSON schema (llama.cpp's"
            " response_format dialect, e.g. `make llm-serve`).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recall@1/5/10, MRR and nDCG@10 of each configuration (baselines and MARS stages)."""
    from noosphere.mars.evaluation import (
        LLM_STAGE,
        EvalError,
        load_cards,
        load_queries,
        parse_configs,
        run_eval,
    )
    from noosphere.models.llm import LlmBackend, LlmError, llm_config_from_env

    try:
        chosen = parse_configs(configs)
        profiles = load_cards(cards)
        judged = load_queries(queries, known=[p.agent_id for p in profiles])
        llm_config = llm_config_from_env() if LLM_STAGE in chosen else None
    except (EvalError, LlmError) as exc:
        fail(str(exc))
    if LLM_STAGE in chosen and llm_config is None:
        fail(
            f"{LLM_STAGE} needs an LLM endpoint: set NOOSPHERE_LLM_BASE_URL and NOOSPHERE_LLM_MODEL"
        )
    if limit is not None:
        judged = judged[:limit]

    def progress(message: str) -> None:
        if not as_json:
            err.print(f"[dim]{message}[/]", highlight=False)

    async def evaluate() -> EvalReport:
        llm = LlmBackend(llm_config) if llm_config is not None else None
        try:
            return await run_eval(
                profiles, judged, chosen, candidates=candidates, progress=progress, llm=llm,
                judge_schema=judge_schema,
            )  # fmt: skip
        finally:
            if llm is not None:
                await llm.aclose()

    report = asyncio.run(evaluate())
    if as_json:
        return print_json(report.as_dict())
    table = Table(title=f"MARS eval: {report.cards} agents, {report.queries} queries")
    table.add_column("configuration", no_wrap=True)
    for column in ("Recall@1", "Recall@5", "Recall@10", "MRR", "nDCG@10", "ms/query"):
        table.add_column(column, justify="right")
    for result in report.results:
        row = result.as_dict()
        table.add_row(
            result.config,
            *(f"{row[m]:.3f}" for m in ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")),
            f"{row['ms_per_query']:.1f}",
        )
    out.print(table)
    notes = [
        f"{r.config}: {r.rejected_relevant:.2f} relevant agents rejected per query"
        for r in report.results
        if r.rejected_relevant is not None
    ]
    notes += [
        f"LLM judge: failed on {r.judge['failed_share']:.0%} of queries, vetoed"
        f" {r.judge['vetoes_per_query']:.2f} agents per query"
        f" ({r.judge['relevant_vetoed_per_query']:.2f} relevant)"
        for r in report.results
        if r.judge is not None
    ]
    out.print(
        f"[dim]setup (model, embeddings, indexes) {report.setup_seconds:.1f} s; total"
        f" {report.total_seconds:.1f} s. Recall@k = share of queries with a relevant agent in the"
        f" top k.{' ' + '; '.join(notes) + '.' if notes else ''}[/]"
    )
