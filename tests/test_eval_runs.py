"""`mathforge eval` as a user runs it, on a tiny random Llama saved to a folder (issue 10): samples
that do not depend on batching, run folders that never collide, chat templates, the user's own
data and few-shot sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.tiny_lm import save_tiny  # noqa: E402


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def _cli(*argv: str) -> int:
    from mathforge.cli import main

    return main(list(argv))


def _generations(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "outputs.jsonl").read_text().splitlines()]
    return {(r["dataset"], r["idx"], r["sample_id"]): r["generation"] for r in rows}


def test_sampled_outputs_do_not_depend_on_the_batch_size(tiny_folder, tmp_path):
    """Issue 10 item 2: the same command with --batch-size 1 and 16 samples the same texts (each
    sample draws from its own stream keyed by seed, prompt and sample index)."""
    common = ["eval", "--model", str(tiny_folder), "--benchmark", "gsm8k,svamp", "--limit", "5", "--n", "3",
              "--temperature", "1.0", "--max-new-tokens", "12", "--workers", "1", "--quiet"]
    assert _cli(*common, "--batch-size", "1", "--out", str(tmp_path / "b1")) == 0
    assert _cli(*common, "--batch-size", "16", "--out", str(tmp_path / "b16")) == 0
    one, sixteen = _generations(tmp_path / "b1"), _generations(tmp_path / "b16")
    assert len(one) == 2 * 5 * 3 and one == sixteen
    # sampling is on: the three samples of a problem are not all the same text
    assert any(len({one[("gsm8k", str(i), j)] for j in range(3)}) > 1 for i in range(5))


# ---------------------------------------------------------------- item 3: run folders


class _Answers:
    """A scripted engine: answers every prompt with `answer(prompt)`; records prompts; can fail."""

    def __init__(self, answer=lambda prompt: "The answer is 18.", fail_at: int | None = None,
                 error: type[BaseException] = RuntimeError):
        self.answer, self.fail_at, self.error, self.prompts = answer, fail_at, error, []

    def generate(self, prompts, *, n=1, params=None, stop=None):
        from mathforge.infer.types import Completion

        if self.fail_at is not None and len(self.prompts) >= self.fail_at:
            raise self.error("simulated failure")
        self.prompts += prompts
        return [[Completion(self.answer(p), n_tokens=3, finish_reason="stop") for _ in range(n)] for p in prompts]


def _no_model_loading(monkeypatch):
    import mathforge.infer.loading as loading

    def refuse(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "load_engine", refuse)


def test_default_run_folders_never_collide(tmp_path, monkeypatch):
    """Issue 10 item 3: every setting that changes a result changes the default folder; a trained
    model's `<run>/model` is named by its run; settings that change nothing keep the folder."""
    from mathforge.evaluate import EvalConfig

    monkeypatch.chdir(tmp_path)
    for run in ("sft", "mft"):
        (tmp_path / run / "model").mkdir(parents=True)
    base = dict(model="sft/model", benchmarks=["gsm8k"])
    variants = [{}, {"model": "mft/model"}, {"benchmarks": ["math500"]}, {"benchmarks": ["gsm8k", "svamp"]},
                {"limit": 10}, {"limit": 12}, {"n": 4, "temperature": 0.7}, {"n": 4, "temperature": 0.7, "seed": 1},
                {"shots": 4}, {"shots": 2, "shots_from": "train"}, {"style": "direct"}, {"chat": False},
                {"max_new_tokens": 64}, {"split": "train"}]
    dirs = [EvalConfig(**{**base, **v}).out_dir for v in variants]
    assert len(set(dirs)) == len(dirs), dirs
    assert Path(dirs[0]).parent == Path("runs/eval") and Path(dirs[0]).name.startswith("sft-model-gsm8k-cot-0shot")
    assert "limit10" in dirs[4] and "n4" in dirs[6]
    from mathforge.eval_runs import model_label

    assert model_label("runs/x/model") == "x-model" and model_label("openai-chat:http://h:1/v1#smol") == "smol"
    from mathforge.eval_runs import default_search_dir
    from mathforge.search_eval import SearchEvalConfig

    search = dict(model="sft/model", out_dir="", strategy="tsmc", task="arith_steps", value_model="mft/model")
    sdirs = {default_search_dir(SearchEvalConfig(**{**search, **v}))
             for v in ({}, {"limit": 8}, {"n": 8}, {"m": 2}, {"value_model": "sft/model"}, {"beta": 2.0})}
    assert len(sdirs) == 6 and all(Path(d).name.startswith("sft-model-arith_steps-tsmc-n") for d in sdirs)
    assert default_search_dir(SearchEvalConfig(**search, batch_size=1)) == default_search_dir(SearchEvalConfig(**search))
    same = EvalConfig(**base, batch_size=1, workers=3, profile="harness")  # result-neutral settings
    assert same.out_dir == dirs[0] and EvalConfig(**base).out_dir == dirs[0]  # the same command resumes


