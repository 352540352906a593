"""The with/without-synthetic-data comparison (mathforge/synth/ablation.py): the two arms' files and
recipes differ only in the training file, a held-out question in training is refused, the one-pass
bits-per-byte equals the token-by-token sum, and two tiny arms train and compare end to end."""

from __future__ import annotations

import json
import tomllib

import pytest

from mathforge.synth.ablation import (
    AblationConfig,
    ablation_files,
    compare_arms,
    slow_solution_bits,
    solution_bits,
)


def _io(q: str, a: str) -> dict:
    return {"input": f"## Question\n{q}\n\n## Solution\n", "output": a}


SFT = [_io(f"What is {i} plus 2?", f"{i} + 2 = {i + 2}.\n#### {i + 2}") for i in range(30)]
SYN = [_io(f"Tom has {i} apples and buys 3. How many?", f"{i}+3={i + 3}. \\boxed{{{i + 3}}}") for i in range(20)]
HELD = [_io(f"What is {i} plus 5?", f"{i} + 5 = {i + 5}.\n#### {i + 5}") | {"answer": str(i + 5)} for i in range(6)]


def test_arms_differ_only_in_training_file_and_leaks_are_refused(tmp_path):
    cfg = AblationConfig(steps=7, n_heldout=4)
    counts = ablation_files(SYN, SFT, HELD, tmp_path, cfg)
    assert counts == {"sft": 30, "synthetic": 20, "heldout": 4}
    lines = {arm: (tmp_path / f"{arm}.jsonl").read_text().splitlines() for arm in ("with", "without")}
    assert len(lines["without"]) == 30 and len(lines["with"]) == 50 and lines["with"][:30] == lines["without"]
    recipes = {arm: tomllib.loads((tmp_path / f"{arm}.toml").read_text()) for arm in ("with", "without")}
    for r in recipes.values():  # everything but the training file and the output folder is shared
        r["data"].pop("train_file")
        r.pop("out_dir")
    assert recipes["with"] == recipes["without"] and recipes["with"]["optim"]["max_steps"] == 7
    # one vocabulary for both arms, built from the baseline's texts only (no synthetic record in it)
    from transformers import AutoTokenizer

    tok_dir = recipes["with"]["data"]["tokenizer_dir"]
    assert tok_dir == str((tmp_path / "tokenizer").resolve())
    tok = AutoTokenizer.from_pretrained(tok_dir)
    assert len(tok) <= cfg.vocab_size and "apples" not in tok.get_vocab() and "Ġapples" not in tok.get_vocab()
    ablation_files(SYN, SFT, HELD, tmp_path / "init", AblationConfig(init="x"))  # a pretrained model's own
    assert "tokenizer_dir" not in tomllib.loads((tmp_path / "init" / "with.toml").read_text())["data"]
    assert not (tmp_path / "init" / "tokenizer").exists()
    with pytest.raises(ValueError, match="held-out question"):
        ablation_files([*SYN, HELD[0]], SFT, HELD, tmp_path / "leak", cfg)
    with pytest.raises(ValueError, match="sft"):
        ablation_files(SYN, [], HELD, tmp_path / "empty", cfg)
    with pytest.raises(ValueError, match="no synthetic record"):
        ablation_files([], SFT, HELD, tmp_path / "none", cfg)
    with pytest.raises(ValueError, match="steps"):
        AblationConfig(steps=0)


def test_one_pass_bits_equal_the_token_by_token_sum():
    import torch

    from mathforge.data.tokenizer import build_tokenizer
    from mathforge.models import build_model

    torch.manual_seed(0)
    tok = build_tokenizer([r["input"] + r["output"] for r in SFT], kind="bpe", vocab_size=300)
    model = build_model("nano", tok, seed=0, num_hidden_layers=1)
    fast = solution_bits(model, tok, HELD[:3])
    for (bits, n_bytes), rec in zip(fast, HELD[:3], strict=True):
        assert n_bytes == len(rec["output"].encode())
        assert bits == pytest.approx(slow_solution_bits(model, tok, rec), rel=1e-4)


