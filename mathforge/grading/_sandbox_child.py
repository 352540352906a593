"""Child entry point of the code sandbox (docs/methods/evaluation.md §g.3): runs ONE model-written program.

Started by ``sandbox.py`` as ``python -I -S -B _sandbox_child.py CONFIG``, so it must not import
``mathforge`` and should import little (start-up time is per program). In order it:

1. reads and deletes the config (code, mode, limits, work dir, sandbox uid, layers asked for);
2. dies with its parent (``PR_SET_PDEATHSIG``) so an evaluator crash leaves nothing behind;
3. when allowed, enters new network and PID namespaces and forks: the program runs as PID 1 of its
   namespace, so when it ends the kernel kills every process it started, even ones that left the
   process group; the parent half only waits and relays the exit status;
4. sets resource limits (address space, CPU seconds, processes, file size, open files, core);
5. when root, drops to a throw-away uid/gid (so file permissions, ``RLIMIT_NPROC`` and signal
   permissions apply), keeping only ``CAP_DAC_READ_SEARCH`` so it can still read the interpreter;
6. installs an audit hook (PEP 578) that refuses process creation, signals, sockets, raw memory
   access through ctypes, reads outside the interpreter/packages/work dir and file changes
   outside the work dir;
7. runs the program in the asked mode and writes a status line to the status pipe.

The config is a ``marshal`` file (written by the trusted parent; ``marshal`` is built in, while
importing ``json`` would cost ~30 ms per program). Status pipe lines are Python literals read with
``ast.literal_eval`` (safe on whatever the program writes there): first ``{"layers": [...]}`` (what
was really applied), then at the end ``{"status": "ok"|"error", "result": str|None, "error": ...}``.
"""

from __future__ import annotations

import marshal
import os
import resource
import sys
from types import MappingProxyType

CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIGKILL = 9
NPROC_LIMIT = 64  # processes+threads for the sandbox uid; bounds a fork bomb that slips the hook
FSIZE_LIMIT = 64 << 20  # bytes per written file
NOFILE_LIMIT = 256

_libc = None


def _c():
    """libc through ctypes, loaded once and only when a privileged step needs it."""
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _status(fd: int, record: dict) -> None:
    try:
        os.write(fd, (repr(record) + "\n").encode("utf-8", "backslashreplace"))
    except OSError:  # the program closed the pipe; the parent reports the missing status
        pass


def _enter_namespaces(root: bool) -> list[str]:
    """New net+pid namespaces (plus a user namespace when not root); [] when the kernel says no."""
    flags = CLONE_NEWNET | CLONE_NEWPID | (0 if root else CLONE_NEWUSER)
    uid, gid = os.getuid(), os.getgid()
    if _c().unshare(flags) != 0:
        return []
    if not root:
        # map our own ids 1:1, or the kernel refuses file creation (EOVERFLOW) in the work dir
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    return ["netns", "pidns"]


def _relay_child(pid: int) -> None:
    """Parent half after the PID-namespace fork: wait for the program and exit the same way."""
    _, status = os.waitpid(pid, 0)
    sys.stdout.flush()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import signal

        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status))


