"""Running a local command as its own process group, so nothing it starts outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from bench_runner.devices.base import CommandResult


def run_process_group(
    argv: Sequence[str],
    timeout: float,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run `argv` in a new session and wait at most `timeout` seconds.

    On timeout the whole process group is killed and `subprocess.TimeoutExpired` is
    raised; an interrupt (Ctrl-C reaches only the caller) kills the group too. A command
    that cannot start raises OSError.
    """
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return CommandResult(exit_code=process.returncode, stdout=stdout, stderr=stderr)
