"""LR schedules (cosine, WSD) and the deterministic data plan that exact resume relies on."""

from __future__ import annotations

import math

import pytest

from mathforge.train.config import OptimConfig
from mathforge.train.schedule import BatchPlan, lr_lambda


def test_cosine_and_wsd_values():
    cos = lr_lambda(OptimConfig(schedule="cosine", warmup_ratio=0.1, min_lr_ratio=0.1), 100)
    assert cos(0) == pytest.approx(1 / 11) and cos(9) == pytest.approx(10 / 11)
    assert cos(10) == pytest.approx(1.0)
    assert cos(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos(100) == pytest.approx(0.1)
    wsd = lr_lambda(OptimConfig(schedule="wsd", warmup_ratio=0.1, decay_ratio=0.2, min_lr_ratio=0.0), 100)
    assert [wsd(s) for s in (10, 50, 79)] == [1.0, 1.0, 1.0]
    assert wsd(80) == pytest.approx(1.0) and wsd(90) == pytest.approx(0.5) and wsd(99) == pytest.approx(0.05)
    tail = lr_lambda(OptimConfig(schedule="tail", warmup_ratio=0.1, decay_ratio=0.6, min_lr_ratio=0.05), 100)
    assert tail(10) == pytest.approx(1.0) and tail(60) == pytest.approx(0.05)
    assert tail(35) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert tail(80) == pytest.approx(0.025) and tail(100) == pytest.approx(0.0)
    const = lr_lambda(OptimConfig(schedule="constant", warmup_ratio=0.0), 10)
    assert {const(s) for s in range(10)} == {1.0}


def test_batch_plan_is_a_function_of_seed_and_step():
    pytest.importorskip("torch")
    lengths = [5 + (i * 7) % 23 for i in range(200)]
    a = BatchPlan(lengths, seq_len=64, packing=True, rows_per_step=4, seed=1, epochs=2.5)
    b = BatchPlan(lengths, seq_len=64, packing=True, rows_per_step=4, seed=1, epochs=2.5)
    steps = a.total_steps
    assert steps == a.steps_in_epoch(0) + a.steps_in_epoch(1) + int(0.5 * a.steps_in_epoch(2))
    # recomputed from scratch, in any order, a step always gets the same rows
    assert [b.global_rows(s) for s in reversed(range(steps))] == [a.global_rows(s) for s in reversed(range(steps))]
    first_epoch = [i for s in range(a.steps_in_epoch(0)) for row in a.global_rows(s) for i in row]
    assert len(first_epoch) == len(set(first_epoch))  # no example twice within an epoch
    for s in range(steps):
        assert all(sum(lengths[i] for i in row) <= 64 for row in a.global_rows(s))
    assert a.position(a.steps_in_epoch(0)) == (1, 0)
    c = BatchPlan(lengths, seq_len=64, packing=True, rows_per_step=4, seed=2, epochs=1)
    assert c.global_rows(0) != a.global_rows(0)
    with pytest.raises(ValueError, match="training set too small"):
        BatchPlan(lengths[:3], seq_len=64, packing=False, rows_per_step=4, seed=0, epochs=1)