def _set_limits(cfg: dict) -> None:
    mem = int(cfg["memory_mb"]) << 20
    cpu = int(cfg["cpu_seconds"])
    for kind, soft, hard in (
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # soft: SIGXCPU; hard: SIGKILL (PID 1 ignores SIGXCPU)
        (resource.RLIMIT_NPROC, NPROC_LIMIT, NPROC_LIMIT),
        (resource.RLIMIT_FSIZE, FSIZE_LIMIT, FSIZE_LIMIT),
        (resource.RLIMIT_NOFILE, NOFILE_LIMIT, NOFILE_LIMIT),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        resource.setrlimit(kind, (soft, hard))


def _drop_privileges(uid: int, keep_read_cap: bool) -> None:
    """Become ``uid`` with no capability, or only CAP_DAC_READ_SEARCH when the interpreter is not
    readable by others (a pyenv under /root, say): the program must still import the stdlib."""
    import ctypes

    libc = _c()
    libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # from here on we cannot signal or write anything the evaluator owns
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    keep = (1 << CAP_DAC_READ_SEARCH) if keep_read_cap else 0
    data = (ctypes.c_uint32 * 6)(keep, keep, 0, 0, 0, 0)  # effective, permitted, inheritable (x2)
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def main(argv: list[str]) -> None:
    cfg_path = argv[1]
    with open(cfg_path, "rb") as fh:
        cfg = marshal.load(fh)
    os.unlink(cfg_path)
    status_fd = int(cfg["status_fd"])
    asked = set(cfg["layers"])
    root = os.geteuid() == 0
    layers = ["rlimits"]
    # a dying evaluator must take the program with it
    _c().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != int(cfg["parent_pid"]):
        os._exit(70)  # the evaluator died before the line above
    if "namespaces" in asked:
        layers += _enter_namespaces(root)
        if "pidns" in layers:
            pid = os.fork()  # the child is PID 1 of the new namespace
            if pid:
                _relay_child(pid)
            _c().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    _set_limits(cfg)
    if "uid" in asked and root:
        _c().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _drop_privileges(int(cfg["uid"]), bool(cfg["keep_read_cap"]))
        layers += ["uid", "dac_read_search"] if cfg["keep_read_cap"] else ["uid"]
    sys.path.extend(cfg["sys_path"])
    if "audit" in asked:
        _install_hook(cfg["workdir"], cfg["read_roots"], cfg["deny_roots"])
        layers.append("audit")
    _status(status_fd, {"layers": layers})
    _status(status_fd, _run(cfg))


def _run(cfg: dict) -> dict:
    """Run the program in its mode; never raises (SystemExit(0) counts as a normal end)."""
    try:
        result = _run_mode(cfg["mode"], cfg["code"], int(cfg["max_output"]))
        sys.stdout.flush()  # a failing flush (the program closed stdout) is the program's error
    except SystemExit as exc:
        if exc.code in (None, 0):
            return {"status": "ok", "result": None, "error": None}
        return {"status": "error", "result": None, "error": f"SystemExit: {exc.code}"}
    except BaseException as exc:  # noqa: BLE001 - any failure of the program is a failed run
        return {"status": "error", "result": None, "error": _describe(exc)}
    return {"status": "ok", "result": result, "error": None}


def _describe(exc: BaseException) -> str:
    """The last traceback line (``Type: message``); the full traceback goes to stderr."""
    try:
        import traceback

        tb = exc.__traceback__  # skip the bootstrap's own frames: show the program's
        while tb is not None and tb.tb_frame.f_code.co_filename != "<program>":
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - e.g. MemoryError while formatting
        pass
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# The audit hook (PEP 578). It sees every audited operation of the interpreter; what it refuses
# raises PermissionError (ImportError for imports) inside the program. Reads are allowed only
# under the work dir and the read roots the parent sends (the interpreter, its packages, system
# libraries), so a program cannot read the evaluator's files (gold answers, say).

_SPAWN = frozenset(
    """
    os.fork os.forkpty os.posix_spawn os.spawn os.exec os.system os.startfile subprocess.Popen
    pty.spawn
    """.split()
)
_SIGNAL = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})
_NET = frozenset(
    """
    socket.__new__ socket.connect socket.bind socket.sendto socket.sendmsg socket.getaddrinfo
    socket.gethostbyname socket.gethostbyname_ex socket.gethostbyaddr
    """.split()
)
# ctypes may be imported (numpy does) but never used to load libraries, call native code or poke
# memory; raising rlimits, gc introspection (it could reach the hook's own state) and input() are
# refused too
_OTHER = frozenset(
    """
    ctypes.dlsym ctypes.dlsym/handle ctypes.call_function ctypes.cdata ctypes.cdata/buffer
    ctypes.string_at ctypes.wstring_at resource.setrlimit resource.prlimit gc.get_objects
    gc.get_referrers gc.get_referents builtins.input
    """.split()
)
_REFUSED = _SPAWN | _SIGNAL | _NET | _OTHER
# events that change the file system -> positions of the path arguments that must stay inside
_FIRST = """os.remove os.rmdir os.mkdir os.chmod os.chown os.truncate os.utime os.chflags
    os.lchflags os.setxattr os.removexattr shutil.rmtree shutil.chown shutil.make_archive"""
