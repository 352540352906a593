"""Bad recipes and bad data fail before training, with an error naming the key, file or line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mathforge.train.config import RunConfig, load_recipe, parse_override

REPO = Path(__file__).resolve().parents[1]

GOOD = """
out_dir = "{out}"
objective = "sft"
threads = 1
progress = false
[data]
task = "file"
train_file = "{data}"
n_eval = 2
seq_len = {seq_len}
prompt_template = "{{question}}"
[model]
preset = "nano"
overrides = {{ hidden_size = 32, intermediate_size = 64, num_hidden_layers = 1, num_attention_heads = 2, num_key_value_heads = 2 }}
[optim]
micro_batch_size = 2
max_steps = 2
[eval]
n_problems = 0
"""


def _write(tmp_path: Path, body: str, name: str = "r.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _data(tmp_path: Path, n: int = 8, long: int = 0) -> Path:
    path = tmp_path / "d.jsonl"
    rows = [{"question": f"{i}+1=", "response": f"{i + 1}"} for i in range(n)]
    if long:
        rows.append({"question": "big", "response": "9" * long})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(tmp_path, seq_len=64, **kw) -> Path:
    data = kw.get("data") or _data(tmp_path)
    return _write(tmp_path, GOOD.format(out=tmp_path / "out", data=data, seq_len=seq_len))


def test_good_recipe_loads_and_resolves(tmp_path):
    cfg = load_recipe(_recipe(tmp_path))
    assert isinstance(cfg, RunConfig) and cfg.data.seq_len == 64 and cfg.optim.max_steps == 2
    assert cfg.model.overrides["hidden_size"] == 32
    assert Path(cfg.data.train_file).is_absolute()
    cfg = load_recipe(_recipe(tmp_path), {"optim.lr": 5e-4, "mft.p_max": 0.3})
    assert cfg.optim.lr == 5e-4 and cfg.mft.p_max == 0.3
    assert parse_override("optim.lr=3e-4") == ("optim.lr", 3e-4)
    assert parse_override("objective=mft") == ("objective", "mft")


@pytest.mark.parametrize("edit, match", [
    (("[optim]", "[optim]\nlearning_rate = 0.1"), r"unknown key 'optim.learning_rate'"),
    (('objective = "sft"', 'objectiv = "sft"'), r"unknown key 'objectiv'"),
    (("max_steps = 2", 'max_steps = "2"'), r"key 'optim.max_steps' must be int, got str"),
    (("seq_len = 64", "seq_len = 6.5"), r"key 'data.seq_len' must be int, got float"),
    (("progress = false", "progress = 1"), r"key 'progress' must be bool"),
    (('objective = "sft"', 'objective = "dpo"'), r"objective='dpo' is not one of"),
    (("[model]", "model = 3\n[x]"), r"unknown key 'x'|key 'model'"),
    (("max_steps = 2", "max_steps = 2\nschedule = 'linear'"), r"optim.schedule='linear'"),
])
def test_bad_keys_and_types_name_the_key_and_file(tmp_path, edit, match):
    path = _recipe(tmp_path)
    path.write_text(path.read_text().replace(*edit, 1))
    with pytest.raises((KeyError, ValueError)) as info:
        load_recipe(path)
    assert str(path) in str(info.value)
    assert pytest.importorskip("re").search(match, str(info.value)), str(info.value)


def test_missing_data_file_is_named(tmp_path):
    path = _write(tmp_path, GOOD.format(out=tmp_path / "o", data=tmp_path / "nope.jsonl", seq_len=64))
    with pytest.raises(FileNotFoundError, match=r"data.train_file=.*nope.jsonl.*no such file"):
        load_recipe(path)
    with pytest.raises(FileNotFoundError, match="recipe .*absent.toml"):
        load_recipe(tmp_path / "absent.toml")


def test_empty_dataset_and_too_long_sequence_fail_before_training(tmp_path):
    pytest.importorskip("torch")
    from mathforge.train.loop import train

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    cfg = load_recipe(_write(tmp_path, GOOD.format(out=tmp_path / "o1", data=empty, seq_len=64)))
    with pytest.raises(ValueError, match=r"empty.jsonl: empty dataset"):
        train(cfg)
    long = _data(tmp_path, long=200)
    cfg = load_recipe(_write(tmp_path, GOOD.format(out=tmp_path / "o2", data=long, seq_len=64)))
    with pytest.raises(ValueError, match=r"d.jsonl:9: .*more than max_len=64.*data.seq_len"):
        train(cfg)
    assert not (tmp_path / "o2" / "checkpoints").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1="}\n')
    cfg = load_recipe(_write(tmp_path, GOOD.format(out=tmp_path / "o3", data=bad, seq_len=64)))
    with pytest.raises(ValueError, match=r"bad.jsonl:1: needs string fields"):
        train(cfg)


def test_cli_reports_bad_recipe_in_one_line(tmp_path):
    path = _recipe(tmp_path)
    path.write_text(path.read_text().replace("[optim]", "[optim]\nlr = 'fast'", 1))
    proc = subprocess.run([sys.executable, "-m", "mathforge", "train", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "key 'optim.lr' must be float, got str" in proc.stderr and "Traceback" not in proc.stderr
