"""Equivalence grading: `grade(pred=, gold=, profile=, question=)`, one versioned grader.

The lineage is `math_equal` of the math-evaluation-harness (Gou et al., ToRA, 2023; used by the
Qwen2.5-Math and JiuZhang3.0 evaluations), made strict by default. Under a profile
(`profiles.py`) the rules run cheapest first and the first that decides wins:
- `default` (and `lenient`): multiple-choice letters; then `structured.py` reads a response down to
  its final answer and compares structure (labels, chains, equations, sets of reals, `\\pm`);
  then the leaf rules below on `strip_string`-ed strings;
- `harness`: the inherited order, exact string, normalisation and the leaf rules;
- `math-verify`: Math-Verify's own verdict, in the worker.
Leaf rules: plain numbers (integers exact, others to 1e-4 relative; percent variants as the profile
allows); matrices, tuples, sets and unions element by element (unordered ones by a maximum
bipartite matching); relations; the fast numeric-identity layer (`latex_numeric.py`: random-point
evaluation of a translated expression); and only then SymPy (`symbolic.py`) in a killable worker
process (`worker.py`) under the call's deadline. A comparison that runs out of time returns a
verdict with `timed_out` set, which callers count apart from wrong (`jobs.py`). Inputs over
20,000 characters, brackets nested over 50 deep, or exponents nested more than twice never reach
the symbolic rules. Short verdicts are memoised on (pred, gold, profile, options). The numeric
tolerance policy is written out in `docs/grading.md`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from mathforge.grading import forms, structured
from mathforge.grading import latex_numeric as ln
from mathforge.grading import structure as st
from mathforge.grading.normalize import strip_string
from mathforge.grading.profiles import Profile, get_profile

GRADER_VERSION = "mathforge-2.0"
MAX_SYMBOLIC_LEN = 1000
MAX_EXPONENT_NESTING = 2
MAX_NESTING = 50                  # brackets inside brackets: deeper is not an answer
_OPTIONS = {"skip_unit", "unordered", "abs_tol", "unit", "include_percentage", "strict_intervals",
            "choices"}
_RELATIONS = ("\\le", "\\ge", "\\ne", "<", ">")
_FLIP = {"\\le": "\\ge", "\\ge": "\\le", "<": ">", ">": "<", "\\ne": "\\ne"}
_STRING_ONLY = re.compile(r"\d_\{?\w|:")     # `25_{6}` (bases), `3:30`, `5:6`: no algebra
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_LOOSE_DROP = re.compile(r"[\s{}()]|\\text|\\mathrm|(?<!\d)\.|\.(?!\d)")
_CACHE_SIZE = 1 << 16
_CACHE_MAX_CHARS = 1000           # only short answers are memoised: 65,536 x 1 kB at most


@dataclass(frozen=True)
class Verdict:
    """The decision, the rule that made it, and whether the deadline was hit."""

    correct: bool
    rule: str
    timed_out: bool = False


_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


class _Grader:
    """One grading call: options and a deadline shared by all recursive element comparisons."""

    def __init__(self, opts: dict, timeout: float, profile: Profile, question: str | None = None):
        self.profile = profile
        self.skip_unit = bool(opts.get("skip_unit", False))
        self.unordered = bool(opts.get("unordered", False))
        self.abs_tol = opts.get("abs_tol")
        self.unit = opts.get("unit")
        self.percent = bool(opts.get("include_percentage", profile.percent == "always"))
        self.strict_intervals = bool(opts.get("strict_intervals", profile.strict_intervals))
        self.order_from_gold = profile.order_from_gold
        self.bind_labels = profile.bind_labels
        self.asks_percent = forms.asks_percent(question)
        self.marks = (False, False)   # (pred, gold) carry a percent sign: set per call
        self.depth = 0                # `unordered` applies to the top-level list only
        self.in_matrix = False        # matrix cells: decimals match at their own precision
        self.deadline = time.monotonic() + timeout

    # -- entry -------------------------------------------------------------------------------
    def top(self, pred: str, gold: str) -> Verdict:
        p0, g0 = pred.strip(), gold.strip()
        if self.profile.engine == "math-verify":
            return self._math_verify(p0, g0)
        if self.profile.engine == "prm800k":
            return self._prm800k(p0, g0)
        if self.profile.engine != "mathforge":
            from mathforge.grading.protocols import ENGINES

            return Verdict(ENGINES[self.profile.engine](p0, g0), self.profile.engine)
        if self.profile.name == "harness":
            return self._harness_top(p0, g0)
        if len(p0) > 20 * MAX_SYMBOLIC_LEN or len(g0) > 20 * MAX_SYMBOLIC_LEN:
            return Verdict(False, "none")
        v = self._choice(p0, g0)
        if v is not None:
            return v
        self.marks = (forms.has_percent(p0), forms.has_percent(g0))
        p0 = self._drop_unit(p0)
        return structured.top(self, p0, g0)

    def _choice(self, p0: str, g0: str) -> Verdict | None:
        """Multiple choice: a one-letter gold against a letter, a labelled option (`(D) Alina`) or
        a response whose choice the extractor finds; a labelled-option gold against a letter."""
        gold_letter = st.choice_letter(g0) if len(g0) <= 60 else None
        if gold_letter is None:
            return None
        pred_letter = st.choice_letter(p0) if len(p0) <= 200 else None
        if len(g0.strip("()$ ")) == 1:
            if pred_letter is None and forms.is_response(p0):
                from mathforge.grading.extract import extract_answer

                pred_letter = extract_answer(p0, style="choice")
            return None if pred_letter is None else Verdict(pred_letter == gold_letter, "string")
        if len(p0.strip("()$ ")) == 1 and pred_letter is not None and _OPTION.fullmatch(g0.strip()):
            return Verdict(pred_letter == gold_letter, "string")     # gold `(D) Alina`, pred `D`
        return None

    def _prm800k(self, pred: str, gold: str) -> Verdict:
        from mathforge.grading.protocols import prm800k_elements

        pairs = prm800k_elements(pred, gold)
        if pairs is None:
            return Verdict(False, "prm800k")
        for a, b in pairs:
            v = self._in_worker(a, b, "simplify_equal", "prm800k")
            if not v.correct:
                return v
        return Verdict(True, "prm800k")

    def _math_verify(self, pred: str, gold: str) -> Verdict:
        return self._in_worker(pred, gold, "math_verify_equal", "math-verify")

    def _harness_top(self, p0: str, g0: str) -> Verdict:
        if p0.lower() == g0.lower():
            return Verdict(True, "string")
        gold_letter = st.choice_letter(g0) if len(g0) <= 12 else None
        if gold_letter is not None and len(g0.strip("()$ ")) == 1:
            letter = st.choice_letter(p0) if len(p0) <= 200 else None
            if letter is not None:
                return Verdict(letter == gold_letter, "string")
        if len(p0) > 20 * MAX_SYMBOLIC_LEN or len(g0) > 20 * MAX_SYMBOLIC_LEN:
            return Verdict(False, "none")         # not an answer: do not spend time normalising
        if p0.count("=") == 1 and g0.count("=") == 1:
            # Normalise each side alone: strip_string rule 26 would turn `0=x^2-1` into `x^2-1`.
            p_sides = [strip_string(x, skip_unit=self.skip_unit) for x in p0.split("=")]
            g_sides = [strip_string(x, skip_unit=self.skip_unit) for x in g0.split("=")]
            v = self._relations("=".join(p_sides), "=".join(g_sides))
            if v is not None and (v.correct or v.timed_out):
                return v
        p = strip_string(self._drop_unit(p0), skip_unit=self.skip_unit)
        g = strip_string(g0, skip_unit=self.skip_unit)
        return self.equal(p, g)

    def _drop_unit(self, p: str) -> str:
        if not self.unit:
            return p
        unit = str(self.unit)
        for u in dict.fromkeys((unit, unit.strip("$ "), strip_string(unit, skip_unit=True))):
            if u and p.endswith(u) and len(p) > len(u):
                return p[: -len(u)].strip()
        return p

    # -- rules on normalised strings (recursive for elements) --------------------------------
    def equal(self, p: str, g: str) -> Verdict:
        if p.lower() == g.lower():
            return Verdict(True, "string")
        np_, ng = st.parse_number(p), st.parse_number(g)
        if np_ is not None and ng is not None:
            return Verdict(self._numbers(np_, ng), "numeric")
        if not p:
            return Verdict(False, "none")
        for rule in (self._matrices, self._containers, self._unions, self._relations):
            verdict = rule(p, g)
            if verdict is not None:
                return verdict
        return self._expressions(p, g)

    def _numbers(self, p: int | float, g: int | float) -> bool:
        """Percent variants as the profile allows: always, or only where marked or asked for."""
        if self.percent:
            return st.numbers_close(p, g, include_percentage=True, abs_tol=self.abs_tol)
        if st.numbers_close(p, g, include_percentage=False, abs_tol=self.abs_tol):
            return True
        if self.asks_percent:      # 40 (%) vs 0.4: a fraction and its percent, not 40 vs 4000
            small, large = sorted((p, g), key=abs)
            return abs(small) <= 10 and st.numbers_close(small * 100, large, include_percentage=False)
        pm, gm = self.marks
        if pm and gm:
            return False                 # 50% vs 0.5%: both are percents, compare as written
        ps = (p, p / 100) if pm else (p,)
        gs = (g, g / 100) if gm else (g,)
        return any(st.numbers_close(a, b, include_percentage=False, abs_tol=self.abs_tol)
                   for a in ps for b in gs)

    def _special_readings(self, p: str, g: str, cp: ln.Compiled, cg: ln.Compiled) -> bool:
        """Readings the function test misses: `i` as the imaginary unit when it is the only
        letter on both sides; a decimal at its own precision where the profile (or a matrix
        cell) allows it."""
        if cp.variables | cg.variables == {"i"}:
            a, b = ln._evaluate(cp, {"i": 1j}), ln._evaluate(cg, {"i": 1j})
            return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))
        if cp.variables or cg.variables:
            return False
        if (self.profile.decimal_precision or self.in_matrix) and (_rounds_to(p, cg) or _rounds_to(g, cp)):
            return True
        if self.percent or self.asks_percent or any(self.marks):   # `25\%` vs `\frac{1}{4}`
            a, b = ln._evaluate(cp, {}), ln._evaluate(cg, {})
            if a is not None and b is not None and abs(a.imag) < 1e-12 and abs(b.imag) < 1e-12:
                return self._numbers(a.real, b.real)
        return False

    def _matrices(self, p: str, g: str) -> Verdict | None:
        mp, mg = st.matrix_cells(p), st.matrix_cells(g)
        if mp is None and mg is None:
            return None
        if mp is not None and mg is None:            # pmatrix vector vs `(a,b)` gold (rule 3)
            cont = st.as_container(g)
            mg = [[x] for x in cont.items] if cont is not None and cont.kind != "list" else None
        elif mg is not None and mp is None:
            cont = st.as_container(p)
            mp = [[x] for x in cont.items] if cont is not None and cont.kind != "list" else None
        if mp is None or mg is None:
            if self.profile.name != "harness" and "\\begin{pmatrix}" in p + g and \
                    len(p) + len(g) <= MAX_SYMBOLIC_LEN:
                return self._symbolic(p, g)      # a matrix expression (`A + B`, `AB`): SymPy
            return Verdict(False, "matrix")
        if not self.profile.name == "harness" and _vector_shape(mp) and _vector_shape(mg):
            mp, mg = [[c] for r in mp for c in r], [[c] for r in mg for c in r]   # row ~ column
        if [len(r) for r in mp] != [len(r) for r in mg]:
            return Verdict(False, "matrix")
        self.in_matrix = True
        try:
            return self._all_equal([c for r in mp for c in r], [c for r in mg for c in r], "matrix")
        finally:
            self.in_matrix = False

    def _containers(self, p: str, g: str) -> Verdict | None:
        cp, cg = st.as_container(p), st.as_container(g)
        if cp is None and cg is None:
            return self._unwrap(p, g)
        if cp is None or cg is None:
            return Verdict(False, "tuple")
        if len(cp.items) != len(cg.items) and not (self.order_from_gold and cg.kind != "tuple"):
            return Verdict(False, "tuple")
        kinds = (cp.kind, cg.kind)
        if self.order_from_gold:     # the gold decides: tuple ordered, set unordered, list takes it
            if cp.kind != "list" and cp.kind != cg.kind and not (cg.kind == "list" and cp.kind == "set"):
                return Verdict(False, "tuple")
            unordered = (self.unordered and self.depth == 0) or cg.kind in ("set", "list")
        else:
            unordered = (self.unordered and self.depth == 0) or "set" in kinds or "list" in kinds
        if self.strict_intervals and cp.kind == cg.kind == "tuple" and cp.brackets != cg.brackets:
            return Verdict(False, "tuple")
        if unordered:
            return self._multiset_equal(cp.items, cg.items)
        return self._all_equal(cp.items, cg.items, "tuple")

    def _unwrap(self, p: str, g: str) -> Verdict | None:
        """Single elements in brackets: `(5)` vs `5` (rule 4), unless the brackets are needed."""
        bp, bg = st.outer_brackets(p), st.outer_brackets(g)
        if self.depth > MAX_NESTING:
            return Verdict(False, "none")
        if bp is not None and bg is None and ln.try_compile(p) is None:
            return self._element(p[1:-1].strip(), g)
        if bg is not None and bp is None and ln.try_compile(g) is None:
            return self._element(p, g[1:-1].strip())
        return None

    def _unions(self, p: str, g: str) -> Verdict | None:
        if "\\cup" not in p and "\\cup" not in g:
            return None
        ip, ig = _split_word(p, "\\cup"), _split_word(g, "\\cup")
        if len(ip) != len(ig):
            return Verdict(False, "tuple")
        return self._multiset_equal(ip, ig)

    def _relations(self, p: str, g: str) -> Verdict | None:
        rp, rg = _relation(p), _relation(g)
        if rp is None and rg is None:
            return None
        if rp is None or rg is None:              # `v = expr` against a bare expression
            lhs, op, rhs = rp or rg
            if op == "=" and len(lhs) <= 2:
                v = self.equal(rhs, g) if rp is not None else self.equal(p, rhs)
                return Verdict(v.correct, "equation", v.timed_out)
            return Verdict(False, "equation")
        (lp, op_p, rhs_p), (lg, op_g, rhs_g) = rp, rg
        if op_p == "=" and op_g == "=":
            diff_p, diff_g = f"{lp}-({rhs_p})", f"{lg}-({rhs_g})"
            v = self._expressions(diff_p, diff_g)
            if v.correct or v.timed_out:
                return Verdict(v.correct, "equation", v.timed_out)
            v = self._expressions(diff_p, f"-({diff_g})")
            return Verdict(v.correct, "equation", v.timed_out)
        if op_p == op_g:
            v = self._all_equal([lp, rhs_p], [lg, rhs_g], "equation")
            if v.correct or v.timed_out or op_p not in ("=", "\\ne"):
                return v
        if op_p == _FLIP.get(op_g):
            return self._all_equal([lp, rhs_p], [rhs_g, lg], "equation")
        return Verdict(False, "equation")

    def _expressions(self, p: str, g: str) -> Verdict:
        if _STRING_ONLY.search(p) or _STRING_ONLY.search(g):
            return Verdict(_loose(p) == _loose(g), "string")
        cp, cg = ln.try_compile(p), ln.try_compile(g)
        if cp is not None and cg is not None:
            try:
                same = ln.numeric_equal(cp, cg)
            except ln.TooLarge:
                return Verdict(False, "none")
            if same is False and self.profile.name != "harness":
                same = self._special_readings(p, g, cp, cg)
            elif same and (cp.variables or cg.variables) and _BRANCHED.search(p + g):
                names = sorted(cp.variables | cg.variables)
                if not ln.equal_at(cp, cg, ln.mirrored_point(names)):
                    same = None            # equal only on a half-plane: let SymPy decide
            if same is not None:
                return Verdict(same, "symbolic" if (cp.variables or cg.variables) else "numeric")
        if _loose(p) == _loose(g):
            return Verdict(True, "string")
        if _is_prose(p) or _is_prose(g):         # "They are equal", "Yes": strings only
            return Verdict(False, "string")
        if p.count("{") != p.count("}") or g.count("{") != g.count("}"):
            return Verdict(False, "none")        # malformed LaTeX such as `\frac{`
        if len(p) > MAX_SYMBOLIC_LEN or len(g) > MAX_SYMBOLIC_LEN or \
                max(st.exponent_nesting(p), st.exponent_nesting(g)) > MAX_EXPONENT_NESTING:
            return Verdict(False, "none")
        return self._symbolic(p, g)

    def _symbolic(self, p: str, g: str) -> Verdict:
        return self._in_worker(p, g, "symbolic_equal", "symbolic")

    def _in_worker(self, a: str, b: str, op: str, rule: str) -> Verdict:
        """`op(a, b)` in a SymPy worker under this call's deadline. A worker's start-up is not
        this comparison's time (the deadline is shared by a tuple's elements), so it moves the
        deadline; running out of time is a `timed_out` verdict; no process at all proves nothing."""
        from mathforge.grading import worker

        try:
            self.deadline += worker.get_pool().ensure_started()
        except worker.WorkerTimeout:
            return Verdict(False, rule, timed_out=True)
        except OSError:
            return Verdict(False, "none")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return Verdict(False, rule, timed_out=True)
        try:
            return Verdict(worker.symbolic_equal(a, b, timeout=remaining, op=op), rule)
        except worker.WorkerTimeout:
            return Verdict(False, rule, timed_out=True)
        except OSError:                          # no process could be started: not provable
            return Verdict(False, "none")

    # -- element helpers ---------------------------------------------------------------------
    def _element(self, a: str, b: str) -> Verdict:
        self.depth += 1
        try:
            return self.equal(a, b)
        finally:
            self.depth -= 1

    def _all_equal(self, ps: list[str], gs: list[str], rule: str) -> Verdict:
        for a, b in zip(ps, gs, strict=True):
            v = self._element(a, b)
            if not v.correct:
                return Verdict(False, rule, v.timed_out)
        return Verdict(True, rule)

    def _multiset_equal(self, ps: list[str], gs: list[str]) -> Verdict:
        """Each gold element matched to a distinct prediction element: a maximum bipartite
        matching (Kuhn's augmenting paths), so a tolerance that is not transitive cannot make a
        first-come pairing miss a valid one. Pairs are compared lazily, each at most once. In the
        default profile a solution listed twice counts once, as in a set."""
        if self.order_from_gold and any(st.outer_brackets(x) for x in ps):
            ps, gs = list(dict.fromkeys(ps)), list(dict.fromkeys(gs))   # a solution listed twice
            if len(ps) != len(gs):
                return Verdict(False, "tuple")
        if len(gs) > len(ps) or (self.order_from_gold and len(ps) != len(gs)):
            return Verdict(False, "tuple")               # missing or extra elements
        known: dict[tuple[int, int], bool] = {}
        timed_out = False

        def same(i: int, j: int) -> bool:
            nonlocal timed_out
            if (i, j) not in known:
                v = self._element(ps[i], gs[j])
                timed_out |= v.timed_out
                known[(i, j)] = v.correct
            return known[(i, j)]

        owner: dict[int, int] = {}                       # prediction index -> gold index

        def augment(j: int, seen: set[int]) -> bool:
            for i in range(len(ps)):
                if i not in seen and same(i, j):
                    seen.add(i)
                    if i not in owner or augment(owner[i], seen):
                        owner[i] = j
                        return True
            return False

        for j in range(len(gs)):
            if not augment(j, set()):
                return Verdict(False, "tuple", timed_out)
        return Verdict(True, "tuple")


_OPTION = re.compile(r"\(?[A-E][).:]?\s+[A-Z][a-z]+.*")
_BRANCHED = re.compile(r"\\sqrt|\^\{?[^{}]*[./]|\|")
_DECIMAL_LITERAL = re.compile(r"-?\d*\.(\d+)")


def _vector_shape(m: list[list[str]]) -> bool:
    return len(m) == 1 or all(len(r) == 1 for r in m)


def _rounds_to(decimal: str, exact: ln.Compiled) -> bool:
    """`0.33` vs 1/3: the exact value rounds to the decimal at the decimal's own places (>= 2)."""
    m = _DECIMAL_LITERAL.fullmatch(decimal)
    if m is None or len(m.group(1)) < 2:
        return False
    value = ln._evaluate(exact, {})
    if value is None or abs(value.imag) > 1e-12:
        return False
    return abs(float(decimal) - value.real) <= 0.5 * 10 ** -len(m.group(1)) * (1 + 1e-9)


def _split_word(s: str, word: str) -> list[str]:
    """Split at `word` outside brackets (for `\\cup`)."""
    marker = "\x00"
    return [x.strip() for x in st.split_top_level(s.replace(word, marker), marker)]


def _relation(s: str) -> tuple[str, str, str] | None:
    """(lhs, op, rhs) for exactly one top-level relation, else None."""
    found = None
    for op in ("=",) + _RELATIONS:
        parts = st.split_top_level(s, op) if len(op) == 1 else _split_word(s, op)
        if len(parts) == 2:
            if found is not None:
                return None
            found = (parts[0].strip(), op, parts[1].strip())
        elif len(parts) > 2:
            return None
    return found


def _is_prose(s: str) -> bool:
    """A run of 3+ letters that is not a command or a plain function name (`sqrt`, `sin`)."""
    return any(m.group().lower() not in ln.PLAIN_NAMES for m in _WORD.finditer(s))


def _loose(s: str) -> str:
    """Rule 4 surface form: no braces, parentheses, spaces, `\\text`, or non-decimal dots."""
    return _LOOSE_DROP.sub("", s).lower()


def grade(*, pred: str | None, gold: str, timeout: float = 3.0, profile: str | Profile = "default",
          question: str | None = None, **opts) -> Verdict:
    """Decide whether `pred` is equivalent to `gold` under `profile`, with the rule that decided.

    `question` (the problem text) is used only to see whether a percentage is asked for.
    """
    unknown = set(opts) - _OPTIONS
    if unknown:
        raise TypeError(f"grade(): unknown option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}")
    prof = get_profile(profile)
    if pred is None:
        return Verdict(False, "none")
    pred, gold = str(pred), str(gold)
    key = (pred, gold, prof.name, forms.asks_percent(question),
           tuple(sorted((k, repr(v)) for k, v in opts.items() if k != "choices")))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    try:
        verdict = _Grader(opts, timeout, prof, question).top(pred, gold)
    except RecursionError:                   # brackets nested thousands deep: not an answer
        verdict = Verdict(False, "none")
    if not verdict.timed_out and len(pred) + len(gold) <= _CACHE_MAX_CHARS:
        # a timeout may be machine load: not remembered; nor are long texts (bounded memory)
        with _cache_lock:
            _cache[key] = verdict
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return verdict


def clear_caches() -> None:
    """Forget memoised verdicts and parses (for benchmarks that must not time cache hits)."""
    with _cache_lock:
        _cache.clear()
    strip_string.cache_clear()
    ln.try_compile.cache_clear()


def is_equivalent(*, pred: str | None, gold: str, timeout: float = 3.0, profile: str | Profile = "default",
                  question: str | None = None, **opts) -> bool:
    """`grade(...).correct`."""
    return grade(pred=pred, gold=gold, timeout=timeout, profile=profile, question=question, **opts).correct


SELF_TEST = (
    ("\\frac{1}{2}", "0.5", True),
    ("\\sqrt{4}", "2", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("50\\%", "0.5", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    ("\\frac{1}{2}", "2", False),
    ("(1,2)", "[1,2]", True),
)


def self_test(timeout: float = 60.0) -> None:
    """Check the docs/methods/evaluation.md §g.5 start-up table, and that the SymPy/LaTeX parser path itself works.

    The fast layer decides most table rows, so the symbolic pairs are also sent straight to the
    worker: a broken latex2sympy runtime would otherwise go unnoticed.
    """
    from mathforge.grading import worker

    failures = []
    for pred, gold, expected in SELF_TEST:
        v = grade(pred=pred, gold=gold, timeout=timeout, profile="harness")
        if v.correct != expected:
            failures.append(f"grade({pred!r}, {gold!r}) = {v}, expected {expected}")
    for a, b, expected in (("x^2+2x+1", "(x+1)^2", True), ("\\sqrt{4}", "2", True),
                           ("\\frac{1}{2}", "2", False)):
        got = worker.symbolic_equal(a, b, timeout=timeout)
        if got != expected:
            failures.append(f"symbolic_equal({a!r}, {b!r}) = {got}, expected {expected}")
    if failures:
        raise RuntimeError("grader self-test failed (LaTeX parser or rules broken):\n"
                           + "\n".join(failures))
