"""Tasks: the exact ICoT multiplication format, train/eval disjointness, arithmetic steps, GSM8K."""

import re
from pathlib import Path

import pytest

from mathforge.data.tasks import get_task, load_icot_file, to_line
from mathforge.data.tasks import multiplication as mult
from mathforge.data.tasks.arithmetic import arithmetic, solve_steps
from mathforge.data.tasks.gsm8k import gsm8k_icot, gsm8k_train, natural_cot, read_train_jsonl

DATA = Path(__file__).resolve().parents[1] / "data"
LINE_LEN = {4: 131, 5: 195, 7: 359, 9: 571}


@pytest.mark.parametrize("k", [4, 5, 7, 9])
def test_generator_reproduces_every_shipped_line(k):
    for split in ("valid", "test"):
        lines = (DATA / "multiplication" / f"{k}x{k}" / f"{split}.txt").read_text().splitlines()
        assert len(lines) == 1000
        for line in lines:
            a, b = mult.parse_operands(line)
            ex = mult.make_example(a, b, k)
            assert to_line(ex) == line
            assert len(line) == LINE_LEN[k]
            assert ex.answer == "#### " + mult.digits_reversed(a * b, 2 * k)
            assert mult.parse_reversed(ex.answer[5:]) == a * b


def test_example_fields_and_nocot_layout():
    ex = mult.make_example(2967, 6361, 4)
    assert ex.prompt == "7 6 9 2 * 1 6 3 6||"
    assert ex.response.endswith(" #### 7 8 0 3 7 8 8 1") and ex.response.startswith("7 6 9 2 0 + ")
    assert ex.answer == "#### 7 8 0 3 7 8 8 1" and ex.difficulty == 4.0
    nocot = mult.make_example(2967, 6361, 4, cot=False)
    assert nocot.prompt == ex.prompt and nocot.response == "#### 7 8 0 3 7 8 8 1"
    with pytest.raises(ValueError, match="exactly 4 digits"):
        mult.make_example(999, 1234, 4)


def test_training_data_is_disjoint_from_shipped_eval_sets():
    shipped = mult.shipped_pairs(4)
    assert len(shipped) > 1900
    train = mult.multiplication(4, 5000, seed=1)
    pairs = {(ex.meta["a"], ex.meta["b"]) for ex in train}
    assert len(pairs) == 5000 and not pairs & shipped
    assert all(len(to_line(ex)) == 131 for ex in train)
    assert [ex.prompt for ex in mult.multiplication(4, 50, seed=1)] == [ex.prompt for ex in train[:50]]


def test_exclusion_is_enforced_when_it_matters(monkeypatch):
    # 2x2 has only 8100 pairs: exclude all but ten and the generator must return exactly those ten,
    # both for an explicit set and for the default (the shipped pairs of that size).
    everything = {(a, b) for a in range(10, 100) for b in range(10, 100)}
    allowed = set(sorted(everything)[::810][:10])
    got = {(e.meta["a"], e.meta["b"]) for e in mult.multiplication(2, 10, 3, exclude=everything - allowed)}
    assert got == allowed
    monkeypatch.setattr(mult, "shipped_pairs", lambda k: everything - allowed)
    got = {(e.meta["a"], e.meta["b"]) for e in mult.multiplication(2, 10, 4)}
    assert got == allowed
    with pytest.raises(ValueError, match="only 10 exist"):
        mult.multiplication(2, 11, 0)


def test_icot_loader_round_trips_and_names_bad_lines(tmp_path):
    path = DATA / "multiplication" / "5x5" / "test.txt"
    exs = load_icot_file(path, limit=20)
    assert [to_line(e) for e in exs] == path.read_text().splitlines()[:20]
    assert exs[0].meta["id"] == "test-1" and exs[0].answer.startswith("#### ")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 * 2||2 #### 2\n\nno separator here\n")
    with pytest.raises(ValueError, match=r"bad.txt:3: expected one '\|\|'"):
        load_icot_file(bad)


