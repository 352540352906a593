"""`mathforge eval --strategy ...` and `mathforge value-data` end to end on tiny models, and the bad
inputs that must fail before any generation."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from mathforge.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from tiny_lm import TINY_TRAIN_OVERRIDES

    from mathforge.data.tasks import get_task
    from mathforge.data.tokenizer import build_tokenizer
    from mathforge.models.presets import build_model
    from mathforge.models.value import ValueModel

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("search")
    texts = [e.prompt + e.response for e in get_task("arith_steps")(50, seed=0)]
    tok = build_tokenizer(texts, kind="char")
    gen = build_model("nano", tok, seed=0, **TINY_TRAIN_OVERRIDES)
    gen.save_pretrained(root / "gen")
    tok.save_pretrained(root / "gen")
    ValueModel.from_generator(gen, init="random").save_pretrained(root / "value", tokenizer=tok)
    other = build_tokenizer(texts, kind="bpe", vocab_size=300)
    ValueModel(build_model("nano", other, seed=0, **TINY_TRAIN_OVERRIDES).model).save_pretrained(
        root / "bad_value", tokenizer=other)
    return root


def same(a, b) -> bool:
    """Equal, floats to a relative 1e-5."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-5)
    return a == b


def run_eval(folders, out, *extra):
    return main(["eval", "--model", str(folders / "gen"), "--task", "arith_steps", "--limit", "3", "--n", "4",
                 "--m", "2", "--max-new-tokens", "24", "--temperature", "1.0", "--threads", "1", "--quiet",
                 "--out", str(out), *extra])


