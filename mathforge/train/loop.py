"""The one training loop (architecture principle 2), on HF `accelerate`.

Every objective (sft, mft, difficulty, ...) is a function `loss(model, batch, ctx) -> (loss_sum,
n_tokens, metrics)`; the loop owns the maths that is easy to get wrong, in one place:

- gradient accumulation normalised by the TRUE token count of the whole accumulated global batch
  (docs/methods/README.md §0 `global_token_mean`): each micro-batch back-propagates its *summed* token loss,
  the token counts are summed over micro-batches and all-reduced over processes, and the
  accumulated gradients are divided once by that total. 1 micro-batch of 8 and 8 of 1 give the same
  update however unequal the sample lengths;
- DDP (`accelerate launch` / torchrun, gloo on CPU): every process takes its own slice of the
  same global batch; DDP averages gradients, so the scale is `processes / total_tokens`;
- exact resume: data order is a function of (seed, step) (`BatchPlan`), MFT masks are seeded per
  (step, micro-batch, rank), and checkpoints hold model, optimizer, scheduler and RNG states;
- the objective seams of `mathforge.train.objectives` (auxiliary modules, a per-step row
  transform, stage hooks with optimizer reset, named loss terms, best-checkpoint selection) are
  run here and nowhere else, and resume stays exact through all of them.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mathforge import faults
from mathforge.train.config import RunConfig


def accumulate_gradients(model: Any, micro_batches: Sequence[dict[str, Any]], loss_fn: Callable,
                         make_ctx: Callable[[int], Any], accelerator: Any,
                         counts_fn: Callable | None = None, params: Sequence[Any] | None = None,
                         ) -> tuple[float, float, dict]:
    """Forward/backward all micro-batches of one optimizer step and leave gradients equal to
    d(sum of weighted token losses over the global batch)/d(theta) / (global weighted token count).

    With `counts_fn` (an objective of named terms) each term is divided by its own global count
    instead (see `_accumulate_terms`). `params` (default: the model's) are the tensors whose
    gradients are scaled. Returns (global loss, global count of the first term, metrics of the
    last micro-batch).
    """
    import torch

    if counts_fn is not None:
        return _accumulate_terms(model, micro_batches, loss_fn, make_ctx, accelerator, counts_fn)

    loss_local = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    tokens_local = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    metrics: dict = {}
    for k, batch in enumerate(micro_batches):
        last = k == len(micro_batches) - 1
        # Only the last backward of the step all-reduces gradients (DDP no_sync for the rest).
        sync = contextlib.nullcontext() if last else accelerator.no_sync(model)
        with sync:
            with accelerator.autocast():
                loss_sum, n_tokens, metrics = loss_fn(model, batch, make_ctx(k))
            accelerator.backward(loss_sum)  # sum, not mean: normalised once below
        loss_local += loss_sum.detach().double()
        tokens_local += torch.as_tensor(n_tokens, device=accelerator.device).double()
    totals = accelerator.reduce(torch.stack([loss_local, tokens_local]), reduction="sum")  # [2]
    total_loss, total_tokens = float(totals[0]), float(totals[1])
    # DDP already divided the summed gradients by the process count; undo that and divide by tokens.
    scale = accelerator.num_processes / max(total_tokens, 1e-12)
    for p in (model.parameters() if params is None else params):
        if p.grad is not None:
            p.grad.mul_(scale)
    return total_loss / max(total_tokens, 1e-12), total_tokens, metrics


def _accumulate_terms(model: Any, micro_batches: Sequence[dict[str, Any]], loss_fn: Callable,
                      make_ctx: Callable[[int], Any], accelerator: Any, counts_fn: Callable) -> tuple[float, float, dict]:
    """Named loss terms, each normalised by its own global count: the counts of every term are
    summed over the step's micro-batches and all processes *before* any forward (they depend on
    the batch only), then each micro-batch back-propagates `sum_name term_sum / count_name`
    (times the process count, which DDP's gradient averaging divides out again)."""
    import torch

    local = [counts_fn(batch, make_ctx(k)) for k, batch in enumerate(micro_batches)]
    names = list(local[0])
    counts = torch.tensor([[float(c[n]) for n in names] for c in local], dtype=torch.float64,
                          device=accelerator.device).sum(0)  # [terms]
    counts = accelerator.reduce(counts, reduction="sum")
    norms = {n: max(float(c), 1e-12) for n, c in zip(names, counts, strict=True)}
    sums = torch.zeros(len(names), dtype=torch.float64, device=accelerator.device)  # [terms]
    metrics: dict = {}
    for k, batch in enumerate(micro_batches):
        last = k == len(micro_batches) - 1
        sync = contextlib.nullcontext() if last else accelerator.no_sync(model)
        ctx = make_ctx(k)
        ctx.norms = norms
        with sync:
            with accelerator.autocast():
                terms, metrics = loss_fn(model, batch, ctx)
            unknown = sorted(set(terms) - set(names))
            if unknown:
                raise KeyError(f"objective returned loss term(s) {unknown} that its counts() did not name")
            total = sum(terms[n] / norms[n] for n in terms)
            accelerator.backward(total * accelerator.num_processes)
        for i, n in enumerate(names):
            if n in terms:
                sums[i] += terms[n].detach().double()
    sums = accelerator.reduce(sums, reduction="sum")
    means = {n: float(sums[i]) / norms[n] for i, n in enumerate(names)}
    metrics = {**metrics, **{f"loss_{n}": v for n, v in means.items()}}
    return sum(means.values()), float(counts[0]), metrics


def _make_optimizer(model: Any, optim: Any, aux: Any = None) -> Any:
    """AdamW; no weight decay on vectors (norm gains, biases), as is usual for transformers.
    Trainable parameters of the objective's auxiliary modules (`aux`) join the same groups."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if aux is not None:
        params += [p for p in aux.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps)


def _build_model(cfg: RunConfig, tokenizer: Any, objective: Any = None) -> Any:
    """The model to train, its weights in `cfg.model.dtype` (fp32 by default) whatever dtype an
    `init` folder was saved in: transformers loads a bf16 folder in bf16, and AdamW on bf16 weights
    rounds small updates away."""
    import torch

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.model.dtype]
    if hasattr(objective, "build_model"):  # e.g. a value model whose trunk is the generator's
        return objective.build_model(cfg, tokenizer).to(dtype)
    if cfg.model.init:
        from mathforge.models.loading import load_model

        model, _ = load_model(cfg.model.init, dtype=dtype)
        return model
    from mathforge.models.presets import build_model

    model = build_model(cfg.model.preset, tokenizer, seed=cfg.seed, **cfg.model.overrides)
    if cfg.data.seq_len > model.config.max_position_embeddings:
        raise ValueError(f"data.seq_len={cfg.data.seq_len} exceeds the model's max_position_embeddings="
                         f"{model.config.max_position_embeddings} (set model.overrides.max_position_embeddings)")
    return model.to(dtype)


def check_paths(cfg: RunConfig) -> None:
    """Every model (or tokenizer) folder the run reads exists and is one (not its training run folder), before any
    data is read or model built; transformers would take a missing path for a Hub repo id."""
    from mathforge.models.loading import check_model_folder

    tok_dir = cfg.data.tokenizer_dir
    if tok_dir and cfg.model.init:
        raise ValueError("data.tokenizer_dir and model.init are both set: a model.init folder brings its own tokenizer")
    named = [("model.init", cfg.model.init)]
    if cfg.objective.startswith("icot_kd"):
        named += [(f"icot_kd.{k}", getattr(cfg.icot_kd, k)) for k in ("teacher", "student", "emulator")]
    for key, path in named:
        if path:
            try:
                check_model_folder(path)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"{key}: {exc}") from None
    if tok_dir and not (Path(tok_dir, "tokenizer.json").is_file() or Path(tok_dir, "tokenizer_config.json").is_file()):
        raise FileNotFoundError(f"data.tokenizer_dir: {tok_dir}: no tokenizer.json or tokenizer_config.json "
                                "(not a saved tokenizer folder)")


def _load_tokenizer(cfg: RunConfig) -> Any:
    from mathforge.train.objectives import get_objective

    hook = getattr(get_objective(cfg.objective), "tokenizer", None)
    if hook is not None:  # e.g. a distillation student must share its teacher's ids
        return hook(cfg)
    folder = cfg.model.init or cfg.data.tokenizer_dir
    if not folder:
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


class _Run:
    """State of one training run; methods are the loop's phases (kept short and separate)."""

    def __init__(self, cfg: RunConfig):
        import torch
        from accelerate import Accelerator

        from mathforge.train.dataset import prepare_data
        from mathforge.train.objectives import get_objective
        from mathforge.train.schedule import BatchPlan

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.acc = Accelerator(mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available())
        self.out = Path(cfg.out_dir)
        self.objective = get_objective(cfg.objective)
        load = getattr(self.objective, "load_data", prepare_data)
        self.data = load(cfg, _load_tokenizer(cfg))  # every data error is raised here, first
        self.tok = self.data.tokenizer
        rows_per_step = cfg.optim.micro_batch_size * cfg.optim.grad_accum * self.acc.num_processes
        epochs_hook = getattr(self.objective, "epochs", None)  # e.g. SDAT weighting: visits rule
        epochs = (epochs_hook(self.data.train_examples, cfg) if epochs_hook else None) or cfg.optim.epochs
        self.plan = BatchPlan([len(r) for r in self.data.train], seq_len=cfg.data.seq_len,
                              packing=cfg.data.packing, rows_per_step=rows_per_step, seed=cfg.seed,
                              epochs=epochs, max_steps=cfg.optim.max_steps)
        setup = getattr(self.objective, "setup", None)
        self.state = setup(self.data, self.plan, cfg) if setup else None
        model = _build_model(cfg, self.tok, self.objective)
        self.vocab_base = len(self.tok)  # MFT random noise: the vocabulary before any added token (docs/methods/mft.md §a.2)
        if hasattr(self.objective, "prepare"):
            self.objective.prepare(model, self.tok, cfg)  # e.g. the <mask> row = mean embedding
        aux_fn = getattr(self.objective, "aux_modules", None)
        aux = aux_fn(model, self.tok, cfg, self.state) if aux_fn else {}
        self.aux = torch.nn.ModuleDict(aux).to(self.acc.device) if aux else None
        # Only modules with trainable parameters are saved: frozen ones (a teacher) are rebuilt by
        # `aux_modules` from their source on resume, so checkpoints do not carry a copy of them.
        trained = {k: m for k, m in aux.items() if any(p.requires_grad for p in m.parameters())}
        self.aux_saved = torch.nn.ModuleDict(trained) if trained else None
        optimizer = _make_optimizer(model, cfg.optim, self.aux)
        from torch.optim.lr_scheduler import LambdaLR

        from mathforge.train.schedule import lr_lambda

        self.scheduler = LambdaLR(optimizer, lr_lambda(cfg.optim, self.plan.total_steps))
        self.model, self.optimizer = self.acc.prepare(model, optimizer)
        # saved and restored by the accelerator's save_state/load_state with the model and optimizer
        # (the scheduler is not prepared: accelerate would step it once per process)
        self.acc.register_for_checkpointing(self.scheduler, *([self.aux_saved] if self.aux_saved is not None else []))
        self.step = 0

    def resume(self) -> None:
        from mathforge.train.checkpoint import latest_checkpoint, load_checkpoint

        folder = latest_checkpoint(self.out / "checkpoints") if self.cfg.resume else None
        if folder is None:
            return
        state = load_checkpoint(folder, self.acc, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                aux=self.aux_saved)
        if state.get("config_hash") != _config_hash(self.cfg):
            raise ValueError(f"{folder}: checkpoint was written by a different config; write to a new "
                             "folder (--out) or start over (--no-resume; resume = false in a recipe)")
        self.step = int(state["step"])
        if tuple(state["data_position"]) != self.plan.position(self.step):
            raise ValueError(f"{folder}: data position {state['data_position']} does not match the plan")
        _say(self.acc, f"resuming from {folder} (step {self.step} of {self.plan.total_steps}); "
                       "--no-resume starts over")

    def micro_batches(self, step: int) -> tuple[list[dict[str, Any]], int]:
        """This process's micro-batches for `step` and the number of real tokens they hold."""
        from mathforge.data.packing import collate_packed, collate_padded

        cfg, rank = self.cfg, self.acc.process_index
        per_rank = cfg.optim.micro_batch_size * cfg.optim.grad_accum
        rows = self.plan.global_rows(step)[rank * per_rank : (rank + 1) * per_rank]
        transform = getattr(self.objective, "transform", None)
        out, tokens = [], 0
        for k in range(cfg.optim.grad_accum):
            chunk = [[self.data.train[i] for i in row] for row in rows[k * cfg.optim.micro_batch_size :][
                : cfg.optim.micro_batch_size]]
            if transform is not None:  # e.g. CoT removal: rows only get shorter, so they still fit
                chunk = transform(chunk, self.context(step, k))
            tokens += sum(len(r) for row in chunk for r in row)
            if hasattr(self.objective, "collate"):  # whole problems (value objectives)
                batch = self.objective.collate([row[0] for row in chunk], self.tok.pad_token_id)
            elif cfg.data.packing:
                batch = collate_packed(chunk, cfg.data.seq_len, self.tok.pad_token_id)
            else:
                batch = collate_padded([row[0] for row in chunk], self.tok.pad_token_id)
            out.append({k2: v.to(self.acc.device) for k2, v in batch.items()})
        return out, tokens

    def context(self, step: int, k: int) -> Any:
        from mathforge.train.objectives import StepContext

        tok = self.tok
        return StepContext(cfg=self.cfg, step=step, total_steps=self.plan.total_steps, micro_index=k,
                           micro_per_step=self.cfg.optim.grad_accum, rank=self.acc.process_index,
                           seed=self.cfg.seed, pad_id=tok.pad_token_id, mask_id=tok.mask_token_id,
                           vocab_base=self.vocab_base, special_ids=tuple(tok.all_special_ids),
                           state=self.state, aux=self.aux)

    def _params(self) -> list[Any]:
        params = list(self.model.parameters())
        return params + list(self.aux.parameters()) if self.aux is not None else params

    def _sync_aux_grads(self) -> None:
        """Average the auxiliary modules' gradients over processes (DDP syncs only the model)."""
        if self.aux is None or self.acc.num_processes == 1:
            return
        for p in self.aux.parameters():
            if p.grad is not None:
                p.grad.copy_(self.acc.reduce(p.grad, reduction="mean"))

    def maybe_reset_optimizer(self) -> bool:
        """Stage hook: clear the optimizer's moments before the first step of a new stage."""
        stage = getattr(self.objective, "stage", None)
        if stage is None or self.step == 0 or stage(self.step, self.state) == stage(self.step - 1, self.state):
            return False
        if not self.objective.resets_optimizer(self.cfg):
            return False
        self.optimizer.state.clear()  # a fresh AdamW: moments and step counts rebuilt lazily
        return True

    def train_step(self) -> dict[str, Any]:
        # from_pretrained returns eval mode (no dropout), so does an evaluation; the objective's
        # auxiliary modules keep the mode their objective gave them (a frozen teacher stays in eval)
        self.model.train()
        reset = self.maybe_reset_optimizer()
        batches, tokens = self.micro_batches(self.step)
        step = self.step
        pre = {}
        if hasattr(self.objective, "prepare_step"):  # a no-gradient pass over the whole step (CTL pass 1)
            pre = self.objective.prepare_step(self.model, batches, self.context(step, 0))
        loss, n_tok, metrics = accumulate_gradients(self.model, batches, self.objective.loss,
                                                    lambda k: self.context(step, k), self.acc,
                                                    getattr(self.objective, "counts", None), self._params())
        self._sync_aux_grads()
        grad_norm = self.acc.clip_grad_norm_(self._params(), self.cfg.optim.grad_clip)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        # every scalar an objective reports is logged (from pass 1 and from the last micro-batch)
        extra = {k: v for k, v in {**metrics, **pre}.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if getattr(self.objective, "stage", None) is not None:
            extra.update(stage=self.objective.stage(step, self.state), optimizer_reset=reset)
        if self.acc.num_processes > 1:
            import torch

            tokens = int(self.acc.reduce(torch.tensor(float(tokens), device=self.acc.device), reduction="sum"))
        return {"loss": loss, "lr": lr, "grad_norm": float(grad_norm), "target_tokens": n_tok,
                "tokens": tokens, **extra}

    def evaluate(self, final: bool = False) -> dict[str, Any]:
        """Held-out metrics (main process only); the model is back in training mode afterwards."""
        if not self.data.eval_examples or not self.acc.is_main_process:
            return {}
        model = self.acc.unwrap_model(self.model)
        model.eval()
        try:
            return self._evaluate(model, final)
        finally:
            model.train()

    def _evaluate(self, model: Any, final: bool) -> dict[str, Any]:
        from mathforge.train.evaluation import eval_loss, exact_match

        if hasattr(self.objective, "evaluate"):  # e.g. the value model's AUC and calibration
            return {f"eval_{k}" if not k.startswith("eval") else k: v
                    for k, v in self.objective.evaluate(model, self.data, self.cfg).items()}
        ev = self.cfg.eval
        held = self.data.eval
        if (transform := getattr(self.objective, "transform", None)) is not None:  # scheduled, no noise
            ctx = self.context(max(self.step - 1, 0), 0)
            ctx.evaluating = True
            held = [r for row in transform([[r] for r in held], ctx) for r in row]
        out = {"eval_loss": eval_loss(model, held, seq_len=self.cfg.data.seq_len, pad_id=self.tok.pad_token_id)}
        if ev.n_problems:
            res = exact_match(model, self.tok, self.data.eval_examples[: ev.n_problems],
                              max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size,
                              extract_style=self.cfg.data.extract_style, keep_samples=final)
            out.update(eval_accuracy=res["accuracy"], eval_ci95_wilson=res["ci95_wilson"],
                       eval_n_problems=res["n_problems"])
            if final:
                _write_jsonl(self.out / "eval_samples.jsonl", res["samples"])
            self.track_best(model, res["accuracy"])
        return out

    def track_best(self, model: Any, accuracy: float) -> None:
        """Keep `best_model/` = the most accurate evaluated model among the steps the objective
        calls selectable (`selectable` hook; objectives without it keep no best model)."""
        selectable = getattr(self.objective, "selectable", None)
        if selectable is None or not selectable(max(self.step - 1, 0), self.state):
            return
        best_file = self.out / "best.json"
        best = json.loads(best_file.read_text()) if best_file.is_file() else None
        if best is not None and best["accuracy"] >= accuracy:
            return
        model.save_pretrained(self.out / "best_model")
        self.tok.save_pretrained(self.out / "best_model")
        best_file.write_text(json.dumps({"step": self.step, "accuracy": accuracy}))

    def checkpoint(self) -> None:
        from mathforge.train.checkpoint import save_checkpoint

        meta = {"data_position": list(self.plan.position(self.step)), "config_hash": _config_hash(self.cfg)}
        save_checkpoint(self.out / "checkpoints", self.acc, step=self.step, meta=meta, keep=self.cfg.keep_checkpoints)

    def save_final(self) -> Path:
        target = self.out / "model"
        self.acc.wait_for_everyone()
        state_dict = self.acc.get_state_dict(self.model)  # collective: gathers FSDP/ZeRO-3 shards
        if self.acc.is_main_process:
            model = self.acc.unwrap_model(self.model)
            model.save_pretrained(target, state_dict=state_dict)
            self.tok.save_pretrained(target)
            (target / "mathforge_config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
            if self.aux_saved is not None:
                import torch

                torch.save(self.aux_saved.state_dict(), target / "aux_modules.pt")
        self.acc.wait_for_everyone()
        return target


# MFT options added after the first MFT checkpoints were written (docs/methods/mft.md §a.3, §a.8)
_MFT_LATER = ("schedule_unit", "warmup_micro_batches", "attend_to_noise", "dropout_q", "neftune_alpha", "embed_scope",
              "sampling", "sampling_temperature", "soft_weight")


def _config_hash(cfg: RunConfig) -> str:
    """Hash of everything that changes the numbers (not where they are written or how often)."""
    import hashlib

    d = cfg.to_dict()
    for key in ("out_dir", "resume", "progress", "log_every", "checkpoint_every", "keep_checkpoints", "threads"):
        d.pop(key, None)
    later = [("model", "dtype"), ("data", "overlong")] + [("mft", k) for k in _MFT_LATER]
    defaults = RunConfig().to_dict()
    for section, key in later:
        if d[section][key] == defaults[section][key]:  # options added later: at their default, older hashes hold
            d[section].pop(key)
    d.pop("eval", None)
    for section, objectives in (("icot_si", ("icot_si",)), ("icot_kd", ("icot_kd_student", "icot_kd_emulator", "icot_kd_coupled"))):
        if cfg.objective not in objectives:  # a method's section only counts for its own runs (older hashes hold)
            d.pop(section, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _say(acc: Any, text: str) -> None:
    if acc.is_main_process:
        print(f"mathforge train: {text}", file=sys.stderr)


def _data_stats(run: _Run) -> dict[str, Any]:
    return {"train_rows": len(run.data.train), "held_out": len(run.data.eval),
            "train_tokens": sum(len(r) for r in run.data.train), "overlong": run.data.overlong,
            "seq_len": run.cfg.data.seq_len, "overlong_policy": run.cfg.data.overlong}


def describe_run(cfg: RunConfig, run: _Run, stats: dict[str, Any] | None = None) -> str:
    """The resolved config, one line per section, and what it amounts to (printed at the start);
    `stats` is `_data_stats(run)` when the caller already has it."""
    d = cfg.to_dict()
    flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
    sections = {k: v for k, v in d.items() if isinstance(v, dict)}
    keep = {"data", "model", "optim", "eval"} | {name for name in sections if cfg.objective.startswith(name)}
    def show(table: dict) -> str:
        return " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in table.items())

    lines = ["mathforge train: resolved config (saved as config.json in the run folder)", "  " + show(flat)]
    lines += [f"  [{name}] " + show(sec) for name, sec in sections.items() if name in keep]
    model = run.acc.unwrap_model(run.model)
    n_params = sum(p.numel() for p in model.parameters())
    stats = stats or _data_stats(run)
    lines.append(f"  -> {n_params:,} parameters ({next(model.parameters()).dtype}), {stats['train_rows']:,} training "
                 f"examples ({stats['train_tokens']:,} tokens), {stats['held_out']:,} held out, "
                 f"{run.plan.total_steps:,} steps on {run.acc.num_processes} process(es), output {cfg.out_dir}")
    for part, c in run.data.overlong.items():
        if c.get("truncated") or c.get("dropped"):
            lines.append(f"  -> {part}: {c['truncated']} examples longer than data.seq_len={cfg.data.seq_len} "
                         f"truncated, {c['dropped']} dropped (data.overlong={cfg.data.overlong!r})")
    return "\n".join(lines)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with Path(path).open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def train(cfg: RunConfig) -> Path:
    """Train (or resume) the run described by `cfg`; returns the final HF model folder."""
    from tqdm.auto import tqdm

    from mathforge.train.logging import MetricsLogger, plot_loss_curves

    done = Path(cfg.out_dir) / "done.json"
    finished = json.loads(done.read_text()) if cfg.resume and done.is_file() else {}
    if finished.get("config_hash") == _config_hash(cfg):
        print(f"mathforge train: {done} says this run already finished (step {finished.get('step')}): nothing to "
              "do; --no-resume trains it again", file=sys.stderr)
        return Path(cfg.out_dir) / "model"
    check_paths(cfg)
    run = _Run(cfg)
    main = run.acc.is_main_process
    stats = _data_stats(run)
    if main:
        print(describe_run(cfg, run, stats), file=sys.stderr)
    run.resume()
    if main:
        run.out.mkdir(parents=True, exist_ok=True)
        (run.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        (run.out / "data_stats.json").write_text(json.dumps(stats, indent=1))
    logger = MetricsLogger(run.out, enabled=main, resume_step=run.step)
    total = run.plan.total_steps
    bar = tqdm(total=total, initial=run.step, disable=not (main and cfg.progress), unit="step", dynamic_ncols=True)
    t0, tokens = time.perf_counter(), 0
    while run.step < total:
        rec = run.train_step()
        tokens += rec["tokens"]
        tok_s = tokens / max(time.perf_counter() - t0, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", tok_s=f"{tok_s:,.0f}")
        if run.step % cfg.log_every == 0 or run.step == total:
            logger.log(run.step, {**rec, "tok_per_s": tok_s})
        if cfg.eval.every and run.step % cfg.eval.every == 0 and run.step < total:
            if record := run.evaluate():
                logger.log(run.step, record)
                shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float))
                bar.write(f"mathforge train: step {run.step}: {shown}", file=sys.stderr)
            run.acc.wait_for_everyone()
        if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0 and run.step < total:
            run.checkpoint()
        faults.kill_at(faults.TRAIN, run.step)      # the kill-and-resume test's exact point
    bar.close()
    final = run.evaluate(final=True)
    if final:
        logger.log(run.step, final)
        print(json.dumps({"final_step": run.step, **final}))
    run.acc.wait_for_everyone()
    logger.close()
    target = run.save_final()
    if main:
        plot_loss_curves({cfg.objective: run.out / "metrics.jsonl"}, run.out / "loss_curve.png")
        if (finish := getattr(run.objective, "finish", None)) is not None:
            finish(run.out, run.state)
        done.write_text(json.dumps({"config_hash": _config_hash(cfg), "step": run.step}))
    return target
