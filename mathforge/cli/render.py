"""`mathforge render`: print rendered training examples with the trained spans marked `[[...]]`.

Shows exactly what the model is trained on (architecture principle 4): the tokens of the prompt
as plain text and every token with a label inside `[[...]]` (with `{w=...}` when its weight is
not 1). Sources: a synthetic task (`--task mult --k 4`), a data file (`--data FILE`, read as the
training loop reads it), or a recipe (`--recipe FILE`, its data section end to end).
"""

from __future__ import annotations

import argparse

TASK_CHOICES = ("mult", "multiplication", "arith", "arithmetic", "gsm8k", "gsm8k_icot")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="print rendered training examples with the trained span marked",
                              description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", choices=TASK_CHOICES, help="a synthetic or bundled task")
    src.add_argument("--data", help="a training file (.jsonl question/response, or .txt `q||cot #### a` lines)")
    src.add_argument("--recipe", help="a TOML recipe: render its data section as training would")
    p.add_argument("--n", type=int, default=2, help="how many examples to print (default 2)")
    p.add_argument("--k", type=int, default=4, help="operand digits for --task mult (default 4)")
    p.add_argument("--ops", type=int, default=None, help="operations per expression for --task arith")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", help="split for --task gsm8k_icot (train/valid/test)")
    p.add_argument("--style", default="alpaca", help="prompt style for --task gsm8k (default alpaca)")
    p.add_argument("--tokenizer", default=None, help="a local tokenizer folder (default: char tokenizer "
                   "built from the printed examples)")
    p.add_argument("--kind", choices=("char", "bpe"), default="char", help="tokenizer kind to build")
    p.add_argument("--max-len", type=int, default=None, help="error on examples longer than this")
    p.add_argument("--tokens", action="store_true", help="also print one row per token: id, text, label, weight")


def _examples(args: argparse.Namespace) -> list:
    from mathforge.data.tasks import get_task

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.data:
        from mathforge.train.dataset import read_examples

        return read_examples(args.data)[: args.n]
    task = args.task
    if task in ("mult", "multiplication"):
        return get_task("mult")(args.k, args.n, args.seed)
    if task in ("arith", "arithmetic"):
        kwargs = {} if args.ops is None else {"n_ops": args.ops}
        return get_task("arith")(args.n, args.seed, **kwargs)
    if task == "gsm8k":
        return get_task("gsm8k")(style=args.style, limit=args.n)
    return get_task("gsm8k_icot")(args.split, limit=args.n)


def _recipe(args: argparse.Namespace):
    from mathforge.train.config import load_recipe
    from mathforge.train.dataset import prepare_data

    cfg = load_recipe(args.recipe)
    tokenizer = _load_tokenizer(args.tokenizer or cfg.model.init) if (args.tokenizer or cfg.model.init) else None
    data = prepare_data(cfg, tokenizer)
    return data.tokenizer, data.train[: args.n]


def _load_tokenizer(path: str):
    from pathlib import Path

    from transformers import AutoTokenizer

    from mathforge.models import pretrained

    if pretrained.is_pretrained_name(path):
        path = str(pretrained.resolve_model(path))
    if not Path(path).is_dir():
        raise FileNotFoundError(f"tokenizer folder not found: {path}")
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def _token_table(r, tokenizer) -> str:
    lines = [f"{'pos':>4} {'id':>6}  {'token':<12} {'label':>6} {'weight':>6}"]
    for t, (tok, lab, w) in enumerate(zip(r.input_ids, r.labels, r.weights, strict=True)):
        text = repr(tokenizer.decode([tok], skip_special_tokens=False))
        lines.append(f"{t:>4} {tok:>6}  {text:<12} {lab:>6} {w:>6g}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mathforge.data.render import render, show_rendered
    from mathforge.data.tokenizer import build_tokenizer

    if args.recipe:
        tokenizer, rendered = _recipe(args)
    else:
        examples = _examples(args)
        if args.tokenizer:
            tokenizer = _load_tokenizer(args.tokenizer)
        else:
            tokenizer = build_tokenizer([t for ex in examples for t in (ex.prompt, ex.response)], kind=args.kind)
        rendered = [render(ex, tokenizer, max_len=args.max_len, index=i) for i, ex in enumerate(examples)]
    for i, r in enumerate(rendered):
        name = r.meta.get("id", f"#{i}")
        print(f"--- example {name}: {len(r)} tokens, prompt {r.prompt_len}, trained {r.n_targets}")
        print(show_rendered(r, tokenizer))
        if args.tokens:
            print(_token_table(r, tokenizer))
    return 0
