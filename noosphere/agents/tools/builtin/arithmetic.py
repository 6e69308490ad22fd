"""Execute: the ``arithmetic`` tool. Exact rational arithmetic on expressions found in natural
text ("what is 17/3 + 2^10?", "15% of 2,340"): parsed with ``ast`` (numbers and operators only,
never ``eval``), evaluated with Fractions, with limits on exponents and result size."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from fractions import Fraction

from pydantic import BaseModel, Field

from noosphere.agents.tools.base import (
    MissingArguments,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolResult,
)

MAX_EXPRESSION_CHARS = 2_000
MAX_RESULT_BITS = 13_000  # ~3,900 digits: under Python's 4,300-digit int/str conversion limit
MAX_EXPONENT = 100_000
MAX_ROOT = 64
APPROX_PLACES = 6

# Words and symbols an expression may contain, with their Python operator.
WORD_OPERATORS: dict[str, str] = {
    "to the power of": "**",
    "divided by": "/",
    "multiplied by": "*",
    "times": "*",
    "plus": "+",
    "minus": "-",
    "over": "/",
    "modulo": "%",
    "mod": "%",
    "percent": "%",
    "of": "*",
    "squared": "**2",
    "cubed": "**3",
}
# Typographic operators: multiplication sign, middle dot, division sign, minus sign, en dash.
_SYMBOLS = {"^": "**", "\u00d7": "*", "\u00b7": "*", "\u00f7": "/", "\u2212": "-", "\u2013": "-"}
_TYPOGRAPHIC = "".join(k for k in _SYMBOLS if k != "^")
_NUMBER = r"\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_WORDS = "|".join(re.escape(w) for w in sorted(WORD_OPERATORS, key=len, reverse=True))
_TOKEN = re.compile(
    rf"(?P<num>{_NUMBER})|(?P<word>\b(?:{_WORDS})\b)|(?P<op>\*\*|//|[-+*/%^{_TYPOGRAPHIC}])"
    rf"|(?P<paren>[()])|(?P<space>\s+)|(?P<other>\w+|.)",
    re.IGNORECASE | re.DOTALL,
)
_CAN_START = re.compile(rf"^(?:{_NUMBER}|[(+\-\u2212\u2013])$")
_CAN_END = re.compile(rf"^(?:{_NUMBER}|\)|%|percent|squared|cubed)$", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+|\))\s*%(?!\s*[\d.(])")
_LITERAL = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(?:[eE]([-+]?\d+))?$")
_PCT_ATTR = "_pct_"


class ArithmeticArgs(BaseModel):
    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description="arithmetic expression, e.g. '17/3 + 2^10' or '15% of 2,340'",
    )


def find_expression(text: str) -> str | None:
    """The longest run of numbers, operators and operator words in ``text`` (trimmed so it
    starts and ends like an expression), as written; None when the text has no number."""
    runs: list[list[re.Match[str]]] = [[]]
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "other":
            runs.append([])
        elif match.lastgroup != "space":
            runs[-1].append(match)
    best: list[re.Match[str]] = []
    for run in runs:
        while run and not _CAN_START.match(run[0].group()):
            run = run[1:]
        while run and not _CAN_END.match(run[-1].group()):
            run = run[:-1]
        if any(m.lastgroup == "num" for m in run) and len(run) > len(best):
            best = run
    return text[best[0].start() : best[-1].end()] if best else None


def to_python(expression: str) -> str:
    """The expression in Python syntax: operator words and symbols replaced, thousands
    separators removed, postfix percent turned into an attribute the evaluator understands."""
    out: list[str] = []
    for match in _TOKEN.finditer(expression):
        kind, token = match.lastgroup, match.group()
        if kind == "num":
            token = token.replace(",", "")
        elif kind == "word":
            token = f" {WORD_OPERATORS[token.lower()]} "
        elif kind == "op":
            token = _SYMBOLS.get(token, token)
        out.append(token)
    source = re.sub(r"(?<![\d.])0+(?=\d)", "", "".join(out))  # 007 -> 7 (a Python syntax error)
    return _PERCENT.sub(lambda m: f"({m.group(1)}).{_PCT_ATTR}", source)


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator > MAX_ROOT:
        raise ToolError(f"exponent {exponent} has a root of degree above {MAX_ROOT}")
    if abs(exponent) > MAX_EXPONENT:
        if base in (0, 1):
            return base
        if base == -1 and exponent.denominator == 1:
            return Fraction(1 if exponent.numerator % 2 == 0 else -1)
        raise ToolError(f"exponent {exponent} is too large (limit {MAX_EXPONENT})")
    if base == 0 and exponent < 0:
        raise ToolError("division by zero (0 raised to a negative power)")
    bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if bits * abs(exponent) > MAX_RESULT_BITS:
        raise ToolError(f"result too large (more than {MAX_RESULT_BITS} bits)")
    root = _exact_root(base, exponent.denominator)
    return root**exponent.numerator


def _int_root(value: int, degree: int) -> int | None:
    """The exact integer ``degree``-th root of ``value`` >= 0, or None."""
    low, high = 0, 1 << (value.bit_length() // degree + 1)
    while low < high:
        mid = (low + high) // 2
        if mid**degree < value:
            low = mid + 1
        else:
            high = mid
    return low if low**degree == value else None


def _exact_root(base: Fraction, degree: int) -> Fraction:
    if degree == 1:
        return base
    if base < 0 and degree % 2 == 0:
        raise ToolError(f"{base} has no real root of even degree {degree}")
    sign = -1 if base < 0 else 1
    num, den = _int_root(abs(base.numerator), degree), _int_root(base.denominator, degree)
    if num is None or den is None:
        raise ToolError(f"{base}^(1/{degree}) is irrational; this tool only gives exact results")
    return Fraction(sign * num, den)


def _divide(op: Callable[[Fraction, Fraction], Fraction | int]) -> Callable[..., Fraction]:
    def apply(left: Fraction, right: Fraction) -> Fraction:
        if right == 0:
            raise ToolError("division by zero")
        return Fraction(op(left, right))

    return apply


_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide(operator.truediv),
    ast.FloorDiv: _divide(operator.floordiv),
    ast.Mod: _divide(operator.mod),
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Fraction], Fraction]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _literal(source: str, node: ast.Constant) -> Fraction:
    text = ast.get_source_segment(source, node) or ""
    match = _LITERAL.match(text)
    if not match or isinstance(node.value, complex | bool) or len(text) > 1_000:
        raise ToolError(f"unsupported number {text or node.value!r}")
    if match.group(2) and abs(int(match.group(2))) > 1_000:
        raise ToolError(f"number {text} is out of range")
    return Fraction(text)


def _check_size(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_RESULT_BITS:
        raise ToolError(f"result too large (more than {MAX_RESULT_BITS} bits)")
    return value


MAX_NESTING = 200


def _evaluate(source: str, node: ast.AST, depth: int = 0) -> Fraction:
    # An explicit bound, not RecursionError: libraries may raise the interpreter's recursion
    # limit (web3 sets it to 100,000), and the answer must not depend on what else is loaded.
    if depth > MAX_NESTING:
        raise ToolError(f"cannot evaluate: the expression nests more than {MAX_NESTING} levels")
    deeper = depth + 1
    if isinstance(node, ast.Expression):
        return _evaluate(source, node.body, deeper)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return _literal(source, node)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate(source, node.left, deeper)
        right = _evaluate(source, node.right, deeper)
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(source, node.operand, deeper))
    if isinstance(node, ast.Attribute) and node.attr == _PCT_ATTR:
        return _evaluate(source, node.value, deeper) / 100
    raise ToolError(
        f"unsupported syntax ({type(node).__name__}): only numbers, + - * / // % ^ "
        "and parentheses are allowed"
    )


def evaluate(expression: str) -> Fraction:
    """The exact value of ``expression``; ToolError for anything unparsable or out of bounds."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression too long (limit {MAX_EXPRESSION_CHARS} characters)")
    source = to_python(expression).strip()
    if not source:
        raise ToolError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
        return _evaluate(source, tree)
    except ToolError:
        raise
    except SyntaxError as exc:
        raise ToolError(f"cannot parse {expression.strip()!r} as arithmetic: {exc.msg}") from exc
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise ToolError(f"cannot evaluate {expression.strip()!r}: {type(exc).__name__}") from exc


