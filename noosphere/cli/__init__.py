"""The ``noosphere`` command line (all phases): one module per command group, shared options and
the one error handler in ``kit``. The library never imports this package.

Every command that talks to a node takes ``--rpc URL`` (or ``NOOSPHERE_RPC``); ``--json`` prints
machine-readable output. Failures print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import typer

from .abe import abe_app
from .chain import chain_app
from .cluster import cluster_app
from .kit import plain_tracebacks_when_logging
from .ledger import ledger_app
from .mars import recruit
from .mars_eval import mars_app
from .node import agent_app, cards_app, node_app, top_app
from .submit import task_submit
from .tasks import task_app

plain_tracebacks_when_logging()  # no frame locals in any traceback a command logs

app = typer.Typer(
    help="noosphere: a decentralized network where AI agents find each other, work and get paid.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(node_app, name="node")
app.add_typer(cards_app, name="cards")
app.add_typer(agent_app, name="agent")
task_app.command("submit")(task_submit)
app.add_typer(task_app, name="task")
app.add_typer(abe_app, name="abe")
app.add_typer(chain_app, name="chain")
app.add_typer(cluster_app, name="cluster")
app.add_typer(ledger_app, name="ledger")
app.add_typer(mars_app, name="mars")
app.command("recruit")(recruit)
app.registered_commands += top_app.registered_commands

__all__ = ["app"]
