"""Data: records, benchmark adapters, user files, synthetic tasks, tokenizers, rendering, packing."""

from mathforge.data.benchmarks import list_benchmarks, load_benchmark
from mathforge.data.files import load_file, load_hf
from mathforge.data.records import Example, Problem

__all__ = ["Example", "Problem", "list_benchmarks", "load_benchmark", "load_file", "load_hf"]
