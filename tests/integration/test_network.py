"""Three real node processes on loopback: cards spread by gossip, expire, and come back."""

from __future__ import annotations

import os
import signal
import stat
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noosphere.node.launcher import LaunchError

from .support import EXAMPLES, Cluster, card_ids, wait_until

pytestmark = pytest.mark.integration

TTL = ["--card-ttl", "6"]


def test_three_nodes_see_every_card(cluster: Cluster) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"], extra_args=TTL)
    b = cluster.start(
        "b", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[a.multiaddr], extra_args=TTL
    )
    c = cluster.start(
        "c",
        agents=[EXAMPLES / "data-wrangler.toml", EXAMPLES / "scheduler.yaml"],
        bootstrap=[a.multiaddr],
        extra_args=TTL,
    )
    expected = {
        f"{a.peer_id}/exact-calculator",
        f"{b.peer_id}/document-summarizer",
        f"{c.peer_id}/data-wrangler",
        f"{c.peer_id}/time-zone-scheduler",
    }
    for node in (a, b, c):
        wait_until(lambda node=node: card_ids(node) == expected, timeout=30)
    with b.client() as client:
        card = client.card(f"{c.peer_id}/data-wrangler")
        status = client.status()
        peers = {p.peer_id for p in client.peers() if p.connected}
    assert card.card is not None and card.card["name"] == "Data Wrangler"
    assert status.peer_id == b.peer_id and status.cards_known == 4
    assert a.peer_id in peers


def test_killed_node_expires_and_restart_keeps_identity(cluster: Cluster) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"], extra_args=TTL)
    b = cluster.start(
        "b", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[a.multiaddr], extra_args=TTL
    )
    b_card = f"{b.peer_id}/document-summarizer"
    wait_until(lambda: b_card in card_ids(a))

    b.kill()
    wait_until(lambda: b_card not in card_ids(a), timeout=6 + 5)

    # The restarted node reuses key, config (agents, bootstrap, TTL) and store from its home.
    key_mode = stat.S_IMODE(os.stat(b.home / "node.key").st_mode)
    b2 = cluster.start("b")
    assert b2.peer_id == b.peer_id
    assert key_mode == 0o600
    wait_until(lambda: b_card in card_ids(a), timeout=30)


def test_kill_9_loses_no_acknowledged_card(cluster: Cluster) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"], extra_args=["--card-ttl", "600"])
    b = cluster.start("b", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[a.multiaddr])
    wait_until(lambda: f"{b.peer_id}/document-summarizer" in card_ids(a))
    before = card_ids(a)
    a.kill()
    b.kill()
    # Restart only A, alone: everything it had acknowledged must still be there.
    a2 = cluster.start("a")
    assert card_ids(a2) == before
    with a2.client() as client:
        assert b.peer_id in {p.peer_id for p in client.peers()}


def test_sigint_stops_cleanly(cluster: Cluster) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"])
    a.process.send_signal(signal.SIGINT)
    assert a.process.wait(15) == 0
    assert not (a.home / "runtime.json").exists()
    assert "node stopping" in (a.home / "node.log").read_text()


def test_swapped_key_file_is_refused(cluster: Cluster) -> None:
    a = cluster.start("a")
    a.stop()
    (a.home / "node.key").unlink()
    with pytest.raises(LaunchError, match="not the key this node's store belongs to"):
        cluster.start("a")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
        ),
        max_leaves=12,
    )
    | st.fixed_dictionaries(
        {
            "jsonrpc": st.just("2.0"),
            "method": st.sampled_from(
                [
                    "noosphere.node.status",
                    "noosphere.peers",
                    "noosphere.cards.list",
                    "noosphere.cards.get",
                    "x",
                ]
            ),
        },
        optional={
            "id": st.integers() | st.text() | st.none(),
            "params": st.dictionaries(
                st.sampled_from(["id", "limit", "offset", "full", "x"]),
                st.integers() | st.text() | st.booleans() | st.none(),
            ),
        },
    )
)
def test_random_json_at_a_running_node_never_breaks_it(running_node, payload) -> None:
    response = httpx.post(running_node.rpc_url + "/", json=payload, timeout=10)
    assert response.status_code in (200, 204)
    if response.status_code == 200:
        body = response.json()
        for item in body if isinstance(body, list) else [body]:
            assert item["jsonrpc"] == "2.0"
            assert ("result" in item) != ("error" in item)


def test_late_joiners_get_existing_cards_without_waiting_for_reannouncement(
    cluster: Cluster,
) -> None:
    long_ttl = ["--card-ttl", "900"]  # next re-announcement only after 300 s
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"], extra_args=long_ttl)
    time.sleep(5)  # well past libp2p's replay of recent messages to new peers
    b = cluster.start(
        "b", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[a.multiaddr], extra_args=long_ttl
    )
    both = {f"{a.peer_id}/exact-calculator", f"{b.peer_id}/document-summarizer"}
    wait_until(lambda: card_ids(b) == both, timeout=15)  # pulled from A's index
    wait_until(lambda: card_ids(a) == both, timeout=15)  # B announced when it connected
    c = cluster.start(
        "c", bootstrap=[b.multiaddr], extra_args=long_ttl, env={"NOOSPHERE_TARGET_PEERS": "0"}
    )
    wait_until(lambda: card_ids(c) == both, timeout=15)  # A's card relayed by B, A's signature


def test_well_known_agent_card_is_the_signed_card(running_node) -> None:
    from noosphere.protocol import AgentCard, verify_card

    response = httpx.get(running_node.rpc_url + "/.well-known/agent-card.json", timeout=10)
    assert response.status_code == 200
    params = verify_card(AgentCard.model_validate(response.json()))
    assert (params.peer_id, params.agent_id) == (running_node.peer_id, "exact-calculator")
    same = httpx.get(running_node.rpc_url + "/agents/exact-calculator/.well-known/agent-card.json")
    assert same.json()["name"] == "Exact Calculator"
    missing = httpx.get(running_node.rpc_url + "/agents/nope/.well-known/agent-card.json")
    assert missing.status_code == 404