@pytest.mark.slow
def test_two_tiny_arms_train_and_compare(tmp_path):
    import torch

    from mathforge.train.config import config_from_dict
    from mathforge.train.loop import train
    from tests.tiny_lm import TINY_TRAIN_OVERRIDES

    torch.set_num_threads(1)
    cfg = AblationConfig(steps=2, micro_batch_size=2, seq_len=96, n_heldout=4, n_accuracy=2, max_new_tokens=8,
                         vocab_size=300)
    ablation_files(SYN, SFT, HELD, tmp_path, cfg)
    for arm, seed in (("without", 0), ("with", 0), ("without", 1), ("with", 1)):
        table = tomllib.loads((tmp_path / f"{arm}.toml").read_text())
        table["model"]["overrides"] = TINY_TRAIN_OVERRIDES
        table |= {"progress": False, "threads": 1, "checkpoint_every": 0, "seed": seed}
        if seed:
            table["out_dir"] += f"-seed{seed}"
        train(config_from_dict(table, source=f"{arm}.toml"))
    res = compare_arms(tmp_path, n_boot=200)
    assert set(res["arms"]) == {"without", "with"} and res["heldout"] == 4 and "per_pair" not in res
    for arm in res["arms"].values():
        assert arm["bits_per_byte"] > 0 and arm["n_problems"] == 2 and arm["steps"] == 2
        assert arm["bpb_ci"][0] <= arm["bits_per_byte"] <= arm["bpb_ci"][1]
    from transformers import AutoTokenizer

    vocabs = [AutoTokenizer.from_pretrained(tmp_path / arm / "model").get_vocab() for arm in ("without", "with")]
    assert vocabs[0] == vocabs[1] == AutoTokenizer.from_pretrained(tmp_path / "tokenizer").get_vocab()
    d = res["bpb_difference"]
    assert d["ci"][0] <= d["mean"] <= d["ci"][1] and res["arms_compared"] == ["without", "with"]
    per = {a: res["arms"][a]["bits_per_byte"] for a in ("without", "with")}
    assert d["mean"] == pytest.approx(per["with"] - per["without"])  # mean of differences = difference of means
    swapped = compare_arms(tmp_path, arms=("with", "without"), n_boot=200)
    assert swapped["bpb_difference"]["mean"] == pytest.approx(-d["mean"])
    assert (tmp_path / "comparison-with-vs-without.md").is_file()
    assert json.loads((tmp_path / "comparison.json").read_text()) == res
    assert "Paired difference" in (tmp_path / "comparison.md").read_text()
    # groups of seeds: each problem averaged over a group's runs; the pooled difference is then the
    # mean of the seed-by-seed differences, which are listed too
    seeds = compare_arms(tmp_path, arms=("without+without-seed1", ("with", "with-seed1")), n_boot=200)
    pairs = seeds["per_pair"]
    assert [p["runs"] for p in pairs] == [["without", "with"], ["without-seed1", "with-seed1"]]
    assert pairs[0]["mean"] == pytest.approx(d["mean"])
    assert seeds["bpb_difference"]["mean"] == pytest.approx((pairs[0]["mean"] + pairs[1]["mean"]) / 2)
    spread = seeds["across_pairs"]
    assert spread["n"] == 2 and spread["mean"] == pytest.approx(seeds["bpb_difference"]["mean"])
    assert spread["sd"] == pytest.approx(abs(pairs[0]["mean"] - pairs[1]["mean"]) / 2 ** 0.5)
    assert spread["min"] <= spread["mean"] <= spread["max"] and "across_pairs" not in res
    assert seeds["arms_compared"] == ["without+without-seed1", "with+with-seed1"] and len(seeds["arms"]) == 4
    assert "with-seed1 − without-seed1" in (tmp_path / "comparison-without+without-seed1-vs-with+with-seed1.md"
                                           ).read_text()
    with pytest.raises(ValueError, match="empty run name"):
        compare_arms(tmp_path, arms=("without+", "with"))


def test_ablation_and_compare_from_the_command_line(tmp_path):
    """GSM8K train is the instruction set, its test split the held-out set; `compare` before
    training names the missing model."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mathforge.synth.io import write_jsonl

    root = Path(__file__).resolve().parents[1]
    write_jsonl(tmp_path / "kept.jsonl", SYN)
    env = {**os.environ, "PYTHONPATH": str(root)}

    def synth(*args):
        return subprocess.run([sys.executable, "-m", "mathforge", "synth", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=120)

    proc = synth("ablation", tmp_path / "kept.jsonl", "--out", tmp_path / "abl", "--steps", "5", "--n-heldout", "50")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"sft": 7473, "synthetic": 20, "heldout": 50}
    held = [json.loads(line) for line in (tmp_path / "abl" / "heldout.jsonl").read_text().splitlines()]
    assert held[0]["input"].startswith("## Question\nJanet") and held[0]["answer"] == "18"
    manifest = json.loads((tmp_path / "abl" / "manifest.json").read_text())
    assert manifest["stage"] == "ablation" and manifest["config"]["steps"] == 5
    proc = synth("compare", tmp_path / "abl")
    assert proc.returncode != 0 and "not trained yet" in proc.stderr and "Traceback" not in proc.stderr