def test_other_settings_are_refused_before_the_model_loads(tmp_path, monkeypatch):
    from mathforge.evaluate import EvalConfig, evaluate

    out = str(tmp_path / "run")
    evaluate(EvalConfig(model="m", benchmarks=["gsm8k"], out_dir=out, limit=2, workers=1), _Answers())
    manifest = Path(out) / "manifest.json"  # a run made before some settings existed resumes as it was
    old = json.loads(manifest.read_text())
    for key in ("chat", "system", "question_field", "shots_from", "shot_ids", "task_args"):
        del old["config"][key]
    manifest.write_text(json.dumps(old))
    evaluate(EvalConfig(model="m", benchmarks=["gsm8k"], out_dir=out, limit=2, workers=1), _Answers())
    _no_model_loading(monkeypatch)
    with pytest.raises(ValueError, match=r"different settings \(--limit\); leave out --out"):
        evaluate(EvalConfig(model="m", benchmarks=["gsm8k"], out_dir=out, limit=3, workers=1))
    with pytest.raises(ValueError, match="has 8 demos; asked for shots=9"):  # prompts are checked before loading
        evaluate(EvalConfig(model="m", benchmarks=["gsm8k"], out_dir=str(tmp_path / "new"), shots=9, workers=1))
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="--temperature must be >= 0"):
        EvalConfig(model="m", benchmarks=["gsm8k"], temperature=-1.0)


