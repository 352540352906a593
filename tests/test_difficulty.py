"""SDAT difficulty estimation: the level rule's check values, the margin of error, the exemplar rule
(exemplars leave the training set), and an end-to-end run with a tiny model that the `difficulty`
objective then reads."""

from __future__ import annotations

import json
import math

import pytest

from mathforge.difficulty import EstimateConfig, margin_of_error, split_exemplars
from mathforge.train.objectives.difficulty import level_of as level


def test_level_rule_check_values():
    checks = {0.0: 1, 0.2: 1, 0.2308: 2, 0.5: 3, 0.7: 4, 0.9143: 5, 1.0: 5}
    assert {e: level(e) for e in checks} == checks
    assert [level(e, formula="report") for e in (0.0, 0.2, 0.5, 0.9143, 1.0)] == [0, 1, 2, 4, 5]
    with pytest.raises(ValueError):
        level(1.5)


def test_margin_of_error():
    assert margin_of_error(0.5, 1) == math.inf
    # 16 samples, p = 0.25: t_{0.975, 15} = 2.131, sqrt(0.1875 / 15) = 0.111803
    assert margin_of_error(0.25, 16) == pytest.approx(2.131 * (0.1875 / 15) ** 0.5)


def test_exemplars_are_drawn_per_source_until_half_the_context_and_leave_training():
    recs = [{"question": f"q{i}", "response": f"r {i} #### {i}", "source": "a" if i < 6 else "b"} for i in range(9)]

    def words(text):  # a token per word
        return len(text.split())

    # instruction (12 words) + shots of 7 words: half of 40 = 20 is first exceeded by the second shot
    cfg = EstimateConfig(context_tokens=40, seed=1)
    ex, train = split_exemplars(recs, words, cfg)
    assert len(ex["a"]) == 2 and len(ex["b"]) == 2
    assert all(recs[i]["source"] == "a" for i in ex["a"]) and all(recs[i]["source"] == "b" for i in ex["b"])
    assert sorted(train + ex["a"] + ex["b"]) == list(range(9)) and not set(train) & set(ex["a"] + ex["b"])
    ex2, _ = split_exemplars(recs, words, EstimateConfig(context_tokens=40, seed=1, drop_crossing_exemplar=True))
    assert ex2["a"] == ex["a"][:1]  # the crossing exemplar dropped instead
    big, train_big = split_exemplars(recs, words, EstimateConfig(context_tokens=10_000))
    assert len(big["b"]) == 2 and len(train_big) == 2  # one example of each source always stays for training


def test_estimate_end_to_end_feeds_the_difficulty_objective(tmp_path):
    pytest.importorskip("torch")
    from tiny_lm import tiny_model, tiny_tokenizer

    from mathforge.cli import main
    from mathforge.difficulty import estimate
    from mathforge.infer.hf_engine import HFEngine
    from mathforge.train.dataset import read_examples

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "response": f"{i} + 1 = {i + 1} #### {i + 1}",
                                        "source": "s"}) + "\n" for i in range(5)))
    tok = tiny_tokenizer()
    engine = HFEngine(tiny_model(tok), tok)
    cfg = EstimateConfig(k=4, max_new_tokens=8, context_tokens=60)
    path = estimate(engine, data, tmp_path / "out", cfg)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    exemplars = [json.loads(x) for x in (tmp_path / "out" / "exemplars.jsonl").read_text().splitlines()]
    assert exemplars and len(rows) + len(exemplars) == 5
    assert {r["source_line"] for r in rows}.isdisjoint({e["source_line"] for e in exemplars})
    for r in rows:
        assert r["n_samples"] == 4 and 0 <= r["n_correct"] <= 4
        assert r["err_rate"] == pytest.approx(1 - r["n_correct"] / 4)
        assert r["difficulty_level"] == level(r["err_rate"])
    # resumable: a second call adds nothing
    estimate(engine, data, tmp_path / "out", cfg)
    assert len(path.read_text().splitlines()) == len(rows)
    # the loop's reader takes the level as the example's difficulty
    examples = read_examples(path)
    assert [e.difficulty for e in examples] == [float(r["difficulty_level"]) for r in rows]
    # adaptive sampling stops at the margin or the cap, in batches of 8
    ad = estimate(engine, data, tmp_path / "ad", EstimateConfig(adaptive=True, max_samples=16, max_new_tokens=4,
                                                                   context_tokens=60))
    assert all(json.loads(x)["n_samples"] in (8, 16) for x in ad.read_text().splitlines())
    # the CLI refuses bad settings before loading anything
    assert main(["difficulty", str(data), "--model", "no/such/folder", "--out", str(tmp_path / "x"), "--k", "0"]) == 2


def test_shot_template_writes_exemplars_in_the_models_own_layout():
    from mathforge.difficulty import shot

    assert shot("What is 2+2?", "4") == "Question: What is 2+2?\nAnswer: 4\n\n"
    assert shot("What is 2+2?") == "Question: What is 2+2?\nAnswer:"
    assert shot("Compute: 2 + 2", "2 + 2 = 4\n#### 4", "{question}\n") == "Compute: 2 + 2\n2 + 2 = 4\n#### 4\n\n"
    assert shot("Compute: 2 + 2", template="{question}\n") == "Compute: 2 + 2\n"
    with pytest.raises(ValueError, match="question"):
        EstimateConfig(template="no placeholder")
