"""Errors that end a command with a clear message (exit status 2) instead of a traceback."""

from __future__ import annotations


class AuditError(Exception):
    """Base class for user-facing errors; the CLI prints the message and exits with status 2."""

    exit_code = 2


class ConfigError(AuditError):
    """The audit.toml (or an option) is wrong: unknown key, wrong type, bad value."""


class InputError(AuditError):
    """An input file cannot be loaded at all: missing, unknown format, missing required column."""


# Set by the command line's SIGINT/SIGTERM handler (cli._raise_interrupt). DuckDB turns a pending
# interrupt into `RuntimeError: Query interrupted`, which a reader's fallback could take for a file
# problem: the engine checks this flag around every statement and raises KeyboardInterrupt.
STOP_REQUESTED: list[bool] = []


def stop_requested() -> bool:
    """True once Ctrl-C or SIGTERM reached the command."""
    return bool(STOP_REQUESTED)