def test_a_failed_start_leaves_no_folder_and_report_takes_a_glob(tmp_path, capsys):
    """A run that fails before its first record leaves nothing; an interrupted one stays resumable;
    `mathforge report DIR/*` reports the finished runs and names the folders it left out."""
    from mathforge.cli import main
    from mathforge.evaluate import EvalConfig, evaluate

    root = tmp_path / "eval"
    cfg = dict(model="m", benchmarks=["gsm8k"], limit=4, batch_size=2, workers=1)
    with pytest.raises(RuntimeError):
        evaluate(EvalConfig(**cfg, out_dir=str(root / "failed")), _Answers(fail_at=0))
    assert not (root / "failed").exists()
    with pytest.raises(KeyboardInterrupt):
        evaluate(EvalConfig(**cfg, out_dir=str(root / "stopped")), _Answers(fail_at=2, error=KeyboardInterrupt))
    assert (root / "stopped" / "outputs.jsonl").stat().st_size > 0  # resumable, so it stays
    evaluate(EvalConfig(**cfg, out_dir=str(root / "done")), _Answers())
    assert main(["report", *sorted(str(p) for p in root.iterdir()), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "Left out, no finished run (no metrics.json)" in text and "stopped" in text
    assert main(["report", str(root / "stopped")]) == 2  # alone, an unfinished folder is an error
    assert "metrics.json: missing" in capsys.readouterr().err


# ---------------------------------------------------------------- item 4: chat templates


def test_chat_template_is_applied_when_the_model_has_one_and_recorded(tmp_path):
    from mathforge.evaluate import EvalConfig, evaluate
    from mathforge.infer.hf_engine import chat_ids
    from tests.tiny_lm import tiny_tokenizer

    chat_model = save_tiny(tmp_path / "chat-model", chat=True)
    tok = tiny_tokenizer(chat=True)
    common = dict(benchmarks=["gsm8k"], limit=1, max_new_tokens=4, workers=1)

    def run(name, **kw):
        cfg = EvalConfig(model=str(chat_model), out_dir=str(tmp_path / name), **common, **kw)
        evaluate(cfg)
        rec = json.loads((tmp_path / name / "outputs.jsonl").read_text().splitlines()[0])
        return json.loads((tmp_path / name / "manifest.json").read_text())["chat_template"], rec

    used, rec = run("auto")
    assert used is True
    assert rec["tokens"]["prompt"] == len(chat_ids(tok, [{"role": "user", "content": rec["prompt"]}]))
    used, rec = run("off", chat=False)
    assert used is False and rec["tokens"]["prompt"] == len(tok(rec["prompt"]).input_ids)
    used, rec = run("system", system="Be brief.")
    assert used is True and rec["tokens"]["prompt"] == len(chat_ids(tok, [{"role": "system", "content": "Be brief."},
                                                                         {"role": "user", "content": rec["prompt"]}]))
    plain = save_tiny(tmp_path / "plain-model")
    with pytest.warns(UserWarning, match="gsm8k: 1 of the first 1 prompts hold tokens unknown to the model's tok"):
        evaluate(EvalConfig(model=str(plain), out_dir=str(tmp_path / "unk"), **common))  # e.g. the ’ is not in its vocabulary
    with pytest.raises(ValueError, match="--chat: this model's tokenizer has no chat template"):
        evaluate(EvalConfig(model=str(plain), out_dir=str(tmp_path / "forced"), chat=True, **common))


def test_eval_help_documents_chat_and_openai_chat(capsys):
    from mathforge.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "openai-chat:URL#MODEL" in text and "--chat, --no-chat" in text and "task:NAME" in text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "openai-chat:" in readme and "--chat" in readme


# ---------------------------------------------------------------- item 5: the user's own data


def test_eval_on_a_user_file_with_a_field_mapping(tmp_path):
    from mathforge.evaluate import EvalConfig, evaluate

    rows = [{"key": f"p{i}", "problem": f"What is {i} + {i}?", "sol": {"final": f"#### {2 * i}"}} for i in range(4)]
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = _Answers(lambda p: f"The answer is {2 * int(p.split('What is ')[1].split(' ')[0])}.")
    cfg = EvalConfig(model="m", benchmarks=[str(data)], question_field="problem", answer_field="sol.final",
                     id_field="key", answer_rule="gsm8k", workers=1, out_dir=str(tmp_path / "run"))
    m = evaluate(cfg, engine)["benchmarks"]["mine"]
    assert m["accuracy"] == 1.0 and m["n_problems"] == 4
    recs = [json.loads(x) for x in (tmp_path / "run" / "outputs.jsonl").read_text().splitlines()]
    assert [r["idx"] for r in recs] == ["p0", "p1", "p2", "p3"] and recs[3]["gold"] == "6"
    with pytest.raises(ValueError, match=r"mine.jsonl:1: missing field 'question'"):
        evaluate(EvalConfig(model="m", benchmarks=[str(data)], workers=1, out_dir=str(tmp_path / "r2")), engine)


def test_eval_on_a_task_generator_sees_the_training_runs_held_out_problems(tmp_path):
    """`--benchmark task:arithmetic --task-seed 0 --style raw --limit N` sends exactly the prompts a
    training run with seed 0 held out (the quickstart's own evaluation set)."""
    from mathforge.evaluate import EvalConfig, evaluate
    from mathforge.train.dataset import task_examples

    args = {"digits": 1, "n_ops": [1, 2]}
    held = task_examples("arithmetic", 20_000 + 6, 0, args)[:6]  # a run's pool: held-out first
    engine = _Answers(lambda p: "#### " + str(eval(p.removeprefix("Compute: "))))  # noqa: S307 - digits and + - *
    cfg = EvalConfig(model="m", benchmarks=["task:arithmetic"], task_args=args, task_seed=0, limit=6, style="raw",
                     workers=1, out_dir=str(tmp_path / "run"))
    m = evaluate(cfg, engine)["benchmarks"]["task:arithmetic"]
    assert engine.prompts == [ex.prompt for ex in held]
    assert m["accuracy"] == 1.0 and m["n_problems"] == 6
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        EvalConfig(model="m", benchmarks=["task:nope"], out_dir=str(tmp_path / "x")).load_problems()


def test_few_shot_exemplars_from_the_train_split_by_index_or_from_a_file(tmp_path):
    from mathforge.data import load_benchmark
    from mathforge.evaluate import EvalConfig, evaluate

    train = load_benchmark("gsm8k", "train", limit=5)
    engine = _Answers()
    cfg = EvalConfig(model="m", benchmarks=["gsm8k"], limit=1, shots=2, shots_from="train", shot_ids=[3, 0],
                     workers=1, out_dir=str(tmp_path / "train"))
    evaluate(cfg, engine)
    prompt = engine.prompts[0]
    assert prompt.index(train[3].question) < prompt.index(train[0].question) < prompt.index("Question: Janet")
    assert "####" not in prompt and f"The answer is {train[3].answer}." in prompt
    demos = json.loads((tmp_path / "train" / "manifest.json").read_text())["demos"]["gsm8k"]
    assert [d["question"] for d in demos] == [train[3].question, train[0].question]

    shots = tmp_path / "shots.jsonl"
    shots.write_text(json.dumps({"question": "Q-one?", "solution": "1 + 1 = 2.", "answer": "2"}) + "\n")
    engine = _Answers()
    evaluate(EvalConfig(model="m", benchmarks=["svamp"], limit=1, shots=1, shots_from=str(shots), workers=1,
                        out_dir=str(tmp_path / "file")), engine)
    assert engine.prompts[0].startswith("Question: Q-one?\nAnswer: 1 + 1 = 2. The answer is 2.")
    with pytest.raises(ValueError, match=r"exemplar indices \[7\] out of range 0..0"):
        evaluate(EvalConfig(model="m", benchmarks=["svamp"], shots=1, shots_from=str(shots), shot_ids=[7],
                            out_dir=str(tmp_path / "bad")), engine)


def test_grade_maps_fields_and_regrades_a_multi_benchmark_eval_output(tmp_path):
    from mathforge.evaluate import EvalConfig, evaluate
    from mathforge.grade_outputs import GradeConfig, grade_outputs

    evaluate(EvalConfig(model="m", benchmarks=["gsm8k", "svamp"], limit=3, n=2, temperature=0.5, workers=1,
                        out_dir=str(tmp_path / "run")), _Answers())  # ids 0..2 in both benchmarks
    recs = [json.loads(x) for x in (tmp_path / "run" / "outputs.jsonl").read_text().splitlines()]
    s = grade_outputs(GradeConfig(tmp_path / "run" / "outputs.jsonl", tmp_path / "regraded", progress=False))
    assert s["n_problems"] == 6 and s["n_samples"] == 12
    assert s["sample_verdicts"]["correct"] == sum(r["correct"] for r in recs) > 0

    # a program style: eval grades the program's printed result (18), not the text's last number (2)
    evaluate(EvalConfig(model="m", benchmarks=["gsm8k"], limit=3, style="pot", workers=1,
                        out_dir=str(tmp_path / "pot")), _Answers(lambda p: "```python\nprint(9 * 2)\n```"))
    recs = [json.loads(x) for x in (tmp_path / "pot" / "outputs.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in recs] == [True, False, False]  # gsm8k problem 0's gold is 18
    s = grade_outputs(GradeConfig(tmp_path / "pot" / "outputs.jsonl", tmp_path / "pot.graded", progress=False))
    assert s["accuracy"] == pytest.approx(1 / 3)

    mine = tmp_path / "mine.jsonl"  # no id at all, own field names
    mine.write_text("".join(json.dumps({"problem": q, "model_answer": {"text": f"so {a}"}, "reference": g}) + "\n"
                            for q, a, g in (("a", 7, 8), ("b", 5, 5))))
    s = grade_outputs(GradeConfig(mine, tmp_path / "mine.graded", gold_field="reference",
                                  response_field="model_answer.text", progress=False))
    assert (s["n_problems"], s["accuracy"]) == (2, 0.5)


# ---------------------------------------------------------------- item 6: tables printed whole


def test_summary_tables_are_not_cut_at_80_columns(tmp_path, monkeypatch, capsys):
    from mathforge.cli import eval as eval_cli
    from mathforge.cli.grade import print_summary
    from mathforge.evaluate import EvalConfig, evaluate
    from mathforge.grade_outputs import GradeConfig, grade_outputs

    monkeypatch.setenv("COLUMNS", "80")  # a pipe or an 80-column terminal
    m = evaluate(EvalConfig(model="m", benchmarks=["gsm8k"], limit=10, n=4, temperature=0.7, workers=1,
                            out_dir=str(tmp_path / "run")), _Answers(lambda p: "The answer is 1."))
    eval_cli._print_summary(m, "run")
    text = capsys.readouterr().out
    for whole in ("acc % [95% Wilson]", "0.0 [0.0, 27.8]", "pass@k %", "@4 0.0", "mean@n %", "0.0 (n=4)", "tok/s"):
        assert whole in text, whole
    assert "…" not in text
    s = grade_outputs(GradeConfig(tmp_path / "run" / "outputs.jsonl", tmp_path / "g", progress=False))
    print_summary(s, tmp_path / "g")
    text = capsys.readouterr().out
    assert "0.0  [0.0, 27.8] Wilson 95%" in text and "bootstrap" not in text and "…" not in text
