"""Build `bench/data/real_outputs.jsonl`: real model outputs on GSM8K test, labelled by hand.

Not run by the bench or the tests (nothing is downloaded at run time); kept so the extraction can
be checked and repeated. It reads two public files, each MIT-licensed, from local copies:

- `openai/grade-school-math` `grade_school_math/data/example_model_solutions.jsonl`
  (commit 3ab487330c1f3c28650d4bcd30bb51d33a14d404): GPT-3 6B and 175B solutions, fine-tuned and
  verifier-ranked, for every GSM8K test problem, each ending in `A: <answer>`, with the dataset's
  own automatic `is_correct`.
- `microsoft/ToRA` `src/outputs/llm-agents/{tora-70b-v1.0,tora-code-34b-v1.0}/gsm8k/
  test_tora_-1_seed0_t0.0_s0_e1319.jsonl` (commit aeb21126d28347f595d87f2822cb92bfe32f00e8):
  ToRA-70B and ToRA-Code-34B tool-integrated solutions with ToRA's extracted `pred`.
- `yuchenlin/ZeroEval` `result_dirs/math-l5/*.json` (commit 570c626, Apache-2.0): zero-shot
  answers of 40 chat models (GPT-4o, Claude 3/3.5, Gemini 1.5, Llama 3/3.1, Qwen2/2.5, Gemma 2,
  Yi 1.5, Phi-3, ...) to MATH level-5 problems whose gold is an integer
  (AI-MO/aimo-validation-math-level-5). The model's `answer` field is the prediction.

Rows are chosen deterministically (seed 0): every answer that is not a plain integer, every
prediction a factor of 100 away from the gold (the percent trap), every solution without an
answer, and a random sample of plain-integer answers, right and wrong. The label of each row was
decided by a person reading it (`LABEL_SOURCE`); `HAND_NOTES` records the rows where reading
mattered. `source_label` keeps the dataset's own automatic verdict where it has one.

For MATH, rows are drawn from distinct (gold, answer) pairs. Most come from answers that contain
the gold's digits without equalling it, or that are not integers. A few more are other integers
or exact matches. Problems that ask for "all possible values" are dropped: that dataset keeps
only one integer of a longer answer, e.g. "10879" for b = ±10879.

    python bench/data/make_real_outputs.py OPENAI_FILE TORA70_FILE TORACODE34_FILE ZEROEVAL_MATH_L5_DIR
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("real_outputs.jsonl")
LABEL_SOURCE = "hand-labelled by mathforge dev, 2026-12"
OPENAI = ("openai/grade-school-math@3ab48733 grade_school_math/data/example_model_solutions.jsonl", "MIT")
TORA = ("microsoft/ToRA@aeb21126 src/outputs/llm-agents/{m}/gsm8k/test_tora_-1_seed0_t0.0_s0_e1319.jsonl",
        "MIT")
OPENAI_MODELS = {"6b_finetuning": "GPT-3 6B fine-tuned", "6b_verification": "GPT-3 6B + verifier",
                 "175b_finetuning": "GPT-3 175B fine-tuned", "175b_verification": "GPT-3 175B + verifier"}
TORA_MODELS = {"tora-70b-v1.0": "ToRA-70B", "tora-code-34b-v1.0": "ToRA-Code-34B"}
_INT = re.compile(r"-?\d+")
MAX_RESPONSE = 700

# Rows where the verdict needed more than comparing two integers, as read by hand.
HAND_NOTES = {
    "factor100": "a factor of 100 from the gold; no percent in the question's answer: wrong",
    "comma": "thousands separator; the same number",
    "no_answer": "generation cut off or looping; no final answer",
    "decimal": "a decimal answer to an integer-valued question, not equal to the gold",
    "decimal_equal": "a decimal equal to the integer gold",
}


# Predictions that are not plain numbers, each read by hand: id -> (label, note).
HAND_LABELS = {
    "gsm8k-openai/6b_finetuning/507": (False, "'-1.8 billion' against 2: wrong"),
    "gsm8k-openai/175b_finetuning/931": (False, "an expression in John's age, not a number: wrong"),
    "gsm8k-openai/6b_finetuning/1001": (False, "1/5 against 2: wrong"),
    "gsm8k-openai/175b_finetuning/1144": (False, "7/14 = 1/2 against 34: wrong"),
    "gsm8k-tora/tora-70b-v1.0/116": (False, "840/13 (about 64.6) against 42: wrong"),
    "gsm8k-tora/tora-70b-v1.0/146": (False, "ToRA's extraction returned program text: no answer"),
    "gsm8k-tora/tora-code-34b-v1.0/146": (False, "ToRA's extraction returned program text: no answer"),
}


def _number(s: str | None) -> float | None:
    if s is None:
        return None
    try:
        return float(s.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _verdict(gold: str, pred: str | None) -> tuple[bool, str]:
    """The label a reader gives a GSM8K answer (a number), with the note when it is not obvious."""
    g, p = _number(gold), _number(pred)
    if pred is None:
        return False, HAND_NOTES["no_answer"]
    if p is None:
        raise ValueError(f"read by hand: gold {gold!r} pred {pred!r}")
    correct = abs(p - g) < 1e-9
    if not correct and g and (abs(p - 100 * g) < 1e-9 or abs(100 * p - g) < 1e-9):
        return False, HAND_NOTES["factor100"]
    if "," in pred:
        return correct, HAND_NOTES["comma"] if correct else ""
    if not _INT.fullmatch(pred.strip()):
        return correct, HAND_NOTES["decimal_equal"] if correct else HAND_NOTES["decimal"]
    return correct, ""


def _openai_rows(path: Path, rng: random.Random) -> list[dict]:
    special, plain_right, plain_wrong = [], [], []
    for i, line in enumerate(path.open()):
        rec = json.loads(line)
        gold = rec["ground_truth"].split("A:")[-1].strip()
        for key, model in OPENAI_MODELS.items():
            sol = rec[key]["solution"]
            pred = sol.split("A:")[-1].strip() if "A:" in sol else None
            rid = f"gsm8k-openai/{key}/{i}"
            label, note = HAND_LABELS[rid] if rid in HAND_LABELS else _verdict(gold, pred)
            row = {"id": rid, "benchmark": "gsm8k", "model": model,
                   "source": OPENAI[0], "licence": OPENAI[1], "gold": gold,
                   "response": sol[-MAX_RESPONSE:], "pred": pred, "label": label,
                   "label_source": LABEL_SOURCE, "source_label": bool(rec[key]["is_correct"]),
                   "note": note}
            if note and note != HAND_NOTES["decimal"] or pred is None:
                special.append(row)
            elif note == HAND_NOTES["decimal"]:
                plain_wrong.append(("decimal", row))
            elif label:
                plain_right.append(row)
            else:
                plain_wrong.append(("int", row))
    decimals = [r for kind, r in plain_wrong if kind == "decimal"]
    ints_wrong = [r for kind, r in plain_wrong if kind == "int"]
    return (special + rng.sample(decimals, 60) + rng.sample(plain_right, 100)
            + rng.sample(ints_wrong, 60))


def _tora_final_text(code: str) -> str:
    """The model's closing text: from its last program output to the end."""
    k = code.rfind("```output")
    return (code[k:] if k >= 0 else code)[-MAX_RESPONSE:]


