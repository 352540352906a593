"""S4 bulk generation (docs/methods/synthesis.md §d.6): chunks, resume after a kill, shards and merge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mathforge import faults
from mathforge.infer.types import Completion
from mathforge.synth.generate import (
    GenerateConfig,
    GenerationError,
    chunk_path,
    merge_generations,
    parse_shard,
    run_generation,
)
from mathforge.synth.io import load_records, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


class EchoEngine:
    """Deterministic stand-in: the text names the prompt, the sample and the seed; can fail on demand."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after, self.prompts_seen = 0, fail_after, []

    def generate(self, prompts, *, n=1, params=None, stop=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("POST http://127.0.0.1:9/v1/completions failed after 1 tries; last: ConnectError")
        self.calls += 1
        self.prompts_seen += prompts
        return [[Completion(text=f"{p}|s{s}|seed{params.seed}|t{params.temperature}", finish_reason="stop")
                 for s in range(n)] for p in prompts]


def _prompts(n, tool_every=0):
    return [{"id": f"p{i}", "prompt": f"prompt {i}", "level": "grade",
             "variant": "tool" if tool_every and i % tool_every == 0 else "cot"} for i in range(n)]


def _cfg(tmp_path, **kw):
    return GenerateConfig(engine="fake", out_dir=str(tmp_path / "gen"), chunk_size=3, **kw)


def test_crash_then_resume_loses_and_repeats_nothing(tmp_path):
    prompts = _prompts(10)
    with pytest.raises(GenerationError, match="chunk 2.*2 chunks written now are kept"):
        run_generation(prompts, _cfg(tmp_path, n=2), EchoEngine(fail_after=2))
    first = {k: chunk_path(tmp_path / "gen", k).read_bytes() for k in (0, 1)}
    assert not chunk_path(tmp_path / "gen", 2).exists()
    engine = EchoEngine()
    counts = run_generation(prompts, _cfg(tmp_path, n=2), engine)
    assert counts["chunks_resumed"] == 2 and counts["chunks_generated"] == 2
    assert engine.prompts_seen == [p["prompt"] for p in prompts[6:]]  # finished chunks are not redone
    assert {k: chunk_path(tmp_path / "gen", k).read_bytes() for k in (0, 1)} == first
    merge_generations([tmp_path / "gen"], tmp_path / "all.jsonl")
    rows = load_records(tmp_path / "all.jsonl")
    assert [(r["id"], r["sample"]) for r in rows] == [(f"p{i}", s) for i in range(10) for s in range(2)]
    assert rows[7]["generated_text"] == "prompt 3|s1|seed1|t1.0" and rows[0]["finish_reason"] == "stop"


def test_shards_split_deterministically_and_merge(tmp_path):
    prompts = _prompts(11, tool_every=4)
    whole = GenerateConfig(engine="fake", out_dir=str(tmp_path / "whole"), chunk_size=2)
    run_generation(prompts, whole, EchoEngine())
    for i in range(3):
        run_generation(prompts, GenerateConfig(engine="fake", out_dir=str(tmp_path / f"s{i}"), chunk_size=2,
                                               shard=f"{i}/3"), EchoEngine())
    with pytest.raises(ValueError, match="missing"):
        merge_generations([tmp_path / "s0", tmp_path / "s1"], tmp_path / "x.jsonl")
    merge_generations([tmp_path / f"s{i}" for i in range(3)], tmp_path / "sharded.jsonl")
    merge_generations([tmp_path / "whole"], tmp_path / "whole.jsonl")
    assert (tmp_path / "sharded.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    rows = load_records(tmp_path / "whole.jsonl")
    assert "|t0.1" in rows[0]["generated_text"] and "|t1.0" in rows[1]["generated_text"]  # tool sampling
    manifest = json.loads((tmp_path / "s1" / "manifest-shard1of3.json").read_text())
    assert manifest["counts"]["chunks_in_shard"] == 2 and manifest["config"]["shard"] == "1/3"
    assert "versions" in manifest and (tmp_path / "sharded.manifest.json").exists()


def test_resume_with_other_settings_and_bad_input_are_errors(tmp_path):
    prompts = _prompts(4)
    run_generation(prompts, _cfg(tmp_path), EchoEngine())
    with pytest.raises(ValueError, match="other settings .*temperature"):
        run_generation(prompts, _cfg(tmp_path, temperature=0.5), EchoEngine())
    with pytest.raises(ValueError, match="duplicate id"):
        run_generation(prompts + prompts[:1], _cfg(tmp_path), EchoEngine())
    with pytest.raises(ValueError, match="shard"):
        parse_shard("3/3")
    write_jsonl(tmp_path / "dup" / "chunks" / "chunk-000000.jsonl", [{"id": "a"}, {"id": "a"}])
    (tmp_path / "dup" / "run.json").write_text(json.dumps({"key": {}, "n_chunks": 1}))
    with pytest.raises(ValueError, match="appears twice"):
        merge_generations([tmp_path / "dup"], tmp_path / "d.jsonl")


def test_unreachable_endpoint_is_a_clear_error(tmp_path):
    write_jsonl(tmp_path / "p.jsonl", _prompts(2))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mathforge", "synth", "generate", str(tmp_path / "p.jsonl"),
                           "--engine", "openai:http://127.0.0.1:9/v1#m", "--out", str(tmp_path / "g"),
                           "--option", "max_retries=0"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "engine 'openai:http://127.0.0.1:9/v1#m' failed on chunk 0" in proc.stderr
    assert "127.0.0.1:9" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_kill_in_the_middle_then_resume_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL a real `mathforge synth generate` (tiny HF model) while chunk 5 is in flight (generated,
    not written), resume in another process, merge: equal to an uninterrupted run."""
    import torch

    from mathforge.infer.loading import load_engine
    from tests.tiny_lm import save_tiny

    torch.set_num_threads(1)
    model = save_tiny(tmp_path / "tiny")
    n = 16
    write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{i}", "prompt": f"Question: What is {i} + 1? Answer:"}
                                       for i in range(n)])
    args = [sys.executable, "-m", "mathforge", "synth", "generate", str(tmp_path / "p.jsonl"), "--engine",
            str(model), "--out", str(tmp_path / "killed"), "--chunk-size", "1", "--max-new-tokens", "16"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env |= {faults.SYNTH: "5"}  # dies with chunk 5 generated but not written (exact, no timer)
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    done = sorted((tmp_path / "killed" / "chunks").glob("chunk-*.jsonl"))
    assert [p.name for p in done] == [f"chunk-{k:06d}.jsonl" for k in range(5)]
    before = {p.name: p.read_bytes() for p in done}
    engine = load_engine(model, batch_size=4)
    cfg = dict(engine=str(model), chunk_size=1, max_new_tokens=16)
    prompts = load_records(tmp_path / "p.jsonl")
    counts = run_generation(prompts, GenerateConfig(out_dir=str(tmp_path / "killed"), **cfg), engine)
    assert counts["chunks_resumed"] == len(done) and counts["chunks_generated"] == n - len(done)
    assert {p.name: p.read_bytes() for p in done} == before
    run_generation(prompts, GenerateConfig(out_dir=str(tmp_path / "straight"), **cfg), engine)
    merge_generations([tmp_path / "killed"], tmp_path / "killed.jsonl")
    merge_generations([tmp_path / "straight"], tmp_path / "straight.jsonl")
    rows = load_records(tmp_path / "killed.jsonl")
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(n)]
    assert [r["generated_text"] for r in rows] == [r["generated_text"] for r in load_records(tmp_path / "straight.jsonl")]
