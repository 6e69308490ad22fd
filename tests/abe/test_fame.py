"""FAME CP-ABE (Agrawal-Chase, CCS 2017) as a KEM: decryption succeeds iff the key's attributes
satisfy the policy (threshold gates and repeated attributes included), and keys cannot collude
by pooling their attribute components."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noosphere.abe.envelope import EnvelopeError, open_sealed, seal
from noosphere.abe.fame import (
    AbeError,
    NotAuthorized,
    SecretKey,
    decapsulate,
    encapsulate,
    hash_attribute,
    hash_column,
    keygen,
)
from noosphere.abe.keys import (
    AttributeKey,
    AuthorityMasterKey,
    AuthorityPublicKey,
    issue_key,
    new_authority,
)
from noosphere.abe.policy import Attr, Gate, Policy, parse_policy

UNIVERSE = ("a:1", "b:2", "c:3", "d:4")
Authority = tuple[AuthorityPublicKey, AuthorityMasterKey]


@pytest.fixture(scope="module")
def authority() -> Authority:
    return new_authority()


_KEYS: dict[tuple[int, frozenset[str]], AttributeKey] = {}


def key_for(authority: Authority, attrs: frozenset[str]) -> AttributeKey:
    """One key per attribute set and authority (keygen is the expensive part)."""
    slot = (id(authority[0]), attrs)
    if slot not in _KEYS:
        _KEYS[slot] = issue_key(authority[0], authority[1], "holder", sorted(attrs))
    return _KEYS[slot]


def subsets() -> Iterator[frozenset[str]]:
    for n in range(1, len(UNIVERSE) + 1):
        for combo in itertools.combinations(UNIVERSE, n):
            yield frozenset(combo)


def policies(max_leaves: int = 6) -> st.SearchStrategy[Policy]:
    """Random trees of AND / OR / k-of-n gates over a small universe; attributes repeat."""
    leaf = st.sampled_from(UNIVERSE).map(Attr)

    def gates(children: st.SearchStrategy[Policy]) -> st.SearchStrategy[Policy]:
        return st.lists(children, min_size=2, max_size=3).flatmap(
            lambda kids: st.integers(1, len(kids)).map(lambda k: Gate(k, tuple(kids)))
        )

    return st.recursive(leaf, gates, max_leaves=max_leaves)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), attrs=st.sets(st.sampled_from(UNIVERSE), min_size=1))
def test_open_succeeds_iff_attributes_satisfy_policy(
    authority: Authority, policy: Policy, attrs: set[str]
) -> None:
    key = key_for(authority, frozenset(attrs))
    payload = f"{policy} / {sorted(attrs)}".encode()
    sealed = seal(authority[0], policy, payload, "task-1")
    if policy.satisfied_by(attrs):
        assert open_sealed(key, sealed, task_id="task-1") == payload
    else:
        with pytest.raises(NotAuthorized):
            open_sealed(key, sealed, task_id="task-1")


@settings(max_examples=40, deadline=None)
@given(policy=policies(max_leaves=4), attrs=st.sets(st.sampled_from(UNIVERSE), min_size=1))
def test_kem_key_matches_for_satisfying_keys(
    authority: Authority, policy: Policy, attrs: set[str]
) -> None:
    gt_key, ciphertext = encapsulate(authority[0].key, policy)
    key = key_for(authority, frozenset(attrs)).key
    if policy.satisfied_by(attrs):
        assert decapsulate(key, ciphertext) == gt_key
    else:
        with pytest.raises(NotAuthorized):
            decapsulate(key, ciphertext)


@pytest.mark.parametrize(
    "text",
    [
        "2 of (a:1, b:2, c:3)",
        "3 of (a:1, b:2, c:3, d:4)",
        "2 of (a:1, a:1, b:2)",  # the same attribute twice under one gate
        "(a:1 and b:2) or (a:1 and c:3)",
        "a:1 and (a:1 or b:2) and 2 of (a:1, c:3, d:4)",
        "2 of (a:1 and b:2, c:3 or d:4, 2 of (a:1, c:3, d:4))",
    ],
)
def test_threshold_and_repeated_attributes_exhaustively(authority: Authority, text: str) -> None:
    policy = parse_policy(text)
    sealed = seal(authority[0], policy, text.encode(), "t")
    for attrs in subsets():
        key = key_for(authority, attrs)
        if policy.satisfied_by(attrs):
            assert open_sealed(key, sealed) == text.encode(), sorted(attrs)
        else:
            with pytest.raises(NotAuthorized, match="do not satisfy"):
                open_sealed(key, sealed)


def test_repeated_attribute_alone_satisfies_a_threshold_over_its_copies(
    authority: Authority,
) -> None:
    sealed = seal(authority[0], "2 of (a:1, a:1, b:2)", b"x", "t")
    assert open_sealed(key_for(authority, frozenset({"a:1"})), sealed) == b"x"
    with pytest.raises(NotAuthorized):
        open_sealed(key_for(authority, frozenset({"b:2"})), sealed)


def merged(first: SecretKey, second: SecretKey) -> SecretKey:
    """A colluders' key: sk0 and sk' of ``first``, attribute components of both."""
    return SecretKey(
        sk0=first.sk0,
        attributes={**second.attributes, **first.attributes},
        sk_prime=first.sk_prime,
    )


@pytest.mark.parametrize(
    ("text", "left", "right"),
    [
        ("a:1 and b:2", {"a:1", "c:3"}, {"b:2", "c:3"}),
        ("2 of (a:1, b:2, c:3)", {"a:1", "d:4"}, {"b:2"}),
        ("a:1 and (b:2 or c:3) and d:4", {"a:1", "d:4"}, {"c:3"}),
    ],
)
def test_collusion_of_two_keys_fails(
    authority: Authority, text: str, left: set[str], right: set[str]
) -> None:
    public, master = authority
    policy = parse_policy(text)
    assert not policy.satisfied_by(left) and not policy.satisfied_by(right)
    assert policy.satisfied_by(left | right)
    # Fresh keys (not the cache): the two colluders are different users.
    key_l = issue_key(public, master, "left", sorted(left))
    key_r = issue_key(public, master, "right", sorted(right))
    sealed = seal(public, policy, b"secret", "t")
    for key in (key_l, key_r):
        with pytest.raises(NotAuthorized):
            open_sealed(key, sealed)
    gt_key, ciphertext = encapsulate(public.key, policy)
    for a, b in ((key_l, key_r), (key_r, key_l)):
        forged = merged(a.key, b.key)
        assert decapsulate(forged, ciphertext) != gt_key  # satisfies, but the wrong key
        forged_key = AttributeKey(a.authority, a.epoch, "colluders", forged)
        with pytest.raises(EnvelopeError, match="failed authentication"):
            open_sealed(forged_key, sealed)
    # sk0 of one key with sk' of the other fails as well.
    mixed = SecretKey(
        sk0=key_l.key.sk0,
        attributes={**key_l.key.attributes, **key_r.key.attributes},
        sk_prime=key_r.key.sk_prime,
    )
    assert decapsulate(mixed, ciphertext) != gt_key


def test_same_attributes_different_keys_both_work_and_differ(authority: Authority) -> None:
    public, master = authority
    one = issue_key(public, master, "x", ["a:1", "b:2"])
    two = issue_key(public, master, "y", ["a:1", "b:2"])
    assert one.key.sk0 != two.key.sk0  # fresh randomness per key
    gt_key, ciphertext = encapsulate(public.key, parse_policy("a:1 and b:2"))
    assert decapsulate(one.key, ciphertext) == decapsulate(two.key, ciphertext) == gt_key


def test_key_from_another_authority_decapsulates_to_a_different_key(
    authority: Authority,
) -> None:
    other_public, other_master = new_authority()
    stranger = keygen(other_public.key, other_master.key, ["a:1"])
    gt_key, ciphertext = encapsulate(authority[0].key, parse_policy("a:1"))
    assert decapsulate(stranger, ciphertext) != gt_key


def test_encapsulation_is_randomized(authority: Authority) -> None:
    policy = parse_policy("a:1 or b:2")
    (k1, c1), (k2, c2) = (
        encapsulate(authority[0].key, policy),
        encapsulate(authority[0].key, policy),
    )
    assert k1 != k2 and c1.ct0 != c2.ct0 and c1.rows != c2.rows


def test_keygen_needs_an_attribute(authority: Authority) -> None:
    with pytest.raises(AbeError, match="at least one attribute"):
        keygen(authority[0].key, authority[1].key, [])


def test_issue_key_refuses_mixed_epochs(authority: Authority) -> None:
    later_public, _ = new_authority(epoch=2)
    with pytest.raises(ValueError, match="different epochs"):
        issue_key(later_public, authority[1], "h", ["a:1"])


def test_hashes_are_domain_separated() -> None:
    points = {
        hash_attribute("a:1", 1, 1).serialize(),
        hash_attribute("a:1", 1, 2).serialize(),
        hash_attribute("a:1", 2, 1).serialize(),
        hash_attribute("b:2", 1, 1).serialize(),
        hash_column(1, 1, 1).serialize(),
        hash_column(2, 1, 1).serialize(),
        hash_column(1, 2, 1).serialize(),
    }
    assert len(points) == 7
