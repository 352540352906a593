"""Tests of the code sandbox (docs/methods/evaluation.md §g.3; promises listed in docs/sandbox.md).

One test per promise. Each hostile program must come back as a failed ExecResult while this
process carries on. Where a promise rests on several layers, the test runs once per layer set:
``all`` (the default), ``audit`` (only the audit hook, as when the kernel refuses namespaces and
we are not root) and ``os`` (namespaces + throw-away uid, no hook; skipped where unavailable), so
each layer is shown to hold on its own.
"""

from __future__ import annotations

import math
import os
import resource
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from mathforge.grading import ExecResult, run_code, run_codes, sandbox

ALL = ("namespaces", "uid", "audit")
LAYER_SETS = {"all": ALL, "audit": ("audit",), "os": ("namespaces", "uid")}
REPO = Path(__file__).resolve().parents[1]


def run(code: str, layers: str = "all", **kw) -> ExecResult:
    result = run_code(textwrap.dedent(code), _layers=LAYER_SETS[layers], **kw)
    if layers == "os" and not {"netns", "pidns", "uid"} <= set(result.isolation):
        pytest.skip(f"kernel/user does not allow namespaces + uid drop here: {result.isolation}")
    return result


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose cwd or command line still names ``text`` (a sandbox work dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cwd or text in cmdline:
            found.append(int(entry))
    return found


# --- promise 1: a separate, fresh, isolated interpreter per program ---------------------------


def test_each_program_gets_a_fresh_isolated_interpreter():
    first = run("import builtins, os\nbuiltins.leak = 1\nprint(os.getpid())")
    second = run(
        """
        import builtins, sys
        print(hasattr(builtins, "leak"), sys.flags.isolated, sys.flags.no_site,
              "mathforge" in sys.modules)
        """
    )
    assert first.ok and second.ok, (first, second)
    assert int(first.stdout) != os.getpid()
    assert second.stdout.split() == ["False", "1", "1", "False"]
    assert "rlimits" in second.isolation and "audit" in second.isolation


# --- promise 2: wall-clock and CPU limits --------------------------------------------------------


def test_infinite_loop_is_killed_at_the_deadline_and_limits_are_set():
    t0 = time.monotonic()
    r = run("while True:\n    pass", timeout=1.0)
    assert not r.ok and r.timed_out and r.error == "Timeout Error" and r.report == "Timeout Error"
    assert time.monotonic() - t0 < 4.0
    limits = run(
        """
        import resource as r
        print(r.getrlimit(r.RLIMIT_CPU)[0], r.getrlimit(r.RLIMIT_AS)[0] >> 20,
              r.getrlimit(r.RLIMIT_NPROC)[0])
        """,
        timeout=2.5,
        memory_mb=1024,
    )
    assert limits.ok, limits
    cpu, mem, nproc = map(int, limits.stdout.split())
    assert (cpu, mem) == (math.ceil(2.5) + 1, 1024) and nproc <= 64


# --- promise 3: a fork bomb is contained ---------------------------------------------------------

FORK_BOMB = """
import os, time
print(os.getcwd(), flush=True)
n = 0
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
print(n, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("layers", ["all", "audit", "os"])
def test_fork_bomb_is_contained_and_leaves_no_process(layers):
    r = run(FORK_BOMB, layers, timeout=2.0)
    assert not r.ok and r.timed_out, r
    workdir, forked = r.stdout.splitlines()
    # hook: no fork at all; no hook: RLIMIT_NPROC on the throw-away uid stops it
    assert int(forked) == 0 if layers != "os" else 0 < int(forked) <= 64, r
    assert processes_mentioning(workdir) == []  # the deadline took every descendant


# --- promise 4: memory limit -----------------------------------------------------------------------


def test_memory_bomb_fails_and_caller_is_unharmed():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = run("x = bytearray(10 * 1024**3)\nprint(len(x))", memory_mb=2048)
    assert not r.ok and r.error.startswith("MemoryError"), r
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    fits = run("x = bytearray(200 * 1024**2)\nprint(len(x))", memory_mb=2048)
    assert fits.ok and fits.result == str(200 * 1024**2), fits


# --- promise 5: no network -----------------------------------------------------------------------


@pytest.mark.parametrize("layers", ["all", "audit", "os"])
def test_no_network_even_to_localhost(layers):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        r = run(
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"leak")
                print("connected")
            except OSError as exc:
                print("refused", type(exc).__name__)
            """,
            layers,
        )
        server.settimeout(0.3)
        with pytest.raises(TimeoutError):
            server.accept()
    assert r.ok and r.stdout.startswith("refused"), r