def _terminating_places(value: Fraction) -> int | None:
    """Decimal places of ``value`` if its decimal expansion ends, else None."""
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    return max(twos, fives) if den == 1 else None


def _fixed(value: Fraction, places: int) -> str:
    scaled = round(abs(value) * 10**places)
    sign = "-" if value < 0 and scaled else ""
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}" if places else f"{sign}{whole}"


def _scientific(value: Fraction, digits: int) -> str:
    exponent = len(str(abs(value.numerator))) - len(str(value.denominator))
    mantissa = abs(value) / Fraction(10) ** exponent
    while mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    while mantissa < 1:
        mantissa, exponent = mantissa * 10, exponent - 1
    text = _fixed(mantissa, digits - 1)
    if text.startswith("10."):  # rounding carried into another digit
        text, exponent = _fixed(mantissa / 10, digits - 1), exponent + 1
    return f"{'-' if value < 0 else ''}{text}e{exponent:+d}"


def describe(value: Fraction) -> tuple[str, str | None, bool]:
    """(exact form, decimal form or None, whether the decimal form is exact)."""
    exact = str(value.numerator) if value.denominator == 1 else f"{value}"
    if value.denominator == 1:
        return exact, None, True
    places = _terminating_places(value)
    if places is not None and places <= 20:
        return exact, _fixed(value, places), True
    if Fraction(1, 1000) <= abs(value) < 10**15:
        return exact, _fixed(value, APPROX_PLACES), False
    return exact, _scientific(value, APPROX_PLACES + 1), False


class ArithmeticTool(Tool[ArithmeticArgs]):
    name = "arithmetic"
    description = (
        "Evaluate an arithmetic expression exactly with fractions: + - * / // % and powers "
        "(^ or **), parentheses, percentages ('15% of 2,340'); answers with the exact fraction "
        "and a decimal approximation."
    )
    examples = [
        "what is 17/3 + 2^10?",
        "15% of 2,340",
        "what is 12*12?",
        "calculate (3/4 + 1/6) * 12",
        "what is 2 to the power of 64?",
        "evaluate 1/3 + 1/6 exactly",
    ]
    args_model = ArithmeticArgs

    def extract(self, request: ToolInput) -> ArithmeticArgs:
        expression = find_expression(request.text)
        if expression is None:
            raise MissingArguments("Which expression should I evaluate?", ["expression"])
        return ArithmeticArgs(expression=expression)

    def run(self, args: ArithmeticArgs, ctx: ToolContext) -> ToolResult:
        value = evaluate(args.expression)
        exact, decimal, decimal_is_exact = describe(value)
        text = f"{args.expression.strip()} = {exact}"
        if decimal is not None:
            text += f" {'=' if decimal_is_exact else '≈'} {decimal}"
        return ToolResult(
            text=text,
            data={
                "expression": args.expression.strip(),
                "exact": exact,
                "numerator": str(value.numerator),
                "denominator": str(value.denominator),
                "decimal": decimal if decimal is not None else exact,
                "decimal_is_exact": decimal_is_exact,
            },
            media_type="application/json",
        )
