"""`mathforge task-files`: a synthetic task written as a fixed pool and held-out set that the training
loop reads back as the same examples, with no held-out prompt in training and no task difficulty
that the SDAT objective would mistake for a base-model level."""

from __future__ import annotations

import json

from mathforge.data.task_files import write_task_files
from mathforge.data.tasks import generate_task
from mathforge.train.dataset import read_examples


def test_task_files_round_trip_through_the_loops_reader(tmp_path):
    args = {"digits": [1, 2], "n_ops": [1, 3]}
    info = write_task_files(tmp_path, "arithmetic", n_train=60, n_eval=20, seed=3, args=args)
    train = [json.loads(x) for x in (tmp_path / "train.jsonl").read_text().splitlines()]
    held = [json.loads(x) for x in (tmp_path / "heldout.jsonl").read_text().splitlines()]
    assert len(held) == 20 and info["n_train"] == len(train) == 60 - info["dropped_as_held_out"]
    assert not {r["question"] for r in train} & {r["question"] for r in held}
    assert all("difficulty" not in r and r["source"] == "arithmetic" and {"n_ops", "digits"} <= set(r) for r in train)
    gen = generate_task("arithmetic", 80, seed=3, args=args)
    read = read_examples(tmp_path / "heldout.jsonl")  # default template "{question}\n"
    assert [(e.prompt, e.response, e.answer) for e in read] == [(g.prompt, g.response, g.answer) for g in gen[:20]]
    assert all(e.difficulty is None for e in read)


def test_task_files_cli_refuses_bad_arguments(tmp_path, capsys):
    from mathforge.cli import main

    assert main(["task-files", "arithmetic", "--n-train", "0", "--n-eval", "5", "--out", str(tmp_path)]) == 2
    assert "n_train must be >= 1" in capsys.readouterr().err
    assert main(["task-files", "arithmetic", "--n-train", "5", "--n-eval", "5", "--task-args", "[1]",
                 "--out", str(tmp_path)]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["task-files", "arithmetic", "--n-train", "5", "--n-eval", "2", "--task-args", '{"digits": 1}',
                 "--out", str(tmp_path / "ok")]) == 0
    assert len((tmp_path / "ok" / "heldout.jsonl").read_text().splitlines()) == 2
