"""The Feedback-phase trust model (noosphere.mars.trust): Beta evidence with decay, dedupe,
EigenTrust rater weights, latency and persistence. Node ids are short names here: the model
only needs ``PEER/AGENT`` card ids; signatures are checked before ``record``."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.mars.profile import AgentProfile
from noosphere.mars.ranking import RankingWeights, Signals, rank
from noosphere.mars.trust import DAY_MS, TrustModel, beta_mean, discount, node_of
from noosphere.protocol.a2a import TaskState
from noosphere.protocol.feedback import Feedback, TaskReceipt

FAST = settings(max_examples=40, deadline=None, database=None)
T0 = 1_700_000_000_000
H = 7 * DAY_MS  # default half-life
ME = "me"

_tasks = iter(range(10**9))


def fb(
    rater: str,
    agent: str,
    rating: float,
    at: int = T0,
    *,
    task: str | None = None,
    latency: int = 100,
) -> Feedback:
    receipt = TaskReceipt(
        task_id=task or f"t{next(_tasks)}",
        agent=agent,
        agent_peer=node_of(agent),
        requester=rater,
        state=TaskState.COMPLETED if rating >= 0.5 else TaskState.FAILED,
        issued_at=at,
        latency_ms=latency,
    )
    return Feedback(receipt=receipt, rating=rating, issued_at=at)


def model(**config) -> TrustModel:
    return TrustModel(ME, **config)


# --- Beta evidence and decay ----------------------------------------------------------------


def test_beta_mean_and_discount_basics() -> None:
    assert beta_mean(0, 0) == 0.5
    assert beta_mean(3, 1) == pytest.approx(4 / 6)
    assert discount(3.0, 1.0, 1.0) == pytest.approx((3.0, 1.0))
    assert discount(3.0, 1.0, 0.0) == (0.0, 0.0)
    # Jøsang-Ismail: b' = w b, d' = w d, back to evidence r' = 2 b' / u'.
    r, s = discount(3.0, 1.0, 0.5)
    b, d = 0.5 * 3 / 6, 0.5 * 1 / 6
    assert (r, s) == pytest.approx((2 * b / (1 - b - d), 2 * d / (1 - b - d)))
    # However much evidence a rater holds, belief w bounds its influence by 2w / (1 - w).
    r, s = discount(1e12, 0.0, 0.2)
    assert r == pytest.approx(2 * 0.2 / 0.8) and s == 0.0


def test_evidence_halves_every_half_life() -> None:
    trust = model()
    trust.record(fb(ME, "A/x", 1.0, T0), T0)
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(1, 0))
    assert trust.reputation_at("A/x", T0 + H) == pytest.approx(beta_mean(0.5, 0))
    assert trust.reputation_at("A/x", T0 + 2 * H) == pytest.approx(beta_mean(0.25, 0))
    assert trust.evidence("A/x", T0 + 3 * H) == pytest.approx((0.125, 0.0))


def test_decay_of_mixed_ratings_is_exact() -> None:
    trust = model(half_life_ms=1000)
    trust.record(fb(ME, "A/x", 1.0, T0), T0)
    trust.record(fb(ME, "A/x", 0.25, T0 + 1000), T0 + 1000)
    trust.record(fb(ME, "A/x", 0.0, T0 + 3000), T0 + 3000)
    # at T0+3000: 1.0 aged 3 half-lives, 0.25 aged 2, 0.0 fresh
    r = 1.0 / 8 + 0.25 / 4
    s = 0.75 / 4 + 1.0
    assert trust.evidence("A/x", T0 + 3000) == pytest.approx((r, s))
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(r, s))


def test_late_arrivals_count_as_if_in_order() -> None:
    in_order, late = model(half_life_ms=1000), model(half_life_ms=1000)
    items = [fb(ME, "A/x", x, T0 + 500 * i) for i, x in enumerate([1.0, 0.0, 0.7, 0.2])]
    for item in items:
        in_order.record(item, item.issued_at)
    for item in reversed(items):
        late.record(item, T0 + 1500)
    assert late.evidence("A/x", T0 + 4000) == pytest.approx(in_order.evidence("A/x", T0 + 4000))


def test_future_dated_feedback_does_not_escape_decay() -> None:
    trust = model(half_life_ms=1000)
    trust.record(fb(ME, "A/x", 1.0, T0 + 10_000), T0)  # claims to be from the future
    assert trust.evidence("A/x", T0 + 1000) == pytest.approx((0.5, 0.0))


# --- dedupe, self-rating, history -------------------------------------------------------------


def test_one_rating_per_rater_and_task() -> None:
    trust = model()
    assert trust.record(fb(ME, "A/x", 1.0, T0, task="t"), T0)
    assert not trust.record(fb(ME, "A/x", 1.0, T0, task="t"), T0)  # replay
    assert not trust.record(fb(ME, "A/x", 0.0, T0 - 1, task="t"), T0)  # older revision
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(1, 0))
    assert trust.record(fb(ME, "A/x", 0.0, T0 + 1, task="t"), T0 + 1)  # later revision replaces
    assert trust.rating_count("A/x") == 1
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(0, 1), abs=1e-9)
    # the same task id rated by another rater is another rating
    assert trust.record(fb("B", "A/x", 1.0, T0 + 1, task="t"), T0 + 1)
    assert trust.rating_count() == 2


def test_a_node_rating_its_own_agent_is_ignored() -> None:
    trust = model()
    assert not trust.record(fb("A", "A/x", 1.0), T0)
    assert trust.reputation("A/x") is None
    assert trust.rating_count() == 0


def test_history_is_per_requester() -> None:
    trust = model()
    for _ in range(3):
        trust.record(fb(ME, "A/x", 1.0), T0)
    trust.record(fb("B", "A/x", 0.0), T0)
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(3, 0))
    assert trust.history("B", "A/x") == pytest.approx(beta_mean(0, 1))
    assert trust.history("C", "A/x") is None
    assert trust.history(ME, "Z/x") is None


def test_unknown_agent_has_no_signals() -> None:
    trust = model()
    assert trust.reputation("A/x") is None
    assert trust.latency_ms("A/x") is None
    assert trust.evidence("A/x") is None


# --- latency ----------------------------------------------------------------------------------


def test_latency_is_an_exponentially_weighted_mean() -> None:
    trust = model(latency_alpha=0.2)
    trust.record(fb(ME, "A/x", 1.0, latency=100), T0)
    assert trust.latency_ms("A/x") == 100
    trust.record(fb(ME, "A/x", 1.0, latency=200), T0)
    assert trust.latency_ms("A/x") == pytest.approx(120)
    trust.record(fb(ME, "A/x", 1.0, latency=20), T0)
    assert trust.latency_ms("A/x") == pytest.approx(120 + 0.2 * (20 - 120))


def test_latency_counts_each_task_once_and_only_from_trusted_sources() -> None:
    trust = model(pretrusted=["P"])
    receipt = fb(ME, "A/x", 1.0, task="t1", latency=100).receipt
    assert trust.record_receipt(receipt, T0)
    assert not trust.record_receipt(receipt, T0)
    trust.record(fb(ME, "A/x", 1.0, task="t1", latency=100), T0)  # same task, with feedback
    trust.record(fb("P", "A/x", 1.0, latency=200), T0)  # configured pre-trusted peer
    assert trust.latency_ms("A/x") == pytest.approx(120)
    trust.record(fb("stranger", "A/x", 1.0, latency=1), T0)  # self-reported by A's node
    assert not trust.record_receipt(fb("stranger", "A/x", 1.0, latency=1).receipt, T0)
    assert trust.latency_ms("A/x") == pytest.approx(120)


# --- EigenTrust -----------------------------------------------------------------------------


def test_eigentrust_chain_exact() -> None:
    """me -> A -> B, B trusts nobody (its mass returns to p = {me}), no local prior:
    t_A = 0.85 t_me, t_B = 0.85^2 t_me, t_me (1 + 0.85 + 0.7225) = 1."""
    trust = model(local_trust_prior=0.0)
    trust.record(fb(ME, "A/x", 1.0), T0)
    trust.record(fb("A", "B/y", 1.0), T0)
    t = trust.global_trust(T0)
    t_me = 1 / 2.5725
    assert t[ME] == pytest.approx(t_me, abs=1e-10)
    assert t["A"] == pytest.approx(0.85 * t_me, abs=1e-10)
    assert t["B"] == pytest.approx(0.7225 * t_me, abs=1e-10)
    assert sum(t.values()) == pytest.approx(1.0)
    assert trust.rater_weight("A", T0) == pytest.approx(0.85)
    assert trust.rater_weight(ME, T0) == 1.0


def test_eigentrust_local_prior_keeps_mass_with_the_pretrusted() -> None:
    """One success with prior 3: c_me,A = 1/4 and 3/4 stays with p; A is dangling.
    t_A = 0.85 * 0.25 t_me = 0.2125 t_me, so t_me = 1 / 1.2125."""
    trust = model(local_trust_prior=3.0)
    trust.record(fb(ME, "A/x", 1.0), T0)
    t = trust.global_trust(T0)
    assert t[ME] == pytest.approx(1 / 1.2125, abs=1e-10)
    assert t["A"] == pytest.approx(0.2125 / 1.2125, abs=1e-10)


def test_local_trust_is_positive_net_evidence_normalised() -> None:
    trust = model(local_trust_prior=0.0)
    for rating in (1.0, 1.0, 1.0, 0.0):  # net +2 for A's node (two agents)
        trust.record(fb(ME, "A/x", rating), T0)
    trust.record(fb(ME, "A/y", 1.0), T0)  # +1 more for node A
    trust.record(fb(ME, "B/z", 1.0), T0)  # +1 for B
    trust.record(fb(ME, "C/z", 0.0), T0)  # negative: no trust
    assert trust.local_trust(T0) == {ME: pytest.approx({"A": 0.75, "B": 0.25})}


def test_a_ring_nobody_trusts_gets_no_trust_and_moves_nothing() -> None:
    """Sybils praise each other and bash an honest agent with real receipts: zero weight."""
    trust = model()
    trust.record(fb(ME, "H/x", 1.0), T0)
    before = trust.reputation_at("H/x", T0)
    ring = [f"sybil{i}" for i in range(20)]
    for i, sybil in enumerate(ring):
        for _ in range(50):
            trust.record(fb(sybil, f"{ring[(i + 1) % len(ring)]}/agent", 1.0), T0)
        trust.record(fb(sybil, "H/x", 0.0), T0)
    t = trust.global_trust(T0)
    assert all(t[s] == 0.0 for s in ring)
    assert trust.reputation_at("H/x", T0) == pytest.approx(before)
    assert trust.reputation_at("sybil0/agent", T0) == pytest.approx(0.5)


def test_trusted_raters_count_by_their_weight() -> None:
    """me is happy with A's agent, so A's node earns trust; A's opinion of C then counts,
    discounted by A's weight; a stranger's opposite opinion counts for nothing."""
    trust = model(local_trust_prior=0.0)
    trust.record(fb(ME, "A/x", 1.0), T0)
    for _ in range(4):
        trust.record(fb("A", "C/z", 1.0), T0)
        trust.record(fb("stranger", "C/z", 0.0), T0)
    w = trust.rater_weight("A", T0)
    assert w == pytest.approx(0.85)  # chain me -> A -> C as above
    assert trust.rater_weight("stranger", T0) == 0.0
    assert trust.evidence("C/z", T0) == pytest.approx(discount(4.0, 0.0, w))
    assert trust.reputation_at("C/z", T0) == pytest.approx(beta_mean(*discount(4.0, 0.0, w)))


def test_weighing_raters_can_be_switched_off() -> None:
    trust = model(weigh_raters=False)
    for _ in range(4):
        trust.record(fb("stranger", "C/z", 0.0), T0)
    assert trust.reputation_at("C/z", T0) == pytest.approx(beta_mean(0, 4))


@FAST
@given(seed=st.integers(0, 2**32 - 1), prior=st.sampled_from([0.0, 1.0, 3.0]))
def test_eigentrust_matches_the_linear_solution(seed: int, prior: float) -> None:
    """The power iteration reaches the unique fixed point of t = (1-a)(C^T t + dangling p) + a p,
    solved here directly with numpy."""
    rng = random.Random(seed)
    nodes = [ME, "P", "A", "B", "C", "D"]
    trust = model(local_trust_prior=prior, pretrusted=["P"])
    for _ in range(rng.randint(0, 25)):
        rater, target = rng.sample(nodes, 2)
        trust.record(fb(rater, f"{target}/x", rng.choice([0.0, 0.5, 1.0])), T0)
    t = trust.global_trust(T0)
    names = sorted(t)
    index = {n: k for k, n in enumerate(names)}
    size = len(names)
    p = np.array([0.5 if n in (ME, "P") else 0.0 for n in names])
    m = np.zeros((size, size))
    rows = trust.local_trust(T0)
    for i in names:
        row = rows.get(i, {})
        for j, c in row.items():
            m[index[i], index[j]] = c
        m[index[i]] += (1.0 - sum(row.values())) * p
    solved = np.linalg.solve(np.eye(size) - 0.85 * m.T, 0.15 * p)
    assert np.allclose([t[n] for n in names], solved, atol=1e-9)


# --- memory bound, persistence, Signals --------------------------------------------------------


def test_cap_evicts_the_flooders_ratings_first() -> None:
    trust = model(max_ratings_per_agent=5)
    trust.record(fb(ME, "A/x", 1.0, T0), T0)
    trust.record(fb(ME, "A/x", 1.0, T0 + 1), T0 + 1)
    for k in range(10):
        trust.record(fb("flooder", "A/x", 0.0, T0 + 10 + k), T0 + 10 + k)
    assert trust.rating_count("A/x") == 5
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(2, 0), abs=1e-6)
    assert trust.history("flooder", "A/x") == pytest.approx(beta_mean(0, 3), abs=1e-6)


def test_records_round_trip_through_json() -> None:
    trust = model(pretrusted=["P"])
    rng = random.Random(7)
    for k in range(60):
        rater = rng.choice([ME, "P", "A", "B"])
        agent = rng.choice(["A/x", "B/y", "C/z"])
        trust.record(fb(rater, agent, rng.random(), T0 + k * 1000, latency=k), T0 + k * 1000)
    records = json.loads(json.dumps(trust.to_records()))
    again = TrustModel.from_records(records, ME, pretrusted=["P"])
    assert again.to_records() == records
    for agent in ["A/x", "B/y", "C/z"]:
        assert again.reputation(agent) == pytest.approx(trust.reputation(agent))
        assert again.latency_ms(agent) == trust.latency_ms(agent)
        assert again.history(ME, agent) == pytest.approx(trust.history(ME, agent))


@pytest.mark.parametrize("records", [{}, {"v": 99}, {"v": 1, "ratings": [{"rater": "x"}]}])
def test_malformed_records_are_refused(records: dict) -> None:
    with pytest.raises(ValueError):
        TrustModel.from_records(records, ME)


def test_clock_drives_the_signals() -> None:
    now = [T0]
    trust = TrustModel(ME, clock=lambda: now[0])
    trust.record(fb(ME, "A/x", 1.0, T0), T0)
    assert trust.reputation("A/x") == pytest.approx(beta_mean(1, 0))
    now[0] = T0 + H
    assert trust.reputation("A/x") == pytest.approx(beta_mean(0.5, 0))
    assert trust.history(ME, "A/x") == pytest.approx(beta_mean(0.5, 0))


def test_bad_configuration_is_refused() -> None:
    for bad in (
        {"half_life_ms": 0},
        {"damping": 0.0},
        {"max_ratings_per_agent": 0},
        {"latency_alpha": 1.5},
        {"local_trust_prior": -1.0},
    ):
        with pytest.raises(ValueError):
            model(**bad)


def test_trust_model_feeds_the_ranking() -> None:
    trust = model()
    signals: Signals = trust
    for _ in range(5):
        trust.record(fb(ME, "A/good", 1.0, latency=500), T0)
        trust.record(fb(ME, "B/bad", 0.0, latency=500), T0)
    profiles = [
        AgentProfile(agent_id=a, name=a, description="", skills=()) for a in ("B/bad", "A/good")
    ]
    ranked = rank(
        [(p, 0.5) for p in profiles],
        requester=ME,
        signals=signals,
        weights=RankingWeights(),
        now_ms=T0,
    )
    assert [r.profile.agent_id for r in ranked] == ["A/good", "B/bad"]
    assert ranked[0].features["reputation"] == pytest.approx(beta_mean(5, 0))
    assert ranked[1].features["history"] == pytest.approx(beta_mean(0, 5), abs=1e-9)
