"""Data: records, benchmark adapters, user files, synthetic tasks, tokenizers, rendering, packing."""

from mathforge.data.records import Example, Problem

__all__ = ["Example", "Problem"]
