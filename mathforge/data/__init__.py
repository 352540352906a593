"""Data: records, benchmark adapters, user files, synthetic tasks, tokenizers, rendering, packing."""

from mathforge.data.benchmarks import list_benchmarks, load_benchmark
from mathforge.data.files import load_file, load_hf
from mathforge.data.packing import collate_packed, collate_padded, pack
from mathforge.data.records import Example, Problem
from mathforge.data.render import Rendered, render, show_rendered
from mathforge.data.tokenizer import build_tokenizer

__all__ = ["Example", "Problem", "list_benchmarks", "load_benchmark", "load_file", "load_hf",
           "Rendered", "render", "show_rendered", "build_tokenizer", "pack", "collate_packed", "collate_padded"]
