"""TEMPORARY placeholder (replaced by the real grader): string/float equality."""

from dataclasses import dataclass

GRADER_VERSION = "0.0-placeholder"


@dataclass
class Verdict:
    correct: bool
    rule: str
    timed_out: bool = False


def grade(*, pred, gold, timeout=3.0, **opts):
    if pred is None:
        return Verdict(False, "none")
    if pred.strip() == gold.strip():
        return Verdict(True, "string")
    try:
        return Verdict(abs(float(pred) - float(gold)) < 1e-6, "numeric")
    except ValueError:
        return Verdict(False, "string")


def is_equivalent(*, pred, gold, timeout=3.0, **opts):
    return grade(pred=pred, gold=gold, timeout=timeout, **opts).correct


def self_test():
    return None
