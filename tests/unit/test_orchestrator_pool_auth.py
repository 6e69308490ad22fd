"""Execute (operations): the orchestrator calls the worker processes its local scaler started
as their operator (their rpc.token), so a priced worker agent on a node with a ledger serves it
without asking for an escrow; workers it did not start (Kubernetes) get its node signature."""

from __future__ import annotations

from pathlib import Path

import httpx

from noosphere.agents.spec import load_agent_spec
from noosphere.node.auth import BearerAuth, PeerAuth, load_or_create_token
from noosphere.node.launcher import LocalNode
from noosphere.orchestration.orchestrator import OrchestratorAgent
from noosphere.orchestration.scalers import LocalScaler

POOL = Path(__file__).parents[1] / "integration" / "agents" / "pool.yaml"


def header(auth: httpx.Auth) -> str:
    request = httpx.Request("POST", "http://w/", content=b"{}")
    return next(auth.auth_flow(request)).headers.get("authorization", "")


async def test_local_workers_get_the_operator_token_others_the_node_signature(
    tmp_path: Path,
) -> None:
    agent = OrchestratorAgent.create(load_agent_spec(POOL), tmp_path, embedder=None)  # type: ignore[arg-type]
    scaler = LocalScaler(tmp_path / "workers", agents=[], bootstrap=[])
    home = tmp_path / "workers" / "worker-1"
    home.mkdir(parents=True)
    token = load_or_create_token(home)
    # home_of needs only the home and URL of a worker (no process is started here)
    scaler.workers.append(LocalNode(home=home, process=None, rpc_url="http://w1"))  # type: ignore[arg-type]
    agent._scaler = scaler
    try:
        local = agent._client("http://w1")
        other = agent._client("http://elsewhere")
        assert isinstance(local._http.auth, BearerAuth)  # type: ignore[attr-defined]
        assert header(local._http.auth) == f"Bearer {token}"  # type: ignore[attr-defined]
        assert isinstance(other._http.auth, PeerAuth)  # type: ignore[attr-defined]
        assert scaler.home_of("http://w1") == home and scaler.home_of("http://w2") is None
    finally:
        for client in agent._clients.values():
            await client.aclose()
        agent.close()
