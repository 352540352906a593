"""The quickstart's search half (mathforge/quickstart_search.py): its summary against a hand computation on
two made-up problems, and the value data never holding a held-out problem."""

from __future__ import annotations

import json

import pytest


def _sample(answer, correct, value):
    return {"text": f"# Answer\n\n{answer}", "answer": answer, "correct": correct, "value": value, "finish": "stop"}


def _write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def folder(tmp_path):
    # problem a: majority picks the wrong 3; the value model prefers the right 5 (best-of-N and weighted vote right)
    # problem b: majority picks the right 7; the value model prefers the wrong 2 (best-of-N and weighted vote wrong)
    scored = [{"problem_id": "a", "question": "qa", "gold": "5",
               "samples": [_sample("5", 1, 0.9), _sample("3", 0, 0.1), _sample("3", 0, 0.1), _sample("3", 0, 0.1)]},
              {"problem_id": "b", "question": "qb", "gold": "7",
               "samples": [_sample("7", 1, 0.1), _sample("7", 1, 0.1), _sample("7", 1, 0.1), _sample("2", 0, 0.9)]}]
    _write(tmp_path / "scored" / "outputs.jsonl", scored)
    _write(tmp_path / "tsmc" / "outputs.jsonl", [{"problem_id": "b", "correct": True}, {"problem_id": "a", "correct": False}])
    (tmp_path / "sample" / "metrics.json").parent.mkdir()
    (tmp_path / "sample" / "metrics.json").write_text(json.dumps(
        {"sample_accuracy": 0.5, "generated_tokens_per_problem": 40.0, "wall_s": 3.0}))
    (tmp_path / "tsmc" / "metrics.json").write_text(json.dumps(
        {"generated_tokens_per_problem": 44.0, "value_tokens_per_problem": 30.0, "wall_s": 4.0, "mean_resamplings": 2.0}))
    _write(tmp_path / "value" / "metrics.jsonl", [{"step": 2, "eval_value_auc": 0.75}])
    _write(tmp_path / "value_data.jsonl", [{"problem_id": "x", "prompt": "p", "samples": []}])
    return tmp_path


def test_summary_matches_a_hand_computation(folder):
    from mathforge.quickstart_search import SEARCH_DEFAULTS, summarize

    s = summarize(folder, {**SEARCH_DEFAULTS, "n": 4}, {"value_scores": 1.5})
    rows = s["rows"]
    assert [rows[k]["correct"] for k in ("maj", "bon", "wvote", "tsmc", "pass")] == [1, 1, 1, 1, 2]
    assert rows["bon"]["vs_maj"] == {"only_this": 1, "only_maj": 1}  # right on a, wrong on b
    assert rows["wvote"]["vs_maj"] == {"only_this": 1, "only_maj": 1}
    assert rows["tsmc"]["vs_maj"] == {"only_this": 0, "only_maj": 0}  # matched by problem id, not by line order
    lo, hi = rows["pass"]["ci95_wilson"]
    assert lo < 1.0 == rows["pass"]["accuracy"] and hi == pytest.approx(1.0)
    # AUC by hand: right samples' values {0.9, 0.1, 0.1, 0.1}, wrong {0.1, 0.1, 0.1, 0.9}
    # pairs (16): 0.9 > three 0.1 (3 wins) and ties 0.9=0.9 (0.5); three 0.1 tie three 0.1 (4.5) -> 8 / 16
    assert s["value"]["auc_pooled"] == pytest.approx(0.5)
    assert s["value"]["auc_within"] == pytest.approx((1.0 + 0.0) / 2)
    assert s["value"]["auc_value_data"] == 0.75 and s["value"]["n_value_problems"] == 1
    assert s["cost"]["tsmc"]["value_tokens"] == 30.0 and s["cost"]["value_scores"]["wall_s"] == 1.5
    assert len(s["examples"]) == 2 and s["examples"][0]["right"]["value"] == 0.9


def test_value_data_drops_held_out_problems(tmp_path):
    from mathforge.data.tasks import get_task
    from mathforge.quickstart_search import drop_held_out
    from mathforge.search_eval import SearchEvalConfig

    args = {"digits": 1, "operators": "+-", "n_ops": [2, 2]}
    held = get_task("arith_steps")(3, seed=0, **args)
    other = get_task("arith_steps")(2, seed=5, **args)
    recs = [{"problem_id": f"p{i}", "prompt": e.prompt, "gold": e.answer, "samples": []}
            for i, e in enumerate([other[0], held[1], other[1]])]
    _write(tmp_path / "all.jsonl", recs)
    cfg = SearchEvalConfig(model="m", out_dir=str(tmp_path / "s"), task="arith_steps", task_args=args, task_seed=0, limit=3)
    drop_held_out(tmp_path / "all.jsonl", tmp_path / "kept.jsonl", cfg)
    kept = [json.loads(x)["problem_id"] for x in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert kept == [r["problem_id"] for r in recs if r["prompt"] not in {e.prompt for e in held}]
    assert "p1" not in kept and kept
