"""Pure parsers for what native benchmark tools print, one module per tool.

Each parser takes the text a tool wrote and returns a frozen record with every time in
milliseconds; it never runs anything. When the text is not what the tool prints on
success (a crash, a truncated log, a build without logging), it raises
HarnessOutputError naming the tool and quoting the line that gave it away.

Records carry `from_aggregate`: True when the tool reported only aggregate statistics
(a total, a mean) rather than one time per run, so that statistics derived from them
can say they came from the tool's aggregate and not from raw samples.
"""

from __future__ import annotations

from bench_runner.harness.base import HarnessError


class HarnessOutputError(HarnessError):
    """A native tool's output is not what the tool prints on success.

    `tool` names the tool, `line` is the offending line (None when the problem is a
    missing line), and the message says what was expected and how to fix it.
    """

    def __init__(self, tool: str, problem: str, line: str | None = None, fix: str | None = None) -> None:
        message = f"{tool} output: {problem}"
        if line is not None:
            message += f": {line.strip()!r}"
        if fix:
            message += f". {fix}"
        super().__init__(message)
        self.tool = tool
        self.line = line


def text_lines(text: str) -> list[str]:
    """The lines of a tool's output, without the carriage returns an adb pty adds."""
    return [line.rstrip("\r") for line in text.splitlines()]