@pytest.mark.parametrize("strategy", ["sample", "wvote", "tsmc"])
def test_eval_strategy_end_to_end_and_resume(folders, tmp_path, strategy):
    value = [] if strategy == "sample" else ["--value-model", str(folders / "value")]
    assert run_eval(folders, tmp_path / "run", "--strategy", strategy, *value) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_problems"] == 3 and metrics["strategy"] == strategy
    lines = (tmp_path / "run" / "outputs.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert len(rec["samples"]) == 4 and rec["cost"]["generated_tokens"] > 0
    if strategy == "tsmc":
        assert {"weights", "values", "lineage", "group_id", "vote_weight"} <= set(rec["samples"][0])
    # a kill after the first problem: the rerun finishes the rest and agrees with the full run
    (tmp_path / "run" / "outputs.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    assert run_eval(folders, tmp_path / "run", "--strategy", strategy, *value) == 0
    again = (tmp_path / "run" / "outputs.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "cost"} for x in again]
    # same samples; float fields (log-probs, weights) up to summation order in a differently sized batch
    assert same(strip, [{k: v for k, v in json.loads(x).items() if k != "cost"} for x in lines])


def test_bad_inputs_fail_before_generation(folders, tmp_path, capsys, monkeypatch):
    from mathforge.infer.stepwise import StepGenerator

    def boom(*a, **k):
        raise AssertionError("generation started")

    monkeypatch.setattr(StepGenerator, "start", boom)
    assert run_eval(folders, tmp_path / "a", "--strategy", "tsmc", "--value-model", str(folders / "bad_value")) == 2
    assert "tokenizer differs" in capsys.readouterr().err
    assert run_eval(folders, tmp_path / "b", "--strategy", "tsmc", "--value-model", str(folders / "value"),
                    "--n", "6", "--m", "4") == 2
    assert "not a multiple" in capsys.readouterr().err
    assert main(["eval", "--model", str(folders / "gen"), "--task", "arithmetic", "--strategy", "sample",
                 "--quiet", "--out", str(tmp_path / "c")]) == 2
    assert "no step delimiter" in capsys.readouterr().err
    assert run_eval(folders, tmp_path / "d", "--strategy", "bon") == 2
    assert "needs --value-model" in capsys.readouterr().err


def test_value_data_command(folders, tmp_path):
    from mathforge.value_data import read_value_data

    out = tmp_path / "v.jsonl"
    args = ["value-data", "--model", str(folders / "gen"), "--out", str(out), "--n-problems", "3", "--k", "3",
            "--max-new-tokens", "16", "--batch-size", "2", "--quiet"]
    assert main(args) == 0
    recs = read_value_data(out)
    assert [len(r["samples"]) for r in recs] == [3, 3, 3]
    assert all(set(s) >= {"text", "eos", "correct", "step_end_chars"} for r in recs for s in r["samples"])
    first = out.read_text().splitlines()
    out.write_text(first[0] + "\n")  # killed after one problem: the rerun appends the other two, same samples
    assert main(args) == 0
    assert out.read_text().splitlines() == first
    assert main(["value-data", "--model", str(folders / "gen"), "--out", str(tmp_path / "w.jsonl"),
                 "--task", "arithmetic", "--quiet"]) == 2


def test_budget_subsets_use_whole_groups():
    from mathforge.search_eval import subset_accuracy

    # one problem, 8 particles in 2 groups of 4: group 0 votes "1" (correct), group 1 votes "2"
    samples = [{"answer": "1", "correct": True, "vote_weight": 0.25, "value": 0.9} for _ in range(4)]
    samples += [{"answer": "2", "correct": False, "vote_weight": 0.25, "value": 0.1} for _ in range(4)]
    recs = [{"samples": samples}]
    pt = subset_accuracy(recs, "tsmc", 4, group=4, trials=200, seed=0)
    assert 0.4 < pt["accuracy"] < 0.6  # a whole group each time: right exactly when group 0 is drawn
    assert pt["p2_5"] == 0.0 and pt["p97_5"] == 1.0
    assert subset_accuracy(recs, "bon", 8, trials=1)["accuracy"] == 1.0
    assert subset_accuracy(recs, "maj", 8, trials=1)["accuracy"] == 1.0  # a 4-4 tie: the earliest class


def test_tsmc_report_from_run_folders(tmp_path):
    """The experiment's report reads eval folders only: curves, tables and plots from fake records."""
    import random

    from mathforge.tsmc_experiment import ExperimentConfig
    from mathforge.tsmc_report import write_report

    rng = random.Random(0)
    cfg = ExperimentConfig(out=str(tmp_path), n_max=8, budgets=[4, 8], m=4, trials=5)
    for run in ("wvote-ctl", "tsmc-ctl"):
        folder = tmp_path / "eval" / run
        folder.mkdir(parents=True)
        recs = []
        for p in range(6):
            samples = []
            for j in range(8):
                ok = rng.random() < 0.5
                samples.append({"answer": "7" if ok else str(rng.randint(0, 3)), "correct": ok, "finish": "stop",
                                "value": rng.random(), "vote_weight": 0.25, "group_id": j // 4, "n_tokens": 10})
            rec = {"problem_id": f"p{p}", "samples": samples, "cost": {"generated_tokens": 80.0}}
            if run.startswith("tsmc"):
                rec["groups"] = [{"group_id": g, "ancestors": [[0, 0, 1, 2]], "resamplings": 1,
                                  "all_truncated": False} for g in range(2)]
            recs.append(rec)
        (folder / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "eval" / "tsmc-ctl" / "metrics.json").write_text(json.dumps(
        {"truncation_rate": 0.0, "dead_groups": 0, "mean_resamplings": 1.0, "value_tokens_per_problem": 80,
         "wall_s": 1.0}))
    text = write_report(tmp_path, cfg).read_text()
    assert "| maj@n |" in text and "| TSMC (CTL value) |" in text and "genealogy.png" in text
    for png in ("accuracy_vs_n.png", "accuracy_vs_tokens.png", "genealogy.png"):
        assert (tmp_path / png).stat().st_size > 0
    curves = json.loads((tmp_path / "curves.json").read_text())
    assert [p["n"] for p in curves["maj@n"]] == [4, 8] and curves["maj@n"][0]["tokens_per_problem"] == 40.0
