"""Unit tests for bench/gossip_sim.py (the GossipSub propagation model)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import random
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

SIM_PATH = Path(__file__).resolve().parents[2] / "bench" / "gossip_sim.py"


def _load_sim() -> ModuleType:
    """Load bench/gossip_sim.py by path: bench/ is deliberately not a package."""
    spec = importlib.util.spec_from_file_location("gossip_sim", SIM_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


sim = _load_sim()


def _mesh_rows(mesh: object, nodes: int) -> list[list[int]]:
    return [list(mesh.peers(u)) for u in range(nodes)]


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_result() -> None:
    params = sim.SimParams(nodes=1500, loss=0.1)
    assert sim.simulate(params, 7) == sim.simulate(params, 7)


def test_different_seeds_give_different_runs() -> None:
    params = sim.SimParams(nodes=1500)
    assert sim.simulate(params, 1) != sim.simulate(params, 2)


# ------------------------------------------------------------------------- mesh


@pytest.mark.parametrize(
    ("nodes", "d", "d_lo", "d_hi"),
    [(1000, 6, 4, 12), (999, 5, 4, 8), (300, 8, 6, 12), (50, 6, 4, 12)],
)
def test_mesh_is_symmetric_simple_and_within_degree_bounds(
    nodes: int, d: int, d_lo: int, d_hi: int
) -> None:
    params = sim.SimParams(nodes=nodes, D=d, D_lo=d_lo, D_hi=d_hi)
    rows = _mesh_rows(sim.build_mesh(params, random.Random(3)), nodes)
    for u, peers in enumerate(rows):
        assert d_lo <= len(peers) <= d_hi
        assert u not in peers
        assert len(set(peers)) == len(peers)
        assert all(u in rows[v] for v in peers)
    assert statistics.fmean(len(peers) for peers in rows) == pytest.approx(d, abs=0.1)


@pytest.mark.parametrize("nodes", [2, 3, 5])
def test_tiny_networks_clamp_degree_and_still_work(nodes: int) -> None:
    result = sim.simulate(sim.SimParams(nodes=nodes), 0)
    assert result.reached_100
    assert result.mean_mesh_degree <= nodes - 1


def test_known_peers_are_distinct_and_outside_the_mesh() -> None:
    params = sim.SimParams(nodes=500)
    mesh = sim.build_mesh(params, random.Random(0))
    for u in range(0, 500, 37):
        known = sim.known_peers(params, mesh, u, key=12345)
        assert len(known) == params.known_peers
        assert len(set(known)) == len(known)
        assert u not in known
        assert not set(known) & set(mesh.peers(u))


# -------------------------------------------------------------------- coverage


@pytest.mark.parametrize("nodes", [1000, 5000])
def test_full_coverage_without_loss(nodes: int) -> None:
    result = sim.simulate(sim.SimParams(nodes=nodes), 11)
    assert result.coverage == 1.0
    assert result.reached_99 and result.reached_100
    assert 0 < result.time_to_99_ms <= result.time_to_100_ms
    assert result.rounds_to_99 is not None and result.rounds_to_99 <= result.max_hops
    # Eager push: each node forwards to its ~D mesh peers minus the sender.
    assert 4.5 < result.data_msgs_per_node < 5.5
    assert result.duplicates_per_node == pytest.approx(result.data_msgs_per_node - 1, abs=0.01)


def test_ihave_count_matches_gossip_fanout() -> None:
    params = sim.SimParams(nodes=2000)
    result = sim.simulate(params, 5)
    fanout = max(params.D_lazy, int(params.gossip_factor * params.known_peers))
    assert result.ihave_per_node == pytest.approx(params.gossip_history * fanout)
    assert result.control_msgs_per_node == pytest.approx(
        result.ihave_per_node + result.iwant_per_node
    )


def test_lazy_gossip_recovers_what_eager_push_loses() -> None:
    # A sparser mesh (D=4) so that, with 20% loss, eager push alone misses some
    # of the 2,000 nodes; with D=6 it usually reaches them all by itself.
    lossy = sim.SimParams(nodes=2000, D=4, D_lo=3, D_hi=8, loss=0.2)
    eager_only = dataclasses.replace(lossy, gossip_history=0)
    seeds = range(3)
    with_gossip = [sim.simulate(lossy, seed) for seed in seeds]
    without_gossip = [sim.simulate(eager_only, seed) for seed in seeds]
    assert any(r.coverage < 1.0 for r in without_gossip)
    assert all(r.lazy_deliveries == 0 and r.iwant_per_node == 0 for r in without_gossip)
    assert all(r.coverage == 1.0 and r.reached_100 for r in with_gossip)
    assert sum(r.lazy_deliveries for r in with_gossip) > 0
    assert all(r.iwant_per_node > 0 for r in with_gossip)
    # Gossip-repaired nodes wait for a heartbeat: the tail is far longer than the bulk.
    assert max(r.time_to_100_ms for r in with_gossip) > 10 * max(
        r.time_to_99_ms for r in with_gossip
    )


# --------------------------------------------------------------------- growth


def test_rounds_to_99_grow_logarithmically() -> None:
    sizes = (1000, 4000, 16000)
    results = [sim.simulate(sim.SimParams(nodes=n), seed) for n in sizes for seed in range(3)]
    median_rounds = {
        n: statistics.median(r.rounds_to_99 for r in results if r.nodes == n) for n in sizes
    }
    assert median_rounds[1000] <= median_rounds[4000] <= median_rounds[16000]
    # 16x the nodes costs only a few extra hops (linear growth would be 16x).
    assert median_rounds[16000] - median_rounds[1000] <= 4
    slope, _, r2 = sim.fit_log_growth(results)
    assert 0.2 < slope < 1.5
    assert r2 > 0.6


def test_fit_log_growth_recovers_exact_line() -> None:
    template = sim.simulate(sim.SimParams(nodes=100), 0)
    results = [
        dataclasses.replace(template, nodes=n, rounds_to_99=int(2 * math.log2(n) + 1))
        for n in (2, 4, 8, 1024)
    ]
    slope, intercept, r2 = sim.fit_log_growth(results)
    assert slope == pytest.approx(2.0)
    assert intercept == pytest.approx(1.0)
    assert r2 == pytest.approx(1.0)


def test_fit_log_growth_needs_two_sizes() -> None:
    result = sim.simulate(sim.SimParams(nodes=100), 0)
    with pytest.raises(ValueError, match="at least two network sizes"):
        sim.fit_log_growth([result, result])


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"D": 3, "D_lo": 4}, r"D_lo <= D <= D_hi"),
        ({"D": 13, "D_hi": 12}, r"D_lo <= D <= D_hi"),
        ({"nodes": 1}, r"nodes must be >= 2"),
        ({"loss": 1.0}, r"0 <= loss < 1"),
        ({"loss": -0.1}, r"0 <= loss < 1"),
        ({"D_lo": 0, "D": 0}, r"D_lo must be >= 1"),
        ({"heartbeat_interval": 0.0}, r"heartbeat_interval must be > 0"),
    ],
)
def test_invalid_params_raise_clear_value_error(overrides: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sim.SimParams(**overrides)


# ------------------------------------------------------------------------- CLI


def test_cli_prints_table_and_fit_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gossip.json"
    code = sim.main(["--nodes", "300", "1200", "--runs", "2", "--json", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "fit rounds_to_99" in captured.out
    assert "nodes=1,200 run 2/2" in captured.err
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert [row["nodes"] for row in payload["summary"]] == [300, 1200]
    assert len(payload["runs"]) == 4
    assert set(payload["fit"]["rounds_to_99"]) == {"slope", "intercept", "r2"}


def test_cli_rejects_invalid_params(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--nodes", "100", "--loss", "1.5"]) == 2
    assert "loss" in capsys.readouterr().err


def test_table_falls_back_to_plain_text_without_rich(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # makes the import fail
    results = [sim.simulate(sim.SimParams(nodes=200), seed) for seed in range(2)]
    row = sim.summarize(results) | {"wall_s_median": 0.5}
    sim.print_table([row], "plain")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "plain"
    assert lines[1].split()[:2] == ["nodes", "runs"]
    assert lines[2].split()[:2] == ["200", "2"]
