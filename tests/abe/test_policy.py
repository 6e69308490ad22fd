"""ABE access policies: the parser (grammar, errors with columns, limits), the canonical printed
form, satisfaction, and the span program (reconstruction iff satisfied, real secret sharing mod
the BLS12-381 group order)."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noosphere.abe.lsss import BLS12_381_R, SpanProgram, reconstruction, span_program
from noosphere.abe.policy import (
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_TEXT_BYTES,
    Attr,
    Gate,
    Policy,
    PolicyError,
    parse_policy,
)

R = BLS12_381_R
UNIVERSE = ("org:acme", "role:analyst", "clearance:secret", "x:1", "y:2", "z:3")
A, B, C = Attr("a:1"), Attr("b:2"), Attr("c:3")


def AND(*children: Policy) -> Gate:
    return Gate(len(children), children)


def OR(*children: Policy) -> Gate:
    return Gate(1, children)


# --- parser ------------------------------------------------------------------------------------


def test_order_of_the_group() -> None:
    assert R == 52435875175126190479447740508185965837690552500527637822603658699938581184513


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a:1", A),
        ("  ( (a:1) )  ", A),
        ("a:1 and b:2", AND(A, B)),
        ("a:1 or b:2", OR(A, B)),
        ("a:1 or b:2 and c:3", OR(A, AND(B, C))),
        ("a:1 and b:2 or c:3", OR(AND(A, B), C)),
        ("a:1 and (b:2 or c:3)", AND(A, OR(B, C))),
        ("a:1 AND b:2 Or c:3", OR(AND(A, B), C)),
        ("2 of (a:1, b:2, c:3)", Gate(2, (A, B, C))),
        ("2 OF(a:1,b:2,c:3)", Gate(2, (A, B, C))),
        ("2 of (a:1, b:2)", AND(A, B)),
        ("1 of (a:1, b:2)", OR(A, B)),
        ("1 of (a:1)", A),
        ("02 of (a:1, b:2, c:3)", Gate(2, (A, B, C))),
        ("a:1 and b:2 and c:3", AND(A, B, C)),
        ("(a:1 and b:2) and c:3", AND(A, B, C)),
        ("a:1 and (b:2 and c:3)", AND(A, B, C)),
        ("a:1 or (b:2 or c:3)", OR(A, B, C)),
        ("3 of (a:1, b:2 and c:3, a:1)", AND(A, B, C, A)),
        ("a:1 and a:1", AND(A, A)),
        ("2 of (a:1 or b:2, c:3, a:1 and b:2)", Gate(2, (OR(A, B), C, AND(A, B)))),
        ("and:x or or:y", OR(Attr("and:x"), Attr("or:y"))),
        ("user.id:alice@example.com", Attr("user.id:alice@example.com")),
        ("a:1\tand\nb:2", AND(A, B)),
    ],
)
def test_parses(text: str, tree: Policy) -> None:
    assert parse_policy(text) == tree


def test_brief_examples() -> None:
    p = parse_policy("(org:acme and role:analyst) or clearance:secret")
    assert p == OR(AND(Attr("org:acme"), Attr("role:analyst")), Attr("clearance:secret"))
    p = parse_policy("2 of (org:acme, role:analyst, clearance:secret)")
    assert p == Gate(2, tuple(Attr(a) for a in UNIVERSE[:3]))
    p = parse_policy("org:acme and (role:a or 2 of (x:1, y:2, z:3))")
    inner = Gate(2, (Attr("x:1"), Attr("y:2"), Attr("z:3")))
    assert p == AND(Attr("org:acme"), OR(Attr("role:a"), inner))
    assert p.attributes == frozenset({"org:acme", "role:a", "x:1", "y:2", "z:3"})
    assert str(p) == "org:acme and (role:a or 2 of (x:1, y:2, z:3))"


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("(a:1 and b:2", 13, "expected ')'"),
        ("a:1 and", 8, "expected attribute"),
        ("a:1 or or b:2", 8, "expected attribute"),
        ("and a:1", 1, "expected attribute"),
        ("a:1 b:2", 5, "expected 'and', 'or'"),
        ("a:1)", 4, "expected 'and', 'or'"),
        ("()", 2, "expected attribute"),
        ("(a:1, b:2)", 5, "expected ')'"),
        ("a:1 & b:2", 5, "unexpected character '&'"),
        ("a:1 and B:2", 9, "invalid attribute 'B:2'"),
        ("a:1 and role", 9, "invalid attribute 'role'"),
        ("a:1 and r:a:b", 9, "invalid attribute"),
        ("a:1 and r:", 9, "invalid attribute"),
        ("2 (a:1, b:2)", 3, "expected 'of'"),
        ("2 of a:1, b:2", 6, "expected '('"),
        ("2 of (a:1, b:2", 15, "expected ',' or ')'"),
        ("2 of (a:1,, b:2)", 11, "expected attribute"),
        ("0 of (a:1, b:2)", 1, "threshold 0 not in 1..2"),
        ("3 of (a:1, b:2)", 1, "threshold 3 not in 1..2"),
        ("a:1 or 4 of (a:1, b:2, c:3)", 8, "threshold 4 not in 1..3"),
        ("99999999999999999999 of (a:1)", 1, "not in 1..1"),
        ("a:1 and é:1", 9, "unexpected character 'é'"),
        ("of", 1, "expected attribute"),
    ],
)
def test_rejects(text: str, column: int | None, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("policy: ")
    assert fragment in message
    if column is not None:
        assert f"at column {column}" in message


def test_error_message_shape() -> None:
    with pytest.raises(PolicyError, match=r"^policy: expected '\)' at column 17"):
        parse_policy("(org:acme or r:1,y:2)")
    assert issubclass(PolicyError, ValueError)


def test_limits() -> None:
    many = " or ".join(f"a:{i}" for i in range(MAX_ATTRIBUTES))
    assert len(parse_policy(many).leaves) == MAX_ATTRIBUTES
    with pytest.raises(PolicyError, match=r"more than 256 attributes at column \d+"):
        parse_policy(many + " or b:1")
    repeated = " and ".join(["a:1"] * MAX_ATTRIBUTES)  # repeats count as occurrences
    assert parse_policy(repeated).attributes == {"a:1"}
    with pytest.raises(PolicyError, match="more than 256 attributes"):
        parse_policy(repeated + " and a:1")

    deep = "(" * MAX_DEPTH + "a:1" + ")" * MAX_DEPTH
    assert parse_policy(deep) == A
    with pytest.raises(PolicyError, match=r"nested deeper than 32 parentheses at column 33"):
        parse_policy("(" + deep + ")")
    gates = "a:1"
    for _ in range(MAX_DEPTH):
        gates = f"1 of ({gates}, b:2)"
    assert parse_policy(gates).depth == 1  # OR of ORs flattens
    with pytest.raises(PolicyError, match="nested deeper"):
        parse_policy(f"1 of ({gates}, b:2)")

    padded = "a:1" + " " * (MAX_TEXT_BYTES - 3)
    assert parse_policy(padded) == A
    with pytest.raises(PolicyError, match=r"^policy: longer than 8192 bytes$"):
        parse_policy(padded + " ")


def test_canonical_form_stays_within_the_text_limit() -> None:
    names = ",".join(f"n{i:04d}:{'v' * 25}" for i in range(255))  # 31 + 1 bytes each
    compact = f"2 of({names},x:1)"
    assert len(compact) <= MAX_TEXT_BYTES < len(compact.replace(",", ", ")) + 1
    with pytest.raises(PolicyError, match=r"^policy: canonical form longer than 8192 bytes$"):
        parse_policy(compact)


def test_gate_constructor_validates_and_normalizes() -> None:
    for bad in [lambda: Gate(0, (A, B)), lambda: Gate(3, (A, B)), lambda: Gate(1, (A,))]:
        with pytest.raises(PolicyError):
            bad()
    with pytest.raises(PolicyError):
        Gate(True, (A, B))
    with pytest.raises(PolicyError):
        Attr("Nope")
    assert Gate(2, (AND(A, B), C)) == AND(A, B, C)  # 2-of-2 is an AND: flattened
    assert Gate(2, [A, B]).children == (A, B)
    assert OR(A, OR(B, C)) == OR(A, B, C)
    assert AND(A, OR(B, C)) != OR(AND(A, B), C)
    assert Gate(2, (A, B, C)) != Gate(2, (A, C, B))  # child order is kept
    assert len({AND(A, B), parse_policy("a:1 and b:2"), parse_policy("2 of (a:1, b:2)")}) == 1


# --- canonical form and satisfaction -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("  a:1   AND   b:2 ", "a:1 and b:2"),
        ("(a:1 and b:2) or c:3", "a:1 and b:2 or c:3"),
        ("a:1 and (b:2 or c:3)", "a:1 and (b:2 or c:3)"),
        ("3 OF(a:1,b:2,c:3)", "a:1 and b:2 and c:3"),
        ("1 of (a:1, (b:2))", "a:1 or b:2"),
        ("2 of (a:1 or b:2,c:3 and a:1,  b:2)", "2 of (a:1 or b:2, c:3 and a:1, b:2)"),
        ("2 of (1 of (a:1, b:2), c:3)", "(a:1 or b:2) and c:3"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_policy(text)) == canonical
    assert parse_policy(canonical) == parse_policy(text)


def test_satisfied_by_truth_tables() -> None:
    cases = {
        "a:1 and b:2": lambda a, b, c: a and b,
        "a:1 or b:2": lambda a, b, c: a or b,
        "a:1 or b:2 and c:3": lambda a, b, c: a or (b and c),
        "(a:1 or b:2) and c:3": lambda a, b, c: (a or b) and c,
        "2 of (a:1, b:2, c:3)": lambda a, b, c: a + b + c >= 2,
        "3 of (a:1, b:2, c:3)": lambda a, b, c: a and b and c,
        "2 of (a:1, a:1, b:2)": lambda a, b, c: a,  # repeats count per occurrence
        "2 of (a:1, b:2 or c:3, c:3)": lambda a, b, c: a + (b or c) + c >= 2,
    }
    names = ("a:1", "b:2", "c:3")
    for text, truth in cases.items():
        policy = parse_policy(text)
        for bits in itertools.product((False, True), repeat=3):
            held = [name for name, bit in zip(names, bits, strict=True) if bit]
            assert policy.satisfied_by(held) == bool(truth(*bits)), (text, held)
            assert policy.satisfied_by(iter([*held, "other:x"])) == bool(truth(*bits))


# --- random trees ------------------------------------------------------------------------------


@st.composite
def trees(draw: st.DrawFn, depth: int = 4, max_leaves: int = 12) -> Policy:
    budget = [max_leaves]

    def build(level: int) -> Policy:
        leaf = level < depth and draw(st.integers(0, 2)) == 0  # the root is always a gate
        if level == 0 or budget[0] < 2 or leaf:
            budget[0] -= 1
            return Attr(draw(st.sampled_from(UNIVERSE)))
        n = draw(st.integers(2, min(4, budget[0])))
        budget[0] -= n  # reserve one leaf per child
        children = []
        for _ in range(n):
            budget[0] += 1
            children.append(build(level - 1))
        return Gate(draw(st.integers(1, n)), tuple(children))

    return build(depth)


def spell(policy: Policy, rnd: random.Random) -> str:
    """A random, semantically equal spelling of ``policy``."""

    def keyword(word: str) -> str:
        return "".join(ch.upper() if rnd.random() < 0.5 else ch for ch in word)

    def space() -> str:
        return rnd.choice(["", " ", "  ", "\t", "\n "])

    def go(node: Policy) -> str:
        if isinstance(node, Attr):
            text = node.name
        else:
            assert isinstance(node, Gate)
            parts = [go(child) for child in node.children]
            if (node.is_and or node.is_or) and rnd.random() < 0.7:
                joiner = f" {space()}{keyword('and' if node.is_and else 'or')} {space()}"
                text = f"({space()}{joiner.join(parts)}{space()})"
            else:
                sep = f"{space()},{space()}"
                text = f"{node.threshold} {keyword('of')}{space()}({sep.join(parts)})"
        return f"({text})" if rnd.random() < 0.2 else text

    return space() + go(policy) + space()


@settings(max_examples=300, deadline=None)
@given(trees(), st.randoms(use_true_random=False))
def test_canonical_round_trip(policy: Policy, rnd: random.Random) -> None:
    canonical = str(policy)
    assert parse_policy(canonical) == policy
    assert str(parse_policy(canonical)) == canonical
    assert re.fullmatch(r"[a-z0-9:_.@ (),-]+", canonical)
    spelled = spell(policy, rnd)
    assert parse_policy(spelled) == policy
    assert str(parse_policy(spelled)) == canonical


# --- span program ------------------------------------------------------------------------------


def check_reconstruction(program: SpanProgram, held: frozenset[str], w: dict[int, int]) -> None:
    assert all(program.labels[i] in held for i in w)
    assert all(0 < c < R for c in w.values())
    combined = [
        sum(c * program.rows[i][j] for i, c in w.items()) % R for j in range(program.columns)
    ]
    assert combined == [1] + [0] * (program.columns - 1)
    rng = random.Random(len(w))
    secret = rng.randrange(R)
    u = [secret] + [rng.randrange(R) for _ in range(program.columns - 1)]
    shares = [sum(m * x for m, x in zip(row, u, strict=True)) % R for row in program.rows]
    assert sum(c * shares[i] for i, c in w.items()) % R == secret


def test_span_program_shapes_and_signs() -> None:
    assert span_program(A) == SpanProgram(rows=((1,),), labels=("a:1",), columns=1)
    assert span_program(AND(A, B)).rows == ((1, 1), (0, -1))  # Lewko-Waters AND gadget
    assert span_program(AND(A, B, C)).rows == ((1, 1, 0), (0, -1, 1), (0, 0, -1))
    assert span_program(OR(A, B)).rows == ((1,), (1,))
    assert span_program(Gate(2, (A, B, C))).rows == ((1, 1), (1, 2), (1, 3))
    assert span_program(Gate(3, (A, B, C, A))).rows == (
        (1, 1, 1),
        (1, 2, 4),
        (1, 3, 9),
        (1, 4, 16),
    )
    program = span_program(parse_policy("org:acme and (role:a or 2 of (x:1, y:2, z:3))"))
    assert program.labels == ("org:acme", "role:a", "x:1", "y:2", "z:3")
    assert program.columns == 3
    w = reconstruction(program, ["org:acme", "y:2", "z:3"], R)
    assert w is not None and set(w) == {0, 3, 4}
    check_reconstruction(program, frozenset({"org:acme", "y:2", "z:3"}), w)
    assert reconstruction(program, ["org:acme", "z:3"], R) is None
    assert reconstruction(program, ["role:a", "y:2", "z:3"], R) is None


@pytest.mark.parametrize("n", [10, 20, 50, 256])
def test_and_of_n_is_n_by_n_with_small_entries(n: int) -> None:
    policy = parse_policy(" and ".join(f"a:{i}" for i in range(n)))
    program = span_program(policy)
    assert (len(program.rows), program.columns) == (n, n)
    assert {x for row in program.rows for x in row} == {-1, 0, 1}
    w = reconstruction(program, policy.attributes, R)
    assert w == dict.fromkeys(range(n), 1)
    check_reconstruction(program, policy.attributes, w)
    assert reconstruction(program, list(policy.attributes)[1:], R) is None


def test_large_threshold_reconstructs() -> None:
    names = [f"a:{i}" for i in range(MAX_ATTRIBUTES)]
    policy = parse_policy(f"100 of ({', '.join(names)})")
    program = span_program(policy)
    assert (len(program.rows), program.columns) == (256, 100)
    held = frozenset(names[::2])  # 128 held, 100 needed
    w = reconstruction(program, held, R)
    assert w is not None and len(w) == 100
    check_reconstruction(program, held, w)
    assert reconstruction(program, names[:99], R) is None


def test_repeated_attribute_rows() -> None:
    program = span_program(parse_policy("2 of (a:1, a:1, b:2)"))
    w = reconstruction(program, ["a:1"], R)
    assert w is not None and set(w) == {0, 1}
    check_reconstruction(program, frozenset({"a:1"}), w)


def test_a_bare_string_is_not_an_attribute_set() -> None:
    with pytest.raises(TypeError):
        A.satisfied_by("a:1")
    with pytest.raises(TypeError):
        reconstruction(span_program(A), "a:1", R)


def test_modulus_must_be_a_large_enough_prime() -> None:
    program = span_program(Gate(2, (A, B, C)))
    for bad in (R + 2, R - 1, 1, 0, 3):  # 3 <= number of rows
        with pytest.raises(ValueError, match="prime"):
            reconstruction(program, ["a:1"], bad)
    w = reconstruction(program, ["a:1", "c:3"], 101)
    assert w is not None
    assert sum(c * program.rows[i][1] for i, c in w.items()) % 101 == 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.sets(st.sampled_from(UNIVERSE)))
def test_lsss_reconstructs_iff_satisfied(policy: Policy, held: set[str]) -> None:
    program = span_program(policy)
    assert len(program.rows) == len(policy.leaves)
    assert program.labels == policy.leaves
    assert program.columns == 1 + sum(node.threshold - 1 for node in _gates(policy))
    satisfied = policy.satisfied_by(held)
    # tree-guided subset, and pure linear algebra over every held row (no tree)
    for candidate in (program, replace(program, policy=None)):
        w = reconstruction(candidate, held, R)
        assert (w is not None) == satisfied, (str(policy), held)
        if w is not None:
            check_reconstruction(program, frozenset(held), w)


@settings(max_examples=100, deadline=None)
@given(trees(depth=3, max_leaves=8))
def test_lsss_matches_every_attribute_subset(policy: Policy) -> None:
    program = replace(span_program(policy), policy=None)
    names = sorted(policy.attributes)
    for bits in itertools.product((False, True), repeat=len(names)):
        held = {name for name, bit in zip(names, bits, strict=True) if bit}
        w = reconstruction(program, held, R)
        assert (w is not None) == policy.satisfied_by(held)


def _gates(policy: Policy) -> list[Gate]:
    if isinstance(policy, Attr):
        return []
    assert isinstance(policy, Gate)
    return [policy] + [gate for child in policy.children for gate in _gates(child)]
