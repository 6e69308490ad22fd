"""The ``noosphere recruit`` command (Recruit): ask your node which agents should do a task and
see every stage's scores and every rejection's reason."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .kit import (
    DEFAULT_RPC,
    HomeOption,
    JsonOption,
    RpcOption,
    TokenOption,
    fail,
    node_client,
    operator_auth,
    out,
    print_json,
)


def recruit(
    task: Annotated[str, typer.Argument(help="The task, in plain words.")],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    token: TokenOption = None,
    top: Annotated[int, typer.Option("--top", min=1, max=100, help="How many agents.")] = 5,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Required skill tag (repeatable).")
    ] = None,
    max_price: Annotated[
        int | None, typer.Option("--max-price", min=0, help="Budget per task.")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="ABE policy the agents' attested attributes must satisfy."),
    ] = None,
    issuer: Annotated[
        list[str] | None,
        typer.Option(
            "--issuer",
            help="Attribute authority (peer id) whose attestations count for --policy "
            "(repeatable; default: any validly signed attestation).",
        ),
    ] = None,
    stages: Annotated[
        str, typer.Option("--stages", help="Comma list of vector,filter,rank.")
    ] = "vector,filter,rank",
    bids: Annotated[
        int,
        typer.Option(
            "--bids",
            min=0,
            max=10_000,
            help="First gossip the task and wait this many ms for bids from unknown agents.",
        ),
    ] = 0,
    show_rejected: Annotated[
        bool, typer.Option("--rejected", help="Also list the rejected candidates.")
    ] = False,
    authority: Annotated[
        list[Path] | None,
        typer.Option(
            "--authority",
            envvar="NOOSPHERE_ABE_AUTHORITY",
            help="Attribute authority (home or public key file) whose attestations count for"
            " --policy (repeatable; adds its issuer).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Rank the agents your node knows for a task (MARS: vector search, filter, ranking)."""
    from noosphere.protocol.api import RecruitParams

    issuers = list(issuer or [])
    for path in authority or []:
        from noosphere.abe.authority import AuthorityError, load_public_key

        try:
            issuers.append(load_public_key(path.expanduser()).issuer)
        except AuthorityError as exc:
            fail(str(exc))
    params = RecruitParams(
        task=task,
        top=top,
        required_tags=tag or [],
        max_price=max_price,
        policy=policy,
        trusted_issuers=issuers or None,
        solicit_bids_ms=bids,
        stages=[s.strip() for s in stages.split(",") if s.strip()],
    )
    with node_client(rpc, timeout=60, auth=operator_auth(home, token)) as client:
        reply = client.recruit(params)
    if as_json:
        return print_json(reply)
    table = Table("#", "agent", "card id", "price", "score", "vector", "filter", "why", title=task)
    for i, choice in enumerate(reply.chosen, 1):
        table.add_row(
            str(i),
            choice.name,
            f"{choice.peer_id[:8]}…{choice.peer_id[-6:]}/{choice.card_id.rsplit('/', 1)[-1]}",
            str(choice.price),
            f"{choice.score:.3f}",
            f"{choice.vector:.3f}",
            f"{choice.relevance:.3f}",
            choice.explanation,
        )
    out.print(table)
    timings = ", ".join(f"{k} {v:.1f} ms" for k, v in reply.timings_ms.items())
    out.print(
        f"[dim]{reply.cards_indexed} cards indexed; {len(reply.rejected)} rejected; {timings};"
        f" filter: {reply.filter_mode}" + (f"; {reply.bids} bids" if bids else "") + "[/]"
    )
    if show_rejected:
        for rejection in reply.rejected:
            out.print(f"  [red]x[/] {rejection.name}: {rejection.reason}", highlight=False)
    if not reply.chosen:
        raise typer.Exit(2)
