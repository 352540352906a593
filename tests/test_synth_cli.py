"""`mathforge synth` end to end through every stage's subcommand on small data (tiny model for S4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mathforge.synth.io import load_records, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = " ".join(f"Step {i}: we add {i} apples to the basket and count again." for i in range(20))


def synth(*args, ok=True):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mathforge", "synth", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]) if ok else proc.stderr


@pytest.mark.slow
def test_every_stage_from_the_command_line(tmp_path):
    from tests.tiny_lm import save_tiny

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "book.md").write_text("intro\n## Fractions\nA fraction names part of a whole.\n"
                                                 "## Ratios\nA ratio compares two amounts.\n", encoding="utf-8")
    assert synth("snippets", tmp_path / "corpus", "--out", tmp_path / "s1")["snippets"] == 2
    counts = synth("prompts", tmp_path / "s1" / "snippets.jsonl", "--out", tmp_path / "s2")
    assert counts["prompts"] == 2
    model = save_tiny(tmp_path / "tiny")
    for i in range(2):
        synth("generate", tmp_path / "s2" / "prompts.jsonl", "--engine", model, "--out", tmp_path / f"g{i}",
              "--shard", f"{i}/2", "--chunk-size", "1", "--max-new-tokens", "6", "--option", "batch_size=2")
    assert synth("merge", tmp_path / "g0", tmp_path / "g1", "--out", tmp_path / "gen.jsonl")["records"] == 2
    parsed = synth("parse", tmp_path / "gen.jsonl", "--out", tmp_path / "s5")
    assert parsed["generations"] == 2 and parsed["parsed"] + parsed["rejected"] == 2

    # Downstream stages on hand-written generations (a random tiny model writes no parsable text).
    gens = [{"id": f"g{i}", "variant": "cot", "level": "grade", "snippet_id": "s", "finish_reason": "stop",
             "generated_text": f"[Problem]: A basket holds {q} apples and more are added over time.\n"
                               f"[Solution]: {SOLUTION} The answer is $\\boxed{{{i}}}$."}
            for i, q in enumerate(["three", "three", "five"])]
    gens.append({"id": "gsm", "variant": "cot", "finish_reason": "stop", "generated_text":
                 "[Problem]: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and "
                 "bakes muffins for her friends every day with four. She sells the remainder at the farmers' "
                 "market daily for $2 per fresh duck egg. How much in dollars does she make every day at the "
                 f"farmers' market?\n[Solution]: {SOLUTION} \\boxed{{18}}"})
    gens.append({"id": "open", "variant": "tool", "finish_reason": "stop",
                 "generated_text": "[Problem Description]\nnever closed [Solution] x"})
    write_jsonl(tmp_path / "hand.jsonl", gens)
    parsed = synth("parse", tmp_path / "hand.jsonl", "--out", tmp_path / "p")
    assert parsed["rejected_unclosed_problem_section"] == 1 and parsed["parsed"] == 4
    kept = synth("filter", tmp_path / "p" / "records.jsonl", "--out", tmp_path / "f", "--min-tokens", "100")
    assert kept["kept"] == 4
    dd = synth("dedup", tmp_path / "f" / "kept.jsonl", "--out", tmp_path / "d")
    assert dd["removed_exact"] == 1 and dd["kept"] == 3
    dc = synth("decontaminate", tmp_path / "d" / "kept.jsonl", "--field", "problem", "--out", tmp_path / "c",
               "--benchmarks", "gsm8k,svamp")
    assert dc["flagged"] == 1 and dc["per_benchmark"] == {"gsm8k/test": 1}
    flagged = load_records(tmp_path / "c" / "flagged.jsonl")
    assert flagged[0]["id"] == "gsm" and flagged[0]["contamination"][0]["id"] == "0"
    td = synth("train-data", tmp_path / "c" / "clean.jsonl", "--out", tmp_path / "t")
    assert td["pt"] == 2 and td["recipes"] == 1 and (tmp_path / "t" / "s9-stage1.toml").exists()
    synth("report", tmp_path / "s1", tmp_path / "s2", tmp_path / "p", tmp_path / "f", tmp_path / "d",
          tmp_path / "c", "--out", tmp_path / "yields.md")
    text = (tmp_path / "yields.md").read_text()
    assert "| parse |" in text and "rejected_unclosed_problem_section 1" in text and "| dedup |" in text
    assert "**decontaminate, rejected**" in text and "gsm8k" in text
    for stage in ("s1", "s2", "g0", "p", "f", "d", "c", "t"):
        manifests = list((tmp_path / stage).glob("manifest*.json"))
        assert manifests and "versions" in json.loads(manifests[0].read_text())
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("  \n", encoding="utf-8")
    assert "no snippets (1 text files, 1 units, 1 empty" in synth("snippets", tmp_path / "empty", "--out",
                                                                  tmp_path / "x", ok=False)
