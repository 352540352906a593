"""Sandbox for model-written code (docs/methods/evaluation.md §g.3; PoT/PAL and tool-integrated reasoning, §g.2).

Each program runs in a fresh, isolated interpreter (``python -I -S -B``) in its own session, with
a private work dir, a minimal environment, stdin on /dev/null, resource limits, an audit hook
(PEP 578) and, where the kernel lets us, its own network and PID namespaces and a throw-away uid.
The caller reads stdout/stderr incrementally with a wall-clock deadline and kills the whole process
group with SIGKILL at the deadline or when the output passes a cap. Every failure of the program,
however violent, comes back as an :class:`ExecResult` with ``ok=False``; the caller carries on.

Modes (the result string each produces, cut to ``max_output`` characters as first half + ``...`` +
last half, §g.8):

- ``print``   — run; result = stripped stdout.
- ``harness`` — ToRA harness: if the last non-empty line contains ``print(`` run everything and
  take stdout; else run all but the last line and ``eval`` the last; result = ``str(value).strip()``.
- ``pal``     — run, call ``solution()``; result = its value, or stdout when it returns None.
- ``mammoth`` — MAmmoTH: the text before the first ``###``, syntax-checked, wrapped in a function
  and called; result = stdout with newlines removed.

What is and is not promised: docs/sandbox.md. Implementation of the child side:
``_sandbox_child.py`` (it must not import mathforge).
"""

from __future__ import annotations

import ast
import functools
import marshal
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

MODES = ("print", "harness", "pal", "mammoth")
LAYERS = frozenset({"namespaces", "uid", "audit"})  # rlimits, env, session and deadline: always
_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")
_CHUNK = 1 << 16
_KILL_GRACE = 2.0  # seconds to wait for killed processes to release their pipes
_STDERR_KEEP = 2000  # characters of stderr kept (tail), for debugging tracebacks
_UID_RANGE = (1 << 20, 1 << 30)  # throw-away uids: random, so concurrent runs never share one


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program. ``result`` is "" unless ``ok``; ``report`` mirrors the harness."""

    ok: bool
    stdout: str
    error: str | None
    timed_out: bool
    result: str = ""
    stderr: str = ""
    exit_code: int | None = None  # negative: killed by that signal; None: never started
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    truncated: bool = False  # stdout was cut (head ... tail) or the program was killed for output
    attempts: int = 1
    # what the child confirmed: rlimits, netns, pidns, uid, dac_read_search (kept read cap), audit
    isolation: tuple[str, ...] = ()

    @property
    def report(self) -> str:
        """The ToRA report string: ``Done``, ``Timeout Error`` or the error's last line."""
        if self.ok:
            return "Done"
        return "Timeout Error" if self.timed_out else (self.error or "Error")


def run_code(
    code: str,
    *,
    timeout: float = 5.0,
    memory_mb: int = 2048,
    max_output: int = 400,
    mode: str = "print",
    retry_timeouts: int = 0,
    output_limit: int = 1 << 20,
    _layers: Iterable[str] = LAYERS,
) -> ExecResult:
    """Run ``code`` in a fresh sandboxed process and return what happened; never raises for
    anything the program does.

    ``timeout``: wall-clock seconds (CPU limit: ``ceil(timeout) + 1``). ``memory_mb``: address
    space limit. ``max_output``: characters of stdout/result kept. ``retry_timeouts``: re-runs of a
    timed-out program (timeouts can come from machine contention, §g.3). ``output_limit``: bytes
    of stdout+stderr after which the program is killed. ``_layers``: tests only, to exercise one
    protection layer at a time.
    """
    if mode not in MODES:
        raise ValueError(f"run_code: mode must be one of {MODES}, got {mode!r}")
    if not isinstance(code, str):
        raise TypeError(f"run_code: code must be str, got {type(code).__name__}")
    if timeout <= 0 or memory_mb <= 0 or max_output < 8 or output_limit <= 0:
        raise ValueError(
            f"run_code: need timeout > 0, memory_mb > 0, max_output >= 8, output_limit > 0; got "
            f"timeout={timeout}, memory_mb={memory_mb}, max_output={max_output}, "
            f"output_limit={output_limit}"
        )
    layers = frozenset(_layers)
    if not layers <= LAYERS:
        raise ValueError(f"run_code: unknown layers {sorted(layers - LAYERS)}")
    if "namespaces" in layers and os.geteuid() != 0 and not _userns_usable():
        layers -= {"namespaces"}
    if "input(" in code:  # rejected unrun, as in the original harnesses
        return ExecResult(False, "", "input() is not allowed in sandboxed programs", False)
    result = _run_once(code, timeout, memory_mb, max_output, mode, output_limit, layers)
    for attempt in range(2, retry_timeouts + 2):
        if not result.timed_out:
            break
        result = _run_once(code, timeout, memory_mb, max_output, mode, output_limit, layers)
        result = replace(result, attempts=attempt)
    return result


