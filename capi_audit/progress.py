"""A quiet progress indicator for loads and runs that take more than a few seconds.

Shown on stderr when it is a terminal, or in a notebook for steps slower than a few seconds;
silent in CI (`CI` set), when output is not a terminal, and when `CAPI_AUDIT_PROGRESS=0`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

AFTER_SECONDS = 3.0
AFTER_SECONDS_NOTEBOOK = 15.0


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def enabled() -> bool:
    """Whether progress lines may be printed at all here."""
    if os.environ.get("CAPI_AUDIT_PROGRESS") == "0" or os.environ.get("CI"):
        return False
    if os.environ.get("CAPI_AUDIT_PROGRESS") == "1":
        return True
    return sys.stderr.isatty() or _in_notebook()


class Progress:
    """Reports each step that ends more than a few seconds (15 in a notebook) after the run started."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.start = time.perf_counter()
        self.on = enabled()
        self.after = AFTER_SECONDS_NOTEBOOK if _in_notebook() and not sys.stderr.isatty() else AFTER_SECONDS

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step; print it once the run has been going for a few seconds."""
        t = time.perf_counter()
        yield
        now = time.perf_counter()
        if self.on and now - self.start > self.after:
            print(f"[{self.what}] {name}: {now - t:.1f} s (total {now - self.start:.1f} s)", file=sys.stderr, flush=True)
