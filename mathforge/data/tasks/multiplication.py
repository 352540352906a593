"""K-by-K multiplication in the implicit-chain-of-thought format (Deng et al. 2023 "Implicit Chain
of Thought Reasoning via Knowledge Distillation"; Deng et al. 2024 "From Explicit CoT to Implicit
CoT: Learning to Internalize CoT Step by Step"), docs/methods/icot.md §f.3 and docs/data.md §3.1.

Numbers are written least-significant digit first, one digit per space-separated token. For
operands a, b (exactly d digits each) and b_j the j-th least significant digit of b:

    P_j = a * b_j * 10^j     reversed, zero-padded to d+1+j digits
    S_j = P_0 + ... + P_j    reversed, zero-padded to d+1+j digits
    cot = P_0 + P_1 ( S_1 ) + ... + P_{d-2} ( S_{d-2} ) + P_{d-1}
    line = "a * b||cot #### p"    p = a*b reversed, zero-padded to 2d digits

Training data is drawn uniformly from [10^(d-1), 10^d - 1]^2 with a seeded RNG, excluding every
operand pair of the shipped valid/test files so that evaluation stays on unseen problems.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from mathforge.data.records import Example
from mathforge.data.tasks import SEP, icot_example

SHIPPED_SIZES = (4, 5, 7, 9)


def digits_reversed(x: int, width: int) -> str:
    """`x` least-significant digit first, zero-padded to `width` digits, space separated."""
    s = str(x).zfill(width)
    if len(s) > width:
        raise ValueError(f"{x} does not fit in {width} digits")
    return " ".join(reversed(s))


def parse_reversed(text: str) -> int:
    """Inverse of `digits_reversed` (`"7 6 9 2"` -> 2967)."""
    return int("".join(reversed(text.split())))


def cot_text(a: int, b: int, k: int) -> str:
    """The chain of thought of §f.3 for a*b with k-digit operands."""
    parts: list[str] = []
    total = 0
    for j in range(k):
        b_j = (b // 10**j) % 10
        partial = a * b_j * 10**j
        total += partial
        width = k + 1 + j
        piece = digits_reversed(partial, width)
        if 0 < j < k - 1:  # no running sum after P_0 (it equals P_0) nor after P_{d-1} (= answer)
            piece += f" ( {digits_reversed(total, width)} )"
        parts.append(piece)
    return " + ".join(parts)


def line_text(a: int, b: int, k: int, *, cot: bool = True) -> str:
    """The full `input||cot #### product` line; `cot=False` gives `input||#### product`."""
    source = f"{digits_reversed(a, k)} * {digits_reversed(b, k)}"
    answer = f"#### {digits_reversed(a * b, 2 * k)}"
    return f"{source}{SEP}{cot_text(a, b, k) + ' ' if cot else ''}{answer}"


def make_example(a: int, b: int, k: int, *, cot: bool = True, meta: dict | None = None) -> Example:
    """One Example: prompt `"a * b||"`, response `"cot #### p"`, answer `"#### p"`."""
    lo, hi = 10 ** (k - 1), 10**k - 1
    if not (lo <= a <= hi and lo <= b <= hi):
        raise ValueError(f"operands {a}, {b} must both have exactly {k} digits")
    source, target = line_text(a, b, k, cot=True).split(SEP)
    info = {"a": a, "b": b, "k": k, **(meta or {})}
    ex = icot_example(source, target, cot=cot, meta=info)
    ex.difficulty = float(k)
    return ex


def parse_operands(line: str) -> tuple[int, int]:
    """The operands (a, b) of a shipped line."""
    source = line.split(SEP, 1)[0]
    left, right = source.split("*")
    return parse_reversed(left), parse_reversed(right)


def shipped_path(k: int, split: str) -> Path:
    from mathforge.data.benchmarks import data_root

    path = data_root() / "multiplication" / f"{k}x{k}" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {k}x{k} {split} file at {path} (shipped sizes: {SHIPPED_SIZES})")
    return path


def shipped_pairs(k: int, splits: Iterable[str] = ("valid", "test")) -> set[tuple[int, int]]:
    """Operand pairs of the shipped evaluation files for size k (empty if none are shipped)."""
    pairs: set[tuple[int, int]] = set()
    if k not in SHIPPED_SIZES:
        return pairs
    for split in splits:
        with shipped_path(k, split).open(encoding="utf-8") as fh:
            pairs.update(parse_operands(line) for line in fh if line.strip())
    return pairs


def load_shipped(k: int, split: str = "test", *, cot: bool = True, limit: int | None = None) -> list[Example]:
    """The shipped valid/test lines of size k as Examples (meta holds a, b and the line id)."""
    out = []
    with shipped_path(k, split).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            a, b = parse_operands(line)
            out.append(make_example(a, b, k, cot=cot, meta={"id": f"mult{k}x{k}-{split}-{lineno}"}))
            if limit is not None and len(out) >= limit:
                break
    return out


def multiplication(k: int = 4, n: int = 1000, seed: int = 0, *, exclude: Iterable[tuple[int, int]] | None = None,
                   cot: bool = True, unique: bool = True) -> list[Example]:
    """`n` training Examples of k-by-k multiplication drawn with `seed`.

    `exclude` defaults to the operand pairs of the shipped valid and test files for size k, so
    the training set is disjoint from them; pass an explicit set to exclude other pairs too (an
    empty one excludes nothing). `unique` also forbids repeats within the set.
    """
    if k < 1:
        raise ValueError(f"multiplication: k must be >= 1, got {k}")
    if n < 0:
        raise ValueError(f"multiplication: n must be >= 0, got {n}")
    banned = shipped_pairs(k) if exclude is None else set(exclude)
    lo, hi = 10 ** (k - 1), 10**k - 1
    space = (hi - lo + 1) ** 2
    available = space - len({p for p in banned if lo <= p[0] <= hi and lo <= p[1] <= hi})
    if n and not available:
        raise ValueError(f"multiplication: every {k}x{k} problem is excluded")
    if unique and n > available:
        raise ValueError(f"multiplication: asked for {n} unique {k}x{k} problems, only {available} exist")
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()
    out: list[Example] = []
    while len(out) < n:
        pair = (rng.randint(lo, hi), rng.randint(lo, hi))
        if pair in banned or (unique and pair in seen):
            continue
        seen.add(pair)
        out.append(make_example(*pair, k, cot=cot, meta={"id": f"mult{k}x{k}-s{seed}-{len(out)}"}))
    return out


def generate(n: int, *, seed: int = 0, k: int = 4, **kwargs) -> list[Example]:
    """Uniform task entry point (`mathforge.data.tasks`): `multiplication(k, n, seed, ...)`."""
    return multiplication(k, n, seed, **kwargs)
