"""End to end through the real path: train -> save -> load with plain HF -> greedy decode -> grade,
plus the run's outputs (metrics JSONL, TensorBoard, loss-curve PNG, resolved config), the
difficulty objective inside the loop, and the quickstart report on a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tiny_lm import TINY_TRAIN_OVERRIDES  # noqa: E402

from mathforge.train.config import config_from_dict, load_recipe  # noqa: E402
from mathforge.train.loop import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = TINY_TRAIN_OVERRIDES
ROWS = [("7+5=", "7 + 5 = 12 #### 12"), ("3*4=", "3 * 4 = 12 #### 12"), ("9-2=", "9 - 2 = 7 #### 7"),
        ("6*6=", "6 * 6 = 36 #### 36")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(tmp_path: Path, difficulty: bool = False) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"question": q, "response": r, **({"difficulty": i % 3 + 1} if difficulty else {})})
                            + "\n" for i, (q, r) in enumerate(ROWS)))
    return path


def test_memorise_save_load_generate_grade(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathforge.train.dataset import read_examples
    from mathforge.train.evaluation import exact_match

    data = _data(tmp_path)
    cfg = config_from_dict({
        "out_dir": str(tmp_path / "run"), "threads": 1, "progress": False, "log_every": 5, "checkpoint_every": 40,
        "data": {"task": "file", "train_file": str(data), "n_eval": 0, "seq_len": 64, "prompt_template": "{question}"},
        "model": {"preset": "nano", "overrides": TINY},
        "optim": {"micro_batch_size": 1, "max_steps": 120, "lr": 1e-2, "schedule": "wsd", "warmup_ratio": 0.05},
        "eval": {"n_problems": 0},
    })
    folder = train(cfg)
    out = tmp_path / "run"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 120 and rows[0]["loss"] > 5 * rows[-1]["loss"]
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert any((out / "tensorboard").iterdir())
    assert json.loads((out / "config.json").read_text())["optim"]["schedule"] == "wsd"
    assert not (out / "checkpoints" / "step_0000120").exists()  # the final state lives in model/
    # plain HF loads it (no mathforge code); greedy decoding + grading reproduce the training answers
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    examples = read_examples(data, "{question}")
    res = exact_match(model, tok, examples, max_new_tokens=24, keep_samples=True)
    assert res["accuracy"] == 1.0 and res["n_problems"] == 4, res["samples"]
    assert res["samples"][0]["gold"] == "12" and res["samples"][0]["completion"] == "7 + 5 = 12 #### 12"
    assert res["ci95_wilson"][0] > 0.4 and res["ci95_wilson"][1] == 1.0
    # a wrong answer is graded wrong: same prompts, golds shifted by one
    for ex in examples:
        ex.answer = str(int(ex.answer) + 1)
    assert exact_match(model, tok, examples, max_new_tokens=24)["accuracy"] == 0.0


@pytest.mark.parametrize("mode", ["upsample", "weight"])
def test_difficulty_objective_runs_in_the_loop(tmp_path, mode):
    data = _data(tmp_path, difficulty=True)
    cfg = config_from_dict({
        "out_dir": str(tmp_path / mode), "objective": "difficulty", "threads": 1, "progress": False, "log_every": 1,
        "checkpoint_every": 0,
        "data": {"task": "file", "train_file": str(data), "n_eval": 0, "seq_len": 64, "prompt_template": "{question}",
                 "packing": False},
        "model": {"preset": "nano", "overrides": TINY},
        "difficulty": {"mode": mode, "base": 0, "factor": 1, "weight_norm": "sequence" if mode == "weight" else "token"},
        "optim": {"micro_batch_size": 2, "epochs": 1.0}, "eval": {"n_problems": 0},
    })
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / mode / "metrics.jsonl").read_text().splitlines()]
    # levels 1,2,3,1 -> upsampling gives 7 rows = 3 steps of 2 in one epoch; weighting keeps 4 rows
    # (2 steps) for max(1, round(7 / 4)) = 2 epochs (the visits rule of docs/methods/sdat.md §b.4) = 4 steps
    assert rows[-1]["step"] == (3 if mode == "upsample" else 4)


def _load_with_stand_ins(path, overrides, tmp_path):
    """load_recipe; an input written by an earlier stage under `runs/` gets a stand-in file."""
    import re

    overrides = dict(overrides)
    for _ in range(4):
        try:
            return load_recipe(path, overrides=overrides)
        except FileNotFoundError as exc:
            m = re.search(r": ([\w.]+)='(runs/[^']+)': no such file", str(exc))
            assert m, exc                    # only earlier stages' outputs may be missing
            stand_in = tmp_path / m.group(2).replace("/", "_")
            stand_in.write_text("")
            overrides[m.group(1)] = str(stand_in)
    raise AssertionError(f"{path}: too many missing inputs")


def test_shipped_recipes_validate(tmp_path):
    """Every shipped recipe loads. A stage recipe whose input is written by an earlier stage under
    `runs/` (the TSMC experiment's value data) names that file in its error; it then validates
    with a stand-in file in its place (the command that chains the stages passes the real one)."""
    for path in sorted((REPO / "recipes").glob("*.toml")):
        cfg = _load_with_stand_ins(path, {}, tmp_path)
        assert cfg.optim.max_steps > 0 or cfg.optim.epochs > 0, path


def test_recipe_header_commands_validate(tmp_path):
    """The `mathforge train RECIPE --set ...` commands written in recipe headers (full-size GPU
    settings beside a reduced recipe) name their own recipe and give a valid config."""
    import shlex

    from mathforge.train.config import parse_override

    seen = 0
    for path in sorted((REPO / "recipes").glob("*.toml")):
        header = [ln.lstrip("# ") for ln in path.read_text().splitlines() if ln.startswith("#")]
        commands, tail = [], ""
        for line in header:  # a trailing backslash continues a command on the next comment line
            tail = f"{tail} {line}" if tail else line
            if tail.endswith("\\"):
                tail = tail[:-1]
            else:
                commands.append(tail)
                tail = ""
        for line in commands:
            if "mathforge train" not in line or "--set" not in line:
                continue
            args = shlex.split(line.split("mathforge train", 1)[1])
            assert args[0] == f"recipes/{path.name}", (path, args[0])
            sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
            cfg = _load_with_stand_ins(path, dict(parse_override(s) for s in sets), tmp_path)
            assert cfg.optim.max_steps > 0 or cfg.optim.epochs > 0, path
            seen += 1
    assert seen >= 5  # the ICoT recipes' GPU settings at least


def test_quickstart_tiny_budget_writes_report(tmp_path):
    import copy

    from mathforge.quickstart import quickstart
    from mathforge.quickstart_search import SEARCH_DEFAULTS

    search = copy.deepcopy(SEARCH_DEFAULTS)
    search.update(n=4, m=2, value_problems=6, k=4)
    search["value"]["optim"]["max_steps"] = 2
    search["value"]["data"]["n_eval"] = search["value"]["eval"]["n_problems"] = 2
    report = quickstart(tmp_path / "qs", steps=6, overrides={
        "threads": 1, "progress": False, "data.n_train": 200, "data.n_eval": 8, "eval.n_problems": 8,
        "eval.max_new_tokens": 40, "model.overrides": TINY}, search=search)
    text = report.read_text()
    assert "| SFT, greedy |" in text and "| MFT, greedy |" in text and "95% CI" in text
    assert (tmp_path / "qs" / "accuracy.png").stat().st_size > 1000
    assert (tmp_path / "qs" / "loss_curves.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "qs" / "summary.json").read_text())
    assert set(summary["results"]) == {"sft", "mft"} and summary["results"]["mft"]["n_problems"] == 8
    training = (tmp_path / "qs" / "training" / "report.md").read_text()  # both runs' training report
    assert "| sft | sft |" in training and "| mft | mft |" in training and "training/report.html" in text
    s = summary["search"]  # what sampling, the value model and TSMC add, on the same held-out problems
    assert s["n"] == 4 and s["n_problems"] == 8
    rows = s["rows"]
    for rule in ("maj", "bon", "wvote", "tsmc"):
        assert 0 <= rows[rule]["accuracy"] <= rows["pass"]["accuracy"] <= 1
        lo, hi = rows[rule]["ci95_wilson"]
        assert lo <= rows[rule]["accuracy"] <= hi
    scored = [json.loads(x) for x in (tmp_path / "qs" / "search" / "scored" / "outputs.jsonl").read_text().splitlines()]
    assert len(scored) == 8 and all(len(r["samples"]) == 4 for r in scored)
    for r in scored:  # the value-model rules see the plain run's very samples
        assert [x["text"] for x in r["samples"]] == [x["text"] for x in _outputs(tmp_path, r["problem_id"])["samples"]]
    held = {r["question"] for r in scored}  # the value model never trained on a held-out problem
    assert not held & {json.loads(x)["prompt"] for x in
                       (tmp_path / "qs" / "search" / "value_data.jsonl").read_text().splitlines()}
    assert "maj@4" in text and "pass@4" in text and "TSMC" in text and "What to run next" in text


def _outputs(tmp_path, problem_id):
    lines = (tmp_path / "qs" / "search" / "sample" / "outputs.jsonl").read_text().splitlines()
    return next(r for r in map(json.loads, lines) if r["problem_id"] == problem_id)


def test_read_examples_keeps_a_line_separator_inside_a_json_string(tmp_path):
    """U+2028 (present in GSM8K train) is written raw by json.dumps(ensure_ascii=False); it must not
    end a JSONL line."""
    import json

    from mathforge.train.dataset import read_examples

    path = tmp_path / "d.jsonl"
    recs = [{"question": "a\u2028b?", "response": "c\u2029d"}, {"question": "e?", "response": "f"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    exs = read_examples(path, "{question}", ("question", "response"))
    assert [(e.prompt, e.response) for e in exs] == [("a\u2028b?", "c\u2029d"), ("e?", "f")]
    assert exs[1].meta["id"] == f"{path}:2"
