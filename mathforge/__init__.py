"""mathforge: teach language models mathematical reasoning and measure it honestly.

Training (SFT, Masked Thought, difficulty-adaptive SFT, implicit CoT, value models), inference-time
search (sampling, voting, best-of-N, twisted SMC), evaluation (extraction, equivalence grading,
sandboxed code, maj@k / pass@k, reports) and data synthesis on one stack.
"""

__version__ = "0.1.0"
