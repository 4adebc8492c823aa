"""Input formats. Each module reads one format and lands rows in a canonical table."""

from __future__ import annotations

from capi_audit.io.base import Reader
from capi_audit.io.canonical import CanonicalReader
from capi_audit.io.meta_capi import MetaCapiPayloadReader

FORMATS: dict[str, Reader] = {r.name: r for r in (CanonicalReader(), MetaCapiPayloadReader())}


def register(reader: Reader) -> None:
    """Make a reader available under its format name."""
    FORMATS[reader.name] = reader


__all__ = ["FORMATS", "Reader", "register"]