def _tora_rows(paths: dict[str, Path], rng: random.Random) -> list[dict]:
    special, plain_right, plain_wrong = [], [], []
    for m, path in paths.items():
        for rec in map(json.loads, path.open()):
            gold, pred = str(rec["gt"]), str(rec["pred"][0])
            rid = f"gsm8k-tora/{m}/{rec['idx']}"
            label, note = HAND_LABELS[rid] if rid in HAND_LABELS else _verdict(gold, pred)
            row = {"id": rid, "benchmark": "gsm8k", "model": TORA_MODELS[m],
                   "source": TORA[0].format(m=m), "licence": TORA[1], "gold": gold,
                   "response": _tora_final_text(rec["code"][0]), "pred": pred, "label": label,
                   "label_source": LABEL_SOURCE, "source_label": None, "note": note}
            if note:
                special.append(row)
            elif label:
                plain_right.append(row)
            else:
                plain_wrong.append(row)
    return special + rng.sample(plain_right, 60) + rng.sample(plain_wrong, 30)


ZEROEVAL = ("yuchenlin/ZeroEval@570c626 result_dirs/math-l5/{m}.json", "Apache-2.0")
_ALL_VALUES = re.compile(r"Enter all|separated by commas|all possible values", re.I)
_ZE_PICK = (("contains_gold", 150), ("other", 80), ("int_other", 40), ("exact", 40))
# Answers that are not the gold string but were read as correct (all other non-identical answers
# were read as wrong): a chain ending in the gold, the gold with a unit, a percent sign where the
# question asks for a percent, a labelled value, a sentence stating the gold, `10.0`, `\u2212128`.
ZEROEVAL_CORRECT = {
    "Llama-3.1-405B-Inst@sambanova/12", "Mistral-Large-2/144", "Mistral-Large-2/241", "Mistral-Large-2/681",
    "Phi-3-mini-4k-instruct/598", "Phi-3-mini-4k-instruct/662", "Qwen2.5-3B-Instruct/10",
    "Qwen2.5-3B-Instruct/144", "Yi-1.5-34B-Chat/115", "Yi-1.5-34B-Chat/144", "Yi-1.5-34B-Chat/184",
    "Yi-1.5-34B-Chat/200", "Yi-1.5-34B-Chat/23", "Yi-1.5-34B-Chat/241", "Yi-1.5-34B-Chat/574",
    "Yi-1.5-34B-Chat/643", "Yi-1.5-34B-Chat/653", "Yi-1.5-34B-Chat/98", "Yi-1.5-9B-Chat/82",
    "claude-3-opus-20240229/112", "gemma-2-2b-it/103", "gemma-2-2b-it/143",
}
# Correct answers in another notation found outside the random draw (thousands separators, a
# dollar sign, the base subscript of a base-b answer, a percent sign where a percent is asked,
# chains, units, `10.0`, a labelled value, sentences stating the gold), each read as correct.
ZEROEVAL_EXTRA = (
    "Meta-Llama-3-70B-Instruct/629", "Meta-Llama-3-70B-Instruct/682",
    "Meta-Llama-3.1-8B-Instruct/270", "Mistral-Large-2/144", "Phi-3-mini-4k-instruct/508",
    "Phi-3-mini-4k-instruct/643", "Phi-3.5-mini-instruct/134", "Qwen2-72B-Instruct/603",
    "Qwen2.5-32B-Instruct/544", "Yi-1.5-34B-Chat/177", "Yi-1.5-34B-Chat/543",
    "Yi-1.5-34B-Chat/638", "Yi-1.5-9B-Chat/133", "chatgpt-4o-latest-24-09-07/148",
    "claude-3-5-sonnet-20240620/184", "claude-3-haiku-20240307/12", "claude-3-haiku-20240307/156",
    "claude-3-haiku-20240307/204", "gemma-2-2b-it/177", "gpt-3.5-turbo-0125/144",
)


