"""Killable helper processes for the slow symbolic layer, so every grading call is time-bounded.

Design (docs/methods/evaluation.md §g.5 "Timeouts"; no `signal.alarm`, so it works in threads, asyncio servers
and process pools): a small pool of persistent subprocesses (`python -m
mathforge.grading.worker`) speak one JSON line per request over pipes. The caller waits on a
queue filled by a reader thread, with a deadline; when it passes, the worker is killed (it may be
stuck in `simplify`) and a fresh one is started on next use. A worker's start-up (importing
SymPy, about a second, far more on a loaded machine) is never charged to a comparison: the call
waits for the worker's `ready` first, bounded by `START_TIMEOUT`, and only then starts the clock
of its own timeout. A pool belongs to the process that made it: after `fork` the child sees
another pid and builds its own workers, never touching the parent's pipes. Workers are killed at
exit.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_MEMORY_LIMIT = 4 << 30            # bytes of address space per worker (sympy can explode)
START_TIMEOUT = 120.0             # seconds a worker may take to import SymPy before it is given up
WORKER_COMMAND = [sys.executable, "-m", "mathforge.grading.worker"]


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline (it was killed if it was computing)."""


class _Worker:
    """One subprocess, its reader thread and its reply queue."""

    def __init__(self, command: list[str]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, text=True, bufsize=1,
        )
        self.replies: queue.Queue = queue.Queue()
        self.ready = threading.Event()      # SymPy imported, requests are answered
        self.settled = threading.Event()    # ready, or dead before it got there
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:       # ends at EOF, i.e. when the worker dies
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("ready"):
                    self.ready.set()
                    self.settled.set()
                else:
                    self.replies.put(msg)
        except (OSError, ValueError):
            pass
        finally:
            self.settled.set()
            self.replies.put(None)
            self.proc.stdout.close()            # only this thread reads it, so only it closes it

    def wait_ready(self, limit: float) -> float:
        """Block until the worker has started (at most `limit` s); returns the seconds waited."""
        if self.ready.is_set():
            return 0.0
        t0 = time.monotonic()
        self.settled.wait(limit)
        if not self.ready.is_set():
            self.kill()
            raise WorkerTimeout("worker did not start")
        return time.monotonic() - t0

    def ask(self, request: dict, deadline: float) -> dict:
        """Send one request to a started worker; the reply must come before `deadline`."""
        self.next_id += 1
        request = dict(request, id=self.next_id)
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            self.kill()
            raise WorkerTimeout("worker died") from exc
        while True:
            try:
                reply = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise WorkerTimeout("worker timed out") from None
            if reply is None:
                self.kill()
                raise WorkerTimeout("worker died")
            if reply.get("id") == self.next_id:    # an older reply belongs to a timed-out call
                return reply

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass


class WorkerPool:
    """Up to `size` workers; each call borrows one idle worker (others wait, within the deadline)."""

    def __init__(self, size: int = 2, command: list[str] | None = None) -> None:
        self.pid = os.getpid()
        self.size = size
        self.command = list(command or WORKER_COMMAND)
        self.idle: list[_Worker] = []
        self.busy = 0
        self.cond = threading.Condition()
        self.closed = False

    def _borrow(self, deadline: float) -> _Worker:
        with self.cond:
            while True:
                if self.closed:
                    raise WorkerTimeout("pool closed")
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive():
                        self.busy += 1
                        return worker
                    worker.kill()
                if self.busy < self.size:
                    self.busy += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.cond.wait(remaining):
                    raise WorkerTimeout("no free worker before the deadline")
        try:
            return _Worker(self.command)
        except Exception:
            self._give_back(None)
            raise

    def _give_back(self, worker: _Worker | None) -> None:
        with self.cond:
            self.busy -= 1
            if worker is not None and worker.alive() and not self.closed:
                self.idle.append(worker)
            elif worker is not None:
                worker.kill()
            self.cond.notify()

    def call(self, request: dict, timeout: float) -> dict:
        """One request, answered within `timeout` s of computing time. Waiting for a busy worker
        counts; waiting for a fresh worker to start does not (the deadline moves by that wait)."""
        deadline = time.monotonic() + timeout
        worker = self._borrow(deadline)
        try:
            started = worker.wait_ready(START_TIMEOUT)
            return worker.ask(request, deadline + started)
        finally:
            self._give_back(worker)

    def warm(self, timeout: float = START_TIMEOUT) -> None:
        """Start one worker and wait until it has imported SymPy (outside any grading deadline)."""
        worker = self._borrow(time.monotonic() + timeout)
        try:
            worker.wait_ready(timeout)
        finally:
            self._give_back(worker)

    def ensure_started(self) -> float:
        """Seconds spent starting a worker so that one is ready; 0.0 when one already is, or when
        all are busy (waiting for a busy worker is the caller's time, not start-up). A caller whose
        deadline covers several comparisons moves it by this amount."""
        with self.cond:
            if self.busy >= self.size or any(w.ready.is_set() and w.alive() for w in self.idle):
                return 0.0
        t0 = time.monotonic()
        self.warm()
        return time.monotonic() - t0

    def close(self) -> None:
        with self.cond:
            self.closed = True
            workers, self.idle = self.idle, []
        for worker in workers:
            worker.kill()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The pool of this process (a forked child gets a new one, never the parent's pipes)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = WorkerPool(size=int(os.environ.get("MATHFORGE_GRADER_WORKERS", "2")))
        return _POOL


def _after_fork_in_child() -> None:
    global _POOL, _POOL_LOCK
    _POOL = None                  # the parent's workers and pipes are not ours to use or kill
    _POOL_LOCK = threading.Lock()  # it may have been held by another thread at fork time


def _close_at_exit() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)


_OPS = ("symbolic_equal", "math_verify_equal", "simplify_equal")


def symbolic_equal(a: str, b: str, *, timeout: float, op: str = "symbolic_equal") -> bool:
    """`symbolic.<op>(a, b)` in a worker (`op` in `_OPS`); raises `WorkerTimeout` past `timeout`."""
    if op not in _OPS:
        raise ValueError(f"unknown worker operation {op!r}; known: {_OPS}")
    reply = get_pool().call({"a": a, "b": b, "op": op}, timeout)
    return bool(reply.get("equal"))


def main() -> None:
    """Worker loop: one JSON request per stdin line, one JSON reply per stdout line."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass                      # not on POSIX, or a stricter limit is already set
    from mathforge.grading import symbolic

    symbolic.warm()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            op = req.get("op", "symbolic_equal")
            if op not in _OPS:
                raise ValueError(f"unknown operation {op!r}")
            equal = getattr(symbolic, op)(str(req["a"]), str(req["b"]))
            reply = {"id": req_id, "equal": equal}
        except Exception as exc:  # noqa: BLE001 - a bad request must not kill the worker
            reply = {"id": req_id, "equal": False, "error": repr(exc)[:200]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
