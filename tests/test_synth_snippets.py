"""S1 snippets and S2 prompts (docs/methods/synthesis.md §d.3, §d.4)."""

from __future__ import annotations

import json

import pytest

from mathforge.synth.prompts import (
    PromptConfig,
    build_prompts,
    build_tool_prompts,
    cot_prompt,
    cut_seed,
    strip_affixes,
)
from mathforge.synth.snippets import LEVELS, SnippetConfig, make_snippets, split_markdown, split_tex


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_textbook_sections_drop_the_preamble_and_are_fenced(tmp_path):
    doc = "Preface, dropped.\n## One\nfirst section\n### sub stays\n## Two\n" + "x" * 2000
    (tmp_path / "book.md").write_text(doc, encoding="utf-8")
    snips, counts = make_snippets(tmp_path / "book.md")
    assert [s["text"] for s in snips][0] == "```\n## One\nfirst section\n### sub stays\n```"
    assert snips[1]["text"] == "```\n" + ("## Two\n" + "x" * 2000)[:1000] + "\n```"
    assert all(s["source"] == "textbook" and len(s["levels"]) == 1 for s in snips)
    assert counts["units"] == 2 and counts["snippets"] == 2
    assert split_markdown("no heading at all") == []


def test_stack_wiki_web_and_arxiv_rules(tmp_path):
    _jsonl(tmp_path / "stack.jsonl", [{"question": "  Q " + "q" * 1200, "answer": "A" * 1500}])
    snips, _ = make_snippets(tmp_path / "stack.jsonl")
    assert snips[0]["text"] == ("Q " + "q" * 1200)[:1000] + "\n\n" + "A" * 1000
    _jsonl(tmp_path / "wiki.jsonl", [{"text": "  A group is a set. " * 100}])
    wiki, _ = make_snippets(tmp_path / "wiki.jsonl", SnippetConfig(source="wiki"))
    assert wiki[0]["levels"] == list(LEVELS) and len(wiki[0]["text"]) == 1000
    _jsonl(tmp_path / "web.jsonl", [{"text": "low", "score": 0.1}, {"text": "kept", "score": 0.5}])
    web, counts = make_snippets(tmp_path / "web.jsonl", SnippetConfig(source="web", score_field="score"))
    assert [s["text"] for s in web] == ["kept"] and counts["outside_score_window"] == 1
    _jsonl(tmp_path / "mmiqc.jsonl", [{"question": "q1", "answer": "a1", "source": "math.StackExchange"},
                                      {"question": "q2", "answer": "a2", "source": "MetaMath"}])
    stack, counts = make_snippets(tmp_path / "mmiqc.jsonl", SnippetConfig(source_contains="stackexchange"))
    assert [s["text"] for s in stack] == ["q1\n\na1"] and counts["other_source"] == 1
    tex = "\\documentclass{article}\n\\section{Intro} a\n\\section*{Two} b"
    assert split_tex(tex) == ["\\section{Intro} a\n", "\\section*{Two} b"]


def test_levels_are_seeded_per_source(tmp_path):
    _jsonl(tmp_path / "c.jsonl", [{"text": f"text {i}"} for i in range(40)])
    a, _ = make_snippets(tmp_path / "c.jsonl")
    b, _ = make_snippets(tmp_path / "c.jsonl")
    assert [s["levels"] for s in a] == [s["levels"] for s in b]
    assert len({s["levels"][0] for s in a}) > 3  # drawn, not constant
    c, _ = make_snippets(tmp_path / "c.jsonl", SnippetConfig(seed=1))
    assert [s["levels"] for s in a] != [s["levels"] for s in c]


def test_folder_corpus_and_bad_inputs(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("plain text one", encoding="utf-8")
    (tmp_path / "d" / "b.md").write_text("## S\nbody", encoding="utf-8")
    snips, counts = make_snippets(tmp_path / "d")
    assert [s["source"] for s in snips] == ["web", "textbook"] and counts["files"] == 2
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "e.txt").write_text("   \n", encoding="utf-8")
    with pytest.raises(ValueError, match="no snippets .*1 empty"):
        make_snippets(tmp_path / "empty")
    _jsonl(tmp_path / "notext.jsonl", [{"text": "ok"}, {"body": "no text field"}])
    with pytest.raises(ValueError, match=r"notext.jsonl:2: no text field 'text'.*fields: body"):
        make_snippets(tmp_path / "notext.jsonl", SnippetConfig(source="web"))
    with pytest.raises(FileNotFoundError):
        make_snippets(tmp_path / "missing")
    with pytest.raises(ValueError, match="snippets.source"):
        SnippetConfig(source="forum")


def test_cot_prompt_layout_and_levels():
    snips = [{"id": "wiki-0", "text": "SNIPPET", "source": "wiki", "levels": list(LEVELS)}]
    prompts = build_prompts(snips, PromptConfig(levels=["grade", "aime"]))
    assert [p["id"] for p in prompts] == ["wiki-0:grade", "wiki-0:aime"]
    for level in LEVELS:
        text = cot_prompt("SNIPPET", level)
        heads = [text.index(h) for h in ("## Instruction\n", "## Math Content\nSNIPPET", "## Guidelines\n[Problem]:",
                                         "[Solution]:", "## New Problem\n")]
        assert heads == sorted(heads) and text.endswith("## New Problem\n")
    assert len({cot_prompt("s", lv) for lv in LEVELS}) == 8
    # the one-shot options: an ## Example in the layout just before ## New Problem, and the open tag
    plain = build_prompts(snips, PromptConfig(levels=["grade"]))[0]["prompt"]
    shot = build_prompts(snips, PromptConfig(levels=["grade"], cot_demo=True, open_problem=True))[0]["prompt"]
    head, _, tail = shot.partition("## Example\n[Problem]: A baker")
    assert head == plain.removesuffix("## New Problem\n") and tail.endswith("\\boxed{6}.\n\n## New Problem\n[Problem]:")
    assert cot_prompt("s", "grade", open_problem=True) == cot_prompt("s", "grade") + "[Problem]:"
    with pytest.raises(ValueError, match="prompts.levels"):
        PromptConfig(levels=["phd"])


def test_tool_prompt_seed_cut_demo_and_fixes():
    text = "a" * 1990 + ". bbbbbbbbbbbbbbbbbbbb"
    assert cut_seed(text) == "a" * 1990 + "."
    assert cut_seed("word " * 500) == ("word " * 500)[:2000]
    assert strip_affixes("<|user|>Use the numbers<|end|>", "<|user|>", "<|end|>") == "Use the numbers"
    assert strip_affixes("user asks", "<|user|>", "") == "user asks"  # letters are never eaten
    demos = [{"question": "Q?", "solution": '```python\ndef f():\n    """doc"""\n    return 1\nprint(f())\n```\n\\boxed{1}'},
             {"question": "no box", "solution": "42"}]
    (p,) = build_tool_prompts([{"id": "s", "text": "seed text"}], demos)
    assert "[Problem Description]\nQ?\n[/Problem Description]" in p["prompt"] and '"""' not in p["prompt"]
    assert "\\boxed{}" in p["prompt"] and "/boxed" not in p["prompt"] and p["variant"] == "tool"
    with pytest.raises(ValueError, match="boxed"):
        build_tool_prompts([{"id": "s", "text": "t"}], [{"question": "q", "solution": "1"}])
