"""Grading: answer extraction, normalisation, equivalence, the code sandbox and metrics.

Imports only the standard library, sympy and math-verify: no torch, so it stays usable alone and
fast. Names are resolved lazily so that importing one piece (say, the sandbox) never pays for
another (sympy).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # extraction and normalisation
    "extract_answer": "extract",
    "strip_string": "normalize",
    # equivalence
    "is_equivalent": "equivalence",
    "grade": "equivalence",
    "Verdict": "equivalence",
    "GRADER_VERSION": "equivalence",
    "self_test": "equivalence",
    # sandbox for model-written code
    "run_code": "sandbox",
    "run_codes": "sandbox",
    "ExecResult": "sandbox",
    # metrics
    "accuracy_ci": "metrics",
    "pass_at_k": "metrics",
    "cluster_answers": "metrics",
    "majority_vote": "metrics",
    "maj_at_k": "metrics",
    "best_of_n": "metrics",
    "breakdown": "metrics",
    "bootstrap_ci": "metrics",
    "weighted_vote": "metrics",
    "AccuracyCI": "metrics",
    "summarize_matrix": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mathforge.grading' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mathforge.grading.{module}"), name)
    globals()[name] = value
    return value
