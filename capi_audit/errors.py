"""Errors that end a command with a clear message (exit status 2) instead of a traceback."""

from __future__ import annotations


class AuditError(Exception):
    """Base class for user-facing errors; the CLI prints the message and exits with status 2."""

    exit_code = 2


class ConfigError(AuditError):
    """The audit.toml (or an option) is wrong: unknown key, wrong type, bad value."""


class InputError(AuditError):
    """An input file cannot be loaded at all: missing, unknown format, missing required column."""
