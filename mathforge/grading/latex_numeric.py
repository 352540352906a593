"""Fast numeric equivalence: a small LaTeX/plain-math translator evaluated at random points.

Method: polynomial-identity style testing (Schwartz-Zippel; DeMillo-Lipton 1978). Two
expressions that agree at a few random complex points are, with high probability, the same
function; two that disagree at a point are certainly different. A hand-written recursive-
descent parser covers the subset that makes up most answers (numbers, `\\frac`, `\\sqrt`,
`^`, `\\cdot`, implicit multiplication, `\\pi`, elementary functions, single-letter variables)
and turns it into a tree of closures evaluated with `cmath`. Anything outside the subset raises
`Unsupported`, and the caller falls back to SymPy in the worker process. Symbols follow the
conventions of latex2sympy (the parser of the slow path): `e` is Euler's number, `i` is a plain
symbol, letters are case-insensitive, `6\\frac{3}{4}` is a mixed number.

Guards: exponents nested more than twice raise `Unsupported`; exponents larger than 10^4 in
magnitude raise `TooLarge` (the caller treats the pair as unequal without trying SymPy), so
`5^{5^{5^{5^5}}}` or `10^{10^{10}}` never compute.
"""

from __future__ import annotations

import cmath
import math
import random
import re
from collections.abc import Callable
from functools import lru_cache

Fn = Callable[[dict], complex]

MAX_EXPONENT = 10_000
MAX_POW_NESTING = 2
_TOKEN = re.compile(
    r"\s+|(?P<num>\d+\.?\d*(?:e[+-]?\d+(?![a-zA-Z]))?|\.\d+)|(?P<cmd>\\[a-zA-Z]+)|(?P<esc>\\.)"
    r"|(?P<word>[a-zA-Z]+)|(?P<op>\*\*|[-+*/^_()\[\]{}!])|(?P<bad>.)"
)
_SPACING = {"\\,", "\\;", "\\:", "\\ ", "\\!", "\\quad", "\\qquad", "\\displaystyle"}
_FUNCS: dict[str, Callable[[complex], complex]] = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z), "cot": lambda z: 1 / cmath.tan(z),
    "arcsin": cmath.asin, "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh,
    "cosh": cmath.cosh, "tanh": cmath.tanh, "ln": cmath.log, "exp": cmath.exp,
    "log": cmath.log10,                     # latex2sympy reads `\\log x` as base 10
}
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "phi", "varphi",
    "chi", "psi", "omega",
}
_KNOWN = set(_FUNCS) | _GREEK | {"frac", "dfrac", "tfrac", "sqrt", "pi", "cdot", "times", "div",
                                 "binom", "dbinom"}
_KNOWN_BY_LENGTH = sorted(_KNOWN, key=len, reverse=True)
PLAIN_NAMES = frozenset(_FUNCS) | {"sqrt", "pi"}


class Unsupported(ValueError):
    """The expression is outside the translator's subset."""


class TooLarge(Exception):
    """An exponent beyond `MAX_EXPONENT`: the value is not worth computing by any method."""


