"""Grading calls are time-bounded without signals.

Pathological inputs are stopped by cheap pre-filters (their verdict is never a timeout); a pair that
really sends SymPy into a long computation is cut off by killing the worker process, also from
threads, asyncio and forked children (its verdict says `timed_out`); workers do not outlive their
parent. No test measures elapsed time against a bound (that fails on some machine): each checks the
mechanism, and the module-wide pytest timeout turns a hang into a failure.
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
pytestmark = pytest.mark.timeout(300)    # a hang is a failure, whatever the machine's speed


@pytest.fixture(scope="module", autouse=True)
def warm_worker():
    worker_mod.get_pool().warm()


@pytest.mark.parametrize("pred,gold", PATHOLOGICAL, ids=[f"patho{i}" for i in range(len(PATHOLOGICAL))])
def test_pathological_is_false_and_stopped_before_any_deadline(pred, gold):
    v = grade(pred=pred, gold=gold, timeout=TIMEOUT)
    assert v.correct is False and v.timed_out is False, v


def test_slow_pair_times_out_then_worker_recovers():
    v = grade(pred=SLOW[0], gold=SLOW[1], timeout=TIMEOUT)
    assert v.correct is False and v.timed_out is True and v.rule == "symbolic"
    # The killed worker is replaced; the symbolic path still answers (generous bound: respawn).
    assert grade(pred="\\sin 2x", gold="2\\sin x\\cos x", timeout=60).correct


def test_timeouts_are_not_memoised():
    a = grade(pred=SLOW[0], gold=SLOW[1], timeout=0.5)
    b = grade(pred=SLOW[0], gold=SLOW[1], timeout=0.5)
    assert a.timed_out and b.timed_out


def test_bounded_inside_thread_pool():
    pairs = (PATHOLOGICAL + [SLOW]) * 2
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pair: grade(pred=pair[0], gold=pair[1], timeout=TIMEOUT), pairs))
    for (pred, _), verdict in zip(pairs, results, strict=True):
        assert verdict.correct is False, pred[:40]
        # The slow pair is cut off by its deadline (2 workers, 8 threads); the others never wait on one.
        assert verdict.timed_out is (pred == SLOW[0]), (pred[:40], verdict)


def test_bounded_inside_asyncio():
    async def main():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: grade(pred=SLOW[0], gold=SLOW[1], timeout=TIMEOUT))

    verdict = asyncio.run(main())
    assert verdict.correct is False and verdict.timed_out is True


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
    # A worker that takes 8 s to start still answers a comparison whose own timeout is 5 s (ample
    # for this pair on any machine): the clock starts when the worker is ready.
    slow_start = [sys.executable, "-c",
                  "import time; time.sleep(8); from mathforge.grading.worker import main; main()"]
    pool = worker_mod.WorkerPool(size=1, command=slow_start)
    try:
        assert pool.call({"a": "x^2+2x+1", "b": "(x+1)^2"}, timeout=5.0)["equal"] is True
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
    deadline = time.time() + 120            # polls the state; the deadline only stops a hang
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
        v = grade(pred=a, gold=b, timeout=TIMEOUT)
        assert isinstance(v.correct, bool), (a, b)
