"""Feedback (on the ledger) feeding Recruit: the prior a node that just joined gets from the
``AgentRegistry``'s paid ratings.

Gossiped feedback is heard only while a node is online, so a fresh node knows nothing about any
agent. The registry remembers: it accepts a rating only from the requester of a settled escrow
in which the agent committed a result, one per escrow (``AgentRegistry.giveFeedback``). Every
such rating is therefore backed by a payment, but not necessarily by a *cost*: an agent's owner
can pay its own agents from sock-puppet requester accounts (the tokens come back to it as the
payee; only gas and locked capital are spent). So the prior weighs what the chain shows by how
hard it is to fake:

* a rating counts in proportion to the escrow amount behind it (``amount / stake_unit``
  observations: one paid task at ``stake_unit`` is one observation), score 0..100 mapped to
  ``[0, 1]``; it fades with age like gossiped evidence;
* a paying account that owns proven registry entries of a node (``registry_proof``) is that
  node: its ratings are discounted by this node's trust in it (EigenTrust, pre-trusted peers at
  full weight), exactly like its gossiped ratings - a colluding node gains nothing by paying
  its partners' agents from its own account. The registry only takes ratings of settled,
  committed escrows, so noosphere requesters rate only successes there; a known node's escrows
  that expired without a rating (:class:`PaidEscrow`: refunded, disputed) are its failures,
  shared among the payee's proven agents - without them a trusted node that had one lucky
  success with a free-rider would vouch for it as much as for an agent that never failed;
* one paying account contributes at most ``rater_cap`` observations about an agent (its
  successes and failures scaled down together), however many escrows it pays: influence grows
  with the number of distinct paying accounts, not with one account's volume - a colluding
  node's years of self-dealt praise weigh no more than one rating, discounted by its trust;
* an anonymous account's unrated escrows count for nothing (failures are free to fake);
* every other account (a requester-only node, or a sock puppet) is anonymous. It counts only
  as far as it has paid nodes this node believes in: its credibility is the amount it paid
  them (times the belief in each) in ``stake_unit``s, at most 1 - money that went to strangers
  this node trusts, not back to the colluders. Anonymous evidence about an agent, each account
  scaled by its credibility, is pooled and discounted as one source with belief
  ``anonymous_weight`` (Jøsang-Ismail discounting), so all anonymous accounts together are
  worth at most ``2 w / (1 - w)`` observations (one, for w = 1/3), however many pay;
* ratings by the agent's own owner or by an account of the agent's node are dropped, and an
  on-chain rating whose ``uri`` (``noosphere:task:<id>``) names a task this node holds signed
  gossip feedback for from a pre-trusted rater (itself included) is not counted twice (from a
  less trusted rater both copies count, each by its own rules: a rater nobody vouches for must
  not silence the registry's copy).

This module is pure: ``noosphere.node.settlement`` reads the chain (checking every entry's proof)
and builds the :class:`PaidRating` list; ``TrustModel.set_registry`` applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

#: The ``uri`` noosphere requesters put on their on-chain ratings (the A2A task id follows).
TASK_URI_PREFIX = "noosphere:task:"


class RegistryPolicy(BaseModel):
    """How much the registry's paid ratings count (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stake_unit: int = Field(default=10, gt=0)  # escrow amount worth one full observation
    rater_cap: float = Field(default=1.0, gt=0.0)  # observations per paying account and agent
    anonymous_weight: float = Field(default=1.0 / 3.0, ge=0.0, lt=1.0)  # belief in the pool


@dataclass(frozen=True, slots=True)
class PaidRating:
    """One ``FeedbackGiven`` entry whose registry entry passed its proof check."""

    agent: str  # card id PEER/AGENT named by the proven registry entry
    rater: str  # the paying account (escrow requester = feedback client), lower-case
    owner: str  # the account the escrow paid (the entry's owner), lower-case
    score: int  # 0..100
    amount: int  # tokens the escrow held
    at_ms: int  # block time of the rating
    escrow_id: str
    uri: str = ""

    @property
    def task_id(self) -> str | None:
        """The A2A task a noosphere requester named in ``uri``, if any."""
        if self.uri.startswith(TASK_URI_PREFIX):
            return self.uri[len(TASK_URI_PREFIX) :] or None
        return None


@dataclass(frozen=True, slots=True)
class PaidEscrow:
    """An ``EscrowOpened`` whose deadline has passed (what became of it is told by whether a
    rating names its escrow id)."""

    rater: str  # the requester (payer), lower-case
    owner: str  # the payee, lower-case
    amount: int
    deadline_ms: int
    escrow_id: str


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """What the settlement worker read from the chain for the trust model's registry prior."""

    ratings: list[PaidRating]
    linked: dict[str, str]  # account (lower-case) -> the node owning it (proven entries)
    escrows: list[PaidEscrow]  # expired escrows
    agents_of: dict[str, list[str]]  # payee account (lower-case) -> its proven agents' card ids


def usable(rating: PaidRating, linked: dict[str, str]) -> bool:
    """Whether ``rating`` may count at all: not by the agent's owner, not by an account of the
    agent's own node, a score in 0..100 and a positive amount."""
    if rating.rater == rating.owner or not 0 <= rating.score <= 100 or rating.amount <= 0:
        return False
    node = rating.agent.partition("/")[0]
    return linked.get(rating.rater) != node


def capped(
    ratings: list[tuple[float, float, int]], cap: float | None, decay: Callable[[int], float]
) -> tuple[float, float]:
    """Evidence ``(r, s)`` of one paying account about one agent from its ``(mass, score01,
    at_ms)`` ratings, each weighted by ``decay(at_ms)``, scaled down to ``cap`` (None: no cap)."""
    r = s = 0.0
    for mass, score, at_ms in ratings:
        weight = mass * decay(at_ms)
        r += weight * score
        s += weight * (1.0 - score)
    total = r + s
    if cap is not None and total > cap:
        r, s = r * cap / total, s * cap / total
    return r, s