def test_arithmetic_steps_are_correct_and_difficulty_tracks_knobs():
    exs = arithmetic(300, seed=0, n_ops=(1, 5), digits=(1, 3))
    for ex in exs:
        expr = ex.prompt.removeprefix("Compute: ").strip()
        value = eval(expr)  # operands are plain non-negative integers with + - *
        *steps, final = ex.response.split("\n")
        assert final == f"#### {value}" and ex.answer == str(value)
        assert len(steps) == ex.meta["n_ops"] == expr.count(" ") // 2
        for step in steps:
            lhs, rhs = step.split(" = ")
            assert eval(lhs) == int(rhs)
        nums = [int(t) for t in re.findall(r"\d+", expr)]
        assert max(len(str(v)) for v in nums) == ex.meta["digits"]
        assert ex.difficulty == ex.meta["n_ops"] * ex.meta["digits"]
    assert {ex.meta["n_ops"] for ex in exs} == {1, 2, 3, 4, 5}
    assert [e.prompt for e in arithmetic(5, seed=0, n_ops=(1, 5), digits=(1, 3))] == [e.prompt for e in exs[:5]]
    fixed = arithmetic(20, seed=2, n_ops=3, digits=2)
    assert all(e.difficulty == 6.0 for e in fixed)


def test_precedence_order_of_steps():
    steps, value = solve_steps([2, 3, 4, 5], ["+", "*", "-"])
    assert steps == ["3 * 4 = 12", "2 + 12 = 14", "14 - 5 = 9"] and value == 9
    with pytest.raises(ValueError, match="operands"):
        solve_steps([1, 2], ["+", "+"])


def test_gsm8k_train_examples():
    exs = gsm8k_train()
    assert len(exs) == 7473
    gold = {rid: sol for rid, _, sol in read_train_jsonl()}
    for ex in exs:
        assert "<<" not in ex.response and ">>" not in ex.response
        assert ex.response.startswith(" ") and ex.prompt.endswith("### Response:")
        assert ex.response.rstrip().endswith(f"#### {gold[ex.meta['id']].split('####')[1].strip()}")
        assert ex.answer == gold[ex.meta["id"]].split("####")[1].strip().replace(",", "")
    assert exs[0].response == (" Natalia sold 48/2 = 24 clips in May.\n"
                               "Natalia sold 48+24 = 72 clips altogether in April and May.\n#### 72")
    assert len(gsm8k_train(exclude_icot_valid=True)) == 7473 - 500


def test_gsm8k_icot_files_and_the_cot_rules():
    test = gsm8k_icot("test")
    assert len(test) == 1319 and test[0].answer == "#### 18"
    assert test[0].response == "<<16-3-4=9>> <<9*2=18>> #### 18"
    assert sum(e.response.startswith(" ####") for e in test) == 18  # empty CoT lines
    valid = gsm8k_icot("valid")
    rebuilt = gsm8k_icot("valid", cot="equations")  # equation-only rule reproduces the file
    assert [to_line(e) for e in rebuilt] == [to_line(e) for e in valid]
    train = gsm8k_icot("train")
    sol = {q: s for _, q, s in read_train_jsonl()}
    same = sum(e.response.split(" ####")[0] == natural_cot(sol[e.prompt[:-2]]) for e in train)
    assert len(train) == 6973 and same >= 6965  # docs/data.md: 8 lines differ in whitespace runs only
    assert gsm8k_icot("train", cot="none", limit=1)[0].response.startswith("#### ")


def test_generate_entry_points_and_registry():
    from mathforge.data.tasks import arithmetic as ar
    from mathforge.data.tasks import gsm8k

    assert len(mult.generate(3, seed=0, k=5)) == 3
    assert ar.generate(4, seed=1, n_ops=2)[0].meta["n_ops"] == 2
    a, b = gsm8k.generate(10, seed=0), gsm8k.generate(10, seed=0)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    with pytest.raises(ValueError, match="7473"):
        gsm8k.generate(8000, seed=0)
    assert get_task("mult") is mult.multiplication
    with pytest.raises(ValueError, match="unknown task"):
        get_task("sudoku")
