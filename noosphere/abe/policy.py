"""Execute phase (who may read task data): the access-policy language of the attribute-based
encryption. A policy over agent attributes (``name:value``, as in the agent file) is written with
``and``, ``or``, parentheses and threshold gates ``K of (p1, p2, ...)``; it parses to an immutable
tree of threshold gates (AND = n-of-n, OR = 1-of-n) with one canonical printed form. The tree is
turned into a linear secret sharing scheme in :mod:`noosphere.abe.lsss` (Lewko-Waters, EUROCRYPT
2011, with the threshold-gate generalization of Liu-Cao-Wong) for the FAME scheme (Agrawal-Chase,
CCS 2017) in :mod:`noosphere.abe.fame`.

Grammar (keywords case-insensitive; ``and`` binds tighter than ``or``)::

    policy    := term ("or" term)*
    term      := factor ("and" factor)*
    factor    := ATTRIBUTE | "(" policy ")" | NUMBER "of" "(" policy ("," policy)* ")"

Limits: at most 256 attribute occurrences, parentheses nested at most 32 deep, 8192 bytes of text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from noosphere.errors import CryptoError

MAX_ATTRIBUTES = 256
MAX_DEPTH = 32
MAX_TEXT_BYTES = 8192

ATTRIBUTE = re.compile(r"[a-z][a-z0-9_.-]*:[A-Za-z0-9_.@-]+")
_WORD = re.compile(r"[A-Za-z0-9_.@:-]+")
_NUMBER = re.compile(r"[0-9]+")
_KEYWORDS = frozenset({"and", "or", "of"})


class PolicyError(CryptoError, ValueError):
    """The policy text (or tree) is not a valid access policy; the message is one line."""


@dataclass(frozen=True)
class Policy:
    """A node of a policy tree: an :class:`Attr` leaf or a threshold :class:`Gate`."""

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        """The attribute occurrences, left to right (one per row of the span program)."""
        raise NotImplementedError

    @cached_property
    def attributes(self) -> frozenset[str]:
        """The distinct attributes the policy mentions."""
        return frozenset(self.leaves)

    @property
    def depth(self) -> int:
        """Height of the tree: 0 for a single attribute."""
        raise NotImplementedError

    def satisfied_by(self, attrs: Iterable[str]) -> bool:
        """Whether holding exactly the attributes ``attrs`` satisfies the policy."""
        if isinstance(attrs, str):
            raise TypeError("satisfied_by: expected an iterable of attributes, not a string")
        held = attrs if isinstance(attrs, (set, frozenset)) else frozenset(attrs)
        return self._satisfied(held)

    def _satisfied(self, held: set[str] | frozenset[str]) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Attr(Policy):
    """A leaf: the holder must have the attribute ``name`` (``name:value``)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not ATTRIBUTE.fullmatch(self.name):
            raise PolicyError(f"policy: invalid attribute {self.name!r} (expected name:value)")

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def depth(self) -> int:
        return 0

    def _satisfied(self, held: set[str] | frozenset[str]) -> bool:
        return self.name in held

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Gate(Policy):
    """A threshold gate: at least ``threshold`` of ``children`` must be satisfied.

    AND is n-of-n and OR is 1-of-n. The constructor normalizes: an AND child of an AND and an OR
    child of an OR are merged into the parent (child order kept), so equal trees compare equal.
    A gate needs at least two children (``1 of (x)`` parses to ``x``).
    """

    threshold: int
    children: tuple[Policy, ...]

    def __post_init__(self) -> None:
        children = tuple(self.children)
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise PolicyError("policy: threshold must be an integer")
        if not all(isinstance(child, Policy) for child in children):
            raise PolicyError("policy: gate children must be policies")
        if len(children) < 2:
            raise PolicyError("policy: a gate needs at least 2 children")
        if not 1 <= threshold <= len(children):
            raise PolicyError(f"policy: threshold {threshold} not in 1..{len(children)}")
        if threshold == len(children):  # AND: absorb AND children
            children = _flatten(children, conjunction=True)
            threshold = len(children)
        elif threshold == 1:  # OR: absorb OR children
            children = _flatten(children, conjunction=False)
        object.__setattr__(self, "children", children)
        object.__setattr__(self, "threshold", threshold)

    @property
    def is_and(self) -> bool:
        return self.threshold == len(self.children)

    @property
    def is_or(self) -> bool:
        return self.threshold == 1

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        return tuple(name for child in self.children for name in child.leaves)

    @cached_property
    def depth(self) -> int:
        return 1 + max(child.depth for child in self.children)

    def _satisfied(self, held: set[str] | frozenset[str]) -> bool:
        need = self.threshold
        for child in self.children:
            if child._satisfied(held):
                need -= 1
                if need == 0:
                    return True
        return False

    def __str__(self) -> str:
        if self.is_or:
            return " or ".join(str(child) for child in self.children)
        if self.is_and:
            return " and ".join(
                f"({child})" if isinstance(child, Gate) and child.is_or else str(child)
                for child in self.children
            )
        return f"{self.threshold} of ({', '.join(str(child) for child in self.children)})"


