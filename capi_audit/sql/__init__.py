"""Portable SQL: the project's named functions and their expansion per engine dialect."""

from capi_audit.sql.dialect import DIALECTS, FUNCTIONS, NotPortable, quote_ident, render

__all__ = ["DIALECTS", "FUNCTIONS", "NotPortable", "quote_ident", "render"]
