"""One module per `vitdeploy` subcommand.

Each module exposes `register(subparsers)`, which adds its parser and sets `func` to a
callable taking the parsed arguments and returning the exit code. Modules import heavy
libraries (torch, runtimes) inside that callable, so `vitdeploy --help` stays fast.
"""

COMMAND_MODULES = (
    "models",
    "lower",
    "derive",
    "devices",
    "bench",
    "eval",
    "report",
    "sweep",
    "demo",
    "worker",
)