def _flatten(children: tuple[Policy, ...], *, conjunction: bool) -> tuple[Policy, ...]:
    flat: list[Policy] = []
    for child in children:
        if isinstance(child, Gate) and (child.is_and if conjunction else child.is_or):
            flat.extend(child.children)
        else:
            flat.append(child)
    return tuple(flat)


def and_(*children: Policy) -> Policy:
    """All of ``children`` (a single child is returned as is)."""
    return children[0] if len(children) == 1 else Gate(len(children), children)


def or_(*children: Policy) -> Policy:
    """Any of ``children`` (a single child is returned as is)."""
    return children[0] if len(children) == 1 else Gate(1, children)


def threshold(k: int, *children: Policy) -> Policy:
    """At least ``k`` of ``children`` (``1 of (x)`` is ``x``)."""
    if len(children) == 1 and k == 1:
        return children[0]
    return Gate(k, children)


# --- parser ------------------------------------------------------------------------------------

_END = "end"


@dataclass(frozen=True)
class _Token:
    kind: str  # "attr", "num", "and", "or", "of", "(", ")", ",", "end"
    text: str
    column: int  # 1-based


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "(),":
            tokens.append(_Token(ch, ch, i + 1))
            i += 1
            continue
        match = _WORD.match(text, i)
        if match is None:
            raise PolicyError(f"policy: unexpected character {ch!r} at column {i + 1}")
        word = match.group()
        lower = word.lower()
        if ATTRIBUTE.fullmatch(word):
            tokens.append(_Token("attr", word, i + 1))
        elif lower in _KEYWORDS:
            tokens.append(_Token(lower, word, i + 1))
        elif _NUMBER.fullmatch(word):
            tokens.append(_Token("num", word, i + 1))
        else:
            raise PolicyError(
                f"policy: invalid attribute {word!r} at column {i + 1} (expected name:value)"
            )
        i = match.end()
    tokens.append(_Token(_END, "", n + 1))
    return tokens


def _describe(token: _Token) -> str:
    return "end of policy" if token.kind == _END else repr(token.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.attributes = 0

    @property
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: str, what: str) -> _Token:
        token = self.peek
        if token.kind != kind:
            raise PolicyError(
                f"policy: expected {what} at column {token.column}, found {_describe(token)}"
            )
        return self.take()

    def open_paren(self) -> None:
        token = self.expect("(", "'('")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise PolicyError(
                f"policy: nested deeper than {MAX_DEPTH} parentheses at column {token.column}"
            )

    def policy(self) -> Policy:
        terms = [self.term()]
        while self.peek.kind == "or":
            self.take()
            terms.append(self.term())
        return or_(*terms)

    def term(self) -> Policy:
        factors = [self.factor()]
        while self.peek.kind == "and":
            self.take()
            factors.append(self.factor())
        return and_(*factors)

    def factor(self) -> Policy:
        token = self.peek
        if token.kind == "attr":
            self.take()
            self.attributes += 1
            if self.attributes > MAX_ATTRIBUTES:
                raise PolicyError(
                    f"policy: more than {MAX_ATTRIBUTES} attributes at column {token.column}"
                )
            return Attr(token.text)
        if token.kind == "(":
            self.open_paren()
            inner = self.policy()
            self.expect(")", "')'")
            self.depth -= 1
            return inner
        if token.kind == "num":
            return self.gate()
        raise PolicyError(
            f"policy: expected attribute, threshold or '(' at column {token.column}, "
            f"found {_describe(token)}"
        )

    def gate(self) -> Policy:
        number = self.take()
        self.expect("of", "'of'")
        self.open_paren()
        children = [self.policy()]
        while self.peek.kind == ",":
            self.take()
            children.append(self.policy())
        self.expect(")", "',' or ')'")
        self.depth -= 1
        digits = number.text.lstrip("0") or "0"
        k = int(digits) if len(digits) <= 6 else MAX_ATTRIBUTES + 1
        if not 1 <= k <= len(children):
            raise PolicyError(
                f"policy: threshold {number.text} not in 1..{len(children)} "
                f"at column {number.column}"
            )
        return threshold(k, *children)


def parse_policy(text: str) -> Policy:
    """Parse policy text into its normalized tree; raises :class:`PolicyError` (one line, with
    the column of the problem)."""
    if not isinstance(text, str):
        raise PolicyError("policy: must be a string")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise PolicyError(f"policy: longer than {MAX_TEXT_BYTES} bytes")
    parser = _Parser(text)
    if parser.peek.kind == _END:
        raise PolicyError("policy: empty")
    tree = parser.policy()
    token = parser.peek
    if token.kind != _END:
        raise PolicyError(
            f"policy: expected 'and', 'or' or end of policy at column {token.column}, "
            f"found {_describe(token)}"
        )
    # ", " and " (" can make the canonical form longer than a compact spelling; keep every parsed
    # policy printable to text that parses again (it is what travels in sealed envelopes).
    if len(str(tree).encode("utf-8")) > MAX_TEXT_BYTES:
        raise PolicyError(f"policy: canonical form longer than {MAX_TEXT_BYTES} bytes")
    return tree