def _tokenize(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(s):
        kind = m.lastgroup
        text = m.group()
        if kind is None:                      # whitespace
            continue
        if kind == "bad":
            raise Unsupported(f"character {text!r}")
        if kind == "esc":
            if text in _SPACING:
                continue
            raise Unsupported(f"escape {text!r}")
        if kind == "word":
            if text.lower() in PLAIN_NAMES:  # plain-math `sqrt(2)`, `sin(x)`, `pi`
                out.append(("cmd", text.lower()))
            elif len(text) > 2:               # a word, not a product of variables
                raise Unsupported(f"word {text!r}")
            else:
                out.extend(("var", ch.lower()) for ch in text)
        elif kind == "cmd":
            out.extend(_split_command(text))
        else:
            out.append((kind, "^" if text == "**" else text))
    return out


def _split_command(text: str) -> list[tuple[str, str]]:
    """`\\sinx` (spaces removed by strip_string) -> `\\sin`, `x`."""
    if text in _SPACING:
        return []
    name = text[1:]
    if name in _KNOWN:
        return [("cmd", name)]
    for known in _KNOWN_BY_LENGTH:
        if name.startswith(known) and len(name) - len(known) <= 2:
            return [("cmd", known)] + [("var", ch.lower()) for ch in name[len(known):]]
    raise Unsupported(f"command {text!r}")


def _pow(a: complex, b: complex) -> complex:
    if abs(b) > MAX_EXPONENT and abs(a) not in (0.0, 1.0):
        raise TooLarge(f"exponent {b} too large")
    if b.imag == 0 and b.real == int(b.real) and a.imag == 0:
        return complex(float(a.real) ** int(b.real))       # exact for integer powers of reals
    out = complex(a) ** b
    if abs(out) > 1e300:
        raise OverflowError
    return out


def _factorial(z: complex) -> complex:
    if z.imag != 0 or z.real != int(z.real) or not 0 <= z.real <= 170:
        raise Unsupported("factorial of a non-integer")
    return complex(math.factorial(int(z.real)))


def _binom(n: complex, k: complex) -> complex:
    if n.imag or k.imag or n.real != int(n.real) or k.real != int(k.real) or abs(n.real) > 10**4:
        raise Unsupported("binomial of non-integers")
    return complex(math.comb(int(n.real), int(k.real)))


class _Parser:
    """Recursive descent: expr := term (+|- term)*; term := unary (op? unary)*; unary := -unary | power."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.toks = tokens
        self.i = 0
        self.variables: set[str] = set()
        self.pow_depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise Unsupported(f"expected {value!r} at token {self.i}")
        self.i += 1
        return tok

    def parse(self) -> Fn:
        fn = self.expr()
        if self.peek() is not None:
            raise Unsupported(f"trailing token {self.peek()!r}")
        return fn

    def expr(self) -> Fn:
        fn = self.term()
        while (tok := self.peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            self.i += 1
            rhs = self.term()
            fn = (lambda f, g: lambda e: f(e) + g(e))(fn, rhs) if tok[1] == "+" else \
                (lambda f, g: lambda e: f(e) - g(e))(fn, rhs)
        return fn

    def _starts_atom(self, tok: tuple[str, str] | None) -> bool:
        if tok is None:
            return False
        kind, text = tok
        return kind in ("num", "var", "cmd") and text not in ("cdot", "times", "div") or \
            (kind == "op" and text in "([{")

    def term(self) -> Fn:
        fn, is_int = self.unary()
        while True:
            tok = self.peek()
            if tok is not None and tok[1] in ("*", "/", "cdot", "times", "div"):
                self.i += 1
                rhs, _ = self.unary()
                fn = (lambda f, g: lambda e: f(e) / g(e))(fn, rhs) if tok[1] in ("/", "div") else \
                    (lambda f, g: lambda e: f(e) * g(e))(fn, rhs)
            elif self._starts_atom(tok):
                mixed = is_int and tok == ("cmd", "frac") and self._literal_frac_ahead()
                rhs, _ = self.power()
                fn = (lambda f, g: lambda e: f(e) + g(e))(fn, rhs) if mixed else \
                    (lambda f, g: lambda e: f(e) * g(e))(fn, rhs)
            else:
                return fn
            is_int = False

    def _literal_frac_ahead(self) -> bool:
        """`\\frac{3}{4}` with literal integers follows (mixed-number reading of `6\\frac{3}{4}`)."""
        t = self.toks[self.i:self.i + 7]
        return len(t) == 7 and [x[1] for x in t[1:7:3]] == ["{", "{"] and t[2][0] == "num" \
            and t[5][0] == "num" and t[3][1] == "}" and t[6][1] == "}"

    def unary(self) -> tuple[Fn, bool]:
        tok = self.peek()
        if tok == ("op", "-"):
            self.i += 1
            fn, _ = self.unary()
            return (lambda f: lambda e: -f(e))(fn), False
        if tok == ("op", "+"):
            self.i += 1
            return self.unary()
        return self.power()

    def power(self) -> tuple[Fn, bool]:
        fn, is_int = self.postfix()
        if self.peek() == ("op", "^"):
            self.i += 1
            self.pow_depth += 1
            if self.pow_depth > MAX_POW_NESTING:
                raise Unsupported("exponents nested too deeply")
            exp = self._exponent()
            self.pow_depth -= 1
            if self.peek() == ("op", "^"):    # `2^3^2`: associativity differs between readers
                raise Unsupported("chained exponent")
            fn, is_int = (lambda f, g: lambda e: _pow(f(e), g(e)))(fn, exp), False
        return fn, is_int

    def _exponent(self) -> Fn:
        """`^{...}`, `^2`, `^-1` (one atom: `x^2y` is `x^2 * y`)."""
        if self.peek() == ("op", "{"):
            return self.group()
        if self.peek() == ("op", "-"):
            self.i += 1
            fn = self.postfix()[0]
            return lambda e: -fn(e)
        return self.postfix()[0]

    def postfix(self) -> tuple[Fn, bool]:
        fn, is_int = self.atom()
        while self.peek() == ("op", "!"):
            self.i += 1
            fn, is_int = (lambda f: lambda e: _factorial(f(e)))(fn), False
        return fn, is_int

    def group(self) -> Fn:
        """A braced argument `{...}`, or a single token as in `\\frac12` / `x^2`."""
        if self.peek() == ("op", "{"):
            self.i += 1
            fn = self.expr()
            self.take("}")
            return fn
        return self.postfix()[0]

    def atom(self) -> tuple[Fn, bool]:
        tok = self.peek()
        if tok is None:
            raise Unsupported("unexpected end")
        kind, text = tok
        self.i += 1
        if kind == "num":
            value = complex(float(text))
            return (lambda e: value), ("." not in text and "e" not in text)
        if kind == "var":
            return self._variable(text), False
        if kind == "op" and text in "([{":
            fn = self.expr()
            self.take({"(": ")", "[": "]", "{": "}"}[text])
            return fn, False
        if kind == "cmd":
            return self._command(text), False
        raise Unsupported(f"unexpected token {text!r}")

    def _variable(self, name: str) -> Fn:
        if name == "e":
            return lambda e: cmath.e
        if self.peek() == ("op", "_"):       # x_1, a_{n}: the subscript is part of the name
            self.i += 1
            start = self.i
            self.group()
            name += "_" + "".join(t[1] for t in self.toks[start:self.i])
        self.variables.add(name)
        return lambda e: e[name]

    def _command(self, name: str) -> Fn:
        if name == "pi":
            return lambda e: cmath.pi
        if name in _GREEK:
            return self._variable("\\" + name)
        if name in ("frac", "dfrac", "tfrac"):
            num, den = self.group(), self.group()
            return lambda e: num(e) / den(e)
        if name in ("binom", "dbinom"):
            n, k = self.group(), self.group()
            return lambda e: _binom(n(e), k(e))
        if name == "sqrt":
            return self._sqrt()
        func = _FUNCS.get(name)
        if func is None:
            raise Unsupported(f"operator {name!r} in operand position")
        if name == "log" and self.peek() == ("op", "_"):      # \log_2 8: an explicit base
            self.i += 1
            tok = self.peek()
            if tok is not None and tok[0] == "num" and len(tok[1]) > 1 and tok[1].isdigit():
                self.i += 1       # `\log_28` (spaces already removed): base 2, argument 8
                b, a = float(tok[1][0]), complex(float(tok[1][1:]))
                return lambda e: cmath.log(a) / math.log(b)
            base = self.group()
            arg, _ = self.atom() if self.peek() is not None and self.peek()[1] in "({[" else self.power()
            return lambda e: cmath.log(arg(e)) / cmath.log(base(e))
        power: Fn | None = None
        if self.peek() == ("op", "^"):        # \sin^2 x
            self.i += 1
            power = self.group()
        if self.peek() is not None and self.peek()[1] in "({[":
            arg, _ = self.atom()
        else:
            arg, _ = self.power()
            if self._starts_atom(self.peek()):   # `\sin 2x`: ambiguous, leave it to SymPy
                raise Unsupported("function argument without parentheses")
        if power is None:
            return lambda e: func(arg(e))
        return lambda e: _pow(func(arg(e)), power(e))

    def _sqrt(self) -> Fn:
        index: Fn | None = None
        if self.peek() == ("op", "["):
            self.i += 1
            index = self.expr()
            self.take("]")
        arg = self.group()
        if index is None:
            return lambda e: cmath.sqrt(arg(e))
        return lambda e: _pow(arg(e), 1 / index(e))


class Compiled:
    """A translated expression: `fn(env) -> complex` and the names of its free variables."""

    __slots__ = ("fn", "variables")

    def __init__(self, fn: Fn, variables: frozenset[str]):
        self.fn = fn
        self.variables = variables


def compile_expr(s: str) -> Compiled:
    """Translate `s` (normalised LaTeX or plain math); raises `Unsupported` outside the subset."""
    try:
        parser = _Parser(_tokenize(s))
        if not parser.toks:
            raise Unsupported("empty expression")
        fn = parser.parse()
    except RecursionError as exc:
        raise Unsupported("nested too deeply") from exc
    return Compiled(fn, frozenset(parser.variables))


_POINTS_RNG = random.Random(20240611)
_POINTS = [[complex(_POINTS_RNG.uniform(0.3, 1.7), _POINTS_RNG.uniform(0.1, 0.9)) for _ in range(64)]
           for _ in range(3)]


def _evaluate(c: Compiled, env: dict) -> complex | None:
    try:
        value = complex(c.fn(env))
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None
    if cmath.isnan(value) or cmath.isinf(value):
        return None
    return value


def _close(a: complex, b: complex, rel_tol: float, abs_tol: float) -> bool:
    return abs(a - b) <= max(rel_tol * max(abs(a), abs(b)), abs_tol)


def numeric_equal(a: Compiled, b: Compiled, *, rel_tol: float = 1e-4,
                  var_rel_tol: float = 1e-6) -> bool | None:
    """True/False when decided; None when an evaluation failed (domain error) and SymPy should decide.

    Constants compare with `rel_tol` (the harness's 1e-4); functions of variables at 3 random
    complex points with the tighter `var_rel_tol`, since 1e-4 would accept `1.0001x` for `x`.
    """
    names = sorted(a.variables | b.variables)
    if len(names) > 64:
        return None
    n_points = 3 if names else 1
    tol = var_rel_tol if names else rel_tol
    for p in range(n_points):
        env = dict(zip(names, _POINTS[p], strict=False))  # 64 coordinates, fewer names
        va, vb = _evaluate(a, env), _evaluate(b, env)
        if va is None or vb is None:
            return None
        if not _close(va, vb, tol, 1e-13):       # the floor only absorbs float round-off
            return False
    return True


def equal_at(a: Compiled, b: Compiled, env: dict, tol: float = 1e-6) -> bool | None:
    """Whether a and b agree at one given point; None when either cannot be evaluated there."""
    va, vb = _evaluate(a, env), _evaluate(b, env)
    if va is None or vb is None:
        return None
    return _close(va, vb, tol, 1e-13)


def mirrored_point(names: list[str]) -> dict:
    """A point with negative real parts: branch cuts (`\\sqrt{x^2}` vs `x`) show up there."""
    return {n: -z for n, z in zip(names, _POINTS[0], strict=False)}


def try_compile(s: str) -> Compiled | None:
    """`compile_expr` memoised for short inputs (bounded memory), None outside the subset."""
    if len(s) > 1000:
        return _try_compile_uncached(s)
    return _try_compile_cached(s)


def _try_compile_uncached(s: str) -> Compiled | None:
    try:
        return compile_expr(s)
    except Unsupported:
        return None


_try_compile_cached = lru_cache(maxsize=65536)(_try_compile_uncached)
try_compile.cache_clear = _try_compile_cached.cache_clear     # type: ignore[attr-defined]
