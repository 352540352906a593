"""Typed training configuration and the TOML recipe loader.

Principle 5 of the architecture ("typed configs are the CLI"): every knob is a dataclass field with
a default, validated in `__post_init__`; a recipe file (`recipes/*.toml`) sets them section by
section, and `load_recipe` rejects an unknown key or a wrong type with an error that names the file
and the dotted key before any data is read or any model built. The resolved config is saved next to
every output (`asdict`).
"""

from __future__ import annotations

import copy
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

OBJECTIVE_NAMES = ("sft", "mft", "difficulty", "value_ctl", "value_bce", "icot_si", "icot_kd_student",
                   "icot_kd_emulator", "icot_kd_coupled")
VALUE_OBJECTIVES = ("value_ctl", "value_bce")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


def _check_range(name: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name}={value!r} must lie in [{lo}, {hi}]")


@dataclass
class DataConfig:
    """Where the training and held-out examples come from and how they become rows.

    `task` names a generator of `mathforge.data.tasks.TASKS` (`multiplication`, `arithmetic`, ...;
    `task_args` are its keyword arguments) or `file`, in which case `train_file` (JSONL with
    question/response, or `q||cot #### a` lines in a `.txt`) is read. Held-out problems come from
    `eval_file` if set, else the first `n_eval` generated (or shuffled file) examples. An example
    longer than `seq_len` tokens stops the run with an error naming it (`overlong="error"`), is cut
    on the right (`"truncate"`) or left out (`"drop"`); the run prints and records how many.
    `tokenizer_dir` (a saved tokenizer folder) is used as is instead of building one from the data,
    so that runs on different data share one vocabulary (e.g. the two arms of `synth ablation`).
    """

    task: str = "multiplication"
    task_args: dict[str, Any] = field(default_factory=dict)
    train_file: str = ""
    eval_file: str = ""
    n_train: int = 10_000
    n_eval: int = 200
    seq_len: int = 256
    packing: bool = True
    tokenizer: str = "char"
    tokenizer_dir: str = ""
    vocab_size: int = 4096
    prompt_template: str = "{question}\n"
    question_key: str = ""
    response_key: str = ""
    extract_style: str = "auto"
    overlong: str = "error"

    def __post_init__(self) -> None:
        from mathforge.data.tasks import TASKS

        _check_choice("data.overlong", self.overlong, ("error", "truncate", "drop"))
        _check_choice("data.task", self.task, (*TASKS, "file"))
        _check_choice("data.tokenizer", self.tokenizer, ("char", "char_spaced", "bpe"))
        if self.task == "file" and not self.train_file:
            raise ValueError("data.task='file' needs data.train_file")
        for name in ("n_train", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_eval < 0:
            raise ValueError(f"data.n_eval must be >= 0, got {self.n_eval}")
        if "{question}" not in self.prompt_template:
            raise ValueError("data.prompt_template must contain '{question}'")


@dataclass
class ModelConfig:
    """A from-scratch preset (`nano`, `micro`, `small`) or `init`: a local HF folder to fine-tune.

    `dtype` is the dtype of the trained weights (the optimizer's master copy), whatever dtype the
    `init` folder was saved in: `float32` (default) keeps updates that bf16 would round away (at lr
    1e-5 most weights of a bf16 copy do not move at all); `bfloat16` trains the weights themselves
    in bf16 (half the memory, lossy updates). For bf16 speed with fp32 weights use
    `mixed_precision = "bf16"` (autocast) instead."""

    preset: str = "nano"
    init: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _check_choice("model.dtype", self.dtype, ("float32", "bfloat16"))


@dataclass
class OptimConfig:
    """AdamW + LR schedule. A step is one optimizer update over `micro_batch_size * grad_accum *
    processes` rows; `max_steps` (if > 0) wins over `epochs`."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    schedule: str = "cosine"
    warmup_ratio: float = 0.05
    decay_ratio: float = 0.2
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    micro_batch_size: int = 8
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int = 0

    def __post_init__(self) -> None:
        _check_choice("optim.schedule", self.schedule, ("cosine", "wsd", "constant", "tail"))
        _check_range("optim.lr", self.lr, 0.0, None)
        _check_range("optim.warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        _check_range("optim.decay_ratio", self.decay_ratio, 0.0, 1.0)
        _check_range("optim.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if self.micro_batch_size < 1 or self.grad_accum < 1:
            raise ValueError("optim.micro_batch_size and optim.grad_accum must be >= 1")
        if self.max_steps < 0 or self.epochs <= 0:
            raise ValueError("optim.max_steps must be >= 0 and optim.epochs > 0")


@dataclass
class MFTConfig:
    """Masked Thought fine-tuning (docs/methods/mft.md §a): noise kind, peak ratio and its schedule.

    `schedule_unit`: the ratio's counter, optimizer steps (`step`, [paper]) or micro-batches of one
    process (`microbatch`, [orig] MetaMathQA/MathInstruct), whose warm-up is `warmup_micro_batches`
    (0: `warmup_ratio` of the run's micro-batches per process). `attend_to_noise = false` hides the
    corrupted positions from attention (§a.2). The §a.8 ablations are noise kinds: `embed_dropout`
    (rate `dropout_q`), `neftune` (`neftune_alpha`), both on the tokens of `embed_scope`, and
    `scheduled_sampling` (the model's own `argmax`, a `sample` at `sampling_temperature`, or a
    `soft` mixture with weight `soft_weight` on the prediction) at the corrupted positions."""

    p_max: float = 0.2
    noise: str = "mask"
    schedule: str = "linear"
    warmup_ratio: float = 2 / 3
    late_start: int = 0
    mixed_q: float = 0.5
    exclude_special_ids: bool = False
    loss_on_corrupted: bool = True
    schedule_unit: str = "step"
    warmup_micro_batches: int = 0
    attend_to_noise: bool = True
    dropout_q: float = 0.1
    neftune_alpha: float = 5.0
    embed_scope: str = "all"
    sampling: str = "argmax"
    sampling_temperature: float = 1.0
    soft_weight: float = 0.3

    def __post_init__(self) -> None:
        _check_range("mft.p_max", self.p_max, 0.0, 1.0)
        _check_range("mft.warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        _check_range("mft.mixed_q", self.mixed_q, 0.0, 1.0)
        _check_range("mft.dropout_q", self.dropout_q, 0.0, 1.0)
        _check_range("mft.soft_weight", self.soft_weight, 0.0, 1.0)
        _check_choice("mft.noise", self.noise, MFT_NOISE)
        _check_choice("mft.schedule", self.schedule, ("linear", "constant", "late_start", "decreasing",
                                                      "random_per_batch"))
        _check_choice("mft.schedule_unit", self.schedule_unit, ("step", "microbatch"))
        _check_choice("mft.embed_scope", self.embed_scope, ("all", "response", "corrupted"))
        _check_choice("mft.sampling", self.sampling, ("argmax", "sample", "soft"))
        for name in ("late_start", "warmup_micro_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"mft.{name} must be >= 0, got {getattr(self, name)}")
        if self.dropout_q == 1.0:
            raise ValueError("mft.dropout_q must be < 1 (a rate of 1 drops every embedding)")
        if not self.neftune_alpha >= 0:  # also rejects nan
            raise ValueError(f"mft.neftune_alpha must be >= 0, got {self.neftune_alpha}")
        if not self.sampling_temperature > 0:
            raise ValueError(f"mft.sampling_temperature must be > 0, got {self.sampling_temperature}")


# Token noise (§a.2) and the embedding-level ablations of §a.8.
MFT_NOISE = ("mask", "random", "pad", "mixed", "embed_dropout", "neftune", "scheduled_sampling")


@dataclass
class DifficultyConfig:
    """Sample-difficulty-adaptive SFT (docs/methods/sdat.md §b). `given`: is `Example.difficulty` an integer
    level or an error rate in [0, 1] (turned into a level with `level_formula`)? `column`: which
    of the two drives the count/weight `base + factor * d`. In `weight` mode, `epochs_rule="visits"`
    trains `max(1, round(sum c_i / N))` epochs so example visits match the upsampled run (§b.4);
    `fixed` keeps `optim.epochs`."""

    mode: str = "upsample"
    given: str = "level"
    column: str = "level"
    levels: int = 5
    level_formula: str = "code"
    base: float = 1.0
    factor: float = 2.0
    overrides: dict[str, int] = field(default_factory=dict)
    floor_weights: bool = False
    weight_norm: str = "token"
    epochs_rule: str = "visits"

    def __post_init__(self) -> None:
        _check_choice("difficulty.mode", self.mode, ("upsample", "weight"))
        _check_choice("difficulty.given", self.given, ("level", "err_rate"))
        _check_choice("difficulty.column", self.column, ("level", "err_rate"))
        _check_choice("difficulty.level_formula", self.level_formula, ("code", "report"))
        _check_choice("difficulty.weight_norm", self.weight_norm, ("token", "sequence"))
        _check_choice("difficulty.epochs_rule", self.epochs_rule, ("visits", "fixed"))
        if self.levels < 1:
            raise ValueError(f"difficulty.levels must be >= 1, got {self.levels}")


@dataclass
class IcotSIConfig:
    """Stepwise internalization (Deng et al. 2024, docs/methods/icot.md §f.10): the first `scheduled + o`
    CoT tokens of every training example are removed, `o` drawn with P(o) = (1 - e^-l) e^(-l o)
    (l = `smoothing_lambda`; `inf` turns the smoothing off). `scheduled` is 0 for the first
    `pretrain_epochs` epochs (or `pretrain_steps` optimizer steps; set one of the two), then starts at
    `remove_start_from` and grows by 1 every round(steps_per_epoch / `remove_per_epoch`) steps (or
    every `remove_every_steps`, for short runs). From `scheduled >= remove_all_when_remove_beyond`
    (-1: never) the whole CoT goes. `reset_optimizer` clears AdamW's moments at every increase
    until the CoT is fully removed. `running_sum_weight` > 0 adds the running-sum probe loss of
    Bai et al. 2025 (multiplication only; `mathforge.train.objectives.running_sum`) on
    `hidden_states[running_sum_layer]` (-1: the middle layer)."""

    remove_per_epoch: float = 8.0
    remove_every_steps: int = 0
    remove_start_from: int = 0
    pretrain_epochs: float = 0.0
    pretrain_steps: int = 0
    remove_all_when_remove_beyond: int = -1
    smoothing_lambda: float = 4.0
    reset_optimizer: bool = True
    running_sum_weight: float = 0.0
    running_sum_layer: int = -1

    def __post_init__(self) -> None:
        if self.remove_per_epoch <= 0:
            raise ValueError(f"icot_si.remove_per_epoch must be > 0, got {self.remove_per_epoch}")
        for name in ("remove_every_steps", "remove_start_from", "pretrain_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"icot_si.{name} must be >= 0, got {getattr(self, name)}")
        if self.pretrain_epochs < 0:
            raise ValueError(f"icot_si.pretrain_epochs must be >= 0, got {self.pretrain_epochs}")
        if self.pretrain_epochs > 0 and self.pretrain_steps > 0:
            raise ValueError("icot_si: set pretrain_epochs or pretrain_steps, not both")
        if self.remove_all_when_remove_beyond < -1:
            raise ValueError("icot_si.remove_all_when_remove_beyond must be -1 (never) or >= 0")
        if self.running_sum_weight < 0 or self.running_sum_layer < -1:
            raise ValueError("icot_si.running_sum_weight must be >= 0 and running_sum_layer >= -1")
        if not self.smoothing_lambda > 0:  # also rejects nan
            raise ValueError(f"icot_si.smoothing_lambda must be > 0 (inf: no smoothing), got {self.smoothing_lambda}")


@dataclass
class IcotKDConfig:
    """ICoT-KD (Deng et al. 2023, docs/methods/icot.md §f.6-§f.9), one section for its three stages.
    `teacher`: HF folder of the explicit-CoT teacher (stage 1 is `sft` on the full layout);
    `subset` / `stride` choose the teacher positions of §f.6 (`stride` 0 = dynamic diagonal).
    `n_mix` / `tau`: the emulator's soft mixture (K = 1 disables it, §f.8). The coupled stage
    (`model.init` = the student stage's `model/`) reads `student` (that same folder, for its MLPs)
    and `emulator` (the emulator stage's `model/`); `freeze_emulator` trains the student only."""

    teacher: str = ""
    subset: str = "diagonal"
    stride: int = 0
    n_mix: int = 1
    tau: float = 0.05
    student: str = ""
    emulator: str = ""
    freeze_emulator: bool = False

    def __post_init__(self) -> None:
        from mathforge.models.icot_kd import SUBSETS

        _check_choice("icot_kd.subset", self.subset, SUBSETS)
        if self.stride < 0:
            raise ValueError(f"icot_kd.stride must be >= 0, got {self.stride}")
        if self.n_mix < 1 or not self.tau > 0:
            raise ValueError("icot_kd.n_mix must be >= 1 and icot_kd.tau > 0")


@dataclass
class EvalConfig:
    """Held-out evaluation: token loss and greedy exact-match accuracy every `every` steps (0: only
    at the end)."""

    every: int = 0
    n_problems: int = 200
    max_new_tokens: int = 256
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.every < 0 or self.n_problems < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("eval.every/n_problems must be >= 0, max_new_tokens/batch_size >= 1")


@dataclass
class ValueConfig:
    """Value-model training (TSMC, docs/methods/tsmc.md §e.5-§e.7): `data_file` is a grouped value-data file
    (`mathforge value-data`); `init` the head's initialisation; CTL: `short_samples` (`final`: a
    finished sample's last score stands for later steps; `exclude`) and `divide_by_steps`; BCE: `mask`
    (`every_token`, `step_ends`, `orm_last3`) and `loss` (`bce` or `mse`)."""

    data_file: str = ""
    init: str = "zeros"
    short_samples: str = "final"
    divide_by_steps: bool = False
    mask: str = "every_token"
    loss: str = "bce"

    def __post_init__(self) -> None:
        _check_choice("value.init", self.init, ("zeros", "random"))
        _check_choice("value.short_samples", self.short_samples, ("final", "exclude"))
        _check_choice("value.mask", self.mask, ("every_token", "step_ends", "orm_last3"))
        _check_choice("value.loss", self.loss, ("bce", "mse"))


@dataclass
class RunConfig:
    """One training run. `mixed_precision`: `no` or `bf16` (autocast). The default is `no` because
    bf16 autocast was measured 7x slower than fp32 for the nano model on the 2-core reference CPU
    (457 against 3,408 tokens/s, one thread, fwd+bwd+AdamW on packed rows; the CPU has no native
    bf16 matmul); use bf16 on GPUs. `threads` 0 keeps torch's
    default thread count."""

    out_dir: str = "runs/train"
    seed: int = 0
    objective: str = "sft"
    mixed_precision: str = "no"
    threads: int = 0
    resume: bool = True
    log_every: int = 10
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    progress: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    mft: MFTConfig = field(default_factory=MFTConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    icot_si: IcotSIConfig = field(default_factory=IcotSIConfig)
    icot_kd: IcotKDConfig = field(default_factory=IcotKDConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    value: ValueConfig = field(default_factory=ValueConfig)

    def __post_init__(self) -> None:
        _check_choice("objective", self.objective, OBJECTIVE_NAMES)
        if self.objective in VALUE_OBJECTIVES:
            if not self.value.data_file:
                raise ValueError(f"objective {self.objective!r} needs value.data_file (from `mathforge value-data`)")
            if self.data.packing:
                raise ValueError(f"objective {self.objective!r}: set data.packing=false (a batch is whole problems)")
        _check_choice("mixed_precision", self.mixed_precision, ("no", "bf16"))
        if self.log_every < 1 or self.checkpoint_every < 0 or self.keep_checkpoints < 1:
            raise ValueError("log_every >= 1, checkpoint_every >= 0 and keep_checkpoints >= 1 required")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` (parsed TOML) against annotation `tp`; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            try:
                return _coerce(value, arm, key)
            except TypeError:
                continue
        raise TypeError(f"key '{key}' must be {tp}, got {type(value).__name__} {value!r}")
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"key '{key}' must be a table [{key}], got {type(value).__name__}")
        return _build(tp, value, key + ".")
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"key '{key}' must be a table, got {type(value).__name__} {value!r}")
        return dict(value)
    if tp is type(None):
        if value is not None:
            raise TypeError(f"key '{key}' must be None")
        return None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise TypeError(f"key '{key}' must be {_type_name(tp)}, got bool {value!r}")
    if not isinstance(value, tp):
        raise TypeError(f"key '{key}' must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def _build(cls: type, table: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in table:
        if key not in known:
            raise KeyError(f"unknown key '{prefix}{key}' (known: {', '.join(sorted(known))})")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in table.items()}
    return cls(**kwargs)


def config_from_dict(table: dict[str, Any], *, source: str = "<dict>") -> RunConfig:
    """Build a RunConfig from nested plain data, naming `source` in every error."""
    try:
        return _build(RunConfig, table)
    except KeyError as exc:
        raise KeyError(f"{source}: {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


def _resolve(path: str, recipe_dir: Path, key: str, source: str) -> str:
    """Relative data paths are tried against the working directory, then the recipe's folder."""
    if not path:
        return path
    for cand in (Path(path), recipe_dir / path):
        if cand.is_file():
            return str(cand.resolve())
    raise FileNotFoundError(f"{source}: {key}={path!r}: no such file")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None, *,
                override_label: str = "override") -> RunConfig:
    """Read a TOML recipe (optionally with dotted-key `overrides`) into a validated RunConfig.
    An error that the recipe alone does not have is blamed on the override (`override_label`,
    e.g. the CLI's `--set`), not on the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path}: no such file")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    merged = copy.deepcopy(table)
    for dotted, value in (overrides or {}).items():
        node = merged
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{override_label} {dotted}={value!r}: '{part}' is not a section")
        node[last] = value
    try:
        cfg = config_from_dict(merged, source=str(path))
    except (KeyError, ValueError) as exc:
        if not overrides or _fails_alike(table, path, exc):
            raise
        msg = exc.args[0].removeprefix(f"{path}: ")
        named = [k for k in overrides if k in msg] or list(overrides)
        label = ", ".join(f"{override_label} {k}={overrides[k]!r}" for k in named)
        raise type(exc)(f"{label}: {msg}") from None
    for section, key in ((cfg.data, "data.train_file"), (cfg.data, "data.eval_file"), (cfg.value, "value.data_file")):
        name = key.split(".")[1]
        source = override_label if key in (overrides or {}) else str(path)
        setattr(section, name, _resolve(getattr(section, name), path.parent, key, source))
    return cfg


def _fails_alike(table: dict[str, Any], path: Path, exc: Exception) -> bool:
    """Does the recipe without overrides fail with the same error (then the recipe is to blame)?"""
    try:
        config_from_dict(table, source=str(path))
    except (KeyError, ValueError) as base:
        return base.args == exc.args
    return False


def parse_override(text: str) -> tuple[str, Any]:
    """`optim.lr=3e-4` -> ('optim.lr', 0.0003): the value is read as a TOML value, else a string."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


__all__ = [
    "DataConfig",
    "DifficultyConfig",
    "EvalConfig",
    "IcotKDConfig",
    "IcotSIConfig",
    "MFTConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ValueConfig",
    "config_from_dict",
    "load_recipe",
    "parse_override",
]
