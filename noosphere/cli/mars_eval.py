"""The ``noosphere mars`` commands (Recruit): ``mars eval`` scores the recruiting pipeline's
stages and the baselines on evaluation sets (cards and graded queries as JSONL), offline, with
the time of each stage, optionally on a tuning and a report half, and writes JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from noosphere.mars.evaluation import EvalReport

from .kit import JsonOption, err, fail, out, print_json

mars_app = typer.Typer(
    help="Recruiting (MARS): evaluate the pipeline offline.", no_args_is_help=True
)

ALL_CONFIGS = "bm25,dense,dense-mpnet,lexical,vector,hybrid,hybrid+filter,hybrid+filter+rank"
DEFAULT_CONFIGS = "bm25,dense,lexical,vector,hybrid,hybrid+filter,hybrid+filter+rank"
LLM_CONFIG = "hybrid+filter+llm"
_METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")


@mars_app.command("eval")
def mars_eval(
    cards: Annotated[
        Path | None,
        typer.Option("--cards", help="Agent cards, JSONL: {id, name, description, skills}."),
    ] = None,
    queries: Annotated[
        Path | None, typer.Option("--queries", help="Queries, JSONL: {query, relevant}.")
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="A folder with cards.jsonl and queries.jsonl (repeat for several sets; "
            "instead of --cards/--queries).",
        ),
    ] = None,
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
    ] = DEFAULT_CONFIGS,
    candidates: Annotated[
        int, typer.Option("--candidates", min=1, max=1000, help="Stage 1 candidate pool.")
    ] = 50,
    split: Annotated[
        bool, typer.Option("--split", help="Also score the tuning and report halves.")
    ] = False,
    model: Annotated[
        str, typer.Option("--model", help="Encoder of the MARS stages and the dense baseline.")
    ] = "all-MiniLM-L6-v2",
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON report to this file.")
    ] = None,
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
    import asyncio

    from noosphere.mars.evaluation import (
        LLM_STAGE,
        EvalError,
        load_cards,
        load_queries,
        parse_configs,
        run_eval,
    )
    from noosphere.models.embedding import DIMENSIONS, Embedder
    from noosphere.models.llm import LlmBackend, LlmError, llm_config_from_env

    if data and (cards or queries):
        fail("give either --data or --cards and --queries, not both")
    if not data and not (cards and queries):
        fail("give --cards and --queries, or --data")
    if model not in DIMENSIONS:
        fail(f"unknown model {model!r}; choose from {', '.join(DIMENSIONS)}")
    sets = [(d.name, d / "cards.jsonl", d / "queries.jsonl") for d in data or []]
    if not sets:
        assert cards is not None and queries is not None
        sets = [("", cards, queries)]
    try:
        chosen = parse_configs(configs)
        loaded = []
        for name, card_path, query_path in sets:
            profiles = load_cards(card_path)
            judged = load_queries(query_path, known=[p.agent_id for p in profiles])
            loaded.append((name, profiles, judged[:limit] if limit else judged))
        llm_config = llm_config_from_env() if LLM_STAGE in chosen else None
    except (EvalError, LlmError) as exc:
        fail(str(exc))
    if LLM_STAGE in chosen and llm_config is None:
        fail(
            f"{LLM_STAGE} needs an LLM endpoint: set NOOSPHERE_LLM_BASE_URL and NOOSPHERE_LLM_MODEL"
        )

    def progress(message: str) -> None:
        if not as_json:
            err.print(f"[dim]{message}[/]", highlight=False)

    embedder = Embedder(model=model)

    async def evaluate(profiles: list[Any], judged: list[Any], name: str) -> EvalReport:
        llm = LlmBackend(llm_config) if llm_config is not None else None
        try:
            return await run_eval(
                profiles,
                judged,
                chosen,
                embedder=embedder,
                candidates=candidates,
                split=split,
                name=name,
                progress=progress,
                llm=llm,
                judge_schema=judge_schema,
            )
        finally:
            if llm is not None:
                await llm.aclose()

    reports: list[dict[str, Any]] = []
    for name, profiles, judged in loaded:
        if name:
            progress(f"{name}: {len(profiles)} cards, {len(judged)} queries")
        reports.append(asyncio.run(evaluate(profiles, judged, name)).as_dict())
    document: dict[str, Any] = reports[0] if len(reports) == 1 else {"datasets": reports}
    if out_path is not None:
        try:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out_path}: {exc.strerror or exc}")
    if as_json:
        return print_json(document)
    for report in reports:
        _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    title = f"MARS eval{' ' + report['name'] if report.get('name') else ''}: {report['cards']}"
    table = Table(title=f"{title} agents, {report['queries']} queries ({report['model']})")
    table.add_column("configuration", no_wrap=True)
    for column in ("Recall@1", "Recall@5", "Recall@10", "MRR", "nDCG@10"):
        table.add_column(column, justify="right")
    halves = "split" in report
    if halves:
        for column in ("R@1 tune", "R@1 report", "nDCG tune", "nDCG report"):
            table.add_column(column, justify="right")
    table.add_column("ms/query", justify="right")
    table.add_column("stages ms", justify="right")
    for row in report["configs"]:
        cells = [row["config"], *(f"{row[m]:.3f}" for m in _METRICS)]
        if halves:
            cells += [f"{row[h]['recall@1']:.3f}" for h in ("tune", "report")]
            cells += [f"{row[h]['ndcg@10']:.3f}" for h in ("tune", "report")]
        cells.append(f"{row['ms_per_query']:.2f}")
        cells.append(" / ".join(f"{v:.2f}" for v in row.get("stage_ms", {}).values()))
        table.add_row(*cells)
    (out if out.is_terminal else Console(width=170)).print(table)  # piped: no cut columns
    notes = [
        f"{row['config']}: {row['rejected_relevant_per_query']:.2f} relevant agents rejected per"
        " query"
        for row in report["configs"]
        if "rejected_relevant_per_query" in row
    ]
    notes += [
        f"LLM judge: failed on {row['judge']['failed_share']:.0%} of queries, vetoed"
        f" {row['judge']['vetoes_per_query']:.2f} agents per query"
        f" ({row['judge']['relevant_vetoed_per_query']:.2f} relevant)"
        for row in report["configs"]
        if "judge" in row
    ]
    split = report.get("split")
    out.print(
        f"[dim]setup (model, embeddings, indexes) {report['setup_seconds']:.1f} s; total"
        f" {report['total_seconds']:.1f} s. Recall@k = share of queries with a relevant agent in"
        " the top k. Stages ms = stage 1 / 2 / 3 per query, query embedding excluded."
        + (f" Halves: {split['tune']} tune, {split['report']} report (seed {split['seed']})."
           if split else "")
        + (f" {'; '.join(notes)}." if notes else "")
        + "[/]"
    )  # fmt: skip
