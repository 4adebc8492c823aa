"""Input formats. Each module reads one format and lands rows in a canonical table."""

from __future__ import annotations

from capi_audit.io.base import Reader
from capi_audit.io.canonical import CanonicalReader

FORMATS: dict[str, Reader] = {"canonical": CanonicalReader()}


def register(reader: Reader) -> None:
    """Make a reader available under its format name."""
    FORMATS[reader.name] = reader


__all__ = ["FORMATS", "Reader", "register"]
