"""Output folders written whole or not at all (design non-negotiable: no partial output).

A command writes into a hidden folder next to the one it names and moves it into place when
complete; on any failure or interruption the hidden folder is removed and the named one is left
as it was.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from capi_audit.errors import ConfigError


def temp_next_to(out: Path) -> Path:
    """A new hidden folder in out's parent (same file system, so the final move is a rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def move_into_place(tmp: Path, out: Path) -> None:
    """Replace out (a folder, or nothing) by tmp."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"{out}: exists and is not a folder")
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def check_replaceable(out: str | Path, marker: str, what: str = "the output folder") -> None:
    """`out` may be replaced whole: it does not exist, or is an empty folder, or a previous output
    (it holds `marker`). A file, or a folder holding anything else, is refused, so that no call
    (`run_audit(cfg, "~/project")`) can ever move a user's folder away."""
    out = Path(out)
    if out.is_symlink() and not out.exists():  # checked before any work: the final move would fail
        raise ConfigError(f"{out}: {what} is a link to nothing (or a loop of links); name a folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: {what} names an existing file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise ConfigError(f"{out}: {what} is a folder with other content; the output replaces it whole, "
                          "so name a new or empty folder (or a previous output)")


@contextmanager
def atomic_folder(out: str | Path, marker: str) -> Iterator[Path]:
    """Yield a temporary folder to write into; it becomes `out` when the block ends normally and
    is removed when the block raises (an error, Ctrl-C or SIGTERM, see cli.main). `out` must pass
    check_replaceable with `marker`, the file every complete output of this kind holds."""
    out = Path(out)
    check_replaceable(out, marker)
    tmp = temp_next_to(out)
    try:
        yield tmp
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
