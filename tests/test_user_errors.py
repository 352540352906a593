"""A user's mistake gets one line that names the file, flag or folder and what to do, never a
traceback, and before any model is loaded; train says what it resolved, when it resumes and when
it has nothing to do. (Ctrl-C during eval: tests/test_eval_e2e.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathforge.cli import main

ROWS = [("7+5=", "7 + 5 = 12 #### 12"), ("3*4=", "3 * 4 = 12 #### 12"), ("9-2=", "9 - 2 = 7 #### 7")]
RECIPE = """
threads = 1
progress = false
log_every = 1
checkpoint_every = 2
[data]
task = "file"
train_file = "d.jsonl"
n_eval = 0
seq_len = 64
prompt_template = "{{question}}"
[model]
preset = "nano"
overrides = {{ hidden_size = 32, intermediate_size = 64, num_hidden_layers = 2, num_attention_heads = 2, num_key_value_heads = 2 }}
[optim]
micro_batch_size = 1
max_steps = {steps}
[eval]
n_problems = 0
"""


def _recipe(tmp_path: Path, steps: int = 4) -> Path:
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"question": q, "response": r}) + "\n" for q, r in ROWS))
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(steps=steps))
    return path


def _run(argv: list[str], capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _fake_run_folder(tmp_path: Path) -> Path:
    """What `mathforge train` leaves: its own config.json (the recipe) and the HF folder model/."""
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": 0, "objective": "sft"}))
    (run / "model" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return run


def test_model_init_missing_or_a_run_folder(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    rc, err = _run(["train", recipe, "--out", tmp_path / "o", "--set", "model.init=missing-dir"], capsys)
    assert rc == 2 and "model.init: model folder not found: missing-dir" in err
    run = _fake_run_folder(tmp_path)
    rc, err = _run(["train", recipe, "--out", tmp_path / "o", "--set", f"model.init={run}"], capsys)
    assert rc == 2 and f"did you mean {run / 'model'}?" in err
    assert not (tmp_path / "o").exists()  # refused before anything was read, built or written


def test_shared_tokenizer_dir_is_used_as_is_or_refused_clearly(tmp_path, capsys):
    """`data.tokenizer_dir`: a saved tokenizer replaces the one a run would build from its data (so
    two runs on different data share one vocabulary); a folder without one, or one set beside
    `model.init`, is refused before anything is built."""
    from transformers import AutoTokenizer

    from mathforge.data.tokenizer import build_tokenizer

    recipe = _recipe(tmp_path, steps=1)
    rc, err = _run(["train", recipe, "--out", tmp_path / "o", "--set", f"data.tokenizer_dir={tmp_path}"], capsys)
    assert rc == 2 and f"data.tokenizer_dir: {tmp_path}: no tokenizer.json" in err
    shared = build_tokenizer(["Zebra quagga xylophone 7+5=12"], kind="char")  # letters the data lacks
    shared.save_pretrained(tmp_path / "tok")
    rc, err = _run(["train", recipe, "--out", tmp_path / "o", "--set", f"data.tokenizer_dir={tmp_path / 'tok'}",
                    "--set", "model.init=x"], capsys)
    assert rc == 2 and "data.tokenizer_dir and model.init are both set" in err
    rc, _ = _run(["train", recipe, "--out", tmp_path / "o", "--set", f"data.tokenizer_dir={tmp_path / 'tok'}"], capsys)
    assert rc == 0
    saved = AutoTokenizer.from_pretrained(tmp_path / "o" / "model").get_vocab()
    assert saved == shared.get_vocab() and "Z" in saved and "q" in saved


def test_eval_of_a_run_folder_says_which_model_folder(tmp_path, capsys):
    run = _fake_run_folder(tmp_path)
    rc, err = _run(["eval", "--model", run, "--benchmark", "gsm8k", "--limit", "1", "--quiet",
                    "--out", tmp_path / "e"], capsys)
    assert rc == 2 and f"is a training run folder, not a model folder; did you mean {run / 'model'}?" in err


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_eval_limit_must_be_positive_and_errors_name_flags(tmp_path, capsys, limit):
    rc, err = _run(["eval", "--model", "nowhere", "--benchmark", "gsm8k", "--limit", limit, "--out", tmp_path], capsys)
    assert rc == 2 and "--limit must be a positive int" in err and "EvalConfig" not in err
    rc, err = _run(["eval", "--model", "nowhere", "--benchmark", "gsm8k", "--temperature", "-1", "--out", tmp_path],
                   capsys)
    assert rc == 2 and "--temperature must be >= 0" in err  # before the (missing) model is looked at
    rc, err = _run(["eval", "--model", "nowhere", "--benchmark", "gsm8k", "--shots", "100", "--out", tmp_path], capsys)
    assert rc == 2 and "asked for shots=100" in err
    from mathforge.data import load_benchmark

    with pytest.raises(ValueError, match="limit must be a positive integer"):
        load_benchmark("gsm8k", limit=int(limit))


def test_set_typo_blames_the_flag_not_the_recipe(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    rc, err = _run(["train", recipe, "--set", "optim.lrr=1"], capsys)
    assert rc == 2 and "error: --set optim.lrr=1: unknown key 'optim.lrr'" in err and str(recipe) not in err
    assert "\"" not in err  # no quotes added by KeyError's str()
    rc, err = _run(["train", recipe, "--set", "optim.lr='fast'"], capsys)
    assert rc == 2 and "--set optim.lr='fast': key 'optim.lr' must be float" in err
    recipe.write_text(recipe.read_text().replace("max_steps", "max_step"))
    rc, err = _run(["train", recipe, "--set", "optim.lr=1e-3"], capsys)
    assert rc == 2 and f"{recipe}: unknown key 'optim.max_step'" in err and "--set" not in err


@pytest.mark.usefixtures("one_torch_thread")
def test_train_prints_config_resume_and_nothing_to_do(tmp_path, capsys):
    pytest.importorskip("torch")
    recipe, out = _recipe(tmp_path), tmp_path / "o"
    rc, err = _run(["train", recipe, "--out", out], capsys)
    assert rc == 0 and "resolved config" in err and "[optim]" in err and "4 steps" in err
    assert "resuming" not in err
    rc, err = _run(["train", recipe, "--out", out], capsys)
    assert rc == 0 and "already finished" in err and "nothing to do" in err and "--no-resume" in err
    # another config in the same folder finds the step-2 checkpoint of the first: CLI terms in the error
    rc, err = _run(["train", recipe, "--out", out, "--set", "optim.lr=5e-4"], capsys)
    assert rc == 2 and "different config" in err and "--no-resume" in err and "resume=false" not in err
    # a longer run of the same config resumes from that checkpoint (the step-4 state is model/, not one)
    (out / "done.json").unlink()
    rc, err = _run(["train", recipe, "--out", out], capsys)
    assert rc == 0 and "resuming from" in err and "step 2 of 4" in err


def test_files_that_are_not_utf8_or_empty_are_named(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": 1, "response": "ok", "gold": "1"}\n{"id": 2, "response": "caf\xe9", "gold": "2"}\n')
    rc, err = _run(["grade", bad, "--gold-field", "gold", "--out", tmp_path / "g1"], capsys)
    assert rc == 2 and f"{bad}:2: not UTF-8 text (byte 0xe9 at column 27)" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    rc, err = _run(["grade", empty, "--gold-field", "gold", "--out", tmp_path / "g2"], capsys)
    assert rc == 2 and f"{empty}: no records" in err
    recipe = _recipe(tmp_path)
    (tmp_path / "d.jsonl").write_bytes(b'{"question": "1+1=", "response": "\xff"}\n')
    rc, err = _run(["train", recipe, "--out", tmp_path / "o"], capsys)
    assert rc == 2 and "d.jsonl:1: not UTF-8 text (byte 0xff" in err


def test_training_file_used_as_eval_file_says_why_nothing_is_left(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    rc, err = _run(["train", recipe, "--out", tmp_path / "o", "--set", f"data.eval_file='{tmp_path / 'd.jsonl'}'",
                    "--set", "data.n_eval=10"], capsys)
    assert rc == 2 and "all 3 training prompts are also held-out prompts" in err
