"""Sybil and collusion resistance of the trust model, by simulation (noosphere.mars.simulation):
30% of the raters collude, praising their own free-riding agents and bashing honest ones, and
the honest requester must still recruit honest agents - also a requester that joins after the
network ran for a while (it heard none of that gossip) and starts from its pre-trusted peer and
the registry's paid history, while sock-puppet accounts pay and praise the colluders' agents on
the registry. Run with ``-s`` to see the curves."""

from __future__ import annotations

import pytest

from noosphere.mars.simulation import SimConfig, SimResult, simulate


def _report(label: str, result: SimResult) -> None:
    half = len(result.honest_picks) // 2
    print(
        f"\n{label}: honest share tasks {half + 1}-{2 * half} "
        f"{result.honest_rate(half, 2 * half):.1%}, "
        f"all {result.honest_rate():.1%}; colluders {result.colluder_share:.0%} of raters, "
        f"their EigenTrust mass {result.colluder_trust:.3f}, "
        f"top colluder weight {result.max_colluder_weight:.3f}"
    )
    print(result.format_curve())


def _honest_above_free_riders(result: SimResult) -> bool:
    honest = [v for a, v in result.final_reputation.items() if a in result.honest_ids]
    others = [v for a, v in result.final_reputation.items() if a not in result.honest_ids]
    return min(honest) > max(others)


def test_honest_agents_are_recruited_despite_collusion() -> None:
    result = simulate(SimConfig(seed=0))
    _report("seed 0, epsilon-greedy 0.05", result)
    assert len(result.honest_picks) == 500
    assert result.colluder_share >= 0.30
    assert result.honest_rate(250, 500) >= 0.95
    assert len(result.curve()) == 10
    assert result.colluder_trust < 0.1
    assert _honest_above_free_riders(result)


@pytest.mark.parametrize(("seed", "policy"), [(1, "epsilon"), (2, "epsilon"), (3, "thompson")])
def test_other_seeds_loosely(seed: int, policy: str) -> None:
    result = simulate(SimConfig(seed=seed, policy=policy))  # type: ignore[arg-type]
    _report(f"seed {seed}, {policy}", result)
    assert result.honest_rate(250, 500) >= 0.90
    assert result.colluder_trust < 0.2
    assert _honest_above_free_riders(result)


JOINED = {"join_round": 250, "registry": True, "puppets_per_colluder": 3}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_node_that_just_joined_recruits_honest_agents(seed: int) -> None:
    result = simulate(SimConfig(seed=seed, trusted_peers=1, **JOINED))  # type: ignore[arg-type]
    _report(f"seed {seed}, joined at round 250 with 1 pre-trusted peer + registry", result)
    assert result.colluder_share >= 0.30
    assert result.chain_ratings > 10_000  # the history the node did not hear
    assert result.honest_rate(250, 500) >= 0.95
    assert result.honest_rate() >= 0.95
    assert _honest_above_free_riders(result)


def test_sock_puppets_buy_nothing_from_a_node_that_trusts_nobody_yet() -> None:
    """Without a pre-trusted peer the newcomer believes in no node, so no paying account has
    paid anyone it trusts: the puppets' praise lifts no free-rider above the neutral 0.5."""
    result = simulate(SimConfig(seed=1, tasks=1, **JOINED))  # type: ignore[arg-type]
    free_riders = [v for a, v in result.first_reputation.items() if a not in result.honest_ids]
    assert free_riders and max(free_riders) <= 0.5


def test_without_rater_weighting_the_colluders_win() -> None:
    """The same attack against a plain Beta sum (every rater weight 1): the threat is real."""
    result = simulate(SimConfig(seed=0, tasks=150, trust_options=(("weigh_raters", False),)))
    _report("seed 0, unweighted Beta (baseline)", result)
    assert result.honest_rate(50, 150) < 0.5
    assert result.max_colluder_weight == 1.0


def test_signed_run_rejects_forged_receipts_and_drops_self_praise() -> None:
    """With real signatures: every forged receipt fails verification, self-praise is ignored."""
    config = SimConfig(seed=4, tasks=20, praise_per_colluder=2, sign=True)
    result = simulate(config)
    assert result.rejected == config.colluders * config.tasks
    assert result.ignored > 0
    assert result.recorded > config.tasks
