"""The base of every error that vitdeploy reports to its user as a plain message."""


class VitdeployError(Exception):
    """A problem the user can fix: the message names it and says how.

    The CLI prints it without a traceback and exits with status 2. Every package's
    user-facing errors (bad checkpoints, unknown models, unsupported ops, vanished
    devices) derive from it.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name if it has none: what a
    user-facing error quotes of a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
