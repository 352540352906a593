"""Grading profiles: named sets of readings, recorded with every verdict, summary and report.

A profile says which equivalences the grader may use. `default` is built to mark no wrong answer
right: percent variants only where a percent is written or asked for, interval brackets that must
match, ordered tuples kept ordered, labels bound to their values. `harness` reproduces the lenient
behaviour of the math-evaluation-harness lineage (ToRA, Qwen2.5-Math, JiuZhang3.0 evaluations):
x100 and /100 percent variants for every number, interval brackets ignored, a bare list matched
against a tuple in any order, `x=` prefixes dropped. `math-verify` hands the pair to Math-Verify's
`verify(parse(gold), parse(pred))` (run in the killable worker). The numeric-tolerance policy
shared by `default` and `harness` is written out in `docs/grading.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("mathforge", "math-verify", "gsm8k_hash", "metamath", "mammoth", "prm800k", "icot")


@dataclass(frozen=True)
class Profile:
    """One named grading contract.

    percent: "always" (x100 and /100 variants of every number), "marked" (only when a side carries
    a percent sign or the question asks for a percentage) or "never".
    strict_intervals: interval ends must agree open/closed (infinite ends are always open).
    order_from_gold: a gold tuple is ordered, a gold set unordered, a bare list takes the gold's type;
    False is the harness reading (a set or bare list on either side makes the comparison unordered).
    bind_labels: `x=3, y=4` keeps its labels (`y=3` is not `x=3`); False drops short `v=` prefixes.
    decimal_precision: a decimal matches an exact value that rounds to it at the decimal's own
    precision (`0.33` vs `1/3`); in `default` this is used only inside matrices and vectors.
    """

    name: str
    description: str
    percent: str = "marked"
    strict_intervals: bool = True
    order_from_gold: bool = True
    bind_labels: bool = True
    decimal_precision: bool = False
    engine: str = "mathforge"

    def __post_init__(self) -> None:
        if self.percent not in ("always", "marked", "never"):
            raise ValueError(f"Profile {self.name!r}: percent must be always/marked/never, "
                             f"got {self.percent!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"Profile {self.name!r}: unknown engine {self.engine!r}")


PROFILES: dict[str, Profile] = {
    "default": Profile(
        "default", "no false positives: percent only when written or asked for, strict interval "
        "ends, ordered tuples, bound labels, relations and chains read structurally"),
    "lenient": Profile(
        "lenient", "default plus rounded decimals accepted at their own precision (0.33 = 1/3, "
        "3.14 = \\pi) for scalars too", decimal_precision=True),
    "harness": Profile(
        "harness", "the inherited math-evaluation-harness behaviour: x100 and /100 percent variants "
        "for every number, interval brackets ignored, bare lists and sets unordered on either side, "
        "short `v=` prefixes dropped", percent="always", strict_intervals=False,
        order_from_gold=False, bind_labels=False),
    "math-verify": Profile(
        "math-verify", "Math-Verify's verify(parse(gold), parse(pred)), for comparison with "
        "projects that grade with it", engine="math-verify"),
    # The seed papers' own protocols (`protocols.py`), to reproduce their published numbers.
    "gsm8k_hash": Profile("gsm8k_hash", "Masked Thought GSM8K runs: `#### x` as a float, within 1e-4",
                          engine="gsm8k_hash"),
    "metamath": Profile("metamath", "MetaMathQA: after `The answer is: `; integer golds rounded, "
                        "else Hendrycks-normalised strings equal", engine="metamath"),
    "mammoth": Profile("mammoth", "MAmmoTH (SDAT): normalised strings, integer golds rounded, else "
                       "4% relative tolerance", engine="mammoth"),
    "prm800k": Profile("prm800k", "the PRM800K grader (TSMC): conservative, element by element, "
                       "SymPy simplify", engine="prm800k"),
    "icot": Profile("icot", "implicit CoT: commas removed, exact string", engine="icot"),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called `name`, with a clear error that lists the known names."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown grading profile {name!r}; known: {sorted(PROFILES)}") from None