# --- promise 6: private work dir, removed afterwards; no writes outside it ---------------------


@pytest.mark.parametrize("layers", ["all", "audit", "os"])
def test_private_workdir_and_no_writes_outside(layers, tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("evaluator data")
    r = run(
        f"""
        import os, shutil
        print(os.getcwd())
        with open("note.txt", "w") as fh:
            fh.write("mine")
        print(open("note.txt").read())
        attempts = [
            lambda: open({str(tmp_path / "escape.txt")!r}, "w").write("x"),
            lambda: os.remove({str(keep)!r}),
            lambda: os.rename({str(keep)!r}, "stolen.txt"),
            lambda: shutil.rmtree({str(tmp_path)!r}),
            lambda: os.symlink({str(keep)!r}, "link") or open("link", "w").write("x"),
        ]
        for attempt in attempts:
            try:
                attempt()
                print("WROTE")
            except OSError as exc:
                print(type(exc).__name__)
        """,
        layers,
    )
    assert r.ok, r
    lines = r.stdout.splitlines()
    assert lines[1] == "mine" and "WROTE" not in lines, r.stdout
    assert not (tmp_path / "escape.txt").exists()
    assert keep.read_text() == "evaluator data"
    assert not Path(lines[0]).exists()  # the work dir is gone


@pytest.mark.parametrize("layers", ["all", "audit"])
def test_evaluator_files_cannot_be_read(layers, tmp_path):
    gold = tmp_path / "gold_answers.jsonl"
    gold.write_text('{"answer": "1729"}')
    r = run(
        f"""
        import importlib, sys
        for path in ({str(gold)!r}, "/etc/shadow", {str(REPO / "pyproject.toml")!r}):
            try:
                print(open(path).read())
            except OSError as exc:
                print(type(exc).__name__)
        sys.path.insert(0, {str(REPO)!r})
        try:
            importlib.import_module("mathforge")  # the evaluator's own code, and its data paths
            print("imported")
        except (OSError, ImportError) as exc:
            print(type(exc).__name__)
        """,
        layers,
    )
    assert r.ok, r
    assert "1729" not in r.stdout and "imported" not in r.stdout, r.stdout
    assert r.stdout.split()[:3] == ["PermissionError"] * 3


def test_benchmark_data_stays_unreadable_even_inside_a_readable_dir(tmp_path, monkeypatch):
    """Installed into site-packages, mathforge's data would sit inside a read root: deny wins."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "gold.jsonl").write_text('{"answer": "1729"}')
    (tmp_path / "table.txt").write_text("public")
    monkeypatch.setenv("MATHFORGE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(sandbox, "_read_roots", lambda: [str(tmp_path)])
    r = run(
        f"""
        for path in ({str(tmp_path / "table.txt")!r}, {str(tmp_path / "data" / "gold.jsonl")!r}):
            try:
                print(open(path).read())
            except OSError as exc:
                print(type(exc).__name__)
        """,
        "audit",
    )
    assert r.ok and r.stdout.split() == ["public", "PermissionError"], r


# --- promise 7: output cap -------------------------------------------------------------------------


def test_printing_100_mb_is_cut_fast_with_bounded_parent_memory():
    tracemalloc.start()
    t0 = time.monotonic()
    r = run("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\n")
    elapsed = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not r.ok and r.truncated and r.error.startswith("OutputLimitExceeded"), r
    assert elapsed < 5.0 and peak < 4 << 20, (elapsed, peak)
    assert len(r.stdout) == 403 and r.stdout == "x" * 200 + "..." + "x" * 200


def test_long_output_keeps_first_and_last_200_characters():
    r = run("for i in range(2000):\n    print(i)")
    assert r.ok and r.truncated and len(r.stdout) == 403, r
    assert r.stdout.startswith("0\n1\n2\n") and r.stdout.endswith("1998\n1999\n")
    assert r.result.endswith("1999") and "..." in r.result


# --- promise 8: the caller's environment stays private -----------------------------------------


@pytest.mark.parametrize("layers", ["all", "audit", "os"])
def test_caller_environment_is_not_visible(layers, monkeypatch):
    secret = "mf-secret-7d1c0a"
    monkeypatch.setenv("MATHFORGE_TEST_SECRET", secret)
    r = run(
        f"""
        import os
        print(sorted(os.environ), os.environ["HOME"] == os.getcwd())
        for pid in ({os.getpid()}, os.getppid()):
            try:
                print(open(f"/proc/{{pid}}/environ", "rb").read())
            except OSError as exc:
                print(type(exc).__name__)
        """,
        layers,
    )
    assert r.ok, r
    assert secret not in r.stdout + r.stderr
    assert "MATHFORGE_TEST_SECRET" not in r.stdout and "True" in r.stdout.splitlines()[0]


# --- promise 9: the program cannot kill its caller ---------------------------------------------

EVALUATOR = """
import subprocess, sys
from mathforge.grading import run_code
victim = subprocess.Popen(["sleep", "30"])
code = (
    "import os, signal\\n"
    "for pid in (%d, %d, os.getppid()):\\n"
    "    try:\\n"
    "        os.kill(pid, signal.SIGKILL)\\n"
    "    except OSError as exc:\\n"
    "        print(type(exc).__name__)\\n"
)
r = run_code(code % (__import__("os").getpid(), victim.pid), _layers=LAYERS)
print("victim alive", victim.poll() is None, "isolation", ",".join(r.isolation))
victim.kill()
"""


@pytest.mark.parametrize("layers", ["all", "audit", "os"])
def test_program_cannot_kill_the_caller(layers):
    if layers == "os":
        run("print(1)", "os")  # skips where the OS layers are unavailable: nothing else would hold
    proc = subprocess.run(
        [sys.executable, "-c", EVALUATOR.replace("LAYERS", repr(LAYER_SETS[layers]))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "victim alive True" in proc.stdout, proc.stdout


# --- promise 10: ignoring signals does not help ---------------------------------------------------


def test_program_ignoring_signals_is_still_killed():
    t0 = time.monotonic()
    r = run(
        """
        import signal, time
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
            signal.signal(sig, signal.SIG_IGN)
        print("ignoring", flush=True)
        time.sleep(60)
        """,
        timeout=1.0,
    )
    assert r.timed_out and not r.ok and r.stdout == "ignoring\n", r
    assert time.monotonic() - t0 < 4.0


# --- promise 11: stdin is closed; input( is rejected ----------------------------------------------


def test_stdin_is_empty_and_input_is_rejected_unrun():
    r = run("x = input('n? ')\nprint(x)")
    assert not r.ok and r.exit_code is None and "input()" in r.error
    eof = run("import sys\nprint(repr(sys.stdin.read()))")
    assert eof.ok and eof.result == "''", eof
    sneaky = run("f = getattr(__builtins__, 'in' + 'put')\nf()")
    assert not sneaky.ok and "not allowed" in sneaky.error, sneaky


# --- the audit hook cannot be switched off or bypassed by the usual routes --------------------------------------------


def test_program_cannot_rebind_the_hook_or_reach_native_escape_hatches():
    r = run(
        """
        import socket
        try:
            socket.socket()
        except PermissionError as exc:
            tb = exc.__traceback__
            while tb.tb_next is not None:
                tb = tb.tb_next
            hook = tb.tb_frame.f_locals["_bound"][-1]  # the hook's own frame leaks its state
        try:
            hook.__defaults__ = (None,)
            print("rebound")
        except PermissionError:
            print("refused")
        try:
            socket.socket()
            print("socket")
        except PermissionError:
            print("still blocked")
        """,
        "audit",
    )
    assert r.ok and r.stdout.split() == ["refused", "still", "blocked"], r
    escapes = run(
        """
        import ctypes, os, signal, _posixsubprocess
        print(ctypes.sizeof(ctypes.c_long) > 0)  # what sympy needs still works
        print([hasattr(ctypes, n) for n in ("memmove", "CDLL", "POINTER", "cast")])
        print(hasattr(os, "pidfd_open"), hasattr(signal, "pidfd_send_signal"))
        try:
            _posixsubprocess.fork_exec()
        except PermissionError:
            print("fork_exec refused")
        for name in ("_ctypes", "_xxsubinterpreters"):
            try:
                __import__(name)
            except ImportError:
                print(name, "refused")
        """,
        "audit",
    )
    assert escapes.ok, escapes
    assert escapes.stdout.splitlines() == [
        "True",
        "[False, False, False, False]",
        "False False",
        "fork_exec refused",
        "_ctypes refused",
        "_xxsubinterpreters refused",
    ]


# --- modes (§g.3) ----------------------------------------------------------------------------------


def test_harness_mode_takes_stdout_or_the_last_expression():
    printed = run("x = 6\nprint(x * 7)\n\n", mode="harness")
    assert printed.ok and printed.result == "42"
    expr = run("import math\nprint('ignored?')\nx = math.factorial(5)\nx + 1\n", mode="harness")
    assert expr.ok and expr.result == "121" and expr.stdout == "ignored?\n"
    boom = run("x = 1\nx / 0", mode="harness")
    assert not boom.ok and boom.result == "" and boom.report == "ZeroDivisionError: division by zero"
    big = run("'a' * 300 + 'b' * 300", mode="harness")
    assert big.result == "a" * 200 + "..." + "b" * 200


def test_pal_and_mammoth_modes():
    pal = run("def solution():\n    return 3 * 14\n", mode="pal")
    assert pal.ok and pal.result == "42"
    printed = run("def solution():\n    print(7)\n", mode="pal")
    assert printed.ok and printed.result == "7"
    missing = run("x = 1", mode="pal")
    assert not missing.ok and "solution" in missing.error
    mammoth = run("a = 3\nprint(a)\nprint(a + 1)\n### The answer is 4", mode="mammoth")
    assert mammoth.ok and mammoth.result == "34"
    bad = run("print(1\n### x", mode="mammoth")
    assert not bad.ok and bad.error.startswith("SyntaxError")


def test_bad_arguments_raise_clear_errors_and_timeouts_can_be_retried():
    with pytest.raises(ValueError, match="mode must be one of"):
        run_code("print(1)", mode="exec")
    with pytest.raises(ValueError, match="timeout"):
        run_code("print(1)", timeout=0)
    with pytest.raises(ValueError, match="workers"):
        run_codes(["print(1)"], workers=0)
    assert run_codes([]) == []
    retried = run("import time\ntime.sleep(5)", timeout=0.5, retry_timeouts=1)
    assert retried.timed_out and retried.attempts == 2


def test_junk_on_the_status_pipe_cannot_crash_the_caller():
    layers, state, result, error = sandbox._parse_status(
        b"{'layers': 5}\n[1, 2\n{'status': 'ok', 'result': 7}\n" + b"(" * 5000 + b"\n\xff\xfe\n"
    )
    assert (layers, state, result, error) == ((), "ok", "7", None)
    r = run(
        """
        import os
        for fd in os.listdir("/proc/self/fd"):  # find the status pipe and scribble on it
            try:
                if int(fd) > 2:
                    os.write(int(fd), b"{'layers': 5}\\n((((\\n")
            except OSError:
                pass
        print(6 * 7)
        """,
        "audit",
    )
    assert r.ok and r.result == "42" and "audit" in r.isolation, r


# --- the pool --------------------------------------------------------------------------------------


def test_pool_runs_200_programs_in_bounded_time():
    codes = [f"print({i} * {i})" for i in range(200)]
    t0 = time.monotonic()
    results = run_codes(codes, workers=os.cpu_count())
    elapsed = time.monotonic() - t0
    print(f"\n200 programs through run_codes on {os.cpu_count()} workers: {elapsed:.2f} s")
    assert [r.result for r in results] == [str(i * i) for i in range(200)]
    assert all(r.ok for r in results)
    assert elapsed < 60.0
