"""Hooks shared by the value objectives (`value_ctl`, `value_bce`; docs/methods/tsmc.md §e.5-§e.7): the value
model is built from the generator named by `model.init`, the data are grouped value-data records
(`value.data_file`), a batch is the samples of whole problems, and evaluation reports the value
model's AUC and calibration instead of generation accuracy."""

from __future__ import annotations

from typing import Any


def build_model(cfg: Any, tokenizer: Any) -> Any:
    from mathforge.models.value import ValueModel

    if not cfg.model.init:
        raise ValueError(f"objective {cfg.objective!r}: set model.init to the generator folder (the value model's "
                         "trunk starts from it and shares its tokenizer)")
    return ValueModel.from_generator(cfg.model.init, init=cfg.value.init, seed=cfg.seed)


def load_data(cfg: Any, tokenizer: Any) -> Any:
    from mathforge.train.dataset import TrainData
    from mathforge.train.value_batches import load_value_groups

    if tokenizer is None:
        raise ValueError(f"objective {cfg.objective!r}: needs model.init (the generator and its tokenizer)")
    groups = load_value_groups(cfg.value.data_file, tokenizer, cfg.data.seq_len)
    n_eval = min(cfg.data.n_eval, len(groups) // 2)
    held, train = groups[len(groups) - n_eval:], groups[: len(groups) - n_eval]  # held out: the file's tail
    for i, g in enumerate(train):
        g.index = i
    if not train:
        raise ValueError(f"{cfg.value.data_file}: no training problems left after holding out {n_eval}")
    return TrainData(tokenizer, train, train, held, held)


def collate(items: list[Any], pad_id: int) -> dict[str, Any]:
    from mathforge.train.value_batches import collate_groups

    return collate_groups(items, pad_id)


def evaluate(model: Any, data: Any, cfg: Any) -> dict[str, float]:
    from mathforge.train.value_batches import evaluate_value_model

    return evaluate_value_model(model, data.eval_examples[: cfg.eval.n_problems or None], data.tokenizer.pad_token_id)