def _zeroeval_answer(output: str) -> str | None:
    """The last `answer` field the model wrote (the ZeroEval prompt asks for a JSON block; some
    models write several, and the last one is their final answer)."""
    values = []
    for m in re.finditer(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)', output):
        try:
            values.append(str(json.loads(m.group(1))))
        except json.JSONDecodeError:
            values.append(m.group(1).strip('"'))
    return values[-1] if values else None


def _zeroeval_rows(folder: Path, rng: random.Random) -> list[dict]:
    cats: dict[str, list] = {k: [] for k, _ in _ZE_PICK}
    by_id = {}
    for path in sorted(folder.glob("*.json")):
        for rec in json.loads(path.read_text()):
            pred = _zeroeval_answer(rec["output"][0] if rec["output"] else "")
            if pred is None:
                continue
            gold, key = rec["answer"], f"{path.stem}/{rec['id']}"
            item = (key, path.stem, gold, pred, rec)
            by_id[key] = item
            if pred.strip() == gold:
                cats["exact"].append(item)
            elif _INT.fullmatch(pred.strip()):
                cats["int_other"].append(item)
            elif re.search(r"(?<![\d.])" + re.escape(gold.lstrip("-")) + r"(?!\d)", pred):
                cats["contains_gold"].append(item)
            else:
                cats["other"].append(item)
    picked = []
    for cat, n in _ZE_PICK:
        seen, pool = set(), []
        for item in cats[cat]:
            if (item[2], item[3].strip()) not in seen:
                seen.add((item[2], item[3].strip()))
                pool.append(item)
        rng.shuffle(pool)
        picked += [(cat, item) for item in pool[:n]]
    drawn = {item[0] for _, item in picked}
    picked += [("extra", by_id[k]) for k in ZEROEVAL_EXTRA if k not in drawn]
    rows = []
    for cat, (key, model, gold, pred, rec) in picked:
        if _ALL_VALUES.search(rec["problem"]):
            continue
        label = cat in ("exact", "extra") or key in ZEROEVAL_CORRECT
        rows.append({"id": f"math-l5-zeroeval/{key}", "benchmark": "math", "model": model,
                     "source": ZEROEVAL[0].format(m=model), "licence": ZEROEVAL[1], "gold": gold,
                     "response": rec["output"][0][-MAX_RESPONSE:], "pred": pred, "label": label,
                     "label_source": LABEL_SOURCE, "source_label": None,
                     "note": "" if cat == "exact" else ("read as correct" if label else "read as wrong"),
                     "question": rec["problem"]})
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__)
        return 2
    rng = random.Random(0)
    rows = _openai_rows(Path(argv[0]), rng)
    rows += _tora_rows({"tora-70b-v1.0": Path(argv[1]), "tora-code-34b-v1.0": Path(argv[2])}, rng)
    rows += _zeroeval_rows(Path(argv[3]), random.Random(0))
    with OUT.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows, {sum(r['label'] for r in rows)} correct -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
