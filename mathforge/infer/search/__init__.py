"""Inference-time search: TSMC with a learned value model and the baselines it is compared against
(docs/methods/tsmc.md §e.8-§e.9). See `strategies.py` for the one interface."""

from mathforge.infer.search.strategies import (
    STRATEGIES,
    SearchConfig,
    Searcher,
    SearchResult,
    answer_of,
    vote,
)
from mathforge.infer.search.tsmc import TSMCConfig, run_tsmc

__all__ = ["STRATEGIES", "SearchConfig", "SearchResult", "Searcher", "TSMCConfig", "answer_of", "run_tsmc", "vote"]
