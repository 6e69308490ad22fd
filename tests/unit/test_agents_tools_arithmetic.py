"""The arithmetic tool: exact answers from natural text, refusals that are one-line ToolErrors,
and property tests: random integer expressions match Fraction arithmetic, garbage never
escapes as anything but ToolError/MissingArguments, and nothing hangs."""

from __future__ import annotations

import contextlib
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.agents.tools import MissingArguments, ToolContext, ToolError, ToolInput
from noosphere.agents.tools.builtin.arithmetic import ArithmeticTool, evaluate, find_expression

TOOL = ArithmeticTool()
CTX = ToolContext(embedder=None)  # type: ignore[arg-type]


def answer(text: str) -> str:
    return TOOL.run(TOOL.parse(ToolInput(text=text)), CTX).text


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("what is 17/3 + 2^10?", "17/3 + 2^10 = 3089/3 ≈ 1029.666667"),
        ("15% of 2,340", "15% of 2,340 = 351"),
        ("what is 12*12?", "12*12 = 144"),
        ("calculate (3/4 + 1/6) * 12", "(3/4 + 1/6) * 12 = 11"),
        ("what is 0.1 + 0.2", "0.1 + 0.2 = 3/10 = 0.3"),
        ("what is 2 to the power of 64?", "2 to the power of 64 = 18446744073709551616"),
        ("12.5% of 80 plus 3", "12.5% of 80 plus 3 = 13"),
        ("17 mod 5 times 2", "17 mod 5 times 2 = 4"),
        ("what's 7 // 2 and why", "7 // 2 = 3"),
        ("-2 ** 2", "-2 ** 2 = -4"),
        ("4^(1/2) + (-8)^(1/3)", "4^(1/2) + (-8)^(1/3) = 0"),
        ("1/3 * 10^-7", "1/3 * 10^-7 = 1/30000000 ≈ 3.333333e-8"),
        ("3 \u00d7 4 \u2212 2", "3 \u00d7 4 \u2212 2 = 10"),  # typographic signs
        ("007 + 1", "007 + 1 = 8"),
        ("1,000,000 / 7", "1,000,000 / 7 = 1000000/7 ≈ 142857.142857"),
    ],
)
def test_answers_are_exact(request_text: str, expected: str) -> None:
    assert answer(request_text) == expected


def test_structured_result() -> None:
    result = TOOL.run(TOOL.parse(ToolInput(text="what is 17/3 + 2^10?")), CTX)
    assert result.media_type == "application/json"
    assert result.data == {
        "expression": "17/3 + 2^10",
        "exact": "3089/3",
        "numerator": "3089",
        "denominator": "3",
        "decimal": "1029.666667",
        "decimal_is_exact": False,
    }


def test_no_expression_asks_for_one() -> None:
    with pytest.raises(MissingArguments) as info:
        TOOL.parse(ToolInput(text="what is the meaning of life?"))
    assert info.value.question == "Which expression should I evaluate?"
    assert info.value.fields == ["expression"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0^-1", "division by zero"),
        ("2^0.5", "irrational"),
        ("(-4)^(1/2)", "no real root"),
        ("9^9^9", "exponent 387420489 is too large"),
        ("2^20000", "result too large"),
        ("(2^9000) * (2^9000)", "result too large"),
        ("1 +", "cannot parse '1 +' as arithmetic"),
        ("((1)", "cannot parse"),
        ("1, 2", "unsupported syntax (Tuple)"),
        ("abs(3)", "unsupported syntax (Call)"),
        ("x + 1", "unsupported syntax (Name)"),
        ("0x10", "unsupported number '0x10'"),
        ("1e5000", "out of range"),
        ("1" * 3000, "expression too long"),
        ("-" * 1500 + "1", "cannot"),
    ],
)
def test_bad_expressions_are_one_line_tool_errors(expression: str, message: str) -> None:
    with pytest.raises(ToolError) as info:
        evaluate(expression)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_huge_exponents_of_trivial_bases_are_fine() -> None:
    assert evaluate("1^(10^20)") == 1
    assert evaluate("(-1)^(10^20 + 1)") == -1


def test_find_expression_trims_to_an_expression() -> None:
    assert find_expression("what's the product of 6 times 7, please?") == "6 times 7"
    assert find_expression("no numbers here") is None


# -- properties ------------------------------------------------------------------------------


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> tuple[str, Fraction | None]:
    """(expression text, exact value or None when it divides by zero)."""
    if depth == 0 or draw(st.booleans()):
        value = draw(st.integers(0, 10_000))
        if draw(st.booleans()) and depth > 0:  # a small power of a literal
            exponent = draw(st.integers(-3, 4))
            op = draw(st.sampled_from(["^", "**"]))
            text = f"{value}{op}{exponent}" if exponent >= 0 else f"{value}{op}({exponent})"
            if value == 0 and exponent < 0:
                return text, None
            return text, Fraction(value) ** exponent
        return str(value), Fraction(value)
    left_text, left = draw(expressions(depth=depth - 1))
    right_text, right = draw(expressions(depth=depth - 1))
    op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%"]))
    text = f"({left_text}) {op} ({right_text})"
    negate = draw(st.booleans())
    if negate:
        text = f"-({text})"
    if left is None or right is None or (op in ("/", "//", "%") and right == 0):
        return text, None
    value = {
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
        "/": lambda: left / right,
        "//": lambda: Fraction(left // right),
        "%": lambda: left % right,
    }[op]()
    return text, -value if negate else value


@settings(max_examples=300, deadline=1000)
@given(expressions())
def test_integer_expressions_match_fraction_arithmetic(case: tuple[str, Fraction | None]) -> None:
    text, expected = case
    if expected is None:
        with pytest.raises(ToolError, match="division by zero"):
            evaluate(text)
    else:
        assert evaluate(text) == expected
        assert TOOL.parse(ToolInput(text=f"what is {text}?")).expression == text


@settings(max_examples=300, deadline=1000)
@given(st.text(max_size=60))
def test_garbage_text_never_escapes(text: str) -> None:
    with contextlib.suppress(ToolError):  # MissingArguments is a ToolError
        TOOL.run(TOOL.parse(ToolInput(text=text)), CTX)


@settings(max_examples=300, deadline=1000)
@given(st.text(alphabet="0123456789+-*/%^()., e_jx", min_size=1, max_size=40))
def test_operator_soup_never_escapes(expression: str) -> None:
    with contextlib.suppress(ToolError):
        evaluate(expression)
