"""Training throughput: the mathforge loop (packed rows, block-diagonal attention, global token-mean
loss) against the HF `Trainer` with padding (the usual user setup), same model, data and examples
per step, side by side in one process on CPU.

Reports real (non-pad) tokens/s of each, the packing efficiency (real tokens / row capacity) and
MFU against a measured fp32 matmul peak of this machine (model FLOPs = 6 x parameters per token,
attention excluded, so MFU is a lower bound). The last line printed is one JSON object.

    python bench/train_throughput.py [--steps 30] [--threads 2] [--examples-per-step 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time


def matmul_peak_gflops(threads: int, n: int = 1024, reps: int = 20) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def build(args):
    from mathforge.data.render import render
    from mathforge.data.tasks.arithmetic import arithmetic
    from mathforge.data.tokenizer import build_tokenizer
    from mathforge.models.presets import build_model

    # Varied lengths (1-6 operations of 1-3 digits) make padding cost what it costs in practice.
    examples = arithmetic(args.examples_per_step * (args.steps + 5), seed=0, n_ops=(1, 6), digits=(1, 3))
    tok = build_tokenizer([e.prompt + e.response for e in examples])
    rendered = [render(e, tok) for e in examples]
    return tok, rendered, lambda: build_model(args.preset, tok, seed=0)


def bench_mathforge(args, tok, rendered, make_model) -> dict:
    """Our loop's step (accumulate_gradients + clip + AdamW) on packed rows of `seq_len`."""
    import torch
    from accelerate import Accelerator

    from mathforge.data.packing import collate_packed, pack, packing_stats
    from mathforge.train.config import RunConfig
    from mathforge.train.loop import _make_optimizer, accumulate_gradients
    from mathforge.train.objectives import StepContext, sft

    acc = Accelerator(cpu=True)
    model = make_model()
    opt = _make_optimizer(model, RunConfig().optim)
    k = args.examples_per_step
    # As the loop does (train/schedule.py): pack the whole pool of examples once, best-fit, then
    # shuffle the rows and hand out the same number of rows each step. The pool is exactly the
    # examples the Trainer sees, and a step holds about as many real tokens as the Trainer's.
    lengths = [len(r) for r in rendered]
    pool = list(range(k * (args.steps + 1)))
    all_rows = [[pool[j] for j in grp] for grp in pack([lengths[i] for i in pool], args.seq_len)]
    random.Random(0).shuffle(all_rows)
    per_step = max(1, round(len(all_rows) / (args.steps + 1)))
    steps_rows = [all_rows[s * per_step : (s + 1) * per_step] for s in range(args.steps + 1)]
    steps_rows = [rows for rows in steps_rows if rows]
    eff = packing_stats(lengths, all_rows, args.seq_len)["efficiency"]
    tokens, start = 0, 0.0
    for s, rows in enumerate(steps_rows):
        if s == 1:
            start, tokens = time.perf_counter(), 0  # step 0 is warm-up
        batch = collate_packed([[rendered[i] for i in row] for row in rows], args.seq_len, tok.pad_token_id)
        accumulate_gradients(model, [batch], sft.loss, lambda _k: StepContext(cfg=None), acc)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += sum(lengths[i] for row in rows for i in row)
    secs = time.perf_counter() - start
    return {"tok_per_s": tokens / secs, "packing_efficiency": eff, "rows_per_step": len(all_rows) / len(steps_rows)}


def bench_trainer(args, tok, rendered, make_model) -> dict:
    """HF Trainer, per-device batch = the same examples, padded to the longest (DataCollatorForSeq2Seq)."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    k = args.examples_per_step
    data = [{"input_ids": r.input_ids, "attention_mask": [1] * len(r), "labels": r.labels}
            for r in rendered[: k * (args.steps + 1)]]
    timer = {}

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, _control, **_kw):
            if state.global_step == 1:
                timer["start"] = time.perf_counter()  # skip the first (warm-up) step

    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(output_dir=tmp, per_device_train_batch_size=k, max_steps=args.steps + 1,
                                  learning_rate=1e-3, report_to=[], save_strategy="no", logging_strategy="no",
                                  use_cpu=True, dataloader_num_workers=0, seed=0, disable_tqdm=True)
        trainer = Trainer(model=make_model(), args=targs, train_dataset=data, callbacks=[Clock()],
                          data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100))
        trainer.train()
    secs = time.perf_counter() - timer["start"]
    # The Trainer shuffles, but every step holds k examples of the same pool; use the pool mean.
    tokens = sum(len(r) for r in rendered[: k * (args.steps + 1)]) * args.steps / (args.steps + 1)
    return {"tok_per_s": tokens / secs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--examples-per-step", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--preset", default="nano")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops(args.threads)
    tok, rendered, make_model = build(args)
    n_params = sum(p.numel() for p in make_model().parameters())
    # Alternate the two, best of `repeats` each: on a shared machine, load swings between phases
    # would otherwise decide the ratio.
    runs_ours, runs_hf = [], []
    for _ in range(args.repeats):
        runs_ours.append(bench_mathforge(args, tok, rendered, make_model))
        runs_hf.append(bench_trainer(args, tok, rendered, make_model))
    ours = max(runs_ours, key=lambda r: r["tok_per_s"])
    hf = max(runs_hf, key=lambda r: r["tok_per_s"])
    flops_per_token = 6 * n_params
    result = {
        "bench": "train_throughput", "preset": args.preset, "params": n_params, "threads": args.threads,
        "examples_per_step": args.examples_per_step, "seq_len": args.seq_len, "repeats": args.repeats,
        "mathforge_tok_s": round(ours["tok_per_s"]), "trainer_tok_s": round(hf["tok_per_s"]),
        "speedup": round(ours["tok_per_s"] / hf["tok_per_s"], 3),
        "packing_efficiency": round(ours["packing_efficiency"], 4),
        "matmul_peak_gflops": round(peak, 1),
        "mfu_mathforge": round(ours["tok_per_s"] * flops_per_token / (peak * 1e9), 4),
        "mfu_trainer": round(hf["tok_per_s"] * flops_per_token / (peak * 1e9), 4),
    }
    print(f"mathforge {result['mathforge_tok_s']:,} tok/s  |  HF Trainer (padding) {result['trainer_tok_s']:,} tok/s  "
          f"|  x{result['speedup']}  |  packing efficiency {result['packing_efficiency']:.1%}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
