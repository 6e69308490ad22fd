"""Execute phase (who may read task data): the linear secret sharing scheme behind an access
policy. A policy tree (:mod:`noosphere.abe.policy`) becomes a monotone span program ``(M, rho)``
with the Lewko-Waters algorithm ("Decentralizing Attribute-Based Encryption", EUROCRYPT 2011,
appendix G) generalized to threshold gates as in Liu-Cao-Wong ("Efficient Generation of Linear
Secret Sharing Scheme Matrices from Threshold Access Trees", ePrint 2010/374); FAME
(Agrawal-Chase, CCS 2017) encrypts under ``M`` and decrypts with the coefficients found here.

Sharing convention: the secret is the FIRST entry of the column vector ``u = (s, y2, ..., yc)``;
row ``i`` gets the share ``lambda_i = M_i . u``. A set of rows ``I`` is authorized iff there are
``w_i`` with ``sum_{i in I} w_i M_i = (1, 0, ..., 0)`` (mod p); then ``sum w_i lambda_i = s``.

Construction, with parent vector ``v`` and ``c`` columns allocated so far (root: ``v = (1)``,
``c = 1``; vectors are zero-padded to the final width):

* OR (1-of-n): every child gets ``v``.
* ``t``-of-``n`` with ``1 < t < n``: child ``i`` (1-based) gets ``v`` followed by
  ``(i, i^2, ..., i^(t-1))`` in the new columns ``c+1 .. c+t-1``; then ``c += t-1``. The children's
  shares are ``f(i)`` for a random polynomial ``f`` of degree ``t-1`` with ``f(0)`` = the parent's
  share, so any ``t`` of them recombine with Lagrange coefficients at 0 (target sign is ``+``).
* AND (n-of-n) uses the same ``n-1`` new columns but with Lewko-Waters' +-1 chain instead of a
  Vandermonde block: child 1 gets ``v`` followed by ``e_(c+1)``, child ``i`` (``1 < i < n``) gets
  ``-e_(c+i-1) + e_(c+i)``, child ``n`` gets ``-e_(c+n-1)``; the rows sum to ``v`` (all
  coefficients 1). It is an n-of-n sharing like the Vandermonde block but keeps entries in
  ``{-1, 0, 1}`` (cheap exponents in FAME) and rows sparse; for ``n = 2`` it is exactly the
  Lewko-Waters AND gadget ``(v, 1), (0, -1)``.

The matrix has one row per attribute occurrence and ``1 + sum over gates of (threshold - 1)``
columns (OR gates add none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from noosphere.abe.policy import MAX_ATTRIBUTES, Attr, Gate, Policy, PolicyError

# Order of the BLS12-381 groups (the modulus FAME shares secrets over).
BLS12_381_R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


@dataclass(frozen=True)
class SpanProgram:
    """Monotone span program: ``rows[i]`` is labelled with the attribute ``labels[i]``; every row
    has ``columns`` integer entries (not reduced; may be negative). ``policy`` is the tree it was
    built from (used to pick a small authorized row set); it is not part of equality."""

    rows: tuple[tuple[int, ...], ...]
    labels: tuple[str, ...]
    columns: int
    policy: Policy | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.labels):
            raise ValueError("span program: rows and labels differ in length")
        if self.columns < 1 or any(len(row) != self.columns for row in self.rows):
            raise ValueError(f"span program: every row needs {self.columns} entries")


def span_program(policy: Policy) -> SpanProgram:
    """The span program of ``policy``: row ``i`` belongs to the ``i``-th attribute occurrence
    (``policy.leaves[i]``), left to right."""
    if len(policy.leaves) > MAX_ATTRIBUTES:
        raise PolicyError(f"policy: more than {MAX_ATTRIBUTES} attributes")
    sparse: list[dict[int, int]] = []
    labels: list[str] = []
    columns = 1

    def walk(node: Policy, vector: dict[int, int]) -> None:
        nonlocal columns
        if isinstance(node, Attr):
            sparse.append(vector)
            labels.append(node.name)
            return
        if not isinstance(node, Gate):
            raise PolicyError(f"policy: unknown node {type(node).__name__}")
        n, t = len(node.children), node.threshold
        if t == 1:
            for child in node.children:
                walk(child, vector)
            return
        base = columns  # first new column (0-based)
        columns += t - 1
        if t == n:
            for i, child in enumerate(node.children):
                if i == 0:
                    row = {**vector, base: 1}
                elif i < n - 1:
                    row = {base + i - 1: -1, base + i: 1}
                else:
                    row = {base + i - 1: -1}
                walk(child, row)
            return
        for i, child in enumerate(node.children, start=1):
            walk(child, {**vector, **{base + j - 1: i**j for j in range(1, t)}})

    walk(policy, {0: 1})
    rows = tuple(tuple(row.get(j, 0) for j in range(columns)) for row in sparse)
    return SpanProgram(rows=rows, labels=tuple(labels), columns=columns, policy=policy)


def reconstruction(
    program: SpanProgram, attrs: Iterable[str], modulus: int
) -> dict[int, int] | None:
    """Coefficients ``{row index: w_i mod modulus}`` with ``sum w_i * rows[i] = (1, 0, ..., 0)``
    over rows whose labels are in ``attrs``, or None if ``attrs`` is not authorized.

    With the policy tree at hand, a minimal satisfying set of occurrences is picked from the tree
    (for a ``t``-of-``n`` gate the ``t`` cheapest satisfied children) and only those rows are
    solved; without it, all rows held are used and the solution is a basic one (linearly
    independent rows). ``modulus`` must be a prime larger than the number of rows."""
    if not _is_prime(modulus) or modulus <= len(program.rows):
        raise ValueError("reconstruction: modulus must be a prime larger than the row count")
    if isinstance(attrs, str):
        raise TypeError("reconstruction: expected an iterable of attributes, not a string")
    held = frozenset(attrs)
    if program.policy is not None:
        chosen = _pick(program.policy, held, 0)
        if chosen is None:
            return None
    else:
        chosen = [i for i, label in enumerate(program.labels) if label in held]
    return _solve([program.rows[i] for i in chosen], chosen, modulus)


def _pick(node: Policy, held: frozenset[str], offset: int) -> list[int] | None:
    """Leaf indices (offset by ``offset``) of a small satisfying set under ``node``, or None."""
    if isinstance(node, Attr):
        return [offset] if node.name in held else None
    assert isinstance(node, Gate)
    options: list[list[int]] = []
    for child in node.children:
        picked = _pick(child, held, offset)
        if picked is not None:
            options.append(picked)
        offset += len(child.leaves)
    if len(options) < node.threshold:
        return None
    options.sort(key=len)  # stable: ties keep child order
    return sorted(i for picked in options[: node.threshold] for i in picked)


def _solve(rows: list[tuple[int, ...]], index: list[int], p: int) -> dict[int, int] | None:
    """Solve ``sum_k w_k rows[k] = e_1`` mod ``p`` by sparse Gaussian elimination on the
    equations (one per column); free unknowns are 0. Returns ``{index[k]: w_k}`` (nonzero)."""
    if not rows:
        return None
    pivots: list[tuple[int, dict[int, int], int]] = []  # (unknown, equation, rhs), coeff 1
    for column in range(len(rows[0])):
        equation = {k: row[column] % p for k, row in enumerate(rows) if row[column] % p}
        rhs = 1 if column == 0 else 0
        for unknown, pivot, pivot_rhs in pivots:
            factor = equation.get(unknown)
            if factor is None:
                continue
            for k, coeff in pivot.items():
                value = (equation.get(k, 0) - factor * coeff) % p
                if value:
                    equation[k] = value
                else:
                    equation.pop(k, None)
            rhs = (rhs - factor * pivot_rhs) % p
        if not equation:
            if rhs:
                return None  # (1, 0, ..., 0) is not in the span of the rows
            continue
        unknown = min(equation)
        inverse = pow(equation[unknown], -1, p)
        equation = {k: coeff * inverse % p for k, coeff in equation.items()}
        pivots.append((unknown, equation, rhs * inverse % p))
    solution: dict[int, int] = {}
    for unknown, equation, rhs in reversed(pivots):
        value = rhs
        for k, coeff in equation.items():
            if k != unknown:
                value -= coeff * solution.get(k, 0)
        solution[unknown] = value % p
    return {index[k]: w for k, w in sorted(solution.items()) if w}


_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73)


@lru_cache(maxsize=16)
def _is_prime(n: int) -> bool:
    """Miller-Rabin with the first 21 prime bases (deterministic below 3.3e24)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        return False
    for q in _SMALL_PRIMES:
        if n % q == 0:
            return n == q
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _SMALL_PRIMES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True