def run_codes(codes: Sequence[str], *, workers: int | None = None, **kw) -> list[ExecResult]:
    """``run_code`` over many programs, at most ``workers`` (default: CPU count) at a time.

    Threads only drive the children (they wait on pipes), so the GIL is not a bottleneck.
    Results come back in the order of ``codes``.
    """
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"run_codes: workers must be >= 1, got {workers}")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda c: run_code(c, **kw), codes))


# ---------------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "..." + text[-half:]


class _HeadTail:
    """Keeps the first and last ``keep`` bytes of a stream, so memory stays bounded."""

    def __init__(self, keep: int) -> None:
        self.keep, self.total = keep, 0
        self.head, self.tail = bytearray(), bytearray()

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - self.keep)]

    def text(self, limit: int) -> tuple[str, bool]:
        """Decoded text cut to ``limit`` characters, and whether anything was cut."""
        if self.total == len(self.head) + len(self.tail):  # nothing dropped
            whole = (self.head + self.tail).decode("utf-8", "replace")  # a char may span both
            return _cut(whole, limit), len(whole) > limit
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        half = limit // 2
        return head[:half] + "..." + tail[-half:], True


def _spawn(code, mode, timeout, memory_mb, max_output, layers, workdir, status_w):
    uid = secrets.SystemRandom().randrange(*_UID_RANGE)
    if "uid" in layers and os.geteuid() == 0:
        os.chown(workdir, uid, uid)
    cfg = {
        "code": code,
        "mode": mode,
        "max_output": max_output,
        "memory_mb": memory_mb,
        "cpu_seconds": math.ceil(timeout) + 1,
        "workdir": workdir,
        "uid": uid,
        "layers": sorted(layers),
        "status_fd": status_w,
        "parent_pid": os.getpid(),
        "sys_path": _site_dirs(),
        "read_roots": _read_roots(),
        "deny_roots": _deny_roots(),
        "keep_read_cap": not _interpreter_world_readable(),
    }
    fd, cfg_path = tempfile.mkstemp(prefix=".sandbox-", suffix=".cfg", dir=workdir)
    with os.fdopen(fd, "wb") as fh:
        marshal.dump(cfg, fh)  # read back by the child without importing json
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        # one BLAS/OpenMP thread: threads count against RLIMIT_NPROC and the 2 GiB address space
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", _CHILD, cfg_path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(status_w,),
        cwd=workdir,
        env=env,
        start_new_session=True,  # its own process group: one killpg reaches every descendant
    )


@functools.cache
def _userns_usable() -> bool:
    """Without root, namespaces come from a user namespace, which some kernels refuse or cripple;
    probed once per process with the child's own code, in a throw-away interpreter."""
    with tempfile.TemporaryDirectory(prefix="mathforge-sandbox-probe-") as tmp:
        try:
            probe = subprocess.run(
                [sys.executable, "-I", "-S", "-B", _CHILD, "--probe", tmp],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return probe.returncode == 0


@functools.cache
def _interpreter_world_readable() -> bool:
    """Can a throw-away uid read the interpreter and its packages (every ancestor dir o+x)?
    If not (a pyenv under /root, say) the child keeps CAP_DAC_READ_SEARCH after dropping root."""
    for top in {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, *_site_dirs())}:
        path = top
        while True:
            try:
                if not os.stat(path).st_mode & 0o001:
                    return False
            except OSError:
                return False
            if path == "/":
                break
            path = os.path.dirname(path)
    return True


def _site_dirs() -> list[str]:
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]


# Python-level reads a program may make besides its work dir: the interpreter, installed packages
# and what the C library and common packages consult. Resolved like the hook resolves paths.
_SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/share",
    "/lib",
    "/lib64",
    "/etc/localtime",
    "/dev/null",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
    "/sys/devices/system/cpu",
    "/proc/cpuinfo",
    "/proc/meminfo",
)


def _read_roots() -> list[str]:
    prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    return sorted({os.path.realpath(p) for p in (*prefixes, *_site_dirs(), *_SYSTEM_READ)})


