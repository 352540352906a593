"""Grading calls are time-bounded without signals (methods.md §g.5 "Timeouts", §g.8).

Pathological inputs are stopped by cheap pre-filters; a pair that really sends SymPy into a long
computation is cut off by killing the worker process, also from threads, asyncio and forked
children; workers do not outlive their parent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from mathforge.grading import grade, is_equivalent
from mathforge.grading import worker as worker_mod

PATHOLOGICAL = [
    ("\\boxed{5^{5^{5^{5^5}}}}", "5"),
    ("5^{5^{5^{5^5}}}", "5"),
    ("{" * (1 << 20), "1"),
    ("\\frac{" * 1000, "1"),
    ("\\frac{", "\\frac{1}{2}"),
    ("10^{10^{10}}", "5"),
    ("2^{2^{2^{2^{2}}}}", "65536"),
    ("\\sqrt{\\sqrt{\\sqrt{", "2"),
    ("}{)(][", "x"),
    ("(((((((((((((((((((((((((((((((x)))))))))))))))))))))))))))))))" * 20, "x"),
]
SLOW = ("(10^{7})!", "5")           # passes the pre-filters; SymPy computes 10^7! for a long time
TIMEOUT = 1.5
MARGIN = 2.5                      # process kill + thread scheduling on a loaded 2-core machine


STARTUP = [0.0]                   # seconds a fresh worker took to start here (measured below)


def _bound() -> float:
    """A comparison's own time is bounded by its timeout; a worker's start-up (after a kill) is
    not charged to it, so a call may also wait for one start-up (twice the measured one, for load)."""
    return TIMEOUT + MARGIN + 2 * STARTUP[0]


@pytest.fixture(scope="module", autouse=True)
def warm_worker():
    fresh = worker_mod.WorkerPool(size=1)
    t0 = time.perf_counter()
    fresh.warm()
    STARTUP[0] = time.perf_counter() - t0
    fresh.close()
    worker_mod.get_pool().warm()


@pytest.mark.parametrize("pred,gold", PATHOLOGICAL, ids=[f"patho{i}" for i in range(len(PATHOLOGICAL))])
def test_pathological_is_false_and_fast(pred, gold):
    t0 = time.perf_counter()
    v = grade(pred=pred, gold=gold, timeout=TIMEOUT)
    assert v.correct is False
    assert time.perf_counter() - t0 < _bound()


def test_slow_pair_times_out_then_worker_recovers():
    t0 = time.perf_counter()
    v = grade(pred=SLOW[0], gold=SLOW[1], timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    assert v.correct is False and v.timed_out is True and v.rule == "symbolic"
    assert elapsed < _bound()
    # The killed worker is replaced; the symbolic path still answers (generous bound: respawn).
    assert grade(pred="\\sin 2x", gold="2\\sin x\\cos x", timeout=60).correct


def test_timeouts_are_not_memoised():
    a = grade(pred=SLOW[0], gold=SLOW[1], timeout=0.5)
    b = grade(pred=SLOW[0], gold=SLOW[1], timeout=0.5)
    assert a.timed_out and b.timed_out


def test_bounded_inside_thread_pool():
    pairs = (PATHOLOGICAL + [SLOW]) * 2
    # A call that meets a worker killed by a SLOW pair waits for its replacement to start, which is
    # not charged to its own timeout (by design): allow for one start-up, as measured here.
    budget = TIMEOUT + MARGIN + 2 * STARTUP[0]

    def timed(pair):
        t0 = time.perf_counter()
        v = grade(pred=pair[0], gold=pair[1], timeout=TIMEOUT)
        return v, time.perf_counter() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(timed, pairs))
    for (pred, _), (verdict, seconds) in zip(pairs, results, strict=True):
        assert verdict.correct is False, pred[:40]
        # The pool has 2 workers and 8 threads: a waiting thread gives up at its own deadline.
        assert seconds < budget, (pred[:40], seconds)


def test_bounded_inside_asyncio():
    async def main():
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        v = await loop.run_in_executor(None, lambda: grade(pred=SLOW[0], gold=SLOW[1], timeout=TIMEOUT))
        return v, time.perf_counter() - t0

    verdict, seconds = asyncio.run(main())
    assert verdict.correct is False and seconds < _bound()


def _child_grades(queue):
    pool = worker_mod.get_pool()
    queue.put((pool.pid == os.getpid(), is_equivalent(pred="\\sin 2x", gold="2\\sin x\\cos x", timeout=60)))


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_fork_safe_child_gets_its_own_workers():
    parent_pool = worker_mod.get_pool()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_grades, args=(queue,))
    proc.start()
    own_pool, correct = queue.get(timeout=90)
    proc.join(30)
    assert own_pool and correct
    assert worker_mod.get_pool() is parent_pool
    assert is_equivalent(pred="\\sin 2x", gold="2\\sin x\\cos x", timeout=60)


def test_worker_start_up_is_not_charged_to_the_comparison():
    # A worker that takes 2 s to start (as SymPy's import does on a loaded machine) still answers a
    # comparison whose own timeout is 1 s: the clock starts when the worker is ready.
    slow_start = [sys.executable, "-c",
                  "import time; time.sleep(2); from mathforge.grading.worker import main; main()"]
    pool = worker_mod.WorkerPool(size=1, command=slow_start)
    try:
        assert pool.call({"a": "x^2+2x+1", "b": "(x+1)^2"}, timeout=1.0)["equal"] is True
    finally:
        pool.close()


def test_ensure_started_waits_only_for_a_start_up():
    slow_start = [sys.executable, "-c",
                  "import time; time.sleep(1); from mathforge.grading.worker import main; main()"]
    pool = worker_mod.WorkerPool(size=1, command=slow_start)
    try:
        assert pool.ensure_started() > 0.0      # a worker had to be started
        assert pool.ensure_started() == 0.0     # now one is ready
        assert pool.call({"a": "x", "b": "x"}, timeout=5.0)["equal"] is True
    finally:
        pool.close()


def test_a_worker_that_dies_at_start_up_is_a_timeout_not_a_hang():
    pool = worker_mod.WorkerPool(size=1, command=[sys.executable, "-c", "raise SystemExit(3)"])
    try:
        with pytest.raises(worker_mod.WorkerTimeout, match="did not start"):
            pool.call({"a": "x", "b": "x"}, timeout=1.0)
    finally:
        pool.close()


def test_workers_are_killed_at_exit():
    code = ("from mathforge.grading import worker as w; p = w.get_pool(); p.warm(); "
            "print(p.idle[0].proc.pid, flush=True)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    pid = int(out.stdout.split()[-1])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"worker {pid} outlived its parent")


def test_fuzzed_pairs_never_raise_and_stay_bounded():
    import random

    rng = random.Random(7)
    pieces = ["\\frac{", "}", "{", "^", "_", "(", ")", "[", "]", ",", "=", "<", "\\le", "\\sqrt",
              "\\pi", "x", "1", "2", "-", "+", ".", "\\cup", "\\infty", "!", "\\begin{pmatrix}",
              "\\end{pmatrix}", "&", "\\\\", "%", "$", "\\text{", "cm", ":", "e", "i", "\\sin", "0"]
    for _ in range(300):
        a = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        t0 = time.perf_counter()
        v = grade(pred=a, gold=b, timeout=TIMEOUT)
        assert isinstance(v.correct, bool)
        assert time.perf_counter() - t0 < _bound(), (a, b)
