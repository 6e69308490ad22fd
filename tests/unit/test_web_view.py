"""The web view without a browser: security headers on every response, who may read what,
cross-site refusal, the event stream's snapshot, sealed parts described (and opened only with
keys that satisfy the policy), the peer graph and the rate-limited senders."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from noosphere.abe.keys import issue_key, new_authority
from noosphere.abe.sealed import seal_parts
from noosphere.mars.trust import TrustModel
from noosphere.node.config import NodeConfig
from noosphere.node.gossip import GossipRouter
from noosphere.node.metrics import NodeMetrics
from noosphere.node.store import NodeStore, StoredPeer, StoredTask
from noosphere.node.web import SecurityHeaders, web_routes
from noosphere.node.web.headers import API_CSP, VIEW_CSP
from noosphere.node.web.views import describe_part, open_described, peer_graph, task_view
from noosphere.protocol import NodeKey, RejectReason
from noosphere.protocol.a2a import Part

TOKEN = "operator-token-for-tests-0123456789"
OWN = "12D3KooWOwnNodeAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
PEER = "12D3KooWPeerNodeBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
FAR = "12D3KooWFarNodeCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"


class FakeP2P:
    async def connected_peers(self) -> list[Any]:
        return [SimpleNamespace(peer_id=PEER, addrs=[])]


@pytest.fixture
def node(tmp_path: Path) -> Any:
    store = NodeStore(tmp_path / "node.db")
    metrics = NodeMetrics()
    key = NodeKey.generate()
    gossip = GossipRouter(key, store, metrics, NodeConfig())
    yield SimpleNamespace(
        key=SimpleNamespace(peer_id=OWN),
        token=TOKEN,
        home=tmp_path,
        store=store,
        metrics=metrics,
        gossip=gossip,
        p2p=FakeP2P(),
        peers=SimpleNamespace(list=lambda: [StoredPeer(PEER, [], 1, 2)]),
        feedback=SimpleNamespace(trust=TrustModel(OWN)),
        agents={},
        stopping=asyncio.Event(),
    )
    store.close()


@pytest.fixture
def client(node: Any) -> TestClient:
    async def rpc(_request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"jsonrpc": "2.0", "id": 1, "result": None})

    from starlette.routing import Route

    app = Starlette(
        routes=[Route("/", rpc, methods=["POST"]), *web_routes(node)],
        middleware=[Middleware(SecurityHeaders)],
    )
    return TestClient(app, base_url="http://127.0.0.1:7070")


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- headers -------------------------------------------------------------------------------------


def test_the_page_and_its_assets_carry_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == VIEW_CSP
    assert "'unsafe-inline'" not in VIEW_CSP and "'unsafe-eval'" not in VIEW_CSP
    assert "frame-ancestors 'none'" in VIEW_CSP and "script-src 'self'" in VIEW_CSP
    for response in (page, client.get("/ui/app.js"), client.get("/ui/style.css")):
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cross-origin-resource-policy"] == "same-origin"
        assert "access-control-allow-origin" not in response.headers
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")


def test_the_page_has_no_inline_script_or_style() -> None:
    static = Path(__file__).parents[2] / "noosphere" / "node" / "web" / "static"
    html = (static / "index.html").read_text()
    assert "<style" not in html and " style=" not in html and "onclick" not in html
    scripts = html.count("<script")
    assert scripts == html.count('<script src="/ui/') == 2
    for name in ("app.js", "graph.js"):
        source = (static / name).read_text()
        assert "innerHTML" not in source.replace("never innerHTML", "")
        assert "eval(" not in source and "insertAdjacentHTML" not in source


def test_json_rpc_gets_the_data_policy(client: TestClient) -> None:
    response = client.post("/", json={"jsonrpc": "2.0", "id": 1, "method": "x"})
    assert response.headers["content-security-policy"] == API_CSP
    assert response.headers["x-content-type-options"] == "nosniff"


def test_only_the_packaged_assets_are_served(client: TestClient) -> None:
    for path in ("/ui/nope.js", "/ui/..%2Froutes.py", "/ui/index.html%00", "/ui/models.py"):
        assert client.get(path).status_code == 404, path


# ---- who may read what ---------------------------------------------------------------------------


def test_anonymous_reads_the_public_views_only(client: TestClient) -> None:
    network = client.get("/ui/api/network")
    assert network.status_code == 200
    assert client.get("/ui/api/reputation").json() == {"agents": []}
    for path in ("/ui/api/events", "/ui/api/orchestrator", "/ui/api/tasks/t1"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "operator token" in response.json()["error"]


def test_a_wrong_token_is_refused_everywhere(client: TestClient) -> None:
    for path in ("/ui/api/network", "/ui/api/events", "/ui/api/orchestrator"):
        assert client.get(path, headers=bearer("guess-" + TOKEN)).status_code == 401
        assert client.get(path, headers={"Authorization": "Basic " + TOKEN}).status_code == 401


def test_requests_from_another_site_are_refused(client: TestClient) -> None:
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:7070.evil.example"},
    ):
        for path in ("/ui/api/network", "/ui/api/events"):
            response = client.get(path, headers={**headers, **bearer()})
            assert response.status_code == 403, (path, headers)
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:7070"}
    assert client.get("/ui/api/network", headers=same).status_code == 200


def test_the_operator_reads_tasks_and_the_orchestrator(client: TestClient, node: Any) -> None:
    assert client.get("/ui/api/orchestrator", headers=bearer()).json() == {"orchestrators": []}
    assert client.get("/ui/api/tasks/none", headers=bearer()).status_code == 404
    node.store.put_task(task_row("t1", "hello"))
    task = client.get("/ui/api/tasks/t1", headers=bearer()).json()
    assert task["id"] == "t1" and task["history"][0]["parts"] == [{"text": "hello"}]


def test_the_event_stream_starts_with_a_snapshot(client: TestClient, node: Any) -> None:
    node.store.put_task(task_row("t1", "hello"))
    event = {"atMs": 5, "phase": "recruit", "text": "ranked 1 of 1"}
    body = {"id": "s1", "state": "running", "task": "2+2?", "createdAt": 1, "updatedAt": 2}
    body["events"] = [event]
    node.store.put_submission("s1", "running", 1, 2, body)
    node.stopping.set()  # the stream sends its snapshot and ends
    with client.stream("GET", "/ui/api/events", headers=bearer()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    event, data = parse_first_event(text)
    assert event == "snapshot"
    assert [s["id"] for s in data["submissions"]] == ["s1"]
    assert data["submissions"][0]["events"][0]["phase"] == "recruit"
    assert [t["id"] for t in data["tasks"]] == ["t1"]


def parse_first_event(text: str) -> tuple[str, Any]:
    block = text.replace("\r\n", "\n").split("\n\n")[0]
    fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
    return fields["event"], json.loads(fields["data"])


def task_row(task_id: str, text: str, parts: list[dict[str, Any]] | None = None) -> StoredTask:
    message = {"messageId": "m1", "role": "ROLE_USER", "parts": parts or [{"text": text}]}
    task = {
        "id": task_id,
        "contextId": "c1",
        "status": {"state": "TASK_STATE_COMPLETED"},
        "history": [message],
    }
    return StoredTask(task_id, "calc", "c1", "local", "TASK_STATE_COMPLETED", 1, 2, task)


# ---- sealed parts --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sealing() -> Any:
    public, master = new_authority()
    parts = [Part.of_text("the secret plan"), Part.of_data({"budget": 7})]
    sealed = seal_parts(public, "org:acme and role:analyst", parts, "m1")
    good = issue_key(public, master, "node", ["org:acme", "role:analyst"])
    poor = issue_key(public, master, "node", ["org:acme"])
    return SimpleNamespace(public=public, sealed=sealed.to_wire(), good=good, poor=poor)


def test_a_sealed_part_is_described_never_shown(sealing: Any) -> None:
    described = describe_part(sealing.sealed)
    assert described["sealed"]["epoch"] == 1
    assert described["sealed"]["authority"] == sealing.public.fingerprint
    assert (
        "org:acme" in described["sealed"]["policy"] and "analyst" in described["sealed"]["policy"]
    )
    assert "raw" not in described and "the secret plan" not in json.dumps(described)


def test_a_sealed_part_opens_only_with_keys_that_satisfy_the_policy(sealing: Any) -> None:
    message = {"messageId": "m1", "role": "ROLE_USER", "parts": [sealing.sealed]}
    opened = open_described(message, [sealing.good])
    assert opened["parts"][0] == {"text": "the secret plan", "openedHere": True}
    assert opened["parts"][1]["data"] == {"budget": 7}
    refused = open_described(message, [sealing.poor])
    assert (
        "sealed" in refused["parts"][0]
        and "do not satisfy" in refused["parts"][0]["sealed"]["cannotOpen"]
    )
    assert "the secret plan" not in json.dumps(refused)
    assert "the secret plan" not in json.dumps(open_described(message, []))


def test_task_view_describes_sealed_history_and_keeps_text(sealing: Any) -> None:
    row = task_row("t1", "", parts=[sealing.sealed, {"text": "plain"}])
    view = task_view(row)
    parts = view["history"][0]["parts"]
    assert "sealed" in parts[0] and parts[1] == {"text": "plain"}


def test_malformed_sealed_bytes_are_reported_not_raised() -> None:
    bogus = {
        "raw": base64.b64encode(b"\x00garbage").decode(),
        "mediaType": "application/vnd.noosphere.abe",
    }
    assert "malformed" in describe_part(bogus)["sealed"]["error"]
    other = {"raw": base64.b64encode(b"12345").decode(), "mediaType": "image/png", "filename": "x"}
    assert describe_part(other) == {"bytes": 5, "mediaType": "image/png", "filename": "x"}


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["text", "raw", "data", "url", "mediaType", "x"]),
        st.one_of(st.text(max_size=40), st.integers(), st.none()),
    )
)
def test_describe_part_never_raises_on_a_strangers_part(part: dict[str, Any]) -> None:
    if part.get("raw") is not None and not isinstance(part["raw"], str):
        part["raw"] = str(part["raw"])
    described = describe_part(part)
    assert set(described) <= {"text", "data", "url", "mediaType", "bytes", "filename", "sealed"}


# ---- graph and gossip ----------------------------------------------------------------------------


def test_peer_graph_shows_connections_and_relays() -> None:
    nodes, edges = peer_graph(
        OWN, [PEER], [StoredPeer(PEER, [], 1, 2)], {PEER: 2, FAR: 1}, [(PEER, FAR, 1)]
    )
    by_id = {n.peer_id: n for n in nodes}
    assert by_id[OWN].self_node and by_id[PEER].connected and not by_id[FAR].connected
    assert by_id[FAR].cards == 1
    kinds = {(e.source, e.target, e.kind) for e in edges}
    assert kinds == {(OWN, PEER, "connected"), (PEER, FAR, "relayed")}


def test_network_view_lists_rejections_and_limited_senders(client: TestClient, node: Any) -> None:
    node.gossip.allow("12D3KooWFlooder", count=10_000)  # more than its whole burst
    node.gossip.reject(RejectReason.REPLAY)
    view = client.get("/ui/api/network").json()
    assert view["gossip"]["rejected"]["replay"] == 1.0
    assert "over_quota" in view["gossip"]["rejected"]  # every reason, zero or not
    limited = [s["peerId"] for s in view["gossip"]["rateLimitedSenders"]]
    assert limited == []  # a refused take leaves the bucket full
    assert node.gossip.allow("12D3KooWFlooder", count=1000)  # the whole burst (50/s x 20)
    # a slow machine may take more than 20 ms to the view, enough to refill one token: stop it
    node.gossip._bucket("12D3KooWFlooder").rate = 0.0
    view = client.get("/ui/api/network").json()
    assert [s["peerId"] for s in view["gossip"]["rateLimitedSenders"]] == ["12D3KooWFlooder"]
    assert {e["kind"] for e in view["edges"]} == {"connected"}


# ---- the orchestrator ----------------------------------------------------------------------------


def test_orchestrator_state_reads_its_metrics_and_decisions() -> None:
    import time

    from noosphere.node.web.views import orchestrator_state
    from noosphere.orchestration.autoscale import QUEUE, Decision, WorkerSample
    from noosphere.orchestration.orchestrator import OrchestratorMetrics

    stats = OrchestratorMetrics("orch-view-test")
    try:
        samples = [
            WorkerSample("http://127.0.0.1:9001", queued=3, running=2, utilization=0.5),
            WorkerSample("http://127.0.0.1:9002", queued=0, running=0, ready=False),
        ]
        inputs = {"backlog": 9.0, "waiting": 4.0}
        decision = Decision(time.monotonic(), 2, 3, 3, "backlog 9 > 2 x 4", inputs, QUEUE)
        stats.observe(decision, samples, {"http://127.0.0.1:9001": 4})
        steady = [Decision(time.monotonic() + i, 3, 3, 3, "steady", {}, "steady") for i in range(5)]
        agent = SimpleNamespace(agent_id="orch", stats=stats, decisions=[decision, *steady])
        state = orchestrator_state(agent).to_wire()
    finally:
        stats.close()
    assert state["replicasCurrent"] == 3 and state["replicasDesired"] == 3
    assert state["waiting"] == 4.0 and state["backlog"] == 9.0
    first, second = state["workers"]
    assert first == {
        "name": "http://127.0.0.1:9001",
        "queued": 3.0,
        "running": 2.0,
        "inflight": 4.0,
        "utilization": 0.5,
        "ready": True,
    }
    assert second["ready"] is False and "utilization" not in second
    held, shown = state["decisions"]  # newest first; the 5 steady ones in one row
    assert held["repeated"] == 5 and held["direction"] == "none" and held["since"] < held["at"]
    assert shown["direction"] == "up" and shown["code"] == QUEUE and shown["repeated"] == 1
    assert shown["reason"] == "backlog 9 > 2 x 4" and abs(shown["at"] - time.time()) < 60