_SECOND = """os.symlink shutil.copyfile shutil.copymode shutil.copystat shutil.copytree
    shutil.unpack_archive"""
_PATHS = MappingProxyType(
    {
        **dict.fromkeys(_FIRST.split(), (0,)),
        **dict.fromkeys(_SECOND.split(), (1,)),
        **dict.fromkeys("os.rename os.link shutil.move".split(), (0, 1)),
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


# modules whose import is refused: the real ctypes (memmove and pointers reach raw memory without
# any audit event; programs get a stand-in, see _disarm), sub-interpreters (they start without our
# hook), CPython test helpers
_REFUSED_IMPORTS = frozenset({"ctypes", "_ctypes", "_xxsubinterpreters", "_xxinterpchannels"})


def _install_hook(workdir: str, read_roots: list[str], deny_roots: list[str]) -> None:
    import posixpath

    # Everything the hook uses is bound in ONE default tuple (immutable): rebinding os.path.realpath
    # or module globals later changes nothing, and rebinding the tuple itself (an audited
    # object.__setattr__ on the hook) is refused.
    def hook(event, args, _bound=None):
        inside, roots, deny, refused, imports, paths, wflags, realpath, as_str, under, me = _bound
        if event in refused:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and (args[0] in imports or args[0].startswith("_test")):
            raise ImportError(f"sandbox: module {args[0]} is not available")
        if event == "ctypes.dlopen" and args[0] is not None:  # a library's constructors run natively
            raise PermissionError(f"sandbox: loading {args[0]} is not allowed")
        if event == "object.__setattr__" and args[0] is me:
            raise PermissionError("sandbox: the audit hook cannot be changed")
        if event == "open":
            path, mode, flags = as_str(args[0]), args[1], args[2]
            if path is None:
                return  # an already-open descriptor: its opening was checked
            real = realpath(path)
            writing = (type(mode) is str and any(c in mode for c in "wax+")) or (
                type(flags) is int and flags & wflags
            )
            if writing and not (under(real, inside) or real == "/dev/null"):
                raise PermissionError(f"sandbox: writing {path} outside the work dir")
            allowed = under(real, inside) or any(under(real, root) for root in roots)
            if not allowed or any(under(real, root) for root in deny):
                raise PermissionError(f"sandbox: reading {path} outside the allowed dirs")
            return
        for k in paths.get(event, ()):
            path = as_str(args[k])
            if path is not None and not under(realpath(path), inside):
                raise PermissionError(f"sandbox: {event} on {path} outside the work dir")

    roots = (*read_roots, "/proc/" + os.readlink("/proc/self"))
    bound = (posixpath.realpath(workdir), roots, tuple(deny_roots), _REFUSED, _REFUSED_IMPORTS)
    bound += (_PATHS, _WRITE_FLAGS)
    hook.__defaults__ = (bound + (posixpath.realpath, _as_str, _under, hook),)
    _disarm()
    sys.addaudithook(hook)


# the ctypes a program sees: sizes and plain scalar types (sympy asks for sizeof(c_long)); no
# pointers, arrays, structures, libraries, casts or memmove, which reach raw memory unaudited
_SAFE_CTYPES = tuple(
    """
    sizeof alignment c_bool c_byte c_ubyte c_short c_ushort c_int c_uint c_long c_ulong
    c_longlong c_ulonglong c_size_t c_ssize_t c_float c_double c_longdouble c_char c_wchar
    c_int8 c_int16 c_int32 c_int64 c_uint8 c_uint16 c_uint32 c_uint64
    """.split()
)


def _disarm() -> None:
    """Drop what the hook cannot police: the real ctypes (and our libc handle), replaced by a
    stand-in with scalar types only; pidfd signalling (``os.pidfd_open`` and
    ``signal.pidfd_send_signal`` raise no audit event); the raw ``fork_exec``."""
    global _libc
    import ctypes
    import types

    safe = types.ModuleType("ctypes", "Sandbox stand-in: scalar types and sizeof only.")
    for name in _SAFE_CTYPES:
        setattr(safe, name, getattr(ctypes, name))
    _libc = None
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    sys.modules["ctypes"] = safe
    import _posixsubprocess
    import _signal
    import posix

    for module, name in ((os, "pidfd_open"), (posix, "pidfd_open"), (_signal, "pidfd_send_signal")):
        if hasattr(module, name):
            delattr(module, name)
    # subprocess imports fork_exec at import time (and sympy imports subprocess), so stub it:
    # the raw fork_exec raises no audit event, unlike subprocess.Popen
    _posixsubprocess.fork_exec = _refuse_fork_exec


def _refuse_fork_exec(*args, **kwargs):
    raise PermissionError("sandbox: process creation is not allowed")


def _as_str(path) -> str | None:
    """A path argument as str; None for descriptors (int) and missing paths."""
    if path is None or type(path) is int:
        return None
    path = os.fspath(path)
    return path.decode("utf-8", "surrogateescape") if type(path) is bytes else path


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


# ---------------------------------------------------------------------------------------------
# Modes (docs/methods/evaluation.md §g.3). Each returns the result string, or None for "the parent takes the
# result from the captured stdout" (stdout is read by the parent, never buffered here).


def _cut(text: str, limit: int) -> str:
    """First limit/2 characters + '...' + last limit/2 when longer than limit (§g.8)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "..." + text[-half:]


def _run_mode(mode: str, code: str, max_output: int) -> str | None:
    import builtins

    if not hasattr(builtins, "exit"):  # -S skips site, which defines exit(); programs call it
        builtins.exit = builtins.quit = sys.exit
    env = {"__name__": "__main__", "__builtins__": builtins}
    if mode == "print":
        exec(compile(code, "<program>", "exec"), env)
        return None
    if mode == "harness":
        lines = code.rstrip().split("\n")
        if "print(" in lines[-1]:
            exec(compile(code, "<program>", "exec"), env)
            return None
        exec(compile("\n".join(lines[:-1]), "<program>", "exec"), env)
        value = eval(compile(lines[-1].strip(), "<program>", "eval"), env)
        return _cut(str(value).strip(), max_output)
    if mode == "pal":
        exec(compile(code, "<program>", "exec"), env)
        solution = env.get("solution")
        if not callable(solution):
            raise NameError("name 'solution' is not defined")
        value = solution()
        return None if value is None else _cut(str(value).strip(), max_output)
    if mode == "mammoth":
        program = code.split("###")[0]
        compile(program, "<program>", "exec")  # syntax check before wrapping, as the original
        body = "\n".join("    " + line for line in program.split("\n"))
        exec(compile(f"def _program():\n{body}\n    pass\n_program()\n", "<program>", "exec"), env)
        return None
    raise ValueError(f"unknown sandbox mode {mode!r}")


def probe(workdir: str) -> None:
    """``--probe DIR``: exit 0 iff an unprivileged user can get working namespaces here (some
    kernels allow the unshare but refuse the id maps; then files could not be created)."""
    if _enter_namespaces(root=os.geteuid() == 0) != ["netns", "pidns"]:
        os._exit(1)
    pid = os.fork()
    if pid == 0:
        try:
            with open(os.path.join(workdir, "probe"), "w") as fh:
                fh.write("ok")
        except OSError:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    os._exit(1 if status else 0)


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        probe(sys.argv[2])
    main(sys.argv)