def _deny_roots() -> list[str]:
    """Never readable, even inside a read root: mathforge itself (installed into site-packages it
    may carry benchmark data) and the benchmark data folder, where the gold answers live."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = [package, os.path.join(os.path.dirname(package), "data")]
    if os.environ.get("MATHFORGE_DATA"):
        dirs.append(os.environ["MATHFORGE_DATA"])
    return sorted({os.path.realpath(d) for d in dirs})


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(proc, status_r, deadline, max_output, output_limit):
    """Read stdout, stderr and the status pipe until EOF, the deadline or the output cap.

    At the deadline or the cap the process group is killed and the pipes are drained (discarding)
    until EOF: every descendant holds them, so EOF means none is left running when we return.
    Returns (stdout, stderr, status bytes, timed_out, overflow)."""
    out, err = _HeadTail(4 * max_output), _HeadTail(4 * _STDERR_KEEP)
    status = bytearray()
    sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, status_r: None}
    timed_out = overflow = killed = False
    with selectors.DefaultSelector() as sel:
        for fd in sinks:
            sel.register(fd, selectors.EVENT_READ)
        while sinks:
            left = deadline - time.monotonic()
            if left <= 0:
                if killed:
                    break  # grace over: something survived SIGKILL (uninterruptible sleep)
                timed_out = killed = True
                _kill_group(proc.pid)
                deadline = time.monotonic() + _KILL_GRACE
                continue
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, _CHUNK)
                sink = sinks[key.fd]
                if not chunk:
                    sel.unregister(key.fd)
                    del sinks[key.fd]
                elif killed:
                    continue
                elif sink is None:
                    if len(status) < _CHUNK:  # the status is small; a program spamming it is cut
                        status += chunk
                else:
                    sink.feed(chunk)
            if not killed and out.total + err.total > output_limit:
                overflow = killed = True
                _kill_group(proc.pid)
                deadline = time.monotonic() + _KILL_GRACE
    return out, err, bytes(status), timed_out, overflow


@dataclass
class _Raw:
    """What one run left behind, before interpretation."""

    out: _HeadTail
    err: _HeadTail
    status: bytes
    exit_code: int
    timed_out: bool
    overflow: bool
    cpu: float
    wall: float


def _run_once(code, timeout, memory_mb, max_output, mode, output_limit, layers) -> ExecResult:
    workdir = tempfile.mkdtemp(prefix="mathforge-sandbox-")
    status_r, status_w = os.pipe()
    start = time.monotonic()
    proc = None
    try:
        try:
            proc = _spawn(code, mode, timeout, memory_mb, max_output, layers, workdir, status_w)
        finally:
            os.close(status_w)  # the child holds the only write end now
        out, err, status, timed_out, overflow = _pump(
            proc, status_r, start + timeout, max_output, output_limit
        )
        _kill_group(proc.pid)  # before reaping, so the group id cannot have been reused
        _, wait_status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
    finally:
        os.close(status_r)
        if proc is not None:
            if proc.returncode is None:  # an exception above: never leave the program running
                _kill_group(proc.pid)
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)
    cpu = usage.ru_utime + usage.ru_stime
    # the CPU rlimit ends a program that burns CPU in several threads before the wall clock does
    timed_out = timed_out or (proc.returncode in (-signal.SIGKILL, -signal.SIGXCPU) and cpu >= timeout)
    raw = _Raw(out, err, status, proc.returncode, timed_out, overflow, cpu, time.monotonic() - start)
    return _assemble(raw, mode, max_output, output_limit)


def _parse_status(status: bytes) -> tuple[tuple[str, ...], str | None, str | None, str | None]:
    """(layers, "ok"/"error"/None, result, error) from the status lines; anything malformed (the
    program can write there too) is ignored, and a missing status means a failed run."""
    layers, state, result, error = (), None, None, None
    for line in status.decode("utf-8", "replace").splitlines():
        try:
            record = ast.literal_eval(line)  # never executes anything, whatever was written
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        if isinstance(record.get("layers"), list):
            layers = tuple(str(x) for x in record["layers"])
        if record.get("status") in ("ok", "error"):
            state = record["status"]
            result = None if record.get("result") is None else str(record["result"])
            error = None if record.get("error") is None else str(record["error"])
    return layers, state, result, error


def _assemble(raw: _Raw, mode: str, max_output: int, output_limit: int) -> ExecResult:
    stdout, cut = raw.out.text(max_output)
    stderr, _ = raw.err.text(_STDERR_KEEP)
    layers, state, value, reported = _parse_status(raw.status)
    ok = state == "ok" and raw.exit_code == 0 and not raw.timed_out and not raw.overflow
    if raw.timed_out:
        error = "Timeout Error"
    elif raw.overflow:
        error = f"OutputLimitExceeded: more than {output_limit} bytes of output"
    elif state == "error":
        error = reported or "Error"
    else:
        error = None if ok else _died(raw.exit_code, stderr)
    result = ""
    if ok:
        if value is None:  # the mode takes its result from stdout
            value = stdout.replace("\n", "") if mode == "mammoth" else stdout
        result = _cut(value.strip(), max_output)
    return ExecResult(
        ok=ok,
        stdout=stdout,
        error=error,
        timed_out=raw.timed_out,
        result=result,
        stderr=stderr,
        exit_code=raw.exit_code,
        cpu_seconds=round(raw.cpu, 4),
        wall_seconds=round(raw.wall, 4),
        truncated=cut or raw.overflow,
        isolation=layers,
    )


def _died(exit_code: int | None, stderr: str) -> str:
    """Why a program ended without a status line (killed, os._exit, a crash in the bootstrap)."""
    if exit_code is not None and exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = str(-exit_code)
        return f"Killed: signal {name}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return last or f"exited with code {exit_code} without a result"
