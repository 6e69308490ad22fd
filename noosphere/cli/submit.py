"""``noosphere task submit`` (all six phases from one node): hand a task in plain words to your
node, which recruits an agent, pays it through an escrow, runs the task, releases the payment and
rates the agent. The command follows the submission and prints each step as it happens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

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

POLL_INTERVAL_S = 0.25
PHASE_STYLE = {
    "recruit": "magenta",
    "pay": "yellow",
    "execute": "cyan",
    "settle": "yellow",
    "feedback": "blue",
    "done": "bold",
}


def task_submit(
    text: Annotated[str, typer.Argument(help="The task, in plain words.")],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    token: TokenOption = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="Seal the task under this attribute policy (the node's configured authority):"
            " only agents holding satisfying keys are recruited and can read it.",
        ),
    ] = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Which configured authority seals (--policy).")
    ] = None,
    budget: Annotated[
        int | None, typer.Option("--budget", min=0, help="The most the task may cost (units).")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Skill tag every candidate must have.")
    ] = None,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, max=10, help="Agents to try before giving up.")
    ] = 3,
    deadline_s: Annotated[
        int | None,
        typer.Option("--deadline-s", min=10, help="Escrow deadline (default: node config)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="A JSON file sent along as a data part.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the submission id and return.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recruit, pay, run, settle and rate one task through your node (all six phases)."""
    from noosphere.protocol.api import Submission, SubmitParams

    params = SubmitParams(
        task=text,
        data=_read_json(data),
        policy=policy,
        issuer=issuer,
        budget=budget,
        required_tags=tags or [],
        max_attempts=attempts,
        deadline_s=deadline_s,
    )
    try:
        with node_client(rpc, auth=operator_auth(home, token)) as client:
            submission = Submission.model_validate(
                client.call("noosphere.tasks.submit", params.to_wire())
            )
            if no_wait:
                return print_json(submission) if as_json else out.print(submission.id)
            submission = follow_submission(client, submission, out, quiet=as_json)
    except KeyboardInterrupt:
        fail("interrupted (the submission goes on in the node)", 130)
    if as_json:
        print_json(submission)
    else:
        print_summary(submission)
    if submission.state != "completed":
        raise typer.Exit(2)


def follow_submission(client: Any, submission: Any, console: Any, *, quiet: bool = False) -> Any:
    """Poll a submission until it ends, printing each new event (one line per step)."""
    from noosphere.protocol.api import Submission

    shown = 0
    while True:
        if not quiet:
            for event in submission.events[shown:]:
                style = PHASE_STYLE.get(event.phase, "")
                console.print(
                    f"[dim]{event.at_ms / 1000:6.2f}s[/] [{style}]{event.phase:>8}[/] {event.text}",
                    highlight=False,
                )
            shown = len(submission.events)
        if submission.finished:
            return submission
        time.sleep(POLL_INTERVAL_S)
        submission = Submission.model_validate(
            client.call("noosphere.tasks.submission", {"id": submission.id})
        )


def _read_json(path: Path | None) -> list[Any]:
    if path is None:
        return []
    try:
        return [json.loads(path.read_text())]
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except ValueError as exc:
        fail(f"{path} is not valid JSON: {exc}")


def print_summary(submission: Any, console: Any = out, *, result: bool = True) -> None:
    """The result, the attempts (agent, price, outcome, payment) and the phase timings."""
    from noosphere.protocol.a2a import Task

    from .tasks import task_lines

    if result and submission.result is not None:
        for line in task_lines(Task.model_validate(submission.result)):
            console.print(line, highlight=False)
    table = Table(title=f"submission {submission.id}", show_header=True)
    for column in ("agent", "price", "state", "payment", "reason"):
        table.add_column(column)
    for attempt in submission.attempts:
        table.add_row(
            attempt.name, str(attempt.price), attempt.state, attempt.payment, attempt.reason[:60]
        )
    console.print(table)
    timings = ", ".join(f"{k} {v:.0f} ms" for k, v in submission.timings_ms.items())
    console.print(f"[bold]{submission.state}[/]  paid {submission.paid}  ({timings})")
    reputation = submission.reputation
    if reputation:
        before, after = reputation.get("before"), reputation.get("after")
        console.print(f"reputation of {submission.winner}: {_fmt(before)} -> {_fmt(after)}")
    if submission.error:
        console.print(f"[red]{submission.error}[/]")


def _fmt(value: float | None) -> str:
    return "no evidence" if value is None else f"{value:.3f}"
