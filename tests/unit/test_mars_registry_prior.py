"""The registry prior of the trust model (mars.registry_prior via TrustModel.set_registry):
paid on-chain ratings count by amount, at most ``rater_cap`` per paying account, accounts of
known nodes by this node's trust in them, anonymous accounts pooled at a bounded weight; owners
and the agent's own node are ignored and a task already known from gossip counts once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.mars.registry_prior import (
    TASK_URI_PREFIX,
    PaidEscrow,
    PaidRating,
    RegistryPolicy,
)
from noosphere.mars.trust import DAY_MS, TrustModel, beta_mean, node_of
from noosphere.protocol.a2a import TaskState
from noosphere.protocol.feedback import Feedback, TaskReceipt

T0 = 1_700_000_000_000
ME = "me"
AGENT = "host/agent"
OWNER = "0xowner"
FAST = settings(max_examples=30, deadline=None, database=None)


def paid(
    rater: str,
    score: int = 100,
    amount: int = 10,
    *,
    agent: str = AGENT,
    owner: str = OWNER,
    at: int = T0,
    task: str | None = None,
) -> PaidRating:
    return PaidRating(
        agent=agent,
        rater=rater,
        owner=owner,
        score=score,
        amount=amount,
        at_ms=at,
        escrow_id=f"escrow-{rater}-{task}",
        uri=TASK_URI_PREFIX + task if task else "",
    )


def gossip(rater: str, agent: str, rating: float, task: str, at: int = T0) -> Feedback:
    receipt = TaskReceipt(
        task_id=task,
        agent=agent,
        agent_peer=node_of(agent),
        requester=rater,
        state=TaskState.COMPLETED,
        issued_at=at,
        latency_ms=10,
    )
    return Feedback(receipt=receipt, rating=rating, issued_at=at)


def model(**config) -> TrustModel:
    return TrustModel(ME, clock=lambda: T0, **config)


#: The agent's node is pre-trusted and owns OWNER, so whoever paid OWNER is credible.
VOUCHED = {"pretrusted": ["host"]}
LINKS = {OWNER: "host"}


def test_no_ratings_no_reputation_and_registry_alone_gives_one() -> None:
    trust = model(**VOUCHED)
    assert trust.reputation(AGENT) is None
    assert trust.set_registry([paid("0xa")], LINKS) == 1
    value = trust.reputation(AGENT)
    assert value is not None and value > 0.5
    assert trust.registry_agents() == [AGENT]


def test_one_paying_account_counts_at_most_rater_cap_however_much_it_pays() -> None:
    one = model(**VOUCHED)
    one.set_registry([paid("0xa")], LINKS)
    many = model(**VOUCHED)
    many.set_registry([paid("0xa", task=f"t{i}") for i in range(500)], LINKS)
    parts_one, parts_many = one.evidence_parts(AGENT), many.evidence_parts(AGENT)
    assert parts_one is not None and parts_many is not None
    assert parts_many.registry == pytest.approx(parts_one.registry)


def test_amount_weighs_a_rating_up_to_one_observation_per_stake_unit() -> None:
    policy = RegistryPolicy(stake_unit=10, rater_cap=5.0, anonymous_weight=0.5)
    cheap, full = model(registry_policy=policy, **VOUCHED), model(registry_policy=policy, **VOUCHED)
    cheap.set_registry([paid("0xa", amount=5)], LINKS)
    full.set_registry([paid("0xa", amount=10)], LINKS)
    cheap_r = cheap.evidence_parts(AGENT).registry_anonymous[0]  # type: ignore[union-attr]
    full_r = full.evidence_parts(AGENT).registry_anonymous[0]  # type: ignore[union-attr]
    assert 0 < cheap_r < full_r


@FAST
@given(puppets=st.integers(1, 2000), weight=st.floats(0.05, 0.9))
def test_sock_puppets_together_stay_under_the_anonymous_bound(puppets: int, weight: float) -> None:
    """However many anonymous accounts pay, the pool is one source at belief w: at most
    2 w / (1 - w) observations."""
    trust = model(registry_policy=RegistryPolicy(anonymous_weight=weight), **VOUCHED)
    trust.set_registry([paid(f"0xpuppet{i}") for i in range(puppets)], LINKS)
    r, s = trust.evidence(AGENT)  # type: ignore[misc]
    assert s == 0.0
    assert r < 2 * weight / (1 - weight) + 1e-9
    # more distinct payers never lower the prior
    fewer = model(registry_policy=RegistryPolicy(anonymous_weight=weight), **VOUCHED)
    fewer.set_registry([paid(f"0xpuppet{i}") for i in range(max(1, puppets // 2))], LINKS)
    assert trust.reputation(AGENT) >= fewer.reputation(AGENT) - 1e-12  # type: ignore[operator]


def test_default_anonymous_pool_is_worth_at_most_one_observation() -> None:
    trust = model(**VOUCHED)
    trust.set_registry([paid(f"0xp{i}") for i in range(10_000)], LINKS)
    assert trust.reputation(AGENT) < beta_mean(1.0, 0.0)  # type: ignore[operator]
    assert trust.reputation(AGENT) > beta_mean(0.9, 0.0)  # type: ignore[operator]


def test_an_anonymous_account_counts_only_after_paying_trusted_nodes() -> None:
    """Sock puppets that only ever paid the colluders' own agents count for nothing; one that
    paid a trusted node half a stake unit counts half; paying the rated agent's node itself
    counts only if this node trusts that node."""
    colluder_agent, owner = "colluder/agent", "0xcolluder"
    links = {owner: "colluder", "0xhonest": "honest"}
    puppets = [paid(f"0xp{i}", agent=colluder_agent, owner=owner) for i in range(100)]
    trust = model(pretrusted=["honest"])
    trust.set_registry(puppets, links)
    assert trust.evidence(colluder_agent) == (0.0, 0.0)
    honest_agents = {"0xhonest": ["honest/agent"]}
    pooled = []
    for amount in (5, 10):  # half a stake unit, then a whole one, paid to a trusted node
        spent = PaidEscrow("0xp0", "0xhonest", amount, T0, "escrow-real")
        trust.set_registry(puppets, links, [spent], honest_agents)
        parts = trust.evidence_parts(colluder_agent)
        assert parts is not None
        pooled.append(parts.registry_anonymous[0])
    half, full = pooled
    assert 0.0 < half < full


def test_owner_and_the_agents_own_node_are_ignored() -> None:
    trust = model()
    used = trust.set_registry(
        [paid(OWNER), paid("0xnodeaccount"), paid("0xa", score=101), paid("0xb", amount=0)],
        {"0xnodeaccount": node_of(AGENT)},
    )
    assert used == 0
    assert trust.reputation(AGENT) is None


def test_accounts_of_known_nodes_count_by_trust_in_the_node() -> None:
    """A colluding node's account (linked, nobody trusts it) adds nothing; the same rating
    from an account of a pre-trusted peer counts in full; anonymous accounts in between."""
    colluder = model()
    colluder.set_registry([paid("0xcolluder")], {"0xcolluder": "colluder-node"})
    assert colluder.evidence(AGENT) == (0.0, 0.0)

    trusted = model(pretrusted=["friend"])
    trusted.set_registry([paid("0xfriend")], {"0xfriend": "friend"})
    parts = trusted.evidence_parts(AGENT)
    assert parts is not None and parts.registry_known == pytest.approx((1.0, 0.0))

    anonymous = model(**VOUCHED)
    anonymous.set_registry([paid("0xstranger")], LINKS)
    assert 0.0 < anonymous.evidence(AGENT)[0] < 1.0  # type: ignore[index]


def test_a_known_nodes_unrated_escrows_are_its_failures() -> None:
    """Noosphere rates only successes on chain; a trusted node's escrows that expired without a
    rating are failures, shared among the payee's agents. An anonymous account's are ignored
    (opening and refunding an escrow costs nothing but gas)."""
    rated = paid("0xfriend", task="ok")
    escrows = [
        PaidEscrow("0xfriend", OWNER, 10, T0, rated.escrow_id),  # the rated one: a success
        *(PaidEscrow("0xfriend", OWNER, 10, T0, f"failed-{i}") for i in range(3)),
        *(PaidEscrow("0xstranger", OWNER, 10, T0, f"grief-{i}") for i in range(50)),
    ]
    other = "host/other-agent"
    trust = model(pretrusted=["friend"])
    used = trust.set_registry([rated], {"0xfriend": "friend"}, escrows, {OWNER: [AGENT, other]})
    assert used == 4
    parts = trust.evidence_parts(AGENT)
    assert parts is not None
    # 1 success, 3 failures split over 2 agents: (1, 1.5), scaled to the account's cap of 1
    assert parts.registry_known == pytest.approx((0.4, 0.6))
    assert parts.registry_anonymous == (0.0, 0.0)
    assert trust.reputation(other) == pytest.approx(beta_mean(0.0, 1.0))


def test_a_task_known_from_gossip_counts_once() -> None:
    trust = model(pretrusted=["friend"])
    trust.record(gossip("friend", AGENT, 1.0, "task-1"), T0)
    before = trust.evidence(AGENT)
    trust.set_registry([paid("0xfriend", task="task-1")], {"0xfriend": "friend"})
    assert trust.evidence(AGENT) == pytest.approx(before)
    # a paid rating of another task adds to it; gossip arriving later for it removes the double
    trust.set_registry([paid("0xfriend", task="task-2")], {"0xfriend": "friend"})
    with_chain = trust.evidence(AGENT)
    assert with_chain[0] > before[0]  # type: ignore[index]
    trust.record(gossip("friend", AGENT, 1.0, "task-2"), T0)
    assert trust.evidence_parts(AGENT).registry == (0.0, 0.0)  # type: ignore[union-attr]


def test_gossip_from_an_unvouched_rater_does_not_silence_the_registry() -> None:
    """The requester's node hosts no agent, so nobody's EigenTrust vouches for its gossip here;
    its paid on-chain copy of the same task still counts, as an anonymous payment."""
    trust = model(**VOUCHED)
    trust.record(gossip("requester", AGENT, 1.0, "task-1"), T0)
    assert trust.reputation(AGENT) == 0.5
    trust.set_registry([paid("0xrequester", task="task-1")], LINKS)
    assert trust.reputation(AGENT) > 0.5  # type: ignore[operator]


def test_registry_evidence_fades_like_gossip() -> None:
    now = [T0]
    trust = TrustModel(ME, clock=lambda: now[0], **VOUCHED)
    trust.set_registry([paid("0xa")], LINKS)
    fresh = trust.evidence_parts(AGENT).registry_anonymous[0]  # type: ignore[union-attr]
    now[0] = T0 + 7 * DAY_MS
    faded = trust.evidence_parts(AGENT).registry_anonymous[0]  # type: ignore[union-attr]
    assert 0 < faded < fresh


def test_low_scores_are_negative_evidence() -> None:
    trust = model(**VOUCHED)
    trust.set_registry([paid("0xa", score=0), paid("0xb", score=0)], LINKS)
    assert trust.reputation(AGENT) < 0.5  # type: ignore[operator]


def test_without_rater_weighting_every_account_counts_in_full() -> None:
    trust = model(weigh_raters=False)
    trust.set_registry([paid(f"0xp{i}") for i in range(50)], {})
    assert trust.evidence(AGENT)[0] == pytest.approx(50.0)  # type: ignore[index]


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        RegistryPolicy(stake_unit=0)
    with pytest.raises(ValueError):
        RegistryPolicy(anonymous_weight=1.0)
