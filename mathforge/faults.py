"""Fault injection for the kill-and-resume tests.

A test sets an environment variable to the point at which the process must die, and the writer
calls `kill_at(var, count)` after each unit of work is on disk: the process then kills itself with
SIGKILL exactly there (or with the signal named by `MATHFORGE_TEST_KILL_SIGNAL`, e.g. `INT` for
a Ctrl-C). The interruption point no longer depends on a timer racing the run, so the
test means the same thing on a fast or a slow machine. Unset, it costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

GRADE = "MATHFORGE_TEST_KILL_AFTER"        # problems graded by `mathforge grade`
TRAIN = "MATHFORGE_TEST_KILL_AT_STEP"      # optimizer steps of `mathforge train`
EVAL = "MATHFORGE_TEST_KILL_AFTER_WRITES"  # appends to an eval run's outputs.jsonl
SYNTH = "MATHFORGE_TEST_KILL_IN_CHUNK"     # `synth generate`: chunk k generated, not yet written
SIGNAL = "MATHFORGE_TEST_KILL_SIGNAL"      # KILL (default), INT (Ctrl-C), TERM


def kill_at(var: str, count: int) -> None:
    """Signal this process (SIGKILL unless `SIGNAL` names another) when the environment variable
    `var` is set to `count`."""
    if os.environ.get(var) == str(count):
        os.kill(os.getpid(), getattr(signal, "SIG" + os.environ.get(SIGNAL, "KILL")))
